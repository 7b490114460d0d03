/**
 * Parked blocking queries, by the keys they wait on. A change marks the waiters of the keys it
 * touched; they are woken afterwards, in slices of a few milliseconds between turns of the event
 * loop: the write that caused the change is acknowledged first, and a thousand-way fan-out does
 * not hold up the writes, reads and fan-outs that arrive meanwhile. Deadlines sit in coarse
 * buckets under one timer, so a parked query costs one small object, not a timer of its own.
 */
import type { Cancel, WaitEnd } from './catalog-reader.js';

/** Deadline resolution: a wait ends at most this much after its deadline. */
const TICK_MS = 20;
/** Time one slice of wake-ups should take, continuations (answers written) included. */
const SLICE_TARGET_MS = 2;
const SLICE_MIN = 16;
const SLICE_MAX = 4096;

class Waiter {
  done = false;
  /** performance.now() of the change that marked it (0: not marked); the wait ends with it even if its deadline or cancel comes first. */
  wokenAt = 0;
  unlisten: (() => void) | undefined = undefined;
  constructor(
    readonly keys: readonly string[],
    readonly bucket: number,
    readonly resolve: (end: WaitEnd) => void,
  ) {}
}

/** A min-heap of bucket times (numbers); stale entries are skipped when popped. */
class TimeHeap {
  readonly #a: number[] = [];
  get size(): number {
    return this.#a.length;
  }
  peek(): number | undefined {
    return this.#a[0];
  }
  push(t: number): void {
    const a = this.#a;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as number) <= t) break;
      a[i] = a[p] as number;
      i = p;
    }
    a[i] = t;
  }
  pop(): number | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && (a[r] as number) < (a[l] as number) ? r : l;
        if ((a[c] as number) >= last) break;
        a[i] = a[c] as number;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

export class Waiters {
  readonly #byKey = new Map<string, Set<Waiter>>();
  readonly #buckets = new Map<number, Set<Waiter>>();
  readonly #heap = new TimeHeap();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #count = 0;
  #pending: Waiter[] = [];
  #pendingAt = 0;
  #scheduled = false;
  #slice = 256;
  #sliceStarted = 0;
  #idle: (() => void)[] = [];

  /** Parked queries (woken but not yet answered ones included). */
  get count(): number {
    return this.#count;
  }

  /** Parks until `wake` is called for one of `keys` (→ when), `timeoutMs` passes or `cancel` fires (→ false). */
  park(keys: readonly string[], timeoutMs: number, cancel?: Cancel): Promise<WaitEnd> {
    if (cancel?.cancelled) return Promise.resolve(false);
    // Monotonic time: a wall clock stepped back (NTP, a resumed VM) would hold every parked query that much longer.
    const bucket = Math.ceil((performance.now() + Math.max(0, timeoutMs)) / TICK_MS) * TICK_MS;
    let resolve!: (end: WaitEnd) => void;
    const p = new Promise<WaitEnd>((r) => (resolve = r));
    const w = new Waiter(keys, bucket, resolve);
    for (const k of keys) {
      let s = this.#byKey.get(k);
      if (!s) this.#byKey.set(k, (s = new Set()));
      s.add(w);
    }
    let b = this.#buckets.get(bucket);
    if (!b) {
      this.#buckets.set(bucket, (b = new Set()));
      this.#heap.push(bucket);
      if (bucket < this.#timerAt) this.#arm(bucket);
    }
    b.add(w);
    this.#count++;
    if (cancel) w.unlisten = cancel.onCancel(() => this.#finish(w));
    return p;
  }

  /**
   * Marks every waiter on `key`; they are answered after the current turn of the event loop, and
   * their waits end with now, so a wake's latency counts from this change even when later ones are
   * applied while the fan-out runs.
   */
  wake(key: string): void {
    const s = this.#byKey.get(key);
    if (!s) return;
    this.#byKey.delete(key);
    const at = performance.now();
    for (const w of s) {
      if (w.wokenAt > 0 || w.done) continue;
      w.wokenAt = at;
      this.#pending.push(w);
    }
    if (!this.#scheduled && this.#pendingAt < this.#pending.length) {
      this.#scheduled = true;
      this.#sliceStarted = 0;
      setImmediate(this.#drain);
    }
  }

  /** Woken waiters are still being answered (a fan-out is in progress). */
  get busy(): boolean {
    return this.#scheduled;
  }

  /** Runs `fn` once every woken waiter has been answered: at once when none is pending. */
  whenIdle(fn: () => void): void {
    if (this.#scheduled) this.#idle.push(fn);
    else fn();
  }

  /** True when at least one waiter parks on `key` (cheap test before building a wake). */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /**
   * One slice of wake-ups per turn. Each woken query renders (once per shared answer) and writes
   * its response in the microtasks that follow this callback, so the slice size adapts to how long
   * the previous slice and everything after it took until this turn came.
   */
  readonly #drain = (): void => {
    const now = performance.now();
    if (this.#sliceStarted > 0) {
      const took = now - this.#sliceStarted;
      if (took > 2 * SLICE_TARGET_MS) this.#slice = Math.max(SLICE_MIN, this.#slice >> 1);
      else if (took < SLICE_TARGET_MS / 2) this.#slice = Math.min(SLICE_MAX, this.#slice << 1);
    }
    this.#sliceStarted = now;
    let n = 0;
    while (this.#pendingAt < this.#pending.length && n < this.#slice) {
      const w = this.#pending[this.#pendingAt++] as Waiter;
      if (w.done) continue;
      this.#finish(w);
      n++;
    }
    if (this.#pendingAt < this.#pending.length) {
      setImmediate(this.#drain);
      return;
    }
    this.#pending = [];
    this.#pendingAt = 0;
    this.#scheduled = false;
    const idle = this.#idle;
    if (idle.length > 0) {
      this.#idle = [];
      for (const fn of idle) fn();
    }
  };

  #finish(w: Waiter): void {
    if (w.done) return;
    w.done = true;
    this.#count--;
    w.unlisten?.();
    for (const k of w.keys) {
      const s = this.#byKey.get(k);
      if (s?.delete(w) && s.size === 0) this.#byKey.delete(k);
    }
    const b = this.#buckets.get(w.bucket);
    if (b?.delete(w) && b.size === 0) this.#buckets.delete(w.bucket);
    // Nobody parked: no deadline to keep. A cancelled query's deadline (minutes off) would otherwise
    // hold a stopped agent's process alive until then.
    if (this.#count === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
    w.resolve(w.wokenAt > 0 ? w.wokenAt : false);
  }

  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#expire, Math.max(0, at - performance.now()));
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    for (;;) {
      const t = this.#heap.peek();
      if (t === undefined) return;
      if (!this.#buckets.has(t)) {
        // Every waiter of this deadline finished early (woken, cancelled): no timer for it, which would keep
        // the process alive until then with nothing to do.
        this.#heap.pop();
        continue;
      }
      if (t > now) {
        this.#arm(t);
        return;
      }
      this.#heap.pop();
      const b = this.#buckets.get(t);
      if (!b) continue;
      this.#buckets.delete(t);
      for (const w of b) this.#finish(w);
    }
  };
}
