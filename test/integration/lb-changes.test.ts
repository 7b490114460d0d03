// Registry changes as the balancer lives them, through real processes (`switchyard agent`,
// `switchyard lb` with a YAML config, backends registered over the Consul API): change latency
// from the agent's commit time (X-Switchyard-Index-Time) to the table swap and the first routed
// request, with workers too and against a registry that does not say (arrival time); a watch gone
// silent (agent stopped with SIGSTOP) raising `stale`; and the mass-loss guard holding a 3 → 0
// deregistration burst while letting a 3 → 0 critical-check transition through at once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { http, tempDir, waitFor } from '../helpers/agent.js';
import { startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

interface Lb {
  proc: Proc;
  url: string;
  admin: string;
}

interface Routes {
  groups: { service: string; upstreams: { id: string; address: string; heldUntil?: string }[] }[];
  registry: { connected: boolean; stale?: boolean; staleWatches?: { watch: string }[]; staleAfterMs?: number; changeClock?: string } | null;
  guard: { maxDropPercent: number; holdMs: number; held: { service: string; id: string; until: string }[] } | null;
  lastChange: { version: number; committedAt: string; clock: string; swapSeconds: number; firstRequestSeconds: number | null } | null;
}

const procs: Proc[] = [];
const backends: Backend[] = [];
const servers: Server[] = [];

async function startAgent(name: string): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const proc = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', tempDir(`sy-changes-${name}-`), '--node', 'n1', '--log-level', 'warn', '--dns-addr', '127.0.0.1:0']);
  procs.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitHttpOk(`${url}/v1/status/leader`, proc);
  return { proc, url };
}

