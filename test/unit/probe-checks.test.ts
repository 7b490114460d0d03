// The UDP, H2PING and TCP+TLS checks against real peers on 127.0.0.1: UDP services that answer or stay
// silent and a closed port (the kernel's ICMP answer), Node's own HTTP/2 servers (h2c and TLS with ALPN),
// an HTTP/1.1 server, a peer that never acknowledges a PING, and TLS listeners with good and bad certificates.
import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createSecureServer, createServer as createH2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { runH2PingCheck } from '../../src/health/h2ping-check.js';
import { runTcpCheck } from '../../src/health/tcp-check.js';
import { runUdpCheck } from '../../src/health/udp-check.js';
import { tempDir } from '../helpers/agent.js';
import { freePort } from '../helpers/process.js';
import { selfSigned } from '../helpers/tls.js';

interface Closable {
  close(cb?: () => void): unknown;
}

async function listen<S extends NetServer>(server: S): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function udpServer(answer: boolean): Promise<{ socket: UdpSocket; port: number; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m, from) => {
    received.push(m);
    if (answer) socket.send(Buffer.from('pong'), from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { socket, port: socket.address().port, received };
}

describe('UDP check', () => {
  const open: Closable[] = [];
  after(() => {
    for (const s of open) s.close();
  });

  it('a service that answers is passing at once, and it got one empty datagram', async () => {
    const u = await udpServer(true);
    open.push(u.socket);
    const t0 = Date.now();
    const r = await runUdpCheck({ address: `127.0.0.1:${u.port}`, timeoutMs: 5000 });
    assert.deepEqual(r, { status: 'passing', output: `UDP connect 127.0.0.1:${u.port}: Success` });
    assert.ok(Date.now() - t0 < 2000, 'an answer ends the wait');
    assert.deepEqual(u.received.map((b) => b.length), [0]);
  });

  it('a silent service is passing once the timeout passes, as in Consul (nothing refused the datagram)', async () => {
    const u = await udpServer(false);
    open.push(u.socket);
    const t0 = Date.now();
    const r = await runUdpCheck({ address: `127.0.0.1:${u.port}`, timeoutMs: 400 });
    assert.deepEqual(r, { status: 'passing', output: `UDP connect 127.0.0.1:${u.port}: Success` });
    assert.ok(Date.now() - t0 >= 350, 'it waited for the timeout');
    assert.equal(u.received.length, 1);
  });

  it('a closed port is critical, from the ICMP port unreachable, worded as Go words the read error', async () => {
    const port = await freePort();
    const r = await runUdpCheck({ address: `127.0.0.1:${port}`, timeoutMs: 3000 });
    assert.equal(r.status, 'critical');
    assert.match(r.output, new RegExp(`^read udp 127\\.0\\.0\\.1:\\d+->127\\.0\\.0\\.1:${port}: read: connection refused$`));
  });

  it('IPv6 literals work; malformed addresses and unknown names are critical with the reason', async (t) => {
    const s6 = createSocket('udp6');
    try {
      await new Promise<void>((res, rej) => {
        s6.once('error', rej);
        s6.bind(0, '::1', res);
      });
    } catch {
      s6.close();
      if (process.env.CI === 'true') throw new Error('::1 is not available');
      return t.skip('::1 is not available');
    }
    open.push(s6);
    s6.on('message', (_m, from) => s6.send('pong', from.port, from.address));
    assert.deepEqual(await runUdpCheck({ address: `[::1]:${s6.address().port}`, timeoutMs: 3000 }), { status: 'passing', output: `UDP connect [::1]:${s6.address().port}: Success` });
    assert.deepEqual(await runUdpCheck({ address: '127.0.0.1', timeoutMs: 1000 }), { status: 'critical', output: 'dial udp: address 127.0.0.1: missing port in address' });
    assert.deepEqual(await runUdpCheck({ address: 'no-such-host.invalid:53', timeoutMs: 3000 }), { status: 'critical', output: 'dial udp: lookup no-such-host.invalid: no such host' });
  });

  it('ends with a critical result when the caller aborts', async () => {
    const u = await udpServer(false);
    open.push(u.socket);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await runUdpCheck({ address: `127.0.0.1:${u.port}`, timeoutMs: 10_000 }, ac.signal);
    assert.deepEqual(r, { status: 'critical', output: `dial udp 127.0.0.1:${u.port}: operation was canceled` });
  });
});

describe('H2PING check and TCP+TLS check', () => {
  const open: Closable[] = [];
  const sockets: Socket[] = [];
  let dir = '';
  let cert: { cert: string; key: string };
  let h2cPort = 0;
  let h2tlsPort = 0;
  let httpsPort = 0;
  let http1Port = 0;
  let mutePort = 0;
  const pings: string[] = [];

  before(async () => {
    dir = tempDir('sy-probe-tls-');
    cert = selfSigned(dir, 'server', ['localhost', '127.0.0.1']);
    const tlsOpts = { key: readFileSync(cert.key), cert: readFileSync(cert.cert) };
    const h2c = createH2Server();
    h2c.on('session', (s) => s.on('ping', () => pings.push('h2c')));
    h2cPort = await listen(h2c as unknown as NetServer);
    open.push(h2c);
    const h2tls = createSecureServer(tlsOpts);
    h2tls.on('session', (s) => s.on('ping', () => pings.push('h2')));
    h2tlsPort = await listen(h2tls as unknown as NetServer);
    open.push(h2tls);
    // TLS, but HTTP/1.1 only: no h2 in ALPN.
    const https = createHttpsServer(tlsOpts, (_q, r) => r.end('ok'));
    httpsPort = await listen(https);
    open.push(https);
    const http1 = createHttpServer((_q, r) => r.end('ok'));
    http1Port = await listen(http1);
    open.push(http1);
    // Speaks just enough HTTP/2 to look alive (an empty SETTINGS frame), then never answers a PING.
    const mute = createNetServer((sock) => {
      sockets.push(sock);
      sock.on('error', () => undefined);
      sock.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    });
    mutePort = await listen(mute);
    open.push(mute);
  });
  after(() => {
    for (const s of sockets) s.destroy();
    for (const s of open) s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('H2PING over h2c: the PING reaches the server and is acknowledged', async () => {
    const before = pings.length;
    const r = await runH2PingCheck({ address: `127.0.0.1:${h2cPort}`, useTls: false, timeoutMs: 3000 });
    assert.deepEqual(r, { status: 'passing', output: 'HTTP2 ping was successful' });
    assert.deepEqual(pings.slice(before), ['h2c']);
  });

  it('H2PING over TLS: verified against its CA name, or with TLSSkipVerify; an unknown authority is critical', async () => {
    const skip = await runH2PingCheck({ address: `127.0.0.1:${h2tlsPort}`, useTls: true, tlsSkipVerify: true, timeoutMs: 3000 });
    assert.deepEqual(skip, { status: 'passing', output: 'HTTP2 ping was successful' });
    const verified = await runH2PingCheck({ address: `127.0.0.1:${h2tlsPort}`, useTls: true, timeoutMs: 3000 });
    assert.deepEqual(verified, { status: 'critical', output: `Failed to dial to 127.0.0.1:${h2tlsPort}: tls: failed to verify certificate: x509: certificate signed by unknown authority` });
  });

  it('H2PING: a TLS server without h2, a plain HTTP/1.1 server, a refused port and a peer that never answers the PING are critical', async () => {
    const noH2 = await runH2PingCheck({ address: `127.0.0.1:${httpsPort}`, useTls: true, tlsSkipVerify: true, timeoutMs: 3000 });
    assert.deepEqual(noH2, { status: 'critical', output: `Failed to dial to 127.0.0.1:${httpsPort}: remote error: tls: no application protocol` });
    const http1 = await runH2PingCheck({ address: `127.0.0.1:${http1Port}`, useTls: false, timeoutMs: 3000 });
    assert.deepEqual(http1, { status: 'critical', output: 'HTTP2 ping failed: the connection closed before the PING was acknowledged (not an HTTP/2 cleartext (h2c) server?)' });
    assert.deepEqual(await runH2PingCheck({ address: `127.0.0.1:${http1Port}`, useTls: true, timeoutMs: 3000 }),
      { status: 'critical', output: `Failed to dial to 127.0.0.1:${http1Port}: tls: first record does not look like a TLS handshake` });
    const port = await freePort();
    assert.deepEqual(await runH2PingCheck({ address: `127.0.0.1:${port}`, useTls: false, timeoutMs: 3000 }),
      { status: 'critical', output: `Failed to dial to 127.0.0.1:${port}: dial tcp 127.0.0.1:${port}: connect: connection refused` });
    const t0 = Date.now();
    assert.deepEqual(await runH2PingCheck({ address: `127.0.0.1:${mutePort}`, useTls: false, timeoutMs: 500 }),
      { status: 'critical', output: 'HTTP2 ping failed: context deadline exceeded' });
    assert.ok(Date.now() - t0 >= 450);
  });

  it('TCP+TLS: passing only once the handshake completes; a bad certificate or a plaintext peer is critical', async () => {
    assert.deepEqual(await runTcpCheck({ address: `127.0.0.1:${h2tlsPort}`, useTls: true, tlsSkipVerify: true, timeoutMs: 3000 }),
      { status: 'passing', output: `TCP+TLS connect 127.0.0.1:${h2tlsPort}: Success` });
    assert.deepEqual(await runTcpCheck({ address: `127.0.0.1:${httpsPort}`, useTls: true, timeoutMs: 3000 }),
      { status: 'critical', output: 'tls: failed to verify certificate: x509: certificate signed by unknown authority' });
    // TLSServerName is what goes out as SNI.
    const sni: string[] = [];
    const tlsServer = createTlsServer({ key: readFileSync(cert.key), cert: readFileSync(cert.cert) }, (s) => {
      sni.push((s as unknown as { servername: string }).servername);
      s.end();
    });
    const port = await listen(tlsServer);
    open.push(tlsServer);
    assert.equal((await runTcpCheck({ address: `127.0.0.1:${port}`, useTls: true, tlsSkipVerify: true, tlsServerName: 'svc.example', timeoutMs: 3000 })).status, 'passing');
    // The server's side of the handshake may finish after the client's.
    for (let i = 0; i < 100 && sni.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(sni, ['svc.example']);
    // A plain TCP listener is open for a TCP check but not for a TCP+TLS one.
    assert.equal((await runTcpCheck({ address: `127.0.0.1:${http1Port}`, timeoutMs: 3000 })).status, 'passing');
    assert.deepEqual(await runTcpCheck({ address: `127.0.0.1:${http1Port}`, useTls: true, timeoutMs: 1500 }),
      { status: 'critical', output: 'tls: first record does not look like a TLS handshake' });
  });

  it('a port name is one of Go\'s own service names, never a property every JavaScript object has', async () => {
    for (const name of ['constructor', '__proto__', 'nope']) {
      assert.deepEqual(await runTcpCheck({ address: `127.0.0.1:${name}`, timeoutMs: 1000 }), { status: 'critical', output: `dial tcp: lookup tcp/${name}: unknown port` });
    }
  });
});
