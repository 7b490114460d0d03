// proxy-protocol.trusted on the balancer (src/proxy/proxy-protocol.ts, wired in src/cli/wiring/lb-listeners.ts):
// HAProxy (Debian's haproxy, mode tcp, `send-proxy` and `send-proxy-v2`) and curl (`--haproxy-protocol`) stand in
// front of the balancer, on both data planes. The instance must see the client HAProxy carried, not HAProxy's own
// address, over HTTP/1.1, h2c, TLS and TCP routes; a trusted sender without a header is closed; a header from an
// untrusted address is not believed (a bad request); LOCAL and UNKNOWN speak for the sender itself. And the other
// way: TCP routes with `send-proxy` write the header to HAProxy listening with `accept-proxy`, which reports the
// client it read.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { lbMetric, registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { freePort } from '../helpers/process.js';
import { selfSigned } from '../helpers/tls.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => spawnSync(p, ['-v'], { stdio: 'ignore' }).status === 0);
if (HAPROXY === undefined && process.env['CI'] === 'true') throw new Error('haproxy is required under CI=true (apt-get install haproxy)');

const PLANES = ['fast', 'node'] as const;
const execFileAsync = promisify(execFile);

/** What the instance saw of one request: the forwarded-for chain it got. */
function echoClient(req: IncomingMessage, res: ServerResponse): void {
  const body = JSON.stringify({ xff: req.headers['x-forwarded-for'] ?? null });
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

function get(port: number, from: string, opts: { tls?: boolean } = {}): Promise<{ status: number; xff: string | null }> {
  return new Promise((resolve, reject) => {
    const req = (opts.tls ? httpsRequest : httpRequest)({
      host: '127.0.0.1', port, path: '/', localAddress: from, agent: false, rejectUnauthorized: false, headers: { Connection: 'close' },
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, xff: res.statusCode === 200 ? (JSON.parse(body) as { xff: string | null }).xff : body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function getH2c(port: number, from: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`http://127.0.0.1:${port}`, { createConnection: () => connect({ host: '127.0.0.1', port, localAddress: from }) });
    session.on('error', reject);
    const req = session.request({ ':path': '/' });
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      session.close();
      resolve((JSON.parse(body) as { xff: string | null }).xff);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Raw bytes from `from`; resolves with everything the balancer sent until it closed (or `waitMs` passed). */
function raw(port: number, from: string, chunks: (Buffer | string)[], waitMs = 3000, gapMs = 0): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: from });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ got, closed: false });
    }, waitMs);
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ got, closed: true });
    });
    s.once('connect', () => {
      void (async () => {
        for (const c of chunks) {
          s.write(c);
          if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        }
      })().catch(reject);
    });
  });
}

const jsonXff = (got: string): string | null => {
  const body = got.slice(got.indexOf('\r\n\r\n') + 4);
  return (JSON.parse(body) as { xff: string | null }).xff;
};

