/**
 * The read side of prepared queries, materialized from store changes: queries by ID, by name and by
 * session, the templates in the order a lookup tries them, and the index and parked readers of
 * /v1/query. Only query changes move the index.
 */
import type { StoreChange, StoreEntry } from '../../store/types.js';
import type { Cancel, WaitEnd, WatchSpec } from '../catalog-reader.js';
import { Broadcast } from '../broadcast.js';
import { parseStored } from '../stored.js';
import { claimsName, isTemplate, preparedKeys } from './model.js';
import type { PreparedQueryRecord } from './model.js';

export interface IndexedQuery {
  readonly rec: PreparedQueryRecord;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export const PREPARED_QUERIES_TOPIC = 'prepared-queries';

export class PreparedQueryView {
  readonly #byId = new Map<string, IndexedQuery>();
  readonly #byName = new Map<string, string>();
  /** Templates, longest name first: the first whose name prefixes the one asked answers it. */
  #templates: IndexedQuery[] = [];
  readonly #floor: number;
  #index = 0;
  readonly #changes = new Broadcast();

  constructor(initial: { revision: number; entries: readonly StoreEntry[] }) {
    this.#floor = initial.revision;
    for (const e of initial.entries) if (e.key.startsWith(preparedKeys.PREFIX)) this.#put(e);
    this.#sortTemplates();
  }

  /** X-Consul-Index of /v1/query: never 0, never below the revision the store opened at. */
  get index(): number {
    return Math.max(this.#index, this.#floor, 1);
  }

  apply(change: StoreChange): void {
    let changed = false;
    for (const ev of change.events) {
      if (!ev.key.startsWith(preparedKeys.PREFIX)) continue;
      changed = true;
      this.#remove(ev.key.slice(preparedKeys.PREFIX.length));
      if (ev.type === 'put' && ev.entry) this.#put(ev.entry);
    }
    if (!changed) return;
    this.#sortTemplates();
    this.#index = change.revision;
    this.#changes.fire();
  }

  /** Parks until a query is created, changed or deleted (→ when), the timeout passes or `cancel` fires (→ false). */
  wait(_spec: WatchSpec, timeoutMs: number, cancel?: Cancel): Promise<WaitEnd> {
    return this.#changes.wait(timeoutMs, cancel);
  }

  get(id: string): IndexedQuery | undefined {
    return this.#byId.get(id);
  }

  /** Every query, ordered by ID (Consul iterates its ID index). */
  list(): IndexedQuery[] {
    return [...this.#byId.values()].sort((a, b) => (a.rec.ID < b.rec.ID ? -1 : a.rec.ID > b.rec.ID ? 1 : 0));
  }

  /** Queries bound to a session: they go when it does. */
  boundTo(session: string): PreparedQueryRecord[] {
    const out: PreparedQueryRecord[] = [];
    for (const q of this.#byId.values()) if (q.rec.Session === session) out.push(q.rec);
    return out;
  }

  /**
   * Consul's lookup order: an ID, then an exact name (a plain query or a template), then the
   * template with the longest name that starts `idOrName` (the one with an empty name matches all).
   */
  resolve(idOrName: string): IndexedQuery | undefined {
    const byId = this.#byId.get(idOrName);
    if (byId) return byId;
    const named = this.#byName.get(idOrName);
    if (named !== undefined) return this.#byId.get(named);
    return this.#templates.find((t) => idOrName.startsWith(t.rec.Name));
  }

  #put(e: StoreEntry): void {
    const rec = parseStored<PreparedQueryRecord>(e.value);
    if (!rec) return;
    const q: IndexedQuery = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
    this.#byId.set(rec.ID, q);
    if (claimsName(rec)) this.#byName.set(rec.Name, rec.ID);
  }

  #remove(id: string): void {
    const cur = this.#byId.get(id);
    if (!cur) return;
    this.#byId.delete(id);
    if (claimsName(cur.rec) && this.#byName.get(cur.rec.Name) === id) this.#byName.delete(cur.rec.Name);
  }

  #sortTemplates(): void {
    this.#templates = [...this.#byId.values()].filter((q) => isTemplate(q.rec)).sort((a, b) => b.rec.Name.length - a.rec.Name.length);
  }
}
