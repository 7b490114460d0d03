// bench:scale phase "watch": blocking watchers on the loaded catalog (one hot service with H watchers, spread watchers
// over other services), churn at a fixed rate for a fixed time, and the wake latencies per group, the spurious and
// missed wakes, the writer's latency, and the agent's CPU and memory. Also used by the etcd phase with two agents.
import { join } from 'node:path';
import { fmt } from '../lib/util.js';
import { gcTotals, readAgentRuntime } from '../lib/runtime.js';
import type { RuntimeReport } from '../../src/core/runtime-stats.js';
import { analyze, readWakes, readWrites, stats } from './analyze.js';
import type { GroupResult, Wake, Write } from './analyze.js';
import type { Phase, ScaleContext } from './context.js';
import { memory, metricValue, metricsText, sampler, startWorker } from './procs.js';
import { histogramQuantiles } from '../lib/prom.js';
import { counterDelta, listenCounters } from '../lib/netstat.js';
import type { ListenCounters } from '../lib/netstat.js';
import type { AgentProc, Worker } from './procs.js';
import { loadPhase, restartPhase } from './load.js';

export interface WatchPlan {
  hot: number;
  spread: number;
  /** Service indexes: the hot one, the watched spread ones, and unwatched ones for churn. */
  hotSvc: number;
  spreadSvcs: number[];
  unwatchedSvcs: number[];
}

/** Chooses the services: hot = 0, spread = the next spread/perSpreadService, unwatched = the ones after. */
export function plan(ctx: ScaleContext, hot: number, spreadWanted: number, agents: number): WatchPlan {
  const s = ctx.settings;
  const room = agents * s.maxConnsPerAgent - hot;
  const spread = Math.max(0, Math.min(spreadWanted, room));
  const nSpread = Math.ceil(spread / s.perSpreadService);
  const spreadSvcs = Array.from({ length: nSpread }, (_, i) => 1 + i);
  const unwatched = Array.from({ length: Math.min(5000, Math.max(0, s.shape.services - 1 - nSpread)) }, (_, i) => 1 + nSpread + i);
  return { hot, spread, hotSvc: 0, spreadSvcs, unwatchedSvcs: unwatched };
}

/** The churn's instance sequence: the hot service `hotRate` times a second, the rest alternating spread and unwatched. */
function churnPlan(ctx: ScaleContext, p: WatchPlan): number[] {
  const s = ctx.settings;
  const total = Math.round(s.churnRate * s.churnSeconds);
  const hotEvery = Math.max(1, Math.round(s.churnRate / s.hotRate));
  const perService = Math.max(1, Math.floor(s.shape.instances / s.shape.services));
  const inst = (svc: number, k: number): number => svc + s.shape.services * (k % perService);
  const out: number[] = [];
  let spreadK = 0;
  let unwatchedK = 0;
  for (let k = 0; k < total; k++) {
    if (p.hot > 0 && k % hotEvery === 0) out.push(inst(p.hotSvc, k / hotEvery));
    else if (p.spreadSvcs.length > 0 && (k % 2 === 0 || p.unwatchedSvcs.length === 0)) {
      const i = spreadK++;
      out.push(inst(p.spreadSvcs[i % p.spreadSvcs.length] as number, Math.floor(i / p.spreadSvcs.length)));
    } else if (p.unwatchedSvcs.length > 0) {
      const i = unwatchedK++;
      out.push(inst(p.unwatchedSvcs[i % p.unwatchedSvcs.length] as number, Math.floor(i / p.unwatchedSvcs.length)));
    } else out.push(inst(p.hotSvc, k));
  }
  return out;
}

type Quantiles = { count: number; p50: number; p99: number };

function queueLine(q: ListenCounters): string {
  return `ListenOverflows ${q.ListenOverflows}, ListenDrops ${q.ListenDrops}, SYN retransmits ${q.TCPSynRetrans}, SYN cookies sent ${q.TCPReqQFullDoCookies}`;
}

export interface WatchRun {
  groups: GroupResult[];
  writer: ReturnType<typeof stats>;
  writes: number;
  writeErrors: number;
  late: number;
  agents: { name: string; cores: number; cpuS: number; rssBeforeMiB: number; rssParkedMiB: number; maxRssMiB: number; parked: number; serverWake: Quantiles; txnAtAgent: Quantiles; storeTxn: Quantiles; storeCommit: Quantiles; runtime: RuntimeReport | undefined }[];
  watcherErrors: number;
  /** TcpExt listen-queue counters over the watchers' connecting (this network namespace, every socket). */
  parkingQueues: ListenCounters;
  firstError: string;
  clientCpuS: number;
}

/**
 * Parks the plan's watchers (split evenly over `agents`), runs the churn against `writeTo`, and analyses. Every
 * process it starts is stopped before it returns.
 */
