// The mass-loss guard on its own, on explicit times: which losses it holds, for how long, and
// what lets instances go at once (critical checks, coming back, a redeploy under new IDs).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';
import { LossGuard } from '../../src/routing/loss-guard.js';
import type { GuardEvent } from '../../src/routing/loss-guard.js';
import { ChangeClock } from '../../src/discovery/change-clock.js';

const inst = (service: string, n: string): Instance => ({
  id: `node/${service}-${n}`, service, node: 'node', address: '127.0.0.1', port: 1000 + Number(n.replace(/\D/g, '') || 0), tags: ['urlprefix-/'], meta: {},
  weights: { passing: 1, warning: 1 }, status: 'passing',
});

/** A set with these instance names per service; `critical` names are listed by the registry but critical. */
function set(services: Record<string, string[]>, critical: Record<string, string[]> = {}): ServiceSet {
  const names = Object.keys(services).filter((s) => services[s]!.length > 0 || (critical[s] ?? []).length > 0);
  return {
    catalog: new Map(names.map((s) => [s, ['urlprefix-/']])),
    instances: new Map(Object.entries(services).map(([s, l]) => [s, l.map((n) => inst(s, n))])),
    critical: new Map(Object.entries(critical).map(([s, l]) => [s, l.map((n) => `node/${s}-${n}`)])),
  };
}

const ids = (s: ServiceSet, service: string): string[] => (s.instances.get(service) ?? []).map((i) => i.id.replace(`node/${service}-`, ''));

/** Feeds sets one after another as the snapshot store does (the previous output is the next `prev`). */
class Run {
  readonly guard: LossGuard;
  prev: ServiceSet | undefined;
  events: GuardEvent[] = [];
  constructor(maxDropPercent = 50, holdMs = 30_000) {
    this.guard = new LossGuard({ maxDropPercent, holdMs });
  }

  feed(raw: ServiceSet, now: number): ServiceSet {
    const r = this.guard.apply(this.prev, raw, now);
    this.events.push(...r.events);
    this.prev = r.set;
    return r.set;
  }
}

describe('mass-loss guard', () => {
  it('holds a 3 → 0 deregistration for the hold time, then lets the instances go', () => {
    const r = new Run();
    r.feed(set({ web: ['1', '2', '3'] }), 0);
    const held = r.feed(set({}), 1000);
    assert.deepEqual(ids(held, 'web'), ['1', '2', '3']);
    assert.deepEqual(held.catalog.get('web'), ['urlprefix-/'], 'the service keeps its tags (its tag routes stay)');
    assert.deepEqual(r.guard.held().map((h) => [h.id, h.since, h.until]), [['node/web-1', 1000, 31_000], ['node/web-2', 1000, 31_000], ['node/web-3', 1000, 31_000]]);
    assert.equal(r.guard.nextRelease(), 31_000);
    assert.deepEqual(ids(r.feed(set({}), 30_999), 'web'), ['1', '2', '3'], 'still held just before the end');
    const after = r.feed(set({}), 31_000);
    assert.deepEqual(ids(after, 'web'), []);
    assert.equal(after.catalog.has('web'), false);
    assert.equal(r.guard.nextRelease(), undefined);
    assert.deepEqual(r.events.map((e) => `${e.kind}:${e.kind === 'released' ? e.reason : e.lostPercent}`), ['held:100', 'released:expired']);
    assert.deepEqual(ids(r.feed(set({}), 40_000), 'web'), [], 'released instances are not held again');
  });

  it('lets a 3 → 0 critical-check transition through at once', () => {
    const r = new Run();
    r.feed(set({ web: ['1', '2', '3'] }), 0);
    const out = r.feed(set({ web: [] }, { web: ['1', '2', '3'] }), 1000);
    assert.deepEqual(ids(out, 'web'), []);
    assert.deepEqual(r.events, []);
  });

  it('counts a burst split over several answers as one: 3 → 2 → 0 holds all three', () => {
    const r = new Run();
    r.feed(set({ web: ['1', '2', '3'] }), 0);
    assert.deepEqual(ids(r.feed(set({ web: ['2', '3'] }), 100), 'web'), ['2', '3'], 'one of three is under the limit');
    assert.deepEqual(ids(r.feed(set({ web: [] }), 200), 'web'), ['1', '2', '3'], 'the earlier loss is brought back');
    const h = r.guard.held();
    assert.deepEqual(h.map((x) => [x.id, x.until]), [['node/web-1', 30_100], ['node/web-2', 30_200], ['node/web-3', 30_200]]);
  });

  it('lets losses spread wider than the window through', () => {
    const r = new Run(50, 1000);
    r.feed(set({ web: ['1', '2', '3'] }), 0);
    r.feed(set({ web: ['2', '3'] }), 0);
    assert.deepEqual(ids(r.feed(set({ web: ['3'] }), 2000), 'web'), ['3'], 'the first loss is out of the window: one of two');
  });

  it('takes exactly max-drop, holds more; max-drop 100 is off', () => {
    const half = new Run(50);
    half.feed(set({ web: ['1', '2', '3', '4'] }), 0);
    assert.deepEqual(ids(half.feed(set({ web: ['3', '4'] }), 1), 'web'), ['3', '4'], '50 % is not more than 50 %');
    const more = new Run(50);
    more.feed(set({ web: ['1', '2', '3', '4'] }), 0);
    assert.deepEqual(ids(more.feed(set({ web: ['4'] }), 1), 'web'), ['1', '2', '3', '4']);
    const off = new Run(100);
    off.feed(set({ web: ['1', '2', '3'] }), 0);
    assert.deepEqual(ids(off.feed(set({}), 1), 'web'), []);
  });

  it('releases held instances at once when they come back, turn critical, or new instances replace them', () => {
    const r = new Run();
    r.feed(set({ web: ['1', '2', '3'], api: ['1', '2'], db: ['1', '2'] }), 0);
    r.feed(set({ web: [], api: [], db: [] }), 10);
    assert.equal(r.guard.held().length, 7);
    const out = r.feed(set({ web: ['1', '2', '3'], api: [], db: ['7', '8'] }, { api: ['1', '2'] }), 20);
    assert.deepEqual(ids(out, 'web'), ['1', '2', '3']);
    assert.deepEqual(ids(out, 'api'), [], 'critical now: gone');
    assert.deepEqual(ids(out, 'db'), ['7', '8'], 'two new instances for two lost: nothing lost on balance');
    assert.deepEqual(r.guard.held(), []);
    const reasons = r.events.filter((e) => e.kind === 'released').map((e) => `${e.service}:${e.kind === 'released' ? e.reason : ''}`).sort();
    assert.deepEqual(reasons, ['api:critical', 'db:recovered', 'web:returned']);
  });

  it('does not guard the first table, and a redeploy under new IDs is no loss', () => {
    const r = new Run();
    assert.deepEqual(ids(r.feed(set({ web: ['1'] }), 0), 'web'), ['1']);
    assert.deepEqual(ids(r.feed(set({ web: ['4', '5', '6'] }), 1), 'web'), ['4', '5', '6']);
    assert.deepEqual(ids(r.feed(set({ web: ['7', '8', '9'] }), 2), 'web'), ['7', '8', '9']);
    assert.deepEqual(r.events, []);
  });
});

