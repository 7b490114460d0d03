// The routing table kept change by change: a change to one service leaves every other
// service's group the same object, its round-robin position and slow-start ramp going on; and a
// table brought up to date through any sequence of changes routes exactly as one built from scratch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { UpstreamStates } from '../../src/balancer/index.js';
import { seededRandom } from '../../src/core/clock.js';
import type { RouteSpec } from '../../src/config/route-spec.js';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';
import { buildSnapshot } from '../../src/routing/snapshot.js';
import type { RoutingSnapshot } from '../../src/routing/snapshot.js';
import { SnapshotStore } from '../../src/routing/snapshot-store.js';
import { manualClock } from '../helpers/clock.js';

const silent = pino({ level: 'silent' });

function inst(service: string, n: number, tags: string[], extra: Partial<Instance> = {}): Instance {
  return { id: `node/${service}-${n}`, service, node: 'node', address: '127.0.0.1', port: 8000 + n, tags, meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing', ...extra };
}

function setOf(services: Record<string, Instance[]>): ServiceSet {
  return {
    catalog: new Map(Object.entries(services).map(([s, l]) => [s, [...new Set(l.flatMap((i) => i.tags))]])),
    instances: new Map(Object.entries(services)),
  };
}

describe('incremental table: a change to one service touches that service only', () => {
  it('keeps the other services\' groups as the same objects, with their round-robin position and slow-start ramp going on', () => {
    const clock = manualClock();
    const states = new UpstreamStates(clock);
    const store = new SnapshotStore({ specs: [], states, random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin', logger: silent });
    const a = [1, 2, 3].map((n) => inst('a', n, ['urlprefix-/a']));
    const slow = [inst('s', 5, ['urlprefix-/s slowstart=10s'])];
    const b1 = [inst('b', 7, ['urlprefix-/b'])];
    assert.ok(store.update(setOf({ a, b: b1, s: slow })));
    // A second instance of s arrives after the first table: it ramps up under slow start.
    const slow2 = [...slow, inst('s', 6, ['urlprefix-/s slowstart=10s'])];
    assert.ok(store.update({ ...setOf({ a, b: b1, s: slow2 }), changed: new Set(['s']) }));
    clock.advance(2000);
    const first = store.current as RoutingSnapshot;
    const groupA = first.match(undefined, '/a', {})?.group;
    const groupS = first.match(undefined, '/s', {})?.group;
    assert.ok(groupA && groupS);
    const ramp = groupS.strategy.rampFactor?.('node/s-6');
    assert.ok(ramp !== undefined && ramp > 0 && ramp < 1, `s-6 ramps (${String(ramp)})`);
    const pickA = (): string => (store.current as RoutingSnapshot).match(undefined, '/a', {})?.group.strategy.pick({})?.id ?? '-';
    assert.deepEqual([pickA(), pickA()], ['node/a-1', 'node/a-2']);

    // A change to b only (another instance), named as a source names it.
    const b2 = [...b1, inst('b', 8, ['urlprefix-/b'])];
    assert.ok(store.update({ ...setOf({ a, b: b2, s: slow2 }), changed: new Set(['b']) }));
    const second = store.current as RoutingSnapshot;
    assert.notEqual(second, first, 'a new snapshot');
    assert.equal(second.match(undefined, '/a', {})?.group, groupA, 'a\'s group is the same object');
    assert.equal(second.match(undefined, '/a', {}), first.match(undefined, '/a', {}), 'so is a\'s route');
    assert.equal(second.match(undefined, '/s', {})?.group, groupS, 's\'s group is the same object');
    assert.deepEqual(second.match(undefined, '/b', {})?.group.upstreams.map((u) => u.id), ['node/b-7', 'node/b-8']);
    assert.equal(first.match(undefined, '/b', {})?.group.upstreams.length, 1, 'the old snapshot still has the old b');
    // Round robin goes on where it stood (a-3 next), not back to a-1.
    assert.deepEqual([pickA(), pickA(), pickA()], ['node/a-3', 'node/a-1', 'node/a-2']);
    assert.equal(groupS.strategy.rampFactor?.('node/s-6'), ramp, 'the ramp stands where it stood');
    clock.advance(2000);
    assert.ok((groupS.strategy.rampFactor?.('node/s-6') ?? 1) > ramp, 'and goes on');

    // The same change given as a whole set (no hint, as a state file or a worker's first set): compared, still kept.
    assert.ok(store.update(setOf({ a: a.map((i) => ({ ...i })), b: b2, s: slow2 })));
    assert.equal((store.current as RoutingSnapshot).match(undefined, '/a', {})?.group, groupA, 'equal instances in new objects keep the group');
    assert.deepEqual([pickA()], ['node/a-3']);
  });

  it('reports the groups that joined and left with each swap (what the balancer drains and forgets)', () => {
    const store = new SnapshotStore({ specs: [], states: new UpstreamStates(), random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin', logger: silent });
    store.update(setOf({ a: [inst('a', 1, ['urlprefix-/a'])], b: [inst('b', 2, ['urlprefix-/b'])] }));
    const first = store.current as RoutingSnapshot;
    assert.deepEqual(first.changes.added.map((g) => g.service).sort(), ['a', 'b']);
    assert.deepEqual(first.changes.removed, []);
    store.update({ ...setOf({ a: [inst('a', 1, ['urlprefix-/a'])], b: [inst('b', 3, ['urlprefix-/b'])] }), changed: new Set(['b']) });
    const second = store.current as RoutingSnapshot;
    assert.deepEqual(second.changes.added.map((g) => g.upstreams.map((u) => u.id)), [['node/b-3']]);
    assert.deepEqual(second.changes.removed.map((g) => g.upstreams.map((u) => u.id)), [['node/b-2']]);
    store.update({ ...setOf({ a: [inst('a', 1, ['urlprefix-/a'])] }), changed: new Set(['b']) });
    assert.deepEqual((store.current as RoutingSnapshot).changes.removed.map((g) => g.service), ['b']);
    assert.equal((store.current as RoutingSnapshot).routeCount, 1);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Equivalence: incremental through random changes == built from scratch

const SERVICES = ['alpha', 'beta', 'delta', 'gamma'] as const;
const TAGS = [
  'urlprefix-/', 'urlprefix-/api', 'urlprefix-/api strip=/api', 'urlprefix-/api weight=0.2', 'urlprefix-/shop', 'urlprefix-/api/',
  'urlprefix-a.example/', 'urlprefix-*.example/x', 'urlprefix-/slow slowstart=5s', 'urlprefix-/lc balance=least_conn',
  'urlprefix-nopath', 'urlprefix-/bad balance=nope', 'urlprefix-/g proto=grpc', 'canary', 'v2', 'other',
];
const CONFIG: RouteSpec[] = [
  { origin: 'config:routes[0]', pathPrefix: '/api', headers: [], service: 'alpha', tags: [], balance: 'round_robin' },
  { origin: 'config:routes[1]', pathPrefix: '/split', headers: [], service: 'beta', tags: [], balance: 'round_robin', split: [{ tags: ['canary'], meta: [], weight: 10 }, { tags: [], meta: [], weight: 90 }], sticky: { kind: 'ip' } },
  { origin: 'config:routes[2]', pathPrefix: '/m', headers: [['x-v', '2']], service: 'gamma', tags: ['v2'], balance: 'hash', mirror: { service: 'delta', percent: 10 } },
  { origin: 'config:routes[3]', host: 'a.example', pathPrefix: '/', headers: [], service: 'delta', tags: [], balance: 'random' },
  { origin: 'config:routes[4]', pathPrefix: '/p', headers: [], service: 'alpha', tags: [], balance: 'p2c', slowStartMs: 3000 },
];
const PROBES: [string | undefined, string, Record<string, string>][] = [
  [undefined, '/', {}], [undefined, '/api/x', {}], [undefined, '/api', {}], [undefined, '/shop/1', {}], [undefined, '/split', {}], [undefined, '/m', { 'x-v': '2' }],
  [undefined, '/m', {}], ['a.example', '/', {}], ['b.example', '/x/y', {}], ['q.b.example', '/x', {}], [undefined, '/slow', {}], [undefined, '/lc', {}], [undefined, '/g', {}], [undefined, '/p', {}],
];

const instanceArb = fc.record({
  n: fc.integer({ min: 1, max: 4 }),
  tags: fc.subarray(TAGS, { maxLength: 4 }),
  port: fc.integer({ min: 1, max: 3 }),
  passing: fc.constantFrom(1, 2, 5),
  status: fc.constantFrom<'passing' | 'warning'>('passing', 'warning'),
  protocol: fc.constantFrom<string | undefined>(undefined, 'h2c', 'bogus'),
});
type InstanceGen = typeof instanceArb extends fc.Arbitrary<infer T> ? T : never;
/** One service's new state: gone, or in the catalog with these instances (possibly none). */
const entryArb = fc.option(fc.array(instanceArb, { maxLength: 4 }), { nil: undefined, freq: 4 });
const stepArb = fc.record({
  changes: fc.dictionary(fc.constantFrom(...SERVICES), entryArb, { minKeys: 1, maxKeys: 3 }),
  hinted: fc.boolean(),
});

function instancesOf(service: string, list: readonly InstanceGen[] | undefined): Instance[] | undefined {
  if (list === undefined) return undefined;
  const byId = new Map<string, Instance>();
  for (const x of list) {
    byId.set(`node/${service}-${x.n}`, inst(service, x.n, x.tags, {
      port: 9000 + x.port, status: x.status, weights: { passing: x.passing, warning: 1 }, meta: x.protocol === undefined ? {} : { protocol: x.protocol },
    }));
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** What routing a table does, in plain data: routes in order with their groups and shares, groups, errors, and probe answers. */
function routing(snap: RoutingSnapshot): unknown {
  const { builtAt: _b, version: _v, errors, ...rest } = snap.dump() as Record<string, unknown> & { errors: string[] };
  return {
    ...rest,
    errors: [...errors].sort(),
    probes: PROBES.map(([h, p, hd]) => snap.match(h, p, hd)?.spec.origin ?? null),
    needsHeaders: snap.needsHeaders,
    only: snap.only?.spec.origin ?? null,
    tcp: snap.groups.get('tcp:gamma|round_robin')?.upstreams.map((u) => u.id) ?? null,
  };
}

describe('incremental table: equivalence with a build from scratch', () => {
  it('routes, groups, splits, mirrors, TCP groups and errors match after any sequence of changes', () => {
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 12 }), (steps) => {
      const states = new UpstreamStates();
      const tcp = [{ service: 'gamma', balance: 'round_robin' as const }];
      const store = new SnapshotStore({ specs: CONFIG, states, random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin', logger: silent, tcp });
      const services: Record<string, Instance[] | undefined> = {};
      for (const step of steps) {
        for (const [s, list] of Object.entries(step.changes)) services[s] = instancesOf(s, list);
        const live = Object.entries(services).filter((e): e is [string, Instance[]] => e[1] !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
        const set = setOf(Object.fromEntries(live));
        assert.ok(store.update(step.hinted ? { ...set, changed: new Set(Object.keys(step.changes)) } : set));
        const fresh = buildSnapshot({ version: 1, specs: CONFIG, set, states, random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin', tcp });
        assert.deepEqual(routing(store.current as RoutingSnapshot), routing(fresh));
      }
    }), { numRuns: 400 });
  });
});

describe('incremental table with the mass-loss guard: told what changed, it holds what it holds when it looks at everything', () => {
  it('tables and held instances match between a store given each set\'s changed services and one given whole sets', () => {
    const withoutHoldTimes = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'heldUntil' ? undefined : x)));
    fc.assert(fc.property(fc.array(stepArb, { minLength: 1, maxLength: 12 }), (steps) => {
      // A long hold: nothing expires while the property runs, so both stores see the same books.
      const make = (): SnapshotStore => new SnapshotStore({ specs: CONFIG, states: new UpstreamStates(), random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin', logger: silent, guard: { maxDropPercent: 30, holdMs: 3_600_000 } });
      const hinted = make();
      const whole = make();
      const services: Record<string, Instance[] | undefined> = {};
      for (const step of steps) {
        for (const [s, list] of Object.entries(step.changes)) services[s] = instancesOf(s, list);
        const live = Object.entries(services).filter((e): e is [string, Instance[]] => e[1] !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
        const set = setOf(Object.fromEntries(live));
        assert.ok(hinted.update({ ...set, changed: new Set(Object.keys(step.changes)) }));
        assert.ok(whole.update(set));
        assert.deepEqual(hinted.guardState()?.held.map((h) => h.id), whole.guardState()?.held.map((h) => h.id));
        assert.deepEqual(withoutHoldTimes(routing(hinted.current as RoutingSnapshot)), withoutHoldTimes(routing(whole.current as RoutingSnapshot)));
      }
      hinted.close();
      whole.close();
    }), { numRuns: 300 });
  });
});
