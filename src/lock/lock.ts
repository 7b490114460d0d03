/**
 * A mutex on one KV key, as Consul's api.Lock implements leader election: block until the key is
 * free, acquire it with the session, then watch it; the lock is lost when the key stops naming
 * the session. Flags mark the key as a lock so a semaphore at the same prefix is detected.
 */
import type { RegistryClient } from '../registry/api/client.js';
import { SwitchyardError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import { kvPath } from '../registry/api/kv.js';
import { LOCK_FLAG, hasFlag, isServerError, putBool, readKey } from './kv.js';

export interface AcquireOptions {
  /** How long one blocking read waits (Consul's LockWaitTime, 15 s), or the whole budget with tryOnce. */
  readonly waitMs: number;
  /** -timeout: give up after waitMs instead of waiting forever. */
  readonly tryOnce: boolean;
  /** 5xx answers tolerated while watching the lock, one every monitorRetryMs (consul lock: 3 and 1 s). */
  readonly monitorRetries: number;
  readonly monitorRetryMs: number;
  /** Pause after an acquisition refused during a lock-delay (Consul's DefaultLockRetryTime, 5 s). */
  readonly retryMs?: number;
}

/** A held lock or semaphore slot. */
export interface Held {
  /** Resolves when it is lost: the session was invalidated, someone took the key, or the agent stayed unreachable. */
  readonly lost: Promise<void>;
}

/** What `switchyard lock` needs of a lock or a semaphore. */
export interface Exclusive {
  /** Resolves with the hold, or undefined when `stop` fired or the tryOnce budget ran out. */
  acquire(stop: AbortSignal): Promise<Held | undefined>;
  release(): Promise<void>;
  /** Removes the coordination key when nobody uses it; 'in-use' otherwise (not an error). */
  destroy(): Promise<'done' | 'in-use'>;
}

export const lockError = (message: string): SwitchyardError => new SwitchyardError('SY_ERR_LOCK', message);

/**
 * The wait of each blocking read while contending: `waitMs` per read, or with -timeout what is left
 * of `waitMs` since the first read (undefined once it has run out).
 */
export function waitBudget(o: AcquireOptions): (attempt: number) => number | undefined {
  const started = performance.now();
  return (attempt) => {
    if (!o.tryOnce || attempt === 0) return o.waitMs;
    const left = o.waitMs - (performance.now() - started);
    return left < 0 ? undefined : left;
  };
}

/** `p`, or undefined when it failed because `stop` fired; any other failure becomes a lock error saying `what`. */
export function unlessStopped<T>(p: Promise<T>, stop: AbortSignal, what: string): Promise<T | undefined> {
  return p.catch((err: unknown) => {
    if (stop.aborted) return undefined;
    throw lockError(`${what}: ${(err as Error).message}`);
  });
}

/** Keeps reading `read` while it says the hold is intact; riding out up to `retries` 5xx answers in a row. */
export async function monitor(signal: AbortSignal, retries: number, retryMs: number, read: (index: number) => Promise<{ held: boolean; index: number }>): Promise<void> {
  let index = 0;
  let left = retries;
  while (!signal.aborted) {
    try {
      const r = await read(index);
      if (!r.held) return;
      index = r.index;
      left = retries;
    } catch (err) {
      if (signal.aborted || left <= 0 || !isServerError(err)) return;
      left--;
      index = 0;
      await sleep(retryMs, signal);
    }
  }
}

/** Five minutes, the server's default wait, for the blocking reads that watch a held lock. */
export const MONITOR_WAIT_MS = 5 * 60_000;

export class Lock implements Exclusive {
  readonly #client: RegistryClient;
  readonly #key: string;
  readonly #session: string;
  readonly #o: AcquireOptions;
  #held = false;
  #stopMonitor: AbortController | undefined;

  constructor(client: RegistryClient, key: string, session: string, o: AcquireOptions) {
    this.#client = client;
    this.#key = key;
    this.#session = session;
    this.#o = o;
  }

  async acquire(stop: AbortSignal): Promise<Held | undefined> {
    if (this.#held) throw lockError('Lock already held');
    const client = this.#client;
    const budget = waitBudget(this.#o);
    let index = 0;
    for (let attempt = 0; ; attempt++) {
      if (stop.aborted) return undefined;
      const waitMs = budget(attempt);
      if (waitMs === undefined) return undefined;
      const r = await unlessStopped(readKey(client, this.#key, index, waitMs, stop), stop, 'failed to read lock');
      if (!r) return undefined;
      if (r.entry && !hasFlag(r.entry, LOCK_FLAG)) throw lockError('Existing key does not match lock use');
      if (r.entry?.Session === this.#session) break;
      if (r.entry?.Session) {
        index = r.index;
        continue;
      }
      const locked = await unlessStopped(putBool(client, kvPath(this.#key, `?acquire=${this.#session}&flags=${LOCK_FLAG}`), '', stop), stop, 'failed to acquire lock');
      if (locked === undefined) return undefined;
      if (locked) break;
      // Refused: held by someone again (block on it), or a lock-delay is running (wait and retry).
      const again = await readKey(client, this.#key, 0, waitMs, stop).catch(() => undefined);
      if (again?.entry?.Session) {
        index = again.index;
        continue;
      }
      index = 0;
      await sleep(this.#o.retryMs ?? 5000, stop);
    }
    this.#held = true;
    const ac = new AbortController();
    this.#stopMonitor = ac;
    const lost = monitor(ac.signal, this.#o.monitorRetries, this.#o.monitorRetryMs, async (i) => {
      const r = await readKey(client, this.#key, i, MONITOR_WAIT_MS, ac.signal);
      return { held: r.entry?.Session === this.#session, index: r.index };
    });
    return { lost };
  }

  async release(): Promise<void> {
    if (!this.#held) throw lockError('Lock not held');
    this.#held = false;
    this.#stopMonitor?.abort();
    await putBool(this.#client, kvPath(this.#key, `?release=${this.#session}&flags=${LOCK_FLAG}`), '');
  }

  async destroy(): Promise<'done' | 'in-use'> {
    if (this.#held) throw lockError('Lock already held');
    const { entry } = await readKey(this.#client, this.#key, 0, 0);
    if (!entry) return 'done';
    if (!hasFlag(entry, LOCK_FLAG)) throw lockError('Existing key does not match lock use');
    if (entry.Session) return 'in-use';
    const removed = (await this.#client.delete(kvPath(this.#key, `?cas=${entry.ModifyIndex}`))).trim() === 'true';
    return removed ? 'done' : 'in-use';
  }
}
