// The system clock's timers hold any delay: Node arms a timer above 2^31 - 1 ms for 1 ms instead.
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { MAX_TIMER_MS, longTimeout, systemClock } from '../../src/core/clock.js';
import { sleep as abortableSleep } from '../../src/core/sleep.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

it('a delay longer than one Node.js timer neither fires early nor warns', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    let fired = 0;
    const timers = [MAX_TIMER_MS + 1, 30 * 24 * 3600e3, Infinity].map((ms) => systemClock.setTimeout(() => fired++, ms));
    const ac = new AbortController();
    void abortableSleep(MAX_TIMER_MS + 1, ac.signal).then(() => fired++);
    await sleep(100);
    assert.equal(fired, 0);
    for (const t of timers) t.cancel();
    ac.abort();
    await sleep(0);
    assert.equal(fired, 1, 'the aborted sleep ended');
    assert.deepEqual(warnings, []);
  } finally {
    process.off('warning', onWarning);
  }
});

it('waits in steps: fires once, after the whole delay, and cancel stops it between steps', async () => {
  const started = performance.now();
  const at = await new Promise<number>((resolve) => longTimeout(() => resolve(performance.now()), 120, { stepMs: 25 }));
  assert.ok(at - started >= 119, `fired after ${(at - started).toFixed(1)} ms, not 120`);

  let fired = 0;
  const timer = longTimeout(() => fired++, 100, { stepMs: 20 });
  await sleep(50); // two or three steps in
  timer.cancel();
  await sleep(120);
  assert.equal(fired, 0, 'a cancelled long timer fired');

  let short = 0;
  longTimeout(() => short++, 10, { stepMs: 20 });
  await sleep(60);
  assert.equal(short, 1);
});
