// ReadCache: one encoded answer (and one slot for its gzipped body) per (request, version), shared by every reader of it.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
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
