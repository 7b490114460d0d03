/** hash: consistent hashing on a ring of virtual nodes keyed by ctx.hashKey, with ring-order failover. */
import { SwitchyardError } from '../core/errors.js';
import { Candidates, activeExclude } from './candidates.js';
import { RoundRobin } from './round-robin.js';
import { fmix32, fnv, hash32 } from './hash32.js';
import type { PickContext, Strategy, StrategyFactory, Upstream } from './types.js';

/**
 * Points per unit of weight: nginx's `hash ... consistent` (ketama) uses 160, which keeps each
 * upstream's share of keys within about ±10% of its weight. Points depend only on the upstream's
 * own id and weight, so adding or removing one upstream moves exactly the keys it gains or loses.
 */
export const POINTS_PER_WEIGHT = 160;

/**
 * Beyond this many points (e.g. 100 upstreams of weight 10) every count is scaled down alike:
 * build time and memory stay bounded (8 bytes a point), at the price that membership changes in
 * that regime also shift a few points of the others.
 */
export const MAX_RING_POINTS = 1 << 17;

/** Room for the owner's rank in the low bits of a packed (point, rank) sort key. */
const RANK_BITS = 21;
const RANK_SCALE = 2 ** RANK_BITS;

/**
 * Why a ring and not Maglev: when a key's upstream is ejected or already tried, the ring offers a
 * natural, per-key stable second choice (the next distinct upstream clockwise), so sticky sessions
 * fail over to one place and come back when the instance recovers; Maglev needs a rehash chain
 * for that and disrupts slightly more keys on membership changes. Lookup is a binary search over
 * at most MAX_RING_POINTS points (17 steps). Without a key, picks fall back to round robin.
 */
class ConsistentHash implements Strategy {
  readonly name = 'hash';
  readonly #c: Candidates;
  readonly #points: Uint32Array;
  readonly #owners: Uint32Array;
  readonly #fallback: RoundRobin;

  constructor(candidates: Candidates) {
    this.#c = candidates;
    this.#fallback = new RoundRobin(candidates);
    const { points, owners } = buildRing(candidates.ids, candidates.weights);
    this.#points = points;
    this.#owners = owners;
  }

  rampFactor(id: string): number {
    return this.#c.rampFactorOf(id);
  }

  pickSticky(token: string, ctx: PickContext): Upstream | undefined {
    return this.#c.pickable(token, activeExclude(ctx));
  }

  pick(ctx: PickContext): Upstream | undefined {
    const key = ctx.hashKey;
    // An empty key would pin every client without one to a single upstream.
    if (key === undefined || key === '') return this.#fallback.pick(ctx);
    const c = this.#c;
    const exclude = activeExclude(ctx);
    const tier = c.tierFor(exclude);
    if (tier < 0) return undefined;
    const points = this.#points;
    const owners = this.#owners;
    const n = points.length;
    let k = lowerBound(points, hash32(key));
    if (k === n) k = 0;
    // tierFor() found a candidate, and every upstream of weight > 0 owns a point, so this ends.
    for (;;) {
      const i = owners[k]!;
      if (c.accepts(i, tier, exclude)) return c.upstreams[i];
      k = k + 1 === n ? 0 : k + 1;
    }
  }
}

/** The first index whose point is ≥ h, or points.length. */
function lowerBound(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function buildRing(ids: readonly string[], weights: Float64Array): { points: Uint32Array; owners: Uint32Array } {
  if (ids.length >= RANK_SCALE) {
    throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `consistent hashing supports at most ${RANK_SCALE - 1} upstreams, got ${ids.length}`);
  }
  let weightSum = 0;
  for (const w of weights) weightSum += w;
  const scale = Math.min(1, MAX_RING_POINTS / (POINTS_PER_WEIGHT * weightSum));
  // Owners are ranked by id, so colliding points resolve the same way whatever the list order.
  const byId = ids.map((_, i) => i).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  const counts = new Int32Array(ids.length);
  let total = 0;
  for (let i = 0; i < ids.length; i++) {
    const w = weights[i]!;
    const count = w > 0 ? Math.max(1, Math.round(POINTS_PER_WEIGHT * w * scale)) : 0;
    counts[i] = count;
    total += count;
  }
  // Packing (point, rank) into one double (32 + 21 bits < 53) lets a native numeric sort order the ring.
  const packed = new Float64Array(total);
  let k = 0;
  for (let rank = 0; rank < byId.length; rank++) {
    const i = byId[rank]!;
    const seed = fnv(ids[i]!);
    for (let p = 0; p < counts[i]!; p++) packed[k++] = pointHash(seed, p) * RANK_SCALE + rank;
  }
  packed.sort();
  const points = new Uint32Array(total);
  const owners = new Uint32Array(total);
  for (let j = 0; j < total; j++) {
    const v = packed[j]!;
    const rank = v % RANK_SCALE;
    points[j] = (v - rank) / RANK_SCALE;
    owners[j] = byId[rank]!;
  }
  return { points, owners };
}

/** The p-th point of an upstream: its id's FNV state extended by the four bytes of p, then finalized. */
function pointHash(seed: number, p: number): number {
  let h = seed;
  for (let b = 0; b < 4; b++) {
    h ^= (p >>> (8 * b)) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

export const consistentHash: StrategyFactory = (upstreams, deps) => new ConsistentHash(new Candidates(upstreams, deps));
