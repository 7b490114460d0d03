/**
 * Holds the current routing snapshot and swaps it atomically. Updates happen here, off the hot
 * path, on every ServiceSet the source emits, through a TableBuilder that recompiles only what the
 * changed services touch; a failed build keeps the previous snapshot (and the next build starts
 * over from the whole set). The
 * mass-loss guard sits between the source's set and the build, and change latency (commit → swap
 * → first routed request) is measured here.
 */
import type { Logger } from 'pino';
import type { Random } from '../core/clock.js';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { ChangeStamp, ServiceSet } from '../discovery/types.js';
import type { RouteSpec, StrategyName } from '../config/route-spec.js';
import { RoutingSnapshot } from './snapshot.js';
import type { UpstreamGroup } from './snapshot.js';
import { TableBuilder } from './table-builder.js';
import { LossGuard } from './loss-guard.js';
import type { GuardConfig, GuardEvent, HeldInstance } from './loss-guard.js';

export interface SnapshotStoreOptions {
  specs: readonly RouteSpec[];
  states: UpstreamStates;
  random: Random;
  panicThreshold: number;
  defaultBalance: StrategyName;
  logger: Logger;
  isEligible?: (u: Upstream) => boolean;
  tcp?: readonly { service: string; balance: StrategyName }[];
  /** The mass-loss guard; absent: every set is taken as it comes (workers, whose primary guards). */
  guard?: GuardConfig;
  onGuardEvent?: (e: GuardEvent) => void;
  /** Seconds from a change's commit to this table's swap, and to its first routed request. */
  onChangeLatency?: (stage: ChangeStage, seconds: number, clock: ChangeStamp['clock']) => void;
}

export type ChangeStage = 'swap' | 'first_request';

/** `set.changed`: the services that changed since the previous swap's set (absent: compare everything). */
export type SwapListener = (next: RoutingSnapshot, prev: RoutingSnapshot | undefined, set: ServiceSet) => void;

/** The last change's way through the balancer, for /routes and the UI. */
export interface LastChange {
  readonly version: number;
  readonly committedAt: number;
  readonly clock: ChangeStamp['clock'];
  readonly swapSeconds: number;
  readonly firstRequestSeconds: number | undefined;
}

export interface GuardState {
  readonly maxDropPercent: number;
  readonly holdMs: number;
  readonly held: readonly HeldInstance[];
}

export class SnapshotStore {
  #current: RoutingSnapshot | undefined;
  #set: ServiceSet | undefined;
  /** The source's last set as it came, before the guard added what it holds. */
  #raw: ServiceSet | undefined;
  #version = 0;
  #o: SnapshotStoreOptions;
  readonly #listeners = new Set<SwapListener>();
  readonly #guard: LossGuard | undefined;
  #releaseTimer: NodeJS.Timeout | undefined;
  #lastChange: LastChange | undefined;
  #saidSkew = false;
  /** Ids flagged held in the upstream states, by service (from the sets' held markers, so workers know too). */
  readonly #heldIds = new Map<string, Set<string>>();
  #builder: TableBuilder;
  /** The groups of the table a new builder takes over from (after a failed build), to report them gone. */
  #replacing: Iterable<UpstreamGroup> | undefined;
  /** Services changed since the last table was built (hints of the sets since, the guard's too); 'all': compare every service. */
  #pending: Set<string> | 'all' = 'all';

  constructor(opts: SnapshotStoreOptions) {
    this.#o = opts;
    this.#guard = opts.guard && opts.guard.maxDropPercent < 100 ? new LossGuard(opts.guard) : undefined;
    this.#builder = this.#newBuilder();
  }

