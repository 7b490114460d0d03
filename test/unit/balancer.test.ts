// Balancer strategies: the contract for all five, then expected pick sequences per strategy, hashing stability and speed.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Random } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/clock.js';
import { SwitchyardError } from '../../src/core/errors.js';
import { MAX_RING_POINTS } from '../../src/balancer/hash.js';
import { createStrategy, isStrategyName, strategies, strategyNames, UpstreamStates } from '../../src/balancer/index.js';
import { REDRAWS } from '../../src/balancer/random.js';
import type { PickContext, Strategy, StrategyDeps } from '../../src/balancer/types.js';
import { manualClock, runBalancerContract, upstreams } from '../contract/balancer.contract.js';

for (const name of strategyNames) runBalancerContract(name, strategies[name]);
// Ring shares deviate from weight by a few percent (160 points per unit of weight), hence the wider band.
runBalancerContract('hash (keyed by client IP)', strategies.hash, { context: (n) => ({ hashKey: ip(n) }), tolerance: 0.15 });

function ip(n: number): string {
  return `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

interface Built {
  readonly s: Strategy;
  readonly states: UpstreamStates;
}

function build(name: string, weights: Record<string, number>, deps: Partial<StrategyDeps> = {}): Built {
  const states = deps.states ?? new UpstreamStates(manualClock());
  return { s: createStrategy(name, upstreams(weights), { random: seededRandom(1), ...deps, states }), states };
}

function sequence(s: Strategy, n: number, ctx: PickContext = {}): string {
  return Array.from({ length: n }, () => s.pick(ctx)?.id ?? '-').join(' ');
}

/** Random that replays a script, so p2c's draws can be worked out by hand. */
function scripted(values: readonly number[]): Random {
  let k = 0;
  return {
    next() {
      const v = values[k % values.length]!;
      k++;
      return v;
    },
  };
}

/** nginx's smooth weighted round robin, written as plainly as possible to check the cached one against. */
function referenceSmooth(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let k = 0; k < picks; k++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      if (weights[i] === 0) continue;
      current[i]! += weights[i]!;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}

describe('createStrategy', () => {
  it('builds every strategy by its configuration name', () => {
    for (const name of strategyNames) {
      const { s } = build(name, { a: 1 });
      assert.equal(s.name, name);
      assert.ok(isStrategyName(name));
    }
  });

  it('rejects unknown names with SY_ERR_CONFIG, listing the valid ones', () => {
    for (const name of ['roundrobin', 'least-conn', '', 'toString', 'constructor', '__proto__']) {
      assert.throws(
        () => build(name, { a: 1 }),
        (err: unknown) => err instanceof SwitchyardError && err.code === 'SY_ERR_CONFIG' && err.message.includes(JSON.stringify(name)) && strategyNames.every((n) => err.message.includes(n)),
        name,
      );
      assert.equal(isStrategyName(name), false);
    }
  });
});

describe('round_robin', () => {
  const cases: { weights: Record<string, number>; expected: string }[] = [
    { weights: { a: 5, b: 1, c: 1 }, expected: 'a a b a c a a  a a b a c a a' },
    { weights: { a: 1, b: 1, c: 1 }, expected: 'a b c  a b c' },
    { weights: { a: 2, b: 1 }, expected: 'a b a  a b a' },
    { weights: { a: 3, b: 2, c: 1 }, expected: 'a b a c b a  a b a c b a' },
    { weights: { a: 4, b: 4 }, expected: 'a b  a b' },
    { weights: { a: 1, b: 5, c: 1 }, expected: 'b b a b c b b  b b a b c b b' },
    { weights: { a: 0, b: 1, c: 1 }, expected: 'b c  b c' },
  ];
  for (const { weights, expected } of cases) {
    it(`follows nginx's smooth sequence for ${JSON.stringify(weights)}`, () => {
      const want = expected.replace(/\s+/g, ' ');
      assert.equal(sequence(build('round_robin', weights).s, want.split(' ').length), want);
    });
  }

  it('matches a plain nginx implementation, cached (short period) and live (long period)', () => {
    const rnd = seededRandom(99);
    const sets = [
      [7, 3, 0, 11, 1],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      [20_011, 1, 7], // period 20,019: longer than the cache, generated live
      [0.5, 1.5, 2.25], // fractional: no cached period
      Array.from({ length: 40 }, () => Math.floor(rnd.next() * 20)),
    ];
    for (const weights of sets) {
      const named = Object.fromEntries(weights.map((w, i) => [`u${i}`, w]));
      const { s } = build('round_robin', named);
      const picks = 50_000;
      const got = Array.from({ length: picks }, () => s.pick({})!.id);
      assert.deepEqual(got, referenceSmooth(weights, picks).map((i) => `u${i}`), JSON.stringify(weights));
    }
  });

  it('drops an ejected upstream from the sequence and restarts it when the set changes', () => {
    const { s, states } = build('round_robin', { a: 5, b: 1, c: 1 }, { panicThreshold: 0 });
    assert.equal(sequence(s, 3), 'a a b');
    states.eject('b', Infinity);
    assert.equal(sequence(s, 12), 'a a a c a a a a a c a a', 'smooth over {a:5, c:1}');
    states.restore('b');
    assert.equal(sequence(s, 7), 'a a b a c a a');
  });

  it('does not panic over held instances that passive health ejected (they had left the registry), but does over others', () => {
    // a is the survivor; b, c, d are kept by the mass-loss guard and were really gone.
    const { s, states } = build('round_robin', { a: 1, b: 1, c: 1, d: 1 });
    for (const id of ['b', 'c', 'd']) {
      states.setHeld(id, true);
      states.eject(id, Infinity);
    }
    assert.equal(sequence(s, 6), 'a a a a a a', 'the ejected held instances are not spread onto');
    for (const id of ['b', 'c', 'd']) states.setHeld(id, false);
    assert.notEqual(sequence(s, 6), 'a a a a a a', 'the same ejections on instances the registry lists: panic spreads over all');
  });

  it('is not reset by state changes that leave its set alone', () => {
    const { s, states } = build('round_robin', { a: 1, b: 1, c: 1 });
    assert.equal(sequence(s, 2), 'a b');
    states.eject('someone-else', Infinity);
    states.setDraining('another', true);
    assert.equal(sequence(s, 4), 'c a b c');
  });

  it('serves a retry by a smooth step over what is left', () => {
    const { s } = build('round_robin', { a: 1, b: 1, c: 1 });
    assert.equal(sequence(s, 6, { exclude: new Set(['a']) }), 'b c b c b c');
    const { s: w } = build('round_robin', { a: 2, b: 1, c: 1 });
    assert.equal(sequence(w, 4, { exclude: new Set(['c']) }), 'a b a a');
  });
});

