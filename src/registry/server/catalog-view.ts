/**
 * The registry's read side: an in-memory view materialized from store changes (whole records,
 * never deltas from the API), per-topic indexes for blocking queries, and the waiters parked on
 * them. A change costs in proportion to what it touched: it wakes only the waiters of its topics
 * (1,000 watchers of service A sleep through every change to service B), and nothing here walks
 * the catalog per write. Readers see it through CatalogReader / CatalogWatch only.
 */
import type { StoreChange, StoreEntry, StoreEvent } from '../store/types.js';
import { SortedKeys } from '../../core/sorted-keys.js';
import { keys, splitNodeKey } from './model.js';
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from './model.js';
import { topics } from './catalog-reader.js';
import type { Cancel, CatalogReader, CatalogWatch, CheckKey, Indexed, ViewListener, WaitEnd, WatchSpec } from './catalog-reader.js';
import { RecordPool } from './record-pool.js';
import { Waiters } from './waiters.js';

export { topics } from './catalog-reader.js';
export type { Cancel, CatalogReader, CatalogWatch, CheckKey, Indexed, ViewListener, WatchSpec } from './catalog-reader.js';

const TOMBSTONE_LIMIT = 10_000;
const NONE: readonly never[] = Object.freeze([]);

/** Everything on one node: its record, its services, its checks (by ID and by service ID, '' for node-level). */
interface NodeSlot {
  readonly name: string;
  node: Indexed<NodeRecord> | undefined;
  readonly services: Map<string, Indexed<ServiceRecord>>;
  readonly checks: Map<string, Indexed<CheckRecord>>;
  /** A lone check is held as itself, not in a one-element array: most instances have exactly one (about 100 bytes each). */
  readonly byService: Map<string, Indexed<CheckRecord> | Indexed<CheckRecord>[]>;
}

/** The instances of one service name, and how many instances carry each tag (for catalog/services). */
interface ServiceGroup {
  readonly name: string;
  readonly instances: Set<Indexed<ServiceRecord>>;
  readonly tags: Map<string, number>;
  tagList: readonly string[] | undefined;
}

/** A topic's last committed change (its index, and when it was applied here in Unix ms) and last change of any kind (read caches key on it). */
interface TopicMark {
  index: number;
  appliedAt: number;
  version: number;
}

function asList<T>(x: T | T[] | undefined): readonly T[] {
  return x === undefined ? NONE : Array.isArray(x) ? x : [x];
}

const kvKey = (key: string): string => `k${key}`;
const kvPrefixKey = (prefix: string): string => `p${prefix}`;

export class CatalogView implements CatalogReader, CatalogWatch {
  readonly #nodes = new Map<string, NodeSlot>();
  readonly #groups = new Map<string, ServiceGroup>();
  readonly #names = new SortedKeys();
  #instances = 0;
  readonly #pool = new RecordPool();

  readonly #kv = new Map<string, Indexed<KvRecord>>();
  /** KV keys in order, for recurse/keys queries. */
  readonly #kvSorted = new SortedKeys();
  readonly #tombstones = new Map<string, number>();
  #tombstoneFloor = 0;

  /** What each topic's readers need to know of its last changes: one map lookup per touched topic. */
  readonly #topics = new Map<string, TopicMark>();
  /**
   * Revision at open: topics untouched since then report at least this, so an index handed out
   * before a restart never exceeds the one handed out after it (deletions' tombstones are not
   * persisted).
   */
  readonly #floor: number;
  #revision: number;
  /** Counts every applied change, transient ones included. */
  #version = 0;
  /** While the constructor loads the store's entries: no topics are marked. */
  #loading = false;

  readonly #waiters = new Waiters();
  readonly #kvWaiters = new Waiters();
  readonly #listeners = new Set<ViewListener>();
  #pendingRevisionWaits: { rev: number; resolve: () => void }[] = [];

  constructor(initial: { revision: number; entries: readonly StoreEntry[] }) {
    this.#floor = initial.revision;
    this.#revision = initial.revision;
    // Nobody watches yet, so the initial load names no topics: at a million records, building and
    // hashing three topic strings per record was a noticeable share of a restart.
    this.#loading = true;
    const scratch = new Set<string>();
    // Checks after services ('c/' sorts first): a check then shares its service's ID string
    // instead of holding its own copy, as it does when registered at run time.
    for (const e of initial.entries) if (!e.key.startsWith('c/')) this.#put(e, scratch);
    for (const e of initial.entries) if (e.key.startsWith('c/')) this.#put(e, scratch);
    this.#loading = false;
  }

  get revision(): number {
    return this.#revision;
  }

  // -------------------------------------------------------------------------------------------
  // CatalogReader

