// SortedKeys keeps its order lazily (one merge when a range is asked for); the merge skips asking which
// keys still exist when none was removed since the last one. Either way a range must equal the sorted
// live key set, whatever the interleaving of adds, deletes, re-adds and reads.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SortedKeys } from '../../src/core/sorted-keys.js';

type Op = { t: 'add'; k: string } | { t: 'del'; k: string } | { t: 'read'; prefix: string };

const key = fc.stringMatching(/^[ab]{0,3}$/);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('add' as const), k: key }),
  fc.record({ t: fc.constant('del' as const), k: key }),
  fc.record({ t: fc.constant('read' as const), prefix: fc.stringMatching(/^[ab]{0,2}$/) }),
);

describe('SortedKeys', () => {
  it('a range always equals the sorted live keys under its prefix', () => {
    fc.assert(fc.property(fc.uniqueArray(key, { maxLength: 8 }), fc.array(op, { maxLength: 60 }), (initial, ops) => {
      const live = new Set(initial);
      const keys = new SortedKeys((k) => live.has(k), [...initial].sort());
      for (const o of ops) {
        if (o.t === 'add') {
          // The contract: added() only for a key that did not exist.
          if (!live.has(o.k)) {
            live.add(o.k);
            keys.added(o.k);
          }
        } else if (o.t === 'del') {
          if (live.delete(o.k)) keys.removed(o.k);
        } else {
          assert.deepEqual(keys.withPrefix(o.prefix), [...live].filter((k) => k.startsWith(o.prefix)).sort());
        }
      }
      assert.deepEqual(keys.all(), [...live].sort());
    }), { numRuns: 2000, seed: 20261205 });
  });

  it('a few keys added, removed and re-added among many end up where a full merge puts them', () => {
    // Few changes to a long list take the copying path (fewer than one change per 64 listed keys).
    const word = fc.stringMatching(/^[a-d]{1,6}$/);
    // A change names a listed key or a new one, from a small pool, so that removals hit listed keys and
    // the same key is often added, removed and added again within one batch.
    const pool = fc.array(fc.oneof(fc.nat(), word), { minLength: 1, maxLength: 4 });
    const change = fc.record({ add: fc.boolean(), pick: fc.nat() });
    const batch = fc.array(change, { maxLength: 6 });
    fc.assert(fc.property(fc.uniqueArray(word, { minLength: 200, maxLength: 600 }), pool, fc.array(batch, { maxLength: 5 }), (initial, picks, raw) => {
      const names = picks.map((p) => (typeof p === 'number' ? (initial[p % initial.length] as string) : p));
      const batches = raw.map((b) => b.map(({ add, pick }) => ({ add, k: names[pick % names.length] as string })));
      const live = new Set(initial);
      const keys = new SortedKeys((k) => live.has(k), [...initial].sort());
      for (const batch of batches) {
        for (const { add, k } of batch) {
          if (add && !live.has(k)) {
            live.add(k);
            keys.added(k);
          } else if (!add && live.delete(k)) keys.removed(k);
        }
        assert.deepEqual(keys.all(), [...live].sort());
      }
    }), { numRuns: 500, seed: 20261205 });
  });

  it('a new key put where a removed one is cut out (the same position) lands once, in order', () => {
    const filler = Array.from({ length: 300 }, (_, i) => `z${String(i).padStart(3, '0')}`);
    const live = new Set(['b', 'd', ...filler]);
    const keys = new SortedKeys((k) => live.has(k), [...live].sort());
    live.delete('d');
    keys.removed('d');
    live.add('c');
    keys.added('c');
    assert.deepEqual(keys.all(), ['b', 'c', ...filler]);
  });
});
