// Cluster-mode benchmark (docs/cluster.md): in one run, side by side,
//   1. registration throughput (PUT /v1/agent/service/register, wrk + bench/conf/register.lua as in bench/registry.ts)
//      against the embedded store (sync=always and sync=none), an etcd-backed agent on a 1-member and on a 3-member
//      etcd, and two etcd-backed agents on the same 3-member etcd loaded at the same time (aggregate);
//   2. change-propagation latency: write at agent A → visible to a blocking query parked at agent B → first request
//      through a `switchyard lb` following B reaching the new backend; 3-member etcd (A ≠ B) vs embedded (A = B).
// Writes bench/results/cluster.md and the raw runs/samples in bench/results/cluster-runs.jsonl.
//
// Usage: npm run bench:cluster
//   BENCH_REPS=3 BENCH_DUR=5 BENCH_CONCURRENCY=32 BENCH_SAMPLES=50 BENCH_PHASES=throughput,propagation
// Needs wrk and etcd (Debian: apt-get install -y wrk etcd-server; SY_ETCD=/path/to/etcd picks another binary).
// Everything listens on 127.0.0.1 (ephemeral ports); every process it starts is stopped by PID at the end (etcd
// members through the test helper's handles), and killed by PID if the harness dies; temp dirs are removed.
import { closeSync, existsSync, fdatasyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { Etcd3 } from 'etcd3';
import { Agent, Pool, request } from 'undici';
import { freePort, percentile, startOwned, stopOwned, switchyardArgs, waitHttp } from './lib/proc.js';
import { CLK_TCK, coresBetween, cpuSample, snapshot, treeTicks } from './lib/procfs.js';
import type { CpuSample } from './lib/procfs.js';
// Real etcd members come from the test helper (the same one the cluster tests use), imported rather than duplicated.
import { ETCD_BIN, startEtcd } from '../test/helpers/etcd.js';
import type { EtcdCluster } from '../test/helpers/etcd.js';
import { envNum, findBin, firstLine, fmt, makeQuietGate, median, runWrkJson, sleep, wrkErrors } from './lib/util.js';
import type { WrkErrorCounts } from './lib/util.js';

const REPS = Math.round(envNum('BENCH_REPS', 3));
const DUR = Math.round(envNum('BENCH_DUR', 5));
const CONC = Math.round(envNum('BENCH_CONCURRENCY', 32));
const SAMPLES = Math.round(envNum('BENCH_SAMPLES', 50));
const WARM_S = 1;
const PHASES = new Set((process.env.BENCH_PHASES ?? 'throughput,propagation').split(',').map((s) => s.trim()));
const NCPU = cpus().length;
const QUIET_CORES = 0.3;
const QUIET_WAIT_S = 20;
const QUIET_BUDGET_S = 180;
const SAMPLE_TIMEOUT_MS = 5000;
const PROP_WARMUP = 3;
const SY_MAIN = 'dist/cli/main.js';

const errMsg = (err: unknown): string => (err instanceof Error ? err.message : String(err));


// ---------------------------------------------------------------------------------------------------------
// Temp dirs, processes, CPU accounting

const tmpRoot = mkdtempSync(join(tmpdir(), 'sy-cluster-bench-'));
process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));
const clusters: EtcdCluster[] = [];
process.on('exit', () => {
  for (const c of clusters) c.killSync();
});

interface AgentProc {
  name: string;
  url: string;
  child: ChildProcess;
  dir: string;
}
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return NaN;
  }
}
async function startAgent(name: string, store: string, sync?: 'always' | 'none'): Promise<AgentProc> {
  const dir = mkdtempSync(join(tmpRoot, `agent-${name}-`));
  const port = await freePort();
  const args = switchyardArgs(SY_MAIN, 'agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dir, '--node', name, '--log-level', 'warn', '--store', store);
  if (sync) args.push('--sync', sync);
  const child = startOwned(process.execPath, args);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/v1/status/leader`);
  } catch (err) {
    await stopOwned(child);
    throw err;
  }
  return { name, url, child, dir };
}
async function stopAgent(a: AgentProc): Promise<void> {
  await stopOwned(a.child);
  rmSync(a.dir, { recursive: true, force: true });
}

/** PIDs of etcd processes that are direct children of this process (the test helper spawns them without exposing PIDs). */
function etcdChildren(): Set<number> {
  const out = new Set<number>();
  for (const [pid, s] of snapshot()) {
    if (s.ppid !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === ETCD_BIN) out.add(pid);
    } catch {
      // gone
    }
  }
  return out;
}

type Sample = CpuSample;
const sample = cpuSample;
const cpuS = (a: Sample, b: Sample, pids: readonly number[]): number => pids.reduce((s, pid) => s + (treeTicks(b.snap, pid) - treeTicks(a.snap, pid)), 0) / CLK_TCK;
/** Cores used by the box, by us (this process and all its descendants, reaped wrk included) and by everyone else. */
const cores = (a: Sample, b: Sample): { box: number; ours: number; others: number } => coresBetween(a, b, treeTicks(b.snap, process.pid) - treeTicks(a.snap, process.pid), NCPU);

/** Waits (bounded: 20 s per run, 180 s in all) until processes we did not start are quiet. */
const quiet = makeQuietGate(sample, (a, b) => cores(a, b).others, { cores: QUIET_CORES, waitS: QUIET_WAIT_S, budgetS: QUIET_BUDGET_S });

// ---------------------------------------------------------------------------------------------------------
// wrk (bench/conf/register.lua: every request registers a new instance, service + TTL check)

interface Wrk extends WrkErrorCounts {
  requests: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
}
function runWrk(url: string, seconds: number, conns: number, idPrefix: string): Promise<Wrk> {
  return runWrkJson<Wrk>(url, { seconds, conns, script: 'bench/conf/register.lua', env: { SY_ID_PREFIX: idPrefix } });
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

/** Sum and count of every histogram/counter sample named in `names` (summed over label sets). */
function promValues(text: string, names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = 0;
  for (const l of text.split('\n')) {
    if (l.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(l.trim());
    if (m && names.includes(m[1] as string)) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[3]);
  }
  return out;
}
const ETCD_METRICS = [
  'etcd_disk_wal_fsync_duration_seconds_count', 'etcd_disk_wal_fsync_duration_seconds_sum',
  'etcd_disk_backend_commit_duration_seconds_count', 'etcd_disk_backend_commit_duration_seconds_sum',
  'etcd_server_proposals_committed_total',
] as const;
async function etcdMetrics(c: EtcdCluster): Promise<Record<string, number>[]> {
  return Promise.all(c.endpoints.map(async (ep) => {
    const r = await request(`http://${ep}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
    return promValues(await r.body.text(), ETCD_METRICS);
  }));
}
interface EtcdDelta {
  members: number;
  /** WAL fsyncs summed over all members. */
  walFsyncs: number;
  /** Mean WAL fsync duration (ms) over all members. */
  walFsyncMs: number;
  backendCommits: number;
  backendCommitMs: number;
  /** Raft proposals committed (max over members: every member commits every entry). */
  proposals: number;
}
function etcdDelta(before: Record<string, number>[], after: Record<string, number>[]): EtcdDelta {
  const d = (k: (typeof ETCD_METRICS)[number]): number[] => after.map((a, i) => (a[k] ?? 0) - (before[i]?.[k] ?? 0));
  const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
  const walFsyncs = sum(d('etcd_disk_wal_fsync_duration_seconds_count'));
  const backendCommits = sum(d('etcd_disk_backend_commit_duration_seconds_count'));
  return {
    members: after.length,
    walFsyncs,
    walFsyncMs: walFsyncs > 0 ? (sum(d('etcd_disk_wal_fsync_duration_seconds_sum')) * 1000) / walFsyncs : NaN,
    backendCommits,
    backendCommitMs: backendCommits > 0 ? (sum(d('etcd_disk_backend_commit_duration_seconds_sum')) * 1000) / backendCommits : NaN,
    proposals: Math.max(0, ...d('etcd_server_proposals_committed_total')),
  };
}
/** switchyard_registry_services: service instances in the agent's catalog (it mirrors the whole shared catalog). */
async function catalogInstances(a: AgentProc): Promise<number> {
  const r = await request(`${a.url}/metrics`, { headersTimeout: 5000, bodyTimeout: 5000 });
  return promValues(await r.body.text(), ['switchyard_registry_services']).switchyard_registry_services ?? NaN;
}

