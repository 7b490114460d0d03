/** The balancer's vocabulary: upstreams, per-request pick context, the Strategy interface and its factory. */
import type { Random } from '../core/clock.js';
import type { UpstreamProtocol } from '../config/route-spec.js';
import type { UpstreamStates } from './state.js';

/** One instance a route can send traffic to, frozen inside a routing snapshot. */
export interface Upstream {
  /** The Consul service ID; also the key of its UpstreamState, so facts survive snapshot swaps. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /**
   * Effective weight (Consul Weights.Passing or Weights.Warning by the instance's health).
   * Must be finite and ≥ 0; an upstream of weight 0 is never picked, not even in panic mode.
   */
  readonly weight: number;
  readonly zone?: string;
  /** What the instance speaks, from its service meta `protocol`; a route's own protocol wins over it. */
  readonly protocol?: UpstreamProtocol;
}

/**
 * Mutable facts about one upstream, shared by every strategy and every snapshot that names its id.
 * The proxy bumps `inFlight` and `consecutiveFailures` directly (they are read on the hot path and
 * change per request); ejection and draining change through UpstreamStates, which versions them so
 * strategies can cache eligibility instead of re-reading it per pick.
 */
export interface UpstreamState {
  readonly id: string;
  /** Requests dispatched and not yet finished. */
  inFlight: number;
  /** Passive-health bookkeeping owned by the proxy; the balancer never reads it. */
  consecutiveFailures: number;
  /**
   * Passive health's max_fails window (failures since `failWindowSince`, clock ms), kept here so it
   * goes with the record when the upstream leaves: a returning id starts clean, and ids of gone
   * containers leave nothing behind.
   */
  failWindowFails: number;
  failWindowSince: number;
  /** Clock milliseconds until which the upstream is ejected; ejected while `now < ejectedUntil`. */
  readonly ejectedUntil: number;
  /** How many times it has been ejected (outlier detection grows the ejection time with it). */
  readonly ejections: number;
  /** Leaving on purpose: gets no new traffic unless nothing else is left. */
  readonly draining: boolean;
  /**
   * Kept in the table by the mass-loss guard after it left the registry: served as usual while
   * healthy, but when passive health ejects it (it was really gone) it does not count as capacity
   * lost, so it cannot push its group into panic mode.
   */
  readonly held: boolean;
  /** Clock ms when this upstream was first seen (a new record); slow start ramps from here or from the end of an ejection. */
  readonly since: number;
}

/** What one request tells the balancer; every field is optional and strategies cope without it. */
export interface PickContext {
  /** The value consistent hashing keys on (client IP, a header or cookie value). */
  readonly hashKey?: string;
  /** Upstream ids a retry has already tried; never returned again for this request. */
  readonly exclude?: ReadonlySet<string>;
}

export interface Strategy {
  readonly name: string;
  /** An upstream for one request, or undefined when nothing is pickable (the proxy answers 503). */
  pick(ctx: PickContext): Upstream | undefined;
  /** The share of its weight an upstream gets now under slow start (1: full; for /routes and explanations). */
  rampFactor?(id: string): number;
  /**
   * The upstream a sticky cookie names (its stickyToken), when a pick could return it now: in the
   * tier picks draw from and not excluded; else undefined (the caller picks as usual).
   */
  pickSticky?(token: string, ctx: PickContext): Upstream | undefined;
}

export interface StrategyDeps {
  readonly states: UpstreamStates;
  readonly random: Random;
  /**
   * An extra filter ANDed with the state view (not draining, not ejected). Its answers are cached
   * with that view and read again only when `states.version` changes or an ejection expires, so
   * call `states.invalidate()` when an answer changes for any other reason.
   */
  readonly isEligible?: (u: Upstream) => boolean;
  /**
   * Panic mode starts when the healthy share of weight falls below this fraction (0..1, default
   * 0.5 as in Envoy); see Candidates in candidates.ts for the exact rule.
   */
  readonly panicThreshold?: number;
  /**
   * Slow start (ms; 0 or absent: off): an upstream that is new to the group, or back from an
   * ejection, takes a weight that ramps linearly from `slowStartMinFraction` (default 0.1) of its
   * own to all of it over this window, so a cold instance is not handed its full share at once.
   */
  readonly slowStartMs?: number;
  readonly slowStartMinFraction?: number;
}

/** Builds a strategy from one snapshot's upstream list; called again for every new snapshot. */
export type StrategyFactory = (upstreams: readonly Upstream[], deps: StrategyDeps) => Strategy;
