/** The session behind a lock: created with a TTL and renewed every TTL/2 until destroyed, as Consul's api.Session.RenewPeriodic does. */
import type { RegistryClient } from '../registry/api/client.js';
import { RegistryClientError } from '../registry/api/client.js';
import { parseGoDuration } from '../core/duration.js';
import { sleep } from '../core/sleep.js';

export interface LockSessionOptions {
  readonly name: string;
  /** Go duration, e.g. "15s" (Consul's DefaultLockSessionTTL). */
  readonly ttl: string;
  /** Go duration; absent: the agent's default (15 s). */
  readonly lockDelay?: string;
  /** Semaphores use "delete": a dead contender's entry disappears with it. */
  readonly behavior?: 'release' | 'delete';
}

export class LockSession {
  readonly id: string;
  readonly #client: RegistryClient;
  readonly #stop = new AbortController();
  readonly #loop: Promise<void>;

  private constructor(client: RegistryClient, id: string, ttlMs: number) {
    this.#client = client;
    this.id = id;
    this.#loop = this.#renew(ttlMs);
  }

  static async create(client: RegistryClient, o: LockSessionOptions): Promise<LockSession> {
    const body: Record<string, string> = { Name: o.name, TTL: o.ttl };
    if (o.lockDelay !== undefined) body.LockDelay = o.lockDelay;
    if (o.behavior) body.Behavior = o.behavior;
    const { ID } = JSON.parse(await client.put('/v1/session/create', body)) as { ID: string };
    return new LockSession(client, ID, parseGoDuration(o.ttl) / 1e6);
  }

  /**
   * Renews every TTL/2; after a failure it retries every second until a whole TTL has passed
   * without a renewal. A 404 means the session is gone: the lock's monitor sees the key change.
   */
  async #renew(initialTtlMs: number): Promise<void> {
    let ttlMs = initialTtlMs;
    let waitMs = ttlMs / 2;
    // Monotonic: a wall clock stepped forward past the TTL would end the renewals and lose the lock.
    let last = performance.now();
    const signal = this.#stop.signal;
    while (!signal.aborted && performance.now() - last <= ttlMs) {
      await sleep(waitMs, signal);
      if (signal.aborted) return;
      try {
        const [s] = JSON.parse(await this.#client.put(`/v1/session/renew/${this.id}`, undefined, signal)) as { TTL: string }[];
        ttlMs = s?.TTL ? parseGoDuration(s.TTL) / 1e6 : ttlMs;
        waitMs = ttlMs / 2;
        last = performance.now();
      } catch (err) {
        if (err instanceof RegistryClientError && err.status === 404) return;
        waitMs = 1000;
      }
    }
  }

  /** Stops renewing and destroys the session (best effort: it expires anyway). */
  async destroy(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await this.#client.put(`/v1/session/destroy/${this.id}`).catch(() => undefined);
  }
}
