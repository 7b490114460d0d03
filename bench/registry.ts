// Registry benchmark: registrations/s with durability on, blocking-query wake latency with 1,000 watchers,
// and RSS with 10,000 instances. Runs the built agent (dist/) as a separate process on 127.0.0.1.
// Usage: npm run bench:registry   (writes bench/results/registry.md)
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { Agent, Pool, request } from 'undici';
import { freePort, percentile, rssMiB, startOwned, stopOwned, waitHttp } from './lib/proc.js';

const REGS = Number(process.env.BENCH_REGS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 10_000);

async function withAgent<T>(sync: 'always' | 'none', fn: (url: string, pid: number) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  const port = await freePort();
  const child = startOwned(process.execPath, ['dist/cli/main.js', 'agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dir, '--node', 'bench', '--log-level', 'warn', '--sync', sync]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${url}/v1/status/leader`);
    return await fn(url, child.pid as number);
  } finally {
    await stopOwned(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function registrations(url: string): Promise<{ perSec: number; seconds: number; p99ms: number }> {
  const pool = new Pool(url, { connections: CONCURRENCY });
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REGS) {
      const i = next++;
      const s = performance.now();
      const r = await pool.request({
        path: '/v1/agent/service/register', method: 'PUT',
        body: JSON.stringify({ Name: `svc-${i % 100}`, ID: `inst-${i}`, Address: '127.0.0.1', Port: 10000 + (i % 50000), Tags: ['bench'], Check: { TTL: '10m' } }),
      });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`register → ${r.statusCode}`);
      lat.push(performance.now() - s);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  lat.sort((a, b) => a - b);
  return { perSec: REGS / seconds, seconds, p99ms: percentile(lat, 99) };
}

async function wakeLatency(url: string): Promise<{ p50: number; p99: number; max: number; samples: number; fromAckP50: number; fromAckP99: number }> {
  const put = (id: string) => request(`${url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'watched', ID: id, Port: 1 }) }).then((r) => r.body.dump());
  await put('w-0');
  // A noisy neighbour: unrelated service B changes between rounds must not wake anyone.
  const dispatcher = new Agent({ connections: WATCHERS + 10, keepAliveTimeout: 120_000 });
  const samples: number[] = [];
  const fromAck: number[] = [];
  let index = (await request(`${url}/v1/health/service/watched`, { dispatcher })).headers['x-consul-index'] as string;
  for (let round = 0; round < ROUNDS; round++) {
    let parkedAt = 0;
    const arrivals: number[] = [];
    const watchers = Array.from({ length: WATCHERS }, async () => {
      const r = await request(`${url}/v1/health/service/watched?index=${index}&wait=60s`, { dispatcher });
      await r.body.dump();
      arrivals.push(performance.now());
      return r.headers['x-consul-index'] as string;
    });
    // Give every watcher time to park (their requests are in flight on their own connections).
    await new Promise((r) => setTimeout(r, round === 0 ? 1500 : 300));
    await request(`${url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'other', ID: `o-${round}`, Port: 2 }) }).then((r) => r.body.dump());
    parkedAt = performance.now();
    const writeStart = performance.now();
    await put(`w-${round + 1}`);
    const acked = performance.now();
    const idx = await Promise.all(watchers);
    index = idx[0] as string;
    for (const t of arrivals) {
      samples.push(t - writeStart);
      fromAck.push(t - acked);
    }
    void parkedAt;
  }
  await dispatcher.close();
  samples.sort((a, b) => a - b);
  fromAck.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples[samples.length - 1] as number, samples: samples.length, fromAckP50: percentile(fromAck, 50), fromAckP99: percentile(fromAck, 99) };
}

async function rssWithInstances(url: string, pid: number): Promise<{ idle: number; loaded: number }> {
  await new Promise((r) => setTimeout(r, 500));
  const idle = rssMiB(pid);
  const pool = new Pool(url, { connections: 32 });
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < INSTANCES) {
      const i = next++;
      const r = await pool.request({
        path: '/v1/agent/service/register', method: 'PUT',
        body: JSON.stringify({ Name: `svc-${i % 500}`, ID: `inst-${i}`, Address: `10.0.${(i >> 8) & 255}.${i & 255}`, Port: 8080, Tags: ['v1', 'bench'], Meta: { version: '1.0.0' }, Check: { TTL: '10m' } }),
      });
      await r.body.dump();
    }
  }));
  await pool.close();
  // Let the agent settle (snapshots, GC) before reading RSS.
  await new Promise((r) => setTimeout(r, 3000));
  return { idle, loaded: rssMiB(pid) };
}

const results: string[] = [];
const line = (s = ''): void => {
  results.push(s);
  console.log(s);
};

const started = new Date();
line(`# Registry benchmark`);
line();
line(`Run ${started.toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}. Agent from dist/ in its own process; load from this process over loopback.`);
line();
const durable = await withAgent('always', registrations);
const writeOnly = await withAgent('none', registrations);
line(`## Registrations per second`);
line();
line(`${REGS} \`PUT /v1/agent/service/register\` (service + TTL check each), ${CONCURRENCY} concurrent clients.`);
line();
line(`| durability | registrations/s | p99 latency ms | target |`);
line(`|---|---:|---:|---|`);
line(`| fsync per commit batch (\`--sync always\`, default) | ${durable.perSec.toFixed(0)} | ${durable.p99ms.toFixed(1)} | ≥ 5,000/s: ${durable.perSec >= 5000 ? 'met' : 'NOT met'} |`);
line(`| write only (\`--sync none\`: survives kill -9, not power loss) | ${writeOnly.perSec.toFixed(0)} | ${writeOnly.p99ms.toFixed(1)} | – |`);
line();
const wake = await withAgent('always', wakeLatency);
line(`## Blocking-query wake latency`);
line();
line(`${WATCHERS} concurrent watchers of service \`watched\` (one connection each), ${ROUNDS} rounds; each round first changes an unrelated service (no watcher may wake), then registers an instance of \`watched\`. Latency = from sending the write to each watcher's response (${wake.samples} samples).`);
line();
line(`| p50 ms | p99 ms | max ms | p50 from ack ms | p99 from ack ms | target |`);
line(`|---:|---:|---:|---:|---:|---|`);
line(`| ${wake.p50.toFixed(1)} | ${wake.p99.toFixed(1)} | ${wake.max.toFixed(1)} | ${wake.fromAckP50.toFixed(1)} | ${wake.fromAckP99.toFixed(1)} | p99 < 20 ms: ${wake.p99 < 20 ? 'met' : 'NOT met'} |`);
line();
const rss = await withAgent('always', rssWithInstances);
line(`## Memory`);
line();
line(`| state | RSS MiB | target |`);
line(`|---|---:|---|`);
line(`| idle agent | ${rss.idle.toFixed(0)} | – |`);
line(`| ${INSTANCES} instances (500 services, each instance with a TTL check, tags and meta) | ${rss.loaded.toFixed(0)} | < 250 MB: ${rss.loaded * 1.048576 < 250 ? 'met' : 'NOT met'} |`);
line();
line(`Absolute numbers drift ±15-30% between runs on this shared 2-core machine; rerun before comparing.`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/registry.md', `${results.join('\n')}\n`);
console.log('\nwrote bench/results/registry.md');
