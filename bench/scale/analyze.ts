// Wake analysis of bench:scale's watch phase: matches each watcher answer to the churn writes it reports (by commit
// index: a write to the watcher's service with index in (asked, answered]) and derives the latencies, the spurious
// wakes (answered before the wait ran out without such a write) and the missed ones (a write to a watched service
// that some watcher of it never answered within the window).
import { readFileSync } from 'node:fs';
import { WAKE_FIELDS, WRITE_FIELDS } from './worker.js';

export interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function stats(xs: number[]): Stats {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const q = (p: number): number => (s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] as number));
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.length === 0 ? NaN : (s[s.length - 1] as number) };
}

export interface Write {
  inst: number;
  svc: number;
  send: number;
  ack: number;
  status: number;
  index: number;
}

export function readWrites(file: string): Write[] {
  const b = readFileSync(file);
  const f = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
  const out: Write[] = [];
  for (let i = 0; i + WRITE_FIELDS <= f.length; i += WRITE_FIELDS) {
    out.push({ inst: f[i] as number, svc: f[i + 1] as number, send: f[i + 2] as number, ack: f[i + 3] as number, status: f[i + 4] as number, index: f[i + 5] as number });
  }
  return out;
}

export interface Wake {
  watcher: number;
  svc: number;
  asked: number;
  got: number;
  at: number;
  indexTime: number;
  status: number;
}

export function readWakes(file: string): Wake[] {
  const b = readFileSync(file);
  const f = new Float64Array(b.buffer, b.byteOffset, b.length / 8);
  const out: Wake[] = [];
  for (let i = 0; i + WAKE_FIELDS <= f.length; i += WAKE_FIELDS) {
    out.push({ watcher: f[i] as number, svc: f[i + 1] as number, asked: f[i + 2] as number, got: f[i + 3] as number, at: f[i + 4] as number, indexTime: f[i + 5] as number, status: f[i + 6] as number });
  }
  return out;
}

export interface GroupResult {
  group: string;
  watchers: number;
  /** Answers after the first read. */
  answers: number;
  /** Latency (ms) from the send of the earliest write each answer reports (upper bound of "from commit"). */
  fromSend: Stats;
  /** From that write's acknowledgement at the writer (a lower bound when the writer is answered first). */
  fromAck: Stats;
  /** From the agent's X-Switchyard-Index-Time when it sends one (ms resolution), else n = 0. */
  fromIndexTime: Stats;
  spurious: number;
  /** Answers that skipped writes (reported more than one write to the service at once). */
  coalesced: number;
  /** (write, watcher of its service) pairs with no answer reporting the write. */
  missed: number;
  expected: number;
}

/**
 * `groupOf(svc)` names the group a service's watchers belong to (e.g. "hot", "spread"); writes to unwatched services
 * count nowhere. Only writes acknowledged with a commit index take part; answers outside [from, to] are ignored.
 */
export function analyze(writes: Write[], wakes: Wake[], groupOf: (svc: number) => string | undefined, window: { from: number; to: number }): GroupResult[] {
  const bySvc = new Map<number, Write[]>();
  for (const w of writes) {
    if (!(w.index > 0) || w.status !== 200) continue;
    let l = bySvc.get(w.svc);
    if (!l) bySvc.set(w.svc, (l = []));
    l.push(w);
  }
  for (const l of bySvc.values()) l.sort((a, b) => a.index - b.index);
  const watchersOf = new Map<number, Set<number>>();
  const groups = new Map<string, { watchers: Set<number>; answers: number; send: number[]; ack: number[]; it: number[]; spurious: number; coalesced: number; seen: Map<number, Set<number>> }>();
  const g = (name: string) => {
    let x = groups.get(name);
    if (!x) groups.set(name, (x = { watchers: new Set(), answers: 0, send: [], ack: [], it: [], spurious: 0, coalesced: 0, seen: new Map() }));
    return x;
  };
  for (const k of wakes) {
    const name = groupOf(k.svc);
    if (name === undefined) continue;
    const grp = g(name);
    grp.watchers.add(k.watcher);
    let ws = watchersOf.get(k.svc);
    if (!ws) watchersOf.set(k.svc, (ws = new Set()));
    ws.add(k.watcher);
    if (k.asked === 0 || k.at < window.from || k.at > window.to) continue;
    grp.answers++;
    const list = bySvc.get(k.svc) ?? [];
    // Writes this answer reports: index in (asked, got].
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as Write).index <= k.asked) lo = mid + 1;
      else hi = mid;
    }
    const reported: Write[] = [];
    for (let i = lo; i < list.length && (list[i] as Write).index <= k.got; i++) reported.push(list[i] as Write);
    if (reported.length === 0) {
      grp.spurious++;
      continue;
    }
    if (reported.length > 1) grp.coalesced++;
    const first = reported[0] as Write;
    grp.send.push(k.at - first.send);
    grp.ack.push(k.at - first.ack);
    if (Number.isFinite(k.indexTime) && k.indexTime > 0) grp.it.push(k.at - k.indexTime);
    for (const w of reported) {
      let s = grp.seen.get(w.index);
      if (!s) grp.seen.set(w.index, (s = new Set()));
      s.add(k.watcher);
    }
  }
  const out: GroupResult[] = [];
  for (const [name, grp] of groups) {
    let expected = 0;
    let missed = 0;
    for (const [svc, list] of bySvc) {
      if (groupOf(svc) !== name) continue;
      const ws = watchersOf.get(svc)?.size ?? 0;
      for (const w of list) {
        // A write acknowledged too close to the end may legitimately not have reached everyone yet.
        if (w.ack > window.to - 2000) continue;
        expected += ws;
        missed += ws - (grp.seen.get(w.index)?.size ?? 0);
      }
    }
    out.push({
      group: name, watchers: grp.watchers.size, answers: grp.answers, fromSend: stats(grp.send), fromAck: stats(grp.ack), fromIndexTime: stats(grp.it),
      spurious: grp.spurious, coalesced: grp.coalesced, missed, expected,
    });
  }
  return out.sort((a, b) => a.group.localeCompare(b.group));
}
