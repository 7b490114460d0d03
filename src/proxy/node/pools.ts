/** The Node plane's keep-alive pools: undici Pools per upstream address, drained like every plane's. */
import { Pool } from 'undici';
import type { Upstream } from '../../balancer/index.js';
import { AddressPools } from '../address-pools.js';
import type { PoolOptions } from '../address-pools.js';
import { tlsCheckOptions } from '../upstream-tls.js';
import type { UpstreamTls } from '../upstream-tls.js';

/**
 * An address's undici Pools: one for plain HTTP, one per TLS flavour (how the certificate is
 * checked), so a connection verified one way never serves a route that asked for another.
 */
export class NodeAddressPool {
  readonly #origin: string;
  readonly #o: PoolOptions;
  readonly plain: Pool;
  readonly #tls = new Map<string, Pool>();

  constructor(u: Upstream, o: PoolOptions) {
    this.#origin = `${u.address.includes(':') ? `[${u.address}]` : u.address}:${u.port}`;
    this.#o = o;
    this.plain = this.#pool('http', {});
  }

  /** The pool for plain HTTP, or for TLS of flavour `tls`. */
  for(tls: UpstreamTls | undefined): Pool {
    if (tls === undefined) return this.plain;
    let p = this.#tls.get(tls.key);
    if (p === undefined) {
      // undici sends SNI for a name and none for an IP (whose certificate is then checked for that IP).
      p = this.#pool('https', tlsCheckOptions(tls));
      this.#tls.set(tls.key, p);
    }
    return p;
  }

  #pool(scheme: 'http' | 'https', tls: object): Pool {
    return new Pool(`${scheme}://${this.#origin}`, {
      connect: { timeout: this.#o.connectTimeoutMs, ...tls },
      keepAliveTimeout: this.#o.keepAliveTimeoutMs ?? 4000,
      keepAliveMaxTimeout: 60_000,
      // Pipelining a proxied request behind another would couple unrelated clients' latencies.
      pipelining: 1,
    });
  }

  /** Waits for queued and running requests, then closes every connection. */
  async close(): Promise<void> {
    await Promise.all([this.plain, ...this.#tls.values()].map((p) => p.close()));
  }

  destroy(): void {
    for (const p of [this.plain, ...this.#tls.values()]) void p.destroy().catch(() => undefined);
  }
}

/** The Node plane's pools: one NodeAddressPool per address. */
export class UpstreamPools extends AddressPools<NodeAddressPool> {
  constructor(opts: PoolOptions) {
    super({
      create: (_key, u) => new NodeAddressPool(u, opts),
      drain: (p, done) => void p.close().then(done, done),
      destroy: (p) => p.destroy(),
    }, opts);
  }
}
