// The Strategy contract: what every balancer strategy guarantees, tested through pick() only.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Clock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/clock.js';
import { SwitchyardError } from '../../src/core/errors.js';
import { UpstreamStates } from '../../src/balancer/state.js';
import type { PickContext, Strategy, StrategyDeps, StrategyFactory, Upstream } from '../../src/balancer/types.js';

export interface BalancerContractOptions {
  /** The request-specific part of each pick's context (say, a hashKey); the suite adds `exclude`. */
  readonly context?: (n: number) => { hashKey?: string };
  /** Allowed relative deviation of each upstream's share from its weight share. */
  readonly tolerance?: number;
}

/** A clock the test moves by hand; strategies only ever call now(). */
export interface ManualClock extends Clock {
  advance(ms: number): void;
}

export function manualClock(start = 1_000_000): ManualClock {
  let t = start;
  return {
    now: () => t,
    setTimeout: () => ({ cancel: () => undefined }),
    advance(ms) {
      t += ms;
    },
  };
}

export function upstreams(weights: Record<string, number>): Upstream[] {
  return Object.entries(weights).map(([id, weight], i) => Object.freeze({ id, address: `10.0.0.${i + 1}`, port: 8080, weight }));
}

export function runBalancerContract(name: string, factory: StrategyFactory, options: BalancerContractOptions = {}): void {
  const tolerance = options.tolerance ?? 0.05;
  const base = options.context ?? (() => ({}));

  describe(`Balancer contract: ${name}`, () => {
    let seed = 1;
    const build = (list: readonly Upstream[], extra: Partial<Omit<StrategyDeps, 'random'>> = {}): { s: Strategy; states: UpstreamStates; clock: ManualClock } => {
      const clock = manualClock();
      const states = extra.states ?? new UpstreamStates(clock);
      return { s: factory(list, { random: seededRandom(seed++), ...extra, states }), states, clock };
    };
    const ctxFor = (n: number, exclude?: ReadonlySet<string>): PickContext => {
      const b = base(n);
      return exclude === undefined ? b : { ...b, exclude };
    };
    /** Picks `n` times and counts the ids picked (a missing pick counts under ''). */
    const tally = (s: Strategy, n: number, exclude?: ReadonlySet<string>): Map<string, number> => {
      const counts = new Map<string, number>();
      for (let k = 0; k < n; k++) {
        const id = s.pick(ctxFor(k, exclude))?.id ?? '';
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      return counts;
    };
    const pickedIds = (s: Strategy, n: number, exclude?: ReadonlySet<string>): string[] => [...tally(s, n, exclude).keys()].sort();

    it('is named', () => {
      assert.equal(typeof build(upstreams({ a: 1 })).s.name, 'string');
    });

    it('returns undefined for an empty list', () => {
      const { s } = build([]);
      assert.equal(s.pick(ctxFor(0)), undefined);
      assert.equal(s.pick(ctxFor(1, new Set(['a']))), undefined);
    });

    it('returns the single upstream, as the very object it was given', () => {
      const list = upstreams({ only: 3 });
      const { s } = build(list);
      for (let k = 0; k < 20; k++) assert.equal(s.pick(ctxFor(k)), list[0]);
    });

    it('returns undefined when a retry has excluded every upstream', () => {
      const { s, states } = build(upstreams({ a: 1, b: 2, c: 1 }));
      states.eject('b', Infinity);
      states.setDraining('c', true);
      for (let k = 0; k < 20; k++) assert.equal(s.pick(ctxFor(k, new Set(['a', 'b', 'c']))), undefined);
    });

    it('never picks an upstream of weight 0, not in panic mode, not as the last one left', () => {
      const { s, states } = build(upstreams({ a: 0, b: 1, c: 0, d: 2 }));
      assert.deepEqual(pickedIds(s, 300), ['b', 'd']);
      states.eject('b', Infinity);
      states.eject('d', Infinity);
      assert.deepEqual(pickedIds(s, 300), ['b', 'd'], 'panic mode spreads over weight > 0 only');
      assert.deepEqual(pickedIds(s, 50, new Set(['b', 'd'])), [''], 'weight 0 is no last resort');
      const { s: none } = build(upstreams({ a: 0, c: 0 }));
      assert.equal(none.pick(ctxFor(0)), undefined);
    });

    it('never returns an excluded upstream while another is left', () => {
      const list = upstreams({ a: 1, b: 2, c: 3, d: 4, e: 5 });
      const { s, states } = build(list, { panicThreshold: 0 });
      const excludes = [['a'], ['e'], ['a', 'b', 'c'], ['b', 'c', 'd', 'e'], ['x', 'e', 'y']];
      for (const ids of excludes) {
        const exclude = new Set(ids);
        const expected = list.map((u) => u.id).filter((id) => !exclude.has(id));
        assert.deepEqual(pickedIds(s, 400, exclude), expected, `exclude ${ids.join(',')}`);
      }
      // With the only healthy one excluded, a retry falls back to the ejected ones, never the excluded.
      for (const id of ['b', 'c', 'd', 'e']) states.eject(id, Infinity);
      assert.deepEqual(pickedIds(s, 400, new Set(['a', 'b'])), ['c', 'd', 'e']);
    });

    it('never returns an ejected, draining or filtered-out upstream while a healthy one is left', () => {
      const list = upstreams({ h1: 1, h2: 2, h3: 1, h4: 3, e1: 1, e2: 2, e3: 1, d1: 2, d2: 1, f1: 1 });
      const { s, states } = build(list, { panicThreshold: 0, isEligible: (u) => u.id !== 'f1' });
      for (const id of ['e1', 'e2', 'e3']) states.eject(id, states.now() + 60_000);
      for (const id of ['d1', 'd2']) states.setDraining(id, true);
      assert.deepEqual(pickedIds(s, 1000), ['h1', 'h2', 'h3', 'h4']);
      assert.deepEqual(pickedIds(s, 500, new Set(['h1', 'h4'])), ['h2', 'h3']);
    });

    it('takes an ejected upstream back when its ejection expires or is lifted', () => {
      const { s, states, clock } = build(upstreams({ a: 1, b: 1, c: 1 }), { panicThreshold: 0 });
      states.eject('a', clock.now() + 10_000);
      states.eject('b', clock.now() + 20_000);
      assert.deepEqual(pickedIds(s, 100), ['c']);
      clock.advance(9_999);
      assert.deepEqual(pickedIds(s, 100), ['c'], 'still ejected 1 ms before the deadline');
      clock.advance(1);
      assert.deepEqual(pickedIds(s, 100), ['a', 'c'], 'back exactly at the deadline');
      states.restore('b');
      assert.deepEqual(pickedIds(s, 100), ['a', 'b', 'c']);
    });

    it('keeps state across a snapshot swap: a new instance on the same states sees existing ejections', () => {
      const { states } = build([]);
      states.eject('a', Infinity);
      const { s } = build(upstreams({ a: 1, b: 1, c: 1 }), { states, panicThreshold: 0 });
      assert.deepEqual(pickedIds(s, 100), ['b', 'c']);
    });

    it('panics when everything is ejected: spreads over all of weight > 0 that are not excluded', () => {
      const { s, states } = build(upstreams({ a: 1, b: 2, c: 0, d: 1 }), { panicThreshold: 0 });
      for (const id of ['a', 'b', 'c', 'd']) states.eject(id, Infinity);
      assert.deepEqual(pickedIds(s, 400), ['a', 'b', 'd']);
      assert.deepEqual(pickedIds(s, 400, new Set(['b'])), ['a', 'd']);
    });

    it('panics below the threshold share of healthy weight, and only then', () => {
      const list = upstreams({ a: 1, b: 1, c: 1, d: 1 });
      const { s, states } = build(list, { panicThreshold: 0.5 });
      states.eject('a', Infinity);
      states.eject('b', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['c', 'd'], 'half healthy is not below a threshold of one half');
      states.eject('c', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['a', 'b', 'c', 'd'], 'a quarter healthy spreads over everyone');
      const { s: never, states: st2 } = build(list, { panicThreshold: 0 });
      for (const id of ['a', 'b', 'c']) st2.eject(id, Infinity);
      assert.deepEqual(pickedIds(never, 400), ['d'], 'threshold 0 panics only when nothing is healthy');
    });

    it('uses the default threshold of one half', () => {
      const { s, states } = build(upstreams({ a: 3, b: 1 }));
      states.eject('a', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['a', 'b'], 'a quarter of the weight healthy');
      states.restore('a');
      states.eject('b', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['a'], 'three quarters healthy');
    });

    it('leaves draining upstreams out of panic and uses them only as the last resort', () => {
      const { s, states } = build(upstreams({ a: 1, b: 1, c: 1, d: 1 }), { panicThreshold: 0.5 });
      states.setDraining('a', true);
      states.setDraining('b', true);
      states.eject('c', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['d'], 'd is half of the weight that is not draining: no panic');
      states.eject('d', Infinity);
      assert.deepEqual(pickedIds(s, 400), ['c', 'd'], 'panic takes the ejected, not the draining');
      assert.deepEqual(pickedIds(s, 400, new Set(['c', 'd'])), ['a', 'b'], 'draining ones when nothing else is left');
      states.setDraining('a', false);
      assert.deepEqual(pickedIds(s, 400), ['a', 'c', 'd'], 'back from draining, a is one third of the live weight: still panic');
    });

    it('consults isEligible, and reads it again after invalidate()', () => {
      const allowed = new Set(['a', 'b']);
      const { s, states } = build(upstreams({ a: 1, b: 1, c: 1, d: 1 }), { panicThreshold: 0, isEligible: (u) => allowed.has(u.id) });
      assert.deepEqual(pickedIds(s, 200), ['a', 'b']);
      allowed.delete('a');
      allowed.add('d');
      states.invalidate();
      assert.deepEqual(pickedIds(s, 200), ['b', 'd']);
      allowed.clear();
      states.invalidate();
      assert.deepEqual(pickedIds(s, 200), ['a', 'b', 'c', 'd'], 'nothing eligible: panic');
    });

    it('splits picks in proportion to weight', () => {
      const weights = { a: 1, b: 2, c: 3, d: 4, z: 0 };
      const { s } = build(upstreams(weights));
      const n = 20_000;
      const counts = tally(s, n);
      for (const [id, w] of Object.entries(weights)) {
        const want = (n * w) / 10;
        const got = counts.get(id) ?? 0;
        assert.ok(Math.abs(got - want) <= tolerance * want, `${id}: ${got} picks, want ${want} ± ${tolerance * 100}%`);
      }
    });

    it('splits in proportion to weight among what a retry leaves', () => {
      const { s } = build(upstreams({ a: 1, b: 2, c: 3, d: 4 }));
      const n = 20_000;
      const counts = tally(s, n, new Set(['d']));
      for (const [id, w] of Object.entries({ a: 1, b: 2, c: 3 })) {
        const want = (n * w) / 6;
        const got = counts.get(id) ?? 0;
        assert.ok(Math.abs(got - want) <= tolerance * want * 2, `${id}: ${got} picks, want ${want}`);
      }
    });

    it('is deterministic for a given Random and state', () => {
      const list = upstreams({ a: 1, b: 2, c: 3, d: 4 });
      const run = (): string[] => {
        const states = new UpstreamStates(manualClock());
        const s = factory(list, { states, random: seededRandom(7) });
        return Array.from({ length: 500 }, (_, k) => s.pick(ctxFor(k, k % 5 === 0 ? new Set(['c']) : undefined))?.id ?? '');
      };
      assert.deepEqual(run(), run());
    });

    it('copies the list it was given', () => {
      const list = upstreams({ a: 1, b: 1 });
      const { s } = build(list, { panicThreshold: 0 });
      list.length = 1;
      assert.deepEqual(pickedIds(s, 100), ['a', 'b']);
    });

    it('rejects weights that are negative, NaN or infinite, duplicate ids and a threshold outside 0..1', () => {
      const invalid = (err: unknown): boolean => err instanceof SwitchyardError && err.code === 'SY_ERR_INVALID_ARGUMENT';
      for (const weight of [-1, Number.NaN, Infinity]) assert.throws(() => build(upstreams({ a: 1, b: weight })), invalid, String(weight));
      const dup = [...upstreams({ a: 1 }), ...upstreams({ a: 2 })];
      assert.throws(() => build(dup), invalid);
      for (const panicThreshold of [-0.1, 1.5, Number.NaN]) assert.throws(() => build(upstreams({ a: 1 }), { panicThreshold }), invalid);
    });
  });
}
