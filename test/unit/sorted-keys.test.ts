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
          if (live.delete(o.k)) keys.removed();
        } else {
          assert.deepEqual(keys.withPrefix(o.prefix), [...live].filter((k) => k.startsWith(o.prefix)).sort());
        }
      }
      assert.deepEqual(keys.all(), [...live].sort());
    }), { numRuns: 2000, seed: 20261205 });
  });

  it('a few keys added among many are placed as a full merge would place them', () => {
    // Few additions into a long list take the copying path (fewer than one per 64 listed keys).
    const word = fc.stringMatching(/^[a-d]{1,6}$/);
    fc.assert(fc.property(fc.uniqueArray(word, { minLength: 200, maxLength: 600 }), fc.array(fc.array(word, { maxLength: 4 }), { maxLength: 5 }), (initial, batches) => {
      const live = new Set(initial);
      const keys = new SortedKeys((k) => live.has(k), [...initial].sort());
      for (const batch of batches) {
        for (const k of batch) {
          if (!live.has(k)) {
            live.add(k);
            keys.added(k);
          }
        }
        assert.deepEqual(keys.all(), [...live].sort());
      }
    }), { numRuns: 300, seed: 20261205 });
  });
});
