// ReadCache: one encoded answer (and one slot for its gzipped body) per (request, version), shared by every reader of it.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ReadCache } from '../../src/registry/server/http/read-cache.js';

describe('ReadCache', () => {
  it('serves every reader of one version the same bytes and the same shared slot, rendering once', () => {
    const cache = new ReadCache();
    let renders = 0;
    const run = () => {
      renders++;
      return { index: 7, json: { a: 'x'.repeat(2000) } };
    };
    const key = ReadCache.key('/v1/health/service/web', new URLSearchParams('index=5&wait=10s&passing'));
    assert.equal(key, ReadCache.key('/v1/health/service/web', new URLSearchParams('passing&index=6')), 'index and wait are not part of the key');
    const a = cache.get(key, 3, false, run);
    const b = cache.get(key, 3, false, run);
    assert.equal(renders, 1);
    assert.equal(a, b);
    assert.ok(a.raw && a.raw === b.raw, 'one buffer for every socket');
    assert.ok(a.shared && a.shared === b.shared, 'one slot for the gzipped body');
    assert.equal(a.json, undefined);
    const c = cache.get(key, 4, false, run);
    assert.equal(renders, 2, 'a new version renders again');
    assert.notEqual(c.shared, a.shared);
  });
});

describe('ReadCache.key', () => {
  const IGNORED = new Set(['index', 'wait', 'token', 'stale', 'consistent', 'leader', 'cached', 'max_stale']);
  /** What a read's answer depends on: the path and the multiset of its other parameters. */
  const meaning = (path: string, pairs: readonly (readonly [string, string])[]): string =>
    JSON.stringify([path, pairs.filter(([k]) => !IGNORED.has(k)).map(([k, v]) => `${k.length}:${k}${v.length}:${v}`).sort()]);

  it('keys two requests alike exactly when they ask the same (property: decoded names and values hold any separator)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', '&', '=', '?', '[', '"', ',', '\\', '\0', 'index', 'tag'), maxLength: 6 });
    type Req = { path: string; pairs: [string, string][] };
    const req = fc.record({ path: fc.constantFrom('/v1/health/service/web', '/v1/health/service/web?tag=v1', '/v1/kv/a', '/v1/kv/a?'), pairs: fc.array(fc.tuple(fc.oneof(text, fc.constantFrom('tag', 'index', 'wait', 'passing')), text), { maxLength: 4 }) });
    // The other request: an independent one, the same pairs in another order, or the same text cut at other
    // boundaries (two pairs merged into one value, or the first pair moved into the path), which a key
    // that joins decoded text cannot tell apart.
    const other = (a: Req): fc.Arbitrary<Req> => fc.oneof(
      req,
      fc.constant({ path: a.path, pairs: [...a.pairs].reverse() }),
      fc.nat().map((i): Req => {
        if (a.pairs.length < 2) return a;
        const j = i % (a.pairs.length - 1);
        const [k1, v1] = a.pairs[j] as [string, string];
        const [k2, v2] = a.pairs[j + 1] as [string, string];
        return { path: a.path, pairs: [...a.pairs.slice(0, j), [k1, `${v1}&${k2}=${v2}`], ...a.pairs.slice(j + 2)] };
      }),
      fc.constant(a.pairs.length === 0 ? a : { path: `${a.path}?${a.pairs[0]?.[0]}=${a.pairs[0]?.[1]}`, pairs: a.pairs.slice(1) }),
    );
    fc.assert(fc.property(req.chain((a) => other(a).map((b) => [a, b] as const)), ([a, b]) => {
      const ka = ReadCache.key(a.path, new URLSearchParams(a.pairs as [string, string][]));
      const kb = ReadCache.key(b.path, new URLSearchParams(b.pairs as [string, string][]));
      assert.equal(ka === kb, meaning(a.path, a.pairs) === meaning(b.path, b.pairs), `${ka} vs ${kb}`);
    }), { numRuns: 3000 });
  });

  it('does not key a tag holding "&x=1" like the tag and a parameter x (what poisoned answers for other watchers)', () => {
    const forged = ReadCache.key('/v1/health/service/web', new URLSearchParams('tag=v1%26x=1'));
    assert.notEqual(forged, ReadCache.key('/v1/health/service/web', new URLSearchParams('tag=v1&x=1')));
    assert.notEqual(ReadCache.key('/v1/health/service/web?passing', new URLSearchParams('')), ReadCache.key('/v1/health/service/web', new URLSearchParams('passing')));
  });
});
