// A pinned MemoryState (what a snapshot reads while writes go on) must read, piece by piece and at any
// later time, exactly the entries the state held at the pin, whatever was put, overwritten, deleted or
// re-added since; several pins at once each keep their own moment, and a released pin keeps nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryState, makeEntry } from '../../src/registry/store/memory-state.js';
import type { PinnedEntries } from '../../src/registry/store/memory-state.js';
import type { StoreEntry } from '../../src/registry/store/types.js';

type Op = { t: 'put'; k: string; v: string } | { t: 'del'; k: string } | { t: 'pin' } | { t: 'release'; which: number } | { t: 'read' };

const key = fc.stringMatching(/^[abc]{1,3}$/);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('put' as const), k: key, v: fc.string({ maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: key }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('pin' as const) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('release' as const), which: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('read' as const) }) },
);

/** Reads a pin in uneven pieces, as the snapshot writer reads it in chunks. */
function readAll(p: PinnedEntries, piece: number): StoreEntry[] {
  const out: StoreEntry[] = [];
  for (let i = 0; i < p.length; i += piece) out.push(...p.slice(i, i + piece));
  return out;
}

describe('MemoryState.pin', () => {
  it('reads the entries of the moment it was taken, while the state goes on changing', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 1, max: 4 }), (ops, piece) => {
      const state = MemoryState.empty();
      let revision = 0;
      const open: { pin: PinnedEntries; expected: StoreEntry[] }[] = [];
      const check = (): void => {
        for (const { pin, expected } of open) assert.deepEqual(readAll(pin, piece), expected);
      };
      for (const o of ops) {
        if (o.t === 'put') state.set(makeEntry(o.k, o.v, ++revision, state.get(o.k)));
        else if (o.t === 'del') state.delete(o.k);
        else if (o.t === 'pin') open.push({ pin: state.pin(), expected: state.entries() });
        else if (o.t === 'release' && open.length > 0) open.splice(o.which % open.length, 1)[0]?.pin.release();
        else check();
      }
      check();
      for (const { pin } of open) pin.release();
    }), { numRuns: 500, seed: 20261205 });
  });

  it('a released pin keeps no old entries', () => {
    const state = MemoryState.empty();
    state.set(makeEntry('a', '1', 1, undefined));
    const pin = state.pin();
    pin.release();
    state.set(makeEntry('a', '2', 2, state.get('a')));
    // Released: it is not kept, so the pin (which must not be read any more) sees the new entry.
    assert.equal(pin.slice(0, 1)[0]?.value, '2');
  });
});
