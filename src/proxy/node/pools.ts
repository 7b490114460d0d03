/** The Node plane's keep-alive pools: one undici Pool per upstream address, drained like every plane's. */
import { Pool } from 'undici';
import { AddressPools } from '../address-pools.js';
import type { PoolOptions } from '../address-pools.js';

/** The Node plane's pools: one undici Pool per address. */
export class UpstreamPools extends AddressPools<Pool> {
  constructor(opts: PoolOptions) {
    super({
      create: (_key, u) => {
        const host = u.address.includes(':') ? `[${u.address}]` : u.address;
        return new Pool(`http://${host}:${u.port}`, {
          connect: { timeout: opts.connectTimeoutMs },
          keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4000,
          keepAliveMaxTimeout: 60_000,
          // Pipelining a proxied request behind another would couple unrelated clients' latencies.
          pipelining: 1,
        });
      },
      // close() waits for queued and running requests, then closes the connections.
      drain: (p, done) => void p.close().then(done, done),
      destroy: (p) => void p.destroy().catch(() => undefined),
    }, opts);
  }
}
