/** round_robin: nginx's smooth weighted round robin, replayed from a cached period so a pick is amortised O(1). */
import { Candidates, activeExclude } from './candidates.js';
import type { PickContext, Strategy, StrategyFactory, Upstream } from './types.js';

/**
 * The smooth sequence repeats after sum(weights) / gcd(weights) picks (every current weight is back
 * to 0 then), so one period is recorded as it is generated and replayed afterwards. Periods longer
 * than this (wildly coprime weights, fractional weights) are generated live at O(n) per pick,
 * which is what nginx always does; the cap bounds the cache at 64 KiB per strategy.
 */
const MAX_CACHED_PERIOD = 1 << 14;

/**
 * nginx ngx_http_upstream_get_peer: every candidate's current weight grows by its weight, the
 * largest wins (the first on ties) and pays back the total. For {a:5, b:1, c:1} that yields
 * a a b a c a a; with equal weights it is plain round robin.
 *
 * The steady sequence runs over the base tier (healthy upstreams, or all non-draining ones in
 * panic mode) and restarts from zero whenever that set changes, so an ejected upstream simply
 * drops out and the others keep a smooth sequence among themselves. A retry (an exclude set) or
 * a widened tier takes one live step over exactly the acceptable upstreams instead, with current
 * weights of its own, so retries neither disturb the steady sequence nor bunch up on one upstream.
 */
export class RoundRobin implements Strategy {
  readonly name = 'round_robin';
  readonly #c: Candidates;
  readonly #current: Float64Array;
  readonly #spare: Float64Array;
  #generation = -1;
  #schedule: Uint32Array | null = null;
  #period = 0;
  #filled = 0;
  #cursor = 0;

  constructor(candidates: Candidates) {
    this.#c = candidates;
    this.#current = new Float64Array(candidates.size);
    this.#spare = new Float64Array(candidates.size);
  }

  rampFactor(id: string): number {
    return this.#c.rampFactorOf(id);
  }

  pickSticky(token: string, ctx: PickContext): Upstream | undefined {
    return this.#c.pickable(token, activeExclude(ctx));
  }

  pick(ctx: PickContext): Upstream | undefined {
    const c = this.#c;
    const exclude = activeExclude(ctx);
    const tier = c.tierFor(exclude);
    if (tier < 0) return undefined;
    if (c.generation !== this.#generation) this.#reset();
    if (tier === c.baseTier && exclude === undefined) return c.upstreams[this.#next()];
    return c.upstreams[this.#liveStep(tier, exclude)];
  }

  #next(): number {
    const schedule = this.#schedule;
    if (schedule === null) return this.#step();
    const k = this.#cursor;
    let i: number;
    if (k < this.#filled) i = schedule[k]!;
    else {
      i = this.#step();
      schedule[k] = i;
      this.#filled = k + 1;
    }
    this.#cursor = k + 1 === this.#period ? 0 : k + 1;
    return i;
  }

  /** One step of the smooth sequence over the base tier. */
  #step(): number {
    const c = this.#c;
    const tiers = c.tiers;
    const weights = c.weights;
    const current = this.#current;
    const base = c.baseTier;
    let best = -1;
    let bestWeight = -Infinity;
    let total = 0;
    for (let i = 0; i < c.size; i++) {
      if (tiers[i]! > base) continue;
      const w = weights[i]!;
      const cw = current[i]! + w;
      current[i] = cw;
      total += w;
      if (cw > bestWeight) {
        bestWeight = cw;
        best = i;
      }
    }
    current[best] = bestWeight - total;
    return best;
  }

  /** The same step over whatever `tier` and `exclude` accept; tierFor() guaranteed there is one. */
  #liveStep(tier: number, exclude: ReadonlySet<string> | undefined): number {
    const c = this.#c;
    const weights = c.weights;
    const current = this.#spare;
    let best = -1;
    let bestWeight = -Infinity;
    let total = 0;
    for (let i = 0; i < c.size; i++) {
      if (!c.accepts(i, tier, exclude)) continue;
      const w = weights[i]!;
      const cw = current[i]! + w;
      current[i] = cw;
      total += w;
      if (cw > bestWeight) {
        bestWeight = cw;
        best = i;
      }
    }
    current[best] = bestWeight - total;
    return best;
  }

  #reset(): void {
    const c = this.#c;
    this.#generation = c.generation;
    this.#current.fill(0);
    this.#spare.fill(0);
    this.#cursor = 0;
    this.#filled = 0;
    const period = smoothPeriod(c.weights, c.tiers, c.baseTier);
    this.#period = period;
    this.#schedule = period > 0 && period <= MAX_CACHED_PERIOD ? new Uint32Array(period) : null;
  }
}

/** sum / gcd of the weights at or below `tier`, or 0 when a weight is fractional (no finite cycle worth caching). */
function smoothPeriod(weights: Float64Array, tiers: Uint8Array, tier: number): number {
  let g = 0;
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    if (tiers[i]! > tier) continue;
    const w = weights[i]!;
    if (!Number.isSafeInteger(w)) return 0;
    g = gcd(g, w);
    sum += w;
  }
  return g === 0 ? 0 : sum / g;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

export const roundRobin: StrategyFactory = (upstreams, deps) => new RoundRobin(new Candidates(upstreams, deps));
