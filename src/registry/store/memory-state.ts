// The in-memory key space (entries by key plus a sorted key index) and transaction evaluation over it.
import { SwitchyardError } from '../../core/errors.js';
import { SortedKeys } from '../../core/sorted-keys.js';
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
  private readonly map: Map<string, StoreEntry>;
  private readonly keys: SortedKeys;
  /** Open pins: each keeps the entry a key held at its pin before the key's first change since. */
  private readonly pins = new Set<Map<string, StoreEntry | null>>();

  constructor(map?: Map<string, StoreEntry>, sortedKeys?: string[]) {
    const m = map ?? new Map<string, StoreEntry>();
    this.map = m;
    this.keys = new SortedKeys(sortedKeys ?? (map ? [...map.keys()].sort() : []));
  }

  /**
   * A state holding `entries` (later duplicates win). Entries in key order, as snapshots hold them,
   * become the key index as they are: sorting a million keys again is most of the cost otherwise.
   */
  static fromEntries(entries: readonly StoreEntry[]): MemoryState {
    const map = new Map<string, StoreEntry>();
    let sorted = true;
    let prev: string | undefined;
    for (const e of entries) {
      if (prev !== undefined && !(prev < e.key)) sorted = false;
      prev = e.key;
      map.set(e.key, e);
    }
    return new MemoryState(map, sorted ? entries.map((e) => e.key) : undefined);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): StoreEntry | undefined {
    return this.map.get(key);
  }

  set(entry: StoreEntry): void {
    if (this.pins.size > 0) this.keep(entry.key);
    const existed = this.map.has(entry.key);
    this.map.set(entry.key, entry);
    if (!existed) this.keys.added(entry.key);
  }

  delete(key: string): StoreEntry | undefined {
    const prev = this.map.get(key);
    if (prev === undefined) return undefined;
    if (this.pins.size > 0) this.keep(key);
    this.map.delete(key);
    this.keys.removed(key);
    return prev;
  }

  /** Live keys under a prefix, sorted. */
  keysWithPrefix(prefix: string): string[] {
    return this.keys.withPrefix(prefix);
  }

  range(prefix: string): StoreEntry[] {
    return this.keys.withPrefix(prefix).map((k) => this.map.get(k) as StoreEntry);
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
    return Array.from(this.map.values());
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
    const map = this.map;
    return {
      length: keys.length,
      // Every listed key existed at the pin: either it is unchanged, or `kept` has what it held.
      slice: (start, end) => keys.slice(start, end).map((k) => kept.get(k) ?? (map.get(k) as StoreEntry)),
      release: () => {
        this.pins.delete(kept);
      },
    };
  }

  private keep(key: string): void {
    const cur = this.map.get(key) ?? null;
    for (const kept of this.pins) if (!kept.has(key)) kept.set(key, cur);
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
