// HTTP/2 and gRPC through the balancer, end to end with third-party clients: curl (--http2,
// --http2-prior-knowledge, TLS), nghttp, @grpc/grpc-js clients and servers, Node's http2 client; the
// HTTP/2 abuse shapes; a gRPC health check removing an instance.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { http, startTestAgent, tempDir } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { lbMetric, startBackend, startStaticLb, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { NOT_SERVING, echoClient, grpc, startGrpcBackend, unary } from '../helpers/grpc.js';
import type { EchoClient, GrpcBackend, Msg } from '../helpers/grpc.js';
import { selfSigned } from '../helpers/tls.js';
import { FLAG, FRAME, frame, getRequest, ping, rawH2, rstStream, selfPriority, settings, startProtocolBreaker } from '../helpers/h2-raw.js';

const run = promisify(execFile);
const CI = process.env.CI === 'true';
const haveCurl = existsSync('/usr/bin/curl');
const haveNghttp = existsSync('/usr/bin/nghttp');

/** One request over an HTTP/2 session: head, body, trailers. */
function h2req(s: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer): Promise<{ head: IncomingHttpHeaders; body: Buffer; trailers: IncomingHttpHeaders | undefined; endStreamHead: boolean }> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    let endStreamHead = false;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h, flags) => {
      head = h;
      endStreamHead = (flags & 1) !== 0;
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ head, body: Buffer.concat(chunks), trailers, endStreamHead }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** A gRPC frame around a JSON message (the Echo service's encoding). */
const grpcFrame = (m: Msg): Buffer => {
  const b = Buffer.from(JSON.stringify(m));
  const p = Buffer.alloc(5);
  p.writeUInt32BE(b.length, 1);
  return Buffer.concat([p, b]);
};

const metric = lbMetric;

async function pollUntil(what: string, f: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('HTTP/2 and gRPC through the balancer', () => {
  const closers: (() => Promise<void> | void)[] = [];
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
    closers.push(() => agent.stop());
  });
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  async function backend(name: string): Promise<Backend> {
    const b = await startBackend(name);
    closers.push(() => b.close());
    return b;
  }

  async function grpcBackend(name: string): Promise<GrpcBackend> {
    const b = await startGrpcBackend(name);
    closers.push(() => b.close());
    return b;
  }

  async function staticLb(cfg: Parameters<typeof startStaticLb>[0], services: Parameters<typeof startStaticLb>[1]): Promise<TestLb> {
    const lb = await startStaticLb(cfg, services);
    closers.push(() => lb.close());
    return lb;
  }

  it('curl: h2c with prior knowledge on both planes, Upgrade: h2c served over HTTP/1.1 untouched, h2 over TLS by ALPN', { skip: !haveCurl && !CI && 'curl not installed' }, async () => {
    const b = await backend('web1');
    const seen: string[] = [];
    b.handler = (req, res) => {
      seen.push(`${req.httpVersion} upgrade=${req.headers.upgrade ?? '-'} settings=${req.headers['http2-settings'] ?? '-'} proto=${String(req.headers['x-forwarded-proto'])}`);
      res.end('hello');
    };
    // An instance that would switch to h2c if asked: the balancer must never let it.
    b.server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'));
    const tls = selfSigned(tempDir('sy-h2-tls-'), 'lb', ['localhost', '127.0.0.1']);
    for (const plane of ['fast', 'node'] as const) {
      seen.length = 0;
      const lb = await staticLb({ service: 'web', 'data-plane': plane, tls: { listen: '127.0.0.1:0', certs: [tls] } }, { web: [{ port: b.port }] });
      const url = `http://127.0.0.1:${lb.address.port}/x`;
      const pk = await run('curl', ['-sS', '-i', '--http2-prior-knowledge', url]);
      assert.match(pk.stdout, /^HTTP\/2 200/, `${plane}: h2c prior knowledge`);
      assert.match(pk.stdout, /hello$/);
      assert.match(pk.stdout, /x-request-id: /);
      const up = await run('curl', ['-sS', '-i', '--http2', url]);
      assert.match(up.stdout, /^HTTP\/1\.1 200/, `${plane}: Upgrade: h2c is not taken up`);
      assert.match(up.stdout, /hello$/);
      const tlsOut = await run('curl', ['-sS', '-i', '-k', '--http2', `https://127.0.0.1:${lb.tlsAddress!.port}/x`]);
      assert.match(tlsOut.stdout, /^HTTP\/2 200/, `${plane}: ALPN h2 on the TLS listener`);
      const h1 = await run('curl', ['-sS', '-i', '-k', '--http1.1', `https://127.0.0.1:${lb.tlsAddress!.port}/x`]);
      assert.match(h1.stdout, /^HTTP\/1\.1 200/, `${plane}: ALPN http/1.1 still served by the HTTP/1 plane`);
      assert.deepEqual(seen, ['1.1 upgrade=- settings=- proto=http', '1.1 upgrade=- settings=- proto=http', '1.1 upgrade=- settings=- proto=https', '1.1 upgrade=- settings=- proto=https'], plane);
    }
  });

  it('nghttp: several streams on one h2c connection and over TLS', { skip: !haveNghttp && !CI && 'nghttp2-client not installed' }, async () => {
    const b = await backend('ng');
    b.handler = (req, res) => res.end(`path ${req.url}`);
    const tls = selfSigned(tempDir('sy-h2-ng-'), 'lb', ['localhost', '127.0.0.1']);
    const lb = await staticLb({ service: 'web', tls: { listen: '127.0.0.1:0', certs: [tls] } }, { web: [{ port: b.port }] });
    for (const base of [`http://127.0.0.1:${lb.address.port}`, `https://127.0.0.1:${lb.tlsAddress!.port}`]) {
      const out = (await run('nghttp', ['-v', `${base}/a`, `${base}/b`, `${base}/c`])).stdout;
      assert.equal(out.match(/recv \(stream_id=\d+\) :status: 200/g)?.length, 3, out);
      for (const p of ['/a', '/b', '/c']) assert.ok(out.includes(`path ${p}`), `${base}${p} answered`);
      assert.equal((out.match(/send HEADERS frame/g) ?? []).length, 3, 'one connection, three streams');
    }
  });

  it('the preface split over several reads is still HTTP/2 (fast plane)', async () => {
    const b = await backend('split');
    const lb = await staticLb({ service: 'web' }, { web: [{ port: b.port }] });
    const c = await rawH2(lb.address.port, Buffer.alloc(0)).catch((e: unknown) => {
      throw e;
    });
    c.socket.destroy();
    // By hand: 10 bytes, then the rest, then a request.
    const sock = netConnect(lb.address.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    const pre = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    sock.write(pre.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 50));
    sock.write(pre.subarray(10, 18));
    await new Promise((r) => setTimeout(r, 50));
    sock.write(Buffer.concat([pre.subarray(18), settings(), getRequest(1, '/', 'x')]));
    await pollUntil('an HTTP/2 HEADERS frame back', () => {
      const all = Buffer.concat(got);
      return all.length >= 9 && all[3] === FRAME.SETTINGS && all.includes(Buffer.from('split'));
    });
    assert.ok(!Buffer.concat(got).toString('latin1').startsWith('HTTP/1.1'), 'not answered as HTTP/1');
    sock.destroy();
  });

  it('HTTP/2 clients to HTTP/1.1 instances: request bodies with and without a length, every response framing, HEAD and 204, on both planes', async () => {
    const big = Buffer.alloc(300 * 1024, 0x62);
    const up = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const te = req.headers['transfer-encoding'] ?? '-';
        if (req.url === '/echo') res.writeHead(200, { 'x-te': te, 'x-len': String(req.headers['content-length'] ?? '-') }).end(body);
        else if (req.url === '/chunked') {
          res.writeHead(200, { 'set-cookie': ['a=1', 'b=2'], connection: 'x-drop', 'x-drop': 'gone' });
          res.write('part1-');
          setTimeout(() => res.end('part2'), 20);
        } else if (req.url === '/close') {
          res.writeHead(200, { connection: 'close' });
          res.socket?.write('');
          res.end('until-close');
        } else if (req.url === '/big') res.end(big);
        else if (req.url === '/nothing') res.writeHead(204).end();
        else if (req.url === '/odd') res.writeHead(200, ['Constructor', 'x', '__proto__', 'p', 'content-type', 'application/json']).end(JSON.stringify(req.rawHeaders));
        else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => {
      up.closeAllConnections();
      up.close(() => r());
    }));
    const port = (up.address() as AddressInfo).port;
    for (const plane of ['fast', 'node'] as const) {
      const lb = await staticLb({ service: 'web', 'data-plane': plane }, { web: [{ port }] });
      const s = h2connect(`http://127.0.0.1:${lb.address.port}`);
      closers.push(() => void s.close());
      const withLen = await h2req(s, { ':method': 'POST', ':path': '/echo', 'content-length': '11' }, Buffer.from('hello world'));
      assert.equal(withLen.body.toString(), 'hello world', plane);
      assert.equal(withLen.head['x-len'], '11');
      const payload = Buffer.alloc(200 * 1024, 0x63);
      const noLen = await h2req(s, { ':method': 'POST', ':path': '/echo' }, payload);
      assert.ok(noLen.body.equals(payload), `${plane}: a body without a length arrives whole`);
      assert.equal(noLen.head['x-te'], 'chunked');
      const ch = await h2req(s, { ':method': 'GET', ':path': '/chunked' });
      assert.equal(ch.body.toString(), 'part1-part2', `${plane}: chunked response de-framed`);
      assert.deepEqual(ch.head['set-cookie'], ['a=1', 'b=2']);
      assert.equal(ch.head['x-drop'], undefined, `${plane}: a field named in Connection is dropped`);
      assert.equal((await h2req(s, { ':method': 'GET', ':path': '/close' })).body.toString(), 'until-close', `${plane}: close-delimited`);
      const b = await h2req(s, { ':method': 'GET', ':path': '/big' });
      assert.ok(b.body.equals(big), `${plane}: a large body arrives whole`);
      const head = await h2req(s, { ':method': 'HEAD', ':path': '/x' });
      assert.equal(head.head[':status'], 200);
      assert.equal(head.head['content-length'], '5');
      assert.equal(head.body.length, 0);
      const none = await h2req(s, { ':method': 'GET', ':path': '/nothing' });
      assert.equal(none.head[':status'], 204);
      // Field names that Object.prototype has pass both ways like any other (nginx passes them too).
      const odd = await h2req(s, { ':method': 'GET', ':path': '/odd', constructor: 'y', ['__proto__']: 'q' });
      assert.equal(odd.head.constructor, 'x', `${plane}: a response field named constructor keeps its value`);
      assert.ok(Object.hasOwn(odd.head, '__proto__') && odd.head['__proto__'] === 'p', `${plane}: a response field named __proto__ is passed`);
      const sent = JSON.parse(odd.body.toString()) as string[];
      assert.equal(sent[sent.indexOf('constructor') + 1], 'y', `${plane}: request field constructor`);
      assert.equal(sent[sent.indexOf('__proto__') + 1], 'q', `${plane}: request field __proto__`);
      const many = await Promise.all(Array.from({ length: 50 }, () => h2req(s, { ':method': 'GET', ':path': '/x' })));
      assert.ok(many.every((r) => r.body.toString() === 'hello'), `${plane}: 50 concurrent streams`);
    }
  });

  it('gRPC: all four call kinds, metadata both ways, status codes and trailers through a proto=grpc route', async () => {
    const g1 = await grpcBackend('g1');
    const g2 = await grpcBackend('g2');
    const lb = await staticLb({ routes: [{ path: '/test.Echo', service: 'echo', protocol: 'grpc' }] }, { echo: [{ port: g1.port }, { port: g2.port }] });
    const c = echoClient(`127.0.0.1:${lb.address.port}`);
    closers.push(() => c.close());
    const froms = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await unary(c, { text: `hi${i}` }, { meta: { 'x-test': `m${i}` } });
      assert.equal(r.answer.text, `hi${i}`);
      assert.equal(r.answer.meta, `m${i}`, 'request metadata reaches the instance');
      assert.deepEqual(r.trailers.get('x-served-by'), [r.answer.from], 'trailing metadata reaches the client');
      froms.add(r.answer.from ?? '');
    }
    assert.deepEqual([...froms].sort(), ['g1', 'g2'], 'calls on one client connection are balanced one by one');
    await assert.rejects(unary(c, { fail: grpc.status.NOT_FOUND }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && /failed as asked/.test(e.details));
    await assert.rejects(unary(c, { fail: grpc.status.PERMISSION_DENIED }), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
    const stream = c.ServerStream({ n: 200, text: 'x'.repeat(1000) });
    const ns: number[] = [];
    for await (const m of stream as AsyncIterable<Msg>) ns.push(m.n ?? -1);
    assert.deepEqual(ns, Array.from({ length: 200 }, (_, i) => i), 'server streaming, in order');
    const sum = await new Promise<Msg>((resolve, reject) => {
      const w = c.ClientStream(new grpc.Metadata(), {}, (e, r) => (e ? reject(e) : resolve(r as Msg)));
      for (let i = 1; i <= 100; i++) w.write({ n: i, text: 'y'.repeat(1000) });
      w.end();
    });
    assert.equal(sum.n, 5050, 'client streaming');
    const bidi = c.Bidi();
    const echoed: string[] = [];
    bidi.on('data', (m: Msg) => echoed.push(m.text ?? ''));
    for (const t of ['a', 'b', 'c', 'd']) bidi.write({ text: t });
    bidi.end();
    await new Promise((r) => bidi.on('end', r));
    assert.deepEqual(echoed, ['a', 'b', 'c', 'd'], 'bidi streaming');
    assert.ok(await metric(lb, 'switchyard_lb_requests_total', { protocol: 'h2', grpc_status: '5' }) >= 1, 'grpc_status label');
    assert.ok(await metric(lb, 'switchyard_lb_requests_total', { protocol: 'h2', grpc_status: '0' }) >= 6);
  });

  it('gRPC through scale 1 → 3 → 2 from the registry: every call balanced on its own, zero failed calls', async () => {
    const bs = [await grpcBackend('s1'), await grpcBackend('s2'), await grpcBackend('s3')];
    const reg = (b: GrpcBackend): Promise<unknown> => http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'echo-scale', ID: `echo-${b.name}`, Address: '127.0.0.1', Port: b.port, Tags: ['urlprefix-/test.Echo proto=grpc'] });
    await reg(bs[0]!);
    const lb = await startTestLb(agent.url, {});
    closers.push(() => lb.close());
    await waitUpstreams(lb, 'echo-scale', [bs[0]!.port]);
    const routes = await (await fetch(`${lb.adminUrl}/routes`)).json() as { routes: { origin: string; protocol: string }[] };
    assert.equal(routes.routes.find((r) => r.origin.includes('echo-scale'))?.protocol, 'grpc', '/routes shows the upstream protocol');
    const c = echoClient(`127.0.0.1:${lb.address.port}`);
    closers.push(() => c.close());
    let running = true;
    let failed = 0;
    const errors: string[] = [];
    let phase = 1;
    const byPhase = new Map<number, Map<string, number>>();
    const deadline = Date.now() + 60_000;
    const loops = Array.from({ length: 6 }, async () => {
      while (running && Date.now() < deadline) {
        const p = phase;
        try {
          const r = await unary(c, { text: 'load' }, { deadlineMs: 10_000 });
          let m = byPhase.get(p);
          if (!m) byPhase.set(p, (m = new Map()));
          m.set(r.answer.from ?? '', (m.get(r.answer.from ?? '') ?? 0) + 1);
        } catch (e) {
          failed++;
          errors.push(`${(e as grpc.ServiceError).code} ${(e as Error).message}`);
        }
      }
    });
    const callsIn = (p: number, min: number): Promise<void> => pollUntil(`${min} calls in phase ${p}`, () => [...(byPhase.get(p)?.values() ?? [])].reduce((a, b) => a + b, 0) >= min);
    await callsIn(1, 50);
    // Calls started while the table changes belong to neither side: counted for failures only.
    phase = 13;
    await reg(bs[1]!);
    await reg(bs[2]!);
    await waitUpstreams(lb, 'echo-scale', bs.map((b) => b.port));
    phase = 3;
    await callsIn(3, 300);
    phase = 32;
    await http(agent.url, 'PUT', `/v1/agent/service/deregister/echo-${bs[2]!.name}`);
    await waitUpstreams(lb, 'echo-scale', [bs[0]!.port, bs[1]!.port]);
    phase = 2;
    await callsIn(2, 100);
    running = false;
    await Promise.all(loops);
    assert.equal(failed, 0, `failed calls: ${errors.slice(0, 5).join('; ')}`);
    assert.deepEqual([...byPhase.get(1)!.keys()], ['s1']);
    const three = byPhase.get(3)!;
    assert.deepEqual([...three.keys()].sort(), ['s1', 's2', 's3'], `one client connection spread over three instances: ${JSON.stringify([...three])}`);
    for (const n of three.values()) assert.ok(n >= 300 / 3 / 3, `each instance has its share: ${JSON.stringify([...three])}`);
    assert.deepEqual([...byPhase.get(2)!.keys()].sort(), ['s1', 's2']);
    for (const b of bs.slice(0, 2)) await http(agent.url, 'PUT', `/v1/agent/service/deregister/echo-${b.name}`);
  });

  it('gRPC: grpc-timeout is a deadline at the balancer (DEADLINE_EXCEEDED, the instance\'s call cancelled)', async () => {
    const g = await grpcBackend('slow');
    const lb = await staticLb({ routes: [{ path: '/', service: 'echo', protocol: 'grpc' }] }, { echo: [{ port: g.port }] });
    const s = h2connect(`http://127.0.0.1:${lb.address.port}`);
    closers.push(() => void s.close());
    const r = await h2req(s, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' }, grpcFrame({ delayMs: 5000 }));
    const st = r.trailers ?? r.head;
    assert.equal(st['grpc-status'], '4', JSON.stringify(r));
    assert.match(decodeURIComponent(String(st['grpc-message'])), /deadline exceeded/);
    await pollUntil('the instance to see its call cancelled', () => g.cancelled >= 1);
  });

  it('gRPC: far deadlines pass through: 48H reaches a grpc-js instance intact, 720H is not exceeded at once', async () => {
    const g = await grpcBackend('far');
    const lb = await staticLb({ routes: [{ path: '/', service: 'echo', protocol: 'grpc' }] }, { echo: [{ port: g.port }] });
    const s = h2connect(`http://127.0.0.1:${lb.address.port}`);
    closers.push(() => void s.close());
    // 48 hours is 172,800,000 ms: nine digits, which the header does not allow, so it goes on in seconds.
    const r = await h2req(s, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '48H' }, grpcFrame({}));
    assert.equal((r.trailers ?? r.head)['grpc-status'], '0', JSON.stringify(r));
    assert.ok(g.deadlines.length === 1 && g.deadlines[0]! > Date.now() + 47 * 3_600_000, `the instance's deadline: ${JSON.stringify(g.deadlines)}`);

    // Past one Node timer (24.8 days), which grpc-js itself cannot arm: an instance that answers plainly.
    const seen: (string | undefined)[] = [];
    const raw = createH2Server((req, res) => {
      seen.push(req.headers['grpc-timeout'] as string | undefined);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '0' });
        res.end();
      }, 100);
    });
    await new Promise<void>((res) => raw.listen(0, '127.0.0.1', res));
    closers.push(() => void raw.close());
    const lb2 = await staticLb({ routes: [{ path: '/', service: 'far', protocol: 'grpc' }] }, { far: [{ port: (raw.address() as AddressInfo).port }] });
    const s2 = h2connect(`http://127.0.0.1:${lb2.address.port}`);
    closers.push(() => void s2.close());
    // A timer above 2^31 - 1 ms fires after 1 ms: the call used to end DEADLINE_EXCEEDED before its answer.
    const r2 = await h2req(s2, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '720H' }, grpcFrame({}));
    assert.equal((r2.trailers ?? r2.head)['grpc-status'], '0', JSON.stringify(r2));
    assert.match(String(seen[0]), /^(259199[0-9]|2592000)S$/);
  });

  it('gRPC: no healthy instance is a trailers-only UNAVAILABLE, not an HTML 503; no route is UNIMPLEMENTED', async () => {
    const b = await backend('plain');
    const lb = await staticLb({ routes: [{ path: '/test.Echo', service: 'nobody', protocol: 'grpc' }, { path: '/web', service: 'web' }] }, { web: [{ port: b.port }] });
    const s = h2connect(`http://127.0.0.1:${lb.address.port}`);
    closers.push(() => void s.close());
    const r = await h2req(s, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' }, grpcFrame({}));
    assert.equal(r.head[':status'], 200);
    assert.equal(r.head['content-type'], 'application/grpc');
    assert.equal(r.head['grpc-status'], '14');
    assert.match(decodeURIComponent(String(r.head['grpc-message'])), /no healthy instance of nobody/);
    assert.equal(r.endStreamHead, true, 'trailers-only');
    assert.equal(r.body.length, 0);
    const c = echoClient(`127.0.0.1:${lb.address.port}`);
    closers.push(() => c.close());
    await assert.rejects(unary(c, {}), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE);
    const nr = await h2req(s, { ':method': 'POST', ':path': '/other.Svc/M', 'content-type': 'application/grpc', te: 'trailers' }, grpcFrame({}));
    assert.equal(nr.head['grpc-status'], String(grpc.status.UNIMPLEMENTED));
    // The same answer to a plain HTTP/2 request stays HTTP.
    const plain = await h2req(s, { ':method': 'GET', ':path': '/test.Echo/x' });
    assert.equal(plain.head[':status'], 503);
    assert.match(plain.body.toString(), /no healthy instance/);
    // An HTTP/1.1 client on a gRPC route gets a reason, on both planes, not a confused instance's answer.
    for (const plane of ['fast', 'node'] as const) {
      const lb1 = await staticLb({ 'data-plane': plane, routes: [{ path: '/test.Echo', service: 'echo', protocol: 'grpc' }] }, { echo: [{ port: b.port }] });
      const r1 = await fetch(`http://127.0.0.1:${lb1.address.port}/test.Echo/Unary`, { method: 'POST', body: 'x' });
      assert.equal(r1.status, 505, plane);
      assert.match(await r1.text(), /instances of echo speak grpc: send this request over HTTP\/2/);
    }
  });

  it('gRPC: UNAVAILABLE is retried on another instance; passive health ejects an instance answering UNAVAILABLE', async () => {
    const good = await grpcBackend('good');
    const sick = await grpcBackend('sick');
    sick.unavailable = true;
    const lb = await staticLb({ routes: [{ path: '/', service: 'echo', protocol: 'grpc' }], 'passive-health': { 'consecutive-5xx': 3, 'max-fails': 0 } }, { echo: [{ port: good.port }, { port: sick.port }] });
    const c = echoClient(`127.0.0.1:${lb.address.port}`);
    closers.push(() => c.close());
    for (let i = 0; i < 20; i++) assert.equal((await unary(c, { text: 'r' })).answer.from, 'good');
    assert.ok(sick.calls >= 1, 'the sick instance was tried');
    assert.ok(await metric(lb, 'switchyard_lb_retries_total', { reason: 'grpc-status 14' }) >= 1, 'counted as retries');
    assert.ok(await metric(lb, 'switchyard_lb_ejections_total', { reason: 'outlier' }) >= 1, 'ejected on grpc-status');
  });

  it('an HTTP/2 instance (meta protocol=h2c): streams multiplexed on pooled connections, trailers passed through', async () => {
    let sessions = 0;
    const up = createH2Server();
    up.on('session', () => sessions++);
    up.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', trailer: 'x-checksum' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': `sum-${String(headers[':path'])}` }));
      stream.end(`h2 ${String(headers[':path'])} via ${String(headers['x-forwarded-proto'])}`);
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise<void>((r) => up.close(() => r())));
    const port = (up.address() as AddressInfo).port;
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'h2svc', ID: 'h2svc-1', Address: '127.0.0.1', Port: port, Meta: { protocol: 'h2c' }, Tags: ['urlprefix-/h2'] });
    const lb = await startTestLb(agent.url, {});
    closers.push(() => lb.close());
    await waitUpstreams(lb, 'h2svc', [port]);
    const s = h2connect(`http://127.0.0.1:${lb.address.port}`);
    closers.push(() => void s.close());
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h2req(s, { ':method': 'GET', ':path': `/h2/${i}` })));
    rs.forEach((r, i) => {
      assert.equal(r.body.toString(), `h2 /h2/${i} via http`);
      assert.equal(r.trailers?.['x-checksum'], `sum-/h2/${i}`, 'trailers reach the client');
    });
    assert.equal(sessions, 1, 'twenty concurrent requests on one pooled upstream connection');
    const routes = await (await fetch(`${lb.adminUrl}/routes`)).json() as { groups: { service: string; upstreams: { protocol?: string }[] }[] };
    assert.equal(routes.groups.find((g) => g.service === 'h2svc')?.upstreams[0]?.protocol, 'h2c');
  });

  it('abuse: rapid reset, SETTINGS and PING floods, oversized headers and a zero window are refused and counted; a well-behaved connection keeps its answers', async () => {
    const b = await backend('abuse');
    const big = Buffer.alloc(512 * 1024, 0x61);
    b.handler = (req, res) => res.end(req.url === '/big' ? big : 'fine');
    const lb = await staticLb({ service: 'web', timeouts: { idle: '1s' } }, { web: [{ port: b.port }] });
    const port = lb.address.port;
    const auth = `127.0.0.1:${port}`;
    const good = h2connect(`http://${auth}`);
    closers.push(() => void good.close());
    let goodOk = 0;
    let goodFailed = 0;
    let running = true;
    const goodLoop = (async () => {
      while (running) {
        try {
          const r = await h2req(good, { ':method': 'GET', ':path': '/ok' });
          if (Number(r.head[':status']) === 200 && r.body.toString() === 'fine') goodOk++;
          else goodFailed++;
        } catch {
          goodFailed++;
        }
      }
    })();
    const goodAnswers = async (n: number): Promise<void> => {
      const target = goodOk + n;
      await pollUntil(`${n} more answers on the good connection`, () => goodOk >= target);
    };
    const refused = (reason: string): Promise<number> => metric(lb, 'switchyard_lb_h2_refused_total', { reason });

    // Rapid reset (CVE-2023-44487): requests cancelled right after being sent, thousands of them.
    const rr = await rawH2(port);
    const burst: Buffer[] = [];
    for (let i = 0; i < 3000; i++) burst.push(getRequest(1 + 2 * i, '/', auth), rstStream(1 + 2 * i));
    rr.write(Buffer.concat(burst));
    await rr.until((f) => f.some((x) => x.type === FRAME.GOAWAY));
    assert.ok(rr.goawayCode() !== 0, 'GOAWAY with an error');
    await pollUntil('rapid reset counted', async () => (await refused('rapid_reset')) >= 1);
    await goodAnswers(20);

    // SETTINGS flood and PING flood.
    for (const flood of [() => settings([[4, 65535]]), (i: number) => ping(i)]) {
      const c = await rawH2(port);
      const frames: Buffer[] = [];
      for (let i = 0; i < 20_000; i++) frames.push(flood(i));
      c.write(Buffer.concat(frames));
      await c.until((f) => f.some((x) => x.type === FRAME.GOAWAY));
      await goodAnswers(20);
    }
    assert.ok((await refused('control_flood')) + (await refused('flood')) >= 2, 'both floods counted');

    // A header list over limits.max-header-size (16 KiB): 431, counted; the connection stays usable.
    const oh = await rawH2(port);
    oh.write(getRequest(1, '/', auth, [['x-big', 'a'.repeat(20_000)]]));
    oh.write(getRequest(3, '/', auth));
    await oh.until((f) => f.filter((x) => x.type === FRAME.HEADERS).length >= 2);
    const heads = oh.frames.filter((x) => x.type === FRAME.HEADERS);
    assert.equal(heads[0]?.stream, 1);
    assert.ok(heads[0]!.payload.includes(Buffer.from('431')), '431 for the oversized list');
    assert.equal(await refused('oversized_headers'), 1);
    oh.socket.destroy();

    // Zero window: the client never lets a byte of its responses through; the streams are reset after the idle timeout.
    const zw = await rawH2(port, settings([[4, 0]]));
    zw.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
    for (let i = 0; i < 10; i++) zw.write(getRequest(1 + 2 * i, '/big', auth));
    await goodAnswers(20);
    await zw.until((f) => f.filter((x) => x.type === FRAME.RST_STREAM).length >= 10);
    assert.ok(await refused('stalled_stream') >= 10);
    zw.socket.destroy();
    await goodAnswers(20);
    running = false;
    await goodLoop;
    assert.equal(goodFailed, 0, 'the well-behaved connection lost nothing');
    assert.ok(rr.socket.destroyed || (await Promise.race([rr.closed.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))])), 'the rapid-reset connection was closed');
  });

  it('a connection nghttp2 ends for a protocol error (a stream being answered or not) is closed once it misses a PING, not kept; a slow stream on a live connection is not', async () => {
    // DATA after END_STREAM, or a stream made to depend on itself, while its answer is on the way:
    // nghttp2 sends GOAWAY and Node 20 stops reading the connection. Nothing then noticed the client
    // closing it: every such connection kept its socket, session and stream for good.
    const b = await backend('zombie');
    b.handler = (req, res) => void setTimeout(() => res.end('late'), req.url === '/slow' ? 1500 : 300);
    const lb = await staticLb({ service: 'web', http2: { 'keepalive-time': '200ms', 'keepalive-timeout': '300ms' } }, { web: [{ port: b.port }] });
    const port = lb.address.port;
    const auth = `127.0.0.1:${port}`;
    const sessions = (): Promise<number> => metric(lb, 'switchyard_lb_h2_sessions');
    const live = h2connect(`http://${auth}`);
    closers.push(() => void live.close());
    const slow = h2req(live, { ':method': 'GET', ':path': '/slow' });
    for (const evil of [(n: number) => frame(FRAME.DATA, 0, n, Buffer.from('x')), selfPriority]) {
      for (let i = 0; i < 5; i++) {
        const c = await rawH2(port);
        // Many streams, each followed by the frame that errs (MadeYouReset's shape, CVE-2025-8671):
        // the first error ends the connection, so no more than its first request reaches an instance.
        c.write(Buffer.concat(Array.from({ length: 100 }, (_, k) => Buffer.concat([getRequest(1 + 2 * k, '/', auth), evil(1 + 2 * k)]))));
        assert.ok(await c.until((f) => f.some((x) => x.type === FRAME.GOAWAY)), 'GOAWAY for the protocol error');
        c.socket.destroy();
      }
    }
    // Without any stream: single malformed frames after which nghttp2 ends the session the same way
    // (sent alone, 12 of 24 malformed frames left the session behind after the client had gone,
    // until the 65 s idle close; six of them here).
    const u32 = (v: number): Buffer => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
    for (const bad of [
      frame(FRAME.DATA, 0, 0, Buffer.from('x')),
      frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5)),
      frame(FRAME.PING, 0, 0, Buffer.alloc(7)),
      frame(FRAME.GOAWAY, 0, 0, u32(0)),
      frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, Buffer.alloc(3)),
      frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])),
    ]) {
      const c = await rawH2(port);
      c.write(bad);
      await c.until((f) => f.some((x) => x.type === FRAME.GOAWAY));
      c.socket.destroy();
    }
    await pollUntil('only the live connection left', async () => (await sessions()) === 1);
    assert.ok(b.hits <= 11, `${b.hits} requests reached the instance from 10 connections and the live one`);
    assert.ok(await metric(lb, 'switchyard_lb_h2_refused_total', { reason: 'unresponsive' }) >= 16);
    const r = await slow;
    assert.equal(r.body.toString(), 'late', 'a stream slower than keepalive-time + keepalive-timeout on a connection that answers its PINGs');
    assert.equal(await sessions(), 1);
  });

  it('an h2c instance that breaks the protocol mid-stream: its requests fail within keepalive-time + keepalive-timeout, not the response-header timeout, and the balancer lives on', async () => {
    const evil = await startProtocolBreaker();
    closers.push(() => evil.close());
    const good = await backend('beside-breaker');
    const lb = await staticLb({
      routes: [{ path: '/evil', service: 'evil', protocol: 'h2c' }, { path: '/', service: 'good' }],
      timeouts: { header: '30s' }, retries: { attempts: 1 }, http2: { 'keepalive-time': '200ms', 'keepalive-timeout': '300ms' },
    }, { evil: [{ port: evil.port }], good: [{ port: good.port }] });
    const c = h2connect(`http://127.0.0.1:${lb.address.port}`);
    closers.push(() => void c.close());
    for (let i = 0; i < 4; i++) {
      const t = Date.now();
      const r = await h2req(c, { ':method': 'GET', ':path': '/evil' });
      assert.equal(r.head[':status'], 502);
      assert.match(r.body.toString(), /did not answer a PING within 300 ms/);
      assert.ok(Date.now() - t < 5000, `answered after ${Date.now() - t} ms`);
      const ok = await h2req(c, { ':method': 'GET', ':path': '/' });
      assert.equal(ok.head[':status'], 200);
    }
    assert.ok(evil.connections() >= 2, 'a new session after each dead one');
  });

  it('a gRPC health check going critical removes the instance from the balancer', async () => {
    const g1 = await grpcBackend('hc1');
    const g2 = await grpcBackend('hc2');
    for (const g of [g1, g2]) {
      const r = await http(agent.url, 'PUT', '/v1/agent/service/register', {
        Name: 'echo-hc', ID: `echo-hc-${g.name}`, Address: '127.0.0.1', Port: g.port, Tags: ['urlprefix-/test.Echo proto=grpc'],
        Check: { GRPC: `127.0.0.1:${g.port}`, Interval: '1s', Status: 'passing' },
      });
      assert.equal(r.status, 200, r.text);
    }
    const lb = await startTestLb(agent.url, {});
    closers.push(() => lb.close());
    await waitUpstreams(lb, 'echo-hc', [g1.port, g2.port], 10_000);
    g2.health.set('', NOT_SERVING);
    await waitUpstreams(lb, 'echo-hc', [g1.port], 15_000);
    const checks = (await http(agent.url, 'GET', '/v1/health/checks/echo-hc')).json as { ServiceID: string; Status: string; Output: string; Type: string }[];
    const bad = checks.find((x) => x.ServiceID === 'echo-hc-hc2');
    assert.equal(bad?.Status, 'critical');
    assert.equal(bad?.Type, 'grpc');
    assert.equal(bad?.Output, `gRPC 127.0.0.1:${g2.port} serving status: NOT_SERVING`);
    const c: EchoClient = echoClient(`127.0.0.1:${lb.address.port}`);
    closers.push(() => c.close());
    for (let i = 0; i < 5; i++) assert.equal((await unary(c, {})).answer.from, 'hc1');
  });

  it('config: protocol and tls-skip-verify on routes, proto= tags; bad values are named', async () => {
    const { resolveLbConfig, lbConfigSchema } = await import('../../src/config/lb.js');
    const { parseUrlprefixTag } = await import('../../src/routing/tag-routes.js');
    const cfg = resolveLbConfig(lbConfigSchema.parse({ routes: [{ path: '/pkg.Svc', service: 'svc', protocol: 'grpcs', 'tls-skip-verify': true }] }), {});
    assert.equal(cfg.routes[0]?.protocol, 'grpcs');
    assert.equal(cfg.routes[0]?.tlsSkipVerify, true);
    assert.equal(lbConfigSchema.safeParse({ routes: [{ service: 's', protocol: 'spdy' }] }).success, false);
    const t = parseUrlprefixTag('svc', 'urlprefix-/pkg.Service proto=grpc', { balance: 'round_robin' });
    assert.ok(t && !('error' in t) && t.protocol === 'grpc');
    const bad = parseUrlprefixTag('svc', 'urlprefix-/x proto=spdy', { balance: 'round_robin' });
    assert.match((bad as { error: string }).error, /unknown proto=spdy \(one of http, https, h2c, h2, grpc, grpcs\)/);
    const https = parseUrlprefixTag('svc', 'urlprefix-/x proto=https tlsskipverify=true', { balance: 'round_robin' });
    assert.ok(https && !('error' in https) && https.protocol === 'https' && https.tlsSkipVerify === true);
    assert.ok(createHttpServer, 'node:http loaded');
  });
});
