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
export async function startTestAgent(overrides: AgentConfigInput = {}, dataDir = tempDir(), opts: { clock?: Clock; lbStarting?: boolean } = {}): Promise<TestAgent> {
  const onEtcd = testStore === 'etcd' && overrides.store === undefined ? { store: await sharedEtcdStoreUrl() } : {};
  const cfg = resolveAgentConfig({}, {
    'http-addr': '127.0.0.1:0', 'data-dir': dataDir, node: 'n1', 'log-level': 'silent', sync: 'none', ...onEtcd, ...overrides,
  });
  const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
  const agent = await startAgent(cfg, logger, { ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.lbStarting ? { lbStarting: true } : {}) });
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

/** Pacing only (a load loop's rhythm, a byte-at-a-time writer). To wait for something, use waitFor; to show that nothing happens, negativeWindow. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a truthy value or `timeoutMs` passes, then throws saying what it waited
 * for (`what`; a function is called at that moment, so the message can show the state it ended in).
 */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string | (() => string), timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/**
 * A "nothing happens" window: lets `ms` pass so that `what` (something that must NOT happen: a
 * watcher woken by someone else's change, a request that must never reach a backend, an expiry
 * that must not come yet) would have had the time to show. Only for such checks, where there is
 * no event to await because the point is its absence; the caller says why the length suffices.
 */
export async function negativeWindow(ms: number, what: string): Promise<void> {
  void what;
  await sleep(ms);
}

/** Waits until `agent` has more parked blocking queries (catalog, health, KV) than `before`: a watch sent just now is waiting. */
export async function waitParked(agent: RunningAgent, before: number, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => agent.view.waiterCount() > before, `${what} to park at the agent (blocking queries: ${before} before)`, timeoutMs, 5);
}

let barrierSeq = 0;

/**
 * A write barrier through the agent's API: resolves once every store write the agent started before
 * the call has committed and its view shows it. Both stores commit in the order writes are started
 * (the embedded one queues them; an etcd agent's own changes wait until its watch delivers them), so
 * a write started synchronously by, say, a timer that just fired is in the view after this. It
 * writes and deletes a scratch key (`_barrier/…`), so the index moves by two.
 */
export async function writeBarrier(url: string): Promise<void> {
  const key = `/v1/kv/_barrier/${process.pid}-${++barrierSeq}`;
  const put = await http(url, 'PUT', key, 'x');
  const del = await http(url, 'DELETE', key);
  if (put.status !== 200 || del.status !== 200) throw new Error(`write barrier at ${url}: PUT ${put.status} ${put.text}, DELETE ${del.status} ${del.text}`);
}
