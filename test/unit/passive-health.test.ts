// PassiveHealth on its own, on a clock the test moves (injected through UpstreamStates): nginx's max_fails within
// fail_timeout, and outlier ejection on consecutive 5xx with an ejection time that grows and is capped.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamStates } from '../../src/balancer/index.js';
import { PassiveHealth } from '../../src/proxy/passive-health.js';
import type { PassiveHealthOptions } from '../../src/proxy/passive-health.js';
import { manualClock } from '../contract/balancer.contract.js';

const OPTS: PassiveHealthOptions = { maxFails: 3, failTimeoutMs: 10_000, consecutive5xx: 5, baseEjectionMs: 10_000, maxEjectionMs: 25_000 };

function setup(opts: Partial<PassiveHealthOptions> = {}) {
  const clock = manualClock();
  const states = new UpstreamStates(clock);
  const ejections: { id: string; reason: string; ms: number; at: number }[] = [];
  const health = new PassiveHealth(states, { ...OPTS, ...opts }, (id, reason, ms) => ejections.push({ id, reason, ms, at: clock.now() }));
  const ejectedFor = (id: string): number => Math.max(0, states.get(id).ejectedUntil - clock.now());
  return { clock, states, health, ejections, ejectedFor };
}

describe('max_fails within fail_timeout (connect errors, resets, timeouts)', () => {
  it('the max_fails-th failure within the window ejects for fail_timeout; fewer do not', () => {
    const { clock, health, ejections, ejectedFor, states } = setup();
    health.failure('a');
    clock.advance(4000);
    health.failure('a');
    assert.equal(ejections.length, 0);
    clock.advance(5999);
    const before = states.version;
    health.failure('a');
    assert.deepEqual(ejections.map(({ id, reason, ms }) => ({ id, reason, ms })), [{ id: 'a', reason: '3 failures within 10000 ms (max_fails)', ms: 10_000 }]);
    assert.equal(ejectedFor('a'), 10_000);
    assert.ok(states.version > before, 'strategies see the ejection');
    assert.equal(ejectedFor('b'), 0, 'other upstreams are untouched');
  });

  it('failures further apart than fail_timeout start a new window', () => {
    const { clock, health, ejections } = setup();
    health.failure('a');
    health.failure('a');
    clock.advance(10_001);
    health.failure('a');
    health.failure('a');
    assert.equal(ejections.length, 0, 'the window restarted at the third failure');
    health.failure('a');
    assert.equal(ejections.length, 1);
  });

  it('an ejected upstream is not ejected again while out; once back, a full window is needed again', () => {
    const { clock, health, ejections, states } = setup({ consecutive5xx: 0 });
    for (let i = 0; i < 3; i++) health.failure('a');
    assert.equal(ejections.length, 1);
    for (let i = 0; i < 2; i++) health.failure('a');
    assert.equal(ejections.length, 1, 'no second ejection while out');
    clock.advance(10_000);
    health.failure('a');
    assert.equal(ejections.length, 2, 'the failures counted while out complete a window once it is back');
    assert.equal(states.get('a').ejections, 2);
  });

  it('an upstream that left the table and came back starts a fresh window; a gone one keeps nothing', () => {
    const { clock, health, ejections, states } = setup({ consecutive5xx: 0 });
    health.failure('a');
    health.failure('a');
    // The instance is deregistered (its container died: connections refused) and re-registered under its ID.
    assert.equal(states.forget(['a'], () => false), 1);
    clock.advance(1000);
    health.failure('a');
    assert.equal(ejections.length, 0, 'the failures of its earlier life do not count');
    health.failure('a');
    health.failure('a');
    assert.equal(ejections.length, 1);

    // Containers that each failed a few times and went: nothing of theirs stays with the balancer.
    for (let i = 0; i < 1000; i++) health.failure(`gone-${i}`);
    states.forget(Array.from({ length: 1000 }, (_, i) => `gone-${i}`), () => false);
    assert.equal(states.size, 1, 'only the live upstream has a record');
  });

  it('max_fails 0 turns it off', () => {
    const { health, ejections } = setup({ maxFails: 0, consecutive5xx: 0 });
    for (let i = 0; i < 50; i++) health.failure('a');
    assert.equal(ejections.length, 0);
  });
});

describe('outlier ejection on consecutive 5xx', () => {
  it('consecutive5xx 5xx in a row eject for base-ejection; any other status resets the count', () => {
    const { health, ejections, ejectedFor, states } = setup({ maxFails: 0 });
    for (let i = 0; i < 4; i++) health.response('a', 503);
    health.response('a', 404);
    assert.equal(states.get('a').consecutiveFailures, 0, 'a 404 is an answer, not a failure');
    for (let i = 0; i < 4; i++) health.response('a', 500);
    assert.equal(ejections.length, 0);
    health.response('a', 502);
    assert.deepEqual(ejections.map(({ reason, ms }) => ({ reason, ms })), [{ reason: '5 consecutive 5xx responses (outlier)', ms: 10_000 }]);
    assert.equal(ejectedFor('a'), 10_000);
    assert.equal(states.get('a').consecutiveFailures, 0, 'the count starts over after an ejection');
  });

  it('each ejection lasts longer (base × ejections so far + 1), up to max-ejection', () => {
    const { clock, health, ejections } = setup({ maxFails: 0 });
    const fiveErrors = (): void => {
      for (let i = 0; i < 5; i++) health.response('a', 503);
    };
    for (let round = 0; round < 4; round++) {
      fiveErrors();
      const last = ejections[ejections.length - 1];
      assert.ok(last);
      clock.advance(last.ms);
    }
    assert.deepEqual(ejections.map((e) => e.ms), [10_000, 20_000, 25_000, 25_000]);
  });

  it('5xx while ejected do not extend the ejection', () => {
    const { clock, health, ejections, ejectedFor } = setup({ maxFails: 0 });
    for (let i = 0; i < 5; i++) health.response('a', 503);
    clock.advance(1000);
    for (let i = 0; i < 10; i++) health.response('a', 503);
    assert.equal(ejections.length, 1);
    assert.equal(ejectedFor('a'), 9000);
  });

  it('connect failures and 5xx count toward the same run', () => {
    const { health, ejections } = setup({ maxFails: 0 });
    for (let i = 0; i < 3; i++) health.failure('a');
    health.response('a', 503);
    assert.equal(ejections.length, 0);
    health.response('a', 504);
    assert.equal(ejections.length, 1);
    assert.match(ejections[0]?.reason ?? '', /outlier/);
  });

  it('consecutive5xx 0 turns it off', () => {
    const { health, ejections } = setup({ maxFails: 0, consecutive5xx: 0 });
    for (let i = 0; i < 50; i++) health.response('a', 503);
    assert.equal(ejections.length, 0);
  });
});

describe('the default clock', () => {
  it('an ejection ends on time although the wall clock was stepped back an hour', async (t) => {
    const states = new UpstreamStates();
    const health = new PassiveHealth(states, { ...OPTS, maxFails: 1, failTimeoutMs: 50 }, () => undefined);
    health.failure('a');
    const wall = Date.now;
    Date.now = () => wall() - 3_600_000;
    t.after(() => {
      Date.now = wall;
    });
    assert.ok(states.get('a').ejectedUntil > states.now(), 'ejected at first');
    await new Promise((r) => setTimeout(r, 120));
    assert.ok(states.get('a').ejectedUntil <= states.now(), 'still ejected 120 ms into a 50 ms ejection: the balancer followed the stepped wall clock');
  });
});
