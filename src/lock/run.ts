/**
 * `switchyard lock`: consul lock's flow. Take a lock (or, with limit > 1, a semaphore slot) under
 * a KV prefix, run the child with CONSUL_LOCK_HELD=true while it is held, stop the child when the
 * hold is lost or the tool is told to stop, then release and clean up. Exit 0, or 2 for a failing
 * child with -child-exit-code; 1 when the lock cannot be set up or taken.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { RegistryClient } from '../registry/api/client.js';
import { errorMessage } from '../core/errors.js';
import { LOCK_KEY, joinKey } from './kv.js';
import { Lock } from './lock.js';
import type { AcquireOptions, Exclusive } from './lock.js';
import { Semaphore } from './semaphore.js';
import { LockSession } from './session.js';

export interface LockRunOptions {
  readonly client: RegistryClient;
  readonly prefix: string;
  readonly child: readonly string[];
  /** -n: 1 for a lock, more for a semaphore. */
  readonly limit: number;
  readonly childExitCode: boolean;
  readonly monitorRetry: number;
  readonly name: string | undefined;
  readonly passStdin: boolean;
  readonly shell: boolean;
  /** -timeout in ms; 0 waits forever. */
  readonly timeoutMs: number;
  readonly verbose: boolean;
  /** Session TTL (Consul's lock uses 15s) and lock-delay (absent: the agent's default, 15 s). */
  readonly sessionTtl: string;
  readonly lockDelay: string | undefined;
  /** Fires on SIGINT/SIGTERM (the CLI also forwards the signal to the child). */
  readonly shutdown: AbortSignal;
  /** Called with the running child, so the CLI can forward signals to it. */
  readonly onChild?: (child: ChildProcess | undefined) => void;
  readonly info: (line: string) => void;
  readonly error: (line: string) => void;
  /** SIGTERM → SIGKILL grace for the child (consul lock: 5 s). */
  readonly killGraceMs?: number;
}

const LOCK_WAIT_MS = 15_000;

