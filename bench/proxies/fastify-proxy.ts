// Peer proxy for bench/lb.ts: @fastify/http-proxy (over @fastify/reply-from and undici) balancing round-robin
// with an undici BalancedPool over the backends (keep-alive).
// Usage: PORT=8080 BACKENDS=http://127.0.0.1:1,http://127.0.0.1:2 [WORKERS=2] node --import tsx bench/proxies/fastify-proxy.ts
import Fastify from 'fastify';
import fastifyHttpProxy from '@fastify/http-proxy';
import { BalancedPool } from 'undici';
import { backendsFromEnv, portFromEnv, runWorkers } from '../lib/cluster.js';

const port = portFromEnv();
const backends = backendsFromEnv();

runWorkers(Number(process.env.WORKERS ?? 1), async () => {
  const app = Fastify({ logger: false });
  // `upstream` must be one URL for the plugin's path rewriting; the requests go to the BalancedPool given as
  // `undici` (reply-from drops the origin for a BalancedPool and lets it pick the upstream, round-robin).
  await app.register(fastifyHttpProxy, { upstream: backends[0] as string, undici: new BalancedPool(backends) });
  await app.listen({ port, host: '127.0.0.1' });
});
