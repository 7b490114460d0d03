// The fast data plane end to end (the other LB suites run on the default plane): hostile
// and malformed input over raw sockets, pipelining, chunked and close-delimited bodies, 1xx and
// bodiless responses, hop-by-hop headers, hand-off to the Node plane at a request boundary,
// upstream timeouts and malformed upstream responses, keep-alive reuse, and `--data-plane node`.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { raw, statusLines } from '../helpers/raw-http.js';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { request } from 'undici';
import { WebSocketServer } from 'ws';
import { startTestAgent } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';

/** A backend speaking raw bytes: `respond` gets each request head and writes whatever it likes. */
async function rawBackend(respond: (head: string, sock: Socket) => void): Promise<{ server: NetServer; port: number; connections: number }> {
  const state = { server: createNetServer(), port: 0, connections: 0 };
  state.server.on('connection', (sock) => {
    state.connections++;
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i + 4);
        buf = buf.slice(i + 4);
        respond(head, sock);
      }
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.port = (state.server.address() as AddressInfo).port;
  return state;
}


/** Splits responses read from a raw socket (Content-Length or chunked framing; no 1xx, no HEAD). */
function parseResponses(s: string): { status: number; headers: Record<string, string>; body: string }[] {
  const out: { status: number; headers: Record<string, string>; body: string }[] = [];
  let pos = 0;
  while (pos < s.length) {
    const he = s.indexOf('\r\n\r\n', pos);
    if (he < 0) throw new Error(`incomplete head at ${pos}: ${JSON.stringify(s.slice(pos, pos + 80))}`);
    const lines = s.slice(pos, he).split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    pos = he + 4;
    let body = '';
    if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = s.indexOf('\r\n', pos);
        const size = parseInt(s.slice(pos, le).split(';')[0]!, 16);
        pos = le + 2;
        if (size === 0) {
          pos = s.indexOf('\r\n\r\n', pos - 2) + 4;
          break;
        }
        body += s.slice(pos, pos + size);
        pos += size + 2;
      }
    } else {
      const n = Number(headers['content-length'] ?? 0);
      body = s.slice(pos, pos + n);
      pos += n;
    }
    out.push({ status, headers, body });
  }
  return out;
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing split can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `s` into 1..max-byte pieces. */
function slices(s: string, rand: () => number, max: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    const n = 1 + Math.floor(rand() * max);
    out.push(s.slice(i, i + n));
    i += n;
  }
  return out;
}

