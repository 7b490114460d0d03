// Parked blocking queries share one deadline timer: it must not outlive the last parked query (a cancelled
// query's deadline, minutes off, kept a stopped in-process agent's process alive until then).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WAITERS = fileURLToPath(new URL('../../src/registry/server/waiters.ts', import.meta.url));

/** Runs `body` in a fresh process with `w` (a Waiters) and `cancellable()` in scope; how long until it exited. */
function run(body: string): { ms: number; status: number | null; out: string } {
  const script = `
    import { Waiters } from ${JSON.stringify(WAITERS)};
    const cancellable = () => { const fns = []; let c = false; return { get cancelled() { return c; }, onCancel(f) { fns.push(f); return () => {}; }, fire() { c = true; for (const f of fns) f(); } }; };
    const w = new Waiters();
    ${body}
  `;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { ms: Date.now() - t0, status: r.status, out: `${r.stdout}${r.stderr}` };
}

it('a process whose parked queries were all cancelled exits at once, not at their deadlines', () => {
  const r = run(`
    const a = cancellable(), b = cancellable();
    const pa = w.park(['svc:a'], 600_000, a), pb = w.park(['svc:b'], 300_000, b);
    a.fire(); b.fire();
    console.log(await pa, await pb, w.count);
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /false false 0/);
  assert.ok(r.ms < 15_000, `exited after ${r.ms} ms (the deadlines were 5 and 10 minutes off)`);
});

it('a query parked after that still ends on its deadline, and one still parked keeps the process up until then', () => {
  const r = run(`
    const a = cancellable();
    await Promise.all([(a.fire(), w.park(['svc:a'], 600_000, a))]);
    const t0 = Date.now();
    const ended = await w.park(['svc:c'], 1500);
    console.log(ended, Date.now() - t0 >= 1400);
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /false true/);
});

it('a query woken before its deadline leaves no timer behind when a shorter one expires after it', () => {
  // The deadline of the woken query (10 minutes off) stayed queued; the expiry of the short one armed the
  // shared timer for it, which kept a process with nothing parked alive until then.
  const r = run(`
    const woken = w.park(['svc:a'], 600_000);
    const short = w.park(['svc:b'], 200);
    const before = performance.now();
    w.wake('svc:a');
    const at = await woken;
    console.log(at >= before && at <= performance.now(), await short, w.count);
  `);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /true false 0/);
  assert.ok(r.ms < 15_000, `exited after ${r.ms} ms (the woken query's deadline was 10 minutes off)`);
});

it('busy while woken waiters are being answered; whenIdle runs once the last slice is done, or at once when idle', async () => {
  const { Waiters } = await import('../../src/registry/server/waiters.js');
  const w = new Waiters();
  const order: string[] = [];
  let idleAtOnce = false;
  w.whenIdle(() => (idleAtOnce = true));
  assert.ok(idleAtOnce, 'nothing pending: at once');
  // More than a slice's worth, so the fan-out spans several turns of the event loop.
  const answered = Array.from({ length: 5000 }, (_, i) => w.park(['k'], 60_000).then((end) => {
    if (i === 4999) order.push('last answered');
    return end;
  }));
  assert.equal(w.busy, false);
  w.wake('k');
  assert.equal(w.busy, true);
  let calls = 0;
  w.whenIdle(() => {
    calls++;
    order.push('idle');
    assert.equal(w.busy, false);
  });
  assert.equal(calls, 0, 'not while the fan-out runs');
  const ends = new Set(await Promise.all(answered));
  assert.equal(ends.size, 1, 'every waiter ends with the one wake\'s time');
  assert.equal(typeof [...ends][0], 'number');
  await new Promise((r) => setImmediate(r));
  assert.equal(calls, 1);
  // Called back at the end of the last slice: that slice's answers follow in its microtasks.
  assert.deepEqual(order, ['idle', 'last answered']);
});

it('a wall clock stepped back an hour (NTP, a resumed VM) does not hold a parked query past its wait', () => {
  const r = run(`
    const wall = Date.now;
    const t0 = performance.now();
    const p = w.park(['svc:a'], 300);
    Date.now = () => wall() - 3_600_000;
    const ended = await p;
    console.log('ended', ended, Math.round(performance.now() - t0));
  `);
  assert.equal(r.status, 0, `the process did not end: ${r.out}`);
  const m = /ended false (\d+)/.exec(r.out);
  assert.ok(m, r.out);
  assert.ok(Number(m[1]) < 5000, `the 300 ms wait took ${m[1]} ms`);
});
