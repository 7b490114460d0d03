/** A Clock tests move by hand: now() stands still until advance(), which fires the timers that fell due, in order. */
import type { Clock, Timer } from '../../src/core/clock.js';

export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, running every timer due on the way (each at its own due time). */
  advance(ms: number): void;
  /** Timers still waiting. */
  pending(): number;
}

export function manualClock(start = Date.UTC(2030, 0, 1)): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { due: number; fn: () => void }>();
  const next = (limit: number): [number, { due: number; fn: () => void }] | undefined => {
    let best: [number, { due: number; fn: () => void }] | undefined;
    for (const e of timers) if (e[1].due <= limit && (!best || e[1].due < best[1].due || (e[1].due === best[1].due && e[0] < best[0]))) best = e;
    return best;
  };
  return {
    now: () => now,
    setTimeout(fn, ms): Timer {
      const id = ++seq;
      timers.set(id, { due: now + Math.max(0, ms), fn });
      return { cancel: () => void timers.delete(id) };
    },
    advance(ms) {
      const target = now + ms;
      for (let t = next(target); t; t = next(target)) {
        timers.delete(t[0]);
        now = Math.max(now, t[1].due);
        t[1].fn();
      }
      now = target;
    },
    pending: () => timers.size,
  };
}