describe('PROXY protocol from trusted senders', { skip: HAPROXY === undefined && 'haproxy not installed (apt-get install haproxy)' }, () => {
  let agent: TestAgent;
  let backend: Backend;
  let tcpEcho: NetServer;
  const lbs = new Map<string, TestLb>();
  let tcpLb: TestLb;
  let haproxy: ChildProcess | undefined;
  let log = '';
  const dir = tempDir('sy-lb-proxyproto-');
  /** HAProxy's frontends: per plane, `v1` and `v2` (plain listener), `tls` (TLS listener, v2); `tcp` (TCP route, v1). */
  const front: Record<string, number> = {};
  /** HAProxy's accept-proxy frontends, the instances of the send-proxy TCP routes. */
  const accepting: Record<string, number> = {};
  const sockets: Socket[] = [];

  before(async () => {
    agent = await startTestAgent();
    backend = await startBackend('pp');
    backend.handler = echoClient;
    await registerBackend(agent.url, 'pp', backend);
    tcpEcho = createNetServer((c) => c.on('data', (d) => c.write(d)));
    await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', r));
    await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'pp-tcp', ID: 'pp-tcp', Address: '127.0.0.1', Port: (tcpEcho.address() as AddressInfo).port }) });
    const cert = selfSigned(dir, 'lb', ['localhost', '127.0.0.1']);
    for (const plane of PLANES) {
      const lb = await startTestLb(agent.url, {
        service: 'pp', 'data-plane': plane, 'proxy-protocol': { trusted: ['127.0.0.1'] },
        tls: { listen: '127.0.0.1:0', certs: [cert] }, timeouts: { 'client-header': '600ms' },
      });
      await waitUpstreams(lb, 'pp', [backend.port]);
      lbs.set(plane, lb);
    }
    // HAProxy receiving: an accept-proxy frontend per version answers with the client it was told of.
    for (const v of ['v1', 'v2']) {
      accepting[v] = await freePort();
      await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: `hap-${v}`, ID: `hap-${v}`, Address: '127.0.0.1', Port: accepting[v] }) });
    }
    // One connection per client: a second from the same client is refused, whoever carries it.
    tcpLb = await startTestLb(agent.url, {
      service: 'pp', 'proxy-protocol': { trusted: ['127.0.0.1'] }, limits: { 'max-conns-per-client': 1 },
      tcp: [{ listen: '127.0.0.1:0', service: 'pp-tcp' }, { listen: '127.0.0.1:0', service: 'hap-v1', 'send-proxy': 'v1' }, { listen: '127.0.0.1:0', service: 'hap-v2', 'send-proxy': 'v2' }],
    });
    await waitUpstreams(tcpLb, 'pp-tcp', [(tcpEcho.address() as AddressInfo).port]);
    await waitUpstreams(tcpLb, 'hap-v2', [accepting['v2'] as number]);

    const lines = ['global', '  maxconn 200', 'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 10s', '  timeout server 10s'];
    const add = (name: string, target: number, send: string): Promise<void> => freePort().then((p) => {
      front[name] = p;
      lines.push(`listen ${name}`, `  bind 127.0.0.1:${p}`, `  server lb 127.0.0.1:${target} ${send}`);
    });
    for (const [plane, lb] of lbs) {
      await add(`${plane}-v1`, lb.address.port, 'send-proxy');
      await add(`${plane}-v2`, lb.address.port, 'send-proxy-v2');
      await add(`${plane}-tls`, lb.tlsAddress?.port ?? 0, 'send-proxy-v2');
    }
    await add('tcp', tcpLb.tcpAddresses[0]?.port ?? 0, 'send-proxy');
    for (const v of ['v1', 'v2']) {
      lines.push(`frontend accept-${v}`, '  mode http', `  bind 127.0.0.1:${accepting[v]} accept-proxy`,
        '  http-request return status 200 content-type text/plain lf-string "%[src] %[src_port]"');
    }
    writeFileSync(join(dir, 'haproxy.cfg'), `${lines.join('\n')}\n`);
    haproxy = spawn(HAPROXY as string, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    haproxy.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    await waitFor(() => new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: front['tcp'] as number }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    }), () => `haproxy up (${log})`, 15_000, 100);
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const gone = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGKILL');
      await gone;
    }
    for (const s of sockets) s.destroy();
    for (const lb of lbs.values()) await lb.close();
    await tcpLb?.close();
    await backend?.close();
    tcpEcho?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const plane of PLANES) {
    it(`${plane} plane: through HAProxy (v1 and v2, plain, h2c and TLS) the instance sees the client HAProxy carried`, async () => {
      assert.deepEqual(await get(front[`${plane}-v1`] as number, '127.0.0.5'), { status: 200, xff: '127.0.0.5' });
      assert.deepEqual(await get(front[`${plane}-v2`] as number, '127.0.0.6'), { status: 200, xff: '127.0.0.6' });
      assert.deepEqual(await get(front[`${plane}-tls`] as number, '127.0.0.7', { tls: true }), { status: 200, xff: '127.0.0.7' });
      assert.equal(await getH2c(front[`${plane}-v2`] as number, '127.0.0.8'), '127.0.0.8');
    });

    it(`${plane} plane: curl --haproxy-protocol, a header split byte by byte, and one sent with the request in one write`, async (t) => {
      const lb = lbs.get(plane) as TestLb;
      // Not spawnSync: the balancer answering curl runs in this process.
      const curl = await execFileAsync('curl', ['-sS', '--max-time', '10', '--haproxy-protocol', '--interface', '127.0.0.1', `http://127.0.0.1:${lb.address.port}/`]).catch((err: NodeJS.ErrnoException) => err);
      if (curl instanceof Error) {
        if (curl.code !== 'ENOENT' || process.env.CI === 'true') throw curl;
        t.diagnostic('curl is not installed: that part was skipped');
      } else assert.equal((JSON.parse(curl.stdout) as { xff: string }).xff, '127.0.0.1', curl.stderr);
      const req = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const split = await raw(lb.address.port, '127.0.0.1', [...'PROXY TCP4 198.51.100.20 10.0.0.1 5000 80\r\n'].concat(req), 5000, 2);
      assert.equal(jsonXff(split.got), '198.51.100.20', split.got);
      const one = await raw(lb.address.port, '127.0.0.1', [`PROXY TCP6 2001:db8::7 ::1 5000 80\r\n${req}`]);
      assert.equal(jsonXff(one.got), '2001:db8::7', one.got);
      // The sender's own health checks (UNKNOWN, v2 LOCAL) speak for the sender.
      const unknown = await raw(lb.address.port, '127.0.0.1', [`PROXY UNKNOWN\r\n${req}`]);
      assert.equal(jsonXff(unknown.got), '127.0.0.1', unknown.got);
      const local = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0x00, 0x00]);
      const viaLocal = await raw(lb.address.port, '127.0.0.1', [Buffer.concat([local, Buffer.from(req)])]);
      assert.equal(jsonXff(viaLocal.got), '127.0.0.1', viaLocal.got);
    });

    it(`${plane} plane: a trusted sender without a header, with a broken one or too slow is closed unanswered; nobody else is believed`, async () => {
      const lb = lbs.get(plane) as TestLb;
      const hits = backend.hits;
      const before = await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total');
      const req = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      assert.deepEqual(await raw(lb.address.port, '127.0.0.1', [req]), { got: '', closed: true });
      assert.deepEqual(await raw(lb.address.port, '127.0.0.1', [`PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n${req}`]), { got: '', closed: true });
      const t0 = Date.now();
      assert.deepEqual(await raw(lb.address.port, '127.0.0.1', ['PROXY TCP4 1.2.'], 5000), { got: '', closed: true });
      assert.ok(Date.now() - t0 >= 500, 'closed by timeouts.client-header, not before');
      // TLS: no header before the ClientHello.
      assert.equal((await raw(lb.tlsAddress?.port ?? 0, '127.0.0.1', [Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])])).got, '');
      assert.equal(await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total', { listener: 'http', reason: 'missing' }) >= 1, true);
      assert.equal(await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total', { listener: 'http', reason: 'malformed' }) >= 1, true);
      assert.equal(await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total', { listener: 'http', reason: 'timeout' }) >= 1, true);
      assert.equal(await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total', { listener: 'tls', reason: 'missing' }) >= 1, true);
      assert.equal(await lbMetric(lb, 'switchyard_lb_proxy_protocol_refused_total') - before, 4);
      // From an address not in the list, a PROXY header is just bytes: not HTTP, so a 400, and the forged client goes nowhere.
      const forged = await raw(lb.address.port, '127.0.0.2', [`PROXY TCP4 10.9.9.9 10.0.0.1 5000 80\r\n${req}`]);
      assert.match(forged.got, /^HTTP\/1\.1 400 /, forged.got);
      assert.equal(backend.hits, hits, 'no refused or forged connection reached the instance');
      // And a request from it without a header is served as from itself.
      assert.deepEqual(await get(lb.address.port, '127.0.0.2'), { status: 200, xff: '127.0.0.2' });
      // A trusted sender's connection reset halfway through its header (an error, not an end) is
      // dropped, and the balancer goes on serving.
      for (const port of [lb.address.port, lb.tlsAddress?.port ?? 0]) {
        await new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' }, () => {
            s.write('PROXY TCP4 1.2.');
            setTimeout(() => {
              s.resetAndDestroy();
              resolve();
            }, 50);
          });
          s.on('error', () => undefined);
        });
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await get(lb.address.port, '127.0.0.2'), { status: 200, xff: '127.0.0.2' });
    });
  }

  it('TCP routes: the per-client limit counts the client HAProxy carried, not HAProxy', async () => {
    const open = (from: string): Promise<{ socket: Socket; echo: Promise<string> }> => new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: front['tcp'] as number, localAddress: from });
      sockets.push(s);
      s.on('error', reject);
      s.once('connect', () => {
        const echo = new Promise<string>((r) => {
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (got.endsWith('\n')) r(got);
          });
          s.on('close', () => r(got));
        });
        s.write(`hello from ${from}\n`);
        resolve({ socket: s, echo });
      });
    });
    const a = await open('127.0.0.5');
    assert.equal(await a.echo, 'hello from 127.0.0.5\n');
    // A second client through the same HAProxy connection source is its own client.
    const b = await open('127.0.0.6');
    assert.equal(await b.echo, 'hello from 127.0.0.6\n');
    // The first client again: over its limit of one, closed without an echo.
    const c = await open('127.0.0.5');
    assert.equal(await c.echo, '');
    assert.equal(await lbMetric(tcpLb, 'switchyard_lb_client_conns_refused_total', { listener: 'tcp' }), 1);
  });

  it('TCP routes with send-proxy v1 and v2: HAProxy (accept-proxy) reads the client the balancer saw', async () => {
    for (const [i, v] of ['v1', 'v2'].entries()) {
      const from = `127.0.0.${20 + i}`;
      const got = await raw(tcpLb.tcpAddresses[1 + i]?.port ?? 0, from, ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      const body = got.got.slice(got.got.indexOf('\r\n\r\n') + 4);
      const [src, port] = body.split(' ');
      assert.equal(src, from, `${v}: ${got.got}`);
      assert.ok(Number(port) > 0, body);
    }
  });
});
