// Soak benchmark: `switchyard lb` (fast data plane, 1 worker) in front of four Node backends registered
// in a real `switchyard agent`, under wrk load for SOAK_MINUTES (default 30) while one instance is deregistered or
// registered back every 2 s and one backend is killed (kill -9), restarted and re-registered every 5 minutes. Every
// minute it samples the balancer's RSS and open fds (/proc/<pid>/status, /proc/<pid>/fd), its event-loop delay and
// GC pauses (/debug/runtime, one window per minute), its retries and ejections (/metrics), and the minute's requests
// and errors (one wrk run per minute). Writes bench/results/soak.md: the per-minute table and whether RSS and fds
// stayed flat (growth < 5 % from minute 5 to the end). Not part of CI.
//
// Usage: npm run bench:soak
//   SOAK_MINUTES=30 SOAK_CONCURRENCY=32 SOAK_CHANGE_EVERY_S=2 SOAK_KILL_EVERY_S=300 SOAK_DOWN_S=5 SOAK_WARM_MINUTES=5
//   SOAK_KILL_EVERY_S   a backend is killed at the middle of every such interval (2:30, 7:30, … by default), so a kill
//                       never falls between two wrk runs; SOAK_DOWN_S later it is restarted on its port and re-registered
//   SOAK_WARM_MINUTES   the minute whose sample is the baseline of the flatness check
// A shortened run (fewer minutes or other intervals) is marked as such at the top of the report.
// Needs wrk (Debian: apt-get install -y wrk). Everything listens on 127.0.0.1 (ephemeral ports); every process it
// starts is stopped by PID at the end, and killed by PID if the harness dies.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import type { RuntimeReport } from '../src/core/runtime-stats.js';
import { fdKinds } from './lib/fds.js';
import type { FdKinds } from './lib/fds.js';
import { fdCount, freePort, rssMiB, startOwned, stopOwned, switchyardArgs, waitHttp } from './lib/proc.js';
import { killTrackedLeftovers, trackDescendants } from './lib/procfs.js';
import { gcTotals, readRuntime } from './lib/runtime.js';
import { envNum, findBin, firstLine, fmt, runWrkJson, sleep, wrkErrors } from './lib/util.js';
import type { WrkReport } from './lib/util.js';

const MINUTES = Math.round(envNum('SOAK_MINUTES', 30));
const CONC = Math.round(envNum('SOAK_CONCURRENCY', 32));
const CHANGE_EVERY_S = envNum('SOAK_CHANGE_EVERY_S', 2);
const KILL_EVERY_S = envNum('SOAK_KILL_EVERY_S', 300);
const DOWN_S = envNum('SOAK_DOWN_S', 5);
const WARM_MINUTES = Math.round(envNum('SOAK_WARM_MINUTES', 5));
const FLAT_LIMIT = 0.05;
const BACKENDS = 4;
const SY_MAIN = 'dist/cli/main.js';
const FULL = MINUTES >= 30 && CHANGE_EVERY_S === 2 && KILL_EVERY_S === 300 && WARM_MINUTES === 5;

const errMsg = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const mmss = (ms: number): string => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

// ---------------------------------------------------------------------------------------------------------
// Processes

const tmpRoot = mkdtempSync(join(tmpdir(), 'sy-soak-'));
process.on('exit', () => rmSync(tmpRoot, { recursive: true, force: true }));
const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
const owned = new Set<ChildProcess>();
function own(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const c = startOwned(process.execPath, args, { env });
  owned.add(c);
  c.on('exit', () => owned.delete(c));
  return c;
}
function track(): void {
  trackDescendants([...owned].map((c) => c.pid).filter((p): p is number => p !== undefined));
}

async function startBackend(port: number): Promise<ChildProcess> {
  const c = own(['--import', 'tsx', 'bench/proxies/node-backend.ts'], { PORTS: String(port) });
  await waitHttp(`http://127.0.0.1:${port}/`);
  track();
  return c;
}
/** kill -9 by PID and wait until it is reaped. */
async function killBackend(c: ChildProcess): Promise<void> {
  if (!alive(c) || c.pid === undefined) return;
  const gone = new Promise((r) => c.once('exit', r));
  process.kill(c.pid, 'SIGKILL');
  await gone;
}

