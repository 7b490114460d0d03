/** p2c: power of two choices; two weighted random draws, the less loaded per unit of weight wins. */
import type { Random } from '../core/clock.js';
import { Candidates, activeExclude } from './candidates.js';
import { draw } from './random.js';
import type { PickContext, Strategy, StrategyFactory, Upstream } from './types.js';

/**
 * Reading two in-flight counts instead of all of them keeps a pick O(log n) while still steering
 * away from a slow upstream (Mitzenmacher; Traefik's p2c). Both draws are weight-proportional and
 * distinct, and loads compare as inFlight/weight, cross-multiplied. A tie goes to the first draw,
 * which is itself weight-proportional, so an idle pool is split by weight.
 */
class PowerOfTwoChoices implements Strategy {
  readonly name = 'p2c';
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
    if (c.available === 1) return c.upstreams[c.only(tier, exclude)];
    const a = draw(c, this.#random, tier, exclude, -1);
    const b = draw(c, this.#random, tier, exclude, a);
    const loadA = c.records[a]!.inFlight * c.weights[b]!;
    const loadB = c.records[b]!.inFlight * c.weights[a]!;
    return c.upstreams[loadB < loadA ? b : a];
  }
}

export const powerOfTwoChoices: StrategyFactory = (upstreams, deps) => new PowerOfTwoChoices(new Candidates(upstreams, deps), deps.random);
