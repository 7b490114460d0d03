// Prometheus text read back by the benchmarks: quantiles of a histogram between two scrapes.

/**
 * Upper bounds of the p50 / p99 buckets of a histogram between two scrapes, in ms. `where` picks one
 * series of a labelled histogram (e.g. { route: '/v1/txn' }); its buckets are summed otherwise.
 */
export function histogramQuantiles(before: string, after: string, name: string, where: Record<string, string> = {}): { count: number; p50: number; p99: number } {
  const read = (t: string): Map<number, number> => {
    const out = new Map<number, number>();
    for (const m of t.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\d+)`, 'gm'))) {
      const labels = new Map([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] as string, l[2] as string]));
      if (Object.entries(where).some(([k, v]) => labels.get(k) !== v)) continue;
      const le = labels.get('le') === '+Inf' ? Infinity : Number(labels.get('le')) * 1000;
      out.set(le, (out.get(le) ?? 0) + Number(m[2]));
    }
    return out;
  };
  const base = read(before);
  const buckets = [...read(after)].sort((a, b) => a[0] - b[0]).map(([le, c]) => [le, c - (base.get(le) ?? 0)] as [number, number]);
  const count = buckets[buckets.length - 1]?.[1] ?? 0;
  const q = (p: number): number => buckets.find(([, c]) => c >= p * count)?.[0] ?? NaN;
  return { count, p50: q(0.5), p99: q(0.99) };
}
