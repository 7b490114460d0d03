// Agent-run health checks against real backends: HTTP, TCP, TTL, thresholds and DeregisterCriticalServiceAfter.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAgent, http, negativeWindow, sleep, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

interface Backend {
  server: Server;
  port: number;
  /** Status code the /health endpoint answers with. */
  status: number;
  hits: number;
}

async function backend(): Promise<Backend> {
  const b: Backend = { server: createServer(), port: 0, status: 200, hits: 0 };
  b.server.on('request', (_req, res) => {
    b.hits++;
    res.writeHead(b.status, { 'Content-Type': 'text/plain' }).end(`status ${b.status}`);
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as AddressInfo).port;
  return b;
}

async function checkOf(a: TestAgent, id: string): Promise<{ Status: string; Output: string } | undefined> {
  return ((await http(a.url, 'GET', '/v1/agent/checks')).json as Record<string, { Status: string; Output: string }>)[id];
}

async function passingCount(a: TestAgent, svc: string): Promise<number> {
  return ((await http(a.url, 'GET', `/v1/health/service/${svc}?passing`)).json as unknown[]).length;
}

describe('health checks run by the agent', () => {
  let a: TestAgent;
  const backends: Backend[] = [];
  before(async () => {
    a = await startTestAgent({ 'check-min-interval': '100ms', 'check-reap-interval': '100ms', 'check-deregister-min': '500ms' });
  });
  after(async () => {
    await a.stop();
    for (const b of backends) b.server.close();
  });

  it('an HTTP check goes passing, then critical within interval + timeout once the backend fails, and back', async () => {
    const b = await backend();
    backends.push(b);
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'api', Port: b.port, Check: { HTTP: `http://127.0.0.1:${b.port}/health`, Interval: '300ms', Timeout: '200ms' },
    });
    await waitFor(async () => (await passingCount(a, 'api')) === 1, 'api passing', 3000);
    const c = await checkOf(a, 'service:api');
    assert.equal(c?.Output, `HTTP GET http://127.0.0.1:${b.port}/health: 200 OK Output: status 200`);
    b.status = 500;
    const t0 = Date.now();
    await waitFor(async () => (await passingCount(a, 'api')) === 0, 'api leaves ?passing', 3000, 10);
    const took = Date.now() - t0;
    assert.ok(took <= 300 + 200 + 150, `left ?passing after ${took} ms (interval 300ms + timeout 200ms)`);
    assert.equal((await checkOf(a, 'service:api'))?.Status, 'critical');
    b.status = 429;
    await waitFor(async () => (await checkOf(a, 'service:api'))?.Status === 'warning', '429 → warning', 3000);
    b.status = 200;
    await waitFor(async () => (await passingCount(a, 'api')) === 1, 'api passing again', 3000);
  });

  it('a hung backend is bounded by Timeout and checks never overlap', async () => {
    const hung = createServer(() => { /* never answers */ });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    let concurrent = 0;
    let maxConcurrent = 0;
    let started = 0;
    hung.on('request', (req) => {
      started++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      req.socket.on('close', () => concurrent--);
    });
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'hung', HTTP: `http://127.0.0.1:${port}/`, Interval: '100ms', Timeout: '300ms', Status: 'passing' });
    await waitFor(async () => (await checkOf(a, 'hung'))?.Status === 'critical', 'hung check critical', 3000);
    assert.match((await checkOf(a, 'hung'))?.Output ?? '', /Client\.Timeout exceeded/);
    // Counted in checks, not time: three more runs, each due (100 ms interval) while the one before hung.
    const from = started;
    await waitFor(() => started >= from + 3, () => `three more runs of the hung check (${started - from} so far)`, 10_000);
    assert.equal(maxConcurrent, 1, 'a slow check is never started again while it runs');
    await http(a.url, 'PUT', '/v1/agent/check/deregister/hung');
    hung.closeAllConnections();
    hung.close();
  });

  it('a TCP check follows its port', async () => {
    const b = await backend();
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'tcpsvc', Port: b.port, Check: { TCP: `127.0.0.1:${b.port}`, Interval: '200ms' } });
    await waitFor(async () => (await passingCount(a, 'tcpsvc')) === 1, 'tcp passing', 3000);
    assert.equal((await checkOf(a, 'service:tcpsvc'))?.Output, `TCP connect 127.0.0.1:${b.port}: Success`);
    await new Promise<void>((r) => b.server.close(() => r()));
    await waitFor(async () => (await passingCount(a, 'tcpsvc')) === 0, 'tcp critical after close', 3000);
    assert.match((await checkOf(a, 'service:tcpsvc'))?.Output ?? '', /connection refused/);
    await http(a.url, 'PUT', '/v1/agent/service/deregister/tcpsvc');
  });

  it('SuccessBeforePassing and FailuresBeforeCritical damp flapping', async () => {
    const b = await backend();
    backends.push(b);
    b.status = 500;
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'damped', Port: b.port,
      Check: { HTTP: `http://127.0.0.1:${b.port}/`, Interval: '100ms', SuccessBeforePassing: 3, FailuresBeforeCritical: 3, Status: 'critical' },
    });
    await waitFor(() => b.hits >= 2, 'first probes', 3000);
    b.status = 200;
    const startHits = b.hits;
    await waitFor(async () => (await checkOf(a, 'service:damped'))?.Status === 'passing', 'passing after 3 successes', 3000);
    assert.ok(b.hits - startHits >= 3, `passing only after ≥3 successes (saw ${b.hits - startHits})`);
    b.status = 500;
    const failStart = b.hits;
    await waitFor(async () => (await checkOf(a, 'service:damped'))?.Status === 'critical', 'critical after 3 failures', 3000);
    assert.ok(b.hits - failStart >= 3, `critical only after ≥3 failures (saw ${b.hits - failStart})`);
    await http(a.url, 'PUT', '/v1/agent/service/deregister/damped');
  });

  it('a TTL check expires to critical with Consul\'s output, and an update pushes the deadline out', async () => {
    // The agent's check timers run on the wall clock, so this test is about elapsed time; it reads the
    // status once the first pass's deadline is surely past and the second's surely not (1.2 s margin).
    const ttlMs = 2000;
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 't', TTL: `${ttlMs / 1000}s` });
    await http(a.url, 'PUT', '/v1/agent/check/pass/t?note=alive');
    const firstAnswered = Date.now(); // the first deadline is at most ttlMs after this
    assert.equal((await checkOf(a, 't'))?.Status, 'passing');
    await sleep(Math.max(0, firstAnswered + 1200 - Date.now()));
    const secondSent = Date.now(); // the second deadline is at least ttlMs after this
    await http(a.url, 'PUT', '/v1/agent/check/pass/t?note=alive');
    await negativeWindow(Math.max(0, firstAnswered + ttlMs + 100 - Date.now()), 'the TTL expiring although it was renewed');
    assert.ok(Date.now() < secondSent + ttlMs, `the status is read before the second deadline (${Date.now() - secondSent} ms after the second pass): the machine stalled too long to judge`);
    assert.equal((await checkOf(a, 't'))?.Status, 'passing', 'the second pass reset the TTL');
    await waitFor(async () => (await checkOf(a, 't'))?.Status === 'critical', 'TTL expiry', 5000);
    assert.equal((await checkOf(a, 't'))?.Output, 'TTL expired (last output before timeout follows): alive');
    await http(a.url, 'PUT', '/v1/agent/check/deregister/t');
  });

  it('DeregisterCriticalServiceAfter removes a service whose check stays critical', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'doomed', Port: 1, Check: { TTL: '30s', DeregisterCriticalServiceAfter: '600ms' },
    });
    assert.ok('doomed' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object));
    await waitFor(async () => !('doomed' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object)), 'doomed deregistered', 5000);
    assert.deepEqual((await http(a.url, 'GET', '/v1/catalog/service/doomed')).json, []);
  });

  it('a passing service with DeregisterCriticalServiceAfter stays', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'kept', Port: 1, Check: { TTL: '30s', Status: 'passing', DeregisterCriticalServiceAfter: '300ms' },
    });
    // A window: twice the (clamped) 500 ms deregistration delay, with the reaper running every 100 ms.
    await negativeWindow(1000, 'the passing service being reaped');
    assert.ok('kept' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object));
  });
});
