/**
 * A semaphore of `limit` holders under a KV prefix, laid out as Consul's api.Semaphore does so both
 * interoperate: each contender keeps `<prefix>/<session>` acquired with its session (deleted with
 * it), and `<prefix>/.lock` holds {"Limit": n, "Holders": {session: true}}, changed only by CAS.
 * Holders whose contender entry is gone are pruned by whoever next writes the lock.
 */
import type { RegistryClient } from '../registry/api/client.js';
import type { ApiKvEntry } from '../registry/api/types.js';
import { kvPath } from '../registry/api/kv.js';
import { LOCK_KEY, SEMAPHORE_FLAG, hasFlag, joinKey, putBool, readKey, readPrefix } from './kv.js';
import { MONITOR_WAIT_MS, lockError, monitor, unlessStopped, waitBudget } from './lock.js';
import type { AcquireOptions, Exclusive, Held } from './lock.js';

interface SemaphoreLock {
  Limit: number;
  Holders: Record<string, boolean>;
}

export class Semaphore implements Exclusive {
  readonly #client: RegistryClient;
  readonly #prefix: string;
  readonly #limit: number;
  readonly #session: string;
  readonly #o: AcquireOptions;
  readonly #lockKey: string;
  readonly #contenderKey: string;
  #held = false;
  #stopMonitor: AbortController | undefined;

  constructor(client: RegistryClient, prefix: string, limit: number, session: string, o: AcquireOptions) {
    this.#client = client;
    this.#prefix = prefix;
    this.#limit = limit;
    this.#session = session;
    this.#o = o;
    this.#lockKey = joinKey(prefix, LOCK_KEY);
    this.#contenderKey = joinKey(prefix, session);
  }

  #decode(e: ApiKvEntry | undefined): SemaphoreLock {
    if (!e || e.Value === null) return { Limit: this.#limit, Holders: {} };
    try {
      const l = JSON.parse(Buffer.from(e.Value, 'base64').toString('utf8')) as Partial<SemaphoreLock>;
      return { Limit: Number(l.Limit), Holders: { ...(l.Holders ?? {}) } };
    } catch (err) {
      throw lockError(`lock decoding failed: ${(err as Error).message}`);
    }
  }

  /** Drops holders without a live contender entry (their session died and took the entry with it). */
  static #prune(lock: SemaphoreLock, entries: readonly ApiKvEntry[]): void {
    const alive = new Set(entries.map((e) => e.Session).filter(Boolean));
    for (const h of Object.keys(lock.Holders)) if (!alive.has(h)) delete lock.Holders[h];
  }

  #lockEntry(entries: readonly ApiKvEntry[]): ApiKvEntry | undefined {
    const e = entries.find((x) => x.Key === this.#lockKey);
    if (e && !hasFlag(e, SEMAPHORE_FLAG)) throw lockError('Existing key does not match semaphore use');
    return e;
  }

  async acquire(stop: AbortSignal): Promise<Held | undefined> {
    if (this.#held) throw lockError('Semaphore already held');
    const client = this.#client;
    const made = await putBool(client, kvPath(this.#contenderKey, `?acquire=${this.#session}&flags=${SEMAPHORE_FLAG}`), '', stop)
      .catch((err: unknown) => { throw lockError(`failed to make contender entry: ${(err as Error).message}`); });
    if (!made) throw lockError('failed to make contender entry: the agent refused it');
    const budget = waitBudget(this.#o);
    let index = 0;
    for (let attempt = 0; ; attempt++) {
      if (stop.aborted) return undefined;
      const waitMs = budget(attempt);
      if (waitMs === undefined) return undefined;
      const r = await unlessStopped(readPrefix(client, this.#prefix, index, waitMs, stop), stop, 'failed to read prefix');
      if (!r) return undefined;
      const lockEntry = this.#lockEntry(r.entries);
      const lock = this.#decode(lockEntry);
      if (lock.Limit !== this.#limit) throw lockError(`semaphore limit conflict (lock: ${lock.Limit}, local: ${this.#limit})`);
      Semaphore.#prune(lock, r.entries);
      if (Object.keys(lock.Holders).length >= lock.Limit) {
        index = r.index;
        continue;
      }
      lock.Holders[this.#session] = true;
      const cas = lockEntry?.ModifyIndex ?? 0;
      const ok = await unlessStopped(putBool(client, kvPath(this.#lockKey, `?cas=${cas}&flags=${SEMAPHORE_FLAG}`), JSON.stringify(lock), stop), stop, 'failed to update lock');
      if (ok === undefined) return undefined;
      if (ok) break;
      // Lost a race with another contender: read again at once.
      index = 0;
    }
    this.#held = true;
    const ac = new AbortController();
    this.#stopMonitor = ac;
    const lost = monitor(ac.signal, this.#o.monitorRetries, this.#o.monitorRetryMs, async (i) => {
      const r = await readPrefix(client, this.#prefix, i, MONITOR_WAIT_MS, ac.signal);
      const lock = this.#decode(r.entries.find((x) => x.Key === this.#lockKey));
      Semaphore.#prune(lock, r.entries);
      return { held: lock.Holders[this.#session] === true, index: r.index };
    });
    return { lost };
  }

  async release(): Promise<void> {
    if (!this.#held) throw lockError('Semaphore not held');
    this.#held = false;
    this.#stopMonitor?.abort();
    for (;;) {
      const { entry } = await readKey(this.#client, this.#lockKey, 0, 0);
      const lock = this.#decode(entry);
      if (!lock.Holders[this.#session]) break;
      delete lock.Holders[this.#session];
      if (await putBool(this.#client, kvPath(this.#lockKey, `?cas=${entry?.ModifyIndex ?? 0}&flags=${SEMAPHORE_FLAG}`), JSON.stringify(lock))) break;
    }
    await this.#client.delete(kvPath(this.#contenderKey));
  }

  async destroy(): Promise<'done' | 'in-use'> {
    if (this.#held) throw lockError('Semaphore already held');
    const { entries } = await readPrefix(this.#client, this.#prefix, 0, 0);
    const lockEntry = this.#lockEntry(entries);
    if (!lockEntry) return 'done';
    const lock = this.#decode(lockEntry);
    Semaphore.#prune(lock, entries);
    if (Object.keys(lock.Holders).length > 0) return 'in-use';
    const removed = (await this.#client.delete(kvPath(this.#lockKey, `?cas=${lockEntry.ModifyIndex}`))).trim() === 'true';
    return removed ? 'done' : 'in-use';
  }
}
