/**
 * Per-route admission: circuit breaking on requests in flight, and token-bucket rate limits per
 * client key. The counters are mutable facts beside the immutable snapshot, keyed by the route's
 * origin, so they survive table swaps; buckets that are full again are forgotten on a sweep.
 */
import type { RouteLimits } from '../../config/route-spec.js';

export interface Refusal {
  readonly status: number;
  readonly reason: 'concurrency' | 'rate';
  readonly retryAfterS: number;
  readonly message: string;
}

interface Bucket {
  tokens: number;
  at: number;
}

interface RouteState {
  inFlight: number;
  readonly buckets: Map<string, Bucket>;
}

/** Buckets kept per route before a sweep forgets the ones that are full again. */
const SWEEP_AT = 10_000;

export class RouteAdmission {
  readonly #routes = new Map<string, RouteState>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #state(origin: string): RouteState {
    let s = this.#routes.get(origin);
    if (s === undefined) this.#routes.set(origin, (s = { inFlight: 0, buckets: new Map() }));
    return s;
  }

  /**
   * Admits a request on the route with these limits, counting it in flight (release() it once),
   * or says why not. `key` is the client's rate-limit key (its IP, or a header's value).
   */
  admit(origin: string, limits: RouteLimits, key: string | undefined): Refusal | undefined {
    const s = this.#state(origin);
    if (limits.maxConcurrent > 0 && s.inFlight >= limits.maxConcurrent) {
      return { status: 503, reason: 'concurrency', retryAfterS: 1, message: `route ${origin} is at its limit of ${limits.maxConcurrent} requests in flight` };
    }
    const rate = limits.rate;
    if (rate !== undefined) {
      const k = key ?? '';
      const now = this.#now();
      let b = s.buckets.get(k);
      if (b === undefined) {
        if (s.buckets.size >= SWEEP_AT) this.#sweep(s, rate.perSecond, rate.burst, now);
        s.buckets.set(k, (b = { tokens: rate.burst, at: now }));
      } else {
        b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond);
        b.at = now;
      }
      if (b.tokens < 1) {
        const wait = Math.max(1, Math.ceil((1 - b.tokens) / rate.perSecond));
        return { status: 429, reason: 'rate', retryAfterS: wait, message: `rate limit of ${rate.perSecond}/s (burst ${rate.burst}) reached on route ${origin}` };
      }
      b.tokens -= 1;
    }
    s.inFlight++;
    return undefined;
  }

  release(origin: string): void {
    const s = this.#routes.get(origin);
    if (s !== undefined && s.inFlight > 0) s.inFlight--;
  }

  inFlight(origin: string): number {
    return this.#routes.get(origin)?.inFlight ?? 0;
  }

  /** Forgets buckets that have refilled: a client that stopped sending costs nothing. */
  #sweep(s: RouteState, perSecond: number, burst: number, now: number): void {
    for (const [k, b] of s.buckets) if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) s.buckets.delete(k);
  }
}