  #newBuilder(): TableBuilder {
    const o = this.#o;
    return new TableBuilder({
      specs: o.specs, states: o.states, random: o.random, panicThreshold: o.panicThreshold, defaultBalance: o.defaultBalance,
      ...(o.isEligible ? { isEligible: o.isEligible } : {}), ...(o.tcp ? { tcp: o.tcp } : {}),
    });
  }

  /** The snapshot requests use; undefined until the first ServiceSet arrives. */
  get current(): RoutingSnapshot | undefined {
    return this.#current;
  }

  /** The set the current table was built from (instances the guard holds included). */
  get serviceSet(): ServiceSet | undefined {
    return this.#set;
  }

  get lastChange(): LastChange | undefined {
    return this.#lastChange;
  }

  /** The guard's settings and what it holds now; undefined when the guard is off. */
  guardState(): GuardState | undefined {
    const g = this.#guard;
    return g ? { maxDropPercent: g.config.maxDropPercent, holdMs: g.config.holdMs, held: g.held() } : undefined;
  }

  onSwap(l: SwapListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** Builds and swaps in a snapshot for `set`; returns false (keeping the old one) if the build fails. */
  update(set: ServiceSet): boolean {
    this.#raw = set;
    if (set.changed === undefined) this.#pending = 'all';
    else if (this.#pending !== 'all') for (const s of set.changed) this.#pending.add(s);
    let effective = set;
    if (this.#guard) {
      const pending = this.#pending;
      const r = this.#guard.apply(this.#set, set, Date.now(), pending === 'all' ? undefined : pending);
      effective = r.set;
      if (pending !== 'all') for (const s of r.touched) pending.add(s);
      for (const e of r.events) this.#report(e);
      this.#scheduleRelease();
    }
    return this.#build(effective);
  }

  /**
   * New routes (a reload): the table is rebuilt from the set it was built from, by a new builder that
   * reports the old table's groups as gone and the new ones as added, so pools and states follow.
   * Returns false, keeping the previous table and routes, when the build fails.
   */
  setSpecs(specs: readonly RouteSpec[]): boolean {
    const previous = this.#o;
    this.#o = { ...this.#o, specs };
    this.#builder = this.#newBuilder();
    this.#replacing = this.#current?.groups.values();
    this.#pending = 'all';
    if (this.#set === undefined || this.#build(this.#set)) return true;
    this.#o = previous;
    this.#builder = this.#newBuilder();
    return false;
  }

  /** Stops the guard's release timer (the balancer is closing). */
  close(): void {
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
  }

  #build(set: ServiceSet): boolean {
    const changed = this.#pending;
    this.#syncHeld(set, changed);
    let next: RoutingSnapshot;
    try {
      const parts = this.#builder.build(set, { changed: changed === 'all' ? undefined : changed, initial: this.#current === undefined, change: set.change }, this.#replacing);
      next = new RoutingSnapshot(this.#version + 1, parts);
    } catch (err) {
      this.#o.logger.error({ err }, 'routing table build failed: keeping the previous table');
      // The builder may have been left half way: the next build starts over from the whole set.
      this.#builder = this.#newBuilder();
      this.#replacing = this.#current?.groups.values();
      this.#pending = 'all';
      return false;
    }
    this.#replacing = undefined;
    this.#pending = new Set();
    this.#version = next.version;
    const prev = this.#current;
    this.#current = next;
    this.#set = set;
    // A store's first table is the state as found (a worker started late gets an old stamp): no change to measure.
    if (next.change && prev !== undefined) this.#measure(next, next.change);
    if (next.errors !== prev?.errors) {
      const had = new Set(prev?.errors);
      for (const e of next.errors) if (!had.has(e)) this.#o.logger.warn({ problem: e }, 'route left out of the table');
    }
    const { changed: _raw, ...whole } = set;
    const handed: ServiceSet = changed === 'all' ? whole : { ...whole, changed };
    for (const l of this.#listeners) l(next, prev, handed);
    return true;
  }

  /** Mirrors the sets' held markers into the upstream states, for the services that changed. */
  #syncHeld(set: ServiceSet, changed: Set<string> | 'all'): void {
    const services = changed === 'all' ? new Set([...set.instances.keys(), ...this.#heldIds.keys()]) : changed;
    for (const service of services) {
      const held = new Set<string>();
      for (const i of set.instances.get(service) ?? []) if (i.held) held.add(i.id);
      const before = this.#heldIds.get(service);
      for (const id of before ?? []) if (!held.has(id)) this.#o.states.setHeld(id, false);
      for (const id of held) this.#o.states.setHeld(id, true);
      if (held.size > 0) this.#heldIds.set(service, held);
      else this.#heldIds.delete(service);
    }
  }

  /** The swap stage now, the first-request stage when the table routes its first request. */
  #measure(next: RoutingSnapshot, change: ChangeStamp): void {
    const swap = this.#seconds(change, Date.now());
    this.#lastChange = { version: next.version, committedAt: change.committedAt, clock: change.clock, swapSeconds: swap, firstRequestSeconds: undefined };
    this.#o.onChangeLatency?.('swap', swap, change.clock);
    next.onFirstRouted((snap) => {
      const first = this.#seconds(change, snap.routedAt);
      if (this.#lastChange?.version === snap.version) this.#lastChange = { ...this.#lastChange, firstRequestSeconds: first };
      this.#o.onChangeLatency?.('first_request', first, change.clock);
    });
  }

  #seconds(change: ChangeStamp, at: number): number {
    const ms = at - change.committedAt;
    if (ms < 0 && !this.#saidSkew) {
      // The registry's clock is ahead of ours: the figures are only as good as clock sync.
      this.#saidSkew = true;
      this.#o.logger.warn({ aheadMs: -ms }, 'a change was committed "in the future" by this balancer\'s clock: are the registry\'s and the balancer\'s clocks synchronised (NTP)? change latency counts it as 0');
    }
    return Math.max(0, ms) / 1000;
  }

  #report(e: GuardEvent): void {
    const log = this.#o.logger;
    if (e.kind === 'held') {
      log.warn({ service: e.service, instances: e.ids, lostPercent: e.lostPercent, of: e.before, maxDropPercent: this.#guard?.config.maxDropPercent, until: new Date(e.until).toISOString() },
        'mass-loss guard: holding instances that left the registry without a failing check (more than max-drop of the service at once); they stay in the table until the hold ends');
    } else {
      log.info({ service: e.service, instances: e.ids, reason: e.reason }, 'mass-loss guard: released held instances');
    }
    this.#o.onGuardEvent?.(e);
  }

  /** Re-applies the last raw set when the next hold ends, so expired instances leave without waiting for the registry. */
  #scheduleRelease(): void {
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
    const at = this.#guard?.nextRelease();
    if (at === undefined) return;
    this.#releaseTimer = setTimeout(() => {
      this.#releaseTimer = undefined;
      const raw = this.#raw;
      // Not a registry change: the release carries no commit time, and changes nothing the source sent.
      if (raw) this.update({ catalog: raw.catalog, instances: raw.instances, ...(raw.critical ? { critical: raw.critical } : {}), changed: new Set() });
    }, Math.max(0, at - Date.now()) + 1);
    this.#releaseTimer.unref();
  }
}