export async function runWatch(ctx: ScaleContext, agents: AgentProc[], writeTo: AgentProc, p: WatchPlan, label: string): Promise<WatchRun> {
  const s = ctx.settings;
  const svcName = (i: number): string => `svc-${i}`;
  // Per agent: its share of the hot watchers and of each spread service's watchers.
  const perAgent = agents.map((_, ai) => {
    const share = (n: number): number => Math.floor(n / agents.length) + (ai < n % agents.length ? 1 : 0);
    const list: { service: string; serviceIdx: number; count: number }[] = [];
    if (share(p.hot) > 0) list.push({ service: svcName(p.hotSvc), serviceIdx: p.hotSvc, count: share(p.hot) });
    let left = share(p.spread);
    for (const svc of p.spreadSvcs) {
      if (left <= 0) break;
      const c = Math.min(left, s.perSpreadService);
      list.push({ service: svcName(svc), serviceIdx: svc, count: c });
      left -= c;
    }
    return list;
  });
  const workers: Worker[] = [];
  const files: string[] = [];
  let watcherErrors = 0;
  let firstError = '';
  let clientCpuS = 0;
  const rssBefore = agents.map((a) => memory(a.pid).rssMiB);
  // Thousands of watchers connect at once: a full accept queue shows here (a dropped SYN costs its watcher a
  // second; a connection made with a SYN cookie while the queue stays full can end in a reset).
  const queuesBefore = listenCounters();
  try {
    let nextId = 0;
    const parkedReports: Promise<unknown>[] = [];
    for (const [ai, list] of perAgent.entries()) {
      // Split this agent's watchers into worker-sized chunks.
      let chunk: typeof list = [];
      let size = 0;
      const flush = (): void => {
        if (size === 0) return;
        const w = startWorker();
        workers.push(w);
        const out = join(ctx.tmp, `wakes-${label}-${workers.length}.bin`);
        files.push(out);
        w.send({ type: 'watch', port: (agents[ai] as AgentProc).port, firstId: nextId, watchers: chunk, gzip: s.gzip, waitS: 600, out, deadlineS: s.churnSeconds + 300 });
        nextId += size;
        parkedReports.push(w.next('parked', 300_000).then((m) => {
          watcherErrors += m.errors;
          firstError ||= m.firstError;
        }));
        chunk = [];
        size = 0;
      };
      for (const item of list) {
        let left = item.count;
        while (left > 0) {
          const c = Math.min(left, s.watchersPerWorker - size);
          chunk.push({ ...item, count: c });
          size += c;
          left -= c;
          if (size >= s.watchersPerWorker) flush();
        }
      }
      flush();
    }
    await Promise.all(parkedReports);
    // Parked at the agent, not just sent: its gauge counts the queries waiting in the view (bounded wait).
    const want = perAgent.map((l) => l.reduce((a, x) => a + x.count, 0));
    const deadline = Date.now() + 120_000;
    let parked = agents.map(() => 0);
    for (;;) {
      parked = await Promise.all(agents.map(async (a) => metricValue(await metricsText(a.url), 'switchyard_registry_blocking_queries')));
      if (parked.every((n, i) => n >= (want[i] ?? 0) - watcherErrors) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const parkingQueues = counterDelta(queuesBefore, listenCounters());
    console.log(`[${label}] parked at the agents: ${parked.join(' + ')} (wanted ${want.join(' + ')}), watcher errors ${watcherErrors}${firstError ? `: ${firstError}` : ''}; listen queues while connecting: ${queueLine(parkingQueues)}`);
    const rssParked = agents.map((a) => memory(a.pid).rssMiB);
    const before = await Promise.all(agents.map((a) => metricsText(a.url)));
    // The agents' GC pauses and event-loop delay over the churn window (src/core/runtime-stats.ts).
    await Promise.all(agents.map((a) => readAgentRuntime(a.url, true)));
    const samples = agents.map((a) => sampler(a.pid));
    const churner = startWorker();
    workers.push(churner);
    const writesFile = join(ctx.tmp, `writes-${label}.bin`);
    const windowFrom = Date.now();
    churner.send({ type: 'churn', port: writeTo.port, rate: s.churnRate, seconds: s.churnSeconds, conns: 16, shape: s.shape, plan: churnPlan(ctx, p), out: writesFile });
    const churned = await churner.next('churned', (s.churnSeconds + 120) * 1000);
    // Let the last fan-outs land before the watchers stop.
    await new Promise((r) => setTimeout(r, 3000));
    const windowTo = Date.now();
    const agentStats = samples.map((x) => x.stop());
    const after = await Promise.all(agents.map((a) => metricsText(a.url)));
    const runtime = await Promise.all(agents.map((a) => readAgentRuntime(a.url, false)));
    const watched = workers.filter((w) => w !== churner).map((w) => {
      const done = w.next('watched', 120_000);
      w.send({ type: 'stop' });
      return done;
    });
    for (const m of await Promise.all(watched)) {
      watcherErrors += m.errors;
      firstError ||= m.firstError;
      clientCpuS += m.cpuS;
    }
    clientCpuS += churned.cpuS;
    const writes: Write[] = readWrites(writesFile);
    const wakes: Wake[] = files.flatMap((f) => readWakes(f));
    const spreadSet = new Set(p.spreadSvcs);
    const groups = analyze(writes, wakes, (svc) => (svc === p.hotSvc && p.hot > 0 ? `hot (${p.hot})` : spreadSet.has(svc) ? `spread (${p.spread} over ${p.spreadSvcs.length} services)` : undefined), { from: windowFrom, to: windowTo });
    const ok = writes.filter((w) => w.status === 200);
    return {
      groups,
      writer: stats(ok.map((w) => w.ack - w.send)),
      writes: writes.length,
      writeErrors: churned.errors,
      late: churned.late,
      agents: agents.map((a, i) => ({
        name: a.name, cores: agentStats[i]?.cores ?? NaN, cpuS: agentStats[i]?.cpuS ?? NaN, rssBeforeMiB: rssBefore[i] ?? NaN, rssParkedMiB: rssParked[i] ?? NaN,
        maxRssMiB: agentStats[i]?.maxRssMiB ?? NaN, parked: parked[i] ?? 0, serverWake: histogramQuantiles(before[i] ?? '', after[i] ?? '', 'switchyard_registry_blocking_wake_seconds'),
        // Where the writer's time goes: the agent's view of each PUT /v1/txn (head parsed → answer written), the
        // store's (submitted → acknowledged) and the disk's (one group commit); the rest is before the agent read it.
        txnAtAgent: histogramQuantiles(before[i] ?? '', after[i] ?? '', 'switchyard_registry_http_request_seconds', { route: '/v1/txn' }),
        storeTxn: histogramQuantiles(before[i] ?? '', after[i] ?? '', 'switchyard_store_txn_seconds'),
        storeCommit: histogramQuantiles(before[i] ?? '', after[i] ?? '', 'switchyard_store_commit_seconds'),
        runtime: runtime[i],
      })),
      watcherErrors,
      firstError,
      parkingQueues,
      clientCpuS,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

export function reportWatch(ctx: ScaleContext, r: WatchRun, title: string): void {
  const s = ctx.settings;
  ctx.line(`### ${title}`);
  ctx.line();
  ctx.line(`| group | watchers | answers | p50 / p99 / max ms from the write's send | p50 / p99 / max ms from its ack | from X-Switchyard-Index-Time p50 / p99 | spurious | coalesced | missed / expected | target p99 |`);
  ctx.line(`|---|---:|---:|---|---|---|---:|---:|---|---|`);
  for (const g of r.groups) {
    const target = g.group.startsWith('hot') ? (g.watchers <= 1000 ? 20 : 100) : 100;
    const best = g.fromIndexTime.n > 0 ? g.fromIndexTime.p99 : g.fromSend.p99;
    ctx.line(`| ${g.group} | ${g.watchers} | ${g.answers} | ${fmt(g.fromSend.p50, 1)} / ${fmt(g.fromSend.p99, 1)} / ${fmt(g.fromSend.max, 1)} | ${fmt(g.fromAck.p50, 1)} / ${fmt(g.fromAck.p99, 1)} / ${fmt(g.fromAck.max, 1)} | ${g.fromIndexTime.n > 0 ? `${fmt(g.fromIndexTime.p50, 0)} / ${fmt(g.fromIndexTime.p99, 0)}` : '–'} | ${g.spurious} | ${g.coalesced} | ${g.missed} / ${g.expected} | < ${target} ms: ${best < target ? 'met' : 'NOT met'} |`);
  }
  ctx.line();
  ctx.line(`Writer (${r.writes} churn writes, ${s.churnRate}/s for ${s.churnSeconds} s, ${r.writeErrors} errors, ${r.late} sent late because all 16 writer connections were busy): p50 ${fmt(r.writer.p50, 2)} ms, p99 ${fmt(r.writer.p99, 2)} ms, max ${fmt(r.writer.max, 1)} ms (target: p99 < 5 ms: ${r.writer.p99 < 5 ? 'met' : 'NOT met'}).`);
  ctx.line();
  for (const a of r.agents) {
    const perWatcher = ((a.rssParkedMiB - a.rssBeforeMiB) * 2 ** 20) / Math.max(1, a.parked);
    ctx.line(`Agent ${a.name}: ${fmt(a.cores)} cores during the churn (${fmt(a.cpuS, 1)} CPU s), RSS ${fmt(a.rssBeforeMiB, 0)} MiB before the watchers, ${fmt(a.rssParkedMiB, 0)} MiB with ${a.parked} parked (${fmt(perWatcher / 1024, 1)} KiB per parked watcher), max ${fmt(a.maxRssMiB, 0)} MiB during the churn; its own wake histogram (change applied → response written, bucket bounds): ${a.serverWake.count} wakes, p50 ≤ ${a.serverWake.p50} ms, p99 ≤ ${a.serverWake.p99} ms.`);
    if (a.txnAtAgent.count > 0) {
      const q = (x: Quantiles): string => `p50 ≤ ${x.p50} / p99 ≤ ${x.p99} ms`;
      ctx.line(`Agent ${a.name}, the writer's side (bucket bounds): ${a.txnAtAgent.count} PUT /v1/txn from head parsed to answer written ${q(a.txnAtAgent)}; in the store, submitted to acknowledged ${q(a.storeTxn)}${a.storeCommit.count > 0 ? `; ${a.storeCommit.count} group commits on disk ${q(a.storeCommit)}` : ' (no embedded store)'}.`);
    }
    if (a.runtime !== undefined) {
      // Where the agent's stalls come from: its own GC pauses and event-loop delay over the churn window.
      const gc = gcTotals(a.runtime);
      const eld = a.runtime.eventLoopDelay;
      ctx.line(`Agent ${a.name} runtime over the churn (/debug/runtime): GC ${gc.count} pauses, ${fmt(gc.totalMs, 0)} ms in all, max ${fmt(gc.maxMs, 1)} ms (${gc.major} major); event-loop delay p50 ${fmt(eld.p50Ms, 1)} / p99 ${fmt(eld.p99Ms, 1)} / p99.9 ${fmt(eld.p999Ms, 1)} / max ${fmt(eld.maxMs, 1)} ms.`);
    }
  }
  ctx.line();
  if (r.watcherErrors > 0) ctx.line(`Watcher errors: ${r.watcherErrors} (first: ${r.firstError}).`);
  ctx.line(`Listen queues while the watchers connected (/proc/net/netstat): ${queueLine(r.parkingQueues)}.`);
  ctx.line(`Load processes' CPU (watchers + writer): ${fmt(r.clientCpuS, 1)} s.`);
  ctx.line();
}

export const watchPhase: Phase = {
  name: 'watch',
  async run(ctx) {
    const s = ctx.settings;
    if (!ctx.agent) {
      if (!ctx.loadedDir) await loadPhase.run(ctx);
      await restartPhase.run(ctx);
    }
    const agent = ctx.agent as AgentProc;
    ctx.line(`## 3. Blocking watchers under churn (embedded agent, the loaded catalog)`);
    ctx.line();
    ctx.line(`Each watcher is one connection doing \`GET /v1/health/service/<name>?index=<last>&wait=600s\`${s.gzip ? ' with `Accept-Encoding: gzip` (as Go clients send it)' : ''}, re-issued at once after each answer, from worker processes (≤ ${s.watchersPerWorker} watchers each). The hot service is svc-0 (${Math.floor(s.shape.instances / s.shape.services)} instances); spread watchers are ${s.perSpreadService} per service on svc-1…. Churn: ${s.churnRate} writes/s for ${s.churnSeconds} s, open loop, each a \`PUT /v1/txn\` setting one instance's service with a new port (its answer's X-Consul-Index is the commit index, which tells which write an answer reports): ${s.hotRate}/s to the hot service, the rest alternating between watched spread services and ${'unwatched'} ones. An answer is matched to the earliest write to its service with an index in (requested index, answered index]; none = a spurious wake. Latency "from send" is an upper bound of "from commit" (send < commit < ack); "from ack" is a lower bound when the writer is answered before the fan-out. One agent process can hold ${s.maxConnsPerAgent} connections here (its open-file limit less a margin), which caps the watchers per agent.`);
    ctx.line();
    for (const hot of s.hot) {
      const p = plan(ctx, hot, s.spread, 1);
      const label = `watch-h${hot}`;
      console.log(`[${label}] hot ${p.hot}, spread ${p.spread} over ${p.spreadSvcs.length} services`);
      const r = await runWatch(ctx, [agent], agent, p, label);
      ctx.record({ phase: 'watch', hot, spread: p.spread, ...r });
      reportWatch(ctx, r, `Hot service with ${hot} watchers + ${p.spread} spread${p.spread < s.spread ? ` (${s.spread} wanted; capped by the connection limit)` : ''}`);
    }
  },
};
