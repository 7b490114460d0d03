/**
 * `lb --workers N`: a primary that owns the single registry watch and the admin endpoints, and N
 * worker processes that proxy on the shared listen port. The primary sends the workers every new
 * ServiceSet (whole to a new worker, then as the services each swap changed) and gathers their metrics and runtime reports for /metrics and /debug/runtime.
 *
 * Accepts are distributed by the kernel (cluster.SCHED_NONE: every worker accepts on the shared
 * listening socket) unless SWITCHYARD_LB_SCHED=rr asks for node:cluster's round-robin hand-off,
 * where the primary accepts and passes each connection to a worker over IPC. bench:lb measures both:
 * the hand-off puts the primary and an IPC message on every new connection's path, and node:cluster
 * waits for a worker's reply before handing it the next connection, so a burst reaches a busy worker
 * one connection per turn of its loop (c256: p99.9 ~220 ms while no request took over 25–50 ms
 * inside; bench/results/lb.md). Under the kernel's scheduling each worker takes bursts with its
 * own accept batch (accept-batch.ts), which is why that stays the default.
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RuntimeReport } from '../../core/runtime-stats.js';
import type { ChangeStamp, Instance, ServiceSet, Source } from '../../discovery/types.js';
import { PersistentMap } from '../../core/persistent-map.js';
import { reloadCertificates, startLb } from './lb.js';
import type { RunningLb, WorkerGather } from './lb.js';
import { RouteReloader } from './lb-reload.js';
import type { ReadConfig, RouteReloaderOptions } from './lb-reload.js';
import { deferredReload } from './signals.js';
import type { CaughtSignals } from './signals.js';

export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
/** A table's set on the wire: whole (`base` absent), or the services changed since set `base` (null: gone). */
interface WireSet {
  readonly seq: number;
  readonly base?: number;
  readonly catalog: [string, readonly string[] | null][];
  readonly instances: [string, readonly Instance[] | null][];
  readonly change?: ChangeStamp;
}
type Msg =
  | { type: 'set'; set: WireSet }
  | { type: 'ready' }
  | { type: 'ask'; id: number; what: 'metrics' | 'runtime'; reset?: boolean }
  | { type: 'reply'; id: number; data: unknown }
  | { type: 'reload-tls' }
  | { type: 'reload-routes' };

// The change stamp travels along: the workers' tables are the ones that serve, so they measure change latency.
export function wire(s: ServiceSet, seq: number, base?: number): Msg {
  const change = s.change ? { change: s.change } : {};
  if (base === undefined || s.changed === undefined) return { type: 'set', set: { seq, catalog: [...s.catalog], instances: [...s.instances], ...change } };
  const names = [...s.changed];
  return {
    type: 'set',
    set: { seq, base, catalog: names.map((n) => [n, s.catalog.get(n) ?? null]), instances: names.map((n) => [n, s.instances.get(n) ?? null]), ...change },
  };
}

/** A worker's copy of its primary's set, kept in persistent maps so a delta costs what it carries. */
export class WorkerSet {
  #seq = -1;
  #catalog = PersistentMap.empty<string, readonly string[]>();
  #instances = PersistentMap.empty<string, readonly Instance[]>();

