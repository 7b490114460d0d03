// The balancer's metrics are defined once (src/proxy/lb-metrics.ts): what the data planes count is what
// Prometheus scrapes and what the UI's typed reader returns, from the same objects.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamStates } from '../../src/balancer/index.js';
import { seededRandom } from '../../src/core/clock.js';
import type { Instance } from '../../src/discovery/types.js';
import { LbMetrics, LATENCY_BUCKETS } from '../../src/proxy/lb-metrics.js';
import { buildSnapshot } from '../../src/routing/snapshot.js';

function inst(n: number): Instance {
  return { id: `node/web-${n}`, service: 'web', node: 'node', address: '127.0.0.1', port: 8000 + n, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing' };
}

function setup(): { m: LbMetrics; route: ReturnType<typeof buildSnapshot>['routes'][number] } {
  const snap = buildSnapshot({
    version: 1, specs: [{ origin: 'config:routes[0]', pathPrefix: '/', headers: [], tags: [], balance: 'round_robin', service: 'web' }],
    set: { catalog: new Map([['web', []]]), instances: new Map([['web', [inst(1), inst(2)]]]) },
    states: new UpstreamStates(), random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin',
  });
  const m = new LbMetrics({
    processMetrics: false, serving: true, following: true,
    facts: {
      inFlight: () => [['127.0.0.1:8001', 2]],
      registry: () => ({ connected: true, lastContact: Date.now(), stale: false }),
      heldServices: () => ['web', 'web'],
      upstreamStates: () => [['web', '127.0.0.1:8001', 'passing'], ['web', '127.0.0.1:8002', 'ejected']] as const,
      drainingPools: () => 1,
      h2Sessions: () => 3,
    },
  });
  return { m, route: snap.routes[0] as ReturnType<typeof buildSnapshot>['routes'][number] };
}

it('the reader returns what the planes counted, typed, and Prometheus scrapes the same numbers', async () => {
  const { m, route } = setup();
  const [a, b] = route.group.upstreams;
  assert.ok(a && b);
  for (let i = 0; i < 3; i++) m.proxy.request(route, a, 200, 0.003);
  m.proxy.request(route, b, 503, 0.2);
  m.proxy.request(route, undefined, 503, 0.0001);
  m.proxy.request(route, a, 200, 0.004, 'h2', 14);
  m.ejected(b.id, 'outlier: 5 consecutive 5xx');
  m.changeLatency('swap', 0.004, 'registry');
  m.changeLatency('first_request', 0.02, 'arrival');

  const s = await m.read();
  const key = (r: { instance: string; status: number; protocol: string; grpcStatus: number | undefined }) => `${r.instance} ${r.status} ${r.protocol} ${r.grpcStatus ?? '-'}`;
  assert.deepEqual(new Map(s.requests.map((r) => [key(r), r.count])), new Map([
    ['127.0.0.1:8001 200 http/1.1 -', 3], ['127.0.0.1:8002 503 http/1.1 -', 1], [' 503 http/1.1 -', 1], ['127.0.0.1:8001 200 h2 14', 1],
  ]));
  assert.ok(s.requests.every((r) => r.route === 'config:routes[0]' && r.service === 'web'));
  const lat = s.latency.get('config:routes[0]');
  assert.ok(lat);
  assert.deepEqual(lat.bounds, [...LATENCY_BUCKETS, Infinity]);
  // Cumulative: 0.0001 ≤ 1 ms; 0.003 ×3 and 0.004 ≤ 5 ms; 0.2 ≤ 250 ms; 6 in all.
  assert.equal(lat.counts[0], 1);
  assert.equal(lat.counts[LATENCY_BUCKETS.indexOf(0.005)], 5);
  assert.equal(lat.counts[LATENCY_BUCKETS.indexOf(0.25)], 6);
  assert.equal(lat.counts[lat.counts.length - 1], 6);
  assert.deepEqual([...s.ejections], [[b.id, 1]]);
  assert.equal(s.changeLatency.swap.buckets.counts.at(-1), 1);
  assert.equal(s.changeLatency.first_request.buckets.counts.at(-1), 1);
  assert.ok(Math.abs(s.changeLatency.first_request.sumSeconds - 0.02) < 1e-9);

  const text = await m.registry.metrics();
  assert.match(text, /^switchyard_lb_requests_total\{route="config:routes\[0\]",service="web",instance="127\.0\.0\.1:8001",protocol="http\/1\.1",grpc_status="",status="200"\} 3$/m);
  assert.match(text, /^switchyard_lb_requests_total\{[^}]*protocol="h2",grpc_status="14",status="200"\} 1$/m);
  assert.match(text, /^switchyard_lb_in_flight\{instance="127\.0\.0\.1:8001"\} 2$/m);
  assert.match(text, /^switchyard_lb_upstream_state\{service="web",instance="127\.0\.0\.1:8001",state="passing"\} 1$/m);
  assert.match(text, /^switchyard_lb_upstream_state\{service="web",instance="127\.0\.0\.1:8002",state="ejected"\} 1$/m);
  assert.match(text, /^switchyard_lb_guard_held_instances\{service="web"\} 2$/m);
  assert.match(text, /^switchyard_lb_draining_pools 1$/m);
  assert.match(text, /^switchyard_lb_h2_sessions 3$/m);
  assert.match(text, /^switchyard_lb_registry_connected 1$/m);
  assert.match(text, /^switchyard_lb_ejections_total\{instance="node\/web-2",reason="outlier"\} 1$/m);
});

it('a table swap hands the counts over before letting the old routes go: nothing counted is lost', async () => {
  const { m, route } = setup();
  const up = route.group.upstreams[0];
  m.proxy.request(route, up, 200, 0.001);
  m.tableSwapped(2, Date.now());
  m.proxy.request(route, up, 200, 0.001);
  const s = await m.read();
  assert.equal(s.requests.reduce((n, r) => n + r.count, 0), 2);
  assert.match(await m.registry.metrics(), /^switchyard_lb_table_generation 2$/m);
});

it('metrics that belong elsewhere are not registered: a primary without tables has no change latency, a worker no registry watch', async () => {
  const facts = { inFlight: () => [], registry: () => undefined, heldServices: () => [], upstreamStates: () => [], drainingPools: () => 0, h2Sessions: () => 0 };
  const primary = await new LbMetrics({ processMetrics: false, serving: false, following: true, facts }).registry.metrics();
  assert.doesNotMatch(primary, /switchyard_lb_change_latency_seconds/);
  assert.match(primary, /switchyard_lb_registry_stale/);
  const worker = await new LbMetrics({ processMetrics: false, serving: true, following: false, facts }).registry.metrics();
  assert.match(worker, /switchyard_lb_change_latency_seconds/);
  assert.doesNotMatch(worker, /switchyard_lb_registry_stale|switchyard_lb_guard_/);
});