  node(name: string): Indexed<NodeRecord> | undefined {
    return this.#nodes.get(name)?.node;
  }

  *nodes(): Iterable<Indexed<NodeRecord>> {
    for (const s of this.#nodes.values()) if (s.node) yield s.node;
  }

  serviceNames(): readonly string[] {
    return this.#names.all();
  }

  serviceTags(name: string): readonly string[] {
    const g = this.#groups.get(name);
    if (!g) return NONE;
    g.tagList ??= Object.freeze([...g.tags.keys()]);
    return g.tagList;
  }

  instances(name: string): Iterable<Indexed<ServiceRecord>> {
    return this.#groups.get(name)?.instances ?? NONE;
  }

  nodeServices(node: string): Iterable<Indexed<ServiceRecord>> {
    return this.#nodes.get(node)?.services.values() ?? NONE;
  }

  findService(node: string, serviceId: string): Indexed<ServiceRecord> | undefined {
    return this.#nodes.get(node)?.services.get(serviceId);
  }

  instanceCount(): number {
    return this.#instances;
  }

  nodeChecks(node: string): Iterable<Indexed<CheckRecord>> {
    return asList(this.#nodes.get(node)?.byService.get(''));
  }

  serviceChecks(node: string, serviceId: string): Iterable<Indexed<CheckRecord>> {
    // A service ID of '' would name the node-level checks.
    if (serviceId === '') return NONE;
    return asList(this.#nodes.get(node)?.byService.get(serviceId));
  }

  checksOnNode(node: string): Iterable<Indexed<CheckRecord>> {
    return this.#nodes.get(node)?.checks.values() ?? NONE;
  }

  *allChecks(): Iterable<Indexed<CheckRecord>> {
    for (const s of this.#nodes.values()) yield* s.checks.values();
  }

  findCheck(node: string, checkId: string): Indexed<CheckRecord> | undefined {
    return this.#nodes.get(node)?.checks.get(checkId);
  }

  kvEntry(key: string): Indexed<KvRecord> | undefined {
    return this.#kv.get(key);
  }

  kvKeysUnder(prefix: string): string[] {
    return this.#kvSorted.withPrefix(prefix);
  }

  topicIndex(topicNames: readonly string[]): number {
    let idx = Math.max(this.#floor, 1);
    for (const t of topicNames) {
      const v = this.#topics.get(t)?.index;
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
      const m = this.#topics.get(t);
      // One revision is one apply: topics at the same index share its time.
      if (m !== undefined && m.index > idx) {
        idx = m.index;
        at = m.appliedAt;
      }
    }
    return at;
  }

  kvIndex(key: string, prefix: boolean): number {
    let idx = Math.max(this.#floor, this.#tombstoneFloor, 1);
    if (!prefix) {
      const e = this.#kv.get(key);
      if (e) return Math.max(e.modifyIndex, 1);
      return Math.max(idx, this.#tombstones.get(key) ?? 0);
    }
    for (const k of this.kvKeysUnder(key)) idx = Math.max(idx, (this.#kv.get(k) as Indexed<KvRecord>).modifyIndex);
    for (const [k, rev] of this.#tombstones) if (rev > idx && k.startsWith(key)) idx = rev;
    return idx;
  }

  onChange(listener: ViewListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------
  // CatalogWatch

  wait(spec: WatchSpec, timeoutMs: number, cancel?: Cancel): Promise<WaitEnd> {
    if ('topics' in spec) return this.#waiters.park(spec.topics, timeoutMs, cancel);
    return this.#kvWaiters.park([spec.prefix ? kvPrefixKey(spec.kv) : kvKey(spec.kv)], timeoutMs, cancel);
  }

  version(spec: WatchSpec): number {
    if (!('topics' in spec)) return this.kvIndex(spec.kv, spec.prefix);
    let v = 0;
    for (const t of spec.topics) {
      const x = this.#topics.get(t)?.version;
      if (x !== undefined && x > v) v = x;
    }
    return v;
  }

  // -------------------------------------------------------------------------------------------
  // Write side (fed by the store)

  /** Woken blocking queries are still being answered. */
  fanOutBusy(): boolean {
    return this.#waiters.busy || this.#kvWaiters.busy;
  }

  /** Runs `fn` once no woken blocking query waits for its answer (at once when none does). */
  whenFanOutIdle(fn: () => void): void {
    const w = this.#waiters.busy ? this.#waiters : this.#kvWaiters.busy ? this.#kvWaiters : undefined;
    if (w === undefined) fn();
    else w.whenIdle(() => this.whenFanOutIdle(fn));
  }

  /** Number of parked blocking queries (a gauge for /metrics). */
  waiterCount(): number {
    return this.#waiters.count + this.#kvWaiters.count;
  }

  /** Resolves once the view has applied `rev` (immediate for the embedded store, which applies before acking). */
  waitForRevision(rev: number): Promise<void> {
    if (rev <= this.#revision) return Promise.resolve();
    return new Promise((resolve) => this.#pendingRevisionWaits.push({ rev, resolve }));
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
    const touched = new Set<string>();
    const kvTouched: string[] = [];
    const checkKeys: CheckKey[] = [];
    for (const ev of events) {
      if (ev.key.startsWith(keys.KV_PREFIX)) kvTouched.push(ev.key.slice(keys.KV_PREFIX.length));
      else if (ev.key.startsWith('c/')) {
        const [node, checkId] = splitNodeKey(ev.key.slice(2));
        checkKeys.push({ node, checkId });
      }
      if (ev.type === 'put' && ev.entry) this.#put(ev.entry, touched);
      else this.#delete(ev.key, revision, touched);
    }
    const version = ++this.#version;
    if (committed) this.#revision = revision;
    const wall = committed ? Date.now() : 0;
    for (const t of touched) {
      let m = this.#topics.get(t);
      if (!m) this.#topics.set(t, (m = { index: 0, appliedAt: 0, version: 0 }));
      if (committed) {
        m.index = revision;
        m.appliedAt = wall;
      }
      m.version = version;
      this.#waiters.wake(t);
    }
    if (this.#kvWaiters.count > 0) {
      for (const k of kvTouched) {
        this.#kvWaiters.wake(kvKey(k));
        for (let i = 0; i <= k.length; i++) {
          const p = kvPrefixKey(k.slice(0, i));
          if (this.#kvWaiters.has(p)) this.#kvWaiters.wake(p);
        }
      }
    }
    if (this.#pendingRevisionWaits.length > 0) {
      const ready = this.#pendingRevisionWaits.filter((w) => w.rev <= revision);
      if (ready.length > 0) {
        this.#pendingRevisionWaits = this.#pendingRevisionWaits.filter((w) => w.rev > revision);
        for (const w of ready) w.resolve();
      }
    }
    if (touched.size > 0) for (const l of this.#listeners) l(touched, revision, checkKeys);
  }

  #slot(node: string): NodeSlot {
    let s = this.#nodes.get(node);
    if (!s) {
      // The node's name as the view holds it: every record on the node shares this string.
      const name = this.#pool.str(node);
      this.#nodes.set(name, (s = { name, node: undefined, services: new Map(), checks: new Map(), byService: new Map() }));
    }
    return s;
  }

  #dropIfEmpty(s: NodeSlot): void {
    if (!s.node && s.services.size === 0 && s.checks.size === 0) this.#nodes.delete(s.name);
  }

  #put(e: StoreEntry, touched: Set<string>): void {
    const kind = e.key.slice(0, 2);
    const rest = e.key.slice(2);
    switch (kind) {
      case 'n/': {
        const slot = this.#slot(rest);
        const rec = this.#pool.node(JSON.parse(e.value) as NodeRecord);
        slot.node = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
        if (this.#loading) return;
        touched.add(topics.NODES).add(topics.node(slot.name));
        this.#touchNodeServices(slot, touched);
        return;
      }
      case 's/': {
        const [node, id] = splitNodeKey(rest);
        const slot = this.#slot(node);
        const rec = this.#pool.service(JSON.parse(e.value) as Partial<ServiceRecord>, slot.name, id);
        const ix: Indexed<ServiceRecord> = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
        const old = slot.services.get(id);
        const group = old && old.rec.Service === rec.Service ? this.#groups.get(rec.Service) : undefined;
        if (old && group) {
          // Re-registered under the same name: replaced in its group, tags counted up before down,
          // so the name list and tag union (and what follows them, e.g. DNS) move only on a real change.
          slot.services.set(id, ix);
          group.instances.delete(old);
          group.instances.add(ix);
          this.#countTags(group, rec.Tags, 1, touched);
          this.#countTags(group, old.rec.Tags, -1, touched);
        } else {
          // Unconditional (a no-op when absent): a put that came without its prev must not leave a stale instance behind.
          // The initial load has one entry per key, so there is nothing to remove (two lookups saved per record).
          // The slot stays even if that empties it: it is about to hold this instance, and a dropped slot would
          // hold it where no read or later removal finds it.
          if (!this.#loading) this.#removeService(node, id, touched, false);
          slot.services.set(id, ix);
          this.#addInstance(ix, touched);
        }
        if (!this.#loading) touched.add(topics.SERVICES).add(topics.node(slot.name)).add(topics.service(rec.Service));
        return;
      }
      case 'c/': {
        const [node, id] = splitNodeKey(rest);
        if (!this.#loading) this.#removeCheck(node, id, touched);
        const slot = this.#slot(node);
        const raw = JSON.parse(e.value) as Partial<CheckRecord>;
        const svc = raw.ServiceID ? slot.services.get(raw.ServiceID) : undefined;
        const rec = this.#pool.check(raw, slot.name, id, svc?.rec.ID);
        const ix: Indexed<CheckRecord> = { rec, createIndex: e.createRevision, modifyIndex: e.modRevision };
        slot.checks.set(id, ix);
        const list = slot.byService.get(rec.ServiceID);
        if (list === undefined) slot.byService.set(rec.ServiceID, ix);
        else if (Array.isArray(list)) list.push(ix);
        else slot.byService.set(rec.ServiceID, [list, ix]);
        this.#touchCheck(slot, rec, touched);
        return;
      }
      case 'k/': {
        const rec = JSON.parse(e.value) as KvRecord;
        if (!this.#kv.has(rest)) this.#kvSorted.added(rest);
        this.#kv.set(rest, { rec, createIndex: e.createRevision, modifyIndex: e.modRevision });
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
      case 'n/': {
        const slot = this.#nodes.get(rest);
        if (slot?.node) {
          slot.node = undefined;
          touched.add(topics.NODES).add(topics.node(slot.name));
          this.#touchNodeServices(slot, touched);
          this.#dropIfEmpty(slot);
        }
        return;
      }
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
        if (this.#kv.delete(rest)) {
          this.#kvSorted.removed(rest);
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

  #addInstance(ix: Indexed<ServiceRecord>, touched: Set<string>): void {
    const name = ix.rec.Service;
    let g = this.#groups.get(name);
    if (!g) {
      this.#groups.set(name, (g = { name, instances: new Set(), tags: new Map(), tagList: undefined }));
      this.#names.added(name);
      touched.add(topics.SERVICE_NAMES);
    }
    g.instances.add(ix);
    this.#instances++;
    this.#countTags(g, ix.rec.Tags, 1, touched);
  }

  /** Counts `tags` up or down in the group's tag union; a tag appearing or vanishing changes the names topic. */
  #countTags(g: ServiceGroup, tags: readonly string[], delta: 1 | -1, touched: Set<string>): void {
    for (const t of tags) {
      const n = (g.tags.get(t) ?? 0) + delta;
      if (n > 0) g.tags.set(t, n);
      else g.tags.delete(t);
      if ((delta === 1 && n === 1) || n <= 0) {
        g.tagList = undefined;
        touched.add(topics.SERVICE_NAMES);
      }
    }
  }

  #removeService(node: string, id: string, touched: Set<string>, dropEmptySlot = true): void {
    const slot = this.#nodes.get(node);
    const old = slot?.services.get(id);
    if (!slot || !old) return;
    slot.services.delete(id);
    const g = this.#groups.get(old.rec.Service);
    if (g?.instances.delete(old)) {
      this.#instances--;
      this.#countTags(g, old.rec.Tags, -1, touched);
      if (g.instances.size === 0) {
        this.#groups.delete(g.name);
        this.#names.removed(g.name);
        touched.add(topics.SERVICE_NAMES);
      }
    }
    touched.add(topics.SERVICES).add(topics.node(slot.name)).add(topics.service(old.rec.Service));
    if (dropEmptySlot) this.#dropIfEmpty(slot);
  }

  #removeCheck(node: string, id: string, touched: Set<string>): void {
    const slot = this.#nodes.get(node);
    const old = slot?.checks.get(id);
    if (!slot || !old) return;
    slot.checks.delete(id);
    const list = slot.byService.get(old.rec.ServiceID);
    if (list === old) slot.byService.delete(old.rec.ServiceID);
    else if (Array.isArray(list)) {
      const k = list.indexOf(old);
      if (k >= 0) list.splice(k, 1);
      if (list.length === 1) slot.byService.set(old.rec.ServiceID, list[0] as Indexed<CheckRecord>);
    }
    this.#touchCheck(slot, old.rec, touched);
    this.#dropIfEmpty(slot);
  }

  #touchCheck(slot: NodeSlot, rec: CheckRecord, touched: Set<string>): void {
    if (this.#loading) return;
    touched.add(topics.CHECKS).add(topics.node(slot.name));
    if (rec.ServiceID) {
      const svc = slot.services.get(rec.ServiceID);
      touched.add(topics.service(svc?.rec.Service ?? rec.ServiceName));
    } else {
      // A node-level check (serfHealth, node maintenance) changes the health of every service on the node.
      this.#touchNodeServices(slot, touched);
    }
  }

  #touchNodeServices(slot: NodeSlot, touched: Set<string>): void {
    for (const s of slot.services.values()) touched.add(topics.service(s.rec.Service));
  }
}
