// /v1/agent/metrics' JSON: gauges now, counters and samples per 10 s interval (the last finished one), from prom-client registries.
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConsulMetrics, goTimestamp } from '../../src/registry/server/http/consul-metrics.js';
import { manualClock } from '../helpers/clock.js';

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

it('reports the interval in progress first, then always the last finished 10 s interval', async () => {
  const reg = new Registry();
  const clock = manualClock(Date.UTC(2030, 0, 1, 12, 0, 0));
  const requests = new Counter({ name: 'requests_total', help: 'h', labelNames: ['route'], registers: [reg] });
  const latency = new Histogram({ name: 'latency_seconds', help: 'h', buckets: [0.01, 0.1, 1], registers: [reg] });
  const depth = new Gauge({ name: 'depth', help: 'h', registers: [reg] });
  requests.inc({ route: 'a' }, 5); // before start: not part of any interval
  const m = new ConsulMetrics({ registries: () => [reg], clock });
  await m.start();
  requests.inc({ route: 'a' }, 3);
  latency.observe(0.05);
  latency.observe(0.5);
  depth.set(7);
  let s = await m.summary();
  assert.equal(s.Timestamp, '2030-01-01 12:00:00 +0000 UTC');
  assert.deepEqual(s.Gauges, [{ Name: 'depth', Value: 7, Labels: {} }]);
  assert.deepEqual(s.Points, []);
  assert.equal(s.Counters.length, 1);
  assert.deepEqual({ ...s.Counters[0], Rate: 0 }, { Name: 'requests_total', Count: 3, Rate: 0, Sum: 3, Min: 1, Max: 1, Mean: 1, Stddev: 0, Labels: { route: 'a' } });
  assert.deepEqual({ ...s.Samples[0], Rate: 0 }, { Name: 'latency_seconds', Count: 2, Rate: 0, Sum: 0.55, Min: 0.01, Max: 1, Mean: 0.275, Stddev: 0, Labels: {} });
  // The interval closes: the same numbers, with the rate over 10 s, until the next one closes.
  clock.advance(10_000);
  await settle();
  requests.inc({ route: 'b' });
  s = await m.summary();
  assert.equal(s.Timestamp, '2030-01-01 12:00:00 +0000 UTC');
  assert.deepEqual(s.Counters.map((c) => [c.Labels, c.Sum, c.Rate]), [[{ route: 'a' }, 3, 0.3]]);
  clock.advance(10_000);
  await settle();
  s = await m.summary();
  assert.equal(s.Timestamp, '2030-01-01 12:00:10 +0000 UTC');
  assert.deepEqual(s.Counters.map((c) => [c.Labels, c.Sum]), [[{ route: 'b' }, 1]]);
  assert.deepEqual(s.Samples, [], 'no observations in that interval');
  m.close();
});

it("formats timestamps as Go's time.Time.String() in UTC", () => {
  assert.equal(goTimestamp(Date.UTC(2017, 7, 8, 2, 55, 10, 400)), '2017-08-08 02:55:10 +0000 UTC');
});

it('collects gauges only when the summary is asked for, not at every interval edge', async () => {
  // Some gauges cost as much as what they count (open fds, active handles); the 10 s edges need only counters and samples.
  const reg = new Registry();
  const clock = manualClock(Date.UTC(2030, 0, 1, 12, 0, 0));
  let collected = 0;
  new Gauge({ name: 'costly', help: 'h', registers: [reg], collect() { collected++; this.set(collected); } });
  const requests = new Counter({ name: 'requests_total', help: 'h', registers: [reg] });
  const m = new ConsulMetrics({ registries: () => [reg], clock });
  await m.start();
  for (let i = 0; i < 5; i++) {
    requests.inc();
    clock.advance(10_000);
    await settle();
  }
  assert.equal(collected, 0, 'no gauge collected at the six edges');
  const s = await m.summary();
  assert.equal(collected, 1);
  assert.deepEqual(s.Gauges, [{ Name: 'costly', Value: 1, Labels: {} }]);
  assert.deepEqual(s.Counters.map((c) => c.Sum), [1], 'counters still per interval');
  m.close();
});
