// The store's key index at a million instances (2 M keys): what one read costs right after a change, and what a
// snapshot costs the event loop to start. Each of these used to walk or merge the whole index on the event loop.
// Usage: node --import tsx bench/scale/key-index.ts [keys=2000000] [repeats=5]
import { MemoryState } from '../../src/registry/store/memory-state.js';
import type { StoreEntry } from '../../src/registry/store/types.js';

const n = Number(process.argv[2] ?? 2_000_000);
const repeats = Number(process.argv[3] ?? 5);
const entry = (key: string, rev: number): StoreEntry => Object.freeze({ key, value: '{}', createRevision: rev, modRevision: rev, version: 1 });
const keys: string[] = [];
for (let i = 0; i < n; i++) keys.push(`s/n-${Math.floor(i / 100)}/i-${String(i).padStart(7, '0')}`);
keys.sort();
const state = MemoryState.fromEntries(keys.map((k, i) => entry(k, i + 1)));
let rev = n;

const timed = (f: () => void): number => {
  const t = performance.now();
  f();
  return performance.now() - t;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const rows: [string, number[]][] = [
  ['new key registered, then one prefix read (ms)', []],
  ['key deregistered, then one prefix read (ms)', []],
  ['snapshot start: entries() (ms)', []],
  ['snapshot start: pin() after a new key (ms)', []],
];
for (let r = 0; r < repeats; r++) {
  state.set(entry(`s/n-new/i-${r}`, ++rev));
  rows[0]?.[1].push(timed(() => state.keysWithPrefix('s/n-5/')));
  state.delete(keys[r * 1000] as string);
  rows[1]?.[1].push(timed(() => state.keysWithPrefix('s/n-5/')));
  rows[2]?.[1].push(timed(() => state.entries()));
  state.set(entry(`s/n-new/j-${r}`, ++rev));
  let pin: ReturnType<MemoryState['pin']> | undefined;
  rows[3]?.[1].push(timed(() => (pin = state.pin())));
  pin?.release();
}
console.log(`${n} keys, ${repeats} repeats (min / median / max)`);
for (const [what, xs] of rows) console.log(`${what}: ${Math.min(...xs).toFixed(1)} / ${median(xs).toFixed(1)} / ${Math.max(...xs).toFixed(1)}`);
