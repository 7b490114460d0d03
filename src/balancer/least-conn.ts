/** least_conn: fewest requests in flight per unit of weight, ties broken by smooth weighted round robin (nginx). */
import { Candidates, activeExclude } from './candidates.js';
import type { PickContext, Strategy, StrategyFactory, Upstream } from './types.js';

/**
 * nginx ngx_http_upstream_get_least_conn_peer. In-flight counts change on every request and
 * completion outside the balancer's sight, so there is no index to maintain: a pick scans the
 * list (O(n), like nginx). Services with hundreds of instances should prefer p2c, which reads
 * two counts per pick.
 *
 * Ratios are compared as inFlight_a × weight_b < inFlight_b × weight_a, which avoids the
 * division and treats integer ties exactly. With equal counts the tied upstreams share picks by
 * the smooth weighted sequence, so an idle pool is balanced exactly like round_robin.
 */
class LeastConn implements Strategy {
  readonly name = 'least_conn';
  readonly #c: Candidates;
  readonly #current: Float64Array;

  constructor(candidates: Candidates) {
    this.#c = candidates;
    this.#current = new Float64Array(candidates.size);
  }

  pick(ctx: PickContext): Upstream | undefined {
    const c = this.#c;
    const exclude = activeExclude(ctx);
    const tier = c.tierFor(exclude);
    if (tier < 0) return undefined;
    const weights = c.weights;
    const records = c.records;
    let best = -1;
    let bestLoad = 0;
    let bestWeight = 1;
    let ties = 0;
    for (let i = 0; i < c.size; i++) {
      if (!c.accepts(i, tier, exclude)) continue;
      const load = records[i]!.inFlight;
      const w = weights[i]!;
      if (best < 0 || load * bestWeight < bestLoad * w) {
        best = i;
        bestLoad = load;
        bestWeight = w;
        ties = 1;
      } else if (load * bestWeight === bestLoad * w) ties++;
    }
    if (ties > 1) best = this.#amongTied(best, bestLoad, bestWeight, tier, exclude);
    return c.upstreams[best];
  }

  /** Smooth weighted round robin over the upstreams tied with `first` (all at or after it). */
  #amongTied(first: number, load: number, weight: number, tier: number, exclude: ReadonlySet<string> | undefined): number {
    const c = this.#c;
    const weights = c.weights;
    const records = c.records;
    const current = this.#current;
    let best = -1;
    let bestCurrent = -Infinity;
    let total = 0;
    for (let i = first; i < c.size; i++) {
      if (!c.accepts(i, tier, exclude)) continue;
      const w = weights[i]!;
      if (records[i]!.inFlight * weight !== load * w) continue;
      const cw = current[i]! + w;
      current[i] = cw;
      total += w;
      if (cw > bestCurrent) {
        bestCurrent = cw;
        best = i;
      }
    }
    current[best] = bestCurrent - total;
    return best;
  }
}

export const leastConn: StrategyFactory = (upstreams, deps) => new LeastConn(new Candidates(upstreams, deps));
