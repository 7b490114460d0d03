/**
 * Keep-alive connection pools to upstream instances (one undici Pool per address), and draining:
 * when an address leaves the routing table its pool takes no new requests, lets in-flight ones
 * finish, and is destroyed when the drain timeout runs out.
 */
import { Pool } from 'undici';
import type { Logger } from 'pino';
import type { Upstream } from '../balancer/index.js';

export interface PoolOptions {
  connectTimeoutMs: number;
  drainTimeoutMs: number;
  logger: Logger;
  /** Idle keep-alive connections are closed after this (below typical backend keep-alive timeouts). */
  keepAliveTimeoutMs?: number;
}

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #draining = new Set<Pool>();
  readonly #o: PoolOptions;

  constructor(opts: PoolOptions) {
    this.#o = opts;
  }

  /** The pool for an upstream, created on first use. */
  get(u: Upstream): Pool {
    const key = `${u.address}:${u.port}`;
    let p = this.#pools.get(key);
    if (p === undefined) {
      const host = u.address.includes(':') ? `[${u.address}]` : u.address;
      p = new Pool(`http://${host}:${u.port}`, {
        connect: { timeout: this.#o.connectTimeoutMs },
        keepAliveTimeout: this.#o.keepAliveTimeoutMs ?? 4000,
        keepAliveMaxTimeout: 60_000,
        // Pipelining a proxied request behind another would couple unrelated clients' latencies.
        pipelining: 1,
      });
      this.#pools.set(key, p);
    }
    return p;
  }

  /** Starts draining pools whose address is not in `live` (the upstreams of the new snapshot). */
  retain(live: Iterable<Upstream>): void {
    const keep = new Set<string>();
    for (const u of live) keep.add(`${u.address}:${u.port}`);
    for (const [key, p] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      this.#drain(key, p);
    }
  }

  #drain(key: string, p: Pool): void {
    this.#draining.add(p);
    const timer = setTimeout(() => {
      this.#o.logger.warn({ upstream: key, drainTimeoutMs: this.#o.drainTimeoutMs }, 'drain timeout: cutting requests still in flight');
      void p.destroy().catch(() => undefined);
    }, this.#o.drainTimeoutMs);
    timer.unref();
    // close() waits for queued and running requests, then closes the connections.
    p.close().then(
      () => this.#o.logger.debug({ upstream: key }, 'upstream drained'),
      () => undefined,
    ).finally(() => {
      clearTimeout(timer);
      this.#draining.delete(p);
    });
  }

  drainingCount(): number {
    return this.#draining.size;
  }

  async close(): Promise<void> {
    const all = [...this.#pools.values(), ...this.#draining];
    this.#pools.clear();
    await Promise.all(all.map((p) => p.close().catch(() => undefined)));
  }

  async destroy(): Promise<void> {
    const all = [...this.#pools.values(), ...this.#draining];
    this.#pools.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}