async function startLb(name: string, registry: string, config: Record<string, unknown>): Promise<Lb> {
  const port = await freePort();
  const admin = await freePort();
  const file = join(tempDir('sy-changes-'), `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${port}`, 'admin-addr': `127.0.0.1:${admin}`, registry, 'log-level': 'info', ...config }));
  const proc = switchyard(['lb', '--config', file]);
  procs.push(proc);
  await waitHttpOk(`http://127.0.0.1:${admin}/health`, proc);
  return { proc, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${admin}` };
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  backends.push(b);
  return b;
}

async function register(agent: string, service: string, b: Backend, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await http(agent, 'PUT', '/v1/agent/service/register', { Name: service, ID: `${service}-${b.name}`, Address: '127.0.0.1', Port: b.port, ...extra });
  assert.equal(r.status, 200, r.text);
}

const routes = async (lb: Lb): Promise<Routes> => (await http(lb.admin, 'GET', '/routes')).json as Routes;

const instancesOf = (r: Routes, service: string): string[] => [...new Set(r.groups.filter((g) => g.service === service).flatMap((g) => g.upstreams.map((u) => u.id)))].sort();

/** waitFor for a value: resolves with what `fn` found once it finds something. */
async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs?: number): Promise<T> {
  return (await waitFor(fn, what, timeoutMs)) as T;
}

async function waitInstances(lb: Lb, service: string, n: number, timeoutMs?: number): Promise<Routes> {
  return until(async () => {
    const r = await routes(lb);
    return instancesOf(r, service).length === n ? r : undefined;
  }, `${n} instances of ${service} in the table`, timeoutMs);
}

/** A metric's value from Prometheus text (0 when the series is absent). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries((m[3] ?? '').split(',').filter(Boolean).map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i), JSON.parse(kv.slice(i + 1)) as string];
    }));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

const metrics = async (lb: Lb): Promise<string> => (await http(lb.admin, 'GET', '/metrics')).text;

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

after(async () => {
  await Promise.all(procs.map((p) => stop(p)));
  await Promise.all(backends.map((b) => b.close()));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('change latency', () => {
  let agent: { proc: Proc; url: string };
  before(async () => {
    agent = await startAgent('latency');
  });

  it('the agent says when the change at X-Consul-Index was applied (X-Switchyard-Index-Time)', async () => {
    const b = await backend('idx-a');
    const first = await http(agent.url, 'GET', '/v1/health/service/indexed');
    const index = first.headers.get('x-consul-index');
    const parked = http(agent.url, 'GET', `/v1/health/service/indexed?index=${String(index)}&wait=30s`);
    const t0 = Date.now();
    await register(agent.url, 'indexed', b);
    const t1 = Date.now();
    const woke = await parked;
    const at = Number(woke.headers.get('x-switchyard-index-time'));
    assert.ok(at >= t0 && at <= t1, `applied at ${at}, within the write's ${t0}..${t1}`);
    // An immediate read of the same index says the same; KV reads do not carry it.
    const again = await http(agent.url, 'GET', '/v1/health/service/indexed');
    assert.equal(again.headers.get('x-consul-index'), woke.headers.get('x-consul-index'));
    assert.equal(Number(again.headers.get('x-switchyard-index-time')), at);
    assert.equal((await http(agent.url, 'PUT', '/v1/kv/k', 'v')).status, 200);
    assert.equal((await http(agent.url, 'GET', '/v1/kv/k')).headers.get('x-switchyard-index-time'), null);
  });

  it('measures commit → swap and commit → first routed request, in /metrics and /routes', async () => {
    const a = await backend('lat-a');
    await register(agent.url, 'lat', a);
    const lb = await startLb('latency', agent.url, { routes: [{ path: '/', service: 'lat' }] });
    await waitInstances(lb, 'lat', 1);
    assert.equal((await get(lb.url)).status, 200);
    let m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'swap' }), 0, 'the first table is no change');
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request' }), 0);

    const b = await backend('lat-b');
    const t0 = Date.now();
    await register(agent.url, 'lat', b);
    const r = await waitInstances(lb, 'lat', 2);
    const t1 = Date.now();
    const c = r.lastChange;
    assert.ok(c, 'the change is in /routes');
    assert.equal(c.clock, 'registry');
    const committed = Date.parse(c.committedAt);
    assert.ok(committed >= t0 && committed <= t1, `committed ${c.committedAt} within the write`);
    assert.ok(committed + c.swapSeconds * 1000 <= t1 + 1, `swapped (${c.swapSeconds} s after the commit) before we saw the new table`);
    assert.equal(c.firstRequestSeconds, null, 'no request yet');
    m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'swap', clock: 'registry' }), 1);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request', clock: 'registry' }), 0);

    const sent = Date.now();
    assert.equal((await get(lb.url)).status, 200);
    const answered = Date.now();
    const after = (await routes(lb)).lastChange;
    assert.ok(after?.firstRequestSeconds !== null && after?.firstRequestSeconds !== undefined, 'the first request is measured');
    const routedAt = committed + after.firstRequestSeconds * 1000;
    assert.ok(routedAt >= sent - 1 && routedAt <= answered + 1, `first request routed at ${routedAt}, while ours was in flight (${sent}..${answered})`);
    for (let i = 0; i < 5; i++) await get(lb.url);
    m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request', clock: 'registry' }), 1, 'once per table, not per request');
    assert.ok(metric(m, 'switchyard_lb_change_latency_seconds_bucket', { stage: 'swap', clock: 'registry', le: '+Inf' }) === 1);
  });

  it('on the Node data plane too: the first routed request of a new table is measured once', async () => {
    const a = await backend('np-a');
    await register(agent.url, 'np', a);
    const lb = await startLb('node-plane', agent.url, { routes: [{ path: '/', service: 'np' }], 'data-plane': 'node' });
    await waitInstances(lb, 'np', 1);
    await register(agent.url, 'np', await backend('np-b'));
    await waitInstances(lb, 'np', 2);
    assert.equal(metric(await metrics(lb), 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request', clock: 'registry' }), 0);
    for (let i = 0; i < 3; i++) assert.equal((await get(lb.url)).status, 200);
    assert.equal(metric(await metrics(lb), 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request', clock: 'registry' }), 1);
    assert.notEqual((await routes(lb)).lastChange?.firstRequestSeconds, null);
  });

  it('with workers: each worker measures the tables it serves; the primary, which serves none, does not', async () => {
    const a = await backend('wk-a');
    await register(agent.url, 'wk', a);
    const lb = await startLb('workers', agent.url, { routes: [{ path: '/', service: 'wk' }], workers: 2 });
    await waitInstances(lb, 'wk', 1);
    // Both workers have their first table (a worker that starts later takes the change as its first table: no change to it).
    await waitFor(() => (/lb-worker-1".*routing table swapped/.test(lb.proc.stderr()) && /lb-worker-2".*routing table swapped/.test(lb.proc.stderr()) ? true : undefined), 'both workers to have a table', 30_000);
    const b = await backend('wk-b');
    await register(agent.url, 'wk', b);
    await waitInstances(lb, 'wk', 2);
    // Both workers got the change: the aggregated count reaches 2 and stays there.
    await waitFor(async () => (metric(await metrics(lb), 'switchyard_lb_change_latency_seconds_count', { stage: 'swap', clock: 'registry' }) === 2 ? true : undefined), 'two worker swaps');
    for (let i = 0; i < 40; i++) await get(lb.url);
    const m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'swap', clock: 'registry' }), 2);
    const first = metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'first_request', clock: 'registry' });
    assert.ok(first >= 1 && first <= 2, `one first request per worker that got traffic (${first})`);
    assert.equal(m.split('\n').filter((l) => l === '# TYPE switchyard_lb_change_latency_seconds histogram').length, 1, 'listed once: the workers\' sum, not also the primary\'s empty one');
  });

  it('against a registry that does not say when it committed, measures from the answer\'s arrival and says so', async () => {
    // A registry in front of our agent that drops the header, as Consul would not send it.
    const target = new URL(agent.url);
    const proxy = createServer((req, res) => {
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        const headers = { ...r.headers };
        delete headers['x-switchyard-index-time'];
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    servers.push(proxy);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const registry = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const a = await backend('arr-a');
    await register(agent.url, 'arr', a);
    const lb = await startLb('arrival', registry, { routes: [{ path: '/', service: 'arr' }] });
    await waitInstances(lb, 'arr', 1);
    const b = await backend('arr-b');
    await register(agent.url, 'arr', b);
    const r = await waitInstances(lb, 'arr', 2);
    assert.equal(r.lastChange?.clock, 'arrival');
    assert.equal(r.registry?.changeClock, 'arrival');
    const m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'swap', clock: 'arrival' }), 1);
    assert.equal(metric(m, 'switchyard_lb_change_latency_seconds_count', { stage: 'swap', clock: 'registry' }), 0);
    assert.match(lb.proc.stderr(), /does not say when changes were committed/);
  });
});

