// The hot-path latency histogram must be indistinguishable from prom-client's Histogram on
// /metrics (text format, bucket edges inclusive) and in cluster aggregation.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { LatencyHistogram } from '../../src/core/latency-histogram.js';

const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const samples: [string, string, number][] = [
  ['config:routes[0]', 'web', 0.0004], ['config:routes[0]', 'web', 0.001], ['config:routes[0]', 'web', 0.0011],
  ['config:routes[0]', 'web', 0.05], ['config:routes[0]', 'web', 12], ['tag:api/urlprefix-/api', 'api', 0.3], ['tag:api/urlprefix-/api', 'api', 0],
];

describe('LatencyHistogram', () => {
  it('renders exactly what prom-client\'s Histogram renders for the same observations', async () => {
    const a = new Registry();
    const b = new Registry();
    const ref = new Histogram({ name: 'x_seconds', help: 'latency', labelNames: ['route', 'service'], buckets, registers: [a] });
    const ours = new LatencyHistogram({ name: 'x_seconds', help: 'latency', labelNames: ['route', 'service'], buckets, registers: [b] });
    for (const [route, service, v] of samples) {
      ref.labels(route, service).observe(v);
      ours.observe(ours.labels(route, service), v);
    }
    assert.equal(await b.metrics(), await a.metrics());
    // Same JSON too, but for prom-client's empty exemplar slots.
    const plain = (j: unknown): unknown => JSON.parse(JSON.stringify(j, (k, v: unknown) => (k === 'exemplar' && v === null ? undefined : v)));
    assert.deepEqual(plain(await b.getMetricsAsJSON()), plain(await a.getMetricsAsJSON()));
  });

  it('aggregates across cluster workers like prom-client\'s', async () => {
    const worker = async (make: 'ref' | 'ours'): Promise<Awaited<ReturnType<Registry['getMetricsAsJSON']>>> => {
      const r = new Registry();
      if (make === 'ref') {
        const h = new Histogram({ name: 'x_seconds', help: 'latency', labelNames: ['route', 'service'], buckets, registers: [r] });
        for (const [route, service, v] of samples) h.labels(route, service).observe(v);
      } else {
        const h = new LatencyHistogram({ name: 'x_seconds', help: 'latency', labelNames: ['route', 'service'], buckets, registers: [r] });
        for (const [route, service, v] of samples) h.observe(h.labels(route, service), v);
      }
      return r.getMetricsAsJSON();
    };
    const ref = AggregatorRegistry.aggregate([await worker('ref'), await worker('ref')]);
    const ours = AggregatorRegistry.aggregate([await worker('ours'), await worker('ours')]);
    assert.equal(await ours.metrics(), await ref.metrics());
  });
});