describe('least_conn', () => {
  const cases: { weights: Record<string, number>; inFlight: Record<string, number>; expected: string; why: string }[] = [
    { weights: { a: 1, b: 1, c: 1 }, inFlight: {}, expected: 'a b c a b c', why: 'all idle: round robin' },
    { weights: { a: 1, b: 1, c: 1 }, inFlight: { a: 1 }, expected: 'b c b c', why: 'ties among the least loaded rotate' },
    { weights: { a: 1, b: 1, c: 1 }, inFlight: { a: 2, b: 1, c: 3 }, expected: 'b b b', why: 'one clear minimum' },
    { weights: { a: 2, b: 1 }, inFlight: { a: 2, b: 1 }, expected: 'a b a a b a', why: 'equal load per weight: smooth by weight' },
    { weights: { a: 3, b: 1 }, inFlight: { a: 2, b: 1 }, expected: 'a a a', why: '2/3 < 1/1' },
    { weights: { a: 1, b: 4 }, inFlight: { a: 1, b: 3 }, expected: 'b b b', why: '3/4 < 1/1' },
    { weights: { a: 1, b: 0, c: 1 }, inFlight: { a: 5, c: 9 }, expected: 'a a a', why: 'weight 0 is never the least loaded' },
  ];
  for (const { weights, inFlight, expected, why } of cases) {
    it(`${JSON.stringify(weights)} with in-flight ${JSON.stringify(inFlight)}: ${why}`, () => {
      const { s, states } = build('least_conn', weights);
      for (const [id, n] of Object.entries(inFlight)) states.get(id).inFlight = n;
      assert.equal(sequence(s, expected.split(' ').length), expected);
    });
  }

  it('keeps in-flight counts level when requests pile up', () => {
    const { s, states } = build('least_conn', { a: 1, b: 1, c: 1, d: 1 });
    for (let k = 0; k < 1000; k++) {
      states.get(s.pick({})!.id).inFlight++;
      const loads = ['a', 'b', 'c', 'd'].map((id) => states.get(id).inFlight);
      assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, `pick ${k}: ${loads.join(',')}`);
    }
  });

  it('fills upstreams in proportion to weight when requests pile up', () => {
    const { s, states } = build('least_conn', { a: 3, b: 1 });
    for (let k = 0; k < 400; k++) states.get(s.pick({})!.id).inFlight++;
    assert.deepEqual([states.get('a').inFlight, states.get('b').inFlight], [300, 100]);
  });

  it('follows in-flight counts as requests finish', () => {
    const { s, states } = build('least_conn', { a: 1, b: 1 });
    states.get('a').inFlight = 3;
    assert.equal(s.pick({})!.id, 'b');
    states.get('a').inFlight = 0;
    states.get('b').inFlight = 1;
    assert.equal(s.pick({})!.id, 'a');
  });
});

