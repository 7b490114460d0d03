// Benchmark helpers: start processes we own (killed by PID on exit), free ports, RSS, open fds and percentiles.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

const owned = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of owned) if (c.exitCode === null) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

export function startOwned(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd });
  owned.add(c);
  c.on('exit', () => owned.delete(c));
  let err = '';
  c.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  c.on('exit', (code) => {
    if (code && code !== 0 && code !== 143) process.stderr.write(`[bench] ${cmd} exited ${code}: ${err}\n`);
  });
  return c;
}

/** The node flags a script's own `#!/usr/bin/env -S node …` line gives it (none for a plain `#!/usr/bin/env node`). */
function launcherFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node\s+(.*)$/.exec(first);
  return m?.[1] ? m[1].trim().split(/\s+/) : [];
}

/** Node's arguments to run the switchyard CLI at `main` as the `switchyard` command would (its #! flags first). */
export function switchyardArgs(main: string, ...args: string[]): string[] {
  return switchyardArgsWith([], main, ...args);
}

/** As switchyardArgs, with extra node flags after the #! ones (so an experiment's flag wins over the launcher's). */
export function switchyardArgsWith(nodeArgs: readonly string[], main: string, ...args: string[]): string[] {
  return [...launcherFlags(main), ...nodeArgs, main, ...args];
}

export async function stopOwned(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Open file descriptors of a process (entries of /proc/<pid>/fd); NaN when it is gone. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export async function waitHttp(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
