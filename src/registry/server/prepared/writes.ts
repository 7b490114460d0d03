/**
 * Writes of prepared queries: create, update and delete, each one guarded transaction planned on the
 * local state (optimistic()), so a name is claimed once, a query is bound only to a live session and
 * an update never revives a deleted query, on either store and with several agents.
 */
import { randomUUID } from 'node:crypto';
import { HttpError, badRequest } from '../../../core/errors.js';
import { optimistic, unchanged } from '../optimistic.js';
import { sessionKeys } from '../sessions/model.js';
import { parseStored } from '../stored.js';
import type { Store, StoreCompare, StoreOp } from '../../store/types.js';
import { claimsName, looksLikeId, preparedKeys } from './model.js';
import type { PreparedNameRecord, PreparedQueryRecord } from './model.js';

const notFound = (text: string): HttpError => new HttpError(404, text);

function readRecord<T>(store: Store, key: string): T | undefined {
  const e = store.get(key);
  return e ? parseStored<T>(e.value) : undefined;
}

/** The guards and writes that take a query's name (or refuse it, with Consul's words). */
function claimName(store: Store, q: PreparedQueryRecord, compare: StoreCompare[], ops: StoreOp[]): void {
  if (!claimsName(q)) return;
  const key = preparedKeys.name(q.Name);
  const e = store.get(key);
  const holder = readRecord<PreparedNameRecord>(store, key)?.ID;
  if (e && holder !== q.ID) {
    throw badRequest(q.Name === '' ? 'a query template with an empty name already exists' : `name '${q.Name}' aliases an existing query name`);
  }
  compare.push(unchanged(key, e));
  if (!e) ops.push({ type: 'put', key, value: JSON.stringify({ ID: q.ID } satisfies PreparedNameRecord) });
  // Lookups try IDs first, so such a name could never be reached; Consul refuses it to stop a hijack.
  if (looksLikeId(q.Name) && q.Name !== q.ID) {
    const idKey = preparedKeys.query(q.Name);
    const other = store.get(idKey);
    if (other) throw badRequest(`name '${q.Name}' aliases an existing query ID`);
    compare.push(unchanged(idKey, other));
  }
}

/** The guards and writes that remove a query and let go of its name. */
export function removalOps(store: Store, q: PreparedQueryRecord, compare: StoreCompare[], ops: StoreOp[]): void {
  const key = preparedKeys.query(q.ID);
  compare.push(unchanged(key, store.get(key)));
  ops.push({ type: 'delete', key });
  releaseName(store, q, compare, ops);
}

/** The guards and writes that let go of the name `q` holds (none when it holds none). */
function releaseName(store: Store, q: PreparedQueryRecord, compare: StoreCompare[], ops: StoreOp[]): void {
  if (!claimsName(q)) return;
  const nameKey = preparedKeys.name(q.Name);
  if (readRecord<PreparedNameRecord>(store, nameKey)?.ID !== q.ID) return;
  compare.push(unchanged(nameKey, store.get(nameKey)));
  ops.push({ type: 'delete', key: nameKey });
}

function requireSession(store: Store, q: PreparedQueryRecord, compare: StoreCompare[]): void {
  if (q.Session === '') return;
  const key = sessionKeys.session(q.Session);
  const e = store.get(key);
  if (!e) throw badRequest(`invalid session ${JSON.stringify(q.Session)}`);
  compare.push(unchanged(key, e));
}

export class PreparedQueryWrites {
  readonly #store: Store;
  readonly #applied: (revision: number) => Promise<void>;

  /** `applied` resolves once the local views show `revision` (reads after a write see it). */
  constructor(store: Store, applied: (revision: number) => Promise<void>) {
    this.#store = store;
    this.#applied = applied;
  }

  async create(input: Omit<PreparedQueryRecord, 'ID'>): Promise<string> {
    const store = this.#store;
    const rev = await optimistic(store, () => {
      let id = randomUUID();
      // An ID equal to a name already claimed would be shadowed by it in lookups by name: draw again.
      while (store.get(preparedKeys.query(id)) || store.get(preparedKeys.name(id))) id = randomUUID();
      const q: PreparedQueryRecord = { ID: id, ...input };
      const compare: StoreCompare[] = [unchanged(preparedKeys.query(id), undefined), unchanged(preparedKeys.name(id), undefined)];
      const ops: StoreOp[] = [{ type: 'put', key: preparedKeys.query(id), value: JSON.stringify(q) }];
      claimName(store, q, compare, ops);
      requireSession(store, q, compare);
      return { txn: { compare, success: ops }, done: (revision) => ({ id, revision }) };
    }, { what: 'prepared query creation' });
    await this.#applied(rev.revision);
    return rev.id;
  }

  async update(id: string, input: Omit<PreparedQueryRecord, 'ID'>): Promise<void> {
    const store = this.#store;
    const revision = await optimistic(store, () => {
      const cur = readRecord<PreparedQueryRecord>(store, preparedKeys.query(id));
      if (!cur) throw notFound(`Cannot modify non-existent prepared query: '${id}'`);
      const q: PreparedQueryRecord = { ID: id, ...input };
      const key = preparedKeys.query(id);
      const compare: StoreCompare[] = [unchanged(key, store.get(key))];
      const ops: StoreOp[] = [];
      if (!(claimsName(cur) && claimsName(q) && cur.Name === q.Name)) releaseName(store, cur, compare, ops);
      claimName(store, q, compare, ops);
      requireSession(store, q, compare);
      ops.push({ type: 'put', key, value: JSON.stringify(q) });
      return { txn: { compare, success: ops }, done: (r) => r };
    }, { what: `prepared query ${id} update` });
    await this.#applied(revision);
  }

  async delete(id: string): Promise<void> {
    const store = this.#store;
    const revision = await optimistic(store, () => {
      const cur = readRecord<PreparedQueryRecord>(store, preparedKeys.query(id));
      if (!cur) throw notFound(`Cannot delete non-existent prepared query: '${id}'`);
      const compare: StoreCompare[] = [];
      const ops: StoreOp[] = [];
      removalOps(store, cur, compare, ops);
      return { txn: { compare, success: ops }, done: (r) => r };
    }, { what: `prepared query ${id} deletion` });
    await this.#applied(revision);
  }
}