describe('p2c', () => {
  // Four upstreams of weight 1: a draw of r lands on index floor(4r), so 0.1 → a, 0.3 → b, 0.6 → c, 0.9 → d.
  const cases: { inFlight: Record<string, number>; script: number[]; expected: string; why: string }[] = [
    { inFlight: {}, script: [0.1, 0.6], expected: 'a', why: 'a tie goes to the first draw' },
    { inFlight: { a: 3, c: 1 }, script: [0.1, 0.6], expected: 'c', why: 'the second draw is less loaded' },
    { inFlight: { a: 1, c: 3 }, script: [0.1, 0.6], expected: 'a', why: 'the first draw is less loaded' },
    { inFlight: { a: 0, b: 0, d: 9 }, script: [0.9, 0.3], expected: 'b', why: 'the most loaded loses' },
    {
      inFlight: { a: 1 },
      script: [0.1, ...Array<number>(REDRAWS).fill(0.1), 0.9],
      expected: 'd',
      why: 'the second draw never repeats the first: after REDRAWS misses it draws among the rest (0.9 of b,c,d → d)',
    },
  ];
  for (const { inFlight, script, expected, why } of cases) {
    it(`draws ${JSON.stringify(script)} with in-flight ${JSON.stringify(inFlight)}: ${why}`, () => {
      const { s, states } = build('p2c', { a: 1, b: 1, c: 1, d: 1 }, { random: scripted(script) });
      for (const [id, n] of Object.entries(inFlight)) states.get(id).inFlight = n;
      assert.equal(s.pick({})!.id, expected);
    });
  }

  it('weighs the loads: in-flight per unit of weight', () => {
    const { s, states } = build('p2c', { a: 4, b: 1 }, { random: seededRandom(3) });
    states.get('a').inFlight = 3;
    states.get('b').inFlight = 1;
    assert.equal(sequence(s, 20), Array(20).fill('a').join(' '), '3/4 < 1/1 whichever is drawn first');
  });

  it('never picks the single most loaded of several', () => {
    const { s, states } = build('p2c', { a: 1, b: 1, c: 1, d: 1, e: 1 }, { random: seededRandom(5) });
    states.get('c').inFlight = 10;
    const picked = new Set(Array.from({ length: 5000 }, () => s.pick({})!.id));
    assert.deepEqual([...picked].sort(), ['a', 'b', 'd', 'e']);
  });

  it('gives a fixed sequence for a seed', () => {
    const { s, states } = build('p2c', { a: 1, b: 2, c: 1, d: 1 }, { random: seededRandom(42) });
    const got: string[] = [];
    for (let k = 0; k < 12; k++) {
      const u = s.pick({})!;
      got.push(u.id);
      states.get(u.id).inFlight++;
    }
    assert.equal(got.join(' '), P2C_SEED_42);
  });
});

