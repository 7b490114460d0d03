// The balancer's certificates renewed in place: files replaced, SIGHUP (what certbot's deploy hook or an nginx
// operator sends), new TLS connections get the new certificate and open ones keep working on the old; a file that
// does not load leaves the served certificate as it was; SIGHUP never ends the process. One process and two workers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect, createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { http, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { selfSigned } from '../helpers/tls.js';

interface Answer { status: number; body: string; subject: string; socketId: number }

const socketIds = new WeakMap<object, number>();
let nextSocketId = 0;

/** GET / over TLS (SNI shop.example.com); with an agent, on its kept-alive connection. Says which certificate and which socket. */
function httpsGet(port: number, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername: 'shop.example.com', rejectUnauthorized: false, agent }, (res) => {
      const sock = res.socket as unknown as { getPeerCertificate(): { subject: { CN: string } } };
      if (!socketIds.has(sock)) socketIds.set(sock, ++nextSocketId);
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, subject: sock.getPeerCertificate().subject.CN, socketId: socketIds.get(sock) as number }));
    });
    req.on('error', reject);
    req.end();
  });
}

type Pair = { cert: string; key: string };

/** Two certificates for shop.example.com (CN first… and second…), and the files a balancer reads, holding the first. */
function renewable(prefix: string): { dir: string; first: Pair; second: Pair; live: Pair } {
  const dir = tempDir(prefix);
  const first = selfSigned(dir, 'first', ['first.example.com', 'shop.example.com']);
  const second = selfSigned(dir, 'second', ['second.example.com', 'shop.example.com']);
  // Replaced in place later, as a renewal does.
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  return { dir, first, second, live };
}

