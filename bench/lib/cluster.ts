// Runs `start` in this process (workers <= 1) or in `workers` node:cluster workers sharing the listen socket.
// The primary stops its workers on SIGTERM/SIGINT and exits once they are gone (bounded: 3 s).
import cluster from 'node:cluster';

export function runWorkers(workers: number, start: () => void | Promise<void>): void {
  if (workers <= 1 || !cluster.isPrimary) {
    void Promise.resolve(start()).catch((err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    });
    return;
  }
  for (let i = 0; i < workers; i++) cluster.fork();
  let stopping = false;
  const live = (): number => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined).length;
  const stop = (): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
    if (live() === 0) process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  cluster.on('exit', (w, code) => {
    if (!stopping) {
      process.stderr.write(`worker ${w.process.pid ?? '?'} exited (${code}); stopping\n`);
      stop();
    } else if (live() === 0) process.exit(0);
  });
}

/** BACKENDS="http://127.0.0.1:1,http://127.0.0.1:2" → origins. */
export function backendsFromEnv(): string[] {
  const list = (process.env.BACKENDS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new Error('BACKENDS (comma-separated origins) is required');
  return list.map((s) => new URL(s).origin);
}

export function portFromEnv(): number {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT is required');
  return port;
}