async function putService(agentUrl: string, what: 'register' | 'deregister', port: number): Promise<void> {
  const id = `web-${port}`;
  const url = what === 'register' ? `${agentUrl}/v1/agent/service/register` : `${agentUrl}/v1/agent/service/deregister/${encodeURIComponent(id)}`;
  const r = await request(url, { method: 'PUT', ...(what === 'register' ? { body: JSON.stringify({ Name: 'web', ID: id, Address: '127.0.0.1', Port: port }) } : {}), headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${what} ${id}: HTTP ${r.statusCode} ${text}`);
}

/** The balancer's counters this harness follows, from its Prometheus text exposition. */
interface LbCounters {
  retries: number;
  ejections: number;
  drainingPools: number;
  /** switchyard_lb_requests_total summed by status label. */
  byStatus: Map<string, number>;
}
async function lbCounters(adminUrl: string): Promise<LbCounters> {
  const r = await request(`${adminUrl}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${adminUrl}/metrics: HTTP ${r.statusCode}`);
  const out: LbCounters = { retries: 0, ejections: 0, drainingPools: 0, byStatus: new Map() };
  for (const l of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(l);
    if (!m) continue;
    const v = Number(m[3]);
    if (m[1] === 'switchyard_lb_retries_total') out.retries += v;
    else if (m[1] === 'switchyard_lb_ejections_total') out.ejections += v;
    else if (m[1] === 'switchyard_lb_draining_pools') out.drainingPools += v;
    else if (m[1] === 'switchyard_lb_requests_total') {
      const status = /(?:^|,)status="([^"]*)"/.exec(m[2] ?? '')?.[1] ?? '?';
      out.byStatus.set(status, (out.byStatus.get(status) ?? 0) + v);
    }
  }
  return out;
}
/** Statuses other than 2xx/3xx that the balancer answered (or 0: the client went away) between two scrapes. */
function badStatuses(a: LbCounters, b: LbCounters): Record<string, number> {
  return Object.fromEntries(
    [...b.byStatus]
      .filter(([s]) => !/^[23]\d\d$/.test(s))
      .map(([s, v]) => [s, v - (a.byStatus.get(s) ?? 0)] as const)
      .filter(([, d]) => d > 0),
  );
}
/** "502×3 0×1", or "" when there were none. */
const statusText = (b: Record<string, number> | undefined): string => Object.entries(b ?? {}).map(([s, d]) => `${s}×${d}`).join(' ');

/** Polls until two reads 100 ms apart agree (sockets of a finished wrk run are being closed), at most 2 s. */
async function settledFds(pid: number): Promise<number> {
  let last = fdCount(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    const now = fdCount(pid);
    if (now === last) return now;
    last = now;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------------------
// wrk

type Wrk = WrkReport;

// ---------------------------------------------------------------------------------------------------------
// Main

interface Minute {
  minute: number;
  /** Since the start of the soak. */
  endedMs: number;
  wrk?: Wrk;
  wrkError?: string;
  lbRssMiB: number;
  lbFds: number;
  /** The same fds by kind, read right after the count settled. */
  lbFdKinds?: FdKinds;
  agentRssMiB: number;
  agentFds: number;
  runtime?: RuntimeReport;
  runtimeError?: string;
  /** Deltas over the minute, from the balancer's /metrics. */
  retries: number;
  ejections: number;
  drainingPools: number;
  /** Non-2xx/3xx statuses the balancer answered in the minute (its own count); absent when /metrics was unreadable. */
  badStatuses?: Record<string, number>;
  changes: number;
  changeErrors: number;
  events: string[];
}

const wrkBin = findBin('wrk');
if (!wrkBin) {
  console.error('bench:soak needs wrk (Debian: apt-get install -y wrk).');
  process.exit(2);
}
if (!existsSync(SY_MAIN)) {
  console.error(`bench:soak needs the build in dist/ (${SY_MAIN}): run npm run build, or use npm run bench:soak.`);
  process.exit(2);
}

const startedAt = new Date();
const load0 = loadavg();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${release()}; Node ${process.version}, ${firstLine(wrkBin, ['-v']).split(' ').slice(0, 2).join(' ')}; load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}`;
const settings = `SOAK_MINUTES=${MINUTES} SOAK_CONCURRENCY=${CONC} SOAK_CHANGE_EVERY_S=${CHANGE_EVERY_S} SOAK_KILL_EVERY_S=${KILL_EVERY_S} SOAK_DOWN_S=${DOWN_S} SOAK_WARM_MINUTES=${WARM_MINUTES}`;
console.log(`bench:soak — ${machine}\n${settings}${FULL ? '' : ' (shortened run)'}`);

const minutes: Minute[] = [];
const kills: { atMs: number; port: number; downMs: number; error?: string }[] = [];
const notes: string[] = [
  'wrk opens its connections anew every minute (one run per minute), so the balancer also sees a burst of new client connections at each minute boundary.',
];
let stoppedEarly: string | undefined;
let exitCode = 0;
let stopping = false;
let lbPid: number | undefined;
let agentPid: number | undefined;

try {
  const ports = await Promise.all(Array.from({ length: BACKENDS }, () => freePort()));
  const backends = new Map<number, ChildProcess>();
  for (const p of ports) backends.set(p, await startBackend(p));

  const agentPort = await freePort();
  const agentDir = join(tmpRoot, 'agent');
  mkdirSync(agentDir);
  const agent = own(switchyardArgs(SY_MAIN, 'agent', '--http-addr', `127.0.0.1:${agentPort}`, '--data-dir', agentDir, '--node', 'soak', '--log-level', 'warn'));
  agentPid = agent.pid;
  const agentUrl = `http://127.0.0.1:${agentPort}`;
  await waitHttp(`${agentUrl}/v1/status/leader`);
  for (const p of ports) await putService(agentUrl, 'register', p);

  const lbPort = await freePort();
  const adminPort = await freePort();
  const lb = own(switchyardArgs(SY_MAIN, 'lb', '--listen', `127.0.0.1:${lbPort}`, '--registry', agentUrl, '--service', 'web', '--admin-addr', `127.0.0.1:${adminPort}`, '--log-level', 'warn', '--workers', '1', '--data-plane', 'fast'));
  lbPid = lb.pid;
  const lbUrl = `http://127.0.0.1:${lbPort}/`;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  // Ready when every backend has answered through the balancer.
  const seen = new Set<string>();
  const readyBy = Date.now() + 20_000;
  while (seen.size < BACKENDS) {
    if (!alive(lb)) throw new Error(`switchyard lb exited (${lb.exitCode ?? lb.signalCode}) before answering`);
    if (Date.now() > readyBy) throw new Error(`switchyard lb did not reach all ${BACKENDS} backends within 20 s (saw ${[...seen].join(', ')})`);
    try {
      const r = await request(lbUrl, { headersTimeout: 2000, bodyTimeout: 2000 });
      const body = await r.body.text();
      if (r.statusCode === 200) seen.add(body.trim());
      else await sleep(100);
    } catch {
      await sleep(100);
    }
  }
  track();
  console.log(`ready: lb ${lbUrl} (pid ${lbPid ?? '?'}), agent ${agentUrl}, backends ${ports.join(', ')}`);

  // The flapping instance is the last backend; kills rotate over the others, so a kill never hits a deregistered one.
  const flapPort = ports[BACKENDS - 1] as number;
  const killable = ports.slice(0, BACKENDS - 1);
  let events: string[] = [];
  let changes = 0;
  let changeErrors = 0;
  const t0 = performance.now();
  const since = (): number => performance.now() - t0;
  const endMs = MINUTES * 60_000;
  /** Sleeps until `at` (ms since t0) in steps of ≤ 1 s, returning early once the soak stops. */
  const until = async (at: number): Promise<void> => {
    while (!stopping && since() < at) await sleep(Math.min(1000, at - since()));
  };

  const changeLoop = (async () => {
    let registered = true;
    for (let i = 1; !stopping; i++) {
      await until(i * CHANGE_EVERY_S * 1000);
      if (stopping) break;
      try {
        await putService(agentUrl, registered ? 'deregister' : 'register', flapPort);
        registered = !registered;
        changes++;
      } catch (err) {
        changeErrors++;
        events.push(`${mmss(since())} change failed: ${errMsg(err)}`);
      }
    }
    if (!registered) await putService(agentUrl, 'register', flapPort).catch(() => undefined);
  })();

  const killLoop = (async () => {
    for (let k = 1; ; k++) {
      const at = (k - 0.5) * KILL_EVERY_S * 1000;
      if (at >= endMs) break;
      await until(at);
      if (stopping) break;
      const port = killable[(k - 1) % killable.length] as number;
      const victim = backends.get(port);
      const killedAt = since();
      try {
        if (victim) await killBackend(victim);
        events.push(`${mmss(killedAt)} kill -9 backend :${port}`);
        await sleep(DOWN_S * 1000);
        backends.set(port, await startBackend(port));
        await putService(agentUrl, 'register', port);
        kills.push({ atMs: killedAt, port, downMs: since() - killedAt });
        events.push(`${mmss(since())} :${port} restarted and re-registered`);
      } catch (err) {
        kills.push({ atMs: killedAt, port, downMs: since() - killedAt, error: errMsg(err) });
        events.push(`${mmss(since())} restarting :${port} failed: ${errMsg(err)}`);
      }
    }
  })();

  let lastMetrics = await lbCounters(adminUrl);
  await readRuntime(adminUrl, true);
  let lastChanges = 0;
  let lastChangeErrors = 0;
  for (let m = 1; m <= MINUTES; m++) {
    let wrk: Wrk | undefined;
    let wrkError: string | undefined;
    try {
      wrk = await runWrkJson<Wrk>(lbUrl, { seconds: 60, conns: CONC, script: 'bench/conf/wrk-report.lua', latency: true });
    } catch (err) {
      wrkError = errMsg(err);
    }
    const endedMs = since();
    if (!alive(lb)) {
      stoppedEarly = `the balancer exited (${lb.exitCode ?? lb.signalCode}) during minute ${m}`;
      minutes.push({ minute: m, endedMs, ...(wrk ? { wrk } : {}), ...(wrkError ? { wrkError } : {}), lbRssMiB: NaN, lbFds: NaN, agentRssMiB: NaN, agentFds: NaN, retries: NaN, ejections: NaN, drainingPools: NaN, changes: changes - lastChanges, changeErrors: changeErrors - lastChangeErrors, events });
      break;
    }
    const lbFds = await settledFds(lbPid as number);
    const lbFdKinds = fdKinds(lbPid as number, { listenPort: lbPort, upstreamPorts: ports });
    const mets = await lbCounters(adminUrl).catch(() => undefined);
    let runtime: RuntimeReport | undefined;
    let runtimeError: string | undefined;
    try {
      runtime = (await readRuntime(adminUrl, true)).self;
    } catch (err) {
      runtimeError = errMsg(err);
    }
    const sample: Minute = {
      minute: m,
      endedMs,
      ...(wrk ? { wrk } : {}),
      ...(wrkError ? { wrkError } : {}),
      lbRssMiB: rssMiB(lbPid as number),
      lbFds,
      lbFdKinds,
      agentRssMiB: alive(agent) ? rssMiB(agentPid as number) : NaN,
      agentFds: fdCount(agentPid as number),
      ...(runtime ? { runtime } : {}),
      ...(runtimeError ? { runtimeError } : {}),
      retries: mets ? mets.retries - lastMetrics.retries : NaN,
      ejections: mets ? mets.ejections - lastMetrics.ejections : NaN,
      drainingPools: mets?.drainingPools ?? NaN,
      ...(mets ? { badStatuses: badStatuses(lastMetrics, mets) } : {}),
      changes: changes - lastChanges,
      changeErrors: changeErrors - lastChangeErrors,
      events,
    };
    if (mets) lastMetrics = mets;
    lastChanges = changes;
    lastChangeErrors = changeErrors;
    events = [];
    minutes.push(sample);
    console.log(
      `[${String(m).padStart(2)}/${MINUTES} ${mmss(endedMs)}] ${wrk ? `${wrk.rps.toFixed(0)} req/s, errors ${wrkErrors(wrk)}, p99 ${fmt(wrk.p99_ms)} max ${fmt(wrk.max_ms)} ms` : `wrk failed: ${wrkError ?? ''}`}; lb RSS ${fmt(sample.lbRssMiB, 1)} MiB, ${sample.lbFds} fds (${lbFdKinds.upstream} upstream, ${lbFdKinds.clients} client)${runtime ? `, ELD p99 ${fmt(runtime.eventLoopDelay.p99Ms)} max ${fmt(runtime.eventLoopDelay.maxMs)} ms` : ''}; retries ${sample.retries}, ejections ${sample.ejections}${statusText(sample.badStatuses) ? `, lb answered ${statusText(sample.badStatuses)}` : ''}; ${sample.changes} changes${sample.events.length > 0 ? `; ${sample.events.join('; ')}` : ''}`,
    );
    if (!wrk) {
      stoppedEarly = `wrk failed in minute ${m}: ${wrkError ?? ''}`;
      break;
    }
  }
  stopping = true;
  await Promise.all([changeLoop, killLoop]);
} catch (err) {
  exitCode = 1;
  stoppedEarly ??= `harness error: ${errMsg(err)}`;
  console.error(`bench:soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  stopping = true;
  track();
  await Promise.all([...owned].map((c) => stopOwned(c)));
  const leftovers = await killTrackedLeftovers(3000);
  if (leftovers.length > 0) console.warn(`killed leftover child process(es) of ours by PID: ${leftovers.join(', ')}`);
}
if (stoppedEarly) exitCode = 1;

// ---------------------------------------------------------------------------------------------------------
// Report

interface Growth {
  base: number;
  end: number;
  peak: number;
  growth: number;
  flat: boolean;
}
/** Growth of a per-minute figure from the baseline minute to the last one (and the peak in between). */
function growth(get: (m: Minute) => number, baseMinute: number): Growth | null {
  const from = minutes.filter((m) => m.minute >= baseMinute && Number.isFinite(get(m)));
  const first = from[0];
  const last = from[from.length - 1];
  if (!first || !last || first === last || first.minute !== baseMinute) return null;
  const base = get(first);
  const end = get(last);
  const g = (end - base) / base;
  return { base, end, peak: Math.max(...from.map(get)), growth: g, flat: g < FLAT_LIMIT };
}
const sampled = minutes.filter((m) => Number.isFinite(m.lbRssMiB));
const lastMinute = sampled[sampled.length - 1]?.minute ?? 0;
// With fewer minutes than the warm-up (a shortened run), the baseline is minute 1 and the report says so.
const baseMinute = lastMinute > WARM_MINUTES ? WARM_MINUTES : 1;
const rss = growth((m) => m.lbRssMiB, baseMinute);
const fds = growth((m) => m.lbFds, baseMinute);
const agentRss = growth((m) => m.agentRssMiB, baseMinute);
const agentFds = growth((m) => m.agentFds, baseMinute);
const verdict = (g: Growth | null, unit: string, digits: number): string =>
  g === null ? 'not measured (fewer than two samples from the baseline minute on)' : `${g.flat ? 'flat' : '**NOT flat**'}: ${fmt(g.base, digits)} → ${fmt(g.end, digits)} ${unit} (${g.growth >= 0 ? '+' : ''}${fmt(g.growth * 100, 1)} %, peak ${fmt(g.peak, digits)} ${unit})`;

const md: string[] = [];
const line = (s = ''): void => void md.push(s);
line('# Soak benchmark');
line();
if (!FULL) {
  line(`> **Shortened run (smoke test), not the full 30-minute soak.** Settings: \`${settings}\`. The figures show that the harness works; they say little about leaks. Run \`npm run bench:soak\` without these variables on a quiet machine for the real result.`);
  line();
}
if (stoppedEarly) {
  line(`> **The soak stopped early: ${stoppedEarly}.**`);
  line();
}
line(`Run ${startedAt.toISOString()} on ${machine}.`);
line();
line(
  `\`switchyard lb --data-plane fast --workers 1\` following a \`switchyard agent\` in which ${BACKENDS} Node backends (bench/proxies/node-backend.ts, one process each, no health checks: the balancer's passive health and retries deal with a dead one) are registered as service \`web\`. Load: one \`wrk -t1 -c${CONC} -d60s\` per minute, ${MINUTES} minute(s). Every ${CHANGE_EVERY_S} s the last backend is deregistered from the agent or registered back (${minutes.reduce((s, m) => s + m.changes, 0)} changes, ${minutes.reduce((s, m) => s + m.changeErrors, 0)} failed). At the middle of every ${KILL_EVERY_S} s interval one of the other backends (in turn) is killed with SIGKILL, restarted ${DOWN_S} s later on the same port and registered again. After each minute's wrk run the harness samples the balancer: VmRSS (/proc/<pid>/status), open fds (/proc/<pid>/fd, read until two reads 100 ms apart agree, so the finished run's client sockets are closed), GC pauses and event-loop delay of that minute (\`/debug/runtime?reset=1\`), retries and ejections (deltas of /metrics counters), and the agent's RSS and fds.`,
);
line();
line(`## Verdict (growth from minute ${baseMinute} to minute ${lastMinute}; flat = < ${FLAT_LIMIT * 100} %)`);
line();
if (baseMinute !== WARM_MINUTES) {
  line(`The run has no minute after the ${WARM_MINUTES}-minute warm-up, so the baseline is minute 1 (warm-up included: growth here is expected and not a verdict on leaks).`);
  line();
}
line(`- Balancer RSS: ${verdict(rss, 'MiB', 1)}`);
line(`- Balancer open fds: ${verdict(fds, 'fds', 0)}`);
line(`- Agent RSS (for information): ${verdict(agentRss, 'MiB', 1)}`);
line(`- Agent open fds (for information): ${verdict(agentFds, 'fds', 0)}`);
line();

const withWrk = minutes.filter((m) => m.wrk);
const totalBad: Record<string, number> = {};
for (const m of minutes) for (const [st, d] of Object.entries(m.badStatuses ?? {})) totalBad[st] = (totalBad[st] ?? 0) + d;
const killMinutes = new Set(minutes.filter((m) => m.events.some((e) => e.includes('kill -9'))).map((m) => m.minute));
const errs = (ms: readonly Minute[]): number => ms.reduce((s, m) => s + (m.wrk ? wrkErrors(m.wrk) : 0), 0);
const reqs = (ms: readonly Minute[]): number => ms.reduce((s, m) => s + (m.wrk?.requests ?? 0), 0);
line('## Errors');
line();
line(
  `${reqs(withWrk)} requests, ${errs(withWrk)} errors (wrk: connect/read/write/timeout/status ≥ 400). In the ${killMinutes.size} minute(s) with a backend kill: ${errs(withWrk.filter((m) => killMinutes.has(m.minute)))} errors in ${reqs(withWrk.filter((m) => killMinutes.has(m.minute)))} requests; in the other minutes: ${errs(withWrk.filter((m) => !killMinutes.has(m.minute)))} errors in ${reqs(withWrk.filter((m) => !killMinutes.has(m.minute)))} requests. The balancer retried ${fmt(minutes.reduce((s, m) => s + (Number.isFinite(m.retries) ? m.retries : 0), 0), 0)} request(s) on another instance and ejected an instance ${fmt(minutes.reduce((s, m) => s + (Number.isFinite(m.ejections) ? m.ejections : 0), 0), 0)} time(s); its own count of answers other than 2xx/3xx: ${statusText(totalBad) || 'none'}.`,
);
line();
if (kills.length > 0) {
  line('Backend kills:');
  line();
  for (const k of kills) line(`- ${mmss(k.atMs)}: kill -9 of the backend on :${k.port}; ${k.error ? `restart failed: ${k.error}` : `back and registered ${fmt(k.downMs / 1000, 1)} s later`}`);
  line();
}

line('## Per minute');
line();
line(
  'Errors as wrk counts them: connect/read/write/timeout/status ≥ 400; "lb answered" is the balancer\'s own count of non-2xx/3xx answers in the minute by status (0 = the client went away first). lb fds: all, then upstream (connections to the backends, of which in CLOSE_WAIT) / client / other (other sockets, pipes, files: the registry watch, admin, epoll, the log …). ELD = event-loop delay of the balancer over the minute; GC = its pauses of every kind over the minute.',
);
line();
line('| min | req/s | errors | lb answered | p99 ms | max ms | lb RSS MiB | lb fds | upstream (CLOSE_WAIT) / client / other | heap MiB | ELD p99 ms | ELD p99.9 ms | ELD max ms | GC pauses | GC total ms | GC max ms | retries | ejections | draining pools | agent RSS MiB | agent fds | changes | events |');
line('|---:|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
for (const m of minutes) {
  const w = m.wrk;
  const g = m.runtime ? gcTotals(m.runtime) : undefined;
  const e = m.runtime?.eventLoopDelay;
  const k = m.lbFdKinds;
  line(
    `| ${m.minute} | ${w ? w.rps.toFixed(0) : '–'} | ${w ? `${wrkErrors(w)} (${w.connect}/${w.read}/${w.write}/${w.timeout}/${w.non2xx})` : `wrk failed: ${(m.wrkError ?? '').replace(/\|/g, '/')}`} | ${m.badStatuses ? statusText(m.badStatuses) || 'none' : '–'} | ${fmt(w?.p99_ms)} | ${fmt(w?.max_ms)} | ${fmt(m.lbRssMiB, 1)} | ${fmt(m.lbFds, 0)} | ${k ? `${k.upstream} (${k.closeWait}) / ${k.clients} / ${k.otherTcp + k.otherSockets + k.pipes + k.other}` : '–'} | ${fmt(m.runtime ? m.runtime.heapUsedBytes / 2 ** 20 : NaN, 1)} | ${fmt(e?.p99Ms)} | ${fmt(e?.p999Ms)} | ${fmt(e?.maxMs)} | ${fmt(g?.count, 0)} | ${fmt(g?.totalMs, 1)} | ${fmt(g?.maxMs, 2)} | ${fmt(m.retries, 0)} | ${fmt(m.ejections, 0)} | ${fmt(m.drainingPools, 0)} | ${fmt(m.agentRssMiB, 1)} | ${fmt(m.agentFds, 0)} | ${m.changes}${m.changeErrors > 0 ? ` (${m.changeErrors} failed)` : ''} | ${m.events.join('; ').replace(/\|/g, '/')}${m.runtimeError ? ` /debug/runtime: ${m.runtimeError.replace(/\|/g, '/')}` : ''} |`,
  );
}
line();
if (notes.length > 0) {
  line('## Notes');
  line();
  for (const n of notes) line(`- ${n}`);
  line();
}
line(`Rerun: \`npm run bench:soak\` (env SOAK_MINUTES, SOAK_CONCURRENCY, SOAK_CHANGE_EVERY_S, SOAK_KILL_EVERY_S, SOAK_DOWN_S, SOAK_WARM_MINUTES).`);

console.log(`\n${md.join('\n')}\n`);
if (sampled.length > 0) {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/soak.md', `${md.join('\n')}\n`);
  console.log('wrote bench/results/soak.md');
} else console.log('no minute was sampled: bench/results/soak.md is left as it was');
process.exit(exitCode);
