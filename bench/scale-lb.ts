// Balancer at scale: what one registry change costs the balancer as the catalog grows.
//   micro: the routing table's swap for a change to ONE service (SnapshotStore.update with the mass-loss guard on,
//          as `switchyard lb` runs it) at 500, 5,000 and 50,000 routed services (2 instances each, one urlprefix-
//          tag route per service): CPU time and wall time per change, in this process.
//   e2e:   a real `switchyard agent`, Node backends on 8 ports, and `switchyard lb` following N routed services
//          (1 instance each, tag route /sNNNNN) through its registry watches; 200 changes/s for BENCH_CHURN_S
//          seconds, each moving one service's instance to another backend port (catalog/register). Every
//          BENCH_PROBE_EVERY-th change is probed: GET /s<k> through the balancer every 2 ms until the new port
//          answers; change-to-traffic = from just before the write is sent to that answer. Also the balancer's own
//          commit → swap histogram (/metrics), its CPU time and RSS, the agent's CPU time and the load average.
// Writes bench/results/scale-lb.md (and appends the raw run to bench/results/scale-lb-runs.jsonl).
//
// Usage: npm run bench:scale-lb
//   BENCH_PHASES=micro,e2e  BENCH_MICRO_SIZES=500,5000,50000  BENCH_E2E_SIZES=500,5000  BENCH_CHURN_S=30
//   BENCH_RATE=200  BENCH_PROBE_EVERY=10  BENCH_LABEL=after (a word recorded with the run)  BENCH_AGENT_SYNC=none
//   SY_MAIN=<other build>/dist/cli/main.js (the balancer to measure)  BENCH_AGENT_MAIN=…  BENCH_PHASES=report (rewrite the report only)
// Everything listens on 127.0.0.1; every process it starts is stopped by PID at the end (killed if the harness dies).
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execSync } from 'node:child_process';
import { Pool } from 'undici';
import { pino } from 'pino';
import { freePort, percentile, startOwned, stopOwned, switchyardArgs, switchyardArgsWith, waitHttp } from './lib/proc.js';
import { CLK_TCK, readStat } from './lib/procfs.js';
import { envIntList, envNum, fmt, sleep } from './lib/util.js';
import { UpstreamStates } from '../src/balancer/index.js';
import { systemRandom } from '../src/core/clock.js';
import { SnapshotStore } from '../src/routing/snapshot-store.js';
import { PersistentMap } from '../src/core/persistent-map.js';
import type { Instance, ServiceSet } from '../src/discovery/types.js';
import { CHANGE_BUCKETS } from '../src/proxy/lb-metrics.js';

const PHASES = new Set((process.env.BENCH_PHASES ?? 'micro,e2e').split(',').map((s) => s.trim()));
const MICRO_SIZES = envIntList('BENCH_MICRO_SIZES', [500, 5000, 50000]);
const E2E_SIZES = envIntList('BENCH_E2E_SIZES', [500, 5000]);
const CHURN_S = envNum('BENCH_CHURN_S', 30);
const RATE = envNum('BENCH_RATE', 200);
const PROBE_EVERY = Math.max(1, Math.round(envNum('BENCH_PROBE_EVERY', 10)));
const LABEL = process.env.BENCH_LABEL ?? 'run';
/** The balancer's binary (SY_MAIN: e.g. a build of an older commit, for before/after runs) and the agent's (BENCH_AGENT_MAIN; default: this tree's). */
const SY_MAIN = process.env.SY_MAIN ?? 'dist/cli/main.js';
const AGENT_MAIN = process.env.BENCH_AGENT_MAIN ?? 'dist/cli/main.js';
/**
 * The agent's --sync: "none" by default, so a write waits for no fsync and what is measured is the balancer, not
 * this shared machine's disk (with "always", writes here took p50 0.2-1.2 s while other work ran: bench/results).
 */
const AGENT_SYNC = process.env.BENCH_AGENT_SYNC ?? 'none';
const BACKEND_PORTS = 8;

