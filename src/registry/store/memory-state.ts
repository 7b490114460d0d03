// The in-memory key space (entries by key plus a sorted key index) and transaction evaluation over it.
import { SwitchyardError } from '../../core/errors.js';
import { ShardedMap } from '../../core/sharded-map.js';
import { SortedKeys, lowerBound } from '../../core/sorted-keys.js';
import type { StoreCompare, StoreEntry, StoreEvent, StoreOp, TxnRequest } from './types.js';

/**
 * Entries by key for O(1) reads, plus a lazily sorted key index so that a prefix range is a
 * binary search and a contiguous walk. Entries are frozen and shared, so two states (the store's
 * latest and published views) cost one map and one key index each, not two copies of the data.
 */
/** What transaction evaluation reads and writes: the store's latest key space. */
export interface TxnState {
  get(key: string): StoreEntry | undefined;
  set(entry: StoreEntry): void;
  /** Removes the key; returns the entry it held. */
  delete(key: string): StoreEntry | undefined;
  /** Live keys under a prefix, sorted. */
  keysWithPrefix(prefix: string): string[];
}

/**
 * Every entry of a state as of one moment, read later in pieces while the state goes on changing
 * (`MemoryState.pin`). `slice` has an array's meaning, so an array of entries is one too.
 */
export interface EntrySource {
  readonly length: number;
  slice(start: number, end: number): readonly StoreEntry[];
}

export interface PinnedEntries extends EntrySource {
  /** Stops keeping what changes after the pin; the state's writes cost nothing extra again. */
  release(): void;
}

export class MemoryState implements TxnState {
  /**
   * Entries by key. While `base` is set it holds only what differs from it or has been folded in
   * already, and `null` for a key deleted since (its base entry must not show through).
   */
  private readonly map = new ShardedMap<StoreEntry | null>();
  /**
   * The sorted entries a snapshot was loaded from, read by binary search until `foldIndex` has moved
   * them all into `map`. Filling a map of two million keys took 1.5 s of a restart; deferred, the agent
   * serves while it fills, a few milliseconds at a time (a lookup meanwhile costs a binary search).
   */
  private base: readonly StoreEntry[] | undefined;
  /** `base`'s keys, in the same order: what the binary search reads. */
  private baseKeys: readonly string[] = [];
  private folded = 0;
  /** Keys given a `null` in `map`: removed from it once `base` is gone. */
  private readonly deletedFromBase = new Set<string>();
  private count = 0;
  private readonly keys: SortedKeys;
  /** Open pins: each keeps the entry a key held at its pin before the key's first change since. */
  private readonly pins = new Set<Map<string, StoreEntry | null>>();

  /** Empty, or holding `sortedKeys` once the caller has put their entries in. */
  private constructor(sortedKeys: string[] = []) {
    this.keys = new SortedKeys(sortedKeys);
  }

  static empty(): MemoryState {
    return new MemoryState();
  }

  /**
   * A state holding `entries` (later duplicates win). Entries in strictly ascending key order, as
   * snapshots hold them, become the key index as they are (sorting a million keys again is most of
   * the cost otherwise) and are looked up in place until `foldIndex` has built the map.
   */
  static fromEntries(entries: readonly StoreEntry[]): MemoryState {
    let sorted = true;
    for (let i = 1; i < entries.length && sorted; i++) sorted = (entries[i - 1] as StoreEntry).key < (entries[i] as StoreEntry).key;
    if (!sorted) {
      const latest = new Map<string, StoreEntry>();
      for (const e of entries) latest.set(e.key, e);
      const state = new MemoryState([...latest.keys()].sort());
      for (const e of latest.values()) state.map.set(e.key, e);
      state.count = latest.size;
      return state;
    }
    const keys = entries.map((e) => e.key);
    const state = new MemoryState(keys);
    if (entries.length > 0) {
      state.base = entries;
      state.baseKeys = keys;
    }
    state.count = entries.length;
    return state;
  }

  get size(): number {
    return this.count;
  }

  /** Every key is in the map: nothing is left for `foldIndex`. */
  get indexed(): boolean {
    return this.base === undefined;
  }

  /**
   * Moves up to `max` more of the loaded entries into the map; true once all are there. Call it
   * until it says so, between other work: reads and writes are correct at every point.
   */
  foldIndex(max: number): boolean {
    const base = this.base;
    if (base === undefined) return true;
    const end = Math.min(base.length, this.folded + Math.max(1, max));
    const map = this.map;
    for (let i = this.folded; i < end; i++) {
      const e = base[i] as StoreEntry;
      if (!map.has(e.key)) map.set(e.key, e);
    }
    this.folded = end;
    if (end < base.length) return false;
    this.base = undefined;
    this.baseKeys = [];
    for (const k of this.deletedFromBase) if (map.get(k) === null) map.delete(k);
    this.deletedFromBase.clear();
    return true;
  }