/**
 * Weights a:1 b:2 c:1 d:1 split [0, 5) into a [0,1) b [1,3) c [3,4) d [4,5). Five times
 * seededRandom(42)'s draws are 3.006 2.241 | 4.262 3.349 | 0.874 2.633 | 1.366 3.124 | 4.327 2.362 |
 * 1.250 4.410 | 3.729 1.535, so the pairs are c,b d,c a,b b,c d,b b,d c,b and, with each pick
 * adding one in flight, the winners c d a b b(1/2 < 1/1) b(tie: first) c(1/1 < 3/2): worked by hand.
 */
const P2C_SEED_42 = 'c d a b b b c a c d b a';

describe('random', () => {
  it('draws by cumulative weight', () => {
    // Weights 1, 2, 1: a owns [0, 0.25), b [0.25, 0.75), c [0.75, 1).
    const script = [0, 0.2499, 0.25, 0.5, 0.7499, 0.75, 0.9999];
    const { s } = build('random', { a: 1, b: 2, c: 1 }, { random: scripted(script) });
    assert.equal(sequence(s, script.length), 'a a b b b c c');
  });

  it('never lands on a weight-0 upstream at the edges of the range', () => {
    const script = [0, 0.5, 1 - 2 ** -53];
    const { s } = build('random', { z0: 0, a: 1, z1: 0, b: 1, z2: 0 }, { random: scripted(script) });
    assert.equal(sequence(s, 3), 'a b b');
  });
});

