// The UI's live balancer view reads the balancer's stats in the background: a read that fails is reported
// and retried on the next tick, never an unhandled rejection (which would end the agent); table swaps are
// pushed at once but not one view per swap under churn.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamStates } from '../../src/balancer/index.js';
import { LbLive } from '../../src/ui/lb-live.js';
import { waitFor } from '../helpers/agent.js';
import { LbMetrics } from '../../src/proxy/lb-metrics.js';

it('a failing stats read is reported through onError on every tick, and the sampler keeps going', async () => {
  let calls = 0;
  // The balancer's stats reader failing (a metric's collect threw).
  const stats = {
    read: () => {
      calls++;
      return Promise.reject(new Error('collect failed'));
    },
  };
  const errors: unknown[] = [];
  const live = new LbLive(
    { snapshots: { current: undefined, onSwap: () => () => undefined }, states: new UpstreamStates(), stats },
    undefined,
    { sampleEveryMs: 20, onError: (err) => errors.push(err) },
  );
  try {
    await waitFor(() => errors.length >= 2, 'two failed samples reported', 5000, 10);
    assert.match((errors[0] as Error).message, /collect failed/);
    assert.ok(calls >= 2, 'the next tick tried again');
  } finally {
    live.close();
  }
});

it('table swaps under churn reach the page at most every 100 ms, the first at once, not one view per swap', async () => {
  const facts = { inFlight: () => [], registry: () => undefined, heldServices: () => [], upstreamStates: () => [], drainingPools: () => 0, h2Sessions: () => 0 };
  const stats = new LbMetrics({ processMetrics: false, serving: true, following: false, facts });
  let swapped: (() => void) | undefined;
  const live = new LbLive(
    { snapshots: { current: undefined, onSwap: (l) => ((swapped = () => l(undefined as never)), () => undefined) }, states: new UpstreamStates(), stats },
    undefined,
    // No periodic views during the test: only swaps push.
    { sampleEveryMs: 600_000 },
  );
  try {
    await live.view();
    const at: number[] = [];
    live.subscribe(() => at.push(performance.now()));
    const t0 = performance.now();
    swapped?.();
    await waitFor(() => at.length >= 1, 'the first swap pushed at once', 5000, 1);
    // 60 more swaps, one every 5 ms (200 a second, as bench:scale-lb's churn).
    for (let i = 0; i < 60; i++) {
      swapped?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    const churnMs = performance.now() - t0;
    await waitFor(() => (performance.now() - (at.at(-1) ?? 0) > 150 ? true : undefined), 'the last push of the churn', 5000, 10);
    assert.ok(at.length >= 2, `the churn's swaps were pushed too: ${at.length} views`);
    assert.ok(at.length <= Math.ceil(churnMs / 100) + 2, `${at.length} views for 61 swaps over ${churnMs.toFixed(0)} ms`);
    for (let i = 1; i < at.length; i++) assert.ok((at[i] ?? 0) - (at[i - 1] ?? 0) >= 95, `views ${i - 1} and ${i} ${((at[i] ?? 0) - (at[i - 1] ?? 0)).toFixed(0)} ms apart`);
  } finally {
    live.close();
  }
});