  get(key: string): StoreEntry | undefined {
    const e = this.map.get(key);
    if (e !== undefined) return e ?? undefined;
    return this.base === undefined ? undefined : this.fromBase(key);
  }

  set(entry: StoreEntry): void {
    if (this.pins.size > 0) this.keep(entry.key);
    const existed = this.get(entry.key) !== undefined;
    this.map.set(entry.key, entry);
    if (!existed) {
      this.count++;
      this.keys.added(entry.key);
    }
  }

  delete(key: string): StoreEntry | undefined {
    const prev = this.get(key);
    if (prev === undefined) return undefined;
    if (this.pins.size > 0) this.keep(key);
    if (this.base === undefined) {
      this.map.delete(key);
    } else {
      this.map.set(key, null);
      this.deletedFromBase.add(key);
    }
    this.count--;
    this.keys.removed(key);
    return prev;
  }

  /** Live keys under a prefix, sorted. */
  keysWithPrefix(prefix: string): string[] {
    return this.keys.withPrefix(prefix);
  }

  range(prefix: string): StoreEntry[] {
    return this.keys.withPrefix(prefix).map((k) => this.get(k) as StoreEntry);
  }

  /** Every entry, sorted by key. */
  entries(): StoreEntry[] {
    return this.range('');
  }

  /**
   * Every entry, in no particular order: a walk of the map, not a lookup per sorted key. At two
   * million keys that is most of a second of a restart saved, for consumers that index the entries anyway.
   */
  entriesUnordered(): StoreEntry[] {
    const base = this.base;
    const out: StoreEntry[] = [];
    if (base !== undefined) {
      // Loaded entries the map has no word on; the map's own (changed or folded) come after. The map's
      // keys are found in the loaded array rather than each loaded key in the map: hashing two million
      // fresh key strings took 0.8 s of a restart, with the map holding only the log's few changes.
      const covered = new Uint8Array(base.length);
      this.map.forEach((_, k) => {
        const i = this.baseIndex(k);
        if (i >= 0) covered[i] = 1;
      });
      for (let i = 0; i < base.length; i++) if (covered[i] === 0) out.push(base[i] as StoreEntry);
    }
    this.map.forEach((e) => {
      if (e !== null) out.push(e);
    });
    return out;
  }

  /**
   * Every entry as of now, sorted by key, without building the list now: a snapshot of a million
   * instances read `entries()` in one piece, about a second of the event loop at 2 M keys. The key
   * order is the index's own array (merges build a new one, so it never changes under the pin), and
   * a key changed after the pin reads as it was. Until `release`, each write keeps one old entry.
   */
  pin(): PinnedEntries {
    const keys = this.keys.frozen();
    const kept = new Map<string, StoreEntry | null>();
    this.pins.add(kept);
    return {
      length: keys.length,
      // Every listed key existed at the pin: either it is unchanged, or `kept` has what it held.
      slice: (start, end) => keys.slice(start, end).map((k) => kept.get(k) ?? (this.get(k) as StoreEntry)),
      release: () => {
        this.pins.delete(kept);
      },
    };
  }

  private keep(key: string): void {
    const cur = this.get(key) ?? null;
    for (const kept of this.pins) if (!kept.has(key)) kept.set(key, cur);
  }

  private fromBase(key: string): StoreEntry | undefined {
    const i = this.baseIndex(key);
    return i < 0 ? undefined : (this.base as readonly StoreEntry[])[i];
  }

  /** Where `key` sits in the loaded entries, or -1. */
  private baseIndex(key: string): number {
    const i = lowerBound(this.baseKeys, key);
    return this.baseKeys[i] === key ? i : -1;
  }
}

export function makeEntry(key: string, value: string, revision: number, prev: StoreEntry | undefined): StoreEntry {
  return Object.freeze({
    key,
    value,
    createRevision: prev === undefined ? revision : prev.createRevision,
    modRevision: revision,
    version: prev === undefined ? 1 : prev.version + 1,
  });
}

function invalid(message: string): SwitchyardError {
  return new SwitchyardError('SY_ERR_INVALID_ARGUMENT', message);
}

