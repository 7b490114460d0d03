// `npm run demo`: the seeds' experiment, self-checking. Starts `switchyard up`, demo backends that register
// themselves with HTTP checks through `switchyard register`, steady traffic through the balancer, and
// asserts each step: 3 backends → 5 → 2 → one fails its health check → it recovers. Leaves nothing running.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const BACKEND = fileURLToPath(new URL('../examples/demo/backend.mjs', import.meta.url));
const started = Date.now();
const owned = new Set<ChildProcess>();
let failures = 0;

function run(args: string[]): ChildProcess {
  const c = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  owned.add(c);
  c.on('exit', () => owned.delete(c));
  return c;
}

function freePort(preferred?: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => (preferred ? resolve(freePort()) : resolve(0)));
    s.listen(preferred ?? 0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Backend {
  name: string;
  port: number;
  proc: ChildProcess;
}

async function main(): Promise<void> {
  const api = await freePort(8500);
  const lbPort = await freePort(9080);
  const dnsPort = await freePort(8600);
  const dataDir = mkdtempSync(join(tmpdir(), 'switchyard-demo-'));
  const agentUrl = `http://127.0.0.1:${api}`;
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  console.log(`switchyard up: registry ${agentUrl} (UI ${agentUrl}/ui/), DNS 127.0.0.1:${dnsPort}, balancer ${lbUrl}, data ${dataDir}`);
  const up = run(['up', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator', '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', dataDir, '--service', 'web', '--log-level', 'warn']);
  await until('the registry', async () => (await fetch(`${agentUrl}/v1/status/leader`)).ok);

  const backends: Backend[] = [];
  const startBackend = async (name: string): Promise<void> => {
    const port = await freePort();
    // register.py + supervisord in one: registers once the backend listens, deregisters when it exits.
    const proc = run(['register', '--consul-addr', agentUrl, '--name', 'web', '--id', name, '--port', String(port), '--address', '127.0.0.1',
      '--check-http', `http://127.0.0.1:${port}/health`, '--interval', '1s', '--timeout', '1s', '--log-level', 'warn', '--',
      process.execPath, BACKEND, String(port), name]);
    backends.push({ name, port, proc });
  };
  const stopBackend = async (name: string): Promise<void> => {
    const i = backends.findIndex((b) => b.name === name);
    const [b] = backends.splice(i, 1);
    if (!b) return;
    const exited = new Promise((r) => b.proc.once('exit', r));
    b.proc.kill('SIGTERM');
    await exited;
  };
  const passing = async (): Promise<string[]> => {
    const r = await fetch(`${agentUrl}/v1/health/service/web?passing`);
    return ((await r.json()) as { Service: { ID: string } }[]).map((e) => e.Service.ID).sort();
  };

  // Steady traffic for the whole demo: 8 keep-alive clients, bounded to this run.
  const pool = new Pool(lbUrl, { connections: 8 });
  let counts = new Map<string, number>();
  let errors = 0;
  let sent = 0;
  let running = true;
  let loops: Promise<void>[] = [];
  const startTraffic = (): void => {
   loops = Array.from({ length: 8 }, async () => {
    while (running && Date.now() - started < 90_000) {
      sent++;
      try {
        const r = await pool.request({ path: '/hostname', method: 'GET' });
        const text = await r.body.text();
        if (r.statusCode !== 200) errors++;
        else {
          const host = (JSON.parse(text) as { hostname: string }).hostname;
          counts.set(host, (counts.get(host) ?? 0) + 1);
        }
      } catch {
        errors++;
      }
      await sleep(2);
    }
   });
  };
  // Errors are counted from the end of one step to the end of the next, so a change that drops
  // requests (scale-down, a failing instance) shows up in the table of the step that made it.
  let errorsAtLastStep = 0;

  const step = async (title: string, expect: string[], settleMs = 1500): Promise<void> => {
    await until(`${expect.join(', ')} passing`, async () => JSON.stringify(await passing()) === JSON.stringify([...expect].sort()));
    await sleep(300); // the balancer applies changes within milliseconds; leave a little margin
    counts = new Map();
    await sleep(settleMs);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const errs = errors - errorsAtLastStep;
    errorsAtLastStep = errors;
    console.log(`\n${title}`);
    console.log('  backend      requests   share');
    for (const [name, n] of [...counts].sort()) console.log(`  ${name.padEnd(12)} ${String(n).padStart(8)}   ${((100 * n) / Math.max(total, 1)).toFixed(1).padStart(5)}%`);
    console.log(`  errors       ${String(errs).padStart(8)}   (since the previous step, change included)`);
    const got = [...counts.keys()].sort();
    const fair = expect.every((b) => (counts.get(b) ?? 0) > total / expect.length / 2);
    const ok = errs === 0 && JSON.stringify(got) === JSON.stringify([...expect].sort()) && fair;
    console.log(`  ${ok ? 'OK' : 'FAILED'}: expected traffic spread over ${expect.join(', ')} with no errors`);
    if (!ok) failures++;
  };

  try {
    for (const n of ['web-1', 'web-2', 'web-3']) await startBackend(n);
    await until('three passing backends', async () => (await passing()).length === 3);
    startTraffic();
    await step('Step 1: three backends', ['web-1', 'web-2', 'web-3']);
    for (const n of ['web-4', 'web-5']) await startBackend(n);
    await step('Step 2: scale up to five', ['web-1', 'web-2', 'web-3', 'web-4', 'web-5']);
    for (const n of ['web-3', 'web-4', 'web-5']) await stopBackend(n);
    await step('Step 3: scale down to two', ['web-1', 'web-2']);
    const sick = backends.find((b) => b.name === 'web-2') as Backend;
    await fetch(`http://127.0.0.1:${sick.port}/fail`, { method: 'POST' });
    await step('Step 4: web-2 starts failing its health check', ['web-1']);
    await fetch(`http://127.0.0.1:${sick.port}/recover`, { method: 'POST' });
    await step('Step 5: web-2 recovers', ['web-1', 'web-2']);
  } finally {
    running = false;
    await Promise.all(loops);
    await pool.close();
    for (const b of [...backends]) await stopBackend(b.name);
    const upExit = new Promise((r) => up.once('exit', r));
    up.kill('SIGINT');
    await upExit;
    for (const c of owned) c.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
  const secs = (Date.now() - started) / 1000;
  console.log(`\n${sent} requests sent, ${errors} failed; ${failures === 0 ? 'every step OK' : `${failures} step(s) FAILED`} in ${secs.toFixed(1)} s`);
  if (failures > 0 || secs > 60) process.exitCode = 1;
}

process.on('SIGINT', () => {
  for (const c of owned) c.kill('SIGKILL');
  process.exit(130);
});

main().catch((err: unknown) => {
  console.error(`demo failed: ${(err as Error).message}`);
  for (const c of owned) c.kill('SIGKILL');
  process.exitCode = 1;
});
