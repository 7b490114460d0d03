/** The frame every probe shares (TCP, UDP, gRPC, H2PING): one result, whatever happens first. */
import { effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

export interface OneShotOptions {
  readonly signal: AbortSignal | undefined;
  readonly timeoutMs: number;
  /** The result once the timeout passes. */
  readonly expired: () => CheckResult;
  /** The result when the caller aborts. */
  readonly aborted: () => CheckResult;
}

/**
 * Settles exactly once: with the probe's own result (`settle`), with `expired()` after the timeout,
 * or with `aborted()` when the signal fires. `start` begins the probe and returns what frees its
 * resources, which runs once with the final result, whichever way it came.
 */
export function oneShot(
  o: OneShotOptions,
  start: (settle: (r: CheckResult) => void, done: () => boolean) => ((r: CheckResult) => void) | void,
): Promise<CheckResult> {
  return new Promise<CheckResult>((resolve) => {
    let final: CheckResult | undefined;
    // Assigned once, after start(): a `const` there would be read (in its dead zone) by a settle
    // that start() makes itself.
    // eslint-disable-next-line prefer-const
    let release: ((r: CheckResult) => void) | undefined;
    const settle = (r: CheckResult): void => {
      if (final !== undefined) return;
      final = r;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      release?.(r);
      resolve(r);
    };
    function onAbort(): void {
      settle(o.aborted());
    }
    const timer = setTimeout(() => settle(o.expired()), effectiveTimeoutMs(o.timeoutMs));
    if (o.signal?.aborted) {
      onAbort();
      return;
    }
    o.signal?.addEventListener('abort', onAbort, { once: true });
    release = start(settle, () => final !== undefined) ?? undefined;
    // Settled while starting (a connect that threw): free what was made.
    if (final !== undefined) release?.(final);
  });
}
