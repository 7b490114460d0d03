/**
 * The read side of sessions, materialized from store changes: sessions by ID, node and check, the
 * KV keys each one holds, TTL deadlines and lock-delays, plus the index and parked blocking
 * queries of /v1/session/*. Only session changes move the index; renewals and lock traffic do not.
 */
import type { StoreChange, StoreEntry } from '../../store/types.js';
import type { Cancel, WaitEnd, WatchSpec } from '../catalog-reader.js';
import { Broadcast } from '../broadcast.js';
import { keys } from '../model.js';
import { parseStored } from '../stored.js';
import type { KvRecord } from '../model.js';
import { sessionCheckIds, sessionKeys } from './model.js';
import type { LockDelayRecord, SessionRecord, SessionTtlRecord } from './model.js';

export interface IndexedSession {
  readonly rec: SessionRecord;
  readonly createIndex: number;
}

export const SESSIONS_TOPIC = 'sessions';

const checkRef = (node: string, checkId: string): string => `${node}/${checkId}`;

export class SessionView {
  readonly #sessions = new Map<string, IndexedSession>();
  readonly #byNode = new Map<string, Set<string>>();
  readonly #byCheck = new Map<string, Set<string>>();
  /** session ID → KV keys whose entry names it as holder. */
  readonly #held = new Map<string, Set<string>>();
  /** KV key → its holder, to move the key when its holder changes. */
  readonly #holderOf = new Map<string, string>();
  readonly #ttls = new Map<string, SessionTtlRecord & { modRevision: number }>();
  readonly #lockDelays = new Map<string, LockDelayRecord & { modRevision: number }>();
  readonly #floor: number;
  #index = 0;
  readonly #changes = new Broadcast();

  constructor(initial: { revision: number; entries: readonly StoreEntry[] }) {
    this.#floor = initial.revision;
    for (const e of initial.entries) this.#put(e);
  }

  /** X-Consul-Index of the session endpoints: never 0, never below the revision the store opened at. */
  get index(): number {
    return Math.max(this.#index, this.#floor, 1);
  }

  get(id: string): IndexedSession | undefined {
    return this.#sessions.get(id);
  }

  /** Every session, ordered by ID (Consul iterates its ID index). */
  list(): IndexedSession[] {
    return [...this.#sessions.values()].sort((a, b) => (a.rec.ID < b.rec.ID ? -1 : a.rec.ID > b.rec.ID ? 1 : 0));
  }

  onNode(node: string): IndexedSession[] {
    return [...(this.#byNode.get(node) ?? [])].map((id) => this.#sessions.get(id) as IndexedSession)
      .sort((a, b) => (a.rec.ID < b.rec.ID ? -1 : 1));
  }

  /** Sessions that name this check of this node. */
  onCheck(node: string, checkId: string): string[] {
    return [...(this.#byCheck.get(checkRef(node, checkId)) ?? [])];
  }

  /** KV keys (without the store prefix) held by the session. */
  heldBy(id: string): string[] {
    return [...(this.#held.get(id) ?? [])].sort();
  }

  ttl(id: string): (SessionTtlRecord & { modRevision: number }) | undefined {
    return this.#ttls.get(id);
  }

  ttls(): IterableIterator<[string, SessionTtlRecord & { modRevision: number }]> {
    return this.#ttls.entries();
  }

  lockDelay(kvKey: string): (LockDelayRecord & { modRevision: number }) | undefined {
    return this.#lockDelays.get(kvKey);
  }

  lockDelays(): IterableIterator<[string, LockDelayRecord & { modRevision: number }]> {
    return this.#lockDelays.entries();
  }

  apply(change: StoreChange): void {
    let sessionsChanged = false;
    for (const ev of change.events) {
      if (ev.key.startsWith(sessionKeys.SESSION_PREFIX)) sessionsChanged = true;
      if (ev.prev) this.#remove(ev.prev);
      if (ev.type === 'put' && ev.entry) this.#put(ev.entry);
    }
    if (!sessionsChanged) return;
    this.#index = change.revision;
    this.#changes.fire();
  }

  /** Parks until a session is created or destroyed (→ when), the timeout passes or `cancel` fires (→ false). */
  wait(_spec: WatchSpec, timeoutMs: number, cancel?: Cancel): Promise<WaitEnd> {
    return this.#changes.wait(timeoutMs, cancel);
  }

  #put(e: StoreEntry): void {
    if (e.key.startsWith(sessionKeys.SESSION_PREFIX)) {
      const rec = parseStored<SessionRecord>(e.value);
      if (!rec) return;
      this.#sessions.set(rec.ID, { rec, createIndex: e.createRevision });
      add(this.#byNode, rec.Node, rec.ID);
      for (const c of sessionCheckIds(rec)) add(this.#byCheck, checkRef(rec.Node, c), rec.ID);
    } else if (e.key.startsWith(keys.KV_PREFIX)) {
      const holder = parseStored<KvRecord>(e.value)?.Session;
      if (!holder) return;
      const k = e.key.slice(keys.KV_PREFIX.length);
      add(this.#held, holder, k);
      this.#holderOf.set(k, holder);
    } else if (e.key.startsWith(sessionKeys.TTL_PREFIX)) {
      const rec = parseStored<SessionTtlRecord>(e.value);
      if (rec) this.#ttls.set(e.key.slice(sessionKeys.TTL_PREFIX.length), { ...rec, modRevision: e.modRevision });
    } else if (e.key.startsWith(sessionKeys.LOCK_DELAY_PREFIX)) {
      const rec = parseStored<LockDelayRecord>(e.value);
      if (rec) this.#lockDelays.set(e.key.slice(sessionKeys.LOCK_DELAY_PREFIX.length), { ...rec, modRevision: e.modRevision });
    }
  }

  #remove(e: StoreEntry): void {
    if (e.key.startsWith(sessionKeys.SESSION_PREFIX)) {
      const id = e.key.slice(sessionKeys.SESSION_PREFIX.length);
      const cur = this.#sessions.get(id);
      if (!cur) return;
      this.#sessions.delete(id);
      drop(this.#byNode, cur.rec.Node, id);
      for (const c of sessionCheckIds(cur.rec)) drop(this.#byCheck, checkRef(cur.rec.Node, c), id);
    } else if (e.key.startsWith(keys.KV_PREFIX)) {
      const k = e.key.slice(keys.KV_PREFIX.length);
      const holder = this.#holderOf.get(k);
      if (holder === undefined) return;
      this.#holderOf.delete(k);
      drop(this.#held, holder, k);
    } else if (e.key.startsWith(sessionKeys.TTL_PREFIX)) {
      this.#ttls.delete(e.key.slice(sessionKeys.TTL_PREFIX.length));
    } else if (e.key.startsWith(sessionKeys.LOCK_DELAY_PREFIX)) {
      this.#lockDelays.delete(e.key.slice(sessionKeys.LOCK_DELAY_PREFIX.length));
    }
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function drop(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
