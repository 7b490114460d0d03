/**
 * Connection pools per upstream address, for either data plane, and draining: when an address
 * leaves the routing table its pool takes no new requests, lets in-flight ones finish, and is
 * destroyed when the drain timeout runs out.
 */
import type { Logger } from 'pino';
import type { Upstream } from '../balancer/index.js';

export interface PoolOptions {
  connectTimeoutMs: number;
  drainTimeoutMs: number;
  logger: Logger;
  /** Idle keep-alive connections are closed after this (below typical backend keep-alive timeouts). */
  keepAliveTimeoutMs?: number;
}

/** What a kind of connection pool must offer to be kept per address and drained. */
export interface PoolDriver<P> {
  create(key: string, u: Upstream): P;
  /** Takes no new requests; calls `done` once those in flight have finished. */
  drain(p: P, done: () => void): void;
  /** Cuts every connection now. */
  destroy(p: P): void;
}

/**
 * One pool per upstream address, for either data plane. Keyed by address, not instance ID, so a
 * re-registered instance on the same address keeps its connections. An address that leaves the
 * routing table drains: no new requests, in-flight ones finish, cut at the drain timeout.
 */
export class AddressPools<P> {
  readonly #pools = new Map<string, P>();
  /** Per Upstream object (they live as long as their snapshot): the pool without building its address key per request. */
  #byUpstream = new WeakMap<Upstream, P>();
  readonly #draining = new Set<P>();
  readonly #driver: PoolDriver<P>;
  readonly #o: { drainTimeoutMs: number; logger: Logger };

  constructor(driver: PoolDriver<P>, opts: { drainTimeoutMs: number; logger: Logger }) {
    this.#driver = driver;
    this.#o = opts;
  }

  /** The pool for an upstream, created on first use. */
  get(u: Upstream): P {
    const cached = this.#byUpstream.get(u);
    if (cached !== undefined) return cached;
    const key = `${u.address}:${u.port}`;
    let p = this.#pools.get(key);
    if (p === undefined) {
      p = this.#driver.create(key, u);
      this.#pools.set(key, p);
    }
    this.#byUpstream.set(u, p);
    return p;
  }

  /** The pools taking requests now (not the draining ones). */
  live(): IterableIterator<P> {
    return this.#pools.values();
  }

  /** Starts draining the pools of `addresses` (`address:port` keys that left the routing table). */
  release(addresses: Iterable<string>): void {
    let dropped = false;
    for (const key of addresses) {
      const p = this.#pools.get(key);
      if (p === undefined) continue;
      this.#pools.delete(key);
      this.#drain(key, p);
      dropped = true;
    }
    // A draining pool must not be found again through an Upstream of an older snapshot.
    if (dropped) this.#byUpstream = new WeakMap();
  }

  #drain(key: string, p: P): void {
    this.#draining.add(p);
    const timer = setTimeout(() => {
      this.#o.logger.warn({ upstream: key, drainTimeoutMs: this.#o.drainTimeoutMs }, 'drain timeout: cutting requests still in flight');
      this.#driver.destroy(p);
    }, this.#o.drainTimeoutMs);
    timer.unref();
    this.#driver.drain(p, () => {
      clearTimeout(timer);
      if (this.#draining.delete(p)) this.#o.logger.debug({ upstream: key }, 'upstream drained');
    });
  }

  drainingCount(): number {
    return this.#draining.size;
  }

  /** Lets every request in flight finish, then closes all connections. */
  async close(): Promise<void> {
    const all = [...this.#pools.values(), ...this.#draining];
    this.#pools.clear();
    this.#byUpstream = new WeakMap();
    await Promise.all(all.map((p) => new Promise<void>((resolve) => this.#driver.drain(p, resolve))));
  }

  destroy(): void {
    for (const p of [...this.#pools.values(), ...this.#draining]) this.#driver.destroy(p);
    this.#pools.clear();
    this.#byUpstream = new WeakMap();
  }
}
