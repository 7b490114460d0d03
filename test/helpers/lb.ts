/** Test helpers for the balancer: real backends on port 0, an in-process LB fed by a real agent, and a load loop. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Pool } from 'undici';
import { l4Routes, resolveLbConfig } from '../../src/config/lb.js';
import type { LbConfigInput } from '../../src/config/lb.js';
import { RemoteSource } from '../../src/discovery/remote-source.js';
import { startLb } from '../../src/cli/wiring/lb.js';
import type { RunningLb } from '../../src/cli/wiring/lb.js';
import { followPredicate } from '../../src/discovery/follow.js';
import type { Instance } from '../../src/discovery/types.js';
import { http, waitFor } from './agent.js';

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  hits: number;
  /** Optional handler override (status, delay, echo...). */
  handler?: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

export async function startBackend(name: string): Promise<Backend> {
  const server = createServer();
  const b: Backend = {
    name, port: 0, server, hits: 0,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
  server.on('request', (req, res) => {
    b.hits++;
    if (b.handler) return b.handler(req, res);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Backend': name }).end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (b as { port: number }).port = (server.address() as AddressInfo).port;
  return b;
}

export async function registerBackend(agentUrl: string, service: string, b: Backend, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await http(agentUrl, 'PUT', '/v1/agent/service/register', { Name: service, ID: `${service}-${b.name}`, Address: '127.0.0.1', Port: b.port, ...extra });
  if (r.status !== 200) throw new Error(`register ${b.name}: ${r.status} ${r.text}`);
}

export async function deregisterBackend(agentUrl: string, service: string, b: Backend): Promise<void> {
  await http(agentUrl, 'PUT', `/v1/agent/service/deregister/${service}-${b.name}`);
}

export interface TestLb extends RunningLb {
  readonly url: string;
  readonly adminUrl: string;
}

export async function startTestLb(registry: string, cfg: LbConfigInput = {}): Promise<TestLb> {
  const config = resolveLbConfig(cfg, { listen: cfg.listen ?? '127.0.0.1:0', 'admin-addr': '127.0.0.1:0', registry, 'log-level': 'silent' });
  const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
  const source = new RemoteSource({ address: registry, follow: followPredicate(config.routes, l4Routes(config).map((t) => t.service)), logger, waitMs: 10_000 });
  const lb = await startLb(config, logger, { source });
  return {
    ...lb,
    url: `http://127.0.0.1:${lb.address.port}`,
    adminUrl: `http://127.0.0.1:${lb.adminAddress?.port ?? 0}`,
  };
}

/** A metric of the balancer's registry, summed over the series whose labels include these. */
export async function lbMetric(lb: TestLb, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = lb.metrics.getSingleMetric(name);
  if (m === undefined) return 0;
  let n = 0;
  for (const v of (await m.get()).values) if (Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x)) n += v.value;
  return n;
}

/** Waits until the LB's table has exactly these backends for `service`. */
export async function waitUpstreams(lb: RunningLb, service: string, ports: number[], timeoutMs = 5000): Promise<void> {
  const want = [...ports].sort().join(',');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = new Set<number>();
    for (const g of lb.snapshots.current?.groups.values() ?? []) if (g.service === service) for (const u of g.upstreams) got.add(u.port);
    if ([...got].sort().join(',') === want) return;
    if (Date.now() > deadline) throw new Error(`LB table for ${service} is [${[...got].join(',')}], wanted [${want}]`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface LoadResult {
  sent: number;
  ok: number;
  failed: number;
  statuses: Map<number, number>;
  errors: Map<string, number>;
  byBackend: Map<string, number>;
}

/** A bounded load loop: `concurrency` keep-alive clients until stop() (or maxMs). */
export function load(url: string, opts: { concurrency?: number; path?: string; method?: string; maxMs?: number; headers?: Record<string, string> } = {}): { stop(): Promise<LoadResult>; result: LoadResult } {
  const pool = new Pool(url, { connections: opts.concurrency ?? 8 });
  const result: LoadResult = { sent: 0, ok: 0, failed: 0, statuses: new Map(), errors: new Map(), byBackend: new Map() };
  let running = true;
  const deadline = Date.now() + (opts.maxMs ?? 30_000);
  const loops = Array.from({ length: opts.concurrency ?? 8 }, async () => {
    while (running && Date.now() < deadline) {
      result.sent++;
      try {
        const r = await pool.request({ path: opts.path ?? '/', method: (opts.method ?? 'GET') as 'GET', headers: opts.headers ?? {} });
        const body = await r.body.text();
        result.statuses.set(r.statusCode, (result.statuses.get(r.statusCode) ?? 0) + 1);
        if (r.statusCode === 200) {
          result.ok++;
          result.byBackend.set(body, (result.byBackend.get(body) ?? 0) + 1);
        } else result.failed++;
      } catch (err) {
        result.failed++;
        const k = (err as { code?: string }).code ?? (err as Error).message;
        result.errors.set(k, (result.errors.get(k) ?? 0) + 1);
      }
    }
  });
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      await pool.close();
      return result;
    },
  };
}

/**
 * Waits until a load loop has finished `n` more requests than when called: traffic that spans what
 * the caller just did (a change, a kill), counted in requests rather than in wall-clock time, so a
 * busy machine gets the same amount of evidence as an idle one.
 */
export async function moreRequests(l: { result: LoadResult }, n: number, what: string, timeoutMs = 30_000): Promise<void> {
  const from = l.result.ok + l.result.failed;
  await waitFor(() => l.result.ok + l.result.failed >= from + n, () => `${n} more requests through the balancer ${what} (${describeLoad(l.result)})`, timeoutMs, 10);
}

export function describeLoad(r: LoadResult): string {
  return `sent ${r.sent}, ok ${r.ok}, failed ${r.failed}, statuses ${JSON.stringify([...r.statuses])}, errors ${JSON.stringify([...r.errors])}, by backend ${JSON.stringify([...r.byBackend])}`;
}

/**
 * A balancer with a fixed table and no registry: `services` maps a service name to the ports of its
 * instances on 127.0.0.1 (tags optional). For tests of the data plane itself.
 */
export async function startStaticLb(cfg: LbConfigInput, services: Record<string, { port: number; tags?: string[] }[]>): Promise<TestLb> {
  const config = resolveLbConfig(cfg, { listen: '127.0.0.1:0', 'admin-addr': '127.0.0.1:0', 'log-level': 'silent' });
  const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
  const lb = await startLb(config, logger, {});
  const catalog = new Map<string, string[]>();
  const instances = new Map<string, Instance[]>();
  for (const [service, list] of Object.entries(services)) {
    catalog.set(service, [...new Set(list.flatMap((i) => i.tags ?? []))]);
    instances.set(service, list.map((i, n) => ({
      id: `node/${service}-${n}`, service, node: 'node', address: '127.0.0.1', port: i.port, tags: i.tags ?? [], meta: {},
      weights: { passing: 1, warning: 1 }, status: 'passing' as const,
    })));
  }
  lb.apply({ catalog, instances });
  return { ...lb, url: `http://127.0.0.1:${lb.address.port}`, adminUrl: `http://127.0.0.1:${lb.adminAddress?.port ?? 0}` };
}

/**
 * Whether `tries` GETs of `url` (refused or non-200 answers skipped: a server starting or reloading)
 * answered with exactly the bodies `expected`, each at least once and nothing else.
 */
export async function reachesExactly(url: string, expected: readonly string[], tries = 12): Promise<boolean> {
  const seen = new Set<string>();
  for (let i = 0; i < tries; i++) {
    try {
      const r = await fetch(url);
      if (r.status === 200) seen.add(await r.text());
    } catch {
      // not listening yet, or reloading
    }
  }
  return seen.size === expected.length && expected.every((x) => seen.has(x));
}
