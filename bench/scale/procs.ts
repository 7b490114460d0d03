// Processes of bench:scale: agents (the built CLI, on a data dir the harness keeps across restarts), load workers
// (forked with IPC, see worker.ts), and /proc readings of their CPU time and memory. Every process is started here,
// remembered, and stopped by PID (SIGKILL on an abnormal exit of the harness).
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort, startOwned, stopOwned, switchyardArgsWith } from '../lib/proc.js';
import { CLK_TCK, readStat } from '../lib/procfs.js';
import type { WorkerCommand, WorkerReport } from './worker.js';

/** The agent binary: dist/ of this tree, or SY_MAIN (e.g. a build of an older commit, for before/after runs). */
export const SY_MAIN = process.env.SY_MAIN ?? 'dist/cli/main.js';

/**
 * CPU placement (taskset lists such as "0" or "0-1"): BENCH_AGENT_CPUS for agents, BENCH_LOAD_CPUS for the load
 * workers. Unset (the default) shares every core, as the recorded runs did; "0" / "1" gives the agent a core of its
 * own, as when its clients run on other machines.
 */
export const AGENT_CPUS = process.env.BENCH_AGENT_CPUS;
export const LOAD_CPUS = process.env.BENCH_LOAD_CPUS;

/** Pins every thread of a running process (threads it starts later inherit it). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export interface AgentProc {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Unix ms when it was spawned and when it first answered /v1/status/leader. */
  readonly spawnedAt: number;
  readonly servingAt: number;
}

/** Starts an agent and resolves once it answers (bounded: `timeoutMs`). */
export async function startAgent(o: { name: string; dataDir: string; store?: string; sync?: 'always' | 'none'; timeoutMs?: number; extra?: string[] }): Promise<AgentProc> {
  const port = await freePort();
  const args = ['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', o.dataDir, '--node', o.name, '--log-level', 'warn'];
  if (o.store) args.push('--store', o.store);
  if (o.sync) args.push('--sync', o.sync);
  args.push(...(o.extra ?? []));
  const spawnedAt = Date.now();
  // Large heaps: a million instances are past Node's default old-space limit on some machines.
  // BENCH_AGENT_NODE_ARGS: extra node flags for the agent (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof to profile a phase).
  const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const nodeCmd = [process.execPath, ...switchyardArgsWith(['--max-old-space-size=6144', ...nodeArgs], SY_MAIN, ...args)];
  // taskset execs node in place: the PID is the agent's, and every thread it starts is on AGENT_CPUS.
  const child = AGENT_CPUS === undefined ? startOwned(nodeCmd[0] as string, nodeCmd.slice(1)) : startOwned('taskset', ['-c', AGENT_CPUS, ...nodeCmd]);
  const url = `http://127.0.0.1:${port}`;
  const deadline = spawnedAt + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`agent ${o.name} exited with ${child.exitCode} while starting`);
    try {
      const r = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopOwned(child);
      throw new Error(`agent ${o.name} did not answer within ${o.timeoutMs ?? 120_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { name: o.name, port, url, child, pid: child.pid as number, spawnedAt, servingAt: Date.now() };
}

export async function stopAgent(a: AgentProc, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  if (signal === 'SIGKILL') {
    if (a.child.exitCode !== null || a.child.signalCode !== null) return;
    const gone = new Promise((r) => a.child.once('exit', r));
    a.child.kill('SIGKILL');
    await gone;
    return;
  }
  await stopOwned(a.child);
}

/** CPU seconds (user + system, all threads) a process has used so far; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  const s = readStat(pid);
  return s ? s.ticks / CLK_TCK : NaN;
}

/** VmRSS and VmHWM (peak) of a process, MiB. */
export function memory(pid: number): { rssMiB: number; peakMiB: number } {
  try {
    const t = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(t)?.[1] ?? NaN);
    return { rssMiB: kb('VmRSS') / 1024, peakMiB: kb('VmHWM') / 1024 };
  } catch {
    return { rssMiB: NaN, peakMiB: NaN };
  }
}

/** Samples a process's CPU use and RSS every `everyMs` until stopped; returns the mean cores and the max RSS seen. */
export function sampler(pid: number, everyMs = 500): { stop(): { cores: number; cpuS: number; maxRssMiB: number; seconds: number } } {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  let maxRss = memory(pid).rssMiB;
  const timer = setInterval(() => {
    maxRss = Math.max(maxRss, memory(pid).rssMiB);
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      maxRss = Math.max(maxRss, memory(pid).rssMiB);
      const seconds = (performance.now() - t0) / 1000;
      const cpuS = cpuSeconds(pid) - c0;
      return { cores: cpuS / seconds, cpuS, maxRssMiB: maxRss, seconds };
    },
  };
}

export interface Worker {
  readonly pid: number;
  send(c: WorkerCommand): void;
  /** The next report of `type` (rejects if the worker exits first or `timeoutMs` passes). */
  next<T extends WorkerReport['type']>(type: T, timeoutMs: number): Promise<Extract<WorkerReport, { type: T }>>;
  on(type: 'progress', fn: (m: Extract<WorkerReport, { type: 'progress' }>) => void): void;
  stop(): Promise<void>;
}

const workers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
});

export function startWorker(): Worker {
  const child = fork(new URL('./worker.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  workers.add(child);
  child.on('exit', () => workers.delete(child));
  if (LOAD_CPUS !== undefined) pin(child.pid as number, LOAD_CPUS);
  const progress: ((m: Extract<WorkerReport, { type: 'progress' }>) => void)[] = [];
  const waiters: { type: string; resolve: (m: WorkerReport) => void }[] = [];
  child.on('message', (m: WorkerReport) => {
    if (m.type === 'progress') for (const fn of progress) fn(m);
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
  });
  return {
    pid: child.pid as number,
    send: (c) => void child.send(c),
    next(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${child.pid}: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
        const onExit = (code: number | null): void => {
          clearTimeout(timer);
          reject(new Error(`worker ${child.pid} exited (${code}) before '${type}'`));
        };
        child.once('exit', onExit);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(m as never);
          },
        });
      });
    },
    on: (_type, fn) => void progress.push(fn),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.disconnect();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    },
  };
}

/** Text of an agent's /metrics. */
export async function metricsText(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(30_000) });
  return r.text();
}

/** Sum of every sample of a metric (over label sets) in a Prometheus text. */
export function metricValue(text: string, name: string): number {
  let sum = 0;
  let seen = false;
  for (const l of text.split('\n')) {
    if (!l.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(l.trim());
    if (m && m[1] === name) {
      sum += Number(m[3]);
      seen = true;
    }
  }
  return seen ? sum : NaN;
}

