/** Runs until SIGINT/SIGTERM, then shuts down cleanly once (a second signal forces exit 1). */
import type { Logger } from 'pino';

export interface CaughtSignals {
  /** Aborted at the first signal: a start that waits gives up its wait. */
  readonly stopped: AbortSignal;
  /** Shuts down with `shutdown` at the first signal, or at once if one came while starting. */
  until(shutdown: () => Promise<void>): Promise<void>;
}

/**
 * Catches SIGINT/SIGTERM from now on. A start that waits (a balancer holding its port closed until its
 * first table) may be stopped meanwhile: `stopped` ends the wait, and a start that completes anyway is
 * shut down at once, so a service manager's stop still ends in a clean exit 0.
 */
export function catchSignals(logger: Logger): CaughtSignals {
  /** The first signal; `stopped` is aborted with it. */
  let first: NodeJS.Signals | undefined;
  let onStop: ((sig: NodeJS.Signals) => void) | undefined;
  const stopped = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (first) {
      logger.warn({ signal: sig }, 'second signal: exiting without a clean shutdown');
      process.exit(1);
    }
    first = sig;
    stopped.abort();
    if (onStop) onStop(sig);
    else logger.info({ signal: sig }, 'signal while starting: shutting down');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stopped: stopped.signal,
    until: (shutdown) => new Promise((resolve) => {
      onStop = (sig) => {
        logger.info({ signal: sig }, 'shutting down');
        shutdown().then(
          () => {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            resolve();
          },
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          },
        );
      };
      if (first) onStop(first);
    }),
  };
}

export function runUntilSignal(logger: Logger, shutdown: () => Promise<void>): Promise<void> {
  return catchSignals(logger).until(shutdown);
}

/**
 * A reload that may be asked for before it can be done: one asked for while starting is done once
 * `set` says how (the files may have changed after the start read them); later ones at once.
 */
export interface DeferredReload {
  /** What a reload does from now on (and at once, when one was asked for meanwhile). */
  set(reload: () => void): void;
  request(): void;
}

export function deferredReload(logger: Logger, what: string): DeferredReload {
  let reload: (() => void) | undefined;
  let pending = false;
  return {
    request: () => {
      if (reload) reload();
      else if (!pending) {
        pending = true;
        logger.info(`${what} while starting: reloading once started`);
      }
    },
    set: (fn) => {
      reload = fn;
      if (pending) {
        pending = false;
        fn();
      }
    },
  };
}

/**
 * Catches SIGHUP from now on: Node's default ends the process, and SIGHUP is what an nginx operator (or
 * certbot's deploy hook) sends to reload.
 */
export function catchHangup(logger: Logger): DeferredReload {
  const r = deferredReload(logger, 'SIGHUP');
  process.on('SIGHUP', () => r.request());
  return r;
}
