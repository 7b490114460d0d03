// HTTP/1.1 over TLS to the instances (protocol https, Fabio's proto=https, meta protocol=https): the certificate is
// verified by default (system roots, or the route's tls-ca), tls-server-name sets SNI and the name checked,
// tls-skip-verify turns the check off; a failed check is a 502 that says why and sends nothing to the instance.
// Connections are kept alive and resumed; both HTTP/1 planes and the HTTP/2 plane, real https servers, real openssl.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { request } from 'undici';
import { startTestAgent, tempDir, http, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { TestLb } from '../helpers/lb.js';
import { makeCa, selfSigned, signedBy } from '../helpers/tls.js';
import { stop, switchyard } from '../helpers/process.js';
import { UpstreamTlsFlavours } from '../../src/proxy/upstream-tls.js';

interface Seen {
  servername: string | false;
  reused: boolean;
  conn: number;
  path: string;
}

interface TlsBackend {
  readonly port: number;
  readonly seen: Seen[];
  handshakes: number;
  close(): Promise<void>;
}

/** An https server that records, per request, the SNI it was sent, whether the session was resumed, and which connection. */
async function tlsBackend(name: string, pair: { cert: string; key: string }): Promise<TlsBackend> {
  const server: HttpsServer = createHttpsServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) });
  const conns = new WeakMap<object, number>();
  let nextConn = 0;
  const b = { port: 0, seen: [] as Seen[], handshakes: 0, close: (): Promise<void> => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
  server.on('secureConnection', (s: TLSSocket) => {
    b.handshakes++;
    conns.set(s, ++nextConn);
  });
  server.on('request', (req, res) => {
    const s = req.socket as TLSSocket;
    b.seen.push({ servername: s.servername ?? false, reused: s.isSessionReused(), conn: conns.get(s) ?? 0, path: req.url ?? '' });
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
      const close = (req.url ?? '').includes('close=1');
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, ...(close ? { connection: 'close' } : {}) }).end(`${name}:${req.method}:${body}`);
    });
  });
  // A minimal WebSocket-style tunnel: 101, then every byte echoed back upper-cased.
  server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.port = (server.address() as AddressInfo).port;
  return b;
}