  /** The set to apply, or undefined when `w` is a delta on a set this worker does not have (ask for a whole one). */
  take(w: WireSet): ServiceSet | undefined {
    const change = w.change ? { change: w.change } : {};
    if (w.base === undefined) {
      this.#seq = w.seq;
      this.#catalog = PersistentMap.of(w.catalog.filter((e): e is [string, string[]] => e[1] !== null));
      this.#instances = PersistentMap.of(w.instances.filter((e): e is [string, Instance[]] => e[1] !== null));
      return { catalog: this.#catalog, instances: this.#instances, ...change };
    }
    if (w.base !== this.#seq) return undefined;
    this.#seq = w.seq;
    this.#catalog = this.#catalog.update(w.catalog.map(([n, v]) => [n, v ?? undefined]));
    this.#instances = this.#instances.update(w.instances.map(([n, v]) => [n, v ?? undefined]));
    return { catalog: this.#catalog, instances: this.#instances, changed: new Set(w.catalog.map(([n]) => n)), ...change };
  }
}

/** Chooses how accepts reach workers; must run before the first fork. */
export function setSchedulingPolicy(): void {
  cluster.schedulingPolicy = process.env.SWITCHYARD_LB_SCHED === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
}

/** A worker process: proxies with the sets the primary sends, answers its questions, exits on SIGTERM. */
export async function runWorker(current: ReadConfig, logger: Logger, signals: CaughtSignals, read: () => ReadConfig): Promise<void> {
  const { cfg } = current;
  const mine = new WorkerSet();
  // The primary's word for SIGHUP; one that comes while this worker starts is done once it has started.
  const reload = deferredReload(logger, 'TLS reload');
  // New routes the primary took: this worker reads the same file again (routes do not travel as messages).
  const reloadRoutes = deferredReload(logger, 'route reload');
  process.on('message', (m: Msg) => {
    if (m.type === 'reload-tls') reload.request();
    else if (m.type === 'reload-routes') reloadRoutes.request();
  });
  // Sets are taken from the start: the worker opens its listeners once the first one is a table.
  const lb = await startLb(cfg, logger, {
    admin: false,
    stop: signals.stopped,
    feed: (apply) => {
      process.on('message', (m: Msg) => {
        if (m.type !== 'set') return;
        const set = mine.take(m.set);
        // A delta on a set this worker missed (sent before it was ready): the primary answers 'ready' with the whole set.
        if (set === undefined) process.send?.({ type: 'ready' } satisfies Msg);
        else apply(set);
      });
      process.send?.({ type: 'ready' } satisfies Msg);
    },
  });
  reload.set(() => reloadCertificates(lb, logger));
  const routes = new RouteReloader({ current, read, logger, apply: (specs) => lb.setRoutes(specs) });
  reloadRoutes.set(() => void routes.reload());
  process.on('message', (m: Msg) => {
    if (m.type !== 'ask') return;
    const answer = m.what === 'metrics' ? lb.metrics.getMetricsAsJSON() : Promise.resolve(lb.runtime(m.reset === true));
    void answer.then((data) => process.send?.({ type: 'reply', id: m.id, data } satisfies Msg));
  });
  await signals.until(() => lb.close());
}

export interface Primary {
  readonly admin: RunningLb;
  /** Every worker reads its TLS certificates again (SIGHUP). */
  reloadTls(): void;
  /** The routes of the configuration, read again (SIGHUP): the primary's table, then every worker's. */
  reloadRoutes(): Promise<void>;
  /** Stops the workers (they drain), then the primary's own parts. */
  close(): Promise<void>;
}

/** The primary: forks the workers (re-forking any that die), follows the registry, serves admin. */
export async function startPrimary(running: ReadConfig, logger: Logger, source: Source, routes: Omit<RouteReloaderOptions, 'current' | 'logger' | 'apply'>): Promise<Primary> {
  const { cfg } = running;
  /** The set of the primary's current table and its sequence number; new (and resyncing) workers get it whole. */
  let current: ServiceSet | undefined;
  let seq = 0;
  const workers = new Set<Worker>();
  let stopping = false;
  let askId = 0;
  const fork = (): void => {
    const w = cluster.fork();
    workers.add(w);
    w.on('message', (m: Msg) => {
      if (m.type === 'ready' && current) w.send(wire(current, seq));
    });
    w.on('exit', (code, signal) => {
      workers.delete(w);
      if (!stopping) {
        logger.error({ worker: w.id, code, signal }, 'worker died: starting a new one');
        fork();
      }
    });
  };
  for (let i = 0; i < cfg.workers; i++) fork();

  /** Asks every worker; a worker that does not answer within 2 s is left out. */
  function ask<T>(what: 'metrics' | 'runtime', reset = false): Promise<T[]> {
    const id = ++askId;
    return Promise.all([...workers].map((w) => new Promise<T | undefined>((resolve) => {
      const t = setTimeout(() => {
        w.off('message', on);
        resolve(undefined);
      }, 2000);
      function on(m: Msg): void {
        if (m.type === 'reply' && m.id === id) {
          clearTimeout(t);
          w.off('message', on);
          resolve(m.data as T);
        }
      }
      w.on('message', on);
      w.send({ type: 'ask', id, what, reset } satisfies Msg);
    }))).then((l) => l.filter((x): x is Awaited<T> => x !== undefined));
  }
  const gather: WorkerGather = {
    metrics: () => ask<MetricJson>('metrics').then((l) => l.filter((r) => r.length > 0)),
    runtime: (reset) => ask<RuntimeReport>('runtime', reset),
  };
  // The primary does not proxy: its own listener is on a throwaway port, with nothing to accept quickly,
  // and it opens none of the TLS, TCP and UDP listeners. They are the workers' (the cluster module shares
  // each socket among them), and a primary that bound them first made every worker's listen fail with
  // EADDRINUSE: workers exited and were forked again, in a loop, while the primary answered alone.
  const admin = await startLb({ ...cfg, listen: '127.0.0.1:0', acceptBatch: 1, tls: undefined, tcp: [], udp: [] }, logger, { source, workers: gather });
  // Each swap goes out as the services it changed (one service's entry for a change to one service).
  admin.snapshots.onSwap((_n, _p, set) => {
    const msg = wire(set, ++seq, current === undefined ? undefined : seq - 1);
    current = set;
    for (const w of workers) if (w.isConnected()) w.send(msg);
  });
  const reloader = new RouteReloader({ ...routes, current: running, logger, apply: (specs) => admin.setRoutes(specs) });
  return {
    admin,
    reloadTls() {
      for (const w of workers) if (w.isConnected()) w.send({ type: 'reload-tls' } satisfies Msg);
    },
    async reloadRoutes() {
      if (!(await reloader.reload())) return;
      // After the sets the primary sent: the workers' tables have the new services' instances when they rebuild.
      for (const w of workers) if (w.isConnected()) w.send({ type: 'reload-routes' } satisfies Msg);
    },
    async close() {
      stopping = true;
      await Promise.all([...workers].map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.kill('SIGTERM');
      })));
      await admin.close();
    },
  };
}
