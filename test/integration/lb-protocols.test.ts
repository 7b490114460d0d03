// The balancer's other protocols and edges: TLS with SNI, TCP routes, WebSocket across table changes,
// client limits, and configuration errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { deregisterBackend, lbMetric, registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { switchyard } from '../helpers/process.js';
import { selfSigned } from '../helpers/tls.js';

function httpsGet(port: number, servername: string): Promise<{ status: number; body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername, headers: { Host: servername }, rejectUnauthorized: false, agent: false }, (res) => {
      const cert = (res.socket as unknown as { getPeerCertificate(): { subject: { CN: string } } }).getPeerCertificate();
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body, subject: cert.subject.CN });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('load balancer protocols', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  const lbs: TestLb[] = [];
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    for (const lb of lbs) await lb.close();
    for (const b of backends) await b.close();
    await agent.stop();
  });

  it('terminates TLS and picks the certificate by SNI', async () => {
    const dir = tempDir('sy-tls-');
    const a = selfSigned(dir, 'a', ['a.example.com']);
    const w = selfSigned(dir, 'w', ['*.shop.example.com']);
    const b = await startBackend('tls-backend');
    backends.push(b);
    let proto = '';
    b.handler = (req, res) => {
      proto = String(req.headers['x-forwarded-proto']);
      res.end('secure');
    };
    await registerBackend(agent.url, 'secure', b);
    const lb = await startTestLb(agent.url, { service: 'secure', tls: { listen: '127.0.0.1:0', certs: [a, w] } });
    lbs.push(lb);
    await waitUpstreams(lb, 'secure', [b.port]);
    const port = lb.tlsAddress!.port;
    const r1 = await httpsGet(port, 'a.example.com');
    assert.equal(r1.status, 200);
    assert.equal(r1.body, 'secure');
    assert.equal(r1.subject, 'a.example.com');
    assert.equal(proto, 'https');
    assert.equal((await httpsGet(port, 'x.shop.example.com')).subject, '*.shop.example.com');
    assert.equal((await httpsGet(port, 'unknown.test')).subject, 'a.example.com', 'the first certificate is the default');
  });

  it('forwards a TCP route to healthy instances and retries a refused connect', async () => {
    const echo = async (tag: string): Promise<NetServer> => {
      const s = createNetServer((c) => c.on('data', (d) => c.write(`${tag}:${d.toString()}`)));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return s;
    };
    const s1 = await echo('one');
    const s2 = await echo('two');
    const p1 = (s1.address() as AddressInfo).port;
    const p2 = (s2.address() as AddressInfo).port;
    for (const [id, port] of [['t1', p1], ['t2', p2]] as const) {
      await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'db', ID: id, Address: '127.0.0.1', Port: port }) });
    }
    const lb = await startTestLb(agent.url, { tcp: [{ listen: '127.0.0.1:0', service: 'db' }] });
    lbs.push(lb);
    await waitUpstreams(lb, 'db', [p1, p2]);
    const port = lb.tcpAddresses[0]!.port;
    const talk = (msg: string): Promise<string> => new Promise((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => c.write(msg));
      c.once('data', (d) => {
        resolve(d.toString());
        c.end();
      });
      c.once('error', reject);
    });
    const answers = [await talk('x'), await talk('y'), await talk('z'), await talk('w')];
    assert.deepEqual(answers.map((a) => a.split(':')[0]).sort(), ['one', 'one', 'two', 'two']);
    s1.close();
    for (let i = 0; i < 6; i++) assert.match(await talk('q'), /^two:q$/, 'a refused connect is retried on the other instance');
    s2.close();
  });

  it('keeps a WebSocket open across unrelated table changes and echoes through it', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    const wsPort = (wss.address() as AddressInfo).port;
    await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'ws', ID: 'ws-1', Address: '127.0.0.1', Port: wsPort }) });
    const other = await startBackend('other');
    backends.push(other);
    const lb = await startTestLb(agent.url, { service: 'ws' });
    lbs.push(lb);
    await waitUpstreams(lb, 'ws', [wsPort]);
    const ws = new WebSocket(`ws://127.0.0.1:${lb.address.port}/chat`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const next = (): Promise<string> => new Promise((r) => ws.once('message', (d) => r(d.toString())));
    ws.send('one');
    assert.equal(await next(), 'echo:one');
    // Unrelated churn: another service comes and goes, the table is swapped several times.
    for (let i = 0; i < 3; i++) {
      await registerBackend(agent.url, 'unrelated', other);
      await waitUpstreams(lb, 'unrelated', []).catch(() => undefined);
      await deregisterBackend(agent.url, 'unrelated', other);
    }
    await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: 'ws', ID: 'ws-2', Address: '127.0.0.1', Port: 1 }) });
    await waitUpstreams(lb, 'ws', [wsPort, 1]);
    assert.ok((lb.snapshots.current?.version ?? 0) >= 2);
    ws.send('two');
    assert.equal(await next(), 'echo:two');
    ws.close();
    wss.close();
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: closes a WebSocket tunnel and a TCP connection idle for timeouts.tunnel, keeps those moving either way`, async () => {
      // The WebSocket server echoes on /echo, pushes on /push (upstream → client only), swallows on /sink (client → upstream only).
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise<void>((r) => wss.once('listening', () => r()));
      const timers: NodeJS.Timeout[] = [];
      wss.on('connection', (ws, req) => {
        if (req.url === '/push') timers.push(setInterval(() => ws.send('tick'), 150));
        else if (req.url === '/echo') ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
      });
      const tcpEcho = createNetServer((c) => c.on('data', (d) => c.write(d)));
      await new Promise<void>((r) => tcpEcho.listen(0, '127.0.0.1', r));
      const wsPort = (wss.address() as AddressInfo).port;
      const tcpPort = (tcpEcho.address() as AddressInfo).port;
      const svc = `tun-${plane}`;
      await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: svc, ID: svc, Address: '127.0.0.1', Port: wsPort }) });
      await fetch(`${agent.url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify({ Name: `${svc}-tcp`, ID: `${svc}-tcp`, Address: '127.0.0.1', Port: tcpPort }) });
      const lb = await startTestLb(agent.url, { service: svc, 'data-plane': plane, timeouts: { tunnel: '800ms' }, tcp: [{ listen: '127.0.0.1:0', service: `${svc}-tcp` }] });
      lbs.push(lb);
      await waitUpstreams(lb, svc, [wsPort]);
      await waitUpstreams(lb, `${svc}-tcp`, [tcpPort]);

      type Watched = { closedAt: number; lastActivity: number; got: number };
      const openWs = async (path: string): Promise<{ ws: WebSocket; w: Watched }> => {
        const ws = new WebSocket(`ws://127.0.0.1:${lb.address.port}${path}`);
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        const w: Watched = { closedAt: 0, lastActivity: Date.now(), got: 0 };
        ws.on('message', () => {
          w.got++;
          w.lastActivity = Date.now();
        });
        ws.on('close', () => (w.closedAt = Date.now()));
        return { ws, w };
      };
      const idle = await openWs('/echo');
      const pushed = await openWs('/push');
      const sink = await openWs('/sink');
      const echo = await openWs('/echo');
      const sending = setInterval(() => {
        for (const x of [sink, echo]) {
          x.ws.send('x');
          if (x === sink) x.w.lastActivity = Date.now();
        }
      }, 150);
      const tcpIdle = { closedAt: 0, openedAt: 0 };
      const tcpBusy = { closedAt: 0, echoed: 0 };
      const tcpPortLb = lb.tcpAddresses[0]!.port;
      const c1 = connect(tcpPortLb, '127.0.0.1', () => (tcpIdle.openedAt = Date.now()));
      c1.on('close', () => (tcpIdle.closedAt = Date.now())).on('error', () => undefined);
      const c2 = connect(tcpPortLb, '127.0.0.1');
      c2.on('data', () => tcpBusy.echoed++).on('close', () => (tcpBusy.closedAt = Date.now())).on('error', () => undefined);
      const tcpSending = setInterval(() => c2.write('y'), 150);
      try {
        await new Promise((r) => setTimeout(r, 2500));
        assert.ok(idle.w.closedAt > 0, 'the idle WebSocket was closed');
        assert.ok(idle.w.closedAt - idle.w.lastActivity >= 700, `not before its idle time (${idle.w.closedAt - idle.w.lastActivity} ms)`);
        for (const [name, x] of [['pushed', pushed], ['sink', sink], ['echo', echo]] as const) {
          assert.equal(x.w.closedAt, 0, `the ${name} WebSocket is still open`);
        }
        assert.ok(pushed.w.got >= 10 && echo.w.got >= 10, 'and still carries messages');
        assert.ok(tcpIdle.closedAt > 0 && tcpIdle.closedAt - tcpIdle.openedAt >= 700, 'the idle TCP connection was closed, not before its idle time');
        assert.equal(tcpBusy.closedAt, 0, 'the busy TCP connection is still open');
        assert.ok(tcpBusy.echoed >= 10);
        assert.equal(await lbMetric(lb, 'switchyard_lb_idle_tunnels_closed_total', { kind: 'upgrade', route: '--service' }), 1);
        assert.equal(await lbMetric(lb, 'switchyard_lb_idle_tunnels_closed_total', { kind: 'tcp' }), 1);
      } finally {
        clearInterval(sending);
        clearInterval(tcpSending);
        for (const t of timers) clearInterval(t);
        for (const x of [idle, pushed, sink, echo]) x.ws.terminate();
        c1.destroy();
        c2.destroy();
        wss.close();
        tcpEcho.close();
      }
    });
  }

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: cuts slow-header clients on both listeners and refuses oversized headers`, async () => {
      const b = await startBackend(`limits-${plane}`);
      backends.push(b);
      await registerBackend(agent.url, `limits-${plane}`, b);
      const cert = selfSigned(tempDir('sy-slow-'), 'slow', ['localhost']);
      const lb = await startTestLb(agent.url, {
        service: `limits-${plane}`, 'data-plane': plane, timeouts: { 'client-header': '500ms' }, limits: { 'max-header-size': 4096 },
        tls: { listen: '127.0.0.1:0', certs: [cert] },
      });
      lbs.push(lb);
      await waitUpstreams(lb, `limits-${plane}`, [b.port]);
      for (const secure of [false, true]) {
        const started = Date.now();
        const slow = await new Promise<string>((resolve) => {
          const head = 'GET / HTTP/1.1\r\nHost: x\r\n';
          const c = secure
            ? tlsConnect({ port: lb.tlsAddress!.port, host: '127.0.0.1', rejectUnauthorized: false }, () => c.write(head))
            : connect(lb.address.port, '127.0.0.1', () => c.write(head));
          let got = '';
          c.on('data', (d) => (got += d.toString()));
          c.on('error', () => undefined);
          c.on('close', () => resolve(got));
          // Bounded: a connection still open here is the failure this test is for.
          setTimeout(() => c.destroy(), 10_000).unref();
        });
        assert.ok(Date.now() - started < 5000, `a slowloris client is cut (${secure ? 'TLS' : 'plain'} listener)`);
        assert.match(slow, /^HTTP\/1\.1 408/);
      }
      const big = await fetch(`http://127.0.0.1:${lb.address.port}/`, { headers: { 'X-Big': 'x'.repeat(8000) } });
      assert.equal(big.status, 431);
    });

    it(`${plane} plane: a shutdown closes idle keep-alive connections at once`, async () => {
      const b = await startBackend(`idle-${plane}`);
      backends.push(b);
      await registerBackend(agent.url, `idle-${plane}`, b);
      const lb = await startTestLb(agent.url, { service: `idle-${plane}`, 'data-plane': plane, timeouts: { drain: '20s' } });
      await waitUpstreams(lb, `idle-${plane}`, [b.port]);
      const c = connect(lb.address.port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d.toString()));
      const closed = new Promise<void>((resolve) => c.on('close', () => resolve()));
      c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => got.includes(`idle-${plane}`), () => `the answer (got ${JSON.stringify(got)})`);
      // The client keeps its connection open and idle; the balancer stops.
      const t0 = Date.now();
      await lb.close();
      await closed;
      assert.ok(Date.now() - t0 < 5000, `closed in ${Date.now() - t0} ms: the idle connection did not hold the shutdown for the drain timeout`);
    });
  }

  it('rejects bad configs with the file, line and field (lb --check)', async () => {
    const dir = tempDir('sy-cfg-');
    const file = join(dir, 'lb.yaml');
    writeFileSync(file, 'listen: 127.0.0.1:9080\nroutes:\n  - service: web\n    path: api\n');
    const p = switchyard(['lb', '--check', '--config', file]);
    const r = await p.exited;
    assert.equal(r.code, 2);
    assert.match(p.stderr(), new RegExp(`${file.replace(/[.]/g, '\\.')}:4:\\d+: routes\\.0\\.path: must start with "/"`));
    writeFileSync(file, 'listen: 127.0.0.1:9080\nbalanse: p2c\n');
    const p2 = switchyard(['lb', '--check', '--config', file]);
    assert.equal((await p2.exited).code, 2);
    assert.match(p2.stderr(), /lb\.yaml:2:1: balanse: unknown key \(allowed: .*balance/);
    writeFileSync(file, 'routes:\n  - service: web\n    balance: fastest\n');
    const p3 = switchyard(['lb', '--check', '--config', file]);
    assert.equal((await p3.exited).code, 2);
    assert.match(p3.stderr(), /lb\.yaml:3:\d+: routes\.0\.balance: /);
    writeFileSync(file, 'routes: [ {service: web\n');
    const p4 = switchyard(['lb', '--check', '--config', file]);
    assert.equal((await p4.exited).code, 2);
    assert.match(p4.stderr(), /lb\.yaml:\d+:\d+: /);
    writeFileSync(file, 'routes:\n  - service: web\n    path: /api\n');
    const ok = switchyard(['lb', '--check', '--config', file]);
    assert.equal((await ok.exited).code, 0);
    assert.match(ok.stdout(), /configuration OK: 1 route/);
    // The files a config names are read and checked too, as a start reads them (nginx -t does the same).
    const checks: [string, RegExp][] = [
      [`routes:\n  - { service: web, protocol: https, tls-ca: ${join(dir, 'none.pem')} }\n`, /routes\[0\]\.tls-ca: cannot read .*none\.pem: ENOENT/],
      [`routes:\n  - { service: web, protocol: https, tls-cert: ${file}, tls-key: ${file} }\n`, /routes\[0\]\.tls-cert: .*lb\.yaml holds no PEM certificate/],
      [`tls:\n  listen: 127.0.0.1:0\n  certs: [{ cert: ${join(dir, 'none.crt')}, key: ${join(dir, 'none.key')} }]\nroutes:\n  - service: web\n`, /tls\.certs\[0\]\.cert: cannot read .*none\.crt/],
    ];
    for (const [text, why] of checks) {
      writeFileSync(file, text);
      const bad = switchyard(['lb', '--check', '--config', file]);
      assert.equal((await bad.exited).code, 2, bad.stdout());
      assert.match(bad.stderr(), why);
    }
  });
});
