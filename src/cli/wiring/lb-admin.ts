/** The balancer's admin endpoints: /metrics (a primary's summed with its workers'), /debug/runtime, /routes, /health. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry as PromRegistry } from 'prom-client';
import { AggregatorRegistry } from 'prom-client';
import type { RuntimeReport } from '../../core/runtime-stats.js';
import type { HostCheck } from '../../core/host-guard.js';
import type { UpstreamStates } from '../../balancer/index.js';
import type { Source } from '../../discovery/types.js';
import type { SnapshotStore } from '../../routing/snapshot-store.js';

/** A primary's view of its workers: their metrics and runtime reports join its own on the admin endpoints. */
export interface WorkerGather {
  metrics(): Promise<Awaited<ReturnType<PromRegistry['getMetricsAsJSON']>>[]>;
  runtime(reset: boolean): Promise<RuntimeReport[]>;
}

export interface AdminDeps {
  readonly metrics: PromRegistry;
  readonly snapshots: SnapshotStore;
  readonly states: UpstreamStates;
  readonly source: Source | undefined;
  readonly workers: WorkerGather | undefined;
  /** Tables serve requests in this process (the last change's way through them is reported here). */
  readonly serving: boolean;
  runtime(reset: boolean): RuntimeReport;
  /** Refuses requests by their Host: an admin address on loopback answers no foreign name (DNS rebinding). */
  readonly hostCheck?: HostCheck | undefined;
}

export function adminServer(d: AdminDeps): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const badHost = d.hostCheck?.(req.headers.host);
    if (badHost !== undefined) {
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end(`${badHost}\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      void metricsText(d).then((t) => res.writeHead(200, { 'Content-Type': d.metrics.contentType }).end(t), (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics could not be collected: ${err instanceof Error ? err.message : String(err)}\n`);
      });
    } else if (path === '/debug/runtime') {
      // A benchmark's attribution: ?reset=1 starts a new window after reporting this one.
      const reset = /[?&]reset=1\b/.test(req.url ?? '');
      void (d.workers?.runtime(reset) ?? Promise.resolve([])).then((w) => {
        const body = { self: d.runtime(reset), workers: w };
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
      }, (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`workers did not report: ${err instanceof Error ? err.message : String(err)}\n`);
      });
    } else if (path === '/routes') {
      const snap = d.snapshots.current;
      const body = {
        ...(snap ? snap.dump(d.states) : { version: 0, routes: [], groups: [], errors: [] }),
        registry: d.source?.status() ?? null, guard: guardView(d.snapshots), lastChange: lastChangeView(d),
      };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
    } else if (path === '/health') {
      const ok = d.snapshots.current !== undefined;
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'no routing table yet\n');
    } else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics, /routes, /health or /debug/runtime\n');
  });
}

/** The mass-loss guard for /routes: its settings and the instances it holds (null when off). */
function guardView(snapshots: SnapshotStore): Record<string, unknown> | null {
  const g = snapshots.guardState();
  if (!g) return null;
  return {
    maxDropPercent: g.maxDropPercent, holdMs: g.holdMs,
    held: g.held.map((h) => ({ ...h, since: new Date(h.since).toISOString(), until: new Date(h.until).toISOString() })),
  };
}

/** The last registry change's way through this process's table (null before the first change; with workers it is theirs, see /metrics). */
function lastChangeView(d: AdminDeps): Record<string, unknown> | null {
  const c = d.snapshots.lastChange;
  if (!c || !d.serving) return null;
  return { version: c.version, committedAt: new Date(c.committedAt).toISOString(), clock: c.clock, swapSeconds: c.swapSeconds, firstRequestSeconds: c.firstRequestSeconds ?? null };
}

/**
 * This process's metrics, merged with its workers' when this is a primary: one family per name
 * (Prometheus refuses a second HELP/TYPE for a name), counters summed, gauges by their aggregator.
 */
async function metricsText(d: AdminDeps): Promise<string> {
  if (!d.workers) return d.metrics.metrics();
  const [own, replies] = await Promise.all([d.metrics.getMetricsAsJSON(), d.workers.metrics()]);
  return AggregatorRegistry.aggregate([own, ...replies]).metrics();
}
