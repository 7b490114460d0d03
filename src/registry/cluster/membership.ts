/**
 * Agent liveness on a shared etcd store, in place of Consul's Serf gossip.
 *
 * Each agent holds an etcd lease and keeps `a/<node>` alive under it; `m/<node>` (no lease) says
 * the node is a cluster member whose health follows that key. When an agent dies its lease
 * expires, etcd deletes `a/<node>`, and every surviving agent races to mark the node's
 * serfHealth check critical with a guarded transaction: it only commits while `a/<node>` is still
 * absent and the check is unchanged, so exactly one write lands and a node that came back in the
 * meantime is never marked dead. A returning agent writes `a/<node>` first and serfHealth passing
 * second, so a late marker's guard fails.
 */
import type { Logger } from 'pino';
import { SwitchyardError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';
import type { StoreChange } from '../store/types.js';
import type { EtcdStore, StoreLease } from '../store/etcd.js';
import { NODE_CHECK_SERF, keys } from '../server/model.js';
import { decodeCheck, encodeCheck } from '../server/stored.js';
import type { CheckRecord } from '../server/model.js';
import type { Registry } from '../server/registry.js';

export const { ALIVE_PREFIX, MEMBER_PREFIX } = keys;

export interface MembershipOptions {
  readonly store: EtcdStore;
  readonly registry: Registry;
  readonly logger: Logger;
  /** Lease TTL: a dead agent's node goes critical this long after its last renewal (default 10 s). */
  readonly ttlSeconds: number;
  /** What other agents may show about this one (its API URL). */
  readonly advertiseUrl: string;
  /** How often every agent re-checks all members, catching deaths it missed while disconnected. */
  readonly sweepIntervalMs?: number;
  /** Called after each (re)announcement: the moment to re-assert local services (anti-entropy). */
  readonly onAnnounced?: () => void;
  /**
   * How long start() keeps announcing while the store is unavailable (default 30 s). An election or a
   * member restart can hold a write (or its delivery on this agent's own watch) past the store timeout;
   * an agent that exits then is the outage, so it tries again, and gives up only with a clear error.
   */
  readonly startBudgetMs?: number;
}

export const DEAD_OUTPUT = 'Agent not live or unreachable (its etcd lease expired)';

export class Membership {
  readonly #o: MembershipOptions;
  /** The lease the alive key is on. */
  #lease: StoreLease | undefined;
  /** Every lease granted and not yet revoked: close() revokes them all, so none is left renewing. */
  readonly #leases = new Set<StoreLease>();
  /** The re-announcement running now; a request meanwhile runs once more after it. */
  #reannouncing: Promise<void> | undefined;
  #reannounceAgain = false;
  #closed = false;
  readonly #ac = new AbortController();
  #unsubscribe: (() => void) | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #sweepAgain = false;

  constructor(opts: MembershipOptions) {
    this.#o = opts;
  }

  get node(): string {
    return this.#o.registry.node.name;
  }

  /** Takes a lease, announces this node alive, then (re)asserts its node record and serfHealth passing. */
  async start(): Promise<void> {
    this.#claimName();
    await this.#announceWithin(this.#o.startBudgetMs ?? 30_000);
    this.#unsubscribe = this.#o.store.subscribe((c) => this.#onChange(c));
    const every = this.#o.sweepIntervalMs ?? Math.max(1000, (this.#o.ttlSeconds * 1000) / 2);
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
    this.#sweepTimer.unref();
    this.#sweep();
  }

  /**
   * A live alive key for this node name means either a previous run of this agent (killed, its
   * lease not yet expired: the put in #announce moves the key to our lease, so the old lease's
   * expiry no longer deletes it) or another agent using the same name, which would make two
   * agents share one node's liveness and checks: refuse to start.
   */
  #claimName(): void {
    const cur = this.#o.store.get(ALIVE_PREFIX + this.node);
    if (!cur) return;
    let held: { ID?: string; API?: string };
    try {
      held = JSON.parse(cur.value) as typeof held;
    } catch {
      held = {};
    }
    if (held.ID !== undefined && held.ID !== this.#o.registry.node.id) {
      throw new SwitchyardError('SY_ERR_CONFIG', `node name "${this.node}" is already in use by a live agent${held.API ? ` at ${held.API}` : ''} (node ID ${held.ID}); give this agent another --node, or stop that one`);
    }
  }

  /** #announce, repeated with backoff while the store says it is unavailable, for at most `budgetMs`. */
  async #announceWithin(budgetMs: number): Promise<void> {
    const end = Date.now() + budgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#announce();
        return;
      } catch (err) {
        const wait = Math.min(2000, 250 * 2 ** attempt);
        const unavailable = err instanceof SwitchyardError && err.code === 'SY_ERR_STORE_UNAVAILABLE';
        if (!unavailable || this.#closed || Date.now() + wait >= end) throw err;
        this.#o.logger.warn({ err: err.message, attempt, retryInMs: wait }, 'announcing this agent at start failed; the store is unavailable, retrying');
        await sleep(wait, this.#ac.signal).catch(() => undefined);
      }
    }
  }

  async #announce(): Promise<void> {
    const store = this.#o.store;
    const lease = await store.lease(this.#o.ttlSeconds);
    this.#leases.add(lease);
    lease.onLost((err) => {
      if (this.#closed || this.#lease !== lease) return;
      this.#o.logger.warn({ err: err.message }, 'etcd lease lost: announcing this agent again');
      this.#reannounce();
    });
    const node = this.node;
    try {
      await store.txn({
        success: [
          { type: 'put', key: ALIVE_PREFIX + node, value: JSON.stringify({ Node: node, ID: this.#o.registry.node.id, API: this.#o.advertiseUrl, Lease: lease.id }), lease: lease.id },
          { type: 'put', key: MEMBER_PREFIX + node, value: JSON.stringify({ Node: node, TTL: this.#o.ttlSeconds }) },
        ],
      });
    } catch (err) {
      // Nothing is on this lease: let it go rather than renew it for nothing until close().
      await this.#revoke(lease);
      throw err;
    }
    const previous = this.#lease;
    this.#lease = lease;
    // The alive key moved to the new lease, so the old one holds nothing now; left alone it would
    // keep renewing (and keep the process alive after close()).
    if (previous !== undefined && previous !== lease) await this.#revoke(previous);
    await this.#o.registry.ensureLocalNode();
    this.#o.logger.info({ node, lease: lease.id, ttlSeconds: this.#o.ttlSeconds }, 'agent alive in the cluster');
    this.#o.onAnnounced?.();
  }

  async #revoke(lease: StoreLease): Promise<void> {
    this.#leases.delete(lease);
    await lease.revoke().catch(() => lease.release());
  }

  /** Announces again (serialized: a lost lease and a deleted alive key arriving together announce once, then once more). */
  #reannounce(): void {
    if (this.#closed) return;
    if (this.#reannouncing !== undefined) {
      this.#reannounceAgain = true;
      return;
    }
    this.#reannouncing = this.#reannounceLoop().finally(() => {
      this.#reannouncing = undefined;
      if (this.#reannounceAgain) {
        this.#reannounceAgain = false;
        this.#reannounce();
      }
    });
  }

  async #reannounceLoop(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        await this.#announce();
        return;
      } catch (err) {
        this.#o.logger.warn({ err: err instanceof Error ? err.message : String(err), attempt }, 'announcing this agent failed; retrying');
        // Never longer than a third of the TTL: etcd3 gives a lease up after 2 × TTL without a renewal,
        // but across a quorum loss etcd itself keeps it and, once a leader is back, grants it a full TTL
        // more. Nobody renews it any longer, so the alive key on it goes a TTL after the outage: the new
        // announce has to land before that, or every agent marks this node critical until it does.
        await sleep(Math.min(5000, (this.#o.ttlSeconds * 1000) / 3, 250 * 2 ** attempt), this.#ac.signal).catch(() => undefined);
      }
    }
  }

  #onChange(change: StoreChange): void {
    for (const ev of change.events) {
      if (ev.key.startsWith(ALIVE_PREFIX)) {
        if (ev.type === 'delete' && ev.key === ALIVE_PREFIX + this.node && !this.#closed) {
          // Our own key went away (lease expired during a long cut-off, or deleted by hand).
          this.#o.logger.warn('this agent\'s alive key was deleted: announcing again');
          this.#reannounce();
        }
        this.#sweep();
        return;
      }
    }
  }

  /** Marks every member whose alive key is gone critical (once), serializing sweeps. */
  #sweep(): void {
    if (this.#closed) return;
    if (this.#sweeping) {
      this.#sweepAgain = true;
      return;
    }
    this.#sweeping = true;
    void this.#sweepOnce().finally(() => {
      this.#sweeping = false;
      if (this.#sweepAgain) {
        this.#sweepAgain = false;
        this.#sweep();
      }
    });
  }

  async #sweepOnce(): Promise<void> {
    const store = this.#o.store;
    for (const member of store.range(MEMBER_PREFIX)) {
      const node = member.key.slice(MEMBER_PREFIX.length);
      if (store.get(ALIVE_PREFIX + node)) continue;
      const checkKey = keys.check(node, NODE_CHECK_SERF);
      const check = store.get(checkKey);
      if (!check) continue;
      let rec: CheckRecord;
      try {
        rec = decodeCheck(check.value, checkKey);
      } catch {
        continue;
      }
      if (rec.Status === 'critical') continue;
      const dead: CheckRecord = { ...rec, Status: 'critical', Output: DEAD_OUTPUT };
      try {
        const r = await store.txn({
          compare: [
            { key: ALIVE_PREFIX + node, target: 'exists', equals: false },
            { key: checkKey, target: 'modRevision', equals: check.modRevision },
          ],
          success: [{ type: 'put', key: checkKey, value: encodeCheck(dead, checkKey) }],
        });
        if (r.succeeded) this.#o.logger.warn({ node, revision: r.revision }, 'agent lease expired: node marked critical');
      } catch (err) {
        this.#o.logger.warn({ node, err: err instanceof Error ? err.message : String(err) }, 'could not mark a dead agent\'s node critical; the next sweep retries');
      }
    }
  }

  /**
   * Revokes every lease this agent holds (graceful leave: the node goes critical at once instead of
   * after the TTL, and no keep-alive is left running).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ac.abort();
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#unsubscribe?.();
    // A re-announcement in flight may still grant a lease: let it finish, then revoke everything.
    await this.#reannouncing?.catch(() => undefined);
    this.#lease = undefined;
    await Promise.all([...this.#leases].map((l) => this.#revoke(l)));
  }
}
