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
  /** Indices tied for the lowest load in the current scan, so the tie-break touches only them. */
  readonly #tied: Int32Array;

  constructor(candidates: Candidates) {
    this.#c = candidates;
    this.#current = new Float64Array(candidates.size);
    this.#tied = new Int32Array(candidates.size);
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
    // Hoisted and inlined by hand: this loop is the whole cost of a pick.
    const { tiers, weights, records, ids, size } = c;
    const tied = this.#tied;
    let ties = 0;
    let bestLoad = 0;
    let bestWeight = 1;
    for (let i = 0; i < size; i++) {
      if (tiers[i]! > tier || (exclude !== undefined && exclude.has(ids[i]!))) continue;
      const load = records[i]!.inFlight;
      const w = weights[i]!;
      const lhs = load * bestWeight;
      const rhs = bestLoad * w;
      if (ties === 0 || lhs < rhs) {
        bestLoad = load;
        bestWeight = w;
        tied[0] = i;
        ties = 1;
      } else if (lhs === rhs) tied[ties++] = i;
    }
    return c.upstreams[ties > 1 ? this.#amongTied(ties) : tied[0]!];
  }

  /** nginx's smooth weighted round robin over the first `ties` entries of #tied. */
  #amongTied(ties: number): number {
    const weights = this.#c.weights;
    const tied = this.#tied;
    const current = this.#current;
    let best = -1;
    let bestCurrent = -Infinity;
    let total = 0;
    for (let k = 0; k < ties; k++) {
      const i = tied[k]!;
      const w = weights[i]!;
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
