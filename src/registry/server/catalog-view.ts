/**
 * The registry's read side: an in-memory view materialized from store changes (whole records,
 * never deltas from the API), per-topic indexes for blocking queries, and the waiters parked on
 * them. A change wakes only the waiters of the topics it touched, so 1,000 watchers of service A
 * sleep through every change to service B.
 */
import type { StoreChange, StoreEntry, StoreEvent } from '../store/types.js';
import { SortedKeys } from '../../core/sorted-keys.js';
import { keys, splitNodeKey } from './model.js';
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from './model.js';

export interface Indexed<T> {
  readonly rec: T;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** What a blocking query waits on: catalog topics, or a KV key / prefix. */
export type WatchSpec = { readonly topics: readonly string[] } | { readonly kv: string; readonly prefix: boolean };

export const topics = {
  NODES: 'nodes',
  SERVICES: 'services',
  CHECKS: 'checks',
  node: (n: string) => `node:${n}`,
  service: (name: string) => `svc:${name}`,
} as const;

/** `checks` lists the (node, check ID) pairs written or deleted by the change, for the check scheduler. */
/** Cancels a parked query (the client went away). EventEmitter-backed: far cheaper per request than AbortSignal. */
export interface Cancel {
  readonly cancelled: boolean;
  /** Registers `fn`; returns a function that unregisters it. */
  onCancel(fn: () => void): () => void;
}

export type ViewListener = (touched: ReadonlySet<string>, revision: number, checks: readonly CheckKey[]) => void;

export interface CheckKey {
  readonly node: string;
  readonly checkId: string;
}

interface Waiter {
  done: boolean;
  resolve(changed: boolean): void;
}

const TOMBSTONE_LIMIT = 10_000;

export class CatalogView {
  readonly nodes = new Map<string, Indexed<NodeRecord>>();
  /** node → service ID → service */
  readonly services = new Map<string, Map<string, Indexed<ServiceRecord>>>();
  /** service name → instances, for health/catalog service queries without a scan. */
  readonly byName = new Map<string, Set<Indexed<ServiceRecord>>>();
  /** node → check ID → check */
  readonly checks = new Map<string, Map<string, Indexed<CheckRecord>>>();
  /** `${node}/${serviceID}` → check ID → check (service-level checks only) */
  readonly #serviceChecks = new Map<string, Map<string, Indexed<CheckRecord>>>();
  /** node → check ID → check (node-level checks only) */
  readonly #nodeChecks = new Map<string, Map<string, Indexed<CheckRecord>>>();

  readonly kv = new Map<string, Indexed<KvRecord>>();
  /** KV keys in order, for recurse/keys queries. */
  readonly #kvSorted = new SortedKeys((k) => this.kv.has(k));
  readonly #tombstones = new Map<string, number>();
  #tombstoneFloor = 0;

  readonly #topicIndex = new Map<string, number>();
  /** topic → wall-clock ms (Date.now()) when the change at its index was applied here (X-Switchyard-Index-Time). */
  readonly #topicAppliedAt = new Map<string, number>();
  /**
   * Revision at open: topics untouched since then report at least this, so an index handed out
   * before a restart never exceeds the one handed out after it (deletions' tombstones are not
   * persisted).
   */
  readonly #floor: number;
  #revision: number;
  /** Counts every applied change, transient ones included: what read caches key on. */
  #version = 0;
  #lastAppliedAt = 0;

  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #kvExactWaiters = new Map<string, Set<Waiter>>();
  readonly #kvPrefixWaiters = new Map<string, Set<Waiter>>();
  readonly #listeners = new Set<ViewListener>();
  #pendingRevisionWaits: { rev: number; resolve: () => void }[] = [];

  constructor(initial: { revision: number; entries: readonly StoreEntry[] }) {
    this.#floor = initial.revision;
    this.#revision = initial.revision;
    const scratch = new Set<string>();
    for (const e of initial.entries) this.#put(e, undefined, scratch);
  }

  get revision(): number {
    return this.#revision;
  }

  /** Moves with every change the view shows, including transient ones that leave the revision alone. */
  get version(): number {
    return this.#version;
  }