/** The raw cost of one 4 KiB write + fdatasync in the temp dir both stores use (their data dirs live there). */
function fdatasyncCost(n = 200): { p50: number; p99: number; mean: number } {
  const file = join(tmpRoot, 'fsync-probe');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(4096, 1);
  const xs: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      writeSync(fd, buf);
      fdatasyncSync(fd);
      xs.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  xs.sort((a, b) => a - b);
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), mean };
}

// ---------------------------------------------------------------------------------------------------------
// Phase 1: registration throughput

type SetupKey = 'embedded-always' | 'embedded-none' | 'etcd1' | 'etcd3' | 'etcd3x2';
interface Setup {
  key: SetupKey;
  label: string;
  /** Agents to start: store URL (or "embedded") and sync mode. */
  agents: () => { store: string; sync?: 'always' | 'none' }[];
  cluster?: EtcdCluster;
}
interface TputRun {
  type: 'throughput';
  setup: SetupKey;
  rep: number;
  /** One wrk result per agent (each wrk gets CONC / agents connections). */
  wrk: Wrk[];
  /** The warm-up runs, likewise. */
  warm: Wrk[];
  rps: number;
  errors: number;
  acked: number;
  /** Instances in each agent's catalog after the run (includes one `consul` instance per node and the warm-up). */
  catalog: number[];
  agentCpuS: number;
  etcdCpuS: number;
  wallS: number;
  boxCores: number;
  othersCores: number;
  quietWaitS: number;
  quietOthersCores: number;
  etcd: EtcdDelta | null;
  /** Size of each etcd agent's anti-entropy journal (data dir local-services.json) after the run. */
  journalBytes: number[];
}
const tputRuns: TputRun[] = [];
/** Requests completed in the measured window (all agents). */
const regsOf = (r: TputRun): number => r.wrk.reduce((s, w) => s + w.requests, 0);
let prefixSeq = 0;

async function throughputRun(s: Setup, rep: number, etcdPids: Map<EtcdCluster, number[]>): Promise<TputRun> {
  const specs = s.agents();
  const agents: AgentProc[] = [];
  try {
    for (let i = 0; i < specs.length; i++) {
      const sp = specs[i] as { store: string; sync?: 'always' | 'none' };
      agents.push(await startAgent(`bench-${s.key}-${rep}-${String.fromCharCode(97 + i)}`, sp.store, sp.sync));
    }
    const conns = Math.max(1, Math.round(CONC / agents.length));
    const q = await quiet.wait();
    const tag = `${s.key.replace(/[^a-z0-9]/g, '')}r${rep}`;
    const warm = await Promise.all(agents.map((a, i) => runWrk(a.url, WARM_S, conns, `${tag}w${i}`)));
    const before = s.cluster ? await etcdMetrics(s.cluster) : null;
    const a = sample();
    const ws = await Promise.all(agents.map((ag, i) => runWrk(ag.url, DUR, conns, `${tag}m${i}`)));
    const b = sample();
    const after = s.cluster ? await etcdMetrics(s.cluster) : null;
    // Let in-flight registrations (wrk stops mid-request) land before counting the catalog.
    await sleep(300);
    const catalog = await Promise.all(agents.map(catalogInstances));
    const journalBytes = s.cluster ? agents.map((ag) => fileSize(join(ag.dir, 'local-services.json'))) : [];
    const c = cores(a, b);
    const okOf = (w: Wrk): number => w.requests - w.non2xx;
    const run: TputRun = {
      type: 'throughput',
      setup: s.key,
      rep,
      wrk: ws,
      warm,
      rps: ws.reduce((x, w) => x + w.rps, 0),
      errors: ws.reduce((x, w) => x + wrkErrors(w), 0) + warm.reduce((x, w) => x + wrkErrors(w), 0),
      acked: ws.reduce((x, w) => x + okOf(w), 0) + warm.reduce((x, w) => x + okOf(w), 0),
      catalog,
      agentCpuS: cpuS(a, b, agents.map((ag) => ag.child.pid as number)),
      etcdCpuS: s.cluster ? cpuS(a, b, etcdPids.get(s.cluster) ?? []) : 0,
      wallS: (b.at - a.at) / 1000,
      boxCores: c.box,
      othersCores: c.others,
      quietWaitS: q.waitedS,
      quietOthersCores: q.othersCores,
      etcd: before && after ? etcdDelta(before, after) : null,
      journalBytes,
    };
    tputRuns.push(run);
    console.log(
      `[throughput ${rep}/${REPS}] ${s.label.padEnd(44)} ${run.rps.toFixed(0).padStart(6)} reg/s  p50 ${ws.map((w) => fmt(w.p50_ms, 1)).join('/')} p99 ${ws.map((w) => fmt(w.p99_ms, 1)).join('/')} ms  errors ${run.errors}  agent ${fmt(run.agentCpuS / run.wallS)} etcd ${fmt(run.etcdCpuS / run.wallS)} others ${fmt(c.others)} cores${run.etcd ? `  WAL fsyncs ${run.etcd.walFsyncs} (${fmt(run.etcd.walFsyncMs)} ms)` : ''}${q.waitedS > 0.5 ? ` (waited ${q.waitedS.toFixed(0)} s for a quiet box)` : ''}`,
    );
    return run;
  } finally {
    await Promise.all(agents.map(stopAgent));
  }
}

