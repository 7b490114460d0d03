/**
 * Holds the current routing snapshot and swaps it atomically. Rebuilds happen here, off the hot
 * path, on every ServiceSet the source emits; a failed build keeps the previous snapshot. The
 * mass-loss guard sits between the source's set and the build, and change latency (commit → swap
 * → first routed request) is measured here.
 */
import type { Logger } from 'pino';
import type { Random } from '../core/clock.js';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { ChangeStamp, ServiceSet } from '../discovery/types.js';
import type { RouteSpec, StrategyName } from '../config/route-spec.js';
import { buildSnapshot } from './snapshot.js';
import type { RoutingSnapshot } from './snapshot.js';
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
  readonly #o: SnapshotStoreOptions;
  readonly #listeners = new Set<SwapListener>();
  readonly #guard: LossGuard | undefined;
  #releaseTimer: NodeJS.Timeout | undefined;
  #lastChange: LastChange | undefined;
  #saidSkew = false;
  /** Ids flagged held in the upstream states (from the sets' held markers, so workers know too). */
  #heldIds = new Set<string>();

  constructor(opts: SnapshotStoreOptions) {
    this.#o = opts;
    this.#guard = opts.guard && opts.guard.maxDropPercent < 100 ? new LossGuard(opts.guard) : undefined;
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
    let effective = set;
    if (this.#guard) {
      const r = this.#guard.apply(this.#set, set, Date.now());
      effective = r.set;
      for (const e of r.events) this.#report(e);
      this.#scheduleRelease();
    }
    return this.#build(effective);
  }

  /** Stops the guard's release timer (the balancer is closing). */
  close(): void {
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#releaseTimer = undefined;
  }

  #build(set: ServiceSet): boolean {
    this.#syncHeld(set);
    let next: RoutingSnapshot;
    try {
      next = buildSnapshot({
        version: this.#version + 1, specs: this.#o.specs, set, states: this.#o.states, random: this.#o.random, initial: this.#current === undefined,
        panicThreshold: this.#o.panicThreshold, defaultBalance: this.#o.defaultBalance,
        ...(this.#o.isEligible ? { isEligible: this.#o.isEligible } : {}),
        ...(this.#o.tcp ? { tcp: this.#o.tcp } : {}),
        ...(set.change ? { change: set.change } : {}),
      });
    } catch (err) {
      this.#o.logger.error({ err }, 'routing table build failed: keeping the previous table');
      return false;
    }
    this.#version = next.version;
    const prev = this.#current;
    this.#current = next;
    this.#set = set;
    // A store's first table is the state as found (a worker started late gets an old stamp): no change to measure.
    if (next.change && prev !== undefined) this.#measure(next, next.change);
    for (const e of next.errors) if (!prev?.errors.includes(e)) this.#o.logger.warn({ problem: e }, 'route left out of the table');
    for (const l of this.#listeners) l(next, prev, set);
    return true;
  }

  #syncHeld(set: ServiceSet): void {
    const held = new Set<string>();
    for (const list of set.instances.values()) for (const i of list) if (i.held) held.add(i.id);
    for (const id of this.#heldIds) if (!held.has(id)) this.#o.states.setHeld(id, false);
    for (const id of held) this.#o.states.setHeld(id, true);
    this.#heldIds = held;
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
      // Not a registry change: the release carries no commit time.
      if (raw) this.update(raw.change ? { catalog: raw.catalog, instances: raw.instances, ...(raw.critical ? { critical: raw.critical } : {}) } : raw);
    }, Math.max(0, at - Date.now()) + 1);
    this.#releaseTimer.unref();
  }
}
