// SortedKeys (the store's key index, the view's KV keys and service names) against a plain Set: whatever the
// interleaving of adds, removes, re-adds and reads, a prefix read and the full list equal the sorted live keys;
// enough keys to split chunks many times; and a frozen view reads, at any later time and in any pieces, the keys
// of its moment while the set goes on changing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SortedKeys } from '../../src/core/sorted-keys.js';
import type { FrozenKeys } from '../../src/core/sorted-keys.js';

type Op = { t: 'add'; k: string } | { t: 'del'; k: string } | { t: 'read'; prefix: string };

const key = fc.stringMatching(/^[ab]{0,3}$/);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('add' as const), k: key }),
  fc.record({ t: fc.constant('del' as const), k: key }),
  fc.record({ t: fc.constant('read' as const), prefix: fc.stringMatching(/^[ab]{0,2}$/) }),
);

/** Chunk sizes: tiny ones split and empty chunks all the time; undefined is the real size. */
const chunkSize = fc.constantFrom(2, 3, 4, 16, undefined);

describe('SortedKeys', () => {
  it('a range always equals the sorted live keys under its prefix', () => {
    fc.assert(fc.property(fc.uniqueArray(key, { maxLength: 8 }), fc.array(op, { maxLength: 60 }), chunkSize, (initial, ops, chunk) => {
      const live = new Set(initial);
      const keys = new SortedKeys([...initial].sort(), chunk);
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
    const word = fc.stringMatching(/^[a-d]{1,6}$/);
    // A change names a listed key or a new one, from a small pool, so that removals hit listed keys and
    // the same key is often added, removed and added again within one batch.
    const pool = fc.array(fc.oneof(fc.nat(), word), { minLength: 1, maxLength: 4 });
    const change = fc.record({ add: fc.boolean(), pick: fc.nat() });
    const batch = fc.array(change, { maxLength: 6 });
    fc.assert(fc.property(fc.uniqueArray(word, { minLength: 200, maxLength: 600 }), pool, fc.array(batch, { maxLength: 5 }), chunkSize, (initial, picks, raw, chunk) => {
      const names = picks.map((p) => (typeof p === 'number' ? (initial[p % initial.length] as string) : p));
      const batches = raw.map((b) => b.map(({ add, pick }) => ({ add, k: names[pick % names.length] as string })));
      const live = new Set(initial);
      const keys = new SortedKeys([...initial].sort(), chunk);
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

  it('a new key put where a removed one was lands once, in order', () => {
    const filler = Array.from({ length: 300 }, (_, i) => `z${String(i).padStart(3, '0')}`);
    const live = new Set(['b', 'd', ...filler]);
    const keys = new SortedKeys([...live].sort());
    live.delete('d');
    keys.removed('d');
    live.add('c');
    keys.added('c');
    assert.deepEqual(keys.all(), ['b', 'c', ...filler]);
  });

  it('thousands of keys added in any order and many removed (chunks split and empty) read as the sorted live set', () => {
    const word = fc.stringMatching(/^[a-f]{1,7}$/);
    fc.assert(fc.property(fc.uniqueArray(word, { minLength: 600, maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 2000 }), fc.array(fc.stringMatching(/^[a-f]{0,3}$/), { maxLength: 5 }), chunkSize, (words, removals, prefixes, chunk) => {
      const live = new Set<string>();
      const keys = new SortedKeys([], chunk);
      for (const w of words) {
        live.add(w);
        keys.added(w);
      }
      for (const r of removals) {
        const w = words[r % words.length] as string;
        if (live.delete(w)) keys.removed(w);
      }
      const sorted = [...live].sort();
      assert.deepEqual(keys.all(), sorted);
      assert.equal(keys.size, sorted.length);
      for (const p of prefixes) assert.deepEqual(keys.withPrefix(p), sorted.filter((k) => k.startsWith(p)));
    }), { numRuns: 60, seed: 20261205 });
  });

  it('a frozen view reads the keys of its moment, in any pieces, while the set goes on changing', () => {
    const word = fc.stringMatching(/^[a-e]{1,6}$/);
    const step = fc.oneof(
      { weight: 8, arbitrary: fc.record({ t: fc.constant('add' as const), k: word }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant('del' as const), k: word }) },
      { weight: 1, arbitrary: fc.record({ t: fc.constant('freeze' as const) }) },
    );
    fc.assert(fc.property(fc.uniqueArray(word, { maxLength: 1500 }), fc.array(step, { maxLength: 3000 }), fc.integer({ min: 1, max: 700 }), chunkSize, (initial, steps, piece, chunk) => {
      const live = new Set(initial);
      const keys = new SortedKeys([...initial].sort(), chunk);
      const views: { view: FrozenKeys; expected: string[] }[] = [];
      for (const s of steps) {
        if (s.t === 'add' && !live.has(s.k)) {
          live.add(s.k);
          keys.added(s.k);
        } else if (s.t === 'del' && live.delete(s.k)) keys.removed(s.k);
        else if (s.t === 'freeze') views.push({ view: keys.frozen(), expected: [...live].sort() });
      }
      for (const { view, expected } of views) {
        assert.equal(view.length, expected.length);
        const read: string[] = [];
        for (let i = 0; i < view.length; i += piece) read.push(...view.slice(i, i + piece));
        assert.deepEqual(read, expected);
      }
      assert.deepEqual(keys.all(), [...live].sort());
    }), { numRuns: 100, seed: 20261205 });
  });
});