  /** performance.now() when the last change was applied (blocking queries measure their wake latency from it). */
  get lastAppliedAt(): number {
    return this.#lastAppliedAt;
  }

  /** Index a blocking query on these topics reports: never 0, never below the open revision. */
  topicIndex(topicNames: readonly string[]): number {
    let idx = Math.max(this.#floor, 1);
    for (const t of topicNames) {
      const v = this.#topicIndex.get(t);
      if (v !== undefined && v > idx) idx = v;
    }
    return idx;
  }

  /**
   * When this view applied the change behind `topicIndex(topicNames)`, in Unix ms; undefined when
   * that index is the open revision (no change to these topics applied since this process started).
   */
  topicAppliedAt(topicNames: readonly string[]): number | undefined {
    let idx = this.#floor;
    let at: number | undefined;
    for (const t of topicNames) {
      const v = this.#topicIndex.get(t);
      // One revision is one apply: topics at the same index share its time.
      if (v !== undefined && v > idx) {
        idx = v;
        at = this.#topicAppliedAt.get(t);
      }
    }
    return at;
  }

  kvIndex(key: string, prefix: boolean): number {
    let idx = Math.max(this.#floor, this.#tombstoneFloor, 1);
    if (!prefix) {
      const e = this.kv.get(key);
      if (e) return Math.max(e.modifyIndex, 1);
      return Math.max(idx, this.#tombstones.get(key) ?? 0);
    }
    for (const k of this.kvKeysUnder(key)) idx = Math.max(idx, (this.kv.get(k) as Indexed<KvRecord>).modifyIndex);
    for (const [k, rev] of this.#tombstones) if (rev > idx && k.startsWith(key)) idx = rev;
    return idx;
  }

  /** Sorted KV keys starting with prefix. */
  kvKeysUnder(prefix: string): string[] {
    return this.#kvSorted.withPrefix(prefix);
  }

  serviceChecks(node: string, serviceId: string): Iterable<Indexed<CheckRecord>> {
    return this.#serviceChecks.get(`${node}/${serviceId}`)?.values() ?? [];
  }

  nodeChecks(node: string): Iterable<Indexed<CheckRecord>> {
    return this.#nodeChecks.get(node)?.values() ?? [];
  }

  findCheck(node: string, checkId: string): Indexed<CheckRecord> | undefined {
    return this.checks.get(node)?.get(checkId);
  }

  findService(node: string, serviceId: string): Indexed<ServiceRecord> | undefined {
    return this.services.get(node)?.get(serviceId);
  }

  /** Subscribes to every applied change with the set of topics it touched (for check scheduling, DNS, the LB). */
  onChange(listener: ViewListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once the view has applied `rev` (immediate for the embedded store, which applies before acking). */
  waitForRevision(rev: number): Promise<void> {
    if (rev <= this.#revision) return Promise.resolve();
    return new Promise((resolve) => this.#pendingRevisionWaits.push({ rev, resolve }));
  }

  /**
   * Parks until a change touches `spec` (→ true), the timeout passes or `cancel` fires (→ false).
   */
  wait(spec: WatchSpec, timeoutMs: number, cancel?: Cancel): Promise<boolean> {
    return new Promise((resolve) => {
      const sets: Set<Waiter>[] = [];
      const waiter: Waiter = {
        done: false,
        resolve: (changed) => {
          if (waiter.done) return;
          waiter.done = true;
          clearTimeout(timer);
          unlisten?.();
          for (const s of sets) s.delete(waiter);
          resolve(changed);
        },
      };
      let unlisten: (() => void) | undefined;
      const timer = setTimeout(() => waiter.resolve(false), Math.max(0, timeoutMs));
      const join = (map: Map<string, Set<Waiter>>, k: string): void => {
        let s = map.get(k);
        if (!s) map.set(k, (s = new Set()));
        s.add(waiter);
        sets.push(s);
      };
      if ('topics' in spec) for (const t of spec.topics) join(this.#waiters, t);
      else join(spec.prefix ? this.#kvPrefixWaiters : this.#kvExactWaiters, spec.kv);
      if (cancel) {
        if (cancel.cancelled) waiter.resolve(false);
        else unlisten = cancel.onCancel(() => waiter.resolve(false));
      }
    });
  }

  /** Number of parked blocking queries (a gauge for /metrics). */
  waiterCount(): number {
    const seen = new Set<Waiter>();
    for (const m of [this.#waiters, this.#kvExactWaiters, this.#kvPrefixWaiters]) for (const s of m.values()) for (const w of s) seen.add(w);
    return seen.size;
  }

  apply(change: StoreChange): void {
    this.#applyEvents(change.events, change.revision, true);
  }

  /**
   * Shows `events` without a revision of their own: facts the store cannot record, such as the
   * store itself being unable to write. Readers see them at once and parked queries re-check, but
   * indexes do not move (nothing was committed); the next store change to the same key replaces them.
   */
  applyTransient(events: readonly StoreEvent[]): void {
    this.#applyEvents(events, this.#revision, false);
  }

  #applyEvents(events: readonly StoreEvent[], revision: number, committed: boolean): void {
    const change = { revision, events };
    const touched = new Set<string>();
    const kvTouched: string[] = [];
    const checkKeys: CheckKey[] = [];
    for (const ev of change.events) {
      if (ev.key.startsWith(keys.KV_PREFIX)) kvTouched.push(ev.key.slice(keys.KV_PREFIX.length));
      else if (ev.key.startsWith('c/')) {
        const [node, checkId] = splitNodeKey(ev.key.slice(2));
        checkKeys.push({ node, checkId });
      }
      if (ev.type === 'put' && ev.entry) this.#put(ev.entry, ev.prev, touched);
      else this.#delete(ev.key, change.revision, touched);
    }
    this.#version++;
    this.#lastAppliedAt = performance.now();
    if (committed) {
      this.#revision = change.revision;
      const wall = Date.now();
      for (const t of touched) {
        this.#topicIndex.set(t, change.revision);
        this.#topicAppliedAt.set(t, wall);
      }
    }
    for (const t of touched) this.#wakeAll(this.#waiters, t);
    for (const k of kvTouched) {
      this.#wakeAll(this.#kvExactWaiters, k);
      if (this.#kvPrefixWaiters.size > 0) {
        for (let i = 0; i <= k.length; i++) this.#wakeAll(this.#kvPrefixWaiters, k.slice(0, i));
      }
    }
    if (this.#pendingRevisionWaits.length > 0) {
      const ready = this.#pendingRevisionWaits.filter((w) => w.rev <= change.revision);
      this.#pendingRevisionWaits = this.#pendingRevisionWaits.filter((w) => w.rev > change.revision);
      for (const w of ready) w.resolve();
    }
    if (touched.size > 0) for (const l of this.#listeners) l(touched, change.revision, checkKeys);
  }

  #wakeAll(map: Map<string, Set<Waiter>>, k: string): void {
    const s = map.get(k);
    if (!s) return;
    map.delete(k);
    for (const w of s) w.resolve(true);
  }

  #put(e: StoreEntry, prev: StoreEntry | undefined, touched: Set<string>): void {
    const kind = e.key.slice(0, 2);
    const rest = e.key.slice(2);
    switch (kind) {
      case 'n/': {
        const rec = JSON.parse(e.value) as NodeRecord;
        this.nodes.set(rest, { rec, createIndex: e.createRevision, modifyIndex: e.modRevision });
        touched.add(topics.NODES).add(topics.node(rest));
        this.#touchNodeServices(rest, touched);
        return;
      }
      case 's/': {
        const [node, id] = splitNodeKey(rest);
        if (prev) this.#removeService(node, id, touched);
        const rec = JSON.parse(e.value) as ServiceRecord;
        const ix: Indexed<ServiceRecord> = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
        getOrCreate(this.services, node).set(id, ix);
        getOrCreateSet(this.byName, rec.Service).add(ix);
        touched.add(topics.SERVICES).add(topics.node(node)).add(topics.service(rec.Service));
        return;
      }
      case 'c/': {
        const [node, id] = splitNodeKey(rest);
        if (prev) this.#removeCheck(node, id, touched);
        const rec = JSON.parse(e.value) as CheckRecord;
        const ix: Indexed<CheckRecord> = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
        getOrCreate(this.checks, node).set(id, ix);
        if (rec.ServiceID) getOrCreate(this.#serviceChecks, `${node}/${rec.ServiceID}`).set(id, ix);
        else getOrCreate(this.#nodeChecks, node).set(id, ix);
        this.#touchCheck(rec, touched);
        return;
      }
      case 'k/': {
        const rec = JSON.parse(e.value) as KvRecord;
        if (!this.kv.has(rest)) this.#kvSorted.added(rest);
        this.kv.set(rest, { rec, createIndex: e.createRevision, modifyIndex: e.modRevision });
        return;
      }
      default:
        return; // Keys of other subsystems (sessions, members) are not part of the catalog view.
    }
  }

  #delete(key: string, revision: number, touched: Set<string>): void {
    const kind = key.slice(0, 2);
    const rest = key.slice(2);
    switch (kind) {
      case 'n/':
        if (this.nodes.delete(rest)) {
          touched.add(topics.NODES).add(topics.node(rest));
          this.#touchNodeServices(rest, touched);
        }
        return;
      case 's/': {
        const [node, id] = splitNodeKey(rest);
        this.#removeService(node, id, touched);
        return;
      }
      case 'c/': {
        const [node, id] = splitNodeKey(rest);
        this.#removeCheck(node, id, touched);
        return;
      }
      case 'k/':
        if (this.kv.delete(rest)) {
          this.#kvSorted.removed();
          if (this.#tombstones.size >= TOMBSTONE_LIMIT) {
            // Forget individual tombstones but keep their highest revision as a floor for every KV index.
            this.#tombstoneFloor = revision;
            this.#tombstones.clear();
          }
          this.#tombstones.set(rest, revision);
        }
        return;
      default:
        return;
    }
  }

  #removeService(node: string, id: string, touched: Set<string>): void {
    const m = this.services.get(node);
    const old = m?.get(id);
    if (!m || !old) return;
    m.delete(id);
    if (m.size === 0) this.services.delete(node);
    const set = this.byName.get(old.rec.Service);
    set?.delete(old);
    if (set && set.size === 0) this.byName.delete(old.rec.Service);
    touched.add(topics.SERVICES).add(topics.node(node)).add(topics.service(old.rec.Service));
  }

  #removeCheck(node: string, id: string, touched: Set<string>): void {
    const m = this.checks.get(node);
    const old = m?.get(id);
    if (!m || !old) return;
    m.delete(id);
    if (m.size === 0) this.checks.delete(node);
    const sub = old.rec.ServiceID ? `${node}/${old.rec.ServiceID}` : node;
    const index = old.rec.ServiceID ? this.#serviceChecks : this.#nodeChecks;
    const sm = index.get(sub);
    sm?.delete(id);
    if (sm && sm.size === 0) index.delete(sub);
    this.#touchCheck(old.rec, touched);
  }

  #touchCheck(rec: CheckRecord, touched: Set<string>): void {
    touched.add(topics.CHECKS).add(topics.node(rec.Node));
    if (rec.ServiceID) {
      const svc = this.services.get(rec.Node)?.get(rec.ServiceID);
      touched.add(topics.service(svc?.rec.Service ?? rec.ServiceName));
    } else {
      // A node-level check (serfHealth, node maintenance) changes the health of every service on the node.
      this.#touchNodeServices(rec.Node, touched);
    }
  }

  #touchNodeServices(node: string, touched: Set<string>): void {
    const m = this.services.get(node);
    if (m) for (const s of m.values()) touched.add(topics.service(s.rec.Service));
  }
}

function getOrCreate<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let v = m.get(k);
  if (!v) m.set(k, (v = new Map()));
  return v;
}

function getOrCreateSet<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let v = m.get(k);
  if (!v) m.set(k, (v = new Set()));
  return v;
}