async function get(url: string, init: { method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  const r = await request(url, { method: (init.method ?? 'GET') as 'GET', ...(init.body !== undefined ? { body: init.body } : {}) });
  return { status: r.statusCode, body: await r.body.text() };
}

describe('lb: HTTP/1.1 over TLS to the instances', () => {
  const dir = tempDir('sy-https-up-');
  let agent: TestAgent;
  let ca: { cert: string; key: string };
  /** Signed by the CA for 127.0.0.1 and api.internal. */
  let both: TlsBackend;
  /** Signed by the CA for api.internal only (no IP SAN). */
  let named: TlsBackend;
  /** Self-signed. */
  let self: TlsBackend;
  const lbs: TestLb[] = [];

  before(async () => {
    ca = makeCa(dir, 'ca');
    both = await tlsBackend('both', signedBy(ca, dir, 'both', ['api.internal', '127.0.0.1']));
    named = await tlsBackend('named', signedBy(ca, dir, 'named', ['api.internal']));
    self = await tlsBackend('self', selfSigned(dir, 'self', ['localhost', '127.0.0.1']));
    agent = await startTestAgent();
    const reg = async (body: Record<string, unknown>): Promise<void> => assert.equal((await http(agent.url, 'PUT', '/v1/agent/service/register', body)).status, 200);
    await reg({ Name: 'secure', ID: 'secure-1', Address: '127.0.0.1', Port: both.port });
    await reg({ Name: 'named', ID: 'named-1', Address: '127.0.0.1', Port: named.port });
    await reg({ Name: 'self', ID: 'self-1', Address: '127.0.0.1', Port: self.port });
    await reg({ Name: 'tagged', ID: 'tagged-1', Address: '127.0.0.1', Port: self.port, Tags: ['urlprefix-/tagged proto=https tlsskipverify=true'] });
    await reg({ Name: 'meta', ID: 'meta-1', Address: '127.0.0.1', Port: both.port, Meta: { protocol: 'https' } });
  });
  after(async () => {
    for (const lb of lbs) await lb.close();
    await agent.stop();
    await Promise.all([both.close(), named.close(), self.close()]);
  });

  const routes = (): Record<string, unknown>[] => [
    { path: '/v', service: 'secure', protocol: 'https', 'tls-ca': ca.cert },
    { path: '/sys', service: 'secure', protocol: 'https' },
    { path: '/named', service: 'named', protocol: 'https', 'tls-ca': ca.cert, 'tls-server-name': 'API.internal' },
    { path: '/ipname', service: 'named', protocol: 'https', 'tls-ca': ca.cert },
    { path: '/skip', service: 'self', protocol: 'https', 'tls-skip-verify': true },
    { path: '/meta', service: 'meta', 'tls-ca': ca.cert },
  ];

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: verified, named, skipped and refused certificates; keep-alive and resumed sessions`, async () => {
      const lb = await startTestLb(agent.url, { 'data-plane': plane, routes: routes() as never });
      lbs.push(lb);
      await waitUpstreams(lb, 'secure', [both.port]);
      await waitUpstreams(lb, 'named', [named.port]);
      await waitUpstreams(lb, 'meta', [both.port]);
      await waitFor(async () => (await get(`${lb.url}/tagged/x`)).status === 200, 'the tag route to the self-signed instance');

      // Verified against the route's CA, checked for the IP (no SNI for an address); one connection kept alive.
      both.seen.length = 0;
      const shakes = both.handshakes;
      for (let i = 0; i < 10; i++) {
        const r = await get(`${lb.url}/v/a?i=${i}`, i % 2 === 0 ? {} : { method: 'POST', body: `body${i}` });
        assert.equal(r.status, 200);
        assert.equal(r.body, i % 2 === 0 ? 'both:GET:' : `both:POST:body${i}`);
      }
      assert.equal(both.seen.length, 10);
      assert.ok(both.seen.every((s) => s.servername === false), `no SNI for an IP: ${JSON.stringify(both.seen[0])}`);
      assert.equal(new Set(both.seen.map((s) => s.conn)).size, 1, 'ten requests on one kept-alive TLS connection');
      assert.equal(both.handshakes - shakes, 1);

      // A connection the instance closes after each answer: the next one resumes the session instead of a full handshake.
      both.seen.length = 0;
      for (let i = 0; i < 3; i++) assert.equal((await get(`${lb.url}/v/r?close=1&i=${i}`)).status, 200);
      assert.equal(new Set(both.seen.map((s) => s.conn)).size, 3, 'a new connection each time');
      assert.deepEqual(both.seen.slice(1).map((s) => s.reused), [true, true], 'resumed sessions');

      // The system's roots do not know our CA: a 502 that says why, and the instance sees nothing.
      both.seen.length = 0;
      const sys = await get(`${lb.url}/sys/x`, { method: 'POST', body: 'never' });
      assert.equal(sys.status, 502);
      assert.match(sys.body, /^switchyard: secure instance 127\.0\.0\.1:\d+ failed: TLS: .*\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)\n$/);
      assert.equal(both.seen.length, 0, 'nothing reached the instance');

      // tls-server-name: sent as SNI (lower case) and checked against the certificate's names.
      named.seen.length = 0;
      const n = await get(`${lb.url}/named/x`);
      assert.equal(n.status, 200, n.body);
      assert.equal(named.seen[0]?.servername, 'api.internal');
      // Without it the instance's address is checked, and this certificate names no IP.
      const ip = await get(`${lb.url}/ipname/x`);
      assert.equal(ip.status, 502);
      assert.match(ip.body, /TLS: .*127\.0\.0\.1.*\(ERR_TLS_CERT_ALTNAME_INVALID\)/);
      assert.equal(named.seen.length, 1);

      // tls-skip-verify accepts a self-signed certificate; a tag route's proto=https tlsskipverify=true too.
      assert.deepEqual(await get(`${lb.url}/skip/x`), { status: 200, body: 'self:GET:' });
      assert.deepEqual(await get(`${lb.url}/tagged/y`), { status: 200, body: 'self:GET:' });
      // No protocol on the route: the instance's meta protocol=https decides, the route's CA verifies.
      assert.deepEqual(await get(`${lb.url}/meta/x`), { status: 200, body: 'both:GET:' });

      // An HTTP/2 client (h2c prior knowledge) in front of an https instance.
      const s = h2connect(lb.url);
      try {
        const body = await new Promise<string>((resolve, reject) => {
          const st = s.request({ ':path': '/v/h2', ':method': 'POST' });
          let b = '';
          st.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve(b)).on('error', reject);
          st.end('from-h2');
        });
        assert.equal(body, 'both:POST:from-h2');
      } finally {
        s.close();
      }
    });
  }

  it('fast plane: an Upgrade tunnels through a TLS connection of its own', async () => {
    const lb = await startTestLb(agent.url, { routes: routes() as never });
    lbs.push(lb);
    await waitUpstreams(lb, 'secure', [both.port]);
    const sock = netConnect(lb.address.port, '127.0.0.1');
    let got = '';
    sock.setEncoding('utf8').on('data', (d: string) => (got += d));
    sock.write('GET /v/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    await waitFor(() => got.includes('\r\n\r\n'), () => `the 101 (got ${JSON.stringify(got)})`);
    assert.match(got, /^HTTP\/1\.1 101 /);
    sock.write('hello over tls');
    await waitFor(() => got.endsWith('HELLO OVER TLS'), () => `the echo (got ${JSON.stringify(got)})`);
    sock.destroy();
  });

  it('CA files: read and checked at start and on reload; a bad one is named and changes nothing', async () => {
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'not a certificate\n');
    const spec = (file: string): { origin: string; pathPrefix: string; headers: []; service: string; tags: []; balance: 'round_robin'; protocol: 'https'; tlsCaFile: string } => (
      { origin: 'config:routes[1]', pathPrefix: '/', headers: [], service: 'secure', tags: [], balance: 'round_robin', protocol: 'https', tlsCaFile: file });
    assert.throws(() => new UpstreamTlsFlavours([spec(join(dir, 'missing.pem'))]), /^SwitchyardError: routes\[1\]\.tls-ca: cannot read .*missing\.pem: ENOENT/);
    assert.throws(() => new UpstreamTlsFlavours([spec(empty)]), /routes\[1\]\.tls-ca: .*empty\.pem holds no PEM certificate/);
    const ok = new UpstreamTlsFlavours([spec(ca.cert)]);
    const k1 = ok.for(spec(ca.cert)).key;
    // A renewed CA file is read again by a reload: a new flavour, so old connections are not reused for it.
    const other = makeCa(dir, 'ca2');
    const renamed = join(dir, 'ca-renewed.pem');
    writeFileSync(renamed, readFileSync(ca.cert));
    ok.load([spec(renamed)]);
    const k2 = ok.for(spec(renamed)).key;
    assert.equal(k1, k2, 'the same CA is the same flavour');
    writeFileSync(renamed, readFileSync(other.cert));
    ok.load([spec(renamed)]);
    assert.notEqual(ok.for(spec(renamed)).key, k1);

    // On a running balancer: routes naming a bad CA file are refused and the table stays.
    const lb = await startTestLb(agent.url, { routes: routes() as never });
    lbs.push(lb);
    await waitUpstreams(lb, 'secure', [both.port]);
    const version = lb.snapshots.current?.version;
    const refused = lb.setRoutes([spec(empty)]);
    assert.match(refused ?? '', /routes\[1\]\.tls-ca: .*holds no PEM certificate/);
    assert.equal(lb.snapshots.current?.version, version);
    assert.equal((await get(`${lb.url}/v/still`)).status, 200);

    // The command line: a missing CA file stops the start (exit 2) and names the route and the file.
    const cfgFile = join(dir, 'lb.yaml');
    writeFileSync(cfgFile, `listen: 127.0.0.1:0\nregistry: ${agent.url}\nroutes:\n  - { path: /, service: secure, protocol: https }\n  - { path: /x, service: secure, protocol: https, tls-ca: ${join(dir, 'missing.pem')} }\n`);
    const p = switchyard(['lb', '--config', cfgFile]);
    const exit = await p.exited;
    assert.equal(exit.code, 2, p.stderr());
    assert.match(p.stderr(), /routes\[1\]\.tls-ca: cannot read .*missing\.pem/);
    // And the schema: a CA with verification off is a contradiction, named.
    writeFileSync(cfgFile, `listen: 127.0.0.1:0\nregistry: ${agent.url}\nroutes:\n  - { path: /, service: secure, protocol: https, tls-skip-verify: true, tls-ca: ${ca.cert} }\n`);
    const q = switchyard(['lb', '--config', cfgFile]);
    const exit2 = await q.exited;
    if (exit2.code === null) await stop(q);
    assert.equal(exit2.code, 2, q.stderr());
    assert.match(q.stderr(), /routes\.0\.tls-ca|routes\[0\]\.tls-ca/);
    assert.match(q.stderr(), /tls-skip-verify and tls-ca contradict/);
  });
});
