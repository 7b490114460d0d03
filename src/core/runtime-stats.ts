/**
 * Where a Node process's latency tail comes from: every GC pause (by kind) and the event loop's delay
 * distribution since the last reset. Served by the balancer's admin endpoint (/debug/runtime) so a
 * benchmark can put them next to its latency percentiles.
 */
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface PauseSummary {
  readonly count: number;
  readonly totalMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface RuntimeReport {
  /** Seconds covered by this report (since start or the last reset). */
  readonly seconds: number;
  readonly gc: Readonly<Record<string, PauseSummary>>;
  readonly eventLoopDelay: { readonly p50Ms: number; readonly p99Ms: number; readonly p999Ms: number; readonly maxMs: number; readonly meanMs: number };
  readonly heapUsedBytes: number;
  readonly rssBytes: number;
}

function summary(list: number[]): PauseSummary {
  const s = [...list].sort((a, b) => a - b);
  const at = (q: number): number => (s.length === 0 ? 0 : (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number));
  return { count: s.length, totalMs: s.reduce((a, b) => a + b, 0), p50Ms: at(0.5), p99Ms: at(0.99), maxMs: s.length === 0 ? 0 : (s[s.length - 1] as number) };
}

export class RuntimeStats {
  readonly #pauses = new Map<string, number[]>();
  readonly #obs: PerformanceObserver;
  readonly #eld: IntervalHistogram;
  #since = performance.now();

  /** `resolutionMs`: the event-loop delay sampling period (1 ms catches short stalls). */
  constructor(resolutionMs = 1) {
    this.#obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = GC_KINDS[(e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
        let l = this.#pauses.get(kind);
        if (l === undefined) this.#pauses.set(kind, (l = []));
        // Bounded: a long run keeps the most recent pauses, enough for stable percentiles.
        if (l.length >= 100_000) l.splice(0, 50_000);
        l.push(e.duration);
      }
    });
    this.#obs.observe({ entryTypes: ['gc'] });
    this.#eld = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#eld.enable();
  }

  report(): RuntimeReport {
    const gc: Record<string, PauseSummary> = {};
    for (const [k, l] of this.#pauses) gc[k] = summary(l);
    const h = this.#eld;
    const ms = (ns: number): number => ns / 1e6;
    const mem = process.memoryUsage();
    return {
      seconds: (performance.now() - this.#since) / 1000,
      gc,
      eventLoopDelay: { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), p999Ms: ms(h.percentile(99.9)), maxMs: ms(h.max), meanMs: ms(h.mean) },
      heapUsedBytes: mem.heapUsed,
      rssBytes: mem.rss,
    };
  }

  reset(): void {
    this.#pauses.clear();
    this.#eld.reset();
    this.#since = performance.now();
  }

  close(): void {
    this.#obs.disconnect();
    this.#eld.disable();
  }
}
