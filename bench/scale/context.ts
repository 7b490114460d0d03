// What every bench:scale phase gets: the settings (env), a temp root, the report (markdown lines and raw jsonl rows),
// and state handed from one phase to the next (the loaded data dir, a running agent). A phase is one module exporting
// a Phase; bench/scale.ts lists them in order, so a new part (the balancer's) is one more module and one more entry.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { envIntList, envNum } from '../lib/util.js';
import type { AgentProc } from './procs.js';
import type { Shape } from './shape.js';

export interface Settings {
  readonly shape: Shape;
  /** Load workers and connections per worker. */
  readonly loadWorkers: number;
  readonly loadConns: number;
  /** Hot-service watcher counts to run the watch phase with, one run each. */
  readonly hot: number[];
  readonly spread: number;
  /** Watchers per watched spread service. */
  readonly perSpreadService: number;
  readonly churnRate: number;
  readonly churnSeconds: number;
  /** Writes per second to the hot service (the rest of the churn goes to spread and unwatched services). */
  readonly hotRate: number;
  /** Largest number of connections one agent process may hold (its open-file limit, less a margin). */
  readonly maxConnsPerAgent: number;
  readonly watchersPerWorker: number;
  readonly gzip: boolean;
  readonly etcdInstances: number;
  readonly etcdSeconds: number;
  readonly etcdConns: number;
  /** Restarts timed on copies of the crashed data dir (the last one is kept running for later phases). */
  readonly restarts: number;
}

export function settings(): Settings {
  const instances = Math.round(envNum('BENCH_INSTANCES', 1_000_000));
  const services = Math.round(envNum('BENCH_SERVICES', Math.max(1, Math.round(instances / 20))));
  return {
    shape: { instances, services, perNode: Math.round(envNum('BENCH_PER_NODE', 100)) },
    loadWorkers: Math.round(envNum('BENCH_LOAD_WORKERS', 2)),
    loadConns: Math.round(envNum('BENCH_LOAD_CONNS', 32)),
    hot: envIntList('BENCH_HOT', [1000, 10_000]),
    spread: Math.round(envNum('BENCH_SPREAD', 20_000)),
    perSpreadService: Math.round(envNum('BENCH_PER_SPREAD_SERVICE', 10)),
    churnRate: envNum('BENCH_CHURN_RATE', 200),
    churnSeconds: envNum('BENCH_CHURN_SECONDS', 60),
    hotRate: envNum('BENCH_HOT_RATE', 2),
    maxConnsPerAgent: Math.round(envNum('BENCH_MAX_CONNS_PER_AGENT', 0)) || openFileLimit() - 500,
    watchersPerWorker: Math.round(envNum('BENCH_WATCHERS_PER_WORKER', 5000)),
    gzip: (process.env.BENCH_GZIP ?? '1') !== '0',
    etcdInstances: Math.round(envNum('BENCH_ETCD_INSTANCES', 100_000)),
    etcdSeconds: envNum('BENCH_ETCD_SECONDS', 10),
    etcdConns: Math.round(envNum('BENCH_ETCD_CONNS', 64)),
    restarts: Math.max(1, Math.round(envNum('BENCH_RESTARTS', 3))),
  };
}

/** The soft open-file limit children inherit (from /proc/self/limits; 1024 if unreadable). */
export function openFileLimit(): number {
  try {
    const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

export interface ScaleContext {
  readonly settings: Settings;
  readonly tmp: string;
  /** Appends a markdown line to bench/results/scale.md (and prints it). */
  line(s?: string): void;
  /** Appends one raw row to bench/results/scale-runs.jsonl. */
  record(row: Record<string, unknown>): void;
  /** Loaded data dir of the embedded agent (set by the load phase) and the agent left running on it. */
  loadedDir?: string;
  loadedInstances?: number;
  agent?: AgentProc;
}

export interface Phase {
  readonly name: string;
  run(ctx: ScaleContext): Promise<void>;
}

/** One line on the machine and its load, for the report's head. */
export function machineLine(): string {
  const la = loadavg().map((x) => x.toFixed(2)).join(' / ');
  return `${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}; load average ${la} (1/5/15 min) at the start`;
}
