/** The UI's live picture of an attached balancer: reads its counters every second (LbStatsReader) and turns them into rates. */
import type { UpstreamStates } from '../balancer/index.js';
import type { SourceStatus } from '../discovery/types.js';
import type { LbStatsReader } from '../proxy/lb-metrics.js';
import type { RoutingSnapshot } from '../routing/snapshot.js';
import { RolloutsSampler } from './lb-rollouts.js';
import type { RolloutSnapshots, RolloutsView } from './lb-rollouts.js';

/** What the UI needs of a running balancer; `RunningLb` fits it as is. */
export interface LiveLb {
  readonly address?: { host: string; port: number };
  readonly snapshots: RolloutSnapshots & {
    readonly current: RoutingSnapshot | undefined;
    onSwap(l: (next: RoutingSnapshot) => void): () => void;
  };
  readonly states: UpstreamStates;
  readonly stats: LbStatsReader;
}

export interface LiveSource {
  status(): SourceStatus;
}

export interface LbLiveOptions {
  /** Rates are computed over this many seconds of samples: 5–10 s smooths a burst yet shows a change within seconds. */
  windowSeconds?: number;
  sampleEveryMs?: number;
  now?: () => number;
  /** A sample that failed (a metric's collect threw, a listener threw): reported here, and the next tick tries again. */
  onError?: (err: unknown) => void;
}

interface Sample {
  readonly t: number;
  /** `${route}\0${instance}` → requests / 5xx responses so far. */
  readonly requests: Map<string, { total: number; errors: number }>;
  /** route → cumulative bucket counts, in `bounds` order, +Inf last. */
  readonly buckets: Map<string, number[]>;
  /** upstream id → ejections so far. */
  readonly ejections: Map<string, number>;
  /** Requests so far from HTTP/2 clients. */
  readonly h2: number;
}

export interface UpstreamView {
  id: string;
  address: string;
  /** From the instance's meta `protocol`, when it names one. */
  protocol: string | null;
  weight: number;
  status: string;
  inFlight: number;
  ejected: boolean;
  ejectedUntil: string | null;
  ejections: number;
  draining: boolean;
  rps: number;
  errorsPerSec: number;
  requests: number;
  errors: number;
}

export interface LbView {
  attached: true;
  sampledAt: string;
  windowSeconds: number;
  balancer: { listen: string | null };
  registry: { connected: boolean; lastContact: string | null; lastError: string | null } | null;
  version: number;
  builtAt: string | null;
  problems: readonly string[];
  totals: { rps: number; errorsPerSec: number; p99Ms: number | null; upstreams: number; serving: number; h2Rps: number };
  /** Requests/s through the whole balancer, one point per sample, oldest first (the last minute). */
  history: number[];
  /** `protocol`: what the route's instances speak (http, h2c, h2, grpc, grpcs; `by instance` when their meta says). */
  routes: { origin: string; host: string; path: string; service: string; balance: string; protocol: string; group: string; rps: number; errorsPerSec: number; p99Ms: number | null }[];
  groups: { key: string; service: string; strategy: string; rps: number; errorsPerSec: number; noInstancePerSec: number; p99Ms: number | null; upstreams: UpstreamView[] }[];
  /** Splits, slow-start ramps, held instances, watch staleness and change latency (lb-rollouts.ts). */
  rollouts: RolloutsView;
}

/** `starting`: a balancer is on its way (`switchyard up` before it attached one); ask again shortly. */
export type LbPayload = LbView | { attached: false; reason: string; starting?: true };

const HISTORY_POINTS = 60;
/** gRPC statuses that speak of the instance, not the application: counted as errors like a 5xx. */
const GRPC_ERRORS: ReadonlySet<number> = new Set([2, 4, 13, 14, 15]);
/** Table swaps reach the page at most this often (the first of a burst at once, the newest at the end of it). */
const SWAP_PUSH_MS = 100;

const round = (v: number, digits = 2): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank. */
export function quantileFromBuckets(q: number, bounds: readonly number[], counts: readonly number[]): number | null {
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    const b = bounds[i] ?? Infinity;
    if (c >= rank) {
      // The +Inf bucket has no upper edge: the best estimate is the largest finite bound.
      if (!Number.isFinite(b)) return prevBound;
      if (c === prevCount) return b;
      return prevBound + (b - prevBound) * ((rank - prevCount) / (c - prevCount));
    }
    prevBound = b;
    prevCount = c;
  }
  return prevBound;
}

export class LbLive {
  readonly #lb: LiveLb;
  readonly #source: LiveSource | undefined;
  readonly #window: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  readonly #samples: Sample[] = [];
  readonly #history: number[] = [];
  #lastTotal: { t: number; requests: number } | undefined;
  readonly #listeners = new Set<(view: LbView) => void>();
  readonly #timer: NodeJS.Timeout;
  readonly #unswap: () => void;
  #bounds: number[] = [];
  readonly #rollouts = new RolloutsSampler();
  #sampling: Promise<void> | undefined;
  #swapPending = false;
  #lastSwapPush = -Infinity;
  #closed = false;