describe('hash', () => {
  const keys = Array.from({ length: 20_000 }, (_, n) => ip(n));
  const ten = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`svc-${i}`, 1]));
  const owners = (s: Strategy, ctx: (key: string) => PickContext = (hashKey) => ({ hashKey })): string[] => keys.map((k) => s.pick(ctx(k))!.id);
  const moved = (before: string[], after: string[]): number => before.filter((id, i) => after[i] !== id).length;

  it('maps a key to the same upstream in every instance, whatever the list order', () => {
    const a = owners(build('hash', ten).s);
    const b = owners(build('hash', ten).s);
    const reversed = createStrategy('hash', upstreams(ten).reverse(), { states: new UpstreamStates(), random: seededRandom(1) });
    assert.deepEqual(a, b);
    assert.deepEqual(owners(reversed), a);
  });

  it('spreads client IPs over every upstream near its weight', () => {
    const counts = new Map<string, number>();
    for (const id of owners(build('hash', ten).s)) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal(counts.size, 10);
    for (const [id, n] of counts) assert.ok(n > 1600 && n < 2400, `${id}: ${n} of 20000`);
  });

  it('moves only the removed upstream keys when one of N leaves', () => {
    const before = owners(build('hash', ten).s);
    const { 'svc-3': _gone, ...nine } = ten;
    const after = owners(build('hash', nine).s);
    for (let i = 0; i < keys.length; i++) if (before[i] !== 'svc-3') assert.equal(after[i], before[i], keys[i]);
    const share = moved(before, after) / keys.length;
    assert.ok(share > 0.07 && share < 0.13, `moved ${share}, expected about 1/10`);
  });

  it('moves only keys that go to the newcomer when one joins', () => {
    const before = owners(build('hash', ten).s);
    const after = owners(build('hash', { ...ten, 'svc-new': 1 }).s);
    for (let i = 0; i < keys.length; i++) if (after[i] !== before[i]) assert.equal(after[i], 'svc-new', keys[i]);
    const share = moved(before, after) / keys.length;
    assert.ok(share > 0.06 && share < 0.12, `moved ${share}, expected about 1/11`);
  });

  it('moves only keys that go to an upstream whose weight grows', () => {
    const before = owners(build('hash', ten).s);
    const after = owners(build('hash', { ...ten, 'svc-0': 2 }).s);
    for (let i = 0; i < keys.length; i++) if (after[i] !== before[i]) assert.equal(after[i], 'svc-0', keys[i]);
    const share = moved(before, after) / keys.length;
    assert.ok(share > 0.05 && share < 0.13, `moved ${share}, expected about 1/11`);
  });

  it('fails over to the next upstream on the ring and comes back on recovery', () => {
    const { s, states } = build('hash', ten, { panicThreshold: 0 });
    const before = owners(s);
    const victim = before[0]!;
    states.eject(victim, Infinity);
    const during = owners(s);
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === victim) assert.notEqual(during[i], victim);
      else assert.equal(during[i], before[i], 'keys of healthy upstreams stay put');
    }
    assert.deepEqual(owners(s), during, 'the fallback is stable per key');
    assert.ok(new Set(during.filter((_, i) => before[i] === victim)).size > 3, "the victim's keys spread over several upstreams");
    // A retry that excludes the owner lands where an ejection would have sent it.
    assert.deepEqual(owners(build('hash', ten).s, (hashKey) => ({ hashKey, exclude: new Set([victim]) })), during);
    states.restore(victim);
    assert.deepEqual(owners(s), before);
  });

  it('walks past several failed upstreams to the next eligible one', () => {
    const { s, states } = build('hash', ten, { panicThreshold: 0 });
    const first = s.pick({ hashKey: 'sticky' })!.id;
    states.eject(first, Infinity);
    const second = s.pick({ hashKey: 'sticky' })!.id;
    states.eject(second, Infinity);
    const third = s.pick({ hashKey: 'sticky' })!.id;
    assert.equal(new Set([first, second, third]).size, 3);
    states.restore(first);
    assert.equal(s.pick({ hashKey: 'sticky' })!.id, first);
  });

  it('falls back to round robin without a key', () => {
    const { s } = build('hash', { a: 5, b: 1, c: 1 });
    assert.equal(sequence(s, 7), 'a a b a c a a');
    assert.equal(sequence(s, 7, { hashKey: '' }), 'a a b a c a a', 'an empty key is no key');
  });

  it('bounds the ring for large weights and still spreads keys', () => {
    const heavy = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`svc-${i}`, 50]));
    assert.ok(100 * 50 * 160 > MAX_RING_POINTS);
    const counts = new Map<string, number>();
    for (const id of owners(build('hash', heavy).s)) counts.set(id, (counts.get(id) ?? 0) + 1);
    assert.equal(counts.size, 100);
    for (const [id, n] of counts) assert.ok(n > 100 && n < 300, `${id}: ${n} of 20000`);
  });
});

describe('UpstreamStates', () => {
  it('creates records on demand, shared by id', () => {
    const states = new UpstreamStates(manualClock());
    const r = states.get('a');
    // since: when the record was made, on the injected clock (slow start ramps from there).
    assert.deepEqual({ ...r }, { id: 'a', inFlight: 0, consecutiveFailures: 0, failWindowFails: 0, failWindowSince: 0, ejectedUntil: 0, ejections: 0, draining: false, held: false, since: 1_000_000 });
    assert.equal(states.get('a'), r);
    assert.equal(states.peek('b'), undefined);
  });

  it('bumps the version only when eligibility may have changed', () => {
    const states = new UpstreamStates(manualClock());
    const v0 = states.version;
    states.get('a').inFlight++;
    states.restore('a');
    states.setDraining('a', false);
    assert.equal(states.version, v0, 'in-flight counts and no-op changes leave it');
    states.eject('a', 5);
    states.setDraining('a', true);
    states.restore('a');
    states.invalidate();
    assert.equal(states.version, v0 + 4);
    assert.equal(states.get('a').ejections, 1);
  });

  it('forgets idle upstreams no snapshot names, but not busy ones', () => {
    const states = new UpstreamStates(manualClock());
    states.get('keep');
    states.get('idle');
    states.get('busy').inFlight = 2;
    assert.equal(states.retain(new Set(['keep'])), 1);
    assert.equal(states.peek('idle'), undefined);
    assert.ok(states.peek('busy'));
    assert.equal(states.size, 2);
  });
});

