// Scale benchmark (a benchmark, not a test): a million instances, tens of thousands of blocking watchers under churn,
// and the etcd store's throughput, everything on 127.0.0.1 with the built agent (dist/, or SY_MAIN) in its own
// processes and the load from forked worker processes (bench/scale/worker.ts). Phases run in order, each one module
// (bench/scale/*.ts) exporting a Phase; a new part of the benchmark is one more entry in PHASES.
// Writes bench/results/scale.md (or BENCH_OUT) and appends raw rows to bench/results/scale-runs.jsonl.
//
// Usage: npm run bench:scale
//   BENCH_PHASES=load,restart,watch,etcd  BENCH_INSTANCES=1000000 BENCH_SERVICES=50000 BENCH_PER_NODE=100
//   BENCH_LOAD_WORKERS=2 BENCH_LOAD_CONNS=32  BENCH_HOT=1000,10000 BENCH_SPREAD=20000 BENCH_PER_SPREAD_SERVICE=10
//   BENCH_CHURN_RATE=200 BENCH_CHURN_SECONDS=60 BENCH_HOT_RATE=2 BENCH_GZIP=1 BENCH_RESTARTS=3
//   BENCH_ETCD_INSTANCES=100000 BENCH_ETCD_SECONDS=10 BENCH_ETCD_CONNS=64  SY_MAIN=<another build's dist/cli/main.js>
//   BENCH_AGENT_CPUS=0 BENCH_LOAD_CPUS=1 (taskset lists; unset = all cores shared)
// Every process it starts is stopped by PID (SIGKILL if the harness dies); temp dirs are removed at exit.
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { machineLine, settings } from './scale/context.js';
import type { Phase, ScaleContext } from './scale/context.js';
import { loadPhase, restartPhase } from './scale/load.js';
import { watchPhase } from './scale/watch.js';
import { etcdPhase } from './scale/etcd.js';
import { AGENT_CPUS, LOAD_CPUS, SY_MAIN, stopAgent } from './scale/procs.js';

const PHASES: readonly Phase[] = [loadPhase, restartPhase, watchPhase, etcdPhase];

const wanted = (process.env.BENCH_PHASES ?? PHASES.map((p) => p.name).join(',')).split(',').map((s) => s.trim()).filter((s) => s !== '');
const unknown = wanted.filter((w) => !PHASES.some((p) => p.name === w));
if (unknown.length > 0) throw new Error(`BENCH_PHASES: unknown phase(s) ${unknown.join(', ')}; known: ${PHASES.map((p) => p.name).join(', ')}`);

const out = process.env.BENCH_OUT ?? 'bench/results/scale.md';
const jsonl = out.replace(/\.md$/, '-runs.jsonl');
const tmp = mkdtempSync(join(tmpdir(), 'sy-scale-'));
// BENCH_KEEP=1 leaves the data dirs for a closer look (a profiled restart, a second build on the same data).
if (process.env.BENCH_KEEP !== '1') process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
else console.log(`data kept under ${tmp}`);

const lines: string[] = [];
const runId = new Date().toISOString();
let commit = '?';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  // not a checkout
}
const ctx: ScaleContext = {
  settings: settings(),
  tmp,
  line(s = '') {
    lines.push(s);
    console.log(s);
  },
  record(row) {
    mkdirSync('bench/results', { recursive: true });
    appendFileSync(jsonl, `${JSON.stringify({ run: runId, commit, agent: SY_MAIN, agentCpus: AGENT_CPUS ?? 'any', loadCpus: LOAD_CPUS ?? 'any', ...row })}\n`);
  },
};

ctx.line(`# Scale benchmark`);
ctx.line();
ctx.line(`Run ${runId}, commit ${commit}, agent \`${SY_MAIN}\`; ${machineLine()}. Phases: ${wanted.join(', ')}. CPUs: agent ${AGENT_CPUS ?? 'any'}, load workers ${LOAD_CPUS ?? 'any'} (BENCH_AGENT_CPUS / BENCH_LOAD_CPUS). Everything on 127.0.0.1; the machine's 2 cores are shared by the agent, the load processes and other people's work, so CPU seconds are steadier than rates.`);
ctx.line();
try {
  for (const p of PHASES) if (wanted.includes(p.name)) await p.run(ctx);
} finally {
  if (ctx.agent) await stopAgent(ctx.agent);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(out, `${lines.join('\n')}\nRaw rows: ${jsonl}. Rerun: \`npm run bench:scale\` (settings in the header of bench/scale.ts).\n`);
  console.log(`\nwrote ${out}`);
}
process.exit(0);
