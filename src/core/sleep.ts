import { longTimeout } from './clock.js';

/** A sleep that ends early (resolving, not rejecting) when its signal aborts; any length (see longTimeout). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = longTimeout(done, ms);
    function done(): void {
      t.cancel();
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
