// A MemoryState loaded from sorted entries (a snapshot) looks its keys up in the loaded array until
// foldIndex has moved them into its map, a piece at a time, while reads and writes go on. At every
// point, folded or not, it must answer exactly as a plain map of the same writes would.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryState, makeEntry } from '../../src/registry/store/memory-state.js';
import type { PinnedEntries } from '../../src/registry/store/memory-state.js';
import type { StoreEntry } from '../../src/registry/store/types.js';

type Op =
  | { t: 'put'; k: string; v: string }
  | { t: 'del'; k: string }
  | { t: 'fold'; n: number }
  | { t: 'pin' }
  | { t: 'release'; which: number }
  | { t: 'read'; prefix: string };

const key = fc.stringMatching(/^[abc]{1,3}$/);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('put' as const), k: key, v: fc.string({ maxLength: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('del' as const), k: key }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('fold' as const), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pin' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), which: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('read' as const), prefix: fc.stringMatching(/^[abc]{0,2}$/) }) },
);

const sortedEntries = (m: ReadonlyMap<string, StoreEntry>): StoreEntry[] => [...m.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

function readAll(p: PinnedEntries): StoreEntry[] {
  const out: StoreEntry[] = [];
  for (let i = 0; i < p.length; i += 2) out.push(...p.slice(i, i + 2));
  return out;
}

describe('MemoryState loaded from a snapshot', () => {
  it('answers as a plain map of the same writes before, during and after its key map is built', () => {
    fc.assert(fc.property(fc.uniqueArray(key, { maxLength: 20 }), fc.array(op, { maxLength: 80 }), (loaded, ops) => {
      let revision = 0;
      const model = new Map<string, StoreEntry>();
      for (const k of [...loaded].sort()) model.set(k, makeEntry(k, `v${k}`, ++revision, undefined));
      const state = MemoryState.fromEntries(sortedEntries(model));
      assert.equal(state.indexed, model.size === 0);
      const pins: { pin: PinnedEntries; expected: StoreEntry[] }[] = [];
      const check = (prefix: string): void => {
        assert.equal(state.size, model.size);
        for (const k of ['a', 'b', 'c', 'aa', 'ab', 'ba', 'cc', 'abc', 'ccc']) assert.equal(state.get(k), model.get(k), `get ${k}`);
        const under = sortedEntries(model).filter((e) => e.key.startsWith(prefix));
        assert.deepEqual(state.keysWithPrefix(prefix), under.map((e) => e.key));
        assert.deepEqual(state.range(prefix), under);
        assert.deepEqual(state.entries(), sortedEntries(model));
        const unordered = state.entriesUnordered();
        assert.equal(unordered.length, model.size);
        assert.deepEqual(sortedEntries(new Map(unordered.map((e) => [e.key, e]))), sortedEntries(model));
        for (const { pin, expected } of pins) assert.deepEqual(readAll(pin), expected);
      };
      for (const o of ops) {
        if (o.t === 'put') {
          const e = makeEntry(o.k, o.v, ++revision, state.get(o.k));
          assert.deepEqual(e, makeEntry(o.k, o.v, revision, model.get(o.k)));
          state.set(e);
          model.set(o.k, e);
        } else if (o.t === 'del') {
          assert.equal(state.delete(o.k), model.get(o.k));
          model.delete(o.k);
        } else if (o.t === 'fold') {
          state.foldIndex(o.n);
        } else if (o.t === 'pin') {
          pins.push({ pin: state.pin(), expected: sortedEntries(model) });
        } else if (o.t === 'release') {
          if (pins.length > 0) pins.splice(o.which % pins.length, 1)[0]?.pin.release();
        } else {
          check(o.prefix);
        }
      }
      check('');
      while (!state.foldIndex(3)) check('a');
      assert.equal(state.indexed, true);
      check('');
      // Once folded, the deletions of loaded keys leave nothing behind that a later write could trip on.
      for (const k of loaded) {
        state.set(makeEntry(k, 'again', ++revision, state.get(k)));
        model.set(k, state.get(k) as StoreEntry);
      }
      check('');
    }), { numRuns: 400, seed: 20261206 });
  });

  it('entries out of order (or repeated) are mapped at once, the later duplicate winning', () => {
    const a1 = makeEntry('a', '1', 1, undefined);
    const b = makeEntry('b', '2', 2, undefined);
    const a2 = makeEntry('a', '3', 3, a1);
    const state = MemoryState.fromEntries([b, a1, a2]);
    assert.equal(state.indexed, true);
    assert.equal(state.size, 2);
    assert.equal(state.get('a'), a2);
    assert.deepEqual(state.keysWithPrefix(''), ['a', 'b']);
  });

  it('a loaded state is looked up without a map until folded, and each fold moves at most the pieces asked for', () => {
    const entries = Array.from({ length: 10 }, (_, i) => makeEntry(`k${i}`, String(i), i + 1, undefined));
    const state = MemoryState.fromEntries(entries);
    assert.equal(state.indexed, false);
    assert.equal(state.get('k7'), entries[7]);
    assert.equal(state.foldIndex(4), false);
    assert.equal(state.foldIndex(4), false);
    assert.equal(state.indexed, false);
    assert.equal(state.foldIndex(4), true);
    assert.equal(state.indexed, true);
    assert.equal(state.get('k7'), entries[7]);
    assert.equal(state.foldIndex(4), true);
  });
});
