/** random: a weight-proportional random pick, O(log n) by binary search over prefix sums. */
import type { Random } from '../core/clock.js';
import { Candidates, activeExclude } from './candidates.js';
import type { PickContext, Strategy, StrategyFactory, Upstream } from './types.js';

/**
 * Redraws before the O(n) fallback when a draw lands on an excluded upstream. A retry excludes
 * one or two ids, so a handful of redraws almost always succeeds; the fallback is exact anyway.
 */
export const REDRAWS = 4;

/**
 * A weighted draw among what `tier` and `exclude` accept, never `skip`. Draws from the cached
 * base-tier prefix sums first and falls back to a linear pass only when those keep missing (the
 * tier was widened, or exclusions cover most of the weight).
 */
export function draw(c: Candidates, random: Random, tier: number, exclude: ReadonlySet<string> | undefined, skip: number): number {
  if (tier === c.baseTier) {
    for (let k = 0; k < REDRAWS; k++) {
      const i = c.sample(random.next());
      if (i !== skip && (exclude === undefined || !exclude.has(c.ids[i]!))) return i;
    }
  }
  return c.sampleAmong(random.next(), tier, exclude, skip);
}

class WeightedRandom implements Strategy {
  readonly name = 'random';
  readonly #c: Candidates;
  readonly #random: Random;

  constructor(candidates: Candidates, random: Random) {
    this.#c = candidates;
    this.#random = random;
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
    return c.upstreams[draw(c, this.#random, tier, exclude, -1)];
  }
}

export const weightedRandom: StrategyFactory = (upstreams, deps) => new WeightedRandom(new Candidates(upstreams, deps), deps.random);
