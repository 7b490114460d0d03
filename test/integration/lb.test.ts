// The balancer end to end: real backends registered in a real agent, traffic through a real LB.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startTestAgent, http, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { deregisterBackend, describeLoad, load, moreRequests, registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';

async function get(url: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const r = await request(`${url}${path}`, { headers });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

function tally(bodies: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const b of bodies) t[b] = (t[b] ?? 0) + 1;
  return t;
}

describe('load balancer', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  const lbs: TestLb[] = [];
  const newBackend = async (name: string): Promise<Backend> => {
    const b = await startBackend(name);
    backends.push(b);
    return b;
  };
  const newLb = async (cfg: Parameters<typeof startTestLb>[1] = {}): Promise<TestLb> => {
    const lb = await startTestLb(agent.url, cfg);
    lbs.push(lb);
    return lb;
  };

  before(async () => {
    agent = await startTestAgent();
  });
  afterEach(async () => {
    for (const lb of lbs.splice(0)) await lb.close();
    for (const b of backends.splice(0)) await b.close();
    const svcs = (await http(agent.url, 'GET', '/v1/agent/services')).json as Record<string, unknown>;
    for (const id of Object.keys(svcs)) await http(agent.url, 'PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
  });
  after(async () => {
    await agent.stop();
  });

  it('spreads requests evenly over registered instances (round robin), with forwarding headers', async () => {
    const bs = await Promise.all(['a', 'b', 'c'].map(newBackend));
    for (const b of bs) await registerBackend(agent.url, 'web', b);
    let seen: Record<string, string | string[] | undefined> = {};
    bs[0]!.handler = (req, res) => {
      seen = req.headers;
      res.end('a');
    };
    const lb = await newLb({ service: 'web' });
    await waitUpstreams(lb, 'web', bs.map((b) => b.port));
    const bodies: string[] = [];
    for (let i = 0; i < 300; i++) bodies.push((await get(lb.url, '/x', { 'X-Forwarded-For': '10.1.1.1' })).body);
    assert.deepEqual(tally(bodies), { a: 100, b: 100, c: 100 });
    assert.equal(seen['x-forwarded-for'], '10.1.1.1, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.match(String(seen['x-forwarded-host']), /^127\.0\.0\.1:\d+$/);
    assert.match(String(seen['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(seen.connection, 'keep-alive', 'upstream connections are kept alive');
  });

  it('routes services named like Object.prototype\'s members (__proto__, constructor) by their urlprefix- tags', async () => {
    // The agent's catalog/services used to lose a service named __proto__, so the balancer never saw it.
    const names = ['__proto__', 'constructor'];
    for (const n of names) {
      const b = await newBackend(n);
      b.handler = (_req, res) => res.end(`from ${n}`);
      await registerBackend(agent.url, n, b, { Tags: [`urlprefix-/${n}/`] });
    }
    const lb = await newLb();
    for (const n of names) await waitFor(async () => (await get(lb.url, `/${n}/x`)).body === `from ${n}`, `a route to ${n}`, 5000);
  });

  it('follows Consul Weights, gives warning instances their warning weight and critical ones nothing', async () => {
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map(newBackend));
    await registerBackend(agent.url, 'wt', a!, { Weights: { Passing: 3, Warning: 1 } });
    await registerBackend(agent.url, 'wt', b!, { Weights: { Passing: 1, Warning: 1 } });
    await registerBackend(agent.url, 'wt', c!, { Weights: { Passing: 5, Warning: 1 }, Check: { TTL: '1m', Status: 'warning' } });
    await registerBackend(agent.url, 'wt', d!, { Check: { TTL: '1m', Status: 'critical' } });
    const lb = await newLb({ service: 'wt' });
    await waitUpstreams(lb, 'wt', [a!.port, b!.port, c!.port]);
    const bodies: string[] = [];
    for (let i = 0; i < 500; i++) bodies.push((await get(lb.url)).body);
    assert.deepEqual(tally(bodies), { a: 300, b: 100, c: 100 });
    // The critical instance turns passing: it joins.
    await http(agent.url, 'PUT', '/v1/agent/check/pass/service:wt-d');
    await waitUpstreams(lb, 'wt', [a!.port, b!.port, c!.port, d!.port]);
  });

  for (const balance of ['least_conn', 'p2c', 'random'] as const) {
    it(`balances with ${balance}`, async () => {
      const bs = await Promise.all(['a', 'b', 'c'].map(newBackend));
      for (const b of bs) await registerBackend(agent.url, 'alg', b);
      const lb = await newLb({ service: 'alg', balance });
      await waitUpstreams(lb, 'alg', bs.map((b) => b.port));
      const l = load(lb.url, { concurrency: 6, maxMs: 30_000 });
      await moreRequests(l, 1200, `balanced by ${balance}`);
      const r = await l.stop();
      assert.equal(r.failed, 0, describeLoad(r));
      for (const b of ['a', 'b', 'c']) assert.ok((r.byBackend.get(b) ?? 0) > r.ok / 6, `${b} got a fair share: ${describeLoad(r)}`);
    });
  }

  it('least_conn sends new requests away from a slow instance', async () => {
    const [slow, fast] = await Promise.all(['slow', 'fast'].map(newBackend));
    slow!.handler = (_req, res) => setTimeout(() => res.end('slow'), 300);
    for (const b of [slow!, fast!]) await registerBackend(agent.url, 'lc', b);
    const lb = await newLb({ service: 'lc', balance: 'least_conn' });
    await waitUpstreams(lb, 'lc', [slow!.port, fast!.port]);
    const l = load(lb.url, { concurrency: 4, maxMs: 30_000 });
    // The share is a ratio of rates (one request per 300 ms for the slow one at most), so a request
    // count measures it as well as a time would, on an idle or a busy machine.
    await moreRequests(l, 400, 'with a slow instance');
    const r = await l.stop();
    assert.ok((r.byBackend.get('fast') ?? 0) > 10 * (r.byBackend.get('slow') ?? 0), describeLoad(r));
  });

  it('hash by header is sticky and fails over when the instance goes away', async () => {
    const bs = await Promise.all(['a', 'b', 'c'].map(newBackend));
    for (const b of bs) await registerBackend(agent.url, 'sticky', b);
    const lb = await newLb({ routes: [{ service: 'sticky', balance: 'hash', 'hash-by': { header: 'X-User' } }] });
    await waitUpstreams(lb, 'sticky', bs.map((b) => b.port));
    const owner: Record<string, string> = {};
    for (let u = 0; u < 30; u++) {
      const first = (await get(lb.url, '/', { 'X-User': `user-${u}` })).body;
      for (let i = 0; i < 5; i++) assert.equal((await get(lb.url, '/', { 'X-User': `user-${u}` })).body, first);
      owner[`user-${u}`] = first;
    }
    assert.ok(new Set(Object.values(owner)).size >= 2, 'keys spread over instances');
    const gone = bs[0]!;
    await deregisterBackend(agent.url, 'sticky', gone);
    await waitUpstreams(lb, 'sticky', [bs[1]!.port, bs[2]!.port]);
    for (const [u, b] of Object.entries(owner)) {
      const now = (await get(lb.url, '/', { 'X-User': u })).body;
      if (b === gone.name) assert.notEqual(now, gone.name);
      else assert.equal(now, b, `${u} stays on ${b} when another instance leaves`);
    }
  });

  it('scales 3 → 5 → 2 under continuous load with zero failed requests', async () => {
    const bs = await Promise.all(['b1', 'b2', 'b3', 'b4', 'b5'].map(newBackend));
    for (const b of bs.slice(0, 3)) await registerBackend(agent.url, 'scale', b);
    // Three of five leave at once without failing a check first: the mass-loss guard would hold
    // them for 30 s (lb-changes.test.ts tests that). This test is about the scale-down itself.
    const lb = await newLb({ service: 'scale', guard: { 'max-drop': 100 } });
    await waitUpstreams(lb, 'scale', bs.slice(0, 3).map((b) => b.port));
    const l = load(lb.url, { concurrency: 16, maxMs: 40_000 });
    await moreRequests(l, 200, 'on three instances');
    for (const b of bs.slice(3)) await registerBackend(agent.url, 'scale', b);
    await waitUpstreams(lb, 'scale', bs.map((b) => b.port));
    await waitFor(() => (l.result.byBackend.get('b4') ?? 0) > 0 && (l.result.byBackend.get('b5') ?? 0) > 0, () => `the new instances b4 and b5 taking traffic: ${describeLoad(l.result)}`);
    // Scale down the way an orchestrator does it: deregister, then stop the process.
    for (const b of bs.slice(0, 3)) await deregisterBackend(agent.url, 'scale', b);
    await waitUpstreams(lb, 'scale', [bs[3]!.port, bs[4]!.port]);
    for (const b of bs.slice(0, 3)) await b.close();
    await moreRequests(l, 300, 'after the scale-down');
    const r = await l.stop();
    assert.equal(r.failed, 0, describeLoad(r));
    assert.ok(r.ok > 500, describeLoad(r));
  });

  for (const plane of ['fast', 'node'] as const) it(`${plane} plane: a retry after a scale-down picks from the table as it is now, not the one its request started on`, async () => {
    const svc = `rescale-${plane}`;
    const bs = await Promise.all(['r1', 'r2', 'r3', 'r4'].map(newBackend));
    let arrived!: () => void;
    const slowArrived = new Promise<void>((r) => (arrived = r));
    for (const b of bs.slice(0, 3)) {
      b.handler = (req, res) => {
        if (req.url === '/slow') arrived(); // held until the instance stops
        else res.end(b.name);
      };
      await registerBackend(agent.url, svc, b);
    }
    const lb = await newLb({ service: svc, 'data-plane': plane, guard: { 'max-drop': 100 } });
    await waitUpstreams(lb, svc, bs.slice(0, 3).map((b) => b.port));
    const slow = get(lb.url, '/slow');
    await slowArrived;
    // The orchestrator's scale-down: a new instance, the old ones deregistered, then stopped mid-request.
    await registerBackend(agent.url, svc, bs[3]!);
    for (const b of bs.slice(0, 3)) await deregisterBackend(agent.url, svc, b);
    await waitUpstreams(lb, svc, [bs[3]!.port]);
    for (const b of bs.slice(0, 3)) await b.close();
    // Before: the retries were drawn from the group the request started on, r2 and r3 refused, and the client got a 502.
    const r = await slow;
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, 'r4');
  });

  it('a backend killed mid-load costs no idempotent request (retried on another instance)', async () => {
    const bs = await Promise.all(['k1', 'k2', 'k3'].map(newBackend));
    for (const b of bs) await registerBackend(agent.url, 'kill', b);
    const lb = await newLb({ service: 'kill' });
    await waitUpstreams(lb, 'kill', bs.map((b) => b.port));
    const l = load(lb.url, { concurrency: 16, maxMs: 40_000 });
    await moreRequests(l, 200, 'on three instances');
    await bs[0]!.close(); // dies without deregistering
    // Passive health ejects it after its connects are refused (each of those requests retried elsewhere),
    // then the load goes on without it.
    await waitFor(async () => /switchyard_lb_ejections_total\{/.test(await (await fetch(`${lb.adminUrl}/metrics`)).text()), () => `k1 ejected by passive health: ${describeLoad(l.result)}`);
    await moreRequests(l, 300, 'after k1 was ejected');
    const r = await l.stop();
    assert.equal(r.failed, 0, describeLoad(r));
    const metrics = await (await fetch(`${lb.adminUrl}/metrics`)).text();
    assert.match(metrics, /switchyard_lb_retries_total\{[^}]*service="kill"/);
    assert.match(metrics, /switchyard_lb_ejections_total\{/, 'the dead instance was ejected by passive health');
  });

  it('a POST to a dead instance is retried only when nothing was sent (connect refused)', async () => {
    const [a, b] = await Promise.all(['pa', 'pb'].map(newBackend));
    for (const x of [a!, b!]) await registerBackend(agent.url, 'post', x);
    const lb = await newLb({ service: 'post' });
    await waitUpstreams(lb, 'post', [a!.port, b!.port]);
    await a!.close();
    for (let i = 0; i < 10; i++) {
      const r = await request(`${lb.url}/submit`, { method: 'POST', body: 'payload' });
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'pb');
    }
  });

  it('drains a deregistered instance: in-flight requests finish, new ones go elsewhere', async () => {
    const [a, b] = await Promise.all(['da', 'db'].map(newBackend));
    let slowArrived = false;
    a!.handler = (req, res) => {
      if (req.url === '/slow') {
        slowArrived = true;
        setTimeout(() => res.end('da-slow-done'), 800);
      } else res.end('da');
    };
    for (const x of [a!, b!]) await registerBackend(agent.url, 'drain', x);
    const lb = await newLb({ service: 'drain', balance: 'round_robin' });
    await waitUpstreams(lb, 'drain', [a!.port, b!.port]);
    // Find a request that lands on `da`, slow.
    let slow: Promise<{ status: number; body: string }> | undefined;
    for (let i = 0; i < 2 && !slow; i++) {
      const probe = await get(lb.url, '/');
      if (probe.body === 'db') slow = get(lb.url, '/slow');
    }
    assert.ok(slow, 'next request goes to da');
    await waitFor(() => slowArrived, 'the slow request in flight at da');
    await deregisterBackend(agent.url, 'drain', a!);
    await waitUpstreams(lb, 'drain', [b!.port]);
    for (let i = 0; i < 10; i++) assert.equal((await get(lb.url)).body, 'db');
    const s = await slow;
    assert.equal(s.status, 200);
    assert.equal(s.body, 'da-slow-done');
  });

  it('no route → 404; no healthy instance → 503 with Retry-After', async () => {
    const lb = await newLb({ routes: [{ service: 'nothing', path: '/api' }] });
    await waitFor(() => lb.snapshots.current, 'the balancer\'s first table');
    const nr = await get(lb.url, '/other');
    assert.equal(nr.status, 404);
    assert.match(nr.body, /no route/);
    const b = await newBackend('n1');
    await registerBackend(agent.url, 'nothing', b, { Check: { TTL: '1m' } });
    // A TTL check starts critical: the balancer learns of the instance and keeps it out of the table.
    await waitFor(() => lb.snapshots.serviceSet?.critical?.get('nothing')?.length === 1, 'the balancer to know nothing-n1 as critical');
    const r = await get(lb.url, '/api');
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.match(r.body, /no healthy instance of nothing/);
  });

  it('routes by host, path and header, most specific first; urlprefix- tags with strip=', async () => {
    const [api, web, canary, tagged] = await Promise.all(['api', 'web', 'canary', 'tagged'].map(newBackend));
    tagged!.handler = (req, res) => res.end(`tagged ${req.url}`);
    await registerBackend(agent.url, 'api', api!);
    await registerBackend(agent.url, 'www', web!);
    await registerBackend(agent.url, 'canary', canary!);
    await registerBackend(agent.url, 'legacy', tagged!, { Tags: ['urlprefix-/legacy strip=/legacy'] });
    const lb = await newLb({
      routes: [
        { service: 'www' },
        { service: 'api', path: '/api' },
        { service: 'canary', path: '/api', headers: { 'X-Canary': '1' } },
        { service: 'api', host: 'api.example.com' },
        { service: 'canary', host: '*.example.com' },
      ],
    });
    await waitUpstreams(lb, 'legacy', [tagged!.port]);
    assert.equal((await get(lb.url, '/')).body, 'web');
    assert.equal((await get(lb.url, '/api/x')).body, 'api');
    assert.equal((await get(lb.url, '/api/x', { 'X-Canary': '1' })).body, 'canary');
    assert.equal((await get(lb.url, '/', { Host: 'api.example.com' })).body, 'api');
    assert.equal((await get(lb.url, '/', { Host: 'shop.example.com:8080' })).body, 'canary');
    assert.equal((await get(lb.url, '/legacy/page?q=1')).body, 'tagged /page?q=1');
    const routes = (await (await fetch(`${lb.adminUrl}/routes`)).json()) as { routes: { origin: string }[] };
    assert.ok(routes.routes.some((r) => r.origin === 'tag:legacy/urlprefix-/legacy strip=/legacy'));
  });

  it('keeps serving the last table while the registry is down, and catches up when it returns', async () => {
    const dataDir = agent.dataDir;
    const port = agent.address.port;
    const bs = await Promise.all(['r1', 'r2'].map(newBackend));
    for (const b of bs) await registerBackend(agent.url, 'down', b);
    const lb = await newLb({ service: 'down' });
    await waitUpstreams(lb, 'down', bs.map((b) => b.port));
    const l = load(lb.url, { concurrency: 8, maxMs: 15_000 });
    await agent.close();
    await waitFor(async () => /switchyard_lb_registry_connected 0/.test(await (await fetch(`${lb.adminUrl}/metrics`)).text()), 'the balancer to see the registry gone (switchyard_lb_registry_connected 0)');
    await moreRequests(l, 200, 'while the registry is down');
    // Same port, same data: the registry comes back with its catalog.
    agent = await startTestAgent({ 'http-addr': `127.0.0.1:${port}` }, dataDir);
    const b3 = await newBackend('r3');
    await registerBackend(agent.url, 'down', b3);
    await waitUpstreams(lb, 'down', [...bs, b3].map((b) => b.port), 15_000);
    const r = await l.stop();
    assert.equal(r.failed, 0, describeLoad(r));
  });

  it('survives a restart with the registry down, serving the state file', async () => {
    const { tempDir } = await import('../helpers/agent.js');
    const stateFile = `${tempDir('sy-state-')}/lb-state.json`;
    const b = await newBackend('s1');
    await registerBackend(agent.url, 'persist', b);
    const lb1 = await newLb({ service: 'persist', 'state-file': stateFile });
    await waitUpstreams(lb1, 'persist', [b.port]);
    await lb1.close();
    // A balancer pointed at a dead registry starts from the state file.
    const lb2 = await startTestLb('http://127.0.0.1:1', { service: 'persist', 'state-file': stateFile });
    lbs.push(lb2);
    assert.equal((await get(lb2.url)).body, 's1');
  });
});
