/**
 * Waits on one topic that every change wakes at once: the session and prepared-query lists, where
 * a change is rare and every parked reader wants it. (Catalog and KV watches park per key in Waiters.)
 */
import type { Cancel, WaitEnd } from './catalog-reader.js';

interface Waiter {
  done: boolean;
  resolve(end: WaitEnd): void;
}

export class Broadcast {
  #waiters = new Set<Waiter>();

  /** Parks until `fire` (→ when it fired), the timeout passes or `cancel` fires (→ false). */
  wait(timeoutMs: number, cancel?: Cancel): Promise<WaitEnd> {
    return new Promise((resolve) => {
      let unlisten: (() => void) | undefined;
      const waiter: Waiter = {
        done: false,
        resolve: (end) => {
          if (waiter.done) return;
          waiter.done = true;
          clearTimeout(timer);
          unlisten?.();
          this.#waiters.delete(waiter);
          resolve(end);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), Math.max(0, timeoutMs));
      this.#waiters.add(waiter);
      if (cancel) {
        if (cancel.cancelled) waiter.resolve(false);
        else unlisten = cancel.onCancel(() => waiter.resolve(false));
      }
    });
  }

  /** Ends every wait parked now. */
  fire(): void {
    const at = performance.now();
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w.resolve(at);
  }
}
