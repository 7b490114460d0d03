/**
 * `/v1/txn` evaluation: every operation runs in order against the local state plus the writes of
 * the operations before it, every key read is guarded, and the writes go to the store as one
 * transaction, re-evaluated from scratch when a concurrent write wins a guarded key. Errors are
 * collected per operation with Consul's wording; any error means nothing is written.
 */
import { HttpError } from '../../../core/errors.js';
import type { Clock } from '../../../core/clock.js';
import type { Store, StoreEntry, StoreOp } from '../../store/types.js';
import { keys } from '../model.js';
import { decodeCheck, decodeService, encodeCheck, encodeService } from '../stored.js';
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from '../model.js';
import { Reads, optimistic } from '../optimistic.js';
import { catalogCheckDefinition } from '../registry.js';
import { renderCheck, renderKv, renderNode, renderService } from '../render.js';
import { liveSession, lockDelayed, lockedRecord, unlockedRecord } from '../sessions/locks.js';
import { sessionKeys } from '../sessions/model.js';
import { isStatus, validateMeta, validateServiceAddress, validateWeights } from '../validate.js';
import type { CheckOp, KvOp, NodeOp, ServiceOp, TxnOp } from './decode.js';

export interface TxnDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly datacenter: string;
}

export interface TxnOutcome {
  /** 200, or 409 when an operation failed (Consul's conflict answer). */
  readonly status: 200 | 409;
  readonly body: { Results: Record<string, unknown>[] | null; Errors: { OpIndex: number; What: string }[] | null };
  readonly index: number;
}

/** Revision placeholder for entries written by this transaction: filled in with the commit's revision. */
const PENDING = -1;
const NODE_NAME = /^[^/\s]+$/;

type Result = { kind: 'KV' | 'Node' | 'Service' | 'Check'; entry: StoreEntry; withValue: boolean };

function parse<T>(e: StoreEntry | undefined, decode: (json: string, key: string) => T = (json) => JSON.parse(json) as T): T | undefined {
  if (!e) return undefined;
  try {
    return decode(e.value, e.key);
  } catch {
    return undefined;
  }
}

const q = (s: string): string => JSON.stringify(s);

/** The local state seen through this transaction's own writes; reads of the store are guarded. */
class TxnState {
  readonly reads: Reads;
  readonly ops: StoreOp[] = [];
  readonly #store: Store;
  readonly #overlay = new Map<string, StoreEntry | null>();

  constructor(store: Store) {
    this.#store = store;
    this.reads = new Reads(store);
  }

