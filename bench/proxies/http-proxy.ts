// Peer proxy for bench/lb.ts: node-http-proxy (npm `http-proxy`) with a keep-alive agent and its own round-robin.
// Usage: PORT=8080 BACKENDS=http://127.0.0.1:1,http://127.0.0.1:2 [WORKERS=2] node --import tsx bench/proxies/http-proxy.ts
import http from 'node:http';
import { createRequire } from 'node:module';
import { backendsFromEnv, portFromEnv, runWorkers } from '../lib/cluster.js';

interface ProxyServer {
  web(req: http.IncomingMessage, res: http.ServerResponse, opts: { target: string }): void;
  on(event: 'error', cb: (err: Error, req: http.IncomingMessage, res: http.ServerResponse | unknown) => void): void;
}
// http-proxy ships no types and @types/http-proxy is not a dependency: the little used here is typed above.
const httpProxy = createRequire(import.meta.url)('http-proxy') as { createProxyServer(opts: { agent: http.Agent; xfwd: boolean }): ProxyServer };

const port = portFromEnv();
const backends = backendsFromEnv();

runWorkers(Number(process.env.WORKERS ?? 1), () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  const proxy = httpProxy.createProxyServer({ agent, xfwd: false });
  proxy.on('error', (_err, _req, res) => {
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502);
      res.end();
    }
  });
  let next = 0;
  http
    .createServer((req, res) => {
      const target = backends[next] as string;
      next = next + 1 === backends.length ? 0 : next + 1;
      proxy.web(req, res, { target });
    })
    .listen(port, '127.0.0.1');
});