describe('speed', () => {
  // A sanity bound, not a benchmark: a regression to allocation or an O(n²) pick would blow it.
  // It counts this process's CPU time, not wall time, so a busy machine (CI running other suites
  // beside it) does not fail it: waiting for a core is not work done.
  const hundred = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`svc-${i}`, 1 + (i % 3)]));
  const limits: Record<string, number> = { round_robin: 1000, random: 1500, p2c: 1500, hash: 2000, least_conn: 3000 };
  for (const name of strategyNames) {
    it(`${name}: a million picks over 100 upstreams within ${limits[name]} ms of CPU`, () => {
      const { s } = build(name, hundred);
      const ctxs: PickContext[] = Array.from({ length: 1024 }, (_, n) => (name === 'hash' ? { hashKey: ip(n) } : {}));
      let sink = 0;
      const started = process.cpuUsage();
      for (let k = 0; k < 1_000_000; k++) sink += s.pick(ctxs[k & 1023]!)!.port;
      const used = process.cpuUsage(started);
      const ms = (used.user + used.system) / 1000;
      assert.ok(sink > 0);
      assert.ok(ms < limits[name]!, `${ms.toFixed(0)} ms of CPU`);
    });
  }
});

describe('slow start', () => {
  const share = (s: Strategy, id: string, n: number): number => {
    let hit = 0;
    for (let i = 0; i < n; i++) if (s.pick({})?.id === id) hit++;
    return hit / n;
  };

  for (const name of ['round_robin', 'least_conn', 'random', 'p2c'] as const) {
    it(`${name}: a new upstream's weight ramps from 10 % to all of it over the window`, () => {
      const clock = manualClock();
      const states = new UpstreamStates(clock);
      states.get('a'); // a was there long before b
      clock.advance(60_000);
      const { s } = build(name, { a: 1, b: 1 }, { states, slowStartMs: 10_000 });
      // b weighs 0.1 against a's 1 at first: about 9 % of picks.
      assert.ok(Math.abs(share(s, 'b', 2000) - 0.1 / 1.1) < 0.04, 'b starts at a tenth of its weight');
      assert.equal(s.rampFactor?.('b'), 0.1);
      clock.advance(5_000);
      assert.ok(Math.abs(share(s, 'b', 2000) - 0.5 / 1.5) < 0.05, 'half way: b has half its weight');
      clock.advance(5_000);
      assert.ok(Math.abs(share(s, 'b', 2000) - 0.5) < 0.05, 'after the window: an equal share');
      assert.equal(s.rampFactor?.('b'), 1);
      assert.equal(s.rampFactor?.('a'), 1);
    });
  }

  it('ramps again after an ejection ends, from the end of the ejection', () => {
    const clock = manualClock();
    const states = new UpstreamStates(clock);
    const { s } = build('round_robin', { a: 1, b: 1 }, { states, slowStartMs: 10_000 });
    clock.advance(60_000);
    assert.equal(s.rampFactor?.('b'), 1);
    states.eject('b', clock.now() + 5_000);
    assert.equal(share(s, 'b', 100), 0, 'ejected: no traffic');
    clock.advance(5_000);
    assert.equal(s.rampFactor?.('b'), 0.1, 'back from the ejection at a tenth');
    clock.advance(2_500);
    assert.equal(s.rampFactor?.('b'), 0.25);
  });

  it('is off without a window, and hash keeps its ring (keys do not move while an instance ramps)', () => {
    const { s } = build('round_robin', { a: 1, b: 1 });
    assert.equal(s.rampFactor?.('b'), 1);
    const clock = manualClock();
    const states = new UpstreamStates(clock);
    const h = build('hash', { a: 1, b: 1, c: 1 }, { states, slowStartMs: 10_000 });
    const before = Array.from({ length: 200 }, (_, i) => h.s.pick({ hashKey: ip(i) })?.id);
    clock.advance(5_000);
    const after = Array.from({ length: 200 }, (_, i) => h.s.pick({ hashKey: ip(i) })?.id);
    assert.deepEqual(after, before);
  });
});