/** Drops a throughput run's keys and compacts, so every run starts on an empty catalog and a small etcd database. */
async function cleanPrefix(c: EtcdCluster, prefix: string): Promise<void> {
  const client = new Etcd3({ hosts: c.endpoints.map((e) => `http://${e}`) });
  try {
    const res = await client.delete().prefix(prefix).exec();
    await client.kv.compact({ revision: res.header.revision, physical: true });
  } catch (err) {
    console.warn(`NOTE: cleaning etcd prefix ${prefix} failed: ${errMsg(err)}`);
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 2: change propagation

interface PropSetup {
  key: 'embedded' | 'etcd3';
  label: string;
  a: AgentProc;
  b: AgentProc;
  lbUrl: string;
  lbAdmin: string;
}
interface PropSample {
  type: 'propagation';
  setup: PropSetup['key'];
  round: number;
  /** ms from sending the PUT at A to its response (A acknowledges once its own mirror has the write). */
  ackA: number;
  /** ms from sending the PUT at A to the blocking query parked at B answering with the new instance. */
  visibleB: number | null;
  /** ms from sending the PUT at A to the first request through the balancer (following B) at the new backend. */
  trafficLb: number | null;
  /** Wake-ups of the parked query at B that did not yet carry the new instance. */
  spuriousWakes: number;
  indexB: number | null;
  /** A's X-Consul-Index read right after B answered (equal to B's when both serve the same revision). */
  indexA: number | null;
  lbPolls: number;
  /** Requests through the balancer per second while the poller ran (its effective resolution). */
  lbPollRate: number;
  lbPollErrors: number;
}
const propSamples: PropSample[] = [];

async function registerWeb(agentUrl: string, id: string, port: number): Promise<void> {
  const r = await request(`${agentUrl}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'web', ID: id, Address: '127.0.0.1', Port: port }), headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`register ${id} at ${agentUrl}: ${r.statusCode} ${text}`);
}
async function deregisterWeb(agentUrl: string, id: string): Promise<void> {
  const r = await request(`${agentUrl}/v1/agent/service/deregister/${encodeURIComponent(id)}`, { method: 'PUT', headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`deregister ${id} at ${agentUrl}: ${r.statusCode} ${text}`);
}

const watchDispatcher = new Agent({ connections: 8, keepAliveTimeout: 60_000 });
async function healthWeb(agentUrl: string, index?: number): Promise<{ index: number; ids: string[] }> {
  const q = index === undefined ? '' : `?index=${index}&wait=6s`;
  const r = await request(`${agentUrl}/v1/health/service/web${q}`, { dispatcher: watchDispatcher, headersTimeout: 15_000, bodyTimeout: 15_000 });
  const body = (await r.body.json()) as { Service: { ID: string } }[];
  if (r.statusCode !== 200) throw new Error(`health/service/web at ${agentUrl}: ${r.statusCode}`);
  return { index: Number(r.headers['x-consul-index']), ids: body.map((e) => e.Service.ID) };
}

/** Waits until the balancer's table (admin /routes) does or does not contain the instance; bounded. */
async function waitLbTable(adminUrl: string, id: string, present: boolean, timeoutMs = SAMPLE_TIMEOUT_MS): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const r = await request(`${adminUrl}/routes`, { headersTimeout: 2000, bodyTimeout: 2000 });
      if ((await r.body.text()).includes(id) === present) return true;
    } catch {
      // retry
    }
    await sleep(20);
  }
  return false;
}

/**
 * One sample: a new backend (an http server in this process on a fresh port) is registered at A while a blocking
 * query is parked at B and the harness polls the balancer (≤ 1 request per ms, ≤ 2 in flight, only from just before
 * the write until the new backend is hit; round-robin over 2 backends gives ~2 ms resolution). Then it is deregistered
 * and the harness waits until the balancer's table no longer lists it.
 */
async function propagationSample(s: PropSetup, round: number, lbPool: Pool, record = true): Promise<PropSample> {
  const port = await freePort();
  const id = `web-new-${port}`;
  let first: number | null = null;
  let onFirst: () => void = () => undefined;
  const arrived = new Promise<void>((r) => (onFirst = r));
  const server = http.createServer((_req, res) => {
    if (first === null) {
      first = performance.now();
      onFirst();
    }
    res.end(`ok ${port}\n`);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  try {
    // Park a blocking query at B on the current index.
    const start = await healthWeb(s.b.url);
    let spurious = 0;
    let seenAt: number | null = null;
    let indexB: number | null = null;
    let t0 = 0;
    const parkedAt = start.index;
    let watchError: string | null = null;
    const visible = (async (): Promise<void> => {
      let index = parkedAt;
      const deadline = performance.now() + SAMPLE_TIMEOUT_MS + 1000;
      while (performance.now() < deadline) {
        const r = await healthWeb(s.b.url, index);
        if (r.ids.includes(id)) {
          seenAt = performance.now();
          indexB = r.index;
          return;
        }
        if (r.index !== index) spurious++;
        index = r.index;
      }
    })().catch((err: unknown) => void (watchError = errMsg(err)));
    // Give the query (and the balancer's own watch, re-parked after the last round) time to park.
    await sleep(60);
    // Gentle, bounded poller through the balancer.
    let inflight = 0;
    let polls = 0;
    let pollErrors = 0;
    let polling = true;
    const poller = setInterval(() => {
      if (!polling || inflight >= 2) return;
      inflight++;
      polls++;
      lbPool
        .request({ path: '/', method: 'GET', headersTimeout: 2000, bodyTimeout: 2000 })
        .then((r) => r.body.dump())
        .catch(() => void pollErrors++)
        .finally(() => void inflight--);
    }, 1);
    const pollStart = performance.now();
    await sleep(10);
    t0 = performance.now();
    await registerWeb(s.a.url, id, port);
    const ackA = performance.now() - t0;
    await Promise.race([Promise.all([arrived, visible]), sleep(SAMPLE_TIMEOUT_MS)]);
    polling = false;
    clearInterval(poller);
    const pollS = (performance.now() - pollStart) / 1000;
    let indexA: number | null = null;
    if (indexB !== null) {
      const r = await healthWeb(s.a.url);
      indexA = r.index;
    }
    const f = first as number | null;
    const seen = seenAt as number | null;
    if (watchError !== null) console.warn(`NOTE: ${s.label}: the blocking query at B failed: ${String(watchError)}`);
    const out: PropSample = {
      type: 'propagation',
      setup: s.key,
      round,
      ackA,
      visibleB: seen === null ? null : seen - t0,
      trafficLb: f === null ? null : f - t0,
      spuriousWakes: spurious,
      indexB,
      indexA,
      lbPolls: polls,
      lbPollRate: polls / pollS,
      lbPollErrors: pollErrors,
    };
    if (record) propSamples.push(out);
    // Remove it again and wait for the balancer to drop it (bounded), so the next round starts from 1 backend.
    await deregisterWeb(s.a.url, id);
    if (!(await waitLbTable(s.lbAdmin, id, false))) console.warn(`NOTE: ${s.label}: the balancer still lists ${id} 5 s after deregistration`);
    const drainBy = performance.now() + 2000;
    while (inflight > 0 && performance.now() < drainBy) await sleep(5);
    await visible.catch(() => undefined);
    return out;
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Main

const wrkBin = findBin('wrk');
if (!wrkBin) {
  console.error('bench:cluster needs wrk (Debian: apt-get install -y wrk).');
  process.exit(2);
}
if (spawnSync(ETCD_BIN, ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error(`bench:cluster needs etcd (${ETCD_BIN}; Debian: apt-get install -y etcd-server, or SY_ETCD=/path/to/etcd).`);
  process.exit(2);
}
if (!existsSync(SY_MAIN)) {
  console.error(`bench:cluster needs the build in dist/ (${SY_MAIN}): run npm run build, or use npm run bench:cluster.`);
  process.exit(2);
}

const startedAt = new Date();
const load0 = loadavg();
const git = (args: string[]): string => (spawnSync('git', args, { encoding: 'utf8' }).stdout ?? '').trim();
const commit = git(['rev-parse', '--short', 'HEAD']) || '?';
const dirtySrc = git(['status', '--porcelain', '--', 'src']).split('\n').filter((l) => l.trim() !== '');
const versions = {
  node: process.version,
  etcd: firstLine(ETCD_BIN, ['--version']).replace(/^etcd Version:\s*/, ''),
  wrk: firstLine(wrkBin, ['-v']).split(' ').slice(0, 2).join(' '),
};
const tmpFs = (spawnSync('df', ['--output=fstype', tmpdir()], { encoding: 'utf8' }).stdout ?? '').trim().split('\n').pop() ?? '?';
const machine = `${NCPU} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${release()}; Node ${versions.node}, etcd ${versions.etcd}, ${versions.wrk}; load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}`;
console.log(`bench:cluster — ${machine}`);
console.log(`commit ${commit}${dirtySrc.length > 0 ? ` (+ uncommitted changes in src/: ${dirtySrc.length} file(s))` : ''}; REPS=${REPS} DUR=${DUR}s c=${CONC} samples=${SAMPLES} phases=${[...PHASES].join(',')}`);

const notes: string[] = [];
let exitCode = 0;
const fsync = fdatasyncCost();
console.log(`fdatasync of 4 KiB in ${tmpdir()}: p50 ${fmt(fsync.p50)} ms p99 ${fmt(fsync.p99)} ms mean ${fmt(fsync.mean)} ms`);

try {
  // Two etcd clusters for the whole run (1 and 3 members), each with the test helper's settings.
  const etcdPids = new Map<EtcdCluster, number[]>();
  const known = etcdChildren();
  const etcd1 = await startEtcd(1);
  clusters.push(etcd1);
  const after1 = etcdChildren();
  etcdPids.set(etcd1, [...after1].filter((p) => !known.has(p)));
  const etcd3 = await startEtcd(3);
  clusters.push(etcd3);
  etcdPids.set(etcd3, [...etcdChildren()].filter((p) => !after1.has(p)));
  console.log(`etcd: 1 member at ${etcd1.endpoints.join(',')} (pid ${etcdPids.get(etcd1)?.join(',')}); 3 members at ${etcd3.endpoints.join(',')} (pids ${etcdPids.get(etcd3)?.join(',')})`);
  if (etcdPids.get(etcd1)?.length !== 1 || etcdPids.get(etcd3)?.length !== 3) notes.push('Could not identify every etcd PID: the etcd CPU column may be incomplete.');

  if (PHASES.has('throughput')) {
    const setups: Setup[] = [
      { key: 'embedded-always', label: 'embedded, sync=always (default)', agents: () => [{ store: 'embedded', sync: 'always' }] },
      { key: 'embedded-none', label: 'embedded, sync=none', agents: () => [{ store: 'embedded', sync: 'none' }] },
      { key: 'etcd1', label: 'etcd, 1 member, 1 agent', cluster: etcd1, agents: () => [{ store: etcd1.url(`tp${prefixSeq++}`) }] },
      { key: 'etcd3', label: 'etcd, 3 members, 1 agent', cluster: etcd3, agents: () => [{ store: etcd3.url(`tp${prefixSeq++}`) }] },
      {
        key: 'etcd3x2',
        label: 'etcd, 3 members, 2 agents at once (aggregate)',
        cluster: etcd3,
        agents: () => {
          const u = etcd3.url(`tp${prefixSeq++}`);
          return [{ store: u }, { store: u }];
        },
      },
    ];
    for (let rep = 1; rep <= REPS; rep++) {
      for (const s of setups) {
        await throughputRun(s, rep, etcdPids);
        if (s.cluster) await cleanPrefix(s.cluster, `tp${prefixSeq - 1}/`);
      }
    }
  }

  if (PHASES.has('propagation')) {
    const lbs: ChildProcess[] = [];
    const agents: AgentProc[] = [];
    const base = http.createServer((_req, res) => res.end('ok base\n'));
    const basePort = await freePort();
    await new Promise<void>((r) => base.listen(basePort, '127.0.0.1', r));
    try {
      const startLb = async (registry: string): Promise<{ url: string; admin: string }> => {
        const port = await freePort();
        const admin = await freePort();
        lbs.push(startOwned(process.execPath, switchyardArgs(SY_MAIN, 'lb', '--listen', `127.0.0.1:${port}`, '--registry', registry, '--service', 'web', '--admin-addr', `127.0.0.1:${admin}`, '--log-level', 'warn')));
        return { url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${admin}` };
      };
      const emb = await startAgent('prop-embedded', 'embedded', 'always');
      agents.push(emb);
      const store = etcd3.url('prop');
      const ca = await startAgent('prop-a', store);
      agents.push(ca);
      const cb = await startAgent('prop-b', store);
      agents.push(cb);
      await registerWeb(emb.url, 'web-base', basePort);
      await registerWeb(ca.url, 'web-base', basePort);
      const lbE = await startLb(emb.url);
      const lbC = await startLb(cb.url);
      const setups: PropSetup[] = [
        { key: 'embedded', label: 'embedded (A = B: one agent)', a: emb, b: emb, lbUrl: lbE.url, lbAdmin: lbE.admin },
        { key: 'etcd3', label: 'etcd, 3 members (A ≠ B: two agents)', a: ca, b: cb, lbUrl: lbC.url, lbAdmin: lbC.admin },
      ];
      const pools = new Map<string, Pool>();
      for (const s of setups) {
        await waitHttp(`${s.lbUrl}/`);
        pools.set(s.key, new Pool(s.lbUrl, { connections: 2, keepAliveTimeout: 60_000 }));
      }
      const q = await quiet.wait();
      if (q.othersCores >= QUIET_CORES) notes.push(`Other processes used ${fmt(q.othersCores)} cores when the propagation phase started.`);
      // Warm-up rounds (not recorded): the first registrations after a start pay for JIT and lazy initialisation.
      for (let round = 0; round < PROP_WARMUP; round++) for (const s of setups) await propagationSample(s, -1 - round, pools.get(s.key) as Pool, false);
      const a = sample();
      for (let round = 0; round < SAMPLES; round++) {
        // Alternate which setup goes first, so neither always follows the other's cleanup.
        const order = round % 2 === 0 ? setups : [...setups].reverse();
        for (const s of order) {
          const r = await propagationSample(s, round, pools.get(s.key) as Pool);
          if (round % 10 === 0 || r.trafficLb === null || r.visibleB === null) {
            console.log(`[propagation ${round + 1}/${SAMPLES}] ${s.label.padEnd(36)} ack A ${fmt(r.ackA, 1)} visible at B ${fmt(r.visibleB, 1)} traffic via LB ${fmt(r.trafficLb, 1)} ms (index A ${r.indexA ?? '–'} B ${r.indexB ?? '–'}, ${r.lbPolls} polls)`);
          }
        }
      }
      const c = cores(a, sample());
      if (c.others >= QUIET_CORES) notes.push(`Other processes used ${fmt(c.others)} cores on average during the propagation phase.`);
      for (const p of pools.values()) await p.close();
    } finally {
      for (const lb of lbs) await stopOwned(lb);
      for (const ag of agents) await stopAgent(ag);
      base.closeAllConnections();
      await new Promise<void>((r) => base.close(() => r()));
    }
  }
} catch (err) {
  exitCode = 1;
  console.error(`bench:cluster failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  notes.push(`The run stopped early with an error: ${errMsg(err)}`);
} finally {
  await watchDispatcher.close().catch(() => undefined);
  for (const c of clusters) await c.stop();
  clusters.length = 0;
}
const fsyncEnd = fdatasyncCost();
console.log(`fdatasync of 4 KiB in ${tmpdir()} at the end: p50 ${fmt(fsyncEnd.p50)} ms p99 ${fmt(fsyncEnd.p99)} ms mean ${fmt(fsyncEnd.mean)} ms`);

// ---------------------------------------------------------------------------------------------------------
// Report

const spread = Math.max(...(['embedded-always', 'embedded-none', 'etcd1', 'etcd3', 'etcd3x2'] as const).map((k) => {
  const xs = tputRuns.filter((r) => r.setup === k).map((r) => r.rps);
  return xs.length > 1 ? Math.max(...xs) / Math.min(...xs) : NaN;
}).filter((x) => Number.isFinite(x)));
const md: string[] = [];
const line = (s = ''): void => void md.push(s);
line('# Cluster benchmark (etcd store vs embedded)');
line();
line(`Run ${startedAt.toISOString()} on ${machine}. Commit ${commit}${dirtySrc.length > 0 ? ` with uncommitted changes in src/ (${dirtySrc.length} file(s); dist/ was built from that working tree)` : ''}.`);
line();
line(
  `Everything on 127.0.0.1; agents and balancers are \`dist/cli/main.js\` in their own processes, etcd members are real \`etcd\` processes started by test/helpers/etcd.ts (heartbeat 50 ms, election timeout 500 ms, data dirs in ${tmpdir()} (${tmpFs}), the same filesystem as the embedded store's data dir). The machine has ${NCPU} cores shared by etcd, the agents, the load generator and other engineers' test runs, so absolute numbers are noisy${Number.isFinite(spread) ? ` (in this run the same setup's registration rate varied up to ${fmt(spread, 1)} × between repetitions; the "each run" column shows every run with the cores other processes used meanwhile)` : ''}: the ratios are indicative only, and the CPU-per-registration columns are steadier than the rates. The load average was ${load0.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min) at the start.`,
);
line();

const setupLabels: Record<SetupKey, string> = {
  'embedded-always': 'embedded, `--sync always` (default)',
  'embedded-none': 'embedded, `--sync none`',
  etcd1: 'etcd, 1 member, 1 agent',
  etcd3: 'etcd, 3 members, 1 agent',
  etcd3x2: 'etcd, 3 members, 2 agents loaded at once (sum)',
};
if (PHASES.has('throughput')) {
  line('## 1. Registration throughput');
  line();
  line(
    `\`wrk -t1 -c${CONC} -d${DUR}s -s bench/conf/register.lua\` (the script bench/registry.ts uses): every request is \`PUT /v1/agent/service/register\` of a new instance (unique ID, ~150-byte body, a TTL check, so 2 keys per write), keep-alive. A fresh agent (fresh data dir, fresh etcd key prefix) per run, ${WARM_S} s of wrk warm-up first; setups interleaved, ${REPS} repetition(s); the table shows medians (errors: sum over runs incl. warm-up). Two agents: one wrk per agent with ${Math.round(CONC / 2)} connections each (same total concurrency), reg/s summed, latencies shown per agent (A / B). CPU: utime+stime from /proc over the measured ${DUR} s, in cores (agent cores: both agents together in the two-agent row; etcd cores: all members of the cluster in use). Before each run the harness waits (≤ ${QUIET_WAIT_S} s) until other processes use < ${QUIET_CORES} cores.`,
  );
  line();
  line(`| setup | reg/s | each run (others' cores) | × embedded always | p50 ms | p99 ms | errors | agent cores | agent CPU µs/reg | etcd cores | etcd CPU µs/reg | etcd WAL fsyncs per 1000 reg (all members) | mean WAL fsync ms | others' cores (max) |`);
  line('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const ref = median(tputRuns.filter((r) => r.setup === 'embedded-always').map((r) => r.rps));
  for (const key of Object.keys(setupLabels) as SetupKey[]) {
    const rs = tputRuns.filter((r) => r.setup === key);
    if (rs.length === 0) {
      line(`| ${setupLabels[key]} | – | – | – | – | – | – | – | – | – | – | – | – | – |`);
      continue;
    }
    const rps = median(rs.map((r) => r.rps));
    const perAgent = (f: (w: Wrk) => number): string => {
      const n = Math.max(...rs.map((r) => r.wrk.length));
      return Array.from({ length: n }, (_, i) => fmt(median(rs.map((r) => (r.wrk[i] ? f(r.wrk[i]) : NaN))), 1)).join(' / ');
    };
    const etcdRs = rs.filter((r) => r.etcd !== null);
    const perK = median(etcdRs.map((r) => ((r.etcd as EtcdDelta).walFsyncs / Math.max(1, regsOf(r))) * 1000));
    line(
      `| ${setupLabels[key]} | ${rps.toFixed(0)} | ${rs.map((r) => `${r.rps.toFixed(0)} (${fmt(r.othersCores, 1)})`).join(', ')} | ${fmt(rps / ref)} | ${perAgent((w) => w.p50_ms)} | ${perAgent((w) => w.p99_ms)} | ${rs.reduce((s, r) => s + r.errors, 0)} | ${fmt(median(rs.map((r) => r.agentCpuS / r.wallS)))} | ${fmt(median(rs.map((r) => (r.agentCpuS * 1e6) / regsOf(r))), 0)} | ${etcdRs.length > 0 ? fmt(median(rs.map((r) => r.etcdCpuS / r.wallS))) : '–'} | ${etcdRs.length > 0 ? fmt(median(rs.map((r) => (r.etcdCpuS * 1e6) / regsOf(r))), 0) : '–'} | ${etcdRs.length > 0 ? fmt(perK, 0) : '–'} | ${etcdRs.length > 0 ? fmt(median(etcdRs.map((r) => (r.etcd as EtcdDelta).walFsyncMs))) : '–'} | ${fmt(Math.max(...rs.map((r) => r.othersCores)))} |`,
    );
  }
  line();
  const rpsOf = (k: SetupKey): number => median(tputRuns.filter((r) => r.setup === k).map((r) => r.rps));
  const r1 = rpsOf('etcd1');
  const r3 = rpsOf('etcd3');
  const r32 = rpsOf('etcd3x2');
  const bestOf = (k: SetupKey): number => Math.max(...tputRuns.filter((r) => r.setup === k).map((r) => r.rps));
  const bref = bestOf('embedded-always');
  line(
    `Ratios (medians): etcd 1 member = ${fmt(r1 / ref)} × embedded; etcd 3 members = ${fmt(r3 / ref)} × embedded and ${fmt(r3 / r1)} × 1 member; two agents on 3 members = ${fmt(r32 / r3)} × one agent on 3 members; embedded sync=none = ${fmt(rpsOf('embedded-none') / ref)} × sync=always. The same ratios from each setup's best run (the least disturbed by other processes): ${fmt(bestOf('etcd1') / bref)}, ${fmt(bestOf('etcd3') / bref)} and ${fmt(bestOf('etcd3') / bestOf('etcd1'))}, ${fmt(bestOf('etcd3x2') / bestOf('etcd3'))}, ${fmt(bestOf('embedded-none') / bref)}.`,
  );
  line();
  const usOf = (k: SetupKey): number => median(tputRuns.filter((r) => r.setup === k).map((r) => (r.agentCpuS * 1e6) / regsOf(r)));
  const etcdRuns = tputRuns.filter((r) => r.etcd !== null);
  const boxBusy = median(etcdRuns.map((r) => r.boxCores));
  const journalMiB = median(etcdRuns.flatMap((r) => r.journalBytes)) / 2 ** 20;
  const perAgentAcked = median(etcdRuns.map((r) => r.acked / r.wrk.length));
  if (etcdRuns.length > 0) {
    line(
      `Where the time goes: per registration the etcd-backed agent used ${fmt(usOf('etcd1') / usOf('embedded-always'), 1)} × the CPU of the embedded one (${fmt(usOf('etcd1'), 0)} µs vs ${fmt(usOf('embedded-always'), 0)} µs, 1-member runs): each registration is its own etcd transaction over gRPC (see the registrations per raft proposal below: no group commit on the agent side; etcd batches only the fsyncs) that then comes back through the agent's watch, and the agent's anti-entropy journal (local-services.json in its data dir, every service and check registered through it) is rewritten whole, at most every 100 ms while registrations arrive — it held ${fmt(journalMiB, 1)} MiB after a run (median, ~${fmt(perAgentAcked, 0)} registrations per agent), so that cost grows with the number of services an agent has registered. With two agents on one catalog a registration cost ${fmt(usOf('etcd3x2'), 0)} µs of agent CPU (both agents together) against ${fmt(usOf('etcd3'), 0)} µs with one: every agent applies every write to its own mirror of the whole catalog, so a second agent adds API and read capacity but each write is processed by both. During the etcd runs the box had ${fmt(boxBusy)} of ${NCPU} cores busy (median; agents + etcd + wrk + other engineers' processes)${boxBusy >= 0.9 * NCPU ? ', so these throughputs are bounded by CPU on this machine at least as much as by fsync latency' : ''}.`,
    );
    line();
  }
  const lossy = tputRuns.filter((r) => r.catalog.some((n) => !(n >= r.acked)));
  const unequal = tputRuns.filter((r) => r.catalog.length > 1 && new Set(r.catalog).size > 1);
  line(
    `Check: after each run every agent's catalog held at least as many instances as registrations were acknowledged (${lossy.length === 0 ? `true for all ${tputRuns.length} runs` : `**not** for ${lossy.map((r) => `${r.setup} rep ${r.rep} (${r.catalog.join('/')} < ${r.acked})`).join(', ')}`}); in the two-agent runs both agents listed the same number of instances (${unequal.length === 0 ? 'yes' : `**no**: ${unequal.map((r) => `rep ${r.rep} ${r.catalog.join(' vs ')}`).join(', ')}`}).`,
  );
  line();
}

interface HopStats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}
const hop = (xs: (number | null)[]): HopStats => {
  const s = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1] ?? NaN };
};
if (PHASES.has('propagation')) {
  line('## 2. Change propagation');
  line();
  line(
    `${SAMPLES} samples per setup, setups alternating. Each sample starts an http server on a fresh port in the harness and registers it as a new instance of \`web\` with \`PUT /v1/agent/service/register\` at agent A, while (a) a blocking query \`GET /v1/health/service/web?index=<current>&wait=6s\` is parked at agent B and (b) the harness polls a \`switchyard lb --registry B --service web\` (≤ 1 request per ms, ≤ 2 in flight, only from just before the write until the new backend is hit; round-robin over the base backend and the new one, so ~2 ms resolution). All times are from sending the PUT, on the harness's clock; after each sample the instance is deregistered and the harness waits until the balancer's /routes no longer lists it. etcd: A and B are two agents on the 3-member cluster (one key prefix); embedded: A = B, one agent (sync=always). No load besides the poller.`,
  );
  line();
  line('| setup | hop | samples | p50 ms | p99 ms | max ms | etcd ÷ embedded (p50 / p99) |');
  line('|---|---|---:|---:|---:|---:|---:|');
  const hops: { name: string; get: (p: PropSample) => number | null }[] = [
    { name: 'PUT acknowledged by A', get: (p) => p.ackA },
    { name: 'visible to the blocking query at B', get: (p) => p.visibleB },
    { name: 'first request via the balancer (following B) at the new backend — end to end', get: (p) => p.trafficLb },
    { name: 'balancer after B (end to end − visible at B)', get: (p) => (p.trafficLb === null || p.visibleB === null ? null : p.trafficLb - p.visibleB) },
  ];
  for (const h of hops) {
    const e = hop(propSamples.filter((p) => p.setup === 'embedded').map(h.get));
    const c = hop(propSamples.filter((p) => p.setup === 'etcd3').map(h.get));
    const ratio = h.name.startsWith('balancer after') ? '–' : `${fmt(c.p50 / e.p50, 1)} / ${fmt(c.p99 / e.p99, 1)}`;
    line(`| embedded | ${h.name} | ${e.n} | ${fmt(e.p50, 1)} | ${fmt(e.p99, 1)} | ${fmt(e.max, 1)} | |`);
    line(`| etcd, 3 members | ${h.name} | ${c.n} | ${fmt(c.p50, 1)} | ${fmt(c.p99, 1)} | ${fmt(c.max, 1)} | ${ratio} |`);
  }
  line();
  const missB = propSamples.filter((p) => p.visibleB === null).length;
  const missLb = propSamples.filter((p) => p.trafficLb === null).length;
  const etcdP = propSamples.filter((p) => p.setup === 'etcd3' && p.indexA !== null && p.indexB !== null);
  const sameIdx = etcdP.filter((p) => p.indexA === p.indexB).length;
  const spurious = propSamples.reduce((s, p) => s + p.spuriousWakes, 0);
  const pollRate = median(propSamples.map((p) => p.lbPollRate));
  const pollErrs = propSamples.reduce((s, p) => s + p.lbPollErrors, 0);
  const bBeforeAck = propSamples.filter((p) => p.setup === 'etcd3' && p.visibleB !== null && p.visibleB < p.ackA).length;
  line(
    `Misses (nothing within ${SAMPLE_TIMEOUT_MS / 1000} s): ${missB} at B, ${missLb} at the balancer. X-Consul-Index at A (read right after B answered) equal to the index B answered with: ${sameIdx} of ${etcdP.length} etcd samples. Blocking-query wake-ups at B without the new instance: ${spurious}. The poller achieved a median ${fmt(pollRate, 0)} requests/s through the balancer while it ran (so the balancer column's resolution is ~${fmt(2000 / pollRate, 1)} ms), with ${pollErrs} failed polls. ${PROP_WARMUP} warm-up samples per setup were taken first and discarded. In ${bBeforeAck} of ${propSamples.filter((p) => p.setup === 'etcd3').length} etcd samples B answered before A acknowledged the PUT (A answers only once its own watch has delivered the write, so its ack includes one more watch hop). Percentiles take the ceil(p·n)-th sample, so with ${SAMPLES} samples p99 is the maximum. "Balancer after B" is the difference of two clocks on the same event: the balancer's own blocking query at B and the harness's wake on the same change, so it is the balancer's table rebuild plus the poll resolution, and can be ≤ 0.`,
  );
  line();
}