const stats = (xs: readonly number[]): { n: number; mean: number; p50: number; p99: number; max: number } => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length), p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
};
const cpuSeconds = (pid: number): number => {
  const s = readStat(pid);
  return s ? s.ticks / CLK_TCK : NaN;
};
const rssMiB = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
};
const name = (i: number): string => `s${String(i).padStart(5, '0')}`;

// ---------------------------------------------------------------------------------------------------------
// micro: the table swap for a change to one service

function instance(service: string, k: number, port: number): Instance {
  return { id: `node-${k}/${service}-${k}`, service, node: `node-${k}`, address: '127.0.0.1', port, tags: [`urlprefix-/${service}`], meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing' };
}

/**
 * The set a source emits after one service's instances changed, as the sources build it: persistent maps
 * with the changed service named (before the incremental table, runs copied a plain Map per change here,
 * outside the timed part, and named nothing: every set was compared whole).
 */
function changed(prev: ServiceSet, service: string, list: readonly Instance[]): ServiceSet {
  return { catalog: prev.catalog, instances: PersistentMap.of(prev.instances).set(service, list), critical: prev.critical ?? new Map(), changed: new Set([service]) };
}

interface MicroRow { services: number; changes: number; firstBuildMs: number; cpuUs: ReturnType<typeof stats>; wallUs: ReturnType<typeof stats> }

function micro(n: number): MicroRow {
  const catalog = new Map<string, string[]>();
  const instances = new Map<string, Instance[]>();
  for (let i = 0; i < n; i++) {
    const s = name(i);
    catalog.set(s, [`urlprefix-/${s}`]);
    instances.set(s, [instance(s, 0, 20000 + (i % 1000)), instance(s, 1, 21000 + (i % 1000))]);
  }
  let set: ServiceSet = { catalog: PersistentMap.of(catalog), instances: PersistentMap.of(instances), critical: PersistentMap.of([...catalog.keys()].map((s): [string, string[]] => [s, []])) };
  const store = new SnapshotStore({
    specs: [], states: new UpstreamStates(), random: systemRandom, panicThreshold: 50, defaultBalance: 'round_robin',
    logger: pino({ level: 'silent' }), guard: { maxDropPercent: 50, holdMs: 30_000 },
  });
  const t0 = performance.now();
  store.update(set);
  const firstBuildMs = performance.now() - t0;
  // Changes spread over the catalog; each one moves, adds or removes one instance of one service.
  // Enough changes that GC, which the mean includes, averages out (BENCH_MICRO_CHANGES; the whole-table rebuild took 300 / 30).
  const total = Math.round(envNum('BENCH_MICRO_CHANGES', n >= 50_000 ? 300 : 2000));
  const warm = Math.min(200, total);
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let c = 0; c < warm + total; c++) {
    const s = name((c * 7919) % n);
    const cur = set.instances.get(s) ?? [];
    const kind = c % 3;
    // (a third instance only when there is none yet: a service changes again when the changes wrap around the catalog)
    const list = kind === 0 ? [cur[0]!, { ...cur[1]!, port: cur[1]!.port + 1 }] : kind === 1 && cur.length < 3 ? [...cur, instance(s, 2, 22000)] : cur.slice(0, 2);
    set = changed(set, s, kind === 2 && cur.length === 2 ? [cur[0]!, { ...cur[1]!, weights: { passing: 2, warning: 1 } }] : list);
    const u0 = process.cpuUsage();
    const w0 = performance.now();
    if (!store.update(set)) throw new Error('table build failed');
    const w = performance.now() - w0;
    const u = process.cpuUsage(u0);
    if (c >= warm) {
      wall.push(w * 1000);
      cpu.push(u.user + u.system);
    }
  }
  store.close();
  return { services: n, changes: total, firstBuildMs, cpuUs: stats(cpu), wallUs: stats(wall) };
}

// ---------------------------------------------------------------------------------------------------------
// e2e: a real agent, backends and balancer; churn through the registry; probes through the balancer

