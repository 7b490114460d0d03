// Agent-run health checks against real backends: HTTP, TCP (plain and TLS), UDP, H2PING, TTL, alias, thresholds and DeregisterCriticalServiceAfter.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import { createServer as createTlsServer } from 'node:tls';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAgent, http, negativeWindow, sleep, tempDir, waitFor } from '../helpers/agent.js';
import { selfSigned } from '../helpers/tls.js';
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

  it('a UDP check: passing while the port answers, critical from the ICMP refusal once it closes', async () => {
    const u = createSocket('udp4');
    u.on('message', (_m, from) => u.send('pong', from.port, from.address));
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
    const port = u.address().port;
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'dns-ish', Port: port, Check: { UDP: `127.0.0.1:${port}`, Interval: '200ms', Timeout: '300ms' } });
    await waitFor(async () => (await passingCount(a, 'dns-ish')) === 1, 'udp passing', 3000);
    const rendered = ((await http(a.url, 'GET', '/v1/health/checks/dns-ish')).json as { Type: string; Output: string; Definition: { UDP: string } }[])[0];
    assert.equal(rendered?.Type, 'udp');
    assert.equal(rendered?.Definition.UDP, `127.0.0.1:${port}`);
    assert.equal(rendered?.Output, `UDP connect 127.0.0.1:${port}: Success`);
    await new Promise<void>((r) => u.close(() => r()));
    await waitFor(async () => (await passingCount(a, 'dns-ish')) === 0, 'udp critical after close', 3000);
    assert.match((await checkOf(a, 'service:dns-ish'))?.Output ?? '', new RegExp(`^read udp 127\\.0\\.0\\.1:\\d+->127\\.0\\.0\\.1:${port}: read: connection refused$`));
    await http(a.url, 'PUT', '/v1/agent/service/deregister/dns-ish');
  });

  it('an H2PING check pings an h2c server with H2PingUseTLS false; TLS is the default, as in Consul', async () => {
    const h2 = createH2Server();
    let pings = 0;
    h2.on('session', (sess) => sess.on('ping', () => pings++));
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const port = (h2.address() as AddressInfo).port;
    try {
      await http(a.url, 'PUT', '/v1/agent/service/register', {
        Name: 'h2svc', Port: port, Checks: [
          { CheckID: 'h2c', H2PING: `127.0.0.1:${port}`, H2PingUseTLS: false, Interval: '200ms' },
          { CheckID: 'h2tls', H2PING: `127.0.0.1:${port}`, Interval: '200ms', Timeout: '500ms' },
        ],
      });
      await waitFor(async () => (await checkOf(a, 'h2c'))?.Status === 'passing', 'h2c ping passing', 3000);
      assert.equal((await checkOf(a, 'h2c'))?.Output, 'HTTP2 ping was successful');
      assert.ok(pings >= 1);
      // The default is TLS, which an h2c server cannot complete.
      await waitFor(async () => /^Failed to dial to /.test((await checkOf(a, 'h2tls'))?.Output ?? ''), 'h2tls tried', 3000);
      assert.equal((await checkOf(a, 'h2tls'))?.Status, 'critical');
      const defs = (await http(a.url, 'GET', '/v1/health/checks/h2svc')).json as { CheckID: string; Type: string; Definition: { H2PING: string; H2PingUseTLS: boolean } }[];
      assert.deepEqual(defs.map((c) => [c.CheckID, c.Type, c.Definition.H2PING, c.Definition.H2PingUseTLS]).sort(),
        [['h2c', 'h2ping', `127.0.0.1:${port}`, false], ['h2tls', 'h2ping', `127.0.0.1:${port}`, true]]);
    } finally {
      await http(a.url, 'PUT', '/v1/agent/service/deregister/h2svc');
      h2.close();
    }
  });

  it('TCPUseTLS makes a TCP check complete a TLS handshake (TLSSkipVerify for a self-signed certificate)', async () => {
    const dir = tempDir('sy-health-tcptls-');
    const c = selfSigned(dir, 's', ['localhost']);
    const server = createTlsServer({ key: readFileSync(c.key), cert: readFileSync(c.cert) }, (sock) => sock.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      await http(a.url, 'PUT', '/v1/agent/service/register', {
        Name: 'tlssvc', Port: port, Checks: [
          { CheckID: 'skip', TCP: `127.0.0.1:${port}`, TCPUseTLS: true, TLSSkipVerify: true, Interval: '200ms' },
          { CheckID: 'verify', TCP: `127.0.0.1:${port}`, TCPUseTLS: true, Interval: '200ms' },
        ],
      });
      await waitFor(async () => (await checkOf(a, 'skip'))?.Status === 'passing', 'TCP+TLS passing', 3000);
      assert.equal((await checkOf(a, 'skip'))?.Output, `TCP+TLS connect 127.0.0.1:${port}: Success`);
      await waitFor(async () => ((await checkOf(a, 'verify'))?.Output ?? '') !== '', 'verify ran', 3000);
      assert.deepEqual(await checkOf(a, 'verify').then((x) => [x?.Status, x?.Output]), ['critical', 'tls: failed to verify certificate: x509: certificate signed by unknown authority']);
      const defs = (await http(a.url, 'GET', '/v1/health/checks/tlssvc')).json as { Definition: { TCPUseTLS: boolean } }[];
      assert.deepEqual(defs.map((d) => d.Definition.TCPUseTLS), [true, true]);
    } finally {
      await http(a.url, 'PUT', '/v1/agent/service/deregister/tlssvc');
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an alias check follows the aliased service at once: critical, warning, passing, and critical once it is gone', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'app', Port: 1, Check: { CheckID: 'app-ttl', Name: 'app alive', TTL: '60s' } });
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'app-sidecar', Port: 2, Check: { CheckID: 'sidecar-alias', AliasService: 'app' } });
    const alias = async (): Promise<[string | undefined, string | undefined]> => {
      const c = await checkOf(a, 'sidecar-alias');
      return [c?.Status, c?.Output];
    };
    const becomes = async (status: string, output: string): Promise<void> => {
      const t0 = Date.now();
      await waitFor(async () => (await alias())[0] === status && (await alias())[1] === output, () => `alias ${status} "${output}"`, 3000, 10);
      // No interval: it moves with the view, well within Consul's 1 minute refresh.
      assert.ok(Date.now() - t0 < 1000, `followed in ${Date.now() - t0} ms`);
    };
    await becomes('critical', 'Aliased check "app alive" failing: ');
    await http(a.url, 'PUT', '/v1/agent/check/warn/app-ttl?note=slow');
    await becomes('warning', 'Aliased check "app alive" failing: slow');
    await http(a.url, 'PUT', '/v1/agent/check/pass/app-ttl');
    await becomes('passing', 'All checks passing.');
    assert.equal(await passingCount(a, 'app-sidecar'), 1);
    // Maintenance on the aliased service is one of its checks, so the alias goes critical with it.
    await http(a.url, 'PUT', '/v1/agent/service/maintenance/app?enable=true&reason=deploy');
    await becomes('critical', 'Aliased check "Service Maintenance Mode" failing: ');
    await http(a.url, 'PUT', '/v1/agent/service/maintenance/app?enable=false');
    await becomes('passing', 'All checks passing.');
    await http(a.url, 'PUT', '/v1/agent/service/deregister/app');
    await becomes('critical', 'Service app could not be found on node n1');
    assert.equal(await passingCount(a, 'app-sidecar'), 0);
    // A service without checks is as healthy as its node (serfHealth here); registering it again brings the alias back.
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'app', Port: 1 });
    await becomes('passing', 'All checks passing.');
    const def = ((await http(a.url, 'GET', '/v1/health/checks/app-sidecar')).json as { Type: string; Definition: { AliasService: string } }[])[0];
    assert.deepEqual([def?.Type, def?.Definition.AliasService], ['alias', 'app']);
    await http(a.url, 'PUT', '/v1/agent/service/deregister/app-sidecar');
    await http(a.url, 'PUT', '/v1/agent/service/deregister/app');
  });

  it('an alias of a node mirrors its node-level checks (serfHealth, node maintenance), and an unknown node is critical', async () => {
    await http(a.url, 'PUT', '/v1/agent/check/register', { CheckID: 'node-alias', Name: 'node alias', AliasNode: 'n1' });
    const st = async (id: string): Promise<string> => `${(await checkOf(a, id))?.Status} ${(await checkOf(a, id))?.Output}`;
    await waitFor(async () => (await st('node-alias')) === 'passing All checks passing.', 'node alias passing', 3000);
    await http(a.url, 'PUT', '/v1/agent/maintenance?enable=true&reason=kernel');
    await waitFor(async () => (await st('node-alias')) === 'critical Aliased check "Node Maintenance Mode" failing: ', 'node alias critical in maintenance', 3000);
    await http(a.url, 'PUT', '/v1/agent/maintenance?enable=false');
    await waitFor(async () => (await st('node-alias')) === 'passing All checks passing.', 'node alias passing again', 3000);
    // Another node-level check on n1 is part of n1's health, an alias among them: the ghost alias below
    // (critical) would turn node-alias critical too. The alias never counts itself.
    await http(a.url, 'PUT', '/v1/agent/check/register', { CheckID: 'ghost-alias', Name: 'ghost alias', AliasNode: 'ghost' });
    await waitFor(async () => (await st('ghost-alias')) === 'critical Node ghost could not be found', 'ghost alias critical', 3000);
    await waitFor(async () => (await st('node-alias')) === 'critical Aliased check "ghost alias" failing: Node ghost could not be found', 'node alias sees the ghost alias', 3000);
    // The node appears: the ghost alias follows without an interval.
    await http(a.url, 'PUT', '/v1/catalog/register', { Node: 'ghost', Address: '10.0.0.9', Check: { CheckID: 'ghost-ok', Name: 'ghost ok', Status: 'warning', Output: 'meh' } });
    await waitFor(async () => (await st('ghost-alias')) === 'warning Aliased check "ghost ok" failing: meh', 'ghost alias follows the new node', 3000);
    await waitFor(async () => (await st('node-alias')) === 'warning Aliased check "ghost alias" failing: Aliased check "ghost ok" failing: meh', 'and node-alias follows it', 3000);
    await http(a.url, 'PUT', '/v1/agent/check/deregister/node-alias');
    await http(a.url, 'PUT', '/v1/agent/check/deregister/ghost-alias');
    await http(a.url, 'PUT', '/v1/catalog/deregister', { Node: 'ghost' });
  });

  it('/v1/agent/checks lists every check the agent runs, gRPC included (it used to leave gRPC checks out)', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'rpc', Port: 1, Check: { CheckID: 'rpc-health', GRPC: '127.0.0.1:1/pkg.Svc', Interval: '10s' } });
    const listed = (await http(a.url, 'GET', '/v1/agent/checks')).json as Record<string, { Type: string; ServiceID: string }>;
    assert.deepEqual([listed['rpc-health']?.Type, listed['rpc-health']?.ServiceID], ['grpc', 'rpc']);
    await http(a.url, 'PUT', '/v1/agent/service/deregister/rpc');
  });

  it('bad UDP, H2PING and alias definitions are 400s naming the field; OSService is refused, not stored', async () => {
    const reg = async (check: unknown): Promise<[number, string]> => {
      const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'bad', Port: 1, Check: check });
      return [r.status, r.text];
    };
    assert.deepEqual(await reg({ UDP: 'nohost', Interval: '1s' }), [400, 'Invalid check: Check.UDP: "nohost" is not a host:port address']);
    assert.deepEqual(await reg({ UDP: '127.0.0.1:70000', Interval: '1s' }), [400, 'Invalid check: Check.UDP: "127.0.0.1:70000" is not a host:port address']);
    assert.deepEqual(await reg({ H2PING: '127.0.0.1:1' }), [400, 'Invalid check: Check: Interval is required for H2PING checks']);
    // Zero would run the check back to back or expire it at once; Consul refuses both.
    assert.deepEqual(await reg({ HTTP: 'http://127.0.0.1:1/', Interval: '0s' }), [400, 'Invalid check: Check: Interval must be greater than 0 for HTTP checks']);
    assert.deepEqual(await reg({ TCP: '127.0.0.1:1', Interval: 0 }), [400, 'Invalid check: Check: Interval must be greater than 0 for TCP checks']);
    assert.deepEqual(await reg({ TTL: '0s' }), [400, 'Invalid check: Check: TTL must be greater than 0 for TTL checks']);
    assert.deepEqual((await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'zero', TTL: '0s' })).status, 400);
    assert.deepEqual(await reg({ AliasService: 'x', TTL: '10s' }), [400, 'Invalid check: Check: only one check type may be set, got TTL and Alias']);
    assert.deepEqual(await reg({ OSService: 'sshd', Interval: '1s' }), [400, 'Invalid check: Check: OSService checks are not supported by this agent (supported: HTTP, TCP, UDP, GRPC, H2PING, TTL, alias)']);
    assert.deepEqual(await reg({ TCP: '127.0.0.1:1', TCPUseTLS: 'yes', Interval: '1s' }).then(([st]) => st), 400);
    assert.equal((await http(a.url, 'GET', '/v1/agent/services')).json && 'bad' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object), false);
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

  it('SuccessBeforePassing counts from the first run: a healthy new instance passes on its third success, not its first', async () => {
    const b = await backend();
    backends.push(b);
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'fresh', Port: b.port, Check: { HTTP: `http://127.0.0.1:${b.port}/`, Interval: '100ms', SuccessBeforePassing: 3 },
    });
    await waitFor(async () => (await checkOf(a, 'service:fresh'))?.Status === 'passing', 'fresh passing', 3000, 5);
    assert.ok(b.hits >= 3, `passing after ${b.hits} probe(s)`);
    await http(a.url, 'PUT', '/v1/agent/service/deregister/fresh');
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

  it('re-registering a TTL check (alone or with its service) starts its TTL again, as Consul does', async () => {
    // Wall-clock timers again: the old deadline passes 1.5 s before the status is read, the new one
    // 1.5 s after (unless the machine stalls, which the last assertion reports).
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'again', TTL: '3s', Status: 'passing' });
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'again-svc', Port: 1, Check: { TTL: '3s', Status: 'passing' } });
    const registered = Date.now();
    await sleep(1500);
    const again = Date.now();
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'again', TTL: '3s', Status: 'passing' });
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'again-svc', Port: 1, Check: { TTL: '3s', Status: 'passing' } });
    await negativeWindow(Math.max(0, registered + 3000 + 500 - Date.now()), 'the first TTL expiring after the re-registration');
    const [alone, withService] = [(await checkOf(a, 'again'))?.Status, (await checkOf(a, 'service:again-svc'))?.Status];
    assert.ok(Date.now() < again + 3000, `read ${Date.now() - again} ms after the re-registration: the machine stalled too long to judge`);
    assert.deepEqual([alone, withService], ['passing', 'passing']);
    await waitFor(async () => (await checkOf(a, 'again'))?.Status === 'critical', 'the new TTL expiring', 5000);
    await http(a.url, 'PUT', '/v1/agent/check/deregister/again');
    await http(a.url, 'PUT', '/v1/agent/service/deregister/again-svc');
  });

  it('a TTL longer than a Node.js timer holds (720h) keeps its check passing, with no timer warning', async () => {
    // Node arms a timer above 2^31 - 1 ms (24.8 days) for 1 ms: this check used to expire at once.
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'month', TTL: '720h', Status: 'passing' });
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'monthly', Port: 1, Check: { TTL: '720h', Status: 'passing', DeregisterCriticalServiceAfter: '720h' } });
      await negativeWindow(500, 'a 720h TTL expiring');
      assert.equal((await checkOf(a, 'month'))?.Status, 'passing');
      assert.equal((await checkOf(a, 'service:monthly'))?.Status, 'passing');
      assert.deepEqual(warnings.filter((n) => n === 'TimeoutOverflowWarning'), []);
    } finally {
      process.off('warning', onWarning);
      await http(a.url, 'PUT', '/v1/agent/check/deregister/month');
      await http(a.url, 'PUT', '/v1/agent/service/deregister/monthly');
    }
  });

  it('DeregisterCriticalServiceAfter removes a service whose check stays critical', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'doomed', Port: 1, Check: { TTL: '30s', DeregisterCriticalServiceAfter: '600ms' },
    });
    assert.ok('doomed' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object));
    await waitFor(async () => !('doomed' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object)), 'doomed deregistered', 5000);
    assert.deepEqual((await http(a.url, 'GET', '/v1/catalog/service/doomed')).json, []);
  });

  it('a wall clock stepped forward two hours does not count as time a check has been critical', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'stepped', Port: 1, Check: { TTL: '30s', DeregisterCriticalServiceAfter: '30s' },
    });
    const wall = Date.now;
    Date.now = () => wall() + 7_200_000;
    try {
      // The reaper runs every 100 ms here: it would have deregistered the service within this window.
      await negativeWindow(800, 'the critical service being reaped after a clock step');
    } finally {
      Date.now = wall;
    }
    assert.ok('stepped' in ((await http(a.url, 'GET', '/v1/agent/services')).json as object), 'reaped after 0.8 s of a 30 s DeregisterCriticalServiceAfter');
    await http(a.url, 'PUT', '/v1/agent/service/deregister/stepped');
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
