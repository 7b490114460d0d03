/**
 * The write side of sessions: create, renew, destroy, KV lock acquisition and release, and the
 * invalidations Consul performs on its own (TTL expiry, a listed check going critical or away,
 * the node leaving). Every decision is a guarded store transaction, so on etcd the agents of a
 * cluster race for it and exactly one commits; the others' guards fail and they find the work done.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { badRequest, errorMessage } from '../../../core/errors.js';
import type { Clock, Timer } from '../../../core/clock.js';
import type { Store, StoreChange, StoreCompare, StoreOp } from '../../store/types.js';
import { keys, splitNodeKey } from '../model.js';
import { parseStored } from '../stored.js';
import type { CheckRecord, KvRecord } from '../model.js';
import { REPLAN, Reads, optimistic, unchanged } from '../optimistic.js';
import { removalOps } from '../prepared/writes.js';
import type { PreparedQueryRecord } from '../prepared/model.js';
import { liveSession, lockDelayed, lockedRecord, unlockedRecord } from './locks.js';
import type { KvWrite } from './locks.js';
import { MAX_LOCK_DELAY_NS, SESSION_TTL_MULTIPLIER, sessionCheckIds, sessionKeys, sessionTtlNs } from './model.js';
import type { LockDelayRecord, SessionCreateInput, SessionRecord, SessionTtlRecord } from './model.js';
import type { IndexedSession, SessionView } from './view.js';

export interface SessionsOptions {
  readonly store: Store;
  readonly view: SessionView;
  /** This agent's node: it acts at once on its own sessions, others after `graceMs`. */
  readonly node: string;
  /** TTL deadlines and lock-delays are read from it (tests drive it by hand). */
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Embedded store: sessions found at start get a fresh 2×TTL, as a Consul leader gives them when
   * it takes over (nobody could renew while the agent was down). In a cluster the deadlines in
   * etcd stand, since other agents kept serving.
   */
  readonly freshTtlsOnStart: boolean;
  /** How long an agent waits before doing another node's invalidation (cluster mode; 0 with one agent). */
  readonly graceMs: number;
  /** Prepared queries bound to a session are deleted with it, in the same transaction (as Consul does). */
  readonly preparedQueries?: { boundTo(session: string): PreparedQueryRecord[] };
}

interface Pending {
  readonly reason: string;
  /** Extra guards: the TTL deadline that expired must still be the current one. */
  readonly guard: readonly StoreCompare[];
}

export class Sessions {
  readonly #o: SessionsOptions;
  readonly view: SessionView;
  readonly #graceMs: number;
  readonly #ttlTimers = new Map<string, Timer>();
  readonly #delayTimers = new Map<string, Timer>();
  readonly #pending = new Map<string, Pending>();
  readonly #graceTimers = new Set<NodeJS.Timeout>();
  #draining = false;
  #unsubscribe: (() => void) | undefined;
  #startedAt = 0;
  #openRevision = 0;
  #closed = false;

  constructor(opts: SessionsOptions) {
    this.#o = opts;
    this.view = opts.view;
    this.#graceMs = opts.graceMs;
  }

