// Consul's limits.http_max_conns_per_client on the agent's HTTP API (src/core/conn-limit.ts):
// one client address cannot hold more connections than the limit; loopback is exempt unless configured.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { startTestAgent, waitFor, waitParked } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { raw } from '../helpers/raw-http.js';

const CONSUL_429 = 'HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 81\r\nConnection: close\r\n\r\nYour IP is issuing too many concurrent connections, please rate limit your calls\n';

/** A connection with a blocking query on `web` sent; collects what comes back. */
function watcher(port: number, index: number): Promise<{ socket: Socket; got: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    socket.on('error', reject);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => {
      socket.write(`GET /v1/health/service/web?index=${index}&wait=60s HTTP/1.1\r\nHost: a\r\n\r\n`);
      resolve({ socket, got: () => got, closed });
    });
  });
}

function put(path: string, body: unknown): string {
  const b = JSON.stringify(body);
  return `PUT ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${Buffer.byteLength(b)}\r\nConnection: close\r\n\r\n${b}`;
}

describe('http-max-conns-per-client', () => {
  const agents: TestAgent[] = [];
  const sockets: Socket[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    for (const a of agents) await a.stop();
  });

  it('a client over the limit gets Consul\'s 429 and is closed before its request is read; the others keep their queries; a freed slot is taken again', async () => {
    const agent = await startTestAgent({ 'http-max-conns-per-client': 3, 'http-max-conns-exempt': [] });
    agents.push(agent);
    const port = agent.address.port;
    const reg = await raw(port, [put('/v1/agent/service/register', { Name: 'web', Port: 80 })], { until: (g) => g.includes('\r\n\r\n') });
    assert.match(reg, /^HTTP\/1\.1 200 /);
    const index = Number(/X-Consul-Index: (\d+)/i.exec(await raw(port, ['GET /v1/health/service/web HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']))?.[1]);
    assert.ok(index > 0);

    const parked = agent.view.waiterCount();
    const w1 = await watcher(port, index);
    const w2 = await watcher(port, index);
    sockets.push(w1.socket, w2.socket);
    await waitParked(agent, parked + 1, 'two watchers');

    // The third connection is within the limit; the fourth, opened while the third is held, is not,
    // and the registration it carries never happens.
    const third = connect(port, '127.0.0.1');
    sockets.push(third);
    await new Promise((r) => third.once('connect', r));
    const refused = await raw(port, [put('/v1/agent/service/register', { Name: 'intruder', Port: 81 })]);
    assert.equal(refused, CONSUL_429);
    third.destroy();
    await waitFor(async () => (await raw(port, ['GET /v1/catalog/services HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'])).startsWith('HTTP/1.1 200'), 'the slot freed');
    const services = await raw(port, ['GET /v1/catalog/services HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.doesNotMatch(services, /intruder/);
    assert.equal(w1.got(), '', 'the parked queries were not disturbed');

    // A change wakes both watchers through the freed slot.
    const change = await raw(port, [put('/v1/agent/service/register', { Name: 'web', Port: 80, Tags: ['v2'] })], { until: (g) => g.includes('\r\n\r\n') });
    assert.match(change, /^HTTP\/1\.1 200 /);
    await waitFor(() => w1.got().includes('"v2"') && w2.got().includes('"v2"'), 'both watchers woken');
  });

  it('loopback clients are not limited unless http-max-conns-exempt says otherwise', async () => {
    const agent = await startTestAgent({ 'http-max-conns-per-client': 1 });
    agents.push(agent);
    const port = agent.address.port;
    // index=0 does not block: five answers, on five connections kept open (keep-alive).
    const ws = await Promise.all([1, 2, 3, 4, 5].map(() => watcher(port, 0)));
    sockets.push(...ws.map((w) => w.socket));
    await waitFor(() => ws.every((w) => w.got().startsWith('HTTP/1.1 200')), 'five answers');
    const sixth = await raw(port, ['GET /v1/catalog/services HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n']);
    assert.match(sixth, /^HTTP\/1\.1 200 /);
    assert.ok(ws.every((w) => !w.socket.destroyed), 'the five are still open');
  });
});
