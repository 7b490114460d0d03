/** Test helpers: a real agent on 127.0.0.1 port 0 with a temp data dir, and small HTTP utilities. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/config/agent.js';
import type { AgentConfigInput } from '../../src/config/agent.js';
import { startAgent } from '../../src/cli/wiring/agent.js';
import type { RunningAgent } from '../../src/cli/wiring/agent.js';
import { sharedEtcdStoreUrl } from './etcd.js';
import type { Clock } from '../../src/core/clock.js';

export interface TestAgent extends RunningAgent {
  readonly dataDir: string;
  /** Closes the agent and removes its data dir. */
  stop(): Promise<void>;
}

export function tempDir(prefix = 'sy-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** With SY_TEST_STORE=etcd every test agent runs on a real etcd (one suite, two stores). */
export const testStore = process.env['SY_TEST_STORE'] === 'etcd' ? 'etcd' : 'embedded';

/** `opts.clock` drives the agent's session TTLs and lock-delays (see helpers/clock.ts). */
export async function startTestAgent(overrides: AgentConfigInput = {}, dataDir = tempDir(), opts: { clock?: Clock } = {}): Promise<TestAgent> {
  const onEtcd = testStore === 'etcd' && overrides.store === undefined ? { store: await sharedEtcdStoreUrl() } : {};
  const cfg = resolveAgentConfig({}, {
    'http-addr': '127.0.0.1:0', 'data-dir': dataDir, node: 'n1', 'log-level': 'silent', sync: 'none', ...onEtcd, ...overrides,
  });
  const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
  const agent = await startAgent(cfg, logger, opts.clock ? { clock: opts.clock } : {});
  return {
    ...agent,
    dataDir,
    async stop() {
      await agent.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
}

export async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
  const res = await fetch(base + path, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
