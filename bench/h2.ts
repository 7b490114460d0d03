// HTTP/2 and gRPC benchmark: in one run, h2load through `switchyard lb` and through nginx
// (`listen … http2`, proxy_pass to HTTP/1.1 upstreams, grpc_pass), 1 worker each, on the same
// backends; then gRPC unary calls (h2load posting a gRPC-framed message) through both and direct to
// one backend. req/s and p99 (from h2load's per-request log). Writes bench/results/h2.md.
//
// Usage: npm run bench:h2
//   BENCH_DUR=3 BENCH_REPS=1 BENCH_CONNS=16 BENCH_STREAMS=10   (defaults: a smoke run; the lead runs longer ones)
//   BENCH_NGINX=off|/path/to/nginx
// Needs h2load (Debian nghttp2-client) and nginx. Everything listens on 127.0.0.1; every process it
// starts is stopped by PID at the end, and killed by PID if the harness dies.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { freePort, percentile, startOwned, stopOwned, switchyardArgs, waitHttp } from './lib/proc.js';
import { CLK_TCK, snapshot, treeTicks } from './lib/procfs.js';
import { envNum, findBin, firstLine, fmt, median, sleep } from './lib/util.js';

const DUR = Math.round(envNum('BENCH_DUR', 3));
const REPS = Math.round(envNum('BENCH_REPS', 1));
const CONNS = Math.round(envNum('BENCH_CONNS', 16));
const STREAMS = Math.round(envNum('BENCH_STREAMS', 10));
const WARM_S = 1;
const SY_MAIN = 'dist/cli/main.js';

const h2load = findBin('h2load');
const nginx = process.env.BENCH_NGINX === 'off' ? null : process.env.BENCH_NGINX ?? findBin('nginx');
if (!h2load) {
  console.error('bench:h2 needs h2load (Debian: apt-get install -y nghttp2-client)');
  process.exit(2);
}
if (!existsSync(SY_MAIN)) {
  console.error(`bench:h2 needs the build in dist/ (${SY_MAIN}): use npm run bench:h2`);
  process.exit(2);
}

const owned: ChildProcess[] = [];
const own = (cmd: string, args: string[]): ChildProcess => {
  const c = startOwned(cmd, args);
  owned.push(c);
  return c;
};

interface Run {
  target: string;
  kind: 'http' | 'grpc';
  rps: number;
  p50Ms: number;
  p99Ms: number;
  ok: number;
  failed: number;
  /** CPU of the proxy's process tree per request (µs): steadier than req/s on a shared machine. */
  cpuUsPerReq: number;
}

/** One h2load run; latencies from its per-request log (microseconds). */
function load(url: string, o: { body?: string; headers?: string[]; seconds: number }, logFile: string): Promise<Omit<Run, 'target' | 'kind' | 'cpuUsPerReq'>> {
  return new Promise((resolve, reject) => {
    const args = ['-c', String(CONNS), '-m', String(STREAMS), '-t', '1', '-D', String(o.seconds), '--log-file', logFile,
      ...(o.body ? ['-d', o.body] : []), ...(o.headers ?? []).flatMap((h) => ['-H', h]), url];
    const child = spawn(h2load as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', () => {
      const reqs = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
      const st = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
      const lat: number[] = [];
      let ok2xx = 0;
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        const f = line.split('\t');
        if (f.length < 3) continue;
        lat.push(Number(f[2]) / 1000);
        if (Number(f[1]) >= 200 && Number(f[1]) < 300) ok2xx++;
      }
      lat.sort((a, b) => a - b);
      if (!reqs) {
        reject(new Error(`h2load output not understood:\n${out}`));
        return;
      }
      resolve({ rps: Number(reqs[1]), p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), ok: ok2xx, failed: Number(st?.[2] ?? 0) + (lat.length - ok2xx) });
    });
  });
}