describe('lb: TLS certificates reloaded on SIGHUP', () => {
  let agent: TestAgent;
  let backend: Backend;
  const procs: Proc[] = [];
  before(async () => {
    agent = await startTestAgent();
    backend = await startBackend('tls-reload');
    await registerBackend(agent.url, 'shop', backend);
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await stop(p);
    await backend.close();
    await agent.stop();
  });

  for (const workers of [1, 2]) {
    it(`--workers ${workers}: new connections get the renewed certificate, open ones keep theirs, a broken file changes nothing`, async () => {
      const { dir, first, second, live } = renewable('sy-tls-reload-');
      const [port, tlsPort, admin] = [await freePort(), await freePort(), await freePort()];
      const cfg = join(dir, 'lb.yaml');
      writeFileSync(cfg, JSON.stringify({
        listen: `127.0.0.1:${port}`, 'admin-addr': `127.0.0.1:${admin}`, registry: agent.url, 'log-level': 'info', workers,
        routes: [{ path: '/', service: 'shop' }], tls: { listen: `127.0.0.1:${tlsPort}`, certs: [live] },
      }));
      const p = switchyard(['lb', '--config', cfg]);
      procs.push(p);
      const ok = async (): Promise<boolean> => {
        try {
          return (await httpsGet(tlsPort, false)).status === 200;
        } catch {
          return false;
        }
      };
      await waitFor(ok, () => `the TLS listener; stderr: ${p.stderr()}`, 15_000, 100);
      // Every process that serves has started (one, or each worker): a worker still starting applies a reload
      // only once started, reading the files as they are then, which is not what this test is about.
      const serving = (): number => (p.stderr().match(/"msg":"load balancer listening"/g) ?? []).length;
      await waitFor(() => serving() >= (workers > 1 ? workers + 1 : 1), () => `every worker listening; stderr: ${p.stderr()}`, 15_000, 50);
      // Several fresh connections, so that with two workers both answer.
      const subjects = async (): Promise<string[]> => [...new Set(await Promise.all(Array.from({ length: 8 }, async () => (await httpsGet(tlsPort, false)).subject)))];
      assert.deepEqual(await subjects(), ['first.example.com']);

      const keep = new Agent({ keepAlive: true, maxSockets: 1 });
      const before = await httpsGet(tlsPort, keep);
      assert.equal(before.subject, 'first.example.com');

      copyFileSync(second.cert, live.cert);
      copyFileSync(second.key, live.key);
      process.kill(p.pid, 'SIGHUP');
      await waitFor(async () => (await subjects()).join() === 'second.example.com', () => `only the renewed certificate; stderr: ${p.stderr()}`, 10_000, 100);
      // The connection opened before the reload is still served, on its own certificate.
      const after = await httpsGet(tlsPort, keep);
      assert.deepEqual([after.status, after.body, after.subject, after.socketId], [200, 'tls-reload', 'first.example.com', before.socketId]);
      keep.destroy();

      // A renewal caught half-written: the key does not match; nothing changes and the reason is logged.
      copyFileSync(first.key, live.key);
      process.kill(p.pid, 'SIGHUP');
      await waitFor(() => /TLS certificates not reloaded; the previous ones stay in use/.test(p.stderr()), () => `the refused reload; stderr: ${p.stderr()}`);
      assert.match(p.stderr(), /live\.crt \/ [^ ]*live\.key is not a usable certificate and key/);
      assert.deepEqual(await subjects(), ["second.example.com"], p.stderr());
      assert.equal(p.child.exitCode, null, 'SIGHUP does not end the balancer');

      process.kill(p.pid, 'SIGTERM');
      assert.equal((await p.exited).code, 0, p.stderr());
    });
  }

  it('--workers 2: the TLS, TCP and UDP listeners are the workers\' (a primary that bound them too left every worker failing to listen, forked again and again)', async () => {
    const echo = createNetServer((c) => c.on('data', (d) => c.end(`tcp:${d.toString()}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const udpEcho = createSocket('udp4');
    udpEcho.on('message', (m, from) => udpEcho.send(`udp:${m.toString()}`, from.port, from.address));
    await new Promise<void>((r) => udpEcho.bind(0, '127.0.0.1', r));
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'echo-tcp', ID: 'echo-tcp', Address: '127.0.0.1', Port: (echo.address() as AddressInfo).port });
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'echo-udp', ID: 'echo-udp', Address: '127.0.0.1', Port: udpEcho.address().port });
    const dir = tempDir('sy-workers-listeners-');
    const cert = selfSigned(dir, 'c', ['shop.example.com']);
    const [port, tlsPort, tcpPort, udpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const cfg = join(dir, 'lb.yaml');
    writeFileSync(cfg, JSON.stringify({
      listen: `127.0.0.1:${port}`, registry: agent.url, 'log-level': 'info', workers: 2, routes: [{ path: '/', service: 'shop' }],
      tls: { listen: `127.0.0.1:${tlsPort}`, certs: [cert] }, tcp: [{ listen: `127.0.0.1:${tcpPort}`, service: 'echo-tcp' }], udp: [{ listen: `127.0.0.1:${udpPort}`, service: 'echo-udp' }],
    }));
    const p = switchyard(['lb', '--config', cfg]);
    procs.push(p);
    try {
      await waitFor(async () => {
        try {
          return (await httpsGet(tlsPort, false)).status === 200;
        } catch {
          return false;
        }
      }, () => `the TLS listener; stderr: ${p.stderr()}`, 15_000, 100);
      const tcp = (): Promise<string> => new Promise((resolve, reject) => {
        const c = connect(tcpPort, '127.0.0.1', () => c.write('x'));
        let got = '';
        c.on('data', (d) => (got += d.toString()));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      await waitFor(async () => (await tcp().catch(() => '')) === 'tcp:x', () => `the TCP route; stderr: ${p.stderr()}`, 10_000, 100);
      const client = createSocket('udp4');
      const udpAnswer = new Promise<string>((resolve) => client.once('message', (m) => resolve(m.toString())));
      const ping = setInterval(() => client.send('y', udpPort, '127.0.0.1'), 200);
      try {
        assert.equal(await udpAnswer, 'udp:y');
      } finally {
        clearInterval(ping);
        client.close();
      }
      for (let i = 0; i < 6; i++) assert.equal((await httpsGet(tlsPort, false)).body, 'tls-reload');
      assert.doesNotMatch(p.stderr(), /worker died|EADDRINUSE/);
      process.kill(p.pid, 'SIGTERM');
      assert.equal((await p.exited).code, 0, p.stderr());
    } finally {
      echo.close();
      udpEcho.close();
    }
  });

  it('switchyard up reloads its balancer\'s certificates on SIGHUP; switchyard agent says it cannot reload and goes on (SIGHUP ended both)', async () => {
    const { dir, second, live } = renewable('sy-up-hup-');
    const [api, lbPort, tlsPort, dnsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'up.json');
    writeFileSync(file, JSON.stringify({ lb: { routes: [{ path: '/', service: 'shop' }], tls: { listen: `127.0.0.1:${tlsPort}`, certs: [live] } } }));
    const up = switchyard(['up', '--config', file, '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator', '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', join(dir, 'data'), '--log-level', 'info']);
    procs.push(up);
    await waitFor(async () => (await http(`http://127.0.0.1:${api}`, 'GET', '/v1/status/leader').catch(() => ({ status: 0 }))).status === 200, () => `up's agent; stderr: ${up.stderr()}`, 15_000, 100);
    await registerBackend(`http://127.0.0.1:${api}`, 'shop', backend);
    await waitFor(async () => (await httpsGet(tlsPort, false).catch(() => ({ status: 0, subject: '' }))).subject === 'first.example.com', () => `up's TLS listener; stderr: ${up.stderr()}`, 15_000, 100);
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    process.kill(up.pid, 'SIGHUP');
    await waitFor(async () => (await httpsGet(tlsPort, false)).subject === 'second.example.com', () => `the renewed certificate; stderr: ${up.stderr()}`, 10_000, 100);
    process.kill(up.pid, 'SIGTERM');
    assert.equal((await up.exited).code, 0, up.stderr());

    const agentPort = await freePort();
    const a = switchyard(['agent', '--http-addr', `127.0.0.1:${agentPort}`, '--data-dir', join(dir, 'agent-data'), '--log-level', 'info']);
    procs.push(a);
    const leader = async (): Promise<number> => (await http(`http://127.0.0.1:${agentPort}`, 'GET', '/v1/status/leader').catch(() => ({ status: 0 }))).status;
    await waitFor(async () => (await leader()) === 200, () => `the agent; stderr: ${a.stderr()}`, 15_000, 100);
    process.kill(a.pid, 'SIGHUP');
    await waitFor(() => a.stderr().includes('SIGHUP: the agent does not reload its configuration'), () => `the agent's answer to SIGHUP; stderr: ${a.stderr()}`);
    assert.equal(await leader(), 200);
    process.kill(a.pid, 'SIGTERM');
    assert.equal((await a.exited).code, 0, a.stderr());
  });
});
