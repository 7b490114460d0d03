/**
 * `lb --workers N`: a primary that owns the single registry watch and the admin endpoints, and N
 * worker processes that proxy on the shared listen port. The primary sends every new ServiceSet to
 * the workers and gathers their metrics and runtime reports for /metrics and /debug/runtime.
 *
 * Accepts are distributed by the kernel (cluster.SCHED_NONE: every worker accepts on the shared
 * listening socket) unless SWITCHYARD_LB_SCHED=rr asks for node:cluster's round-robin hand-off,
 * where the primary accepts and passes each connection to a worker over IPC. bench:lb measures both:
 * the hand-off puts the primary and an IPC message on every new connection's path, which is what a
 * connection burst waits behind (see bench/results/lb.md).
 */
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RuntimeReport } from '../../core/runtime-stats.js';
import type { LbConfig } from '../../config/lb.js';
import type { ChangeStamp, ServiceSet, Source } from '../../discovery/types.js';
import { startLb } from './lb.js';
import type { RunningLb, WorkerGather } from './lb.js';

export type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Msg =
  | { type: 'set'; set: { catalog: [string, string[]][]; instances: [string, unknown[]][]; change?: ChangeStamp } }
  | { type: 'ready' }
  | { type: 'ask'; id: number; what: 'metrics' | 'runtime'; reset?: boolean }
  | { type: 'reply'; id: number; data: unknown };

// The change stamp travels along: the workers' tables are the ones that serve, so they measure change latency.
const wire = (s: ServiceSet): Msg => ({ type: 'set', set: { catalog: [...s.catalog] as [string, string[]][], instances: [...s.instances] as [string, unknown[]][], ...(s.change ? { change: s.change } : {}) } });
const unwire = (m: Extract<Msg, { type: 'set' }>): ServiceSet => ({ catalog: new Map(m.set.catalog), instances: new Map(m.set.instances) as ServiceSet['instances'], ...(m.set.change ? { change: m.set.change } : {}) });

/** Chooses how accepts reach workers; must run before the first fork. */
export function setSchedulingPolicy(): void {
  cluster.schedulingPolicy = process.env.SWITCHYARD_LB_SCHED === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
}

/** A worker process: proxies with the sets the primary sends, answers its questions, exits on SIGTERM. */
export async function runWorker(cfg: LbConfig, logger: Logger, until: (close: () => Promise<void>) => Promise<void>): Promise<void> {
  const lb = await startLb(cfg, logger, { admin: false });
  process.on('message', (m: Msg) => {
    if (m.type === 'set') lb.apply(unwire(m));
    else if (m.type === 'ask') {
      const answer = m.what === 'metrics' ? lb.metrics.getMetricsAsJSON() : Promise.resolve(lb.runtime(m.reset === true));
      void answer.then((data) => process.send?.({ type: 'reply', id: m.id, data } satisfies Msg));
    }
  });
  process.send?.({ type: 'ready' } satisfies Msg);
  await until(() => lb.close());
}

export interface Primary {
  readonly admin: RunningLb;
  /** Stops the workers (they drain), then the primary's own parts. */
  close(): Promise<void>;
}

/** The primary: forks the workers (re-forking any that die), follows the registry, serves admin. */
export async function startPrimary(cfg: LbConfig, logger: Logger, source: Source): Promise<Primary> {
  let last: Msg | undefined;
  const workers = new Set<Worker>();
  let stopping = false;
  let askId = 0;
  const fork = (): void => {
    const w = cluster.fork();
    workers.add(w);
    w.on('message', (m: Msg) => {
      if (m.type === 'ready' && last) w.send(last);
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
  // The primary does not proxy: its own listener is on a throwaway port.
  const admin = await startLb({ ...cfg, listen: '127.0.0.1:0' }, logger, { source, workers: gather });
  admin.snapshots.onSwap((_n, _p, set) => {
    last = wire(set);
    for (const w of workers) if (w.isConnected()) w.send(last);
  });
  return {
    admin,
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
