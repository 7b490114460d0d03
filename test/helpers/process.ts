/** Test helpers for real `switchyard` processes: spawn via tsx, wait for readiness, kill by PID. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stderr so far (pino JSON logs and CLI errors). */
  stderr(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `switchyard <args>` through tsx, from the repository root. `nofile`: the process's open-file
 * limit (set by the shell that execs it, so the pid is still the process's own).
 */
export function switchyard(args: string[], env: NodeJS.ProcessEnv = {}, opts: { nofile?: number } = {}): Proc {
  const argv = [process.execPath, '--import', 'tsx', MAIN, ...args];
  const [cmd, ...rest] = opts.nofile === undefined ? argv : ['/bin/sh', '-c', `ulimit -n ${opts.nofile} && exec "$@"`, 'sh', ...argv];
  const child = spawn(cmd as string, rest, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, pid: child.pid as number, stderr: () => err, stdout: () => out, exited };
}

/**
 * A port for a server a test starts later (a child process, nginx, etcd), free on 127.0.0.1 for
 * TCP and UDP. Ports come from below the kernel's ephemeral range (so nothing listening on port 0
 * or connecting out can take them in the meantime) and are claimed with an exclusive file, so two
 * test files running at once never get the same one (with port 0 and close, they could: CI saw
 * nginx from one file listening on the DNS port another file had just been handed).
 */
export async function freePort(): Promise<number> {
  mkdirSync(PORT_CLAIMS, { recursive: true });
  for (let tries = 0; tries < 500; tries++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (!claim(port)) continue;
    if (await bindable(port)) return port;
  }
  throw new Error(`freePort: no free port claimed in ${PORT_LOW}-${PORT_HIGH} after 500 tries (claims in ${PORT_CLAIMS})`);
}

const PORT_LOW = 20_000;
const PORT_HIGH = 32_000;
const PORT_CLAIMS = join(tmpdir(), 'switchyard-test-ports');
const claimed: string[] = [];
process.once('exit', () => {
  for (const f of claimed) rmSync(f, { force: true });
});

/** Claims `port` for this process: an exclusive file naming our PID; a claim whose process is gone is taken over. */
function claim(port: number): boolean {
  const file = join(PORT_CLAIMS, String(port));
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      claimed.push(file);
      return true;
    } catch {
      const owner = Number(readFileSafe(file));
      if (owner === process.pid || alive(owner)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Whether a process with this PID exists (signal 0). */
export function alive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether TCP and UDP can bind `port` on 127.0.0.1 now (something outside the tests may hold it). */
async function bindable(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => {
      u.close();
      resolve(false);
    });
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
}

export async function waitHttpOk(url: string, proc: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`process exited (${proc.child.exitCode}) before ${url} answered: ${proc.stderr()}`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms: ${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function stop(proc: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  return proc.exited;
}