function validateOps(ops: unknown, field: string, leases: boolean): void {
  if (!Array.isArray(ops)) throw invalid(`txn ${field} must be an array of operations`);
  for (const op of ops as unknown[]) {
    const o = op as Partial<Record<string, unknown>> | null;
    if (o === null || typeof o !== 'object') throw invalid(`txn ${field} holds a non-object operation`);
    switch (o['type']) {
      case 'put':
        if (typeof o['key'] !== 'string' || o['key'] === '') throw invalid(`txn ${field}: put needs a non-empty string key`);
        if (typeof o['value'] !== 'string') throw invalid(`txn ${field}: put of ${o['key']} needs a string value`);
        if (o['lease'] !== undefined && (!leases || typeof o['lease'] !== 'string' || !/^\d+$/.test(o['lease']))) {
          throw invalid(leases ? `txn ${field}: put of ${o['key']} has a malformed lease id` : `txn ${field}: put of ${o['key']} names a lease, which only the etcd store supports`);
        }
        break;
      case 'delete':
        if (typeof o['key'] !== 'string' || o['key'] === '') throw invalid(`txn ${field}: delete needs a non-empty string key`);
        break;
      case 'deletePrefix':
        if (typeof o['prefix'] !== 'string') throw invalid(`txn ${field}: deletePrefix needs a string prefix`);
        break;
      default:
        throw invalid(`txn ${field}: unknown operation type ${JSON.stringify(o['type'])}`);
    }
  }
}

/**
 * Checks the whole request before anything is applied: evaluation mutates state as it goes, so a
 * malformed op discovered half-way would leave a partial transaction behind.
 */
export function validateTxn(req: TxnRequest, opts: { leases?: boolean } = {}): void {
  if (req === null || typeof req !== 'object') throw invalid('txn request must be an object');
  const leases = opts.leases ?? false;
  validateOps(req.success, 'success', leases);
  if (req.failure !== undefined) validateOps(req.failure, 'failure', leases);
  if (req.compare !== undefined) {
    if (!Array.isArray(req.compare)) throw invalid('txn compare must be an array');
    for (const c of req.compare as unknown[]) {
      const cmp = c as Partial<Record<string, unknown>> | null;
      if (cmp === null || typeof cmp !== 'object' || typeof cmp['key'] !== 'string') throw invalid('txn compare needs a string key');
      if (cmp['target'] === 'modRevision') {
        if (typeof cmp['equals'] !== 'number' || !Number.isInteger(cmp['equals']) || cmp['equals'] < 0) {
          throw invalid(`txn compare on ${cmp['key']}: modRevision must equal a non-negative integer`);
        }
      } else if (cmp['target'] === 'exists') {
        if (typeof cmp['equals'] !== 'boolean') throw invalid(`txn compare on ${cmp['key']}: exists must equal a boolean`);
      } else {
        throw invalid(`txn compare on ${cmp['key']}: unknown target ${JSON.stringify(cmp['target'])}`);
      }
    }
  }
}

function compareHolds(state: TxnState, cmp: StoreCompare): boolean {
  const entry = state.get(cmp.key);
  if (cmp.target === 'modRevision') return (entry?.modRevision ?? 0) === cmp.equals;
  return (entry !== undefined) === cmp.equals;
}

export interface TxnOutcome {
  readonly succeeded: boolean;
  /** In application order; empty when nothing changed, and then no revision is consumed. */
  readonly events: StoreEvent[];
}

/**
 * Evaluates a validated request against `state` and applies it there at `revision`. Ops apply
 * in order, each seeing the ones before it, so "deletePrefix then put" in one transaction
 * leaves the put standing. deletePrefix expands to one delete per live key, in key order.
 */
export function applyTxn(state: TxnState, req: TxnRequest, revision: number): TxnOutcome {
  const succeeded = (req.compare ?? []).every((cmp) => compareHolds(state, cmp));
  const ops: readonly StoreOp[] = succeeded ? req.success : (req.failure ?? []);
  const events: StoreEvent[] = [];
  const remove = (key: string): void => {
    const prev = state.delete(key);
    if (prev !== undefined) events.push(Object.freeze({ type: 'delete', key, prev }));
  };
  for (const op of ops) {
    if (op.type === 'put') {
      const prev = state.get(op.key);
      const entry = makeEntry(op.key, op.value, revision, prev);
      state.set(entry);
      events.push(Object.freeze(prev === undefined ? { type: 'put', key: op.key, entry } : { type: 'put', key: op.key, entry, prev }));
    } else if (op.type === 'delete') {
      remove(op.key);
    } else {
      for (const key of state.keysWithPrefix(op.prefix)) remove(key);
    }
  }
  return { succeeded, events };
}

/** Applies already-evaluated events to another view (the published state) in order. */
export function applyEvents(state: MemoryState, events: readonly StoreEvent[]): void {
  for (const event of events) {
    if (event.type === 'put' && event.entry !== undefined) state.set(event.entry);
    else state.delete(event.key);
  }
}
