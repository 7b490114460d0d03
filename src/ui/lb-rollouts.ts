/**
 * The rollout part of the UI's balancer view: splits (subsets and shares), slow-start ramps per
 * instance, instances the mass-loss guard holds, the registry watch's staleness, and the
 * change-latency histogram (read through the balancer's stats reader, like the rest).
 */
import type { LbStatsSample } from '../proxy/lb-metrics.js';
import type { SourceStatus } from '../discovery/types.js';
import type { RouteSpec } from '../config/route-spec.js';
import type { RoutingSnapshot } from '../routing/snapshot.js';
import type { GuardState, LastChange } from '../routing/snapshot-store.js';

const STAGES = ['swap', 'first_request'] as const;
type Stage = (typeof STAGES)[number];

/** What the view reads of the balancer beyond the snapshot (optional: a bare snapshot store shows none). */
export interface RolloutSnapshots {
  readonly current: RoutingSnapshot | undefined;
  guardState?(): GuardState | undefined;
  readonly lastChange?: LastChange | undefined;
}

export interface RolloutsView {
  splits: { route: string; path: string; sticky: string | null; subsets: { group: string; label: string; sharePercent: number; instances: number }[] }[];
  /** Instances still ramping up (slow start), with their share of full weight now (0..1). */
  slowStart: { service: string; group: string; id: string; address: string; ramp: number }[];
  guard: { maxDropPercent: number; holdMs: number } | null;
  held: { service: string; id: string; address: string; since: string; until: string }[];
  watch: { stale: boolean; staleAfterMs: number | null; staleWatches: { watch: string; lastHeard: string }[]; changeClock: string | null } | null;
  changeLatency: {
    /** Bucket upper bounds in seconds (+Inf last as null). */
    bounds: (number | null)[];
    /** Per stage: how many changes fell in each bucket (not cumulative), and the total. */
    stages: Record<Stage, { counts: number[]; total: number; sumSeconds: number }>;
    last: { version: number; committedAt: string; clock: string; swapMs: number; firstRequestMs: number | null } | null;
  };
}

interface Histogram {
  bounds: readonly number[];
  cumulative: Record<Stage, readonly number[]>;
  sums: Record<Stage, number>;
}

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

function hashByText(h: { kind: string; name?: string } | undefined): string | null {
  if (!h) return null;
  return h.kind === 'ip' ? 'client IP' : `${h.kind} ${h.name ?? ''}`;
}

/** A subset in words: its own service (tag-merged splits), tags and meta values, e.g. "version=v2". */
function subsetLabel(spec: RouteSpec, i: number): string {
  const sub = spec.split?.[i];
  const parts = [
    ...(sub?.service !== undefined && sub.service !== spec.service ? [sub.service] : []),
    ...(sub?.tags ?? []).filter((t) => !t.startsWith('urlprefix-')).map((t) => `tag ${t}`),
    ...(sub?.meta ?? []).map(([k, v]) => `${k}=${v}`),
  ];
  return parts.length > 0 ? parts.join(', ') : sub?.service ?? spec.service;
}

/** Keeps the change-latency histogram of the latest stats sample and builds the view part. */
export class RolloutsSampler {
  #hist: Histogram | undefined;

  sample(stats: LbStatsSample): void {
    const c = stats.changeLatency;
    this.#hist = {
      bounds: c.swap.buckets.bounds,
      cumulative: { swap: c.swap.buckets.counts, first_request: c.first_request.buckets.counts },
      sums: { swap: c.swap.sumSeconds, first_request: c.first_request.sumSeconds },
    };
  }

  view(snapshots: RolloutSnapshots, source: SourceStatus | undefined): RolloutsView {
    const snap = snapshots.current;
    const splits: RolloutsView['splits'] = [];
    const slowStart: RolloutsView['slowStart'] = [];
    const held: RolloutsView['held'] = [];
    if (snap) {
      for (const r of snap.routes) {
        if (!r.split) continue;
        splits.push({
          route: r.spec.origin, path: `${r.spec.host ?? ''}${r.spec.pathPrefix}`, sticky: hashByText(r.split.sticky),
          subsets: r.split.groups.map((g, i) => ({ group: g.key, label: subsetLabel(r.spec, i), sharePercent: round((r.split?.shares[i] ?? 0) * 100, 2), instances: g.upstreams.length })),
        });
      }
      const seenHeld = new Set<string>();
      for (const g of snap.groups.values()) {
        for (const u of g.upstreams) {
          const ramp = g.strategy.rampFactor?.(u.id);
          if (ramp !== undefined && ramp < 1) slowStart.push({ service: g.service, group: g.key, id: u.id, address: `${u.address}:${u.port}`, ramp: round(ramp, 2) });
          const h = g.instances.get(u.id)?.held;
          if (h && !seenHeld.has(u.id)) {
            seenHeld.add(u.id);
            held.push({ service: g.service, id: u.id, address: `${u.address}:${u.port}`, since: new Date(h.since).toISOString(), until: new Date(h.until).toISOString() });
          }
        }
      }
    }
    const g = snapshots.guardState?.();
    const hist = this.#hist;
    const stages = {} as RolloutsView['changeLatency']['stages'];
    for (const s of STAGES) {
      const cum = hist ? hist.cumulative[s] : [];
      stages[s] = { counts: cum.map((c, i) => Math.max(0, c - (i > 0 ? cum[i - 1] ?? 0 : 0))), total: cum[cum.length - 1] ?? 0, sumSeconds: round(hist?.sums[s] ?? 0, 6) };
    }
    const last = snapshots.lastChange;
    return {
      splits, slowStart,
      guard: g ? { maxDropPercent: g.maxDropPercent, holdMs: g.holdMs } : null,
      held: held.sort((a, b) => (a.id < b.id ? -1 : 1)),
      watch: source ? {
        stale: source.stale ?? false, staleAfterMs: source.staleAfterMs ?? null, staleWatches: [...(source.staleWatches ?? [])], changeClock: source.changeClock ?? null,
      } : null,
      changeLatency: {
        bounds: hist?.bounds.map((b) => (Number.isFinite(b) ? b : null)) ?? [],
        stages,
        last: last ? {
          version: last.version, committedAt: new Date(last.committedAt).toISOString(), clock: last.clock,
          swapMs: round(last.swapSeconds * 1000, 1), firstRequestMs: last.firstRequestSeconds === undefined ? null : round(last.firstRequestSeconds * 1000, 1),
        } : null,
      },
    };
  }
}