describe('fast data plane', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  const servers: NetServer[] = [];
  const lbs: TestLb[] = [];
  let n = 0;
  const svc = (): string => `fast${++n}`;
  const lbFor = async (service: string, ports: number[], cfg: Parameters<typeof startTestLb>[1] = {}): Promise<TestLb> => {
    const lb = await startTestLb(agent.url, { service, 'data-plane': 'fast', ...cfg });
    lbs.push(lb);
    await waitUpstreams(lb, service, ports);
    return lb;
  };
  const backend = async (service: string, name: string): Promise<Backend> => {
    const b = await startBackend(name);
    backends.push(b);
    await registerBackend(agent.url, service, b);
    return b;
  };
  const registerRaw = async (service: string, id: string, port: number): Promise<void> => {
    await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: service, ID: id, Address: '127.0.0.1', Port: port }) });
  };

  before(async () => {
    agent = await startTestAgent();
  });
  afterEach(async () => {
    for (const lb of lbs.splice(0)) await lb.close();
    for (const b of backends.splice(0)) await b.close();
    for (const s of servers.splice(0)) {
      s.close();
    }
  });
  after(async () => {
    await agent.stop();
  });

  it('refuses malformed and smuggling-shaped requests with a clear status and body, and forwards none of them', async () => {
    const s = svc();
    const b = await backend(s, 'never');
    // HTTP/2 off: the preface is then an HTTP/1 head like any other (with it on, it is h2c: lb-h2.test.ts).
    const lb = await lbFor(s, [b.port], { limits: { 'max-header-size': 4096 }, http2: { enabled: false } });
    const cases: [string, string, RegExp][] = [
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', '400', /both Content-Length and Transfer-Encoding/],
      ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc', '400', /more than one Content-Length/],
      ['GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', '400', /obsolete line folding/],
      ['GET / HTTP/1.1\r\nHost : x\r\n\r\n', '400', /whitespace between header name and colon/],
      ['GET / HTTP/1.1\nHost: x\n\n', '400', /bare LF/],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', '400', /bad request body: invalid chunk size/],
      ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', '501', /transfer codings other than chunked/],
      ['GET / HTTP/1.1\r\n\r\n', '400', /missing Host/],
      ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', '505', /HTTP\/1\.0 and HTTP\/1\.1/],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(6000)}\r\n\r\n`, '431', /header section too large/],
    ];
    for (const [input, status, reason] of cases) {
      const out = await raw(lb.address.port, [input]);
      assert.deepEqual(statusLines(out), [status], `${JSON.stringify(input.slice(0, 60))} → ${JSON.stringify(out)}`);
      assert.match(out, /\r\nconnection: close\r\n/i);
      assert.match(out, reason);
    }
    assert.equal(b.hits, 0, 'nothing reached the backend');
  });

  it('serves pipelined requests one at a time, in order', async () => {
    const s = svc();
    const bs = [await backend(s, 'p1'), await backend(s, 'p2')];
    for (const b of bs) b.handler = (req, res) => setTimeout(() => res.end(`${b.name}${req.url}`), req.url === '/1' ? 60 : 0);
    const lb = await lbFor(s, bs.map((b) => b.port));
    const out = await raw(lb.address.port, ['GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
    assert.deepEqual(statusLines(out), ['200', '200', '200']);
    const bodies = [...out.matchAll(/(p[12])(\/\d)/g)].map((m) => m[2]);
    assert.deepEqual(bodies, ['/1', '/2', '/3'], out);
  });

  it('forwards chunked request bodies, and frames chunked and close-delimited responses', async () => {
    const s = svc();
    const echo = await backend(s, 'echo');
    echo.handler = (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        // Chunked on the way back too: two writes, no Content-Length.
        res.write(`${req.headers['transfer-encoding'] ?? 'none'}:`);
        res.end(Buffer.concat(parts));
      });
    };
    const lb = await lbFor(s, [echo.port]);
    const out = await raw(lb.address.port, ['POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n', '6\r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\n'], { until: (g) => g.endsWith('0\r\n\r\n') });
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(out, /\r\ntransfer-encoding: chunked\r\n/i);
    const body = out.slice(out.indexOf('\r\n\r\n') + 4).replace(/[0-9a-f]+\r\n([^]*?)\r\n/g, '$1');
    assert.equal(body, 'chunked:hello world');

    // A close-delimited response (no Content-Length, no chunking) reaches the client chunked, and the client connection stays usable.
    const s2 = svc();
    const closer = await rawBackend((_head, sock) => sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end'));
    servers.push(closer.server);
    await registerRaw(s2, `${s2}-c`, closer.port);
    const lb2 = await lbFor(s2, [closer.port]);
    const two = await raw(lb2.address.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { pauseMs: 200 });
    assert.deepEqual(statusLines(two), ['200', '200']);
    assert.equal([...two.matchAll(/d\r\nuntil the end\r\n0\r\n\r\n/g)].length, 2, two);
  });

  it('sends no body for HEAD, 204 and 304, and skips 1xx informational responses', async () => {
    const s = svc();
    const b = await rawBackend((head, sock) => {
      const path = head.split(' ')[1];
      if (path === '/204') sock.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (path === '/304') sock.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
      else if (head.startsWith('HEAD')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      else sock.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
    });
    servers.push(b.server);
    await registerRaw(s, `${s}-r`, b.port);
    const lb = await lbFor(s, [b.port]);
    const out = await raw(lb.address.port, [
      'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /204 HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /304 HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ], { pauseMs: 100 });
    assert.deepEqual(statusLines(out), ['200', '204', '304', '200'], out);
    assert.match(out, /content-length: 1000\r\n[^]*\r\n\r\nHTTP\/1\.1 204/i, 'HEAD keeps its Content-Length and has no body');
    assert.ok(out.endsWith('\r\n\r\nfinal'), out);
    assert.equal(b.connections, 1, 'one upstream connection served all four');
  });

  it('strips hop-by-hop headers both ways and honours Connection: close', async () => {
    const s = svc();
    const b = await backend(s, 'hop');
    let seen: Record<string, unknown> = {};
    b.handler = (req, res) => {
      seen = req.headers;
      res.writeHead(200, { Connection: 'X-Internal', 'X-Internal': 'secret', 'Keep-Alive': 'timeout=5', 'X-Kept': 'yes' }).end('ok');
    };
    const lb = await lbFor(s, [b.port]);
    const out = await raw(lb.address.port, ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Request-Id: abc-123\r\n\r\n']);
    assert.equal(seen['x-secret'], undefined);
    assert.equal(seen['keep-alive'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen['proxy-connection'], undefined);
    assert.equal(seen.connection, 'keep-alive', 'the upstream connection is kept alive whatever the client said');
    assert.equal(seen['x-request-id'], 'abc-123', 'a client request id is kept');
    assert.match(out, /\r\nx-kept: yes\r\n/i);
    assert.doesNotMatch(out, /x-internal|keep-alive/i);
    assert.match(out, /\r\nx-request-id: abc-123\r\n/);
    assert.match(out, /\r\nconnection: close\r\n/);
  });

  it('serves Upgrade and HTTP/1.0 itself, also after requests it served itself; answers Expect: 100-continue itself', async () => {
    const s = svc();
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const wsPort = (wss.address() as AddressInfo).port;
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    // The ws server answers plain HTTP requests with 426; that is enough to see who served them.
    await registerRaw(s, `${s}-ws`, wsPort);
    const lb = await lbFor(s, [wsPort]);
    const upgrade = 'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    const out = await raw(lb.address.port, ['GET /plain HTTP/1.1\r\nHost: x\r\n\r\n', upgrade], { pauseMs: 200, until: (g) => g.includes('101 Switching Protocols') && g.endsWith('\r\n\r\n') });
    assert.deepEqual(statusLines(out), ['426', '101'], out);
    assert.match(out, /\r\nx-request-id: /, 'the first answer came from the fast plane');
    wss.close();

    const s2 = svc();
    const b = await backend(s2, 'cont');
    b.handler = (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => res.end(`${req.httpVersion} got ${body}`));
    };
    const lb2 = await lbFor(s2, [b.port]);
    const cont = await raw(lb2.address.port, ['POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', 'hello'], { pauseMs: 300, until: (g) => g.includes('got hello') });
    assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*x-request-id: /, cont);
    const odd = await raw(lb2.address.port, ['POST / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\n']);
    assert.deepEqual(statusLines(odd), ['417'], odd);
    const old = await raw(lb2.address.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /old HTTP/1.0\r\n\r\n'], { pauseMs: 150 });
    assert.deepEqual(statusLines(old), ['200', '200'], old);
    // Served by this plane (x-request-id), closed after since 1.0 did not ask to keep the connection.
    assert.match(old, /1\.1 got [^]*HTTP\/1\.1 200 OK\r\n[^]*x-request-id: [^]*connection: close\r\n[^]*1\.1 got $/, old);
  });

  it('gives up on a silent upstream after the header timeout: idempotent requests go to another instance, others get 504', async () => {
    const s = svc();
    const silent = await rawBackend(() => undefined);
    servers.push(silent.server);
    await registerRaw(s, `${s}-silent`, silent.port);
    const good = await backend(s, 'good');
    const lb = await lbFor(s, [silent.port, good.port], { timeouts: { header: '300ms' }, 'passive-health': { 'max-fails': 0 } });
    for (let i = 0; i < 4; i++) {
      const r = await request(lb.url);
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'good');
    }
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await request(lb.url, { method: 'POST', body: 'x' });
      statuses.push(r.statusCode);
      const text = await r.body.text();
      if (r.statusCode === 504) assert.match(text, /did not answer in time/);
    }
    assert.deepEqual(statuses.sort(), [200, 200, 504, 504]);
  });

  it('answers 502 for a malformed upstream response and does not reuse that connection', async () => {
    const s = svc();
    const bad = await rawBackend((_h, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok'));
    servers.push(bad.server);
    await registerRaw(s, `${s}-bad`, bad.port);
    const lb = await lbFor(s, [bad.port], { retries: { attempts: 1 } });
    for (let i = 0; i < 2; i++) {
      const r = await request(lb.url);
      assert.equal(r.statusCode, 502);
      assert.match(await r.body.text(), /bad response \(more than one Content-Length header\)/);
    }
    assert.equal(bad.connections, 2);
  });

  it('does not care where reads split the bytes, in either direction', async () => {
    const s = svc();
    const rand = rng(20261122);
    const body = (n: number): string => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    // Upstream: answers each GET by path, trickling its response out in small slices.
    const up = await rawBackend((head, sock) => {
      const path = head.split(' ')[1] ?? '';
      const n = Number(path.split('/')[2] ?? 0);
      const payload = body(n);
      let resp: string;
      if (path.startsWith('/cl/')) resp = `HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\nX-Path: ${path}\r\n\r\n${payload}`;
      else {
        const parts = slices(payload, rand, 40).map((p) => `${p.length.toString(16)};x=y\r\n${p}\r\n`).join('');
        resp = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Path: ${path}\r\n\r\n${parts}0\r\nX-Trailer: t\r\n\r\n`;
      }
      const pieces = slices(resp, rand, 7);
      const pump = (): void => {
        const p = pieces.shift();
        if (p === undefined) return;
        sock.write(p);
        setImmediate(pump);
      };
      pump();
    });
    servers.push(up.server);
    await registerRaw(s, `${s}-trickle`, up.port);
    const lb = await lbFor(s, [up.port]);
    const paths = ['/cl/0', '/cl/1', '/chunked/5', '/cl/300', '/chunked/1000', '/cl/70000', '/chunked/0', '/chunked/3000'];
    const requests = paths.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: trickle\r\nX-Index: ${i}\r\n${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const out = await raw(lb.address.port, slices(requests, rand, 9), { pauseMs: 1, timeoutMs: 15_000 });
    const got = parseResponses(out);
    assert.deepEqual(got.map((r) => r.headers['x-path']), paths);
    for (const [i, r] of got.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.body, body(Number(paths[i]!.split('/')[2])), paths[i]);
    }
    assert.equal(up.connections, 1, 'one upstream connection, reused for every response');
  });

  it('forwards request bodies split anywhere (Content-Length and chunked, pipelined)', async () => {
    const s = svc();
    const rand = rng(7);
    const echo = await backend(s, 'body-echo');
    echo.handler = (req, res) => {
      let n = '';
      req.on('data', (d: Buffer) => (n += d.toString('latin1')));
      req.on('end', () => res.end(`${req.method} ${req.url} ${n.length} ${n.slice(0, 8)}|${n.slice(-8)}`));
    };
    const lb = await lbFor(s, [echo.port]);
    const text = (n: number, c: string): string => c.repeat(n);
    const big = text(50_000, 'q');
    const chunked = slices(big, rand, 5000).map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('');
    const input =
      `POST /cl HTTP/1.1\r\nHost: b\r\nContent-Length: 20000\r\n\r\n${text(20_000, 'z')}` +
      `POST /chunked HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}0\r\n\r\n` +
      'GET /after HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';
    const out = await raw(lb.address.port, slices(input, rand, 3000), { pauseMs: 1, timeoutMs: 15_000 });
    assert.deepEqual(parseResponses(out).map((r) => r.body), [
      'POST /cl 20000 zzzzzzzz|zzzzzzzz',
      'POST /chunked 50000 qqqqqqqq|qqqqqqqq',
      'GET /after 0 |',
    ]);
  });

  it('keeps upstream connections alive across requests', async () => {
    const s = svc();
    const b = await backend(s, 'ka');
    let conns = 0;
    b.server.on('connection', () => conns++);
    const lb = await lbFor(s, [b.port]);
    for (let i = 0; i < 50; i++) await (await request(lb.url)).body.dump();
    assert.equal(conns, 1);
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: a 503 is retried on another instance for GET, never for POST (it reached an instance)`, async () => {
      const s = svc();
      const sick = await backend(s, `sick-${plane}`);
      const well = await backend(s, `well-${plane}`);
      sick.handler = (req, res) => req.resume().on('end', () => res.writeHead(503).end('sick'));
      well.handler = (req, res) => req.resume().on('end', () => res.end('well'));
      // Passive health off, so the sick instance keeps its turn and the POSTs do reach it.
      const lb = await lbFor(s, [sick.port, well.port], { 'data-plane': plane, 'passive-health': { 'max-fails': 0, 'consecutive-5xx': 0 } });
      for (let i = 0; i < 4; i++) {
        const r = await request(lb.url);
        assert.equal(await r.body.text(), 'well', `GET ${i}`);
      }
      sick.hits = 0;
      well.hits = 0;
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        // No body: nothing was streamed, so only the method stands between this 503 and a retry.
        const r = await request(lb.url, { method: 'POST' });
        await r.body.dump();
        statuses.push(r.statusCode);
      }
      assert.ok(sick.hits > 0, 'round-robin sent POSTs to the sick instance');
      assert.equal(sick.hits + well.hits, 4, 'every POST reached exactly one instance');
      assert.equal(statuses.filter((c) => c === 503).length, sick.hits, 'each POST the sick instance answered came back as its 503');
    });
  }

  it('--data-plane node keeps the Node http server + undici plane (Expect: 100-continue included)', async () => {
    const s = svc();
    const b = await backend(s, 'nodeplane');
    const lb = await lbFor(s, [b.port], { 'data-plane': 'node' });
    const r = await request(lb.url);
    assert.equal(await r.body.text(), 'nodeplane');
    assert.equal(r.headers['keep-alive'], 'timeout=65', 'Node\'s server announces its keep-alive timeout');
    // Expect: 100-continue works there too (Node's server answers it; the header is not forwarded to undici).
    b.handler = (req, res) => req.resume().on('end', () => res.end('continued'));
    const cont = await raw(lb.address.port, ['POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', 'hello'], { pauseMs: 300 });
    assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*continued$/, cont);
  });
});