line('## fsync cost');
line();
const allEtcd = tputRuns.filter((r) => r.etcd !== null);
const etcdLines = (['etcd1', 'etcd3', 'etcd3x2'] as const).map((k) => {
  const rs = allEtcd.filter((r) => r.setup === k);
  if (rs.length === 0) return null;
  return `${setupLabels[k]}: ${fmt(median(rs.map((r) => (r.etcd as EtcdDelta).walFsyncs / r.wallS / (r.etcd as EtcdDelta).members)), 0)} WAL fsyncs/s per member (mean ${fmt(median(rs.map((r) => (r.etcd as EtcdDelta).walFsyncMs)))} ms each), ${fmt(median(rs.map((r) => regsOf(r) / Math.max(1, (r.etcd as EtcdDelta).proposals))), 2)} registrations per raft proposal, ${fmt(median(rs.map((r) => ((r.etcd as EtcdDelta).walFsyncs / (r.etcd as EtcdDelta).members) / Math.max(1, regsOf(r)))), 3)} fsyncs per registration per member, backend (bbolt) commits mean ${fmt(median(rs.map((r) => (r.etcd as EtcdDelta).backendCommitMs)))} ms`;
}).filter((s): s is string => s !== null);
line(
  `Both stores are durable per acknowledged write. The embedded store (\`--sync always\`) fdatasyncs its WAL once per group commit before acknowledging (\`--sync none\` skips it). etcd fsyncs its raft WAL once per batch of entries it appends (leader and every follower, before acknowledging to the leader), and its bbolt backend commits in batches every 100 ms or 10,000 writes; a write is acknowledged after a quorum has fsynced it. A raw 4 KiB write + fdatasync in ${tmpdir()} (${tmpFs}; 200 in a row, one process) cost p50 ${fmt(fsync.p50)} ms, p99 ${fmt(fsync.p99)} ms, mean ${fmt(fsync.mean)} ms before the run and p50 ${fmt(fsyncEnd.p50)} ms, p99 ${fmt(fsyncEnd.p99)} ms, mean ${fmt(fsyncEnd.mean)} ms after it. From etcd's own metrics (\`etcd_disk_wal_fsync_duration_seconds\`, \`etcd_disk_backend_commit_duration_seconds\`, \`etcd_server_proposals_committed_total\`, deltas over the measured ${DUR} s):`,
);
line();
for (const l of etcdLines) line(`- ${l}.`);
if (etcdLines.length === 0) line('- (throughput phase not run)');
line();