interface E2eRow {
  services: number; seconds: number; changes: number; writeErrors: number; probes: number; probeMisses: number;
  c2tMs: ReturnType<typeof stats>; writeMs: ReturnType<typeof stats>;
  /** Change-to-traffic from the write's answer (the commit happened before it): a lower bound, negative when traffic moved first. */
  c2tAckMs?: ReturnType<typeof stats>;
  swap: { count: number; p50: string; p99: string }; tables: number;
  firstRequest?: { count: number; p50: string; p99: string };
  lbCpuS: number; lbCpuMsPerChange: number; lbRssMiB: number; agentCpuS: number; loadBefore: number[]; loadAfter: number[];
  startMs: number;
}

async function register(agent: string, service: string, port: number): Promise<void> {
  const r = await fetch(`${agent}/v1/catalog/register`, {
    // One node per service: a write re-puts its node record, which wakes every service on that node (registry side).
    method: 'PUT', body: JSON.stringify({ Node: `n-${service}`, Address: '127.0.0.1', Service: { ID: service, Service: service, Port: port, Tags: [`urlprefix-/${service}`] } }),
  });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`register ${service}: HTTP ${r.status}`);
}

/** The change-latency histogram of one stage (swap, first_request), as cumulative bucket counts. */
async function stageBuckets(admin: string, stage: string): Promise<number[]> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const bounds = [...CHANGE_BUCKETS.map(String), '+Inf'];
  return bounds.map((b) => {
    const le = b.replace('+', '\\+');
    const re = new RegExp(`^switchyard_lb_change_latency_seconds_bucket\\{[^}]*le="${le}"[^}]*stage="${stage}"[^}]*\\} (\\d+)|^switchyard_lb_change_latency_seconds_bucket\\{[^}]*stage="${stage}"[^}]*le="${le}"[^}]*\\} (\\d+)`, 'm');
    const m = re.exec(text);
    return Number(m?.[1] ?? m?.[2] ?? 0);
  });
}
async function tableGeneration(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  return Number(/^switchyard_lb_table_generation (\d+)/m.exec(text)?.[1] ?? NaN);
}
/** The bucket bound at which the cumulative count reaches p% (an upper bound on the percentile). */
function bucketPercentile(cum: readonly number[], p: number): string {
  const total = cum[cum.length - 1] ?? 0;
  if (total === 0) return '–';
  const want = (p / 100) * total;
  const i = cum.findIndex((c) => c >= want);
  return i >= 0 && i < CHANGE_BUCKETS.length ? `≤ ${CHANGE_BUCKETS[i]! * 1000} ms` : `> ${CHANGE_BUCKETS[CHANGE_BUCKETS.length - 1]! * 1000} ms`;
}