const loadAtStart = loadavg()[0] ?? 0;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-h2-'));
  const runs: Run[] = [];
  try {
    // HTTP/1.1 backends: nginx answering "ok <port>" on three ports (or nothing without nginx).
    if (!nginx) throw new Error('bench:h2 compares with nginx: install it (apt-get install -y nginx) or set BENCH_NGINX');
    const webPorts = [await freePort(), await freePort(), await freePort()];
    const bdir = join(dir, 'backends');
    for (const d of ['', 'tmp_body', 'tmp_proxy', 'tmp_fastcgi', 'tmp_uwsgi', 'tmp_scgi']) mkdirSync(join(bdir, d), { recursive: true });
    writeFileSync(join(bdir, 'nginx.conf'), readFileSync('bench/conf/lb-backends.nginx.conf', 'utf8')
      .replaceAll('@@PREFIX@@', bdir).replace('@@LISTENS@@', webPorts.map((p) => `    listen 127.0.0.1:${p};`).join('\n')));
    own(nginx, ['-p', bdir, '-c', join(bdir, 'nginx.conf'), '-e', join(bdir, 'error.log')]);
    // gRPC backends: two @grpc/grpc-js processes.
    const echoPorts = [await freePort(), await freePort()];
    for (const p of echoPorts) own(process.execPath, ['--import', 'tsx', 'bench/proxies/grpc-backend.ts', String(p)]);
    // The registry: web (HTTP/1.1) on /, echo (gRPC, by tag) on /test.Echo.
    const agentPort = await freePort();
    const agentUrl = `http://127.0.0.1:${agentPort}`;
    own(process.execPath, switchyardArgs(SY_MAIN, 'agent', '--http-addr', `127.0.0.1:${agentPort}`, '--data-dir', join(dir, 'agent'), '--node', 'bench', '--log-level', 'warn'));
    await waitHttp(`${agentUrl}/v1/status/leader`);
    const reg = async (body: object): Promise<void> => {
      const r = await request(`${agentUrl}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) });
      await r.body.dump();
    };
    for (const p of webPorts) await reg({ Name: 'web', ID: `web-${p}`, Address: '127.0.0.1', Port: p });
    for (const p of echoPorts) await reg({ Name: 'echo', ID: `echo-${p}`, Address: '127.0.0.1', Port: p, Tags: ['urlprefix-/test.Echo proto=grpc'] });
    // Switchyard, 1 worker (its default: no --workers).
    const syPort = await freePort();
    const syAdmin = await freePort();
    own(process.execPath, switchyardArgs(SY_MAIN, 'lb', '--listen', `127.0.0.1:${syPort}`, '--admin-addr', `127.0.0.1:${syAdmin}`, '--registry', agentUrl, '--service', 'web', '--log-level', 'warn'));
    await waitHttp(`http://127.0.0.1:${syAdmin}/health`);
    // nginx, 1 worker, h2c.
    const ngPort = await freePort();
    const ndir = join(dir, 'nginx');
    for (const d of ['', 'tmp_body', 'tmp_proxy', 'tmp_fastcgi', 'tmp_uwsgi', 'tmp_scgi']) mkdirSync(join(ndir, d), { recursive: true });
    writeFileSync(join(ndir, 'nginx.conf'), readFileSync('bench/conf/h2-proxy.nginx.conf', 'utf8').replaceAll('@@PREFIX@@', ndir).replace('@@PORT@@', String(ngPort))
      .replace('@@WEB@@', webPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')).replace('@@ECHO@@', echoPorts.map((p) => `    server 127.0.0.1:${p};`).join('\n')));
    own(nginx, ['-p', ndir, '-c', join(ndir, 'nginx.conf'), '-e', join(ndir, 'error.log')]);
    await sleep(1000);
    // A gRPC unary request body: one uncompressed message of 32 bytes.
    const msg = Buffer.from('{"text":"hello from h2load....."}');
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(msg.length, 1);
    const bodyFile = join(dir, 'grpc-body.bin');
    writeFileSync(bodyFile, Buffer.concat([frame, msg]));
    const grpcHeaders = ['content-type: application/grpc', 'te: trailers'];
    const syPid = owned[owned.length - 2]?.pid as number;
    const ngPid = owned[owned.length - 1]?.pid as number;
    const echoPid = owned[1]?.pid as number;
    const targets: { target: string; kind: 'http' | 'grpc'; url: string; pid: number }[] = [
      { target: 'switchyard-w1', kind: 'http', url: `http://127.0.0.1:${syPort}/`, pid: syPid },
      { target: 'nginx-w1', kind: 'http', url: `http://127.0.0.1:${ngPort}/`, pid: ngPid },
      { target: 'switchyard-w1', kind: 'grpc', url: `http://127.0.0.1:${syPort}/test.Echo/Unary`, pid: syPid },
      { target: 'nginx-w1', kind: 'grpc', url: `http://127.0.0.1:${ngPort}/test.Echo/Unary`, pid: ngPid },
      { target: 'direct (one backend)', kind: 'grpc', url: `http://127.0.0.1:${echoPorts[0]}/test.Echo/Unary`, pid: echoPid },
    ];
    for (const [i, t] of targets.entries()) await load(t.url, { seconds: WARM_S, ...(t.kind === 'grpc' ? { body: bodyFile, headers: grpcHeaders } : {}) }, join(dir, `warm-${i}.log`));
    for (let rep = 0; rep < REPS; rep++) {
      for (const t of targets) {
        const t0 = treeTicks(snapshot(), t.pid);
        // A new log file per run: h2load appends to an existing one.
        const r = await load(t.url, { seconds: DUR, ...(t.kind === 'grpc' ? { body: bodyFile, headers: grpcHeaders } : {}) }, join(dir, `run-${runs.length}.log`));
        const cpuUsPerReq = ((treeTicks(snapshot(), t.pid) - t0) / CLK_TCK) * 1e6 / Math.max(1, r.ok + r.failed);
        runs.push({ target: t.target, kind: t.kind, ...r, cpuUsPerReq });
        console.log(`${t.kind} ${t.target}: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50Ms)} ms, p99 ${fmt(r.p99Ms)} ms, ${fmt(cpuUsPerReq, 1)} µs CPU/req, failed ${r.failed}`);
      }
    }
  } finally {
    for (const c of owned.reverse()) await stopOwned(c);
    rmSync(dir, { recursive: true, force: true });
  }
  report(runs);
}

function report(runs: Run[]): void {
  const agg = (target: string, kind: Run['kind']): { rps: number; p50: number; p99: number; cpu: number; failed: number } => {
    const rs = runs.filter((r) => r.target === target && r.kind === kind);
    return {
      rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50Ms)), p99: median(rs.map((r) => r.p99Ms)), cpu: median(rs.map((r) => r.cpuUsPerReq)),
      failed: rs.reduce((a, r) => a + r.failed, 0),
    };
  };
  const rows = (kind: Run['kind'], names: string[], ref: string): string[] => names.map((n) => {
    const a = agg(n, kind);
    const r = agg(ref, kind);
    return `| ${n} | ${fmt(a.rps, 0)} | ${fmt(a.rps / r.rps)}× | ${fmt(a.p50)} | ${fmt(a.p99)} | ${fmt(a.cpu, 1)} | ${a.failed} |`;
  });
  const sy = agg('switchyard-w1', 'http');
  const ng = agg('nginx-w1', 'http');
  const lines = [
    '# bench:h2 — HTTP/2 and gRPC through Switchyard vs nginx',
    '',
    `${new Date().toISOString()} · ${cpus().length} × ${cpus()[0]?.model ?? '?'} · Linux ${release()} · Node ${process.version} · ${firstLine(nginx as string, ['-v'])} · ${firstLine(h2load as string, ['--version'])}`,
    '',
    `Load average (1 min) at start ${fmt(loadAtStart)}, at the end ${fmt(loadavg()[0] ?? 0)}: this machine is shared, and every figure moves with it; CPU per request is the steadier column.`,
    '',
    `Everything on 127.0.0.1, 1 worker each. Load: \`h2load -c ${CONNS} -m ${STREAMS} -t 1 -D ${DUR}\` (${CONNS} connections × ${STREAMS} concurrent streams), ${WARM_S} s warm-up per target, ${REPS} repetition(s), medians shown; latency percentiles from h2load's per-request log. HTTP/2 clients in cleartext with prior knowledge (h2c).`,
    '',
    '## HTTP/2 clients → HTTP/1.1 instances',
    '',
    'Switchyard: `--service web` (3 nginx backend ports, keep-alive pools). nginx: `listen … http2`, `proxy_pass` to the same three ports with `keepalive 64`.',
    '',
    '| target | req/s | vs nginx | p50 ms | p99 ms | CPU µs/req | failed |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows('http', ['switchyard-w1', 'nginx-w1'], 'nginx-w1'),
    '',
    `Switchyard / nginx: **${fmt(sy.rps / ng.rps)}×** req/s (acceptance: ≥ 0.5×), ${fmt(sy.cpu / ng.cpu)}× the CPU per request. CPU: utime+stime of the proxy's process tree from /proc over the run, per request answered.`,
    '',
    '## gRPC unary calls',
    '',
    'Two @grpc/grpc-js backends (`bench/proxies/grpc-backend.ts`, echoing the message). Switchyard: tag `urlprefix-/test.Echo proto=grpc`, each call balanced on its own over pooled HTTP/2 connections. nginx: `grpc_pass` with `keepalive 64`. Direct: the same load at one backend. Load: h2load posting one gRPC-framed 32-byte message per call (`content-type: application/grpc`, `te: trailers`).',
    '',
    '| target | calls/s | vs direct | p50 ms | p99 ms | CPU µs/call | failed |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows('grpc', ['switchyard-w1', 'nginx-w1', 'direct (one backend)'], 'direct (one backend)'),
    '',
    'Direct hits one of the two backends; through a balancer the calls are spread over both, so a balancer can exceed the direct figure while the backends (not the balancer) are the limit.',
    '',
  ];
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/h2.md', `${lines.join('\n')}\n`);
  console.log('wrote bench/results/h2.md');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
