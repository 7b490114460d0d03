// Fallback backends for bench/lb.ts when nginx is not installed: one process answering "ok <port>" on each port.
// Usage: PORTS=18001,18002,18003 node --import tsx bench/proxies/node-backend.ts
import http from 'node:http';

const ports = (process.env.PORTS ?? '').split(',').filter((s) => s !== '').map(Number);
if (ports.length === 0) throw new Error('PORTS is required');
for (const port of ports) {
  const body = Buffer.from(`ok ${port}\n`);
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
}
