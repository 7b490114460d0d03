// CPU accounting from /proc for the benchmarks: ticks of process trees (a process plus all its descendants, all
// threads, and the children it has reaped), of this process's reaped children (wrk), and of the whole box.
// Also remembers the descendants of the processes we started (nginx workers, cluster workers) so they can be
// killed by PID if the harness dies before stopping their parent gracefully.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

interface Stat {
  ppid: number;
  /** utime + stime + cutime + cstime: a child's time moves into its parent's c-fields when reaped, so sums over a tree are conserved. */
  ticks: number;
  /** start time in ticks since boot: (pid, start) identifies a process across PID reuse. */
  start: number;
}

function parseStat(text: string): Stat | null {
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const f = (n: number): number => Number(rest[n - 3]);
  const ticks = f(14) + f(15) + f(16) + f(17);
  return Number.isFinite(ticks) ? { ppid: f(4), ticks, start: f(22) } : null;
}

export function readStat(pid: number | 'self'): Stat | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** One scan of /proc: every process's stat. */
export function snapshot(): Map<number, Stat> {
  const all = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.set(Number(name), s);
  }
  return all;
}

/** The PIDs of root and all its descendants in a snapshot. */
export function treePids(snap: Map<number, Stat>, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, s] of snap) {
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  const out: number[] = [];
  const stack = snap.has(root) ? [root] : [];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function treeTicks(snap: Map<number, Stat>, root: number): number {
  let t = 0;
  for (const pid of treePids(snap, root)) t += snap.get(pid)?.ticks ?? 0;
  return t;
}

/**
 * CPU seconds between two snapshots of a process itself and of each of its direct children (their whole trees),
 * children in PID order: how a node:cluster primary and its workers share the work.
 */
export function splitCpu(a: Map<number, Stat>, b: Map<number, Stat>, root: number): { selfS: number; childrenS: { pid: number; s: number }[] } {
  const own = (snap: Map<number, Stat>): number => snap.get(root)?.ticks ?? 0;
  const children = [...b].filter(([, s]) => s.ppid === root).map(([pid]) => pid).sort((x, y) => x - y);
  return {
    selfS: (own(b) - own(a)) / CLK_TCK,
    // A child that appeared during the window starts from 0 ticks.
    childrenS: children.map((pid) => ({ pid, s: (treeTicks(b, pid) - (a.get(pid)?.start === b.get(pid)?.start ? treeTicks(a, pid) : 0)) / CLK_TCK })),
  };
}

/** Whole-box CPU from /proc/stat, in ticks summed over all CPUs. */
export function boxTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

// Descendants of our processes, remembered so that they can be killed by PID on an abnormal exit.
const tracked = new Map<number, number>();
export function trackDescendants(roots: readonly number[], snap: Map<number, Stat> = snapshot()): void {
  for (const root of roots) for (const pid of treePids(snap, root)) if (pid !== root) tracked.set(pid, snap.get(pid)?.start ?? -1);
}
const stillOurs = (pid: number, start: number): boolean => readStat(pid)?.start === start;
function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
/** SIGKILLs the remembered descendants that still exist (same PID and start time). Returns "pid comm" of each. */
export function killTrackedLeftoversNow(): string[] {
  const killed: string[] = [];
  for (const [pid, start] of tracked) {
    if (stillOurs(pid, start)) {
      const name = comm(pid);
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(`${pid} ${name}`);
      } catch {
        // already gone
      }
    }
    tracked.delete(pid);
  }
  return killed;
}
/** Waits (bounded) for the remembered descendants to exit on their own, then kills what is left. */
export async function killTrackedLeftovers(graceMs: number): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && [...tracked].some(([pid, start]) => stillOurs(pid, start))) await new Promise((r) => setTimeout(r, 50));
  return killTrackedLeftoversNow();
}
process.on('exit', () => {
  killTrackedLeftoversNow();
});

/** A point in time for CPU accounting: every process's ticks and the whole box's. */
export interface CpuSample {
  at: number;
  snap: Map<number, Stat>;
  box: { busy: number; total: number };
}

export function cpuSample(): CpuSample {
  return { at: performance.now(), snap: snapshot(), box: boxTicks() };
}

/**
 * Cores used between two samples by the whole box, by us (`ourTicks`: the ticks of everything the
 * harness counts as its own) and by everyone else.
 */
export function coresBetween(a: CpuSample, b: CpuSample, ourTicks: number, ncpu: number): { box: number; ours: number; others: number } {
  const wall = (b.at - a.at) / 1000;
  const box = ((b.box.busy - a.box.busy) / Math.max(1, b.box.total - a.box.total)) * ncpu;
  const ours = ourTicks / CLK_TCK / wall;
  return { box, ours, others: Math.max(0, box - ours) };
}