describe('change clock', () => {
  it('stamps a set with its oldest new change, never the first set or a re-read of known state', () => {
    const c = new ChangeClock();
    c.note('catalog', 1000, 5000);
    c.note('health/a', 1000, 5000);
    assert.equal(c.take(true), undefined, 'the first set is the state as found');
    c.note('health/b', 900, 5100);
    assert.equal(c.take(true), undefined, 'a new watch reading old state carries no change');
    c.note('health/a', 2000, 5200);
    c.note('health/b', 1500, 5200);
    assert.deepEqual(c.take(true), { committedAt: 1500, clock: 'registry' }, 'a burst is measured from its oldest change');
    c.note('health/a', 2000, 5300);
    assert.equal(c.take(true), undefined, 'a re-read of the same index (after an index reset) is no change');
    c.note('health/a', 3000, 5400);
    assert.deepEqual(c.take(true), { committedAt: 3000, clock: 'registry' });
    c.note('health/a', undefined, 6000);
    assert.deepEqual(c.take(true), { committedAt: 6000, clock: 'arrival' }, 'without the header the arrival stands in');
    assert.equal(c.clock, 'arrival');
  });

  it('a change seen first on a watch whose answer changes nothing still counts when it reaches the watch that does', () => {
    const c = new ChangeClock();
    c.note('catalog', 1000, 5000);
    c.note('health/a', 1000, 5000);
    c.take(true);
    // A registration touches the service list (same names: nothing to emit) and the service's health.
    c.note('catalog', 2000, 5100);
    assert.equal(c.take(false), undefined);
    c.note('health/a', 2000, 5110);
    assert.deepEqual(c.take(true), { committedAt: 2000, clock: 'registry' });
  });
});

describe('mass-loss guard: a change elsewhere is not a second look at a finished redeploy', () => {
  it('an instance replaced under a new ID is not held when another service changes later', () => {
    const run = new Run(30);
    run.feed(set({ web: ['1'], api: ['1'] }), 0);
    run.feed(set({ web: ['2'], api: ['1'] }), 1000);
    assert.deepEqual(run.events, [], 'a replacement is no loss');
    // Looking at web again counted web-1 (lost) against web-2 (its replacement): 1 of 2 gone, 50 % > 30 %, held.
    const out = run.feed(set({ web: ['2'], api: ['1', '2'] }), 2000);
    assert.deepEqual(ids(out, 'web'), ['2']);
    assert.deepEqual(run.events, []);
  });
});
