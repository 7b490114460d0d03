/**
 * What register.py + supervisord did, in one process: register with retries until the agent
 * answers, optionally supervise the service as a child (register once it listens, forward
 * signals, send TTL heartbeats, deregister when it exits and pass its exit code on).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Logger } from 'pino';
import { RegistryClientError } from '../registry/api/client.js';
import type { RegistryClient } from '../registry/api/client.js';
import { sleep } from '../core/sleep.js';
import type { Registration } from './registration.js';

export interface RunnerOptions {
  client: RegistryClient;
  registration: Registration;
  logger: Logger;
  /** The service as a child process: [command, ...args]. */
  command?: readonly string[];
  /** Where the child is expected to listen (registration address, else 127.0.0.1). */
  listenHost: string;
  port: number;
  /** Backoff bounds for retries (ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Registers until it works; a 4xx is final (the registration itself is wrong), anything else is retried. */
export async function registerWithRetry(o: RunnerOptions, signal: AbortSignal): Promise<boolean> {
  let attempt = 0;
  let delay = o.retryBaseMs ?? 250;
  const max = o.retryMaxMs ?? 10_000;
  for (;;) {
    attempt++;
    try {
      await o.client.put('/v1/agent/service/register', o.registration.body, signal);
      o.logger.info({ service: o.registration.serviceId, attempt, agent: o.client.base }, 'registered');
      return true;
    } catch (err) {
      if (signal.aborted) return false;
      if (err instanceof RegistryClientError && err.status !== undefined && err.status >= 400 && err.status < 500) {
        throw err;
      }
      // register.py gave up after 10 tries; a supervisor-less service should not, but it should say so.
      o.logger.warn({ attempt, retryInMs: delay, err: (err as Error).message }, 'agent not reachable yet: will keep trying');
      await sleep(delay, signal);
      delay = Math.min(max, delay * 2);
    }
  }
}

export async function deregister(o: RunnerOptions): Promise<void> {
  try {
    await o.client.put(`/v1/agent/service/deregister/${encodeURIComponent(o.registration.serviceId)}`);
    o.logger.info({ service: o.registration.serviceId }, 'deregistered');
  } catch (err) {
    o.logger.warn({ err: (err as Error).message }, 'could not deregister');
  }
}

function heartbeat(o: RunnerOptions, signal: AbortSignal): void {
  const ttl = o.registration.ttlMs;
  if (ttl === undefined) return;
  const checkId = `service:${o.registration.serviceId}`;
  const beat = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        await o.client.put(`/v1/agent/check/pass/${encodeURIComponent(checkId)}?note=${encodeURIComponent('heartbeat from switchyard register')}`, undefined, signal);
      } catch (err) {
        if (!signal.aborted) o.logger.warn({ err: (err as Error).message }, 'TTL heartbeat failed');
      }
      // Three beats per TTL, so one lost beat does not let the check expire.
      await sleep(Math.max(100, ttl / 3), signal);
    }
  };
  // Runs beside the service until the signal aborts; it cannot reject (each beat's failure is caught and logged).
  void beat();
}

function waitListening(host: string, port: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const tryOnce = (): void => {
      if (signal.aborted) return resolve(false);
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => {
        s.destroy();
        setTimeout(tryOnce, 100);
      });
    };
    tryOnce();
  });
}

/** Runs to completion; resolves with the process exit code. */
export async function run(o: RunnerOptions): Promise<number> {
  const ac = new AbortController();
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  if (!o.command || o.command.length === 0) {
    const ok = await registerWithRetry(o, ac.signal);
    if (!ok) return 1;
    if (o.registration.ttlMs === undefined) return 0;
    // A TTL check with no child: stay and beat until told to stop, then deregister.
    heartbeat(o, ac.signal);
    await new Promise<void>((resolve) => {
      for (const s of signals) process.once(s, () => resolve());
    });
    ac.abort();
    await deregister(o);
    return 0;
  }
  const [cmd, ...args] = o.command as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: 'inherit' });
  let registered = false;
  let exiting = false;
  const forward = (sig: NodeJS.Signals): void => {
    exiting = true;
    o.logger.info({ signal: sig, pid: child.pid }, 'forwarding signal to the service');
    child.kill(sig);
  };
  for (const s of signals) process.on(s, forward);
  const exited = new Promise<number>((resolve) => {
    child.once('error', (err) => {
      o.logger.error({ err: err.message, command: cmd }, 'could not start the service');
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (osSignal(signal) ?? 1) : 1)));
  });
  // Registration runs beside the child: it cannot reject (waitListening resolves, a refusal is caught below).
  void (async () => {
    const up = await Promise.race([waitListening(o.listenHost, o.port, ac.signal), exited.then(() => false)]);
    if (!up || exiting) return;
    registered = await registerWithRetry(o, ac.signal).catch((err: unknown) => {
      o.logger.error({ err: (err as Error).message }, 'registration refused by the agent');
      child.kill('SIGTERM');
      return false;
    });
    if (registered) heartbeat(o, ac.signal);
  })();
  const code = await exited;
  ac.abort();
  for (const s of signals) process.off(s, forward);
  if (registered) await deregister(o);
  o.logger.info({ exitCode: code }, 'service exited');
  return code;
}

function osSignal(sig: NodeJS.Signals): number | undefined {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGQUIT: 3 };
  return table[sig];
}