describe('stale watch', () => {
  it('raises stale when the registry stops answering (agent stopped), and clears it when it answers again', async () => {
    const agent = await startAgent('stale');
    const a = await backend('stale-a');
    await register(agent.url, 'quiet', a);
    const lb = await startLb('stale', agent.url, { routes: [{ path: '/', service: 'quiet' }], watch: { wait: '1s', 'stale-margin': '500ms' } });
    await waitInstances(lb, 'quiet', 1);
    const before = await routes(lb);
    assert.equal(before.registry?.stale, false);
    assert.equal(before.registry?.staleAfterMs, 1000 + 1000 / 16 + 500);
    // Blocking queries time out and come back every second: a quiet registry is not a stale one.
    await waitFor(async () => (lb.proc.stderr().includes('"msg":"registry connected"') ? true : undefined), 'the registry connected log line');
    assert.equal(metric(await metrics(lb), 'switchyard_lb_registry_stale'), 0);

    process.kill(agent.proc.pid, 'SIGSTOP');
    try {
      // Each watch goes stale on its own clock (its last answer + the expected wait): wait for both.
      const r = await until(async () => {
        const x = await routes(lb);
        return x.registry?.stale && (x.registry.staleWatches?.length ?? 0) >= 2 ? x : undefined;
      }, 'both watches to go stale');
      assert.deepEqual(r.registry?.staleWatches?.map((w) => w.watch).sort(), ['catalog/services', 'health/service/quiet']);
      assert.equal(metric(await metrics(lb), 'switchyard_lb_registry_stale'), 1);
      assert.match(lb.proc.stderr(), /registry watch stale/);
      assert.equal((await get(lb.url)).status, 200, 'the last table keeps serving');
    } finally {
      process.kill(agent.proc.pid, 'SIGCONT');
    }
    await waitFor(async () => ((await routes(lb)).registry?.stale === false ? true : undefined), 'stale to clear');
    assert.equal(metric(await metrics(lb), 'switchyard_lb_registry_stale'), 0);
    assert.match(lb.proc.stderr(), /registry watches answering again/);
  });
});