  constructor(lb: LiveLb, source: LiveSource | undefined, opts: LbLiveOptions = {}) {
    this.#lb = lb;
    this.#source = source;
    this.#window = opts.windowSeconds ?? 10;
    this.#now = opts.now ?? Date.now;
    this.#onError = opts.onError ?? (() => undefined);
    this.#timer = setInterval(() => this.#tickInBackground(), opts.sampleEveryMs ?? 1000);
    this.#timer.unref();
    // A swap is what a user scaling up or down is waiting to see: push it at once, not on the next
    // tick. Under churn (hundreds of swaps a second over thousands of services) a view per swap
    // would cost the balancer O(table) per change: swaps are pushed at most every SWAP_PUSH_MS.
    this.#unswap = lb.snapshots.onSwap(() => {
      if (this.#swapPending || this.#listeners.size === 0) return;
      this.#swapPending = true;
      const wait = this.#lastSwapPush + SWAP_PUSH_MS - performance.now();
      const push = (): void => {
        this.#swapPending = false;
        this.#lastSwapPush = performance.now();
        if (!this.#closed) this.#emit();
      };
      if (wait <= 0) setImmediate(push);
      else setTimeout(push, wait).unref();
    });
    this.#tickInBackground();
  }

  /** Called with a fresh view every second and on every table swap; returns the unsubscribe function. */
  subscribe(fn: (view: LbView) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The view now, from the samples taken so far (sampling first if none exist yet). */
  async view(): Promise<LbView> {
    if (this.#samples.length === 0) await this.#sample();
    return this.#build();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unswap();
    this.#listeners.clear();
  }

  /** A tick nobody waits for: its failure is reported, never an unhandled rejection that would end the process. */
  #tickInBackground(): void {
    this.#tick().catch(this.#onError);
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    await this.#sample();
    if (!this.#closed) this.#emit();
  }

  #emit(): void {
    if (this.#listeners.size === 0) return;
    const view = this.#build();
    for (const l of this.#listeners) l(view);
  }

  /** One sample at a time: a slow collect must not interleave two samples out of order. */
  #sample(): Promise<void> {
    this.#sampling ??= this.#takeSample().finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  async #takeSample(): Promise<void> {
    const stats = await this.#lb.stats.read();
    const requests = new Map<string, { total: number; errors: number }>();
    let h2 = 0;
    for (const v of stats.requests) {
      const k = `${v.route}\0${v.instance}`;
      let e = requests.get(k);
      if (!e) requests.set(k, (e = { total: 0, errors: 0 }));
      e.total += v.count;
      if (v.status >= 500 || (v.grpcStatus !== undefined && GRPC_ERRORS.has(v.grpcStatus))) e.errors += v.count;
      if (v.protocol === 'h2') h2 += v.count;
    }
    const buckets = new Map<string, number[]>();
    for (const [route, b] of stats.latency) {
      if (b.bounds.length > this.#bounds.length) this.#bounds = [...b.bounds];
      buckets.set(route, [...b.counts]);
    }
    const ejections = new Map(stats.ejections);
    this.#rollouts.sample(stats);
    const t = this.#now();
    this.#samples.push({ t, requests, buckets, ejections, h2 });
    let all = 0;
    for (const e of requests.values()) all += e.total;
    if (this.#lastTotal && t > this.#lastTotal.t) {
      this.#history.push(round(Math.max(0, all - this.#lastTotal.requests) / ((t - this.#lastTotal.t) / 1000)));
      if (this.#history.length > HISTORY_POINTS) this.#history.shift();
    }
    this.#lastTotal = { t, requests: all };
    // Keep one sample older than the window so a full window of rates is always available.
    while (this.#samples.length > 2 && (this.#samples[1]?.t ?? t) <= t - this.#window * 1000) this.#samples.shift();
  }

  #build(): LbView {
    const last = this.#samples[this.#samples.length - 1];
    const first = this.#samples[0];
    const seconds = last && first && last.t > first.t ? (last.t - first.t) / 1000 : 0;
    const rate = (a: number, b: number): number => (seconds > 0 ? Math.max(0, a - b) / seconds : 0);
    const reqDelta = (route: string, instance: string): { rps: number; eps: number; total: number; errors: number } => {
      const k = `${route}\0${instance}`;
      const now = last?.requests.get(k);
      const then = first?.requests.get(k);
      return { rps: rate(now?.total ?? 0, then?.total ?? 0), eps: rate(now?.errors ?? 0, then?.errors ?? 0), total: now?.total ?? 0, errors: now?.errors ?? 0 };
    };
    const bucketDelta = (route: string): number[] => {
      const now = last?.buckets.get(route) ?? [];
      // One sample is no window: no latency to report yet rather than a lifetime figure.
      const then = first && first !== last ? first.buckets.get(route) ?? [] : now;
      return now.map((c, i) => Math.max(0, c - (then[i] ?? 0)));
    };
    const p99 = (counts: number[]): number | null => {
      const s = quantileFromBuckets(0.99, this.#bounds, counts);
      return s === null ? null : round(s * 1000, 1);
    };
    const addInto = (into: number[], add: number[]): void => {
      for (let i = 0; i < add.length; i++) into[i] = (into[i] ?? 0) + (add[i] ?? 0);
    };

    const snap = this.#lb.snapshots.current;
    const states = this.#lb.states;
    const src = this.#source?.status();
    const addr = this.#lb.address;
    const routes: LbView['routes'] = [];
    const groups: LbView['groups'] = [];
    const all: number[] = [];
    let totalRps = 0;
    let totalEps = 0;
    let upstreamCount = 0;
    let serving = 0;
    const nowMs = this.#now();
    if (snap) {
      const routesOf = new Map<string, string[]>();
      for (const r of snap.routes) {
        const origin = r.spec.origin;
        const counts = bucketDelta(origin);
        addInto(all, counts);
        let rps = 0;
        let eps = 0;
        // Every instance label seen for this route, including '' (no instance available → 503).
        for (const k of last?.requests.keys() ?? []) {
          if (!k.startsWith(`${origin}\0`)) continue;
          const d = reqDelta(origin, k.slice(origin.length + 1));
          rps += d.rps;
          eps += d.eps;
        }
        totalRps += rps;
        totalEps += eps;
        routes.push({
          origin, host: r.spec.host ?? '*', path: r.spec.pathPrefix, service: r.spec.service, balance: r.spec.balance, group: r.group.key,
          protocol: r.spec.protocol ?? (r.group.upstreams.some((u) => u.protocol !== undefined) ? 'by instance' : 'http'),
          rps: round(rps), errorsPerSec: round(eps), p99Ms: p99(counts),
        });
        let l = routesOf.get(r.group.key);
        if (!l) routesOf.set(r.group.key, (l = []));
        l.push(origin);
      }
      for (const g of snap.groups.values()) {
        const origins = routesOf.get(g.key) ?? [];
        const counts: number[] = [];
        for (const o of origins) addInto(counts, bucketDelta(o));
        let noInstance = 0;
        let noInstanceErrors = 0;
        for (const o of origins) {
          const d = reqDelta(o, '');
          noInstance += d.rps;
          noInstanceErrors += d.eps;
        }
        let grps = 0;
        let geps = 0;
        const upstreams = g.upstreams.map((u): UpstreamView => {
          const address = `${u.address}:${u.port}`;
          let rps = 0;
          let eps = 0;
          let total = 0;
          let errors = 0;
          for (const o of origins) {
            const d = reqDelta(o, address);
            rps += d.rps;
            eps += d.eps;
            total += d.total;
            errors += d.errors;
          }
          grps += rps;
          geps += eps;
          const s = states.peek(u.id);
          const ejected = s !== undefined && s.ejectedUntil > nowMs;
          upstreamCount++;
          if (!ejected && !(s?.draining ?? false)) serving++;
          return {
            id: u.id, address, protocol: u.protocol ?? null, weight: u.weight, status: g.instances.get(u.id)?.status ?? 'unknown',
            inFlight: s?.inFlight ?? 0, ejected, ejectedUntil: ejected && s ? new Date(s.ejectedUntil).toISOString() : null,
            ejections: Math.max(last?.ejections.get(u.id) ?? 0, s?.ejections ?? 0), draining: s?.draining ?? false,
            rps: round(rps), errorsPerSec: round(eps), requests: total, errors,
          };
        });
        groups.push({
          key: g.key, service: g.service, strategy: g.strategy.name, rps: round(grps + noInstance), errorsPerSec: round(geps + noInstanceErrors),
          noInstancePerSec: round(noInstance), p99Ms: p99(counts), upstreams,
        });
      }
    }
    return {
      attached: true,
      sampledAt: new Date(last?.t ?? nowMs).toISOString(),
      windowSeconds: round(seconds, 1),
      balancer: { listen: addr ? `${addr.host.includes(':') ? `[${addr.host}]` : addr.host}:${addr.port}` : null },
      registry: src ? { connected: src.connected, lastContact: src.lastContact ? new Date(src.lastContact).toISOString() : null, lastError: src.lastError ?? null } : null,
      version: snap?.version ?? 0,
      builtAt: snap ? new Date(snap.builtAt).toISOString() : null,
      problems: snap?.errors ?? [],
      totals: { rps: round(totalRps), errorsPerSec: round(totalEps), p99Ms: p99(all), upstreams: upstreamCount, serving, h2Rps: round(rate(last?.h2 ?? 0, first?.h2 ?? 0)) },
      history: [...this.#history],
      routes,
      groups,
      rollouts: this.#rollouts.view(this.#lb.snapshots, src),
    };
  }
}
