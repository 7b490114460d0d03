/**
 * /v1/agent/metrics in Consul's JSON shape (go-metrics' in-memory sink): Gauges with their current
 * value; Counters and Samples aggregated over 10 s intervals, showing the last finished interval
 * (the current one right after start), built from the same prom-client registries that /metrics
 * serves. Prometheus counters and histograms are cumulative, so each interval is the difference of
 * two snapshots taken at its edges.
 */
import { Gauge } from 'prom-client';
import type { Metric, Registry as PromRegistry } from 'prom-client';
import type { Clock, Timer } from '../../../core/clock.js';

interface Series {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly type: 'counter' | 'gauge' | 'sample';
  /** counter/gauge value; sample: observation count. */
  readonly value: number;
  readonly sum: number;
  /** sample: cumulative count per bucket upper bound, ascending. */
  readonly buckets: readonly (readonly [number, number])[];
}

type Snapshot = Map<string, Series>;

export interface ConsulMetricsSummary {
  Timestamp: string;
  Gauges: { Name: string; Value: number; Labels: Record<string, string> }[];
  Points: { Name: string; Points: number[] }[];
  Counters: Aggregate[];
  Samples: Aggregate[];
}

interface Aggregate {
  Name: string;
  Count: number;
  Rate: number;
  Sum: number;
  Min: number;
  Max: number;
  Mean: number;
  Stddev: number;
  Labels: Record<string, string>;
}

/** Go's time.Time.String() for a UTC instant: "2017-08-08 02:55:10 +0000 UTC". */
export function goTimestamp(ms: number): string {
  return `${new Date(Math.round(ms / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

function labelsOf(raw: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (k !== 'le' && k !== 'quantile') out[k] = String(v);
  return out;
}

const seriesKey = (name: string, labels: Record<string, string>): string => `${name}${JSON.stringify(Object.entries(labels).sort())}`;

/**
 * `gauges: false` for the snapshots at interval edges, which feed only counters and samples: some
 * gauges cost as much as the connections they count (open fds, active handles: 78 ms every 10 s, on
 * the event loop, with 20,000 watchers parked), and theirs are read when the summary is asked for.
 */
async function snapshot(registries: readonly PromRegistry[], gauges = true): Promise<Snapshot> {
  const out: Snapshot = new Map();
  for (const r of registries) {
    const metrics = gauges
      ? await r.getMetricsAsJSON()
      : await Promise.all(r.getMetricsAsArray().filter((m) => !(m instanceof Gauge)).map((m) => (m as unknown as Metric).get()));
    for (const m of metrics) {
      const values = m.values as { value: number; labels: Record<string, string | number>; metricName?: string }[];
      const type = String(m.type);
      if (type === 'counter' || type === 'gauge') {
        for (const v of values) {
          const labels = labelsOf(v.labels);
          out.set(seriesKey(m.name, labels), { name: m.name, labels, type, value: v.value, sum: v.value, buckets: [] });
        }
      } else if (type === 'histogram' || type === 'summary') {
        // One series per label set: gather its _count, _sum and (histograms) buckets.
        const acc = new Map<string, { labels: Record<string, string>; count: number; sum: number; buckets: [number, number][] }>();
        for (const v of values) {
          const labels = labelsOf(v.labels);
          const k = seriesKey(m.name, labels);
          let a = acc.get(k);
          if (!a) acc.set(k, (a = { labels, count: 0, sum: 0, buckets: [] }));
          if (v.metricName?.endsWith('_count')) a.count = v.value;
          else if (v.metricName?.endsWith('_sum')) a.sum = v.value;
          else if (v.metricName?.endsWith('_bucket')) a.buckets.push([v.labels.le === '+Inf' ? Infinity : Number(v.labels.le), v.value]);
        }
        for (const [k, a] of acc) {
          out.set(k, { name: m.name, labels: a.labels, type: 'sample', value: a.count, sum: a.sum, buckets: a.buckets.sort((x, y) => x[0] - y[0]) });
        }
      }
    }
  }
  return out;
}

/**
 * A sample's interval aggregate. Prometheus keeps bucket counts, not observations: Min and Max
 * are the bounds of the lowest and highest buckets that received observations (the sum when
 * that is +Inf), and the spread is not known (Stddev 0).
 */
function sampleAggregate(now: Series, before: Series | undefined, seconds: number): Aggregate | undefined {
  const count = now.value - (before?.value ?? 0);
  if (count <= 0) return undefined;
  const sum = now.sum - (before?.sum ?? 0);
  const prevBuckets = new Map(before?.buckets ?? []);
  const mean = sum / count;
  let min: number | undefined;
  let max = mean;
  let cumBelow = 0;
  let lower = 0;
  for (const [le, cum] of now.buckets) {
    const inBucket = cum - (prevBuckets.get(le) ?? 0) - cumBelow;
    if (inBucket > 0) {
      min ??= lower;
      max = le;
    }
    cumBelow += inBucket;
    lower = le;
  }
  if (!Number.isFinite(max)) max = Math.max(sum, lower);
  return { Name: now.name, Count: count, Rate: sum / seconds, Sum: sum, Min: min ?? mean, Max: max, Mean: mean, Stddev: 0, Labels: now.labels };
}

export class ConsulMetrics {
  readonly #registries: () => readonly PromRegistry[];
  readonly #clock: Clock;
  readonly #intervalMs: number;
  /** Snapshots at interval edges, newest last (two are enough). */
  #edges: { at: number; snap: Snapshot }[] = [];
  #timer: Timer | undefined;
  #closed = false;

  constructor(opts: { registries: () => readonly PromRegistry[]; clock: Clock; intervalMs?: number }) {
    this.#registries = opts.registries;
    this.#clock = opts.clock;
    this.#intervalMs = opts.intervalMs ?? 10_000;
  }

  async start(): Promise<void> {
    await this.#tick();
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    const at = this.#clock.now();
    this.#edges = [...this.#edges, { at, snap: await snapshot(this.#registries(), false) }].slice(-2);
    this.#timer = this.#clock.setTimeout(() => void this.#tick(), this.#intervalMs);
  }

  async summary(): Promise<ConsulMetricsSummary> {
    const now = this.#clock.now();
    const current = await snapshot(this.#registries());
    // The last finished interval (between the last two edges) when there is one, else the one in progress.
    const [from, b] = this.#edges;
    const to = b ? b.snap : current;
    const startedAt = from?.at ?? now;
    const seconds = Math.max(((b ? b.at : now) - startedAt) / 1000, 1e-3);
    const out: ConsulMetricsSummary = { Timestamp: goTimestamp(startedAt), Gauges: [], Points: [], Counters: [], Samples: [] };
    for (const s of current.values()) if (s.type === 'gauge') out.Gauges.push({ Name: s.name, Value: s.value, Labels: s.labels });
    for (const [k, s] of to) {
      const before = from?.snap.get(k);
      if (s.type === 'counter') {
        const sum = s.value - (before?.value ?? 0);
        if (sum <= 0) continue;
        // Increments are not recorded one by one: each counts as one of size Sum/Count, Count being the increase rounded up.
        const count = Math.max(1, Math.ceil(sum));
        const mean = sum / count;
        out.Counters.push({ Name: s.name, Count: count, Rate: sum / seconds, Sum: sum, Min: mean, Max: mean, Mean: mean, Stddev: 0, Labels: s.labels });
      } else if (s.type === 'sample') {
        const agg = sampleAggregate(s, before, seconds);
        if (agg) out.Samples.push(agg);
      }
    }
    return out;
  }
}