  get(key: string): StoreEntry | undefined {
    if (this.#overlay.has(key)) return this.#overlay.get(key) ?? undefined;
    return this.reads.get(key);
  }

  put(key: string, value: string): StoreEntry {
    const prev = this.get(key);
    const entry: StoreEntry = { key, value, createRevision: prev?.createRevision ?? PENDING, modRevision: PENDING, version: (prev?.version ?? 0) + 1 };
    this.ops.push({ type: 'put', key, value });
    this.#overlay.set(key, entry);
    return entry;
  }

  delete(key: string): void {
    if (!this.get(key)) return;
    this.ops.push({ type: 'delete', key });
    this.#overlay.set(key, null);
  }

  /**
   * Live keys under a prefix, sorted. Each key found is guarded; a key created under the prefix by
   * a concurrent writer is not (documented: get-tree and delete-tree see the keys present when planned).
   */
  keysUnder(prefix: string): string[] {
    const set = new Set(this.#store.range(prefix).map((e) => e.key));
    for (const [k, v] of this.#overlay) {
      if (!k.startsWith(prefix)) continue;
      if (v) set.add(k);
      else set.delete(k);
    }
    return [...set].sort().filter((k) => this.get(k) !== undefined);
  }
}

/** Applies the operations atomically; throws only for store failures (the API's 503). */
export async function runTxn(deps: TxnDeps, ops: readonly TxnOp[]): Promise<TxnOutcome> {
  return optimistic<TxnOutcome>(deps.store, () => {
    const state = new TxnState(deps.store);
    const results: Result[] = [];
    const errors: { OpIndex: number; What: string }[] = [];
    ops.forEach((op, i) => {
      try {
        const err = evaluate(deps, state, op, results);
        if (err !== undefined) errors.push({ OpIndex: i, What: err });
      } catch (e) {
        if (!(e instanceof HttpError)) throw e;
        errors.push({ OpIndex: i, What: e.message });
      }
    });
    const current = deps.store.revision();
    if (errors.length > 0) return { done: () => ({ status: 409, body: { Results: null, Errors: errors }, index: current }) };
    const answer = (revision: number): TxnOutcome => ({ status: 200, body: { Results: results.map((r) => render(deps, r, revision)), Errors: null }, index: revision });
    if (state.ops.length === 0) return { done: answer };
    return { txn: { compare: state.reads.compares, success: state.ops }, done: answer };
  }, { what: 'transaction' });
}

function render(deps: TxnDeps, r: Result, revision: number): Record<string, unknown> {
  const fix = (n: number): number => (n === PENDING ? revision : n);
  const ix = { createIndex: fix(r.entry.createRevision), modifyIndex: fix(r.entry.modRevision) };
  switch (r.kind) {
    case 'KV': {
      const out = renderKv(r.entry.key.slice(keys.KV_PREFIX.length), { rec: parse<KvRecord>(r.entry) as KvRecord, ...ix });
      if (!r.withValue) out.Value = null;
      return { KV: out };
    }
    case 'Node':
      return { Node: renderNode({ rec: parse<NodeRecord>(r.entry) as NodeRecord, ...ix }) };
    case 'Service':
      return { Service: renderService({ rec: parse(r.entry, decodeService) as ServiceRecord, ...ix }, deps.datacenter) };
    case 'Check':
      return { Check: renderCheck(parse(r.entry, decodeCheck) as CheckRecord, ix) };
  }
}

/** One operation; returns its error text (Consul's), or undefined when it succeeded. */
function evaluate(deps: TxnDeps, state: TxnState, op: TxnOp, results: Result[]): string | undefined {
  switch (op.kind) {
    case 'KV': return kv(deps, state, op, results);
    case 'Node': return node(deps, state, op, results);
    case 'Service': return service(state, op, results);
    case 'Check': return check(state, op, results);
  }
}

function kv(deps: TxnDeps, state: TxnState, op: KvOp, results: Result[]): string | undefined {
  if (op.key === '' && op.verb !== 'delete-tree') return 'Must provide key';
  const sk = keys.kv(op.key);
  const cur = state.get(sk);
  const rec = parse<KvRecord>(cur);
  const w = { flags: op.flags, value: op.value === null || op.value.length === 0 ? null : op.value.toString('base64') };
  const write = (next: KvRecord): void => void results.push({ kind: 'KV', entry: state.put(sk, JSON.stringify(next)), withValue: false });
  // A plain write keeps the entry's lock, as Consul's kvsSetTxn does.
  const kept = (): KvRecord => ({ Flags: w.flags, Value: w.value, LockIndex: rec?.LockIndex ?? 0, ...(rec?.Session ? { Session: rec.Session } : {}) });
  switch (op.verb) {
    case 'set':
      write(kept());
      return undefined;
    case 'cas':
      if (op.index === 0 ? cur !== undefined : cur?.modRevision !== op.index) return `failed to set key ${q(op.key)}, index is stale`;
      write(kept());
      return undefined;
    case 'lock': {
      if (lockDelayed(state.reads, op.key, deps.clock.now())) return `failed to lock key ${q(op.key)} due to lock delay`;
      if (op.session === '') return 'missing session';
      if (!liveSession(state.reads, op.session)) return `invalid session ${q(op.session)}`;
      const next = lockedRecord(rec, op.session, w);
      if (!next) return `failed to lock key ${q(op.key)}, lock is already held`;
      write(next);
      state.put(sessionKeys.locks(op.session), '{}');
      state.delete(sessionKeys.lockDelay(op.key));
      return undefined;
    }
    case 'unlock': {
      if (op.session === '') return 'missing session';
      const next = unlockedRecord(rec, op.session, w);
      if (!next) return `failed to unlock key ${q(op.key)}, lock isn't held, or is held by another session`;
      write(next);
      return undefined;
    }
    case 'get':
      if (!cur) return `key ${q(op.key)} doesn't exist`;
      results.push({ kind: 'KV', entry: cur, withValue: true });
      return undefined;
    case 'get-or-empty': {
      const empty: KvRecord = { Flags: op.flags, Value: null, LockIndex: 0, ...(op.session ? { Session: op.session } : {}) };
      results.push({ kind: 'KV', entry: cur ?? { key: sk, value: JSON.stringify(empty), createRevision: 0, modRevision: op.index, version: 0 }, withValue: true });
      return undefined;
    }
    case 'get-tree':
      for (const k of state.keysUnder(sk)) results.push({ kind: 'KV', entry: state.get(k) as StoreEntry, withValue: true });
      return undefined;
    case 'check-index':
      if (!cur) return `failed to check index, key ${q(op.key)} doesn't exist`;
      if (cur.modRevision !== op.index) return `failed index check for key ${q(op.key)}, current modify index ${cur.modRevision} != ${op.index}`;
      results.push({ kind: 'KV', entry: cur, withValue: false });
      return undefined;
    case 'check-session':
      if (!cur) return `failed to check session, key ${q(op.key)} doesn't exist`;
      if ((rec?.Session ?? '') !== op.session) return `failed session check for key ${q(op.key)}, current session ${q(rec?.Session ?? '')} != ${q(op.session)}`;
      results.push({ kind: 'KV', entry: cur, withValue: false });
      return undefined;
    case 'check-not-exists':
      return cur ? `key ${q(op.key)} exists` : undefined;
    case 'delete':
      state.delete(sk);
      return undefined;
    case 'delete-cas':
      // Consul: a CAS delete of an absent key succeeds.
      if (cur && cur.modRevision !== op.index) return `failed to delete key ${q(op.key)}, index is stale`;
      state.delete(sk);
      return undefined;
    case 'delete-tree':
      for (const k of state.keysUnder(sk)) state.delete(k);
      return undefined;
    default:
      return `unknown KV verb ${q(op.verb)}`;
  }
}

/** Deletes a node's services and checks with it, as Consul's deleteNodeTxn does. */
function deleteNode(state: TxnState, name: string): void {
  for (const k of state.keysUnder(keys.servicePrefix(name))) state.delete(k);
  for (const k of state.keysUnder(keys.checkPrefix(name))) state.delete(k);
  state.delete(keys.node(name));
}

function node(deps: TxnDeps, state: TxnState, op: NodeOp, results: Result[]): string | undefined {
  const n = op.node;
  const key = keys.node(n.Node);
  const cur = n.Node === '' ? undefined : state.get(key);
  const set = (): string | undefined => {
    if (n.Node === '') return 'Must provide node';
    if (!NODE_NAME.test(n.Node)) return `Invalid node name ${q(n.Node)}: must not contain '/' or whitespace`;
    if (n.Datacenter !== '' && n.Datacenter !== deps.datacenter) return 'No path to datacenter';
    const rec: NodeRecord = {
      ID: n.ID || (parse<NodeRecord>(cur)?.ID ?? ''), Node: n.Node, Address: n.Address, Datacenter: deps.datacenter,
      TaggedAddresses: n.TaggedAddresses, Meta: validateMeta(n.Meta, 'Node'),
    };
    results.push({ kind: 'Node', entry: state.put(key, JSON.stringify(rec)), withValue: true });
    return undefined;
  };
  switch (op.verb) {
    case 'get':
      if (!cur) return `node ${q(n.Node)} doesn't exist`;
      results.push({ kind: 'Node', entry: cur, withValue: true });
      return undefined;
    case 'set':
      return set();
    case 'cas':
      if (n.ModifyIndex === 0 ? cur !== undefined : cur?.modRevision !== n.ModifyIndex) return `failed to set node ${q(n.Node)}, index is stale`;
      return set();
    case 'delete':
      if (cur) deleteNode(state, n.Node);
      return undefined;
    case 'delete-cas':
      if (!cur || cur.modRevision !== n.ModifyIndex) return `failed to delete node ${q(n.Node)}, index is stale`;
      deleteNode(state, n.Node);
      return undefined;
    default:
      return `unknown Node verb ${q(op.verb)}`;
  }
}

/** A service's checks on its node (deleted with it). */
function serviceCheckKeys(state: TxnState, nodeName: string, serviceId: string): string[] {
  return state.keysUnder(keys.checkPrefix(nodeName)).filter((k) => parse(state.get(k), decodeCheck)?.ServiceID === serviceId);
}

function service(state: TxnState, op: ServiceOp, results: Result[]): string | undefined {
  const s = op.service;
  const id = s.ID || s.Service;
  const key = keys.service(op.node, id);
  const cur = op.node === '' || id === '' ? undefined : state.get(key);
  const remove = (): void => {
    for (const k of serviceCheckKeys(state, op.node, id)) state.delete(k);
    state.delete(key);
  };
  const set = (): string | undefined => {
    if (op.node === '' || !state.get(keys.node(op.node))) return 'Missing node registration';
    if (id === '') return 'Must provide service name';
    const prev = parse(cur, decodeService);
    const rec: ServiceRecord = {
      Node: op.node, ID: id, Service: s.Service || id, Tags: s.Tags, Address: validateServiceAddress(s.Address), TaggedAddresses: prev?.TaggedAddresses ?? {},
      Meta: validateMeta(s.Meta), Port: s.Port, Weights: validateWeights(s.Weights), EnableTagOverride: s.EnableTagOverride, Kind: s.Kind,
      // An agent-registered service stays the agent's (its checks keep running there).
      Local: prev?.Local ?? false,
    };
    results.push({ kind: 'Service', entry: state.put(key, encodeService(rec, key)), withValue: true });
    return undefined;
  };
  switch (op.verb) {
    case 'get':
      if (!cur) return `service ${q(id)} on node ${q(op.node)} doesn't exist`;
      results.push({ kind: 'Service', entry: cur, withValue: true });
      return undefined;
    case 'set':
      return set();
    case 'cas':
      if (s.ModifyIndex === 0 ? cur !== undefined : cur?.modRevision !== s.ModifyIndex) return `failed to set service ${q(id)} on node ${q(op.node)}, index is stale`;
      return set();
    case 'delete':
      if (cur) remove();
      return undefined;
    case 'delete-cas':
      if (!cur || cur.modRevision !== s.ModifyIndex) return `failed to delete service ${q(id)} on node ${q(op.node)}, index is stale`;
      remove();
      return undefined;
    default:
      return `unknown Service verb ${q(op.verb)}`;
  }
}

function check(state: TxnState, op: CheckOp, results: Result[]): string | undefined {
  const c = op.check;
  const key = keys.check(c.Node, c.CheckID);
  const cur = c.Node === '' || c.CheckID === '' ? undefined : state.get(key);
  const set = (): string | undefined => {
    if (c.Node === '' || !state.get(keys.node(c.Node))) return 'Missing node registration';
    if (c.CheckID === '') return 'Missing check ID';
    const status = c.Status === '' ? 'critical' : c.Status;
    if (!isStatus(status)) return `Invalid check status: '${status}'`;
    let svc: ServiceRecord | undefined;
    if (c.ServiceID !== '') {
      svc = parse(state.get(keys.service(c.Node, c.ServiceID)), decodeService);
      if (!svc) return 'Missing service registration';
    }
    const prev = parse(cur, decodeCheck);
    const rec: CheckRecord = {
      Node: c.Node, CheckID: c.CheckID, Name: c.Name || c.CheckID, Status: status, Notes: c.Notes, Output: c.Output,
      ServiceID: c.ServiceID, ServiceName: svc?.Service ?? '', ServiceTags: svc?.Tags ?? [],
      // A check the agent runs keeps its type and definition unless the operation gives a new one.
      Type: prev?.Type ?? '',
      Definition: c.Definition ? catalogCheckDefinition(c.Definition, 'Check.Definition') : (prev?.Definition ?? {}),
    };
    results.push({ kind: 'Check', entry: state.put(key, encodeCheck(rec, key)), withValue: true });
    return undefined;
  };
  switch (op.verb) {
    case 'get':
      if (!cur) return `check ${q(c.CheckID)} on node ${q(c.Node)} doesn't exist`;
      results.push({ kind: 'Check', entry: cur, withValue: true });
      return undefined;
    case 'set':
      return set();
    case 'cas':
      if (c.ModifyIndex === 0 ? cur !== undefined : cur?.modRevision !== c.ModifyIndex) return `failed to set check ${q(c.CheckID)} on node ${q(c.Node)}, index is stale`;
      return set();
    case 'delete':
      state.delete(key);
      return undefined;
    case 'delete-cas':
      if (!cur || cur.modRevision !== c.ModifyIndex) return `failed to delete check ${q(c.CheckID)} on node ${q(c.Node)}, index is stale`;
      state.delete(key);
      return undefined;
    default:
      return `unknown Check verb ${q(op.verb)}`;
  }
}
