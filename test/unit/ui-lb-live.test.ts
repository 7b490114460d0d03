// The UI's live balancer view samples the balancer's metrics in the background: a sample that fails is reported
// and retried on the next tick, never an unhandled rejection (which would end the agent).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { UpstreamStates } from '../../src/balancer/index.js';
import { LbLive } from '../../src/ui/lb-live.js';
import { waitFor } from '../helpers/agent.js';

it('a failing metrics collect is reported through onError on every tick, and the sampler keeps going', async () => {
  const metrics = new Registry();
  let calls = 0;
  // The balancer's request counter, as the view reads it, failing to collect.
  new Counter({ name: 'switchyard_lb_requests_total', help: 'throws when collected', registers: [metrics], collect() { calls++; throw new Error('collect failed'); } });
  const errors: unknown[] = [];
  const live = new LbLive(
    { snapshots: { current: undefined, onSwap: () => () => undefined }, states: new UpstreamStates(), metrics },
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
