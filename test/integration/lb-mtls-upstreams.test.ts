// Mutual TLS to the instances (route keys tls-cert and tls-key, nginx's proxy_ssl_certificate): an instance that
// asks for a client certificate gets the route's, over HTTP/1.1 (both planes) and HTTP/2; a route without one is
// refused by the instance and answered 502; the files are read and checked (key against certificate) when the
// routes load, and a renewed certificate is a new flavour. Real https and http2 servers, real openssl certificates.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer, connect as h2connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { request } from 'undici';
import { startTestAgent, tempDir, http } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { TestLb } from '../helpers/lb.js';
import { makeCa, signedBy } from '../helpers/tls.js';
import { stop, switchyard } from '../helpers/process.js';
import { UpstreamTlsFlavours } from '../../src/proxy/upstream-tls.js';
import type { RouteSpec } from '../../src/config/route-spec.js';

interface MtlsBackend {
  readonly port: number;
  /** The subject CN of each request's client certificate. */
  readonly clients: string[];
  close(): Promise<void>;
}

/** The CN a TLS socket's peer presented, or '' for none. */
const peerCn = (s: TLSSocket): string => {
  const subject = s.getPeerCertificate().subject as Record<string, string> | undefined;
  return subject?.CN ?? '';
};

/** An instance that asks every client for a certificate signed by `clientCa` and refuses the handshake without one. */
async function mtlsBackend(kind: 'https' | 'h2', pair: { cert: string; key: string }, clientCa: string): Promise<MtlsBackend> {
  const opts = { cert: readFileSync(pair.cert), key: readFileSync(pair.key), ca: readFileSync(clientCa), requestCert: true, rejectUnauthorized: true };
  const clients: string[] = [];
  const server = kind === 'https' ? createHttpsServer(opts) : createSecureServer({ ...opts, allowHTTP1: false });
  server.on('request', (req: { socket: TLSSocket; method?: string }, res: { writeHead(s: number, h: Record<string, string>): { end(b: string): void } }) => {
    clients.push(peerCn(req.socket));
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${kind}:${req.method}:${peerCn(req.socket)}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port, clients,
    close: () => new Promise<void>((r) => {
      if ('closeAllConnections' in server) server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await request(url);
  return { status: r.statusCode, body: await r.body.text() };
}

describe('lb: mutual TLS to the instances', () => {
  const dir = tempDir('sy-mtls-up-');
  let agent: TestAgent;
  let ca: { cert: string; key: string };
  let client: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  let h1: MtlsBackend;
  let h2: MtlsBackend;
  const lbs: TestLb[] = [];

  before(async () => {
    ca = makeCa(dir, 'ca');
    client = signedBy(ca, dir, 'lb-client', ['lb-client']);
    // Signed by a CA the instances do not trust.
    stranger = signedBy(makeCa(dir, 'other-ca'), dir, 'stranger', ['stranger']);
    h1 = await mtlsBackend('https', signedBy(ca, dir, 'h1', ['127.0.0.1']), ca.cert);
    h2 = await mtlsBackend('h2', signedBy(ca, dir, 'h2', ['127.0.0.1']), ca.cert);
    agent = await startTestAgent();
    for (const [name, b] of [['pay', h1], ['pay2', h2]] as const) {
      assert.equal((await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: name, ID: `${name}-1`, Address: '127.0.0.1', Port: b.port })).status, 200);
    }
  });
  after(async () => {
    for (const lb of lbs) await lb.close();
    await agent.stop();
    await Promise.all([h1.close(), h2.close()]);
  });

  const routes = (): Record<string, unknown>[] => [
    { path: '/m', service: 'pay', protocol: 'https', 'tls-ca': ca.cert, 'tls-cert': client.cert, 'tls-key': client.key },
    { path: '/none', service: 'pay', protocol: 'https', 'tls-ca': ca.cert },
    { path: '/stranger', service: 'pay', protocol: 'https', 'tls-ca': ca.cert, 'tls-cert': stranger.cert, 'tls-key': stranger.key },
    { path: '/h2', service: 'pay2', protocol: 'h2', 'tls-ca': ca.cert, 'tls-cert': client.cert, 'tls-key': client.key },
    { path: '/h2none', service: 'pay2', protocol: 'h2', 'tls-ca': ca.cert },
  ];

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: the route's certificate is shown; none, or an untrusted one, is a 502`, async () => {
      const lb = await startTestLb(agent.url, { 'data-plane': plane, routes: routes() as never });
      lbs.push(lb);
      await waitUpstreams(lb, 'pay', [h1.port]);
      await waitUpstreams(lb, 'pay2', [h2.port]);
      h1.clients.length = 0;
      for (let i = 0; i < 3; i++) assert.deepEqual(await get(`${lb.url}/m/x?i=${i}`), { status: 200, body: 'https:GET:lb-client' });
      assert.deepEqual(h1.clients, ['lb-client', 'lb-client', 'lb-client']);

      // The instance refuses a handshake without a certificate, or with one it does not trust: 502 naming TLS.
      for (const path of ['/none/x', '/stranger/x']) {
        const r = await get(`${lb.url}${path}`);
        assert.equal(r.status, 502, `${path}: ${r.body}`);
        assert.match(r.body, /^switchyard: pay instance 127\.0\.0\.1:\d+ failed: /, path);
      }
      assert.equal(h1.clients.length, 3, 'no request without the certificate reached the instance');
      // Refused connections are closed, not kept: 40 more refusals leave no descriptors behind.
      const fds = (): number => readdirSync('/proc/self/fd').length;
      const before = fds();
      for (let i = 0; i < 20; i++) for (const path of ['/none/x', '/stranger/x']) assert.equal((await get(`${lb.url}${path}`)).status, 502);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(fds() - before < 10, `40 refused requests left ${fds() - before} more open descriptors`);

      // HTTP/2 clients (h2c prior knowledge): to the HTTP/1.1 mTLS instance, and to HTTP/2 instances through the h2 pool.
      const s = h2connect(lb.url);
      const h2get = (path: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
        const st = s.request({ ':path': path });
        let status = 0;
        let b = '';
        st.on('response', (h) => (status = Number(h[':status'])));
        st.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve({ status, body: b })).on('error', reject);
        st.end();
      });
      try {
        assert.deepEqual(await h2get('/m/from-h2'), { status: 200, body: 'https:GET:lb-client' });
        h2.clients.length = 0;
        assert.deepEqual(await h2get('/h2/x'), { status: 200, body: 'h2:GET:lb-client' });
        const before2 = fds();
        for (let i = 0; i < 20; i++) assert.equal((await h2get('/h2none/x')).status, 502);
        await new Promise((r) => setTimeout(r, 200));
        assert.ok(fds() - before2 < 10, `20 refused HTTP/2 sessions left ${fds() - before2} more open descriptors`);
        assert.deepEqual(h2.clients, ['lb-client']);
      } finally {
        s.close();
      }
      // The session the instance refused must not hold up the shutdown (Node never closed it by itself).
      const t0 = Date.now();
      await lbs.pop()?.close();
      assert.ok(Date.now() - t0 < 5000, `closing took ${Date.now() - t0} ms`);
    });
  }

  it('certificate and key are checked when the routes load; a renewed one is a new flavour; bad ones are named', async () => {
    const spec = (cert: string, key: string): RouteSpec => ({
      origin: 'config:routes[2]', pathPrefix: '/', headers: [], service: 'pay', tags: [], balance: 'round_robin', protocol: 'https',
      tlsClientCertificate: { certFile: cert, keyFile: key },
    });
    const flavours = new UpstreamTlsFlavours([spec(client.cert, client.key)]);
    const t = flavours.for(spec(client.cert, client.key));
    assert.match(t.client?.cert ?? '', /^-----BEGIN CERTIFICATE-----/);
    // A key that is not the certificate's: named, with the certificate's subject.
    assert.throws(() => new UpstreamTlsFlavours([spec(client.cert, stranger.key)]),
      /^SwitchyardError: routes\[2\]\.tls-key: .*stranger\.key is not the key of .*lb-client\.crt's certificate \(CN=lb-client\)/);
    assert.throws(() => new UpstreamTlsFlavours([spec(join(dir, 'missing.crt'), client.key)]), /routes\[2\]\.tls-cert: cannot read .*missing\.crt: ENOENT/);
    assert.throws(() => new UpstreamTlsFlavours([spec(client.key, client.key)]), /routes\[2\]\.tls-cert: .*holds no PEM certificate/);
    const garbage = join(dir, 'garbage.key');
    writeFileSync(garbage, 'not a key\n');
    assert.throws(() => new UpstreamTlsFlavours([spec(client.cert, garbage)]), /routes\[2\]\.tls-key: .*garbage\.key holds no usable private key/);
    const encrypted = join(dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', client.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    assert.throws(() => new UpstreamTlsFlavours([spec(client.cert, encrypted)]), /routes\[2\]\.tls-key: .*encrypted\.key holds no usable private key: it is encrypted/);
    // A failed load leaves the flavours as they were.
    assert.throws(() => flavours.load([spec(client.cert, garbage)]));
    assert.equal(flavours.for(spec(client.cert, client.key)).key, t.key);

    // Renewed on disk (same paths, new pair): the reload reads it, and its connections are not the old ones'.
    const cert = join(dir, 'rot.crt');
    const key = join(dir, 'rot.key');
    writeFileSync(cert, readFileSync(client.cert));
    writeFileSync(key, readFileSync(client.key));
    flavours.load([spec(cert, key)]);
    const before1 = flavours.for(spec(cert, key)).key;
    const renewed = signedBy(ca, dir, 'lb-client-2', ['lb-client']);
    writeFileSync(cert, readFileSync(renewed.cert));
    writeFileSync(key, readFileSync(renewed.key));
    flavours.load([spec(cert, key)]);
    assert.notEqual(flavours.for(spec(cert, key)).key, before1);

    // The command line: a mismatched pair stops the start (exit 2), and half a pair is a schema error.
    const agentUrl = agent.url;
    const cfgFile = join(dir, 'lb.yaml');
    const start = async (route: string): Promise<string> => {
      writeFileSync(cfgFile, `listen: 127.0.0.1:0\nregistry: ${agentUrl}\nroutes:\n  - { path: /, service: pay, protocol: https, ${route} }\n`);
      const p = switchyard(['lb', '--config', cfgFile]);
      const exit = await p.exited;
      if (exit.code === null) await stop(p);
      assert.equal(exit.code, 2, p.stderr());
      return p.stderr();
    };
    assert.match(await start(`tls-cert: ${client.cert}, tls-key: ${stranger.key}`), /routes\[0\]\.tls-key: .* is not the key of/);
    assert.match(await start(`tls-cert: ${client.cert}`), /tls-cert and tls-key go together/);
  });
});