describe('mass-loss guard', () => {
  let agent: { proc: Proc; url: string };
  before(async () => {
    agent = await startAgent('guard');
  });

  it('holds a 3 → 0 deregistration burst: traffic keeps flowing to the held instances for the hold time, then they go', async () => {
    const bs = await Promise.all(['gd-a', 'gd-b', 'gd-c'].map(backend));
    for (const b of bs) await register(agent.url, 'burst', b);
    const lb = await startLb('guard', agent.url, { routes: [{ path: '/', service: 'burst' }], guard: { 'max-drop': 50, hold: '4s' } });
    await waitInstances(lb, 'burst', 3);
    for (const b of bs) assert.equal((await http(agent.url, 'PUT', `/v1/agent/service/deregister/burst-${b.name}`)).status, 200);
    assert.deepEqual((await http(agent.url, 'GET', '/v1/health/service/burst')).json, [], 'the registry has none left');
    // The table's change after the burst: all three held.
    const held = await until(async () => {
      const r = await routes(lb);
      return r.guard?.held.length === 3 ? r : undefined;
    }, 'three held instances');
    assert.deepEqual(held.guard?.held.map((h) => h.id).sort(), bs.map((b) => `n1/burst-${b.name}`).sort());
    assert.deepEqual(instancesOf(held, 'burst'), bs.map((b) => `n1/burst-${b.name}`).sort());
    assert.ok(held.groups.flatMap((g) => g.upstreams).every((u) => u.heldUntil !== undefined), 'each upstream says until when it is held');
    const bodies = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await get(lb.url);
      assert.equal(r.status, 200, 'served by a held instance');
      bodies.add(r.body);
    }
    assert.equal((await routes(lb)).guard?.held.length, 3, 'those requests were served while the instances were held');
    assert.deepEqual([...bodies].sort(), ['gd-a', 'gd-b', 'gd-c'], 'spread over the held instances');
    const m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_guard_held_instances', { service: 'burst' }), 3);
    assert.equal(metric(m, 'switchyard_lb_guard_holds_total', { service: 'burst' }), 3);
    assert.match(lb.proc.stderr(), /mass-loss guard: holding instances/);

    // The hold ends by itself (no registry change needed): the table empties, requests get 503.
    await waitInstances(lb, 'burst', 0, 20_000);
    assert.equal((await get(lb.url)).status, 503);
    assert.deepEqual((await routes(lb)).guard?.held, []);
    assert.match(lb.proc.stderr(), /"reason":"expired".*"msg":"mass-loss guard: released held instances"|mass-loss guard: released held instances.*"reason":"expired"/);
  });

  it('with workers: the primary guards, the workers serve the held instances and drop them when it releases them', async () => {
    const bs = await Promise.all(['gw-a', 'gw-b', 'gw-c'].map(backend));
    for (const b of bs) await register(agent.url, 'wburst', b);
    const lb = await startLb('guard-workers', agent.url, { routes: [{ path: '/', service: 'wburst' }], guard: { 'max-drop': 50, hold: '4s' }, workers: 2 });
    await waitInstances(lb, 'wburst', 3);
    await waitFor(() => (/lb-worker-1".*routing table swapped/.test(lb.proc.stderr()) && /lb-worker-2".*routing table swapped/.test(lb.proc.stderr()) ? true : undefined), 'both workers to have a table', 30_000);
    for (const b of bs) assert.equal((await http(agent.url, 'PUT', `/v1/agent/service/deregister/wburst-${b.name}`)).status, 200);
    await until(async () => ((await routes(lb)).guard?.held.length === 3 ? true : undefined), 'three held instances');
    for (let i = 0; i < 20; i++) assert.equal((await get(lb.url)).status, 200, 'a worker serves the held instances');
    assert.equal((await routes(lb)).guard?.held.length, 3, 'still held');
    const m = await metrics(lb);
    assert.equal(metric(m, 'switchyard_lb_guard_held_instances', { service: 'wburst' }), 3);
    assert.equal(m.split('\n').filter((l) => l === '# TYPE switchyard_lb_guard_held_instances gauge').length, 1, 'the primary\'s figure only, not also a sum of the workers\' zeros');
    await waitFor(async () => ((await get(lb.url)).status === 503 ? true : undefined), 'the workers to drop them when the hold ends', 20_000);
  });

  it('refuses bad guard and watch settings with the file, line and key', async () => {
    const file = join(tempDir('sy-changes-cfg-'), 'lb.yaml');
    const cases: [string, RegExp][] = [
      ['guard:\n  max-drop: 150\n', /lb\.yaml:2:\d+: guard\.max-drop: /],
      ['guard:\n  hold: 0s\n', /lb\.yaml:2:\d+: guard\.hold: must be a Go duration from 1s to 1h/],
      ['guard:\n  max-dorp: 10\n', /lb\.yaml:2:\d+: guard\.max-dorp: unknown key \(allowed: max-drop, hold\)/],
      ['watch:\n  wait: 20m\n', /lb\.yaml:2:\d+: watch\.wait: must be a Go duration from 100ms to 10m/],
      ['watch:\n  stale-margin: soon\n', /lb\.yaml:2:\d+: watch\.stale-margin: must be a Go duration/],
    ];
    for (const [yaml, want] of cases) {
      writeFileSync(file, yaml);
      const p = switchyard(['lb', '--check', '--config', file]);
      assert.equal((await p.exited).code, 2, yaml);
      assert.match(p.stderr(), want);
    }
    writeFileSync(file, 'guard: { max-drop: 100, hold: 5m }\nwatch: { wait: 30s, stale-margin: 2s }\n');
    const ok = switchyard(['lb', '--check', '--config', file]);
    assert.equal((await ok.exited).code, 0, ok.stderr());
  });

  it('lets a 3 → 0 critical-check transition through at once (a 10-minute hold never applies)', async () => {
    const bs = await Promise.all(['cr-a', 'cr-b', 'cr-c'].map(backend));
    for (const b of bs) await register(agent.url, 'sick', b, { Check: { CheckID: `ttl-${b.name}`, TTL: '10m', Status: 'passing' } });
    const lb = await startLb('guard-critical', agent.url, { routes: [{ path: '/', service: 'sick' }], guard: { 'max-drop': 50, hold: '10m' } });
    await waitInstances(lb, 'sick', 3);
    assert.equal((await get(lb.url)).status, 200);
    for (const b of bs) assert.equal((await http(agent.url, 'PUT', `/v1/agent/check/fail/ttl-${b.name}?note=down`)).status, 200);
    const r = await waitInstances(lb, 'sick', 0);
    assert.deepEqual(r.guard?.held, [], 'nothing held');
    assert.equal((await get(lb.url)).status, 503);
    assert.doesNotMatch(lb.proc.stderr(), /mass-loss guard: holding/);
  });
});
