/** Candidates: eligibility tiers, the panic threshold and weighted sampling, shared by every strategy. */
import { SwitchyardError } from '../core/errors.js';
import { hash32 } from './hash32.js';
import type { UpstreamStates } from './state.js';
import type { PickContext, StrategyDeps, Upstream, UpstreamState } from './types.js';

/**
 * Tiers order upstreams by how willing we are to send them traffic. A pick accepts every tier up
 * to some limit: HEALTHY normally, UNHEALTHY in panic mode, DRAINING as the last resort.
 */
export const HEALTHY = 0;
/** Ejected by passive health, or refused by the `isEligible` filter. */
export const UNHEALTHY = 1;
/** Leaving on purpose; used only when nothing else is left (all others excluded or weightless). */
export const DRAINING = 2;
/** Weight 0: never picked. */
export const NEVER = 255;

/** Envoy's default: below half of the healthy capacity, spread over everyone rather than crush the survivors. */
export const DEFAULT_PANIC_THRESHOLD = 0.5;

/** The exclude set of a retry, or undefined when there is nothing to exclude (the fast path). */
export function activeExclude(ctx: PickContext): ReadonlySet<string> | undefined {
  const ex = ctx.exclude;
  return ex !== undefined && ex.size > 0 ? ex : undefined;
}

/**
 * One snapshot's upstream list with its eligibility cached per tier. Panic rule (computed on each
 * refresh, never per pick):
 *
 *   live    = weight of upstreams with weight > 0 that are not draining, nor held and ejected/refused
 *   healthy = weight of those that are neither ejected nor refused by `isEligible`
 *   panic   = live > 0 && healthy < panicThreshold × live
 *
 * Outside panic a pick takes HEALTHY upstreams; in panic it takes HEALTHY and UNHEALTHY alike.
 * Whatever the mode, a pick that finds no candidate left (everything healthy is excluded by a
 * retry, or ejected with a threshold of 0) widens to the next tier, then to DRAINING, so a request
 * is refused only when every upstream of weight > 0 is excluded. Weight is the measure because
 * capacity, not head count, is what overloads the survivors; draining upstreams stay out of both
 * sums because a deploy that drains half a fleet is planned, not a failure to panic about. An
 * instance the mass-loss guard holds after it left the registry counts while it serves; once
 * ejected it was really gone, and spreading traffic onto it would only turn retries into errors.
 */
export class Candidates {
  readonly upstreams: readonly Upstream[];
  readonly size: number;
  readonly ids: readonly string[];
  /** Weights in use: the upstreams' own, scaled down while slow start ramps them up. */
  readonly weights: Float64Array;
  /** The upstreams' own weights. */
  readonly base: Float64Array;
  readonly records: readonly UpstreamState[];
  /** Current tier of each upstream; valid after tierFor() returned. */
  readonly tiers: Uint8Array;
  /** Prefix sums of weight over the base tier (0 width elsewhere), for O(log n) weighted draws. */
  readonly #cumulative: Float64Array;
  /** How many upstreams sit at or below tier t, t = 0..2. */
  readonly #atOrBelow = new Int32Array(3);
  readonly #index = new Map<string, number>();
  /** stickyToken → index, built on the first sticky pick. */
  #byToken: Map<string, number> | undefined;
  readonly #states: UpstreamStates;
  readonly #isEligible: ((u: Upstream) => boolean) | undefined;
  readonly #threshold: number;
  readonly #slowStartMs: number;
  readonly #slowStartMin: number;
  #baseTier = HEALTHY;
  #lastBase = -1;
  #seenVersion = -1;
  #expiry = Infinity;
  #generation = 0;
  #available = 0;

