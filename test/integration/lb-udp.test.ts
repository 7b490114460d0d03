// UDP routes on the balancer (src/proxy/udp-proxy.ts): datagrams from each client go to one instance for the life
// of its session and the replies come back to that client; clients spread over the instances; dig (Debian dnsutils)
// resolves through the balancer against the agent's own DNS interface; an instance that closes its port (ICMP port
// unreachable) is charged and the next datagram goes elsewhere; idle sessions end; the session bound and a service
// without instances drop datagrams and count them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { promisify } from 'node:util';
import { http, startTestAgent, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { lbMetric, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { TestLb } from '../helpers/lb.js';
import { digSkip } from '../helpers/dig.js';

const run = promisify(execFile);


interface Instance {
  readonly name: string;
  readonly socket: UdpSocket;
  readonly port: number;
  readonly clients: Set<number>;
}

/** An instance that answers every datagram with `<name>:<payload>` and remembers which client ports it served. */
async function echo(name: string): Promise<Instance> {
  const socket = createSocket('udp4');
  const clients = new Set<number>();
  socket.on('message', (m, from) => {
    clients.add(from.port);
    socket.send(`${name}:${m.toString()}`, from.port, from.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return { name, socket, port: socket.address().port, clients };
}

/** A client socket that keeps every reply. */
async function client(): Promise<{ socket: UdpSocket; replies: string[]; ask(port: number, text: string, waitMs?: number): Promise<string | undefined> }> {
  const socket = createSocket('udp4');
  const replies: string[] = [];
  socket.on('message', (m) => replies.push(m.toString()));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return {
    socket, replies,
    async ask(port, text, waitMs = 2000) {
      const had = replies.length;
      socket.send(text, port, '127.0.0.1');
      const deadline = Date.now() + waitMs;
      while (replies.length === had && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      return replies[had];
    },
  };
}

describe('UDP routes', () => {
  let agent: TestAgent;
  let lb: TestLb;
  const instances: Instance[] = [];
  const sockets: UdpSocket[] = [];
  const register = (service: string, i: Instance): Promise<unknown> =>
    http(agent.url, 'PUT', '/v1/agent/service/register', { Name: service, ID: `${service}-${i.name}`, Address: '127.0.0.1', Port: i.port });

  before(async () => {
    agent = await startTestAgent({ 'dns-addr': '127.0.0.1:0' });
    for (const name of ['a', 'b']) instances.push(await echo(name));
    for (const i of instances) await register('echo', i);
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'dns', Address: '127.0.0.1', Port: agent.dns!.udp.port });
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'web', Address: '10.1.2.3', Port: 80 });
    await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'ghost', Address: 'no-such-host.invalid', Port: 53 });
    lb = await startTestLb(agent.url, {
      udp: [
        { listen: '127.0.0.1:0', service: 'echo', 'idle-timeout': '400ms' },
        { listen: '127.0.0.1:0', service: 'dns' },
        { listen: '127.0.0.1:0', service: 'echo', 'max-sessions': 2, balance: 'hash' },
        { listen: '127.0.0.1:0', service: 'nobody' },
        { listen: '127.0.0.1:0', service: 'ghost' },
      ],
    });
    await waitUpstreams(lb, 'echo', instances.map((i) => i.port));
    await waitUpstreams(lb, 'dns', [agent.dns!.udp.port]);
  });
  after(async () => {
    for (const s of sockets) s.close();
    await lb?.close();
    for (const i of instances) {
      try {
        i.socket.close();
      } catch {
        // closed by a test
      }
    }
    await agent?.stop();
  });

  const port = (n: number): number => lb.udpAddresses[n]?.port ?? 0;

  it('each client keeps one instance for its session, replies come back to it, and clients spread over the instances', async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => client()));
    for (const c of clients) sockets.push(c.socket);
    const first = await Promise.all(clients.map((c, n) => c.ask(port(0), `hello ${n}`)));
    for (const [n, r] of first.entries()) assert.match(r ?? '', new RegExp(`^[ab]:hello ${n}$`));
    // The same client, later datagrams: the same instance.
    for (const [n, c] of clients.entries()) {
      for (let k = 0; k < 3; k++) assert.equal((await c.ask(port(0), `again ${k}`))?.[0], first[n]?.[0], `client ${n} stays on its instance`);
    }
    assert.deepEqual(new Set(first.map((r) => r?.[0])), new Set(['a', 'b']), 'round robin put clients on both instances');
    // Sessions: one per client, one socket each toward the instances.
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'opened', listen: '127.0.0.1:0' }) >= 4, true);
  });

  it('idle sessions end after idle-timeout; the next datagram opens a new one', async () => {
    const c = await client();
    sockets.push(c.socket);
    await c.ask(port(0), 'x');
    const opened = await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'opened' });
    await new Promise((r) => setTimeout(r, 1200));
    assert.match((await c.ask(port(0), 'y')) ?? '', /^[ab]:y$/);
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'opened' }), opened + 1);
  });

  it('idle sessions still end when the wall clock steps back an hour (NTP, a resumed VM)', async (t) => {
    const c = await client();
    sockets.push(c.socket);
    await c.ask(port(0), 'x');
    const opened = await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'opened' });
    const wall = Date.now;
    Date.now = () => wall() - 3_600_000;
    t.after(() => {
      Date.now = wall;
    });
    await new Promise((r) => setTimeout(r, 1200));
    // A session kept for the hour would answer this datagram itself: no new session would open.
    assert.match((await c.ask(port(0), 'y')) ?? '', /^[ab]:y$/);
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'opened' }), opened + 1, 'the idle session outlived its 400 ms idle-timeout');
  });

  it('dig resolves through the balancer against the agent\'s DNS interface', { skip: digSkip }, async () => {
    const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port(1)), '+time=2', '+tries=1', '+short', 'web.service.consul', 'A'], { timeout: 15_000 });
    assert.equal(stdout.trim(), '10.1.2.3');
    const srv = await run('dig', ['@127.0.0.1', '-p', String(port(1)), '+time=2', '+tries=1', '+short', 'web.service.consul', 'SRV'], { timeout: 15_000 });
    assert.match(srv.stdout.trim(), /^1 1 80 /);
  });

  it('max-sessions: datagrams from clients beyond it are dropped and counted; a service without instances too', async () => {
    const cs = await Promise.all([1, 2, 3].map(() => client()));
    for (const c of cs) sockets.push(c.socket);
    assert.ok(await cs[0]!.ask(port(2), 'one'));
    assert.ok(await cs[1]!.ask(port(2), 'two'));
    assert.equal(await cs[2]!.ask(port(2), 'three', 500), undefined);
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'too_many' }), 1);
    assert.equal(await cs[0]!.ask(port(3), 'anyone?', 500), undefined);
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_sessions_total', { outcome: 'no_instance' }), 1);
    assert.equal(await lbMetric(lb, 'switchyard_lb_udp_datagrams_total', { direction: 'in' }) > await lbMetric(lb, 'switchyard_lb_udp_datagrams_total', { direction: 'out' }), true);
  });

  it('an instance whose address does not resolve: the session ends without taking the balancer down', async () => {
    await waitUpstreams(lb, 'ghost', [53]);
    const c = await client();
    sockets.push(c.socket);
    for (let i = 0; i < 3; i++) assert.equal(await c.ask(port(4), `into the void ${i}`, 300), undefined);
    // Still serving.
    assert.match((await c.ask(port(0), 'still here', 2000)) ?? '', /^[ab]:still here$/);
  });

  it('an instance whose port closes is charged, its session ends, and the client\'s next datagram goes to another instance', async () => {
    const c = await client();
    sockets.push(c.socket);
    const r = await c.ask(port(0), 'who');
    const victim = instances.find((i) => i.name === r?.[0]) as Instance;
    const other = instances.find((i) => i !== victim) as Instance;
    victim.socket.close();
    // The datagram that meets the closed port is lost (UDP); the ICMP answer ends the session.
    assert.equal(await c.ask(port(0), 'lost?', 500), undefined);
    await waitFor(async () => (await c.ask(port(0), 'retry', 500))?.startsWith(`${other.name}:`) === true, 'the next datagram reaches the other instance', 5000);
  });
});