  /** Subscribe after the view, so every change reaches it first. */
  start(): void {
    this.#startedAt = this.#o.clock.now();
    this.#openRevision = this.#o.store.revision();
    this.#unsubscribe = this.#o.store.subscribe((c) => this.#onChange(c));
    for (const [id] of this.view.ttls()) this.#armTtl(id);
    for (const [k] of this.view.lockDelays()) this.#armLockDelay(k);
    // Whatever happened while this agent was away (a check went critical, a node left).
    for (const s of this.view.list()) {
      const why = this.#deadReason(s);
      if (why) this.#invalidateSoon(s, why);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const t of this.#ttlTimers.values()) t.cancel();
    for (const t of this.#delayTimers.values()) t.cancel();
    for (const t of this.#graceTimers) clearTimeout(t);
    this.#ttlTimers.clear();
    this.#delayTimers.clear();
    this.#pending.clear();
  }

  // -------------------------------------------------------------------------------------------
  // API operations

  async create(input: SessionCreateInput): Promise<string> {
    const store = this.#o.store;
    return optimistic(store, () => {
      const reads = new Reads(store);
      if (!reads.get(keys.node(input.Node))) throw badRequest('Missing node registration');
      const rec: SessionRecord = {
        ID: '', Name: input.Name, Node: input.Node, LockDelay: input.LockDelay, Behavior: input.Behavior, TTL: input.TTL,
        NodeChecks: input.NodeChecks, ServiceChecks: input.ServiceChecks, ...(input.Checks ? { Checks: input.Checks } : {}),
      };
      for (const c of sessionCheckIds(rec)) {
        const e = reads.get(keys.check(input.Node, c));
        if (!e) throw badRequest(`Missing check '${c}' registration`);
        const status = parseStored<CheckRecord>(e.value)?.Status;
        if (status === 'critical') throw badRequest(`Check '${c}' is in ${status} state`);
      }
      let id = randomUUID();
      while (store.get(sessionKeys.session(id))) id = randomUUID();
      reads.get(sessionKeys.session(id));
      rec.ID = id;
      const ops: StoreOp[] = [{ type: 'put', key: sessionKeys.session(id), value: JSON.stringify(rec) }];
      const ttl = sessionTtlNs(rec);
      if (ttl > 0) ops.push(this.#deadline(id, ttl));
      return { txn: { compare: reads.compares, success: ops }, done: () => id };
    }, { what: 'session create' });
  }

  /** Pushes a TTL session's deadline out by 2×TTL; undefined for an unknown session. */
  async renew(id: string): Promise<IndexedSession | undefined> {
    const store = this.#o.store;
    return optimistic(store, () => {
      const e = store.get(sessionKeys.session(id));
      const s = this.view.get(id);
      if (!e || !s) return { done: () => undefined };
      const ttl = sessionTtlNs(s.rec);
      if (ttl === 0) return { done: () => s };
      return { txn: { compare: [unchanged(e.key, e)], success: [this.#deadline(id, ttl)] }, done: () => s };
    }, { what: `session renew ${id}` });
  }

  /** Destroys a session (unknown IDs are fine, as in Consul), applying its behaviour to the keys it holds. */
  async destroy(id: string): Promise<void> {
    await this.#invalidate(id, { reason: 'destroyed', guard: [] });
  }

  /** `PUT /v1/kv/<key>?acquire=<session>`: true when the session holds the lock afterwards. */
  async acquire(kvKey: string, session: string, w: KvWrite): Promise<boolean> {
    const store = this.#o.store;
    return optimistic(store, () => {
      const reads = new Reads(store);
      // Consul's order: the lock-delay is judged before the session (kvsPreApply runs before the
      // state store looks the session up), so inside it every acquisition is false, even a bad one.
      if (lockDelayed(reads, kvKey, this.#o.clock.now())) return { done: () => false };
      if (session === '') throw badRequest('missing session');
      if (!liveSession(reads, session)) throw badRequest(`invalid session ${JSON.stringify(session)}`);
      const prev = reads.get(keys.kv(kvKey));
      const rec = lockedRecord(prev ? parseStored<KvRecord>(prev.value) : undefined, session, w);
      if (!rec) return { done: () => false };
      // Replayable: a session acquiring a lock it already holds gets true again, with the same LockIndex.
      return { txn: { compare: reads.compares, success: this.lockOps(kvKey, session, rec) }, done: () => true, replayable: true };
    }, { what: `acquire of ${kvKey}` });
  }

  /** The writes of a lock acquisition (shared with /v1/txn): the entry, the session's lock marker, an expired lock-delay's removal. */
  lockOps(kvKey: string, session: string, rec: KvRecord): StoreOp[] {
    const ops: StoreOp[] = [
      { type: 'put', key: keys.kv(kvKey), value: JSON.stringify(rec) },
      { type: 'put', key: sessionKeys.locks(session), value: '{}' },
    ];
    if (this.view.lockDelay(kvKey)) ops.push({ type: 'delete', key: sessionKeys.lockDelay(kvKey) });
    return ops;
  }

  /** `PUT /v1/kv/<key>?release=<session>`: true when the session held the lock and now does not. */
  async release(kvKey: string, session: string, w: KvWrite): Promise<boolean> {
    if (session === '') throw badRequest('missing session');
    const store = this.#o.store;
    return optimistic(store, () => {
      const prev = store.get(keys.kv(kvKey));
      const rec = unlockedRecord(prev ? parseStored<KvRecord>(prev.value) : undefined, session, w);
      if (!rec || !prev) return { done: () => false };
      return { txn: { compare: [unchanged(prev.key, prev)], success: [{ type: 'put', key: prev.key, value: JSON.stringify(rec) }] }, done: () => true };
    }, { what: `release of ${kvKey}` });
  }

  // -------------------------------------------------------------------------------------------
  // Invalidation

  #deadline(id: string, ttlNs: number): StoreOp {
    const rec: SessionTtlRecord = { Expires: this.#o.clock.now() + (ttlNs / 1e6) * SESSION_TTL_MULTIPLIER };
    return { type: 'put', key: sessionKeys.ttl(id), value: JSON.stringify(rec) };
  }

  /**
   * Deletes the session and releases (or deletes) every key it holds, setting their lock-delay,
   * in one guarded transaction. True when this call did it, false when the session was already gone.
   */
  async #invalidate(id: string, p: Pending): Promise<boolean> {
    const store = this.#o.store;
    const done = await optimistic(store, () => {
      const se = store.get(sessionKeys.session(id));
      const s = this.view.get(id);
      if (!se || !s) return { done: () => false };
      const compare: StoreCompare[] = [unchanged(se.key, se), unchanged(sessionKeys.locks(id), store.get(sessionKeys.locks(id))), ...p.guard];
      const ops: StoreOp[] = [
        { type: 'delete', key: se.key },
        { type: 'delete', key: sessionKeys.ttl(id) },
        { type: 'delete', key: sessionKeys.locks(id) },
      ];
      for (const q of this.#o.preparedQueries?.boundTo(id) ?? []) removalOps(store, q, compare, ops);
      const delayMs = Math.min(s.rec.LockDelay, MAX_LOCK_DELAY_NS) / 1e6;
      const now = this.#o.clock.now();
      for (const k of this.view.heldBy(id)) {
        const e = store.get(keys.kv(k));
        const kv = e ? parseStored<KvRecord>(e.value) : undefined;
        if (!e || !kv || kv.Session !== id) continue;
        compare.push(unchanged(e.key, e));
        if (s.rec.Behavior === 'delete') ops.push({ type: 'delete', key: e.key });
        else {
          const released: KvRecord = { Flags: kv.Flags, Value: kv.Value, LockIndex: kv.LockIndex };
          ops.push({ type: 'put', key: e.key, value: JSON.stringify(released) });
        }
        if (delayMs > 0) {
          const ld: LockDelayRecord = { Until: now + delayMs, Session: id, Node: s.rec.Node };
          ops.push({ type: 'put', key: sessionKeys.lockDelay(k), value: JSON.stringify(ld) });
        }
      }
      return {
        txn: { compare, success: ops },
        done: () => true,
        // A renewal that landed after the deadline fired wins: the session lives on.
        lost: () => (this.#stillDue(id, p) ? REPLAN : false),
      };
    }, { what: `session ${id} invalidation` });
    if (done === true) this.#o.logger.info({ session: id, reason: p.reason }, 'session invalidated');
    return done === true;
  }

  /** Whether an invalidation is still warranted after a lost race (a renewal voids a TTL expiry). */
  #stillDue(id: string, p: Pending): boolean {
    const t = this.view.ttl(id);
    return p.guard.every((g) => g.key !== sessionKeys.ttl(id) || (g.target === 'modRevision' && t?.modRevision === g.equals));
  }

  /** Why a session must go, judged on the current view; undefined while it is healthy. */
  #deadReason(s: IndexedSession): string | undefined {
    const store = this.#o.store;
    if (!store.get(keys.node(s.rec.Node))) return `node ${s.rec.Node} is gone`;
    for (const c of sessionCheckIds(s.rec)) {
      const e = store.get(keys.check(s.rec.Node, c));
      if (!e) return `check ${c} of node ${s.rec.Node} is gone`;
      if (parseStored<CheckRecord>(e.value)?.Status === 'critical') return `check ${c} of node ${s.rec.Node} is critical`;
    }
    return undefined;
  }

  /** Queues an invalidation: at once for this agent's own node, after the grace for others (whose own agent normally does it). */
  #invalidateSoon(s: IndexedSession, reason: string, guard: readonly StoreCompare[] = []): void {
    if (this.#closed) return;
    const enqueue = (): void => {
      if (this.#closed || !this.view.get(s.rec.ID)) return;
      this.#pending.set(s.rec.ID, { reason, guard });
      void this.#drain();
    };
    if (s.rec.Node === this.#o.node || this.#graceMs === 0) enqueue();
    else {
      const t = setTimeout(() => {
        this.#graceTimers.delete(t);
        enqueue();
      }, this.#graceMs);
      t.unref();
      this.#graceTimers.add(t);
    }
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (!this.#closed && this.#pending.size > 0) {
        const [id, p] = this.#pending.entries().next().value as [string, Pending];
        this.#pending.delete(id);
        try {
          await this.#invalidate(id, p);
        } catch (err) {
          // Store unavailable or contention: try again shortly while the reason still holds.
          this.#o.logger.warn({ session: id, reason: p.reason, err: errorMessage(err) }, 'session invalidation failed; retrying');
          const t = setTimeout(() => {
            this.#graceTimers.delete(t);
            if (!this.#closed && this.view.get(id)) {
              this.#pending.set(id, p);
              void this.#drain();
            }
          }, 1000);
          t.unref();
          this.#graceTimers.add(t);
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Reacting to changes

  #onChange(change: StoreChange): void {
    if (this.#closed) return;
    const ttls = new Set<string>();
    for (const ev of change.events) {
      const k = ev.key;
      if (k.startsWith('c/')) {
        const [node, checkId] = splitNodeKey(k.slice(2));
        const ids = this.view.onCheck(node, checkId);
        if (ids.length === 0) continue;
        const gone = ev.type === 'delete';
        if (!gone && parseStored<CheckRecord>(ev.entry?.value ?? '')?.Status !== 'critical') continue;
        for (const id of ids) {
          const s = this.view.get(id);
          if (s) this.#invalidateSoon(s, `check ${checkId} of node ${node} ${gone ? 'was deregistered' : 'is critical'}`);
        }
      } else if (k.startsWith('n/') && ev.type === 'delete') {
        const node = k.slice(2);
        for (const s of this.view.onNode(node)) this.#invalidateSoon(s, `node ${node} was deregistered`);
      } else if (k.startsWith(sessionKeys.TTL_PREFIX)) {
        ttls.add(k.slice(sessionKeys.TTL_PREFIX.length));
      } else if (k.startsWith(sessionKeys.SESSION_PREFIX)) {
        ttls.add(k.slice(sessionKeys.SESSION_PREFIX.length));
      } else if (k.startsWith(sessionKeys.LOCK_DELAY_PREFIX)) {
        this.#armLockDelay(k.slice(sessionKeys.LOCK_DELAY_PREFIX.length));
      }
    }
    for (const id of ttls) this.#armTtl(id);
  }

  /** (Re)arms the expiry of a TTL session from its stored deadline (Consul: TTL × 2 after the last renewal). */
  #armTtl(id: string): void {
    this.#ttlTimers.get(id)?.cancel();
    this.#ttlTimers.delete(id);
    const t = this.view.ttl(id);
    const s = this.view.get(id);
    if (!t || !s || this.#closed) return;
    let due = t.Expires;
    if (this.#o.freshTtlsOnStart && t.modRevision <= this.#openRevision) {
      due = Math.max(due, this.#startedAt + (sessionTtlNs(s.rec) / 1e6) * SESSION_TTL_MULTIPLIER);
    }
    const clock = this.#o.clock;
    this.#ttlTimers.set(id, clock.setTimeout(() => {
      this.#ttlTimers.delete(id);
      const cur = this.view.ttl(id);
      if (!cur || cur.modRevision !== t.modRevision) return; // renewed: its change re-armed the timer
      this.#invalidateSoon(s, 'TTL expired', [{ key: sessionKeys.ttl(id), target: 'modRevision', equals: t.modRevision }]);
    }, Math.max(0, due - clock.now())));
  }

  /** Forgets a lock-delay once it has passed (the key must not pile up: semaphores leave one per contender). */
  #armLockDelay(kvKey: string): void {
    this.#delayTimers.get(kvKey)?.cancel();
    this.#delayTimers.delete(kvKey);
    const d = this.view.lockDelay(kvKey);
    if (!d || this.#closed) return;
    const clock = this.#o.clock;
    const extra = d.Node === this.#o.node ? 0 : this.#graceMs;
    this.#delayTimers.set(kvKey, clock.setTimeout(() => {
      this.#delayTimers.delete(kvKey);
      const key = sessionKeys.lockDelay(kvKey);
      const cur = this.#o.store.get(key);
      if (!cur || cur.modRevision !== d.modRevision) return;
      void this.#o.store.txn({ compare: [unchanged(key, cur)], success: [{ type: 'delete', key }] })
        .catch((err: unknown) => this.#o.logger.debug({ key: kvKey, err: errorMessage(err) }, 'lock-delay cleanup failed'));
    }, Math.max(0, d.Until - clock.now()) + extra));
  }
}
