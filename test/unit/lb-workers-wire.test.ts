// What a primary sends its workers per swap: the whole set to a new worker, then the services each swap changed;
// a worker that missed a set does not apply a delta on top of the wrong one.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { WorkerSet, wire } from '../../src/cli/wiring/lb-workers.js';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';

const inst = (service: string, port: number): Instance => ({ id: `n/${service}`, service, node: 'n', address: '127.0.0.1', port, tags: [], meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing' });
const plain = (s: ServiceSet | undefined): unknown => (s ? { catalog: [...s.catalog], instances: [...s.instances], changed: s.changed ? [...s.changed].sort() : null } : undefined);
const setOf = (svcs: Record<string, number>, changed?: string[]): ServiceSet => ({
  catalog: new Map(Object.keys(svcs).map((s) => [s, []])), instances: new Map(Object.entries(svcs).map(([s, p]) => [s, [inst(s, p)]])), ...(changed ? { changed: new Set(changed) } : {}),
});
const payload = (m: ReturnType<typeof wire>): Parameters<WorkerSet['take']>[0] => {
  assert.equal(m.type, 'set');
  // Through JSON, as node:cluster's IPC carries it.
  return JSON.parse(JSON.stringify((m as { set: unknown }).set)) as Parameters<WorkerSet['take']>[0];
};

it('a delta carries the changed services only, and a worker applies it on the set it has', () => {
  const w = new WorkerSet();
  assert.deepEqual(plain(w.take(payload(wire(setOf({ a: 1, b: 2, c: 3 }), 1)))), plain(setOf({ a: 1, b: 2, c: 3 })));
  const delta = payload(wire(setOf({ a: 1, b: 9 }, ['b', 'c']), 2, 1));
  assert.deepEqual(delta.instances.map(([n]) => n), ['b', 'c'], 'only the changed services travel');
  assert.deepEqual(plain(w.take(delta)), plain(setOf({ a: 1, b: 9 }, ['b', 'c'])), 'b changed, c gone, a kept');
});

it('a worker that missed a set refuses a delta on it (and asks for the whole set), then takes the whole set', () => {
  const w = new WorkerSet();
  assert.equal(w.take(payload(wire(setOf({ a: 1 }, ['a']), 5, 4))), undefined, 'no set yet');
  w.take(payload(wire(setOf({ a: 1 }), 5)));
  assert.equal(w.take(payload(wire(setOf({ a: 2 }, ['a']), 7, 6))), undefined, 'set 6 was missed');
  assert.deepEqual(plain(w.take(payload(wire(setOf({ a: 3, b: 4 }), 7)))), plain(setOf({ a: 3, b: 4 })));
});

it('through any sequence of sets, with some lost on the way, a worker holds its primary\'s set or asks for the whole one', () => {
  const names = ['a', 'b', 'c', 'd'];
  const step = fc.record({
    ports: fc.array(fc.option(fc.constantFrom(1, 2, 3), { nil: undefined }), { minLength: names.length, maxLength: names.length }),
    extra: fc.subarray(names), // `changed` may name services that did not change (a source that cannot tell)
    whole: fc.boolean(), // a set without `changed` (a failed build, a source's first set)
    lost: fc.boolean(), // this set never reaches the worker
  });
  fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
    const w = new WorkerSet();
    let seq = 0;
    let prev: Record<string, number> | undefined;
    let asked = 0;
    for (const s of steps) {
      const now = Object.fromEntries(names.flatMap((n, i) => (s.ports[i] === undefined ? [] : [[n, s.ports[i] as number]])));
      const moved = names.filter((n) => now[n] !== prev?.[n]);
      const set = setOf(now, s.whole ? undefined : [...new Set([...moved, ...s.extra])]);
      const msg = wire(set, ++seq, prev === undefined ? undefined : seq - 1);
      prev = now;
      if (s.lost) continue;
      let got = w.take(payload(msg));
      if (got === undefined) {
        // The worker's 'ready': the primary answers with its current set, whole.
        asked++;
        got = w.take(payload(wire(set, seq)));
      }
      assert.deepEqual(plain(got && { catalog: got.catalog, instances: got.instances }), plain({ catalog: set.catalog, instances: set.instances }));
    }
    // A worker that lost a set asks at most once per set it receives.
    assert.ok(asked <= steps.filter((s) => !s.lost).length);
  }), { numRuns: 300 });
});
