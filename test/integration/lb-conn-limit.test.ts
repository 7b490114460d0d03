// limits.max-conns-per-client on the balancer (src/core/conn-limit.ts, wired in src/cli/wiring/lb-listeners.ts):
// one client address holds at most N connections over the plain, TLS and TCP listeners together; the one over
// it is refused before anything reads it (429 on the plain listener, closed on TLS and TCP), and reaches no
// instance; other addresses and exempt ones are not affected; a freed slot is taken again; an IPv4 client counts
// once whether a listener sees it as a.b.c.d or ::ffff:a.b.c.d.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startTestAgent, tempDir } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { lbMetric, registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { selfSigned } from '../helpers/tls.js';

const TOO_MANY_TEXT = 'switchyard: this client address already holds limits.max-conns-per-client connections\n';
const TOO_MANY = `HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${TOO_MANY_TEXT.length}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${TOO_MANY_TEXT}`;

interface Conn {
  readonly socket: Socket;
  got(): string;
  readonly closed: Promise<void>;
}

/** A plain connection from `from` that sends one keep-alive request and keeps what comes back. */
function plain(port: number, from: string, path = '/'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.once('error', reject);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      resolve({ socket, got: () => got, closed });
    });
  });
}

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('limits.max-conns-per-client on the balancer', () => {
  let agent: TestAgent;
  let backend: Backend;
  let tcpEcho: NetServer;
  const lbs: TestLb[] = [];
  const sockets: Socket[] = [];
  before(async () => {
    agent = await startTestAgent();
    backend = await startBackend('limited');
    await registerBackend(agent.url, 'limited', backend);
    tcpEcho = createNetServer((c) => c.on('data', (d) => c.write(d)));
    await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', r));
    const tcpPort = (tcpEcho.address() as AddressInfo).port;
    await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'limited-tcp', ID: 'limited-tcp', Address: '127.0.0.1', Port: tcpPort }) });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const lb of lbs) await lb.close();
    await backend.close();
    tcpEcho.close();
    await agent.stop();
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: the connection over the limit gets the 429 and reaches no instance; TLS and TCP share the count; other and exempt addresses are free`, async () => {
      const dir = tempDir('sy-lb-limit-');
      const tls = selfSigned(dir, 'lb', ['localhost', '127.0.0.1']);
      const lb = await startTestLb(agent.url, {
        // The plain listener sees IPv4 clients as ::ffff:a.b.c.d (as a dual-stack listener does), TLS and TCP as a.b.c.d: one count.
        listen: '[::ffff:127.0.0.1]:0', service: 'limited', 'data-plane': plane,
        limits: { 'max-conns-per-client': 3, 'max-conns-exempt': ['127.0.0.2'] },
        tls: { listen: '127.0.0.1:0', certs: [tls] },
        tcp: [{ listen: '127.0.0.1:0', service: 'limited-tcp' }],
      });
      lbs.push(lb);
      await waitUpstreams(lb, 'limited', [backend.port]);
      const port = lb.address.port;
      const hitsBefore = backend.hits;

      const held: Conn[] = [];
      for (let i = 0; i < 3; i++) held.push(await plain(port, '127.0.0.1', `/held-${i}`));
      for (const c of held) sockets.push(c.socket);
      await until('three answers', () => held.every((c) => c.got().startsWith('HTTP/1.1 200')));
      assert.equal(backend.hits - hitsBefore, 3);

      const over = await plain(port, '127.0.0.1', '/over');
      await over.closed;
      assert.equal(over.got(), TOO_MANY, 'the exact refusal, then closed');
      // Another address has its own count; an exempt one has none.
      const other = await plain(port, '127.0.0.3', '/other');
      const exempt: Conn[] = [];
      for (let i = 0; i < 5; i++) exempt.push(await plain(port, '127.0.0.2', `/exempt-${i}`));
      sockets.push(other.socket, ...exempt.map((c) => c.socket));
      await until('other and exempt answers', () => [other, ...exempt].every((c) => c.got().startsWith('HTTP/1.1 200')));
      assert.equal(backend.hits - hitsBefore, 3 + 1 + 5, 'the refused request never reached the instance');

      // The TLS and TCP listeners count against the same limit: closed before a handshake or a byte.
      const tlsErr = await new Promise<string>((resolve) => {
        const s = tlsConnect({ port: lb.tlsAddress!.port, host: '127.0.0.1', rejectUnauthorized: false }, () => resolve('handshake'));
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.notEqual(tlsErr, 'handshake', 'no TLS handshake over the limit');
      const tcpPort = lb.tcpAddresses[0]!.port;
      const tcpGot = await new Promise<string>((resolve) => {
        const s = connect({ port: tcpPort, host: '127.0.0.1', localAddress: '127.0.0.1' }, () => s.write('ping'));
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('error', () => undefined);
        s.once('close', () => resolve(got));
      });
      assert.equal(tcpGot, '', 'the TCP route connection over the limit is closed unanswered');

      // A freed slot is taken again, by any listener.
      held[0]!.socket.destroy();
      await until('a freed slot', async () => {
        const c = await plain(port, '127.0.0.1', '/again');
        await until('an answer', () => c.got().length > 0);
        sockets.push(c.socket);
        return c.got().startsWith('HTTP/1.1 200');
      });
      assert.equal(await lbMetric(lb, 'switchyard_lb_client_conns_refused_total', { listener: 'http' }) >= 1, true);
      assert.equal(await lbMetric(lb, 'switchyard_lb_client_conns_refused_total', { listener: 'tls' }), 1);
      assert.equal(await lbMetric(lb, 'switchyard_lb_client_conns_refused_total', { listener: 'tcp' }), 1);
      for (const s of sockets.splice(0)) s.destroy();
    });
  }
});