export async function runLock(o: LockRunOptions): Promise<number> {
  if (o.limit <= 0 || !Number.isInteger(o.limit)) {
    o.error('Lock holder limit must be positive');
    return 1;
  }
  if (o.child.length === 0 || o.prefix === '') {
    o.error('Key prefix and child command must be specified');
    return 1;
  }
  if (o.timeoutMs < 0) {
    o.error('Timeout must be positive');
    return 1;
  }
  if (o.monitorRetry < 0) {
    o.error("Number for 'monitor-retry' must be >= 0");
    return 1;
  }
  const prefix = o.prefix.replace(/^\/+/, '');
  const name = o.name || `Consul lock for '${o.child.join(' ')}' at '${prefix}'`;
  try {
    await o.client.get('/v1/agent/self');
  } catch (err) {
    o.error(`Error querying Consul agent: ${errorMessage(err)}`);
    return 1;
  }

  let session: LockSession;
  try {
    session = await LockSession.create(o.client, { name, ttl: o.sessionTtl, ...(o.lockDelay !== undefined ? { lockDelay: o.lockDelay } : {}), ...(o.limit > 1 ? { behavior: 'delete' } : {}) });
  } catch (err) {
    o.error(`Lock acquisition failed: failed to create session: ${errorMessage(err)}`);
    return 1;
  }
  const acquire: AcquireOptions = {
    waitMs: o.timeoutMs > 0 ? o.timeoutMs : LOCK_WAIT_MS, tryOnce: o.timeoutMs > 0, monitorRetries: o.monitorRetry, monitorRetryMs: 1000,
  };
  const lock: Exclusive = o.limit === 1
    ? new Lock(o.client, joinKey(prefix, LOCK_KEY), session.id, acquire)
    : new Semaphore(o.client, prefix, o.limit, session.id, acquire);
  if (o.verbose) o.info(o.limit === 1 ? `Setting up lock at path: ${joinKey(prefix, LOCK_KEY)}` : `Setting up semaphore (limit ${o.limit}) at prefix: ${prefix}`);

  if (o.verbose) o.info('Attempting lock acquisition');
  let held;
  try {
    held = await lock.acquire(o.shutdown);
  } catch (err) {
    await session.destroy();
    o.error(`Lock acquisition failed: ${errorMessage(err)}`);
    return 1;
  }
  if (!held) {
    await session.destroy();
    o.error('Shutdown triggered or timeout during lock acquisition');
    return 1;
  }

  let childCode = 0;
  if (o.shutdown.aborted) {
    o.error('Shutdown triggered during lock acquisition');
  } else {
    const child = startChild(o);
    o.onChild?.(child.process);
    const ended = await Promise.race([
      child.exited.then((ok) => ({ why: 'child' as const, ok })),
      held.lost.then(() => ({ why: 'lost' as const, ok: true })),
      new Promise<{ why: 'shutdown'; ok: boolean }>((resolve) => o.shutdown.addEventListener('abort', () => resolve({ why: 'shutdown', ok: true }), { once: true })),
    ]);
    if (ended.why === 'child') {
      if (!ended.ok) childCode = 2;
      if (o.verbose) o.info('Child terminated, releasing lock');
    } else {
      if (o.verbose) o.info(ended.why === 'lost' ? 'Lock lost, killing child' : 'Shutdown triggered, killing child');
      await killChild(child, o);
    }
    o.onChild?.(undefined);
  }

  try {
    await lock.release();
  } catch (err) {
    await session.destroy();
    o.error(`Lock release failed: ${errorMessage(err)}`);
    return 1;
  }
  await session.destroy();
  try {
    const cleaned = await lock.destroy();
    if (o.verbose) o.info(cleaned === 'done' ? 'Cleanup succeeded' : 'Cleanup aborted, lock in use');
  } catch (err) {
    o.error(`Lock cleanup failed: ${errorMessage(err)}`);
    return 1;
  }
  return o.childExitCode ? childCode : 0;
}

interface RunningChild {
  readonly process: ChildProcess | undefined;
  /** true when it exited with 0. */
  readonly exited: Promise<boolean>;
}

/** consul lock runs the child through $SHELL -c (default /bin/sh), or directly with -shell=false. */
function startChild(o: LockRunOptions): RunningChild {
  if (o.verbose) o.info('Starting handler');
  const [cmd, args] = o.shell ? [process.env.SHELL || '/bin/sh', ['-c', o.child.join(' ')]] : [o.child[0] as string, o.child.slice(1)];
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, {
      stdio: [o.passStdin ? 'inherit' : 'ignore', 'inherit', 'inherit'],
      env: { ...process.env, CONSUL_LOCK_HELD: 'true' },
    });
  } catch (err) {
    o.error(`Error executing handler: ${errorMessage(err)}`);
    return { process: undefined, exited: Promise.resolve(false) };
  }
  const exited = new Promise<boolean>((resolve) => {
    child.once('error', (err) => {
      o.error(`Error starting handler: ${err.message}`);
      resolve(false);
    });
    child.once('exit', (code, signal) => {
      if (code !== 0) o.error(`Error running handler: ${signal ? `signal: ${signal}` : `exit status ${code}`}`);
      resolve(code === 0);
    });
  });
  return { process: child, exited };
}

/** SIGTERM, then SIGKILL after the grace period (a lock's holder must not outlive its lock for long). */
async function killChild(child: RunningChild, o: LockRunOptions): Promise<void> {
  const p = child.process;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  if (o.verbose) o.info(`Terminating child pid ${p.pid}`);
  p.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), o.killGraceMs ?? 5000);
  });
  const done = await Promise.race([child.exited.then(() => true), graceOver]);
  clearTimeout(timer);
  if (!done) {
    if (o.verbose) o.info(`Killing child pid ${p.pid}`);
    p.kill('SIGKILL');
    await child.exited;
  }
}
