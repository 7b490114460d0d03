/** Injected time and randomness, so tests drive timers instead of sleeping. */

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
}

/**
 * The longest delay one Node.js timer holds (2^31 - 1 ms, about 24.8 days). Node arms a longer one
 * for 1 ms instead, with only a warning: a check with TTL "720h" would expire at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A timer for any delay: one longer than MAX_TIMER_MS waits in steps (Consul takes check TTLs and
 * intervals of any Go duration). `unref`: it never keeps the process alive on its own; `stepMs`
 * exists for tests. A non-finite delay never fires.
 */
export function longTimeout(fn: () => void, ms: number, opts: { unref?: boolean; stepMs?: number } = {}): Timer {
  const step = opts.stepMs ?? MAX_TIMER_MS;
  let t: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    t = left > step ? setTimeout(() => arm(left - step), step) : setTimeout(fn, left);
    if (opts.unref) t.unref();
  };
  arm(ms === Infinity ? Number.MAX_VALUE : ms);
  return { cancel: () => clearTimeout(t) };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => longTimeout(fn, ms, { unref: true }),
};

/**
 * Deadlines inside one process: the wall time at start plus monotonic elapsed time, so a system clock
 * stepped back (NTP, a resumed VM) cannot keep an instance ejected or a connection open that much
 * longer. Its readings stay close to Date.now() and are logged as such; for anything stored or
 * shared between processes (session TTLs, lock-delays), use the wall clock.
 */
const TIME_ORIGIN = performance.timeOrigin;
export const monotonicClock: Clock = {
  // The origin read once: its getter made every reading half again as dear as Date.now() (per request in the HTTP/2 plane).
  now: () => TIME_ORIGIN + performance.now(),
  setTimeout: systemClock.setTimeout,
};

export interface Random {
  /** A float in [0, 1). */
  next(): number;
}

export const systemRandom: Random = { next: () => Math.random() };

/** Mulberry32: a small deterministic generator for tests and reproducible benchmarks. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return {
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}
