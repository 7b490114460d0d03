// A demo backend like the seed's Flask API: GET /hostname answers its name; /health can be made to fail.
import { createServer } from 'node:http';

const [port, name] = [Number(process.argv[2]), process.argv[3] ?? `backend-${process.argv[2]}`];
let healthy = true;
const server = createServer((req, res) => {
  if (req.url === '/hostname') return res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ hostname: name }));
  if (req.url === '/health') return res.writeHead(healthy ? 200 : 500).end(healthy ? 'ok' : 'failing');
  if (req.url === '/fail' && req.method === 'POST') {
    healthy = false;
    return res.end('now failing its health check\n');
  }
  if (req.url === '/recover' && req.method === 'POST') {
    healthy = true;
    return res.end('healthy again\n');
  }
  res.writeHead(404).end();
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
