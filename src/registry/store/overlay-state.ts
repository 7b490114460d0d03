// The embedded store's `latest` key space: the published (durable) state plus the changes evaluated but not yet durable.
import type { MemoryState, TxnState } from './memory-state.js';
import type { StoreEntry, StoreEvent } from './types.js';

/** Marks a key deleted by a change not yet published; `prev` (the entry it removed) identifies the delete. */
interface Tombstone {
  readonly tomb: true;
  readonly prev: StoreEntry;
}

const isTomb = (v: StoreEntry | Tombstone): v is Tombstone => 'tomb' in v;

/**
 * Reads fall through to the published state unless a pending change covers the key, so the store
 * holds one map of every key instead of two (latest and published), and opening it costs no copy.
 * Once a change is published its overlay entries are dropped again (matched by identity: a later
 * pending change to the same key keeps its own), so the overlay holds only the writes in flight.
 */
export class OverlayState implements TxnState {
  readonly #base: MemoryState;
  readonly #over = new Map<string, StoreEntry | Tombstone>();

  constructor(base: MemoryState) {
    this.#base = base;
  }

  /** Keys covered by pending changes. */
  get pending(): number {
    return this.#over.size;
  }

  get(key: string): StoreEntry | undefined {
    const o = this.#over.get(key);
    if (o === undefined) return this.#base.get(key);
    return isTomb(o) ? undefined : o;
  }

  set(entry: StoreEntry): void {
    this.#over.set(entry.key, entry);
  }

  delete(key: string): StoreEntry | undefined {
    const prev = this.get(key);
    if (prev === undefined) return undefined;
    this.#over.set(key, { tomb: true, prev });
    return prev;
  }

  keysWithPrefix(prefix: string): string[] {
    const base = this.#base.keysWithPrefix(prefix);
    if (this.#over.size === 0) return base;
    const out = base.filter((k) => {
      const o = this.#over.get(k);
      return o === undefined || !isTomb(o);
    });
    let added = false;
    for (const [k, v] of this.#over) {
      if (k.startsWith(prefix) && !isTomb(v) && this.#base.get(k) === undefined) {
        out.push(k);
        added = true;
      }
    }
    if (added) out.sort();
    return out;
  }

  /** Called once `events` are applied to the published state: their overlay entries are no longer needed. */
  settled(events: readonly StoreEvent[]): void {
    for (const ev of events) {
      const o = this.#over.get(ev.key);
      if (o === undefined) continue;
      if (ev.type === 'put' ? o === ev.entry : isTomb(o) && o.prev === ev.prev) this.#over.delete(ev.key);
    }
  }

  /** Drops every pending change: `latest` is the published state again (after a failed write). */
  reset(): void {
    this.#over.clear();
  }
}