async function e2e(n: number, dir: string): Promise<E2eRow> {
  const backendPorts = await Promise.all(Array.from({ length: BACKEND_PORTS }, () => freePort()));
  const backends = startOwned(process.execPath, ['--import', 'tsx', 'bench/proxies/node-backend.ts'], { env: { PORTS: backendPorts.join(',') } });
  const agentPort = await freePort();
  const agentUrl = `http://127.0.0.1:${agentPort}`;
  const agent = startOwned(process.execPath, switchyardArgs(AGENT_MAIN, 'agent', '--http-addr', `127.0.0.1:${agentPort}`, '--data-dir', join(dir, `agent-${n}`), '--node', 'bench', '--log-level', 'warn', '--sync', AGENT_SYNC));
  const lbPort = await freePort();
  const adminPort = await freePort();
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const admin = `http://127.0.0.1:${adminPort}`;
  let lb: ReturnType<typeof startOwned> | undefined;
  const pool = new Pool(lbUrl, { connections: 16, keepAliveTimeout: 10_000 });
  try {
    await waitHttp(`${agentUrl}/v1/status/leader`);
    await waitHttp(`http://127.0.0.1:${backendPorts[0]}/`);
    const portOf = new Map<string, number>();
    // Register the catalog, 32 writes in flight.
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = name(i);
        portOf.set(s, i % BACKEND_PORTS);
        await register(agentUrl, s, backendPorts[i % BACKEND_PORTS]!);
      }
    }));
    const t0 = performance.now();
    // BENCH_LB_NODE_ARGS: extra node flags for the balancer (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
    const nodeArgs = (process.env.BENCH_LB_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    lb = startOwned(process.execPath, switchyardArgsWith(nodeArgs, SY_MAIN, 'lb', '--listen', `127.0.0.1:${lbPort}`, '--registry', agentUrl, '--admin-addr', `127.0.0.1:${adminPort}`, '--log-level', 'warn'));
    const lastRoute = `/${name(n - 1)}`;
    for (const deadline = Date.now() + 120_000; ;) {
      try {
        const r = await pool.request({ path: lastRoute, method: 'GET' });
        const body = await r.body.text();
        if (r.statusCode === 200 && body.startsWith('ok ')) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`the balancer did not route ${lastRoute} within 120 s`);
      await sleep(50);
    }
    const startMs = performance.now() - t0;
    await sleep(2000);
    const lbPid = lb.pid as number;
    const agentPid = agent.pid as number;
    const swap0 = await stageBuckets(admin, 'swap');
    const first0 = await stageBuckets(admin, 'first_request');
    const gen0 = await tableGeneration(admin);
    const loadBefore = loadavg();
    const lbCpu0 = cpuSeconds(lbPid);
    const agentCpu0 = cpuSeconds(agentPid);
    const total = Math.round(RATE * CHURN_S);
    const c2t: number[] = [];
    const c2tAck: number[] = [];
    const writes: number[] = [];
    let writeErrors = 0;
    let probes = 0;
    let misses = 0;
    const pending: Promise<void>[] = [];
    const probe = async (s: string, port: number, sentAt: number, acked: Promise<number>): Promise<void> => {
      probes++;
      const want = `ok ${port}\n`;
      const deadline = sentAt + 5000;
      while (performance.now() < deadline) {
        const asked = performance.now();
        try {
          const r = await pool.request({ path: `/${s}`, method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 });
          if ((await r.body.text()) === want) {
            const at = performance.now();
            c2t.push(at - sentAt);
            c2tAck.push(at - (await acked));
            return;
          }
        } catch {
          // counted as a miss if it never answers
        }
        const wait = 2 - (performance.now() - asked);
        if (wait > 0) await sleep(wait);
      }
      misses++;
    };
    const start = performance.now();
    // Consecutive changes touch services far apart; one service changes again only after n / RATE seconds.
    for (let c = 0; c < total; c++) {
      const due = start + (c * 1000) / RATE;
      const now = performance.now();
      if (due > now) await sleep(due - now);
      const s = name((c * 7919) % n);
      const idx = ((portOf.get(s) ?? 0) + 1) % BACKEND_PORTS;
      portOf.set(s, idx);
      const port = backendPorts[idx]!;
      const sentAt = performance.now();
      const w = register(agentUrl, s, port).then(() => {
        const at = performance.now();
        writes.push(at - sentAt);
        return at;
      }, () => {
        writeErrors++;
        return NaN;
      });
      pending.push(w.then(() => undefined));
      if (c % PROBE_EVERY === 0) pending.push(probe(s, port, sentAt, w));
    }
    await Promise.all(pending);
    const seconds = (performance.now() - start) / 1000;
    const lbCpuS = cpuSeconds(lbPid) - lbCpu0;
    const agentCpuS = cpuSeconds(agentPid) - agentCpu0;
    const loadAfter = loadavg();
    const swap1 = await stageBuckets(admin, 'swap');
    const first1 = await stageBuckets(admin, 'first_request');
    const first = first1.map((v, i) => v - (first0[i] ?? 0));
    const gen1 = await tableGeneration(admin);
    const swap = swap1.map((v, i) => v - (swap0[i] ?? 0));
    return {
      services: n, seconds, changes: total, writeErrors, probes, probeMisses: misses, c2tMs: stats(c2t), c2tAckMs: stats(c2tAck), writeMs: stats(writes),
      swap: { count: swap[swap.length - 1] ?? 0, p50: bucketPercentile(swap, 50), p99: bucketPercentile(swap, 99) }, tables: gen1 - gen0,
      firstRequest: { count: first[first.length - 1] ?? 0, p50: bucketPercentile(first, 50), p99: bucketPercentile(first, 99) },
      lbCpuS, lbCpuMsPerChange: (lbCpuS * 1000) / total, lbRssMiB: rssMiB(lbPid), agentCpuS, loadBefore, loadAfter, startMs,
    };
  } finally {
    await pool.close();
    if (lb) await stopOwned(lb);
    await stopOwned(agent);
    await stopOwned(backends);
  }
}

