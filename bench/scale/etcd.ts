// bench:scale phase "etcd": the etcd store's registration throughput with 1 and 3 members and 1 and 2 agents (nothing
// lost: every agent's catalog holds every acknowledged registration afterwards), then the watch load of the embedded
// phase on two agents sharing a 3-member cluster (watchers split over both, churn written to the first).
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt } from '../lib/util.js';
import { snapshot } from '../lib/procfs.js';
import { ETCD_BIN, startEtcd } from '../../test/helpers/etcd.js';
import type { EtcdCluster } from '../../test/helpers/etcd.js';
import type { Phase, ScaleContext } from './context.js';
import { cpuSeconds, metricValue, metricsText, sampler, startAgent, startWorker, stopAgent } from './procs.js';
import type { AgentProc } from './procs.js';
import { loadCatalog } from './load.js';
import { plan, reportWatch, runWatch } from './watch.js';

/** PIDs of the etcd members this process started (the helper does not expose them). */
function etcdPids(): number[] {
  const out: number[] = [];
  for (const [pid, s] of snapshot()) {
    if (s.ppid !== process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === ETCD_BIN) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

let prefixSeq = 0;

async function agentsOn(ctx: ScaleContext, cluster: EtcdCluster, n: number, tag: string): Promise<AgentProc[]> {
  const prefix = `scale-${tag}-${prefixSeq++}`;
  const out: AgentProc[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await startAgent({ name: `${tag}-${String.fromCharCode(97 + i)}`, dataDir: mkdtempSync(join(ctx.tmp, `etcd-agent-${tag}-`)), store: cluster.url(prefix) }));
  }
  return out;
}

interface Tput {
  setup: string;
  members: number;
  agents: number;
  acked: number;
  errors: number;
  seconds: number;
  regPerS: number;
  p50Ms: number;
  p99Ms: number;
  catalogs: number[];
  lost: number;
  agentCpuUsPerReg: number;
  etcdCpuUsPerReg: number;
}

/** Registers new instances for `seconds` through every agent at once (connections split evenly); counts and checks. */
async function throughput(ctx: ScaleContext, cluster: EtcdCluster, members: number, nAgents: number): Promise<Tput> {
  const s = ctx.settings;
  const agents = await agentsOn(ctx, cluster, nAgents, `t${members}x${nAgents}`);
  const workers = agents.map(() => startWorker());
  try {
    const etcd = etcdPids();
    const e0 = etcd.reduce((a, p) => a + cpuSeconds(p), 0);
    const samples = agents.map((a) => sampler(a.pid));
    const t0 = performance.now();
    const results = await Promise.all(workers.map((w, i) => {
      const a = agents[i] as AgentProc;
      // Disjoint instance ranges per agent, far from the watch phase's.
      w.send({ type: 'load', port: a.port, from: 10_000_000 * (i + 1), to: 10_000_000 * (i + 2), conns: Math.max(1, Math.round(s.etcdConns / nAgents)), shape: s.shape, path: 'catalog', untilS: s.etcdSeconds });
      return w.next('loaded', (s.etcdSeconds + 120) * 1000);
    }));
    const seconds = (performance.now() - t0) / 1000;
    const agentCpu = samples.map((x) => x.stop()).reduce((a, x) => a + x.cpuS, 0);
    const etcdCpu = etcd.reduce((a, p) => a + cpuSeconds(p), 0) - e0;
    const acked = results.reduce((a, r) => a + r.count - r.errors, 0);
    // Every agent mirrors the whole prefix: once caught up, each lists every acknowledged registration (+1 `consul` per agent).
    const deadline = Date.now() + 30_000;
    let catalogs: number[] = [];
    for (;;) {
      catalogs = await Promise.all(agents.map(async (a) => metricValue(await metricsText(a.url), 'switchyard_registry_services') - nAgents));
      if (catalogs.every((c) => c >= acked) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const count = results.reduce((a, r) => a + r.count, 0);
    return {
      setup: `${members} member${members > 1 ? 's' : ''}, ${nAgents} agent${nAgents > 1 ? 's' : ''}`, members, agents: nAgents, acked,
      errors: results.reduce((a, r) => a + r.errors, 0), seconds, regPerS: count / seconds,
      p50Ms: Math.max(...results.map((r) => r.latMs.p50)), p99Ms: Math.max(...results.map((r) => r.latMs.p99)),
      catalogs, lost: Math.max(0, ...catalogs.map((c) => acked - c)),
      agentCpuUsPerReg: (agentCpu * 1e6) / count, etcdCpuUsPerReg: (etcdCpu * 1e6) / count,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(agents.map((a) => stopAgent(a)));
  }
}

export const etcdPhase: Phase = {
  name: 'etcd',
  async run(ctx) {
    const s = ctx.settings;
    // The embedded agent the earlier phases loaded is done with: left up, its collector and snapshot
    // writer take CPU from the etcd members and agents measured here.
    if (ctx.agent) {
      await stopAgent(ctx.agent);
      delete ctx.agent;
    }
    const one = await startEtcd(1);
    const three = await startEtcd(3);
    process.on('exit', () => {
      one.killSync();
      three.killSync();
    });
    try {
      ctx.line(`## 4. etcd store`);
      ctx.line();
      ctx.line(`### Registration throughput`);
      ctx.line();
      ctx.line(`New instances registered (\`PUT /v1/catalog/register\`, the load phase's body) for ${s.etcdSeconds} s through every agent at once, ${s.etcdConns} connections in all split over the agents, on a fresh key prefix; etcd members from test/helpers/etcd.ts (real \`etcd\` processes, data in /tmp). "lost" = acknowledged registrations missing from an agent's catalog once it caught up (bounded wait 30 s).`);
      ctx.line();
      ctx.line(`| setup | reg/s | acknowledged | errors | p50 ms | p99 ms | each agent's catalog | lost | agent CPU µs/reg | etcd CPU µs/reg | target |`);
      ctx.line(`|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|`);
      for (const [cluster, members, agents] of [[one, 1, 1], [three, 3, 1], [three, 3, 2]] as const) {
        const r = await throughput(ctx, cluster, members, agents);
        ctx.record({ phase: 'etcd-throughput', ...r });
        const target = members === 3 ? (agents === 1 ? 3000 : 4000) : undefined;
        ctx.line(`| ${r.setup} | ${fmt(r.regPerS, 0)} | ${r.acked} | ${r.errors} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${r.catalogs.join(' / ')} | ${r.lost} | ${fmt(r.agentCpuUsPerReg, 0)} | ${fmt(r.etcdCpuUsPerReg, 0)} | ${target === undefined ? '–' : `≥ ${target}/s, nothing lost: ${r.regPerS >= target && r.lost === 0 ? 'met' : 'NOT met'}`} |`);
      }
      ctx.line();
      if (s.hot.length === 0 && s.spread === 0) return;
      // The watch load on two agents over the 3-member cluster, on a catalog of etcdInstances.
      const services = Math.max(1, Math.round(s.etcdInstances / 20));
      const sub: ScaleContext = { ...ctx, settings: { ...s, shape: { instances: s.etcdInstances, services, perNode: s.shape.perNode } } };
      const agents = await agentsOn(sub, three, 2, 'w');
      try {
        const a = agents[0] as AgentProc;
        const loaded = await loadCatalog(sub, a.url, a.port, a.pid, s.etcdInstances, 'etcd-load');
        ctx.record({ phase: 'etcd-load', ...loaded });
        const hot = Math.max(...s.hot);
        const p = plan(sub, hot, s.spread, 2);
        ctx.line(`### Watchers on two agents (3 members)`);
        ctx.line();
        ctx.line(`Catalog: ${s.etcdInstances.toLocaleString('en')} instances over ${services.toLocaleString('en')} services, loaded through agent a at ${fmt(Number(loaded.regPerS), 0)} reg/s. The watchers are split evenly over agents a and b (each a connection to its agent); the churn is written to agent a, so b's watchers see each change through etcd's watch.`);
        ctx.line();
        const r = await runWatch(sub, agents, a, p, 'etcd-watch');
        ctx.record({ phase: 'etcd-watch', hot, spread: p.spread, ...r });
        reportWatch(sub, r, `Hot service with ${hot} watchers + ${p.spread} spread, over two agents`);
      } finally {
        await Promise.all(agents.map((x) => stopAgent(x)));
      }
    } finally {
      await one.stop();
      await three.stop();
    }
  },
};
