// Small helpers every benchmark script uses: env settings (numbers and lists), medians, number formatting, finding and
// versioning system binaries, the quiet gate, and running wrk with a JSON-reporting Lua script.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A positive number from the environment, else the default. */
export const envNum = (name: string, dflt: number): number => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

/**
 * A comma-separated list of positive integers from the environment ("64,256"), else the default. A malformed list
 * is an error naming the variable, not a silent fallback: a benchmark must not measure something other than asked.
 */
export const envIntList = (name: string, dflt: readonly number[]): number[] => {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...dflt];
  const items = raw.split(',').map((s) => s.trim());
  const bad = items.filter((s) => !/^[1-9]\d*$/.test(s));
  if (bad.length > 0) throw new Error(`${name}=${raw}: expected a comma-separated list of positive integers (bad: ${bad.map((b) => JSON.stringify(b)).join(', ')})`);
  return [...new Set(items.map(Number))];
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Median of the finite values (NaN when there are none). */
export const median = (xs: readonly number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export const fmt = (v: number | null | undefined, digits = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));

export function findBin(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return null;
}

/** The first non-empty line a command prints (for version strings). */
export function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? '?';
}

/**
 * Waits until processes the harness did not start use fewer than `cores` cores, measured over 1 s
 * by `others` — at most `waitS` per call and `budgetS` over the whole run, so a machine that never
 * goes quiet delays the benchmark boundedly and the report says how busy it was.
 */
export interface QuietGate {
  wait(): Promise<{ waitedS: number; othersCores: number }>;
  /** The whole run's waiting budget is spent: later runs no longer wait (the report says so). */
  exhausted(): boolean;
}

export function makeQuietGate<S>(sample: () => S, othersCores: (a: S, b: S) => number, o: { cores: number; waitS: number; budgetS: number }): QuietGate {
  const others = async (): Promise<number> => {
    const a = sample();
    await sleep(1000);
    return othersCores(a, sample());
  };
  let budget = o.budgetS;
  return {
    async wait() {
      const t0 = performance.now();
      let busy = NaN;
      for (let i = 0; i < o.waitS; i++) {
        busy = await others();
        if (busy < o.cores) break;
        const waited = (performance.now() - t0) / 1000 - 1;
        if (waited >= o.waitS - 1 || waited >= budget) break;
      }
      const waitedS = Math.max(0, (performance.now() - t0) / 1000 - 1);
      budget -= waitedS;
      return { waitedS, othersCores: busy };
    },
    exhausted: () => budget <= 0,
  };
}

const wrkChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of wrkChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Runs wrk (one thread) with a Lua script whose done() prints one JSON line, and parses that line. */
export function runWrkJson<T>(url: string, o: { seconds: number; conns: number; script: string; latency?: boolean; env?: NodeJS.ProcessEnv }): Promise<T> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${o.conns}`, `-d${o.seconds}s`, ...(o.latency ? ['--latency'] : []), '-s', o.script, url];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(o.env ?? {}) } });
    wrkChildren.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 20) * 1000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(killer);
      wrkChildren.delete(child);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) return reject(new Error(`wrk ${url} failed (${code}): ${err}${out.slice(-500)}`));
      resolve(JSON.parse(last) as T);
    });
  });
}

/** The error counters every wrk report (bench/conf/*.lua) carries. */
export interface WrkErrorCounts {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  non2xx: number;
}

/** What bench/conf/wrk-report.lua prints: throughput, latency percentiles and errors of one run. */
export interface WrkReport extends WrkErrorCounts {
  requests: number;
  seconds: number;
  rps: number;
  mean_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
}

export const wrkErrors = (w: WrkErrorCounts): number => w.connect + w.read + w.write + w.timeout + w.non2xx;