// ---------------------------------------------------------------------------------------------------------

const commit = ((): string => {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim() + (execSync('git status --porcelain -- src bench', { encoding: 'utf8' }).trim() ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
})();
const dir = mkdtempSync(join(tmpdir(), 'sy-scale-lb-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const microRows: MicroRow[] = [];
if (PHASES.has('micro')) {
  // A throwaway round first: on a busy machine V8's optimizing compiler (a background thread) lags, and the first
  // size measured would run on unoptimized code (seen: 500 services measured 10× slower than 5,000 after it).
  micro(300);
  for (const n of MICRO_SIZES) {
    const r = micro(n);
    microRows.push(r);
    console.log(`[micro] ${n} services: first build ${fmt(r.firstBuildMs, 1)} ms; per change CPU mean ${fmt(r.cpuUs.mean, 0)} µs p50 ${fmt(r.cpuUs.p50, 0)} p99 ${fmt(r.cpuUs.p99, 0)}; wall mean ${fmt(r.wallUs.mean, 0)} µs (${r.changes} changes)`);
  }
}
const e2eRows: E2eRow[] = [];
if (PHASES.has('e2e')) {
  for (const n of E2E_SIZES) {
    const r = await e2e(n, dir);
    e2eRows.push(r);
    console.log(`[e2e] ${n} services: c2t p50 ${fmt(r.c2tMs.p50, 1)} p99 ${fmt(r.c2tMs.p99, 1)} max ${fmt(r.c2tMs.max, 1)} ms (${r.c2tMs.n} probes, ${r.probeMisses} misses); lb CPU ${fmt(r.lbCpuMsPerChange, 3)} ms/change, ${r.tables} tables for ${r.changes} changes; swap ${r.swap.p50} / ${r.swap.p99}`);
  }
}

const run = { label: LABEL, commit, ...(process.env.SY_MAIN ? { binary: `balancer ${process.env.SY_MAIN}, agent ${AGENT_MAIN}` } : {}), ...(PHASES.has('e2e') ? { agentSync: AGENT_SYNC } : {}), at: new Date().toISOString(), node: process.version, cpus: cpus().length, micro: microRows, e2e: e2eRows };
mkdirSync('bench/results', { recursive: true });
// BENCH_PHASES=report: no run, the report written again from the runs kept.
if (microRows.length > 0 || e2eRows.length > 0) appendFileSync('bench/results/scale-lb-runs.jsonl', `${JSON.stringify(run)}\n`);

// The report: every run recorded so far, newest of each label last.
const runs = readFileSync('bench/results/scale-lb-runs.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as typeof run & { binary?: string; agentSync?: string });
const lines: string[] = [
  '# Balancer at scale: cost of one registry change',
  '',
  'Generated by `npm run bench:scale-lb` (bench/scale-lb.ts); every run is kept in scale-lb-runs.jsonl. This 2-core machine is shared with other work: CPU time is the figure to compare, and the load average is recorded with each e2e run.',
  '',
  '**micro**: `SnapshotStore.update` for a change to one service (an instance moved, added, removed or re-weighted, in turn), mass-loss guard on as `switchyard lb` runs it; N routed services with 2 instances and one `urlprefix-/sNNNNN` tag route each; CPU time (process.cpuUsage) and wall time per change, after a warm-up.',
  '',
  `**e2e**: a real \`switchyard agent\`, 8 backend ports (Node), \`switchyard lb\` (fast plane, one process) following N routed services of one instance each, each on a node of its own (catalog/register re-puts the node, which wakes every service on it: with all services on one node every write woke all N health watches); ${RATE} changes/s (each re-registers one service on another backend port); every ${PROBE_EVERY}th change probed through the balancer every 2 ms until the new port answers. Change-to-traffic is measured from just before the write is sent (an upper bound: it includes the registry's write, fsync and all) and from the write's answer (a lower bound: the commit came before it); the commit lies between. "commit→swap" and "commit→first request" are the balancer's own change-latency histograms (from the agent's X-Switchyard-Index-Time; bucket bounds). CPU per change = the balancer process's CPU time over the churn / changes (probes included).`,
  '',
];
// Summary: the newest "before…" and "after" runs that have each part.
{
  const last = <T,>(pick: (r: (typeof runs)[number]) => T | undefined, label: (l: string) => boolean): T | undefined => {
    for (let i = runs.length - 1; i >= 0; i--) {
      const r = runs[i]!;
      const v = label(r.label) ? pick(r) : undefined;
      if (v !== undefined) return v;
    }
    return undefined;
  };
  const isBefore = (l: string): boolean => l === 'before' || l.startsWith('before (');
  const isAfter = (l: string): boolean => l === 'after';
  const micro = (n: number) => (r: (typeof runs)[number]): MicroRow | undefined => r.micro.find((m) => m.services === n);
  const e2eOf = (n: number) => (r: (typeof runs)[number] & { agentSync?: string }): E2eRow | undefined => (r.agentSync === 'none' ? r.e2e.find((e) => e.services === n) : undefined);
  const row = (what: string, b: string, a: string, target: string): string => `| ${what} | ${b} | ${a} | ${target} |`;
  lines.push('## Summary (newest "before" and "after" runs)', '', '| | before | after | target |', '| --- | ---: | ---: | --- |');
  for (const n of [500, 5000, 50000]) {
    const b = last(micro(n), isBefore);
    const a = last(micro(n), isAfter);
    lines.push(row(`table swap per change, ${n.toLocaleString('en-US')} services: CPU µs mean (p50)`, b ? `${fmt(b.cpuUs.mean, 0)} (${fmt(b.cpuUs.p50, 0)})` : '–', a ? `${fmt(a.cpuUs.mean, 0)} (${fmt(a.cpuUs.p50, 0)})` : '–', ''));
  }
  const ratio = (label: (l: string) => boolean): number | undefined => {
    const x = last(micro(500), label);
    const y = last(micro(5000), label);
    return x && y ? y.cpuUs.mean / x.cpuUs.mean : undefined;
  };
  const rb = ratio(isBefore);
  const ra = ratio(isAfter);
  lines.push(row('cost at 5,000 / cost at 500 (CPU mean)', rb === undefined ? '–' : `${fmt(rb, 2)}×`, ra === undefined ? '–' : `**${fmt(ra, 2)}×**`, `≤ 2×: ${ra !== undefined && ra <= 2 ? 'met' : 'NOT met'}`));
  for (const n of [500, 5000]) {
    const b = last(e2eOf(n), isBefore);
    const a = last(e2eOf(n), isAfter);
    const c2t = (e: E2eRow | undefined): string => (e ? `${fmt(e.c2tMs.p99, 1)} / ${fmt(e.c2tAckMs?.p99, 1)}${e.probeMisses > 0 ? ` (${e.probeMisses} of ${e.probes} never seen in 5 s)` : ''}` : '–');
    const met = n === 5000 ? `< 50 ms: ${a && a.probeMisses === 0 && (a.c2tAckMs?.p99 ?? Infinity) < 50 ? (a.c2tMs.p99 < 50 ? 'met' : 'met from the write\'s answer, NOT from its send') : 'NOT met'}` : '';
    lines.push(row(`change-to-traffic p99 ms at ${n.toLocaleString('en-US')} services, 200 changes/s: from send / from answer`, c2t(b), c2t(a), met));
    lines.push(row(`balancer commit → swap p99 at ${n.toLocaleString('en-US')}`, b?.swap.p99 ?? '–', a?.swap.p99 ?? '–', ''));
    lines.push(row(`balancer CPU per change at ${n.toLocaleString('en-US')} (ms, probes included)`, fmt(b?.lbCpuMsPerChange, 3), fmt(a?.lbCpuMsPerChange, 3), ''));
  }
  lines.push('');
}
for (const r of runs) {
  lines.push(`## ${r.label} — ${r.commit}${r.binary ? ` (e2e: ${r.binary})` : ''}, ${r.at} (Node ${r.node}, ${r.cpus} cores${r.e2e.length > 0 ? `; agent --sync ${r.agentSync ?? 'always'}` : ''})`, '');
  if (r.micro.length > 0) {
    lines.push('| services | first build ms | per-change CPU µs mean | p50 | p99 | wall µs mean | changes |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const m of r.micro) lines.push(`| ${m.services} | ${fmt(m.firstBuildMs, 1)} | ${fmt(m.cpuUs.mean, 0)} | ${fmt(m.cpuUs.p50, 0)} | ${fmt(m.cpuUs.p99, 0)} | ${fmt(m.wallUs.mean, 0)} | ${m.changes} |`);
    const at = (n: number): MicroRow | undefined => r.micro.find((m) => m.services === n);
    const a = at(500);
    const b = at(5000);
    if (a && b) lines.push('', `Ratio 5,000 / 500 (CPU mean): **${fmt(b.cpuUs.mean / a.cpuUs.mean, 2)}×** (target ≤ 2×: ${b.cpuUs.mean / a.cpuUs.mean <= 2 ? 'met' : 'NOT met'}).`);
    lines.push('');
  }
  if (r.e2e.length > 0) {
    lines.push('| services | changes/s | c2t from send p50 ms | p99 | max | c2t from ack p50 | p99 | write p50 | write p99 | probes (misses) | commit→swap p50 | p99 | commit→first request p50 | p99 | tables | lb CPU ms/change | lb RSS MiB | agent CPU s | load before → after | lb start ms |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
    for (const e of r.e2e) {
      lines.push(`| ${e.services} | ${fmt(e.changes / e.seconds, 0)} | ${fmt(e.c2tMs.p50, 1)} | ${fmt(e.c2tMs.p99, 1)} | ${fmt(e.c2tMs.max, 1)} | ${fmt(e.c2tAckMs?.p50, 1)} | ${fmt(e.c2tAckMs?.p99, 1)} | ${fmt(e.writeMs.p50, 1)} | ${fmt(e.writeMs.p99, 1)} | ${e.c2tMs.n} (${e.probeMisses}) | ${e.swap.p50} | ${e.swap.p99} | ${e.firstRequest?.p50 ?? '–'} | ${e.firstRequest?.p99 ?? '–'} | ${e.tables} | ${fmt(e.lbCpuMsPerChange, 3)} | ${fmt(e.lbRssMiB, 0)} | ${fmt(e.agentCpuS, 1)} | ${e.loadBefore.map((x) => x.toFixed(2)).join(' ')} → ${e.loadAfter.map((x) => x.toFixed(2)).join(' ')} | ${fmt(e.startMs, 0)} |`);
    }
    const big = r.e2e.find((e) => e.services === 5000);
    if (big) {
      const ok = (v: number | undefined): string => (v !== undefined && v < 50 && big.probeMisses === 0 ? 'met' : 'NOT met');
      lines.push('', `Change-to-traffic p99 at 5,000 services under ${RATE} changes/s (target < 50 ms): from the write's send **${fmt(big.c2tMs.p99, 1)} ms** (${ok(big.c2tMs.p99)}; includes the registry's write latency, p99 ${fmt(big.writeMs.p99, 1)} ms); from the write's answer **${fmt(big.c2tAckMs?.p99, 1)} ms** (${ok(big.c2tAckMs?.p99)}); the commit lies between the two. The balancer's own commit → swap p99: ${big.swap.p99}.`);
    }
    lines.push('');
  }
}
// Runs kept from before bucketPercentile named the open bucket stored "≤ Infinity ms".
writeFileSync('bench/results/scale-lb.md', `${lines.join('\n').replaceAll('≤ Infinity ms', `> ${CHANGE_BUCKETS[CHANGE_BUCKETS.length - 1]! * 1000} ms`)}\n`);
console.log('wrote bench/results/scale-lb.md');