  constructor(upstreams: readonly Upstream[], deps: StrategyDeps) {
    const threshold = deps.panicThreshold ?? DEFAULT_PANIC_THRESHOLD;
    if (!(threshold >= 0 && threshold <= 1)) {
      throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `panicThreshold must be between 0 and 1, got ${threshold}`);
    }
    // A copy, so a caller that reuses its array cannot desynchronise the precomputed weights.
    this.upstreams = Object.freeze(upstreams.slice());
    this.size = upstreams.length;
    this.weights = new Float64Array(this.size);
    this.base = new Float64Array(this.size);
    this.tiers = new Uint8Array(this.size);
    this.#cumulative = new Float64Array(this.size);
    const ids: string[] = [];
    const records: UpstreamState[] = [];
    for (let i = 0; i < this.size; i++) {
      const u = this.upstreams[i]!;
      if (!(Number.isFinite(u.weight) && u.weight >= 0)) {
        throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `upstream ${JSON.stringify(u.id)} has weight ${u.weight}; weights must be finite and >= 0`);
      }
      if (this.#index.has(u.id)) {
        throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `upstream id ${JSON.stringify(u.id)} appears twice; ids key the shared upstream state`);
      }
      this.#index.set(u.id, i);
      this.weights[i] = u.weight;
      this.base[i] = u.weight;
      ids.push(u.id);
      records.push(deps.states.get(u.id));
    }
    this.ids = ids;
    this.records = records;
    this.#states = deps.states;
    this.#isEligible = deps.isEligible;
    this.#threshold = threshold;
    this.#slowStartMs = deps.slowStartMs ?? 0;
    this.#slowStartMin = Math.min(1, Math.max(0.01, deps.slowStartMinFraction ?? 0.1));
  }

  /** rampFactor() by upstream id (1 for an id this group does not have). */
  rampFactorOf(id: string): number {
    const i = this.#index.get(id);
    return i === undefined ? 1 : this.rampFactor(i, this.#states.now());
  }

  /** The share of its weight upstream `i` gets now under slow start (1 once ramped, or when off). */
  rampFactor(i: number, now: number): number {
    const window = this.#slowStartMs;
    if (window <= 0) return 1;
    const r = this.records[i]!;
    // Ramping starts when the upstream appeared, or again when an ejection of it ended.
    const since = r.ejectedUntil > r.since && r.ejectedUntil <= now ? r.ejectedUntil : r.since;
    const t = (now - since) / window;
    return t >= 1 ? 1 : Math.max(this.#slowStartMin, t);
  }

  /** HEALTHY, or UNHEALTHY while in panic mode. */
  get baseTier(): number {
    return this.#baseTier;
  }

  /** Changes when a refresh changed any tier, so strategies reset schedules only when it matters. */
  get generation(): number {
    return this.#generation;
  }

  /** How many candidates the last tierFor() call found (excluded ones not counted). */
  get available(): number {
    return this.#available;
  }

  /**
   * The highest tier a pick must accept to find a candidate that `exclude` leaves, or -1 when
   * none is left. O(1) without an exclude set, O(|exclude|) with one.
   */
  tierFor(exclude: ReadonlySet<string> | undefined): number {
    const states = this.#states;
    if (states.version !== this.#seenVersion || (this.#expiry !== Infinity && states.now() >= this.#expiry)) this.#refresh();
    const counts = this.#atOrBelow;
    let ex0 = 0;
    let ex1 = 0;
    let ex2 = 0;
    if (exclude !== undefined) {
      for (const id of exclude) {
        const i = this.#index.get(id);
        if (i === undefined) continue;
        const t = this.tiers[i]!;
        if (t === HEALTHY) ex0++;
        else if (t === UNHEALTHY) ex1++;
        else if (t === DRAINING) ex2++;
      }
    }
    for (let t = this.#baseTier; t <= DRAINING; t++) {
      const left = counts[t]! - ex0 - (t >= UNHEALTHY ? ex1 : 0) - (t >= DRAINING ? ex2 : 0);
      if (left > 0) {
        this.#available = left;
        return t;
      }
    }
    this.#available = 0;
    return -1;
  }

  /** The upstream whose stickyToken this is, when a pick could return it now (see Strategy.pickSticky). */
  pickable(token: string, exclude: ReadonlySet<string> | undefined): Upstream | undefined {
    const byToken = (this.#byToken ??= new Map(this.upstreams.map((u, i) => [stickyToken(u.id), i])));
    const i = byToken.get(token);
    if (i === undefined) return undefined;
    const tier = this.tierFor(exclude);
    return tier >= 0 && this.accepts(i, tier, exclude) ? this.upstreams[i] : undefined;
  }

  accepts(i: number, tier: number, exclude: ReadonlySet<string> | undefined): boolean {
    return this.tiers[i]! <= tier && (exclude === undefined || !exclude.has(this.ids[i]!));
  }

  /** A weight-proportional draw over the base tier; `r` in [0, 1). Exclusions are the caller's job. */
  sample(r: number): number {
    const cum = this.#cumulative;
    const total = cum[this.size - 1]!;
    const x = r * total;
    // r * total can round up to total; the last base-tier upstream owns that point.
    if (x >= total) return this.#lastBase;
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * A weight-proportional draw over whatever `tier` and `exclude` accept, skipping index `skip`;
   * -1 when nothing qualifies. O(n): only retries and degraded states land here.
   */
  sampleAmong(r: number, tier: number, exclude: ReadonlySet<string> | undefined, skip: number): number {
    let total = 0;
    for (let i = 0; i < this.size; i++) {
      if (i !== skip && this.accepts(i, tier, exclude)) total += this.weights[i]!;
    }
    if (total <= 0) return -1;
    let x = r * total;
    let last = -1;
    for (let i = 0; i < this.size; i++) {
      if (i === skip || !this.accepts(i, tier, exclude)) continue;
      last = i;
      x -= this.weights[i]!;
      if (x < 0) return i;
    }
    return last;
  }

  /** The single candidate left when `available` is 1. */
  only(tier: number, exclude: ReadonlySet<string> | undefined): number {
    for (let i = 0; i < this.size; i++) if (this.accepts(i, tier, exclude)) return i;
    return -1;
  }

  #refresh(): void {
    const states = this.#states;
    const now = states.now();
    const isEligible = this.#isEligible;
    let expiry = Infinity;
    let live = 0;
    let healthy = 0;
    let changed = false;
    let n0 = 0;
    let n1 = 0;
    let n2 = 0;
    const ramping = this.#slowStartMs > 0;
    const step = Math.max(50, this.#slowStartMs / 20);
    for (let i = 0; i < this.size; i++) {
      let w = this.base[i]!;
      if (ramping && w > 0) {
        const f = this.rampFactor(i, now);
        if (f < 1) {
          w *= f;
          // Look again in a moment: the ramp is walked in small steps, not recomputed per pick.
          if (now + step < expiry) expiry = now + step;
        }
        if (this.weights[i] !== w) {
          this.weights[i] = w;
          changed = true;
        }
      }
      const r = this.records[i]!;
      let tier: number;
      if (w <= 0) tier = NEVER;
      else if (r.draining) tier = DRAINING;
      else {
        const ejected = r.ejectedUntil > now;
        if (ejected && r.ejectedUntil < expiry) expiry = r.ejectedUntil;
        if (ejected || (isEligible !== undefined && !isEligible(this.upstreams[i]!))) {
          tier = UNHEALTHY;
          if (!r.held) live += w;
        } else {
          tier = HEALTHY;
          live += w;
          healthy += w;
        }
      }
      if (tier === HEALTHY) n0++;
      else if (tier === UNHEALTHY) n1++;
      else if (tier === DRAINING) n2++;
      if (this.tiers[i] !== tier) changed = true;
      this.tiers[i] = tier;
    }
    this.#atOrBelow[0] = n0;
    this.#atOrBelow[1] = n0 + n1;
    this.#atOrBelow[2] = n0 + n1 + n2;
    const base = live > 0 && healthy < this.#threshold * live ? UNHEALTHY : HEALTHY;
    if (base !== this.#baseTier) changed = true;
    this.#baseTier = base;
    let sum = 0;
    this.#lastBase = -1;
    for (let i = 0; i < this.size; i++) {
      if (this.tiers[i]! <= base) {
        sum += this.weights[i]!;
        this.#lastBase = i;
      }
      this.#cumulative[i] = sum;
    }
    this.#seenVersion = states.version;
    this.#expiry = expiry;
    if (changed || this.#generation === 0) this.#generation++;
  }
}

/**
 * What a sticky cookie holds for an instance: a hash of its id, so the cookie names no address and
 * stays the same while the instance does (across tables, restarts of the balancer, workers).
 */
export function stickyToken(id: string): string {
  return hash32(id).toString(16).padStart(8, '0');
}
