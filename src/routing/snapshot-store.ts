/**
 * Holds the current routing snapshot and swaps it atomically. Rebuilds happen here, off the hot
 * path, on every ServiceSet the source emits; a failed build keeps the previous snapshot.
 */
import type { Logger } from 'pino';
import type { Random } from '../core/clock.js';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { ServiceSet } from '../discovery/types.js';
import type { RouteSpec, StrategyName } from '../config/route-spec.js';
import { buildSnapshot } from './snapshot.js';
import type { RoutingSnapshot } from './snapshot.js';

export interface SnapshotStoreOptions {
  specs: readonly RouteSpec[];
  states: UpstreamStates;
  random: Random;
  panicThreshold: number;
  defaultBalance: StrategyName;
  logger: Logger;
  isEligible?: (u: Upstream) => boolean;
  tcp?: readonly { service: string; balance: StrategyName }[];
}

export type SwapListener = (next: RoutingSnapshot, prev: RoutingSnapshot | undefined, set: ServiceSet) => void;

export class SnapshotStore {
  #current: RoutingSnapshot | undefined;
  #set: ServiceSet | undefined;
  #version = 0;
  readonly #o: SnapshotStoreOptions;
  readonly #listeners = new Set<SwapListener>();

  constructor(opts: SnapshotStoreOptions) {
    this.#o = opts;
  }

  /** The snapshot requests use; undefined until the first ServiceSet arrives. */
  get current(): RoutingSnapshot | undefined {
    return this.#current;
  }

  get serviceSet(): ServiceSet | undefined {
    return this.#set;
  }

  onSwap(l: SwapListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /** Builds and swaps in a snapshot for `set`; returns false (keeping the old one) if the build fails. */
  update(set: ServiceSet): boolean {
    let next: RoutingSnapshot;
    try {
      next = buildSnapshot({
        version: this.#version + 1, specs: this.#o.specs, set, states: this.#o.states, random: this.#o.random, initial: this.#current === undefined,
        panicThreshold: this.#o.panicThreshold, defaultBalance: this.#o.defaultBalance,
        ...(this.#o.isEligible ? { isEligible: this.#o.isEligible } : {}),
        ...(this.#o.tcp ? { tcp: this.#o.tcp } : {}),
      });
    } catch (err) {
      this.#o.logger.error({ err }, 'routing table build failed: keeping the previous table');
      return false;
    }
    this.#version = next.version;
    const prev = this.#current;
    this.#current = next;
    this.#set = set;
    for (const e of next.errors) if (!prev?.errors.includes(e)) this.#o.logger.warn({ problem: e }, 'route left out of the table');
    for (const l of this.#listeners) l(next, prev, set);
    return true;
  }
}
