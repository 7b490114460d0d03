/**
 * registrator's process: reach the registry (with -retry-attempts/-retry-interval), subscribe to
 * Docker events before listing containers so nothing is missed, sync everything, then reconcile on
 * every container event and every -resync tick. A lost event stream is re-opened with backoff and
 * followed by a reconcile. Stopping does not deregister anything (registrator does not either).
 */
import { lookup } from 'node:dns/promises';
import { hostname as osHostname } from 'node:os';
import type { Logger } from 'pino';
import type { RegistryBackend } from './consul.js';
import { describeDockerError } from './docker.js';
import type { DockerSource } from './docker.js';
import type { RegistratorOptions } from './options.js';
import { Reconciler } from './sync.js';
import { longTimeout } from '../core/clock.js';
import type { Timer } from '../core/clock.js';
import { sleep } from '../core/sleep.js';

export interface RunDeps {
  docker: DockerSource;
  registry: RegistryBackend;
  logger: Logger;
  /** Defaults to os.hostname(). */
  hostname?: string;
  /** Backoff of failed passes and event-stream reconnects (ms). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface RunningRegistrator {
  readonly reconciler: Reconciler;
  /** Stops following events and timers; leaves every registration in place. */
  stop(): Promise<void>;
}

export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** What registrator's Go code gets from net.ResolveIPAddr("ip", hostname): the first address, IPv4 preferred. */
export async function resolveHostname(name: string): Promise<string | undefined> {
  if (name === '') return undefined;
  try {
    const all = await lookup(name, { all: true });
    return (all.find((a) => a.family === 4) ?? all[0])?.address;
  } catch {
    return undefined;
  }
}

export async function startRegistrator(opts: RegistratorOptions, deps: RunDeps): Promise<RunningRegistrator> {
  const { docker, registry, logger } = deps;
  const stopper = new AbortController();
  const signal = stopper.signal;
  const hostname = deps.hostname ?? osHostname();
  if (opts.hostIp) logger.info({ ip: opts.hostIp }, 'forcing host IP');
  if (opts.ttl > 0) logger.info({ ttl: opts.ttl, ttlRefresh: opts.ttlRefresh }, '-ttl/-ttl-refresh have no effect with the consul backend');

  // 1. The backend, as registrator pings it: attempt 0..retryAttempts (-1 = forever).
  for (let attempt = 0; ; attempt++) {
    logger.info({ registry: registry.address, attempt, retryAttempts: opts.retryAttempts }, 'connecting to backend');
    try {
      await registry.ping(signal);
      break;
    } catch (err) {
      if (opts.retryAttempts !== -1 && attempt >= opts.retryAttempts) {
        throw new StartupError(`cannot reach the registry at ${registry.address}: ${(err as Error).message}`, { cause: err });
      }
      logger.warn({ err: (err as Error).message, retryInMs: opts.retryIntervalMs }, 'registry not reachable yet');
      await sleep(opts.retryIntervalMs, signal);
    }
  }

  // 2. Docker.
  try {
    await docker.ping();
  } catch (err) {
    throw new StartupError(`cannot reach Docker at ${docker.endpoint}: ${describeDockerError(err)} (set DOCKER_HOST to unix:///path/to/docker.sock or tcp://host:port)`, { cause: err });
  }

  const hostnameIp = await resolveHostname(hostname);
  const reconciler = new Reconciler({
    docker, registry, logger, deregister: opts.deregister, cleanup: opts.cleanup, stopGraceMs: opts.stopGraceSec * 1000,
    host: { hostname, hostnameIp },
    mapping: {
      hostIp: opts.hostIp, internal: opts.internal, explicit: opts.explicit, useIpFromLabel: opts.useIpFromLabel,
      forceTags: (c) => opts.tagsTemplate(c), healthcheck: opts.healthcheck,
    },
    ...(deps.retryBaseMs !== undefined ? { retryBaseMs: deps.retryBaseMs } : {}),
    ...(deps.retryMaxMs !== undefined ? { retryMaxMs: deps.retryMaxMs } : {}),
  });

  // 3. Events first (so nothing between the listing and the subscription is missed), then the first sync.
  const follow = async (): Promise<void> => {
    let failures = 0;
    while (!signal.aborted) {
      const ended = new Promise<Error | undefined>((settle) => {
        // One abort listener per subscription, removed with it: a daemon that drops the stream again and again
        // must not pile them up on the run's signal.
        const stopped = (): void => resolve(undefined);
        const resolve = (err: Error | undefined): void => {
          signal.removeEventListener('abort', stopped);
          settle(err);
        };
        docker.subscribe(
          (e) => {
            logger.debug({ action: e.action, container: e.id.slice(0, 12), exitCode: e.exitCode, signal: e.signal }, 'docker event');
            reconciler.noteEvent(e.action, e.id, e.signal);
            reconciler.request({ reason: e.action });
          },
          (err) => resolve(err ?? new Error('event stream closed')),
          signal,
        ).then(
          () => {
            if (failures > 0) {
              logger.info({ attempts: failures }, 'docker event stream re-opened');
              reconciler.request({ reason: 'event stream re-opened' });
            }
            failures = 0;
            firstSubscribe.resolve(undefined);
          },
          (err: unknown) => resolve(err as Error),
        );
        signal.addEventListener('abort', stopped, { once: true });
      });
      const err = await ended;
      if (signal.aborted) return;
      failures++;
      const delay = Math.min(deps.retryMaxMs ?? 15_000, (deps.retryBaseMs ?? 500) * 2 ** Math.min(failures - 1, 16));
      logger.warn({ err: err ? describeDockerError(err) : undefined, retryInMs: delay }, 'docker event stream lost: reconnecting');
      if (failures === 1) firstSubscribe.resolve(err);
      await sleep(delay, signal);
    }
  };
  const firstSubscribe = deferred<Error | undefined>();
  const following = follow();
  const subErr = await firstSubscribe.promise;
  if (subErr) logger.warn({ err: describeDockerError(subErr) }, 'not subscribed to Docker events yet: syncing anyway, will keep trying');
  else logger.info({ docker: docker.endpoint }, 'listening for Docker events');

  reconciler.request({ full: true, cleanup: true, reason: 'startup' });

  // Re-armed after each round rather than setInterval: -resync takes any number of seconds, and an
  // interval above 2^31 - 1 ms would have run every millisecond.
  let resync: Timer | undefined;
  const armResync = (): void => {
    resync = longTimeout(() => {
      reconciler.request({ full: true, cleanup: true, reason: 'resync' });
      armResync();
    }, opts.resyncSec * 1000);
  };
  if (opts.resyncSec > 0) armResync();

  return {
    reconciler,
    async stop() {
      resync?.cancel();
      stopper.abort();
      await reconciler.stop();
      await following;
    },
  };
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  let done = false;
  const promise = new Promise<T>((r) => (resolve = r));
  return {
    promise,
    resolve: (v) => {
      if (done) return;
      done = true;
      resolve(v);
    },
  };
}
