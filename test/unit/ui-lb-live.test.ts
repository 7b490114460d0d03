// The UI's live balancer view reads the balancer's stats in the background: a read that fails is reported
// and retried on the next tick, never an unhandled rejection (which would end the agent).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamStates } from '../../src/balancer/index.js';
import { LbLive } from '../../src/ui/lb-live.js';
import { waitFor } from '../helpers/agent.js';

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
