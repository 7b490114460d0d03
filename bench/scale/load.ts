// bench:scale phases "load" and "restart": the catalog of settings.shape registered through the API into a fresh
// embedded agent (--sync always) by several worker processes, then the agent killed (SIGKILL: no graceful flush)
// and started again on the same data dir, timed from spawn until it answers, with its catalog checked complete.
import { cpSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, median } from '../lib/util.js';
import type { Phase, ScaleContext } from './context.js';
import { cpuSeconds, memory, metricValue, metricsText, sampler, startAgent, startWorker, stopAgent } from './procs.js';
import type { AgentProc } from './procs.js';

async function catalogInstances(url: string): Promise<number> {
  return metricValue(await metricsText(url), 'switchyard_registry_services');
}

function dirBytes(dir: string): { snapshots: number; wal: number; files: number } {
  let snapshots = 0;
  let wal = 0;
  let files = 0;
  for (const f of readdirSync(dir)) {
    const size = statSync(join(dir, f)).size;
    files++;
    if (f.startsWith('snapshot')) snapshots += size;
    else if (f.endsWith('.wal') || f.startsWith('wal')) wal += size;
  }
  return { snapshots, wal, files };
}

/** Registers instances [0, n) through PUT /v1/catalog/register with the configured workers; returns the figures. */
export async function loadCatalog(ctx: ScaleContext, url: string, port: number, pid: number, n: number, label: string): Promise<Record<string, number | string>> {
  const s = ctx.settings;
  const workers = Array.from({ length: s.loadWorkers }, () => startWorker());
  try {
    const per = Math.ceil(n / workers.length);
    const done = new Array<number>(workers.length).fill(0);
    workers.forEach((w, i) => w.on('progress', (m) => (done[i] = m.done)));
    const sample = sampler(pid);
    const t0 = performance.now();
    const progress = setInterval(() => {
      const d = done.reduce((a, b) => a + b, 0);
      const secs = (performance.now() - t0) / 1000;
      console.log(`[${label}] ${d} / ${n} registered, ${(d / secs).toFixed(0)}/s, agent RSS ${memory(pid).rssMiB.toFixed(0)} MiB`);
    }, 10_000);
    const results = await Promise.all(workers.map((w, i) => {
      const from = i * per;
      const to = Math.min(n, from + per);
      w.send({ type: 'load', port, from, to, conns: s.loadConns, shape: s.shape, path: 'catalog' });
      return w.next('loaded', 3_600_000);
    }));
    clearInterval(progress);
    const wall = (performance.now() - t0) / 1000;
    const agent = sample.stop();
    const count = results.reduce((a, r) => a + r.count, 0);
    const errors = results.reduce((a, r) => a + r.errors, 0);
    const firstError = results.map((r) => r.firstError).find((e) => e !== '') ?? '';
    if (firstError) console.log(`[${label}] first error: ${firstError}`);
    const memAfter = memory(pid);
    return {
      instances: count, errors, firstError, seconds: wall, regPerS: count / wall,
      agentCores: agent.cores, agentCpuUsPerReg: (agent.cpuS * 1e6) / count, clientCpuS: results.reduce((a, r) => a + r.cpuS, 0),
      p50Ms: Math.max(...results.map((r) => r.latMs.p50)), p99Ms: Math.max(...results.map((r) => r.latMs.p99)), maxMs: Math.max(...results.map((r) => r.latMs.max)),
      rssMiB: memAfter.rssMiB, peakRssMiB: memAfter.peakMiB, catalog: await catalogInstances(url),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

export const loadPhase: Phase = {
  name: 'load',
  async run(ctx) {
    const s = ctx.settings;
    const dir = mkdtempSync(join(ctx.tmp, 'loaded-'));
    const agent = await startAgent({ name: 'scale', dataDir: dir, sync: 'always' });
    try {
      const idle = memory(agent.pid).rssMiB;
      const r = await loadCatalog(ctx, agent.url, agent.port, agent.pid, s.shape.instances, 'load');
      // RSS once the burst's garbage has had time to go (the agent idles; V8 collects on its own schedule).
      await new Promise((res) => setTimeout(res, 10_000));
      const settled = memory(agent.pid);
      ctx.record({ phase: 'load', ...r, idleRssMiB: idle, settledRssMiB: settled.rssMiB, shape: s.shape, workers: s.loadWorkers, conns: s.loadConns });
      ctx.line(`## 1. Load: ${s.shape.instances.toLocaleString('en')} instances over ${s.shape.services.toLocaleString('en')} services`);
      ctx.line();
      ctx.line(`Every instance is one \`PUT /v1/catalog/register\` (node n-<i div ${s.shape.perNode}> with its address, the service with two tags and a meta key, one passing service check: 2 store keys per instance, plus one per node), sent by ${s.loadWorkers} worker processes × ${s.loadConns} keep-alive connections, each one request at a time. Fresh agent, \`--sync always\` (fsync per group commit).`);
      ctx.line();
      ctx.line(`| registered | errors | seconds | reg/s | target ≥ 20,000/s | p50 ms | p99 ms | max ms | agent cores | agent CPU µs/reg | clients' CPU s | RSS MiB (end / peak / 10 s later) | target < 2 GB | catalog instances |`);
      ctx.line(`|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---:|`);
      const rss = Math.max(Number(r.peakRssMiB), settled.rssMiB);
      ctx.line(`| ${r.instances} | ${r.errors} | ${fmt(Number(r.seconds), 1)} | ${fmt(Number(r.regPerS), 0)} | ${Number(r.regPerS) >= 20_000 ? 'met' : 'NOT met'} | ${fmt(Number(r.p50Ms), 1)} | ${fmt(Number(r.p99Ms), 1)} | ${fmt(Number(r.maxMs), 1)} | ${fmt(Number(r.agentCores))} | ${fmt(Number(r.agentCpuUsPerReg), 0)} | ${fmt(Number(r.clientCpuS), 1)} | ${fmt(Number(r.rssMiB), 0)} / ${fmt(Number(r.peakRssMiB), 0)} / ${fmt(settled.rssMiB, 0)} | ${rss * 1.048576 < 2000 ? 'met' : 'NOT met'} | ${r.catalog} |`);
      ctx.line();
      ctx.loadedDir = dir;
      ctx.loadedInstances = Number(r.instances);
    } finally {
      // Killed, not stopped: the restart phase recovers from what a crash leaves.
      await stopAgent(agent, 'SIGKILL');
    }
  },
};

export const restartPhase: Phase = {
  name: 'restart',
  async run(ctx) {
    if (!ctx.loadedDir) await loadPhase.run(ctx);
    const dir = ctx.loadedDir as string;
    const files = dirBytes(dir);
    // One restart is not a figure on a shared 2-core machine (the same build has taken 13 to 19 s): the
    // crashed data dir is copied as it is, restarted on a fresh copy each time, and the median compared.
    const pristine = mkdtempSync(join(ctx.tmp, 'crashed-'));
    cpSync(dir, pristine, { recursive: true });
    const runs: { seconds: number; catalog: number; rssMiB: number; peakRssMiB: number; cpuS: number }[] = [];
    let agent: AgentProc | undefined;
    for (let i = 0; i < ctx.settings.restarts; i++) {
      const last = i === ctx.settings.restarts - 1;
      const runDir = last ? dir : mkdtempSync(join(ctx.tmp, 'restart-'));
      if (!last) cpSync(pristine, runDir, { recursive: true });
      const a = await startAgent({ name: 'scale', dataDir: runDir, sync: 'always', timeoutMs: 600_000 });
      const cpuS = cpuSeconds(a.pid);
      const seconds = (a.servingAt - a.spawnedAt) / 1000;
      const catalog = await catalogInstances(a.url);
      const mem = memory(a.pid);
      runs.push({ seconds, catalog, rssMiB: mem.rssMiB, peakRssMiB: mem.peakMiB, cpuS });
      ctx.record({ phase: 'restart', run: i + 1, of: ctx.settings.restarts, seconds, cpuS, catalog, rssMiB: mem.rssMiB, peakRssMiB: mem.peakMiB, ...files });
      if (last) {
        agent = a;
      } else {
        await stopAgent(a, 'SIGKILL');
        rmSync(runDir, { recursive: true, force: true });
      }
    }
    rmSync(pristine, { recursive: true, force: true });
    const seconds = median(runs.map((r) => r.seconds));
    ctx.line(`## 2. Restart on the loaded data dir`);
    ctx.line();
    ctx.line(`The loaded agent is killed with SIGKILL (no flush, no final snapshot) and started again on its data dir: snapshot ${fmt(files.snapshots / 2 ** 20, 0)} MiB + WAL ${fmt(files.wal / 2 ** 20, 0)} MiB (${files.files} files), ${runs.length} time(s), each on a fresh copy of the dir as the crash left it (the last on the dir itself, kept running for later phases). Time from spawning the process to its first answer to \`GET /v1/status/leader\` (it listens once the store is recovered and the view built; the store's key map is filled after that, in the background); CPU is the agent's user + system time until then.`);
    ctx.line();
    ctx.line(`| restart | to serving s | agent CPU s | catalog instances after | RSS MiB after start (peak) |`);
    ctx.line(`|---:|---:|---:|---:|---|`);
    const expected = (ctx.loadedInstances ?? 0) + 1;
    runs.forEach((r, i) => {
      ctx.line(`| ${i + 1} | ${fmt(r.seconds, 1)} | ${fmt(r.cpuS, 1)} | ${r.catalog} (${r.catalog === expected ? 'all, plus the agent\'s own `consul`' : 'MISMATCH'}) | ${fmt(r.rssMiB, 0)} (${fmt(r.peakRssMiB, 0)}) |`);
    });
    ctx.line();
    ctx.line(`Median restart to serving: **${fmt(seconds, 1)} s** (target < 15 s: ${seconds < 15 ? 'met' : 'NOT met'}).`);
    ctx.line();
    if (agent) ctx.agent = agent;
  },
};