const errorKinds = (ws: readonly Wrk[]): string =>
  (['non2xx', 'connect', 'read', 'write', 'timeout'] as const)
    .map((k) => [k, ws.reduce((s, w) => s + w[k], 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k === 'timeout' ? 'timeouts (no answer within wrk\'s 2 s)' : k}`)
    .join(', ');
for (const r of tputRuns.filter((x) => x.errors > 0)) {
  const main = errorKinds(r.wrk);
  const warm = errorKinds(r.warm);
  notes.push(`${setupLabels[r.setup]}, rep ${r.rep}: ${[main && `${main} in the measured run`, warm && `${warm} in the warm-up`].filter(Boolean).join('; ')} (other processes used ${fmt(r.othersCores)} cores meanwhile); the catalog still held every acknowledged registration (${r.catalog.join('/')} instances ≥ ${r.acked} acknowledged: ${r.catalog.every((n) => n >= r.acked) ? 'yes' : '**no**'}).`);
}
const disturbed = tputRuns.filter((r) => r.othersCores >= QUIET_CORES);
if (disturbed.length > 0) notes.push(`${disturbed.length} of ${tputRuns.length} throughput runs had other processes using ≥ ${QUIET_CORES} cores while measuring: ${disturbed.map((r) => `${r.setup} rep ${r.rep} (${fmt(r.othersCores)})`).join(', ')}.`);
if (quiet.exhausted()) notes.push(`The quiet-box wait budget (${QUIET_BUDGET_S} s) ran out; later runs did not wait.`);
if (notes.length > 0) {
  line('## Notes');
  line();
  for (const n of notes) line(`- ${n}`);
  line();
}
line(`Raw data: bench/results/cluster-runs.jsonl (one line per throughput run and per propagation sample). Rerun: \`npm run bench:cluster\` (env BENCH_REPS, BENCH_DUR, BENCH_CONCURRENCY, BENCH_SAMPLES, BENCH_PHASES=throughput,propagation).`);

console.log(`\n${md.join('\n')}\n`);
if (exitCode === 0) {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/cluster.md', `${md.join('\n')}\n`);
  const raw = [...tputRuns, ...propSamples].map((r) => JSON.stringify(r));
  writeFileSync('bench/results/cluster-runs.jsonl', raw.join('\n') + (raw.length > 0 ? '\n' : ''));
  console.log('wrote bench/results/cluster.md, cluster-runs.jsonl');
} else console.log('the run failed: bench/results/cluster.md is left as it was');
process.exit(exitCode);
