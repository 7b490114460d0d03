// Services and checks are stored without their default-valued fields (src/registry/server/stored.ts).
// Whatever a record holds, reading back what was stored gives the same record, field order included;
// values written in full (earlier versions, other agents) read the same; the view builds the same record
// from either form.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkWithDefaults, decodeCheck, decodeService, encodeCheck, encodeService, encodeStored, serviceWithDefaults } from '../../src/registry/server/stored.js';
import type { CheckRecord, ServiceRecord } from '../../src/registry/server/model.js';
import { RecordPool } from '../../src/registry/server/record-pool.js';

const str = fc.oneof(fc.constant(''), fc.string({ maxLength: 8 }));
const smap = fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 });

const service: fc.Arbitrary<ServiceRecord> = fc.record({
  Node: fc.string({ minLength: 1, maxLength: 6 }), ID: fc.string({ minLength: 1, maxLength: 6 }), Service: fc.string({ minLength: 1, maxLength: 6 }),
  Tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), Address: str,
  TaggedAddresses: fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.record({ Address: str, Port: fc.integer({ min: 0, max: 65535 }) }), { maxKeys: 2 }),
  Meta: smap, Port: fc.integer({ min: 0, max: 65535 }),
  Weights: fc.oneof(fc.constant({ Passing: 1, Warning: 1 }), fc.record({ Passing: fc.integer({ min: 0, max: 9 }), Warning: fc.integer({ min: 0, max: 9 }) })),
  EnableTagOverride: fc.boolean(), Kind: fc.oneof(fc.constant(''), fc.constant('connect-proxy')), Local: fc.boolean(),
});

const check: fc.Arbitrary<CheckRecord> = fc.record({
  Node: fc.string({ minLength: 1, maxLength: 6 }), CheckID: fc.string({ minLength: 1, maxLength: 6 }), Name: str,
  Status: fc.constantFrom('passing' as const, 'warning' as const, 'critical' as const), Notes: str, Output: str, ServiceID: str, ServiceName: str,
  ServiceTags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), Type: fc.constantFrom('' as const, 'ttl' as const, 'http' as const),
  Definition: fc.oneof(fc.constant({}), fc.record({ HTTP: fc.constant('http://x/'), Interval: fc.constant('10s') })),
});

/** As JSON.parse gives it (fast-check's records have no prototype). */
const plain = <T>(r: T): T => JSON.parse(JSON.stringify(r)) as T;

/** The key a record is written under: its own (as the registry writes it), or any other. */
const keyFor = (prefix: 's/' | 'c/', node: string, id: string): fc.Arbitrary<string> =>
  fc.oneof(fc.constant(`${prefix}${node}/${id}`), fc.string({ maxLength: 8 }).map((k) => `${prefix}${k}`));

describe('stored service and check records', () => {
  it('what is stored reads back as the same record under its key, field order included, and never longer than the full JSON', () => {
    const kinds = [
      {
        pairs: service.map(plain).chain((r) => keyFor('s/', r.Node, r.ID).map((key) => [r, key] as [object, string])),
        encode: (r: object, key: string) => encodeService(r as ServiceRecord, key), decode: decodeService,
      },
      {
        pairs: check.map(plain).chain((r) => keyFor('c/', r.Node, r.CheckID).map((key) => [r, key] as [object, string])),
        encode: (r: object, key: string) => encodeCheck(r as CheckRecord, key), decode: decodeCheck,
      },
    ];
    for (const { pairs, encode, decode } of kinds) {
      fc.assert(fc.property(pairs, ([r, key]) => {
        const back = decode(encode(r, key), key);
        assert.deepEqual(back, r);
        assert.deepEqual(Object.keys(back), Object.keys(r));
        assert.ok(encode(r, key).length <= JSON.stringify(r).length);
        assert.deepEqual(decode(JSON.stringify(r), key), r, 'a value written in full reads the same');
      }), { numRuns: 1000, seed: 20261205 });
    }
  });

  it('Node and ID are left out only when the key says them', () => {
    const s = serviceWithDefaults({ Node: 'n-1', ID: 'i-1', Service: 'web', Port: 80 });
    assert.equal(encodeService(s, 's/n-1/i-1'), '{"Service":"web","Port":80}');
    assert.equal(encodeService(s, 's/n-1/i-2'), '{"Node":"n-1","ID":"i-1","Service":"web","Port":80}');
    // The key splits at its first '/', so a node name holding one could not be read back from it.
    const odd = serviceWithDefaults({ Node: 'a/b', ID: 'c', Service: 'web', Port: 80 });
    assert.equal(decodeService(encodeService(odd, 's/a/b/c'), 's/a/b/c').Node, 'a/b');
    const c = checkWithDefaults({ Node: 'n-1', CheckID: 'c-1', Name: 'alive', Status: 'passing' });
    assert.equal(encodeCheck(c, 'c/n-1/c-1'), '{"Name":"alive","Status":"passing"}');
    assert.deepEqual(decodeCheck('{"Name":"alive","Status":"passing"}', 'c/n-1/c-1'), c);
  });

  it('the view\'s record pool builds the same record from the stored and the full form', () => {
    fc.assert(fc.property(service.map(plain), check.map(plain), (s, c) => {
      const pool = new RecordPool();
      // The view gives the pool the node and ID its key names (its map keys), as catalog-view.ts does.
      assert.deepEqual(pool.service(JSON.parse(encodeService(s, `s/${s.Node}/${s.ID}`)) as Partial<ServiceRecord>, s.Node, s.ID), pool.service(s, s.Node, s.ID));
      assert.deepEqual(pool.check(JSON.parse(encodeCheck(c, `c/${c.Node}/${c.CheckID}`)) as Partial<CheckRecord>, c.Node, c.CheckID, undefined), pool.check(c, c.Node, c.CheckID, undefined));
    }), { numRuns: 300, seed: 20261205 });
  });

  it('a typical registration is stored in well under half the bytes', () => {
    const s = serviceWithDefaults({ Node: 'n-1', ID: 'i-101', Service: 'svc-101', Tags: ['v1', 'zone-2'], Meta: { version: '1.0.3' }, Port: 8101 });
    const c = checkWithDefaults({ Node: 'n-1', CheckID: 'c-101', Name: 'alive', Status: 'passing', ServiceID: 'i-101', ServiceName: 'svc-101', ServiceTags: ['v1', 'zone-2'] });
    assert.equal(encodeStored('s/n-1/i-101', s), '{"Service":"svc-101","Tags":["v1","zone-2"],"Meta":{"version":"1.0.3"},"Port":8101}');
    assert.equal(encodeStored('c/n-1/c-101', c), '{"Name":"alive","Status":"passing","ServiceID":"i-101","ServiceName":"svc-101","ServiceTags":["v1","zone-2"]}');
    assert.ok(encodeStored('s/n-1/i-101', s).length + encodeStored('c/n-1/c-101', c).length < 0.5 * (JSON.stringify(s).length + JSON.stringify(c).length));
    assert.equal(encodeStored('n/n-1', { Node: 'n-1' }), '{"Node":"n-1"}', 'other records are stored as they are');
  });
});

describe('RecordPool', () => {
  // Shared lists and maps are found by a key joined with NUL; a NUL inside a tag or a meta value must not
  // let one registration's tags or meta stand in for another's (whoever came first would set both).
  it('never hands a list or map to a record whose content differs (property, NUL and separators included)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', '\u0000', '=', ''), maxLength: 4 });
    fc.assert(fc.property(fc.array(fc.oneof(
      fc.array(text, { maxLength: 3 }).map((tags) => ({ tags })),
      fc.dictionary(text, text, { maxKeys: 3 }).map((meta) => ({ meta })),
    ), { maxLength: 12 }), (inputs) => {
      const pool = new RecordPool();
      for (const x of inputs) {
        if ('tags' in x) assert.deepEqual(pool.list(x.tags), x.tags);
        else assert.deepEqual({ ...pool.map(x.meta) }, { ...x.meta });
      }
    }), { numRuns: 2000 });
  });

  it('keeps ["a\\0b"] and ["a", "b"] apart in either order, and still shares lists without NUL', () => {
    const pool = new RecordPool();
    assert.deepEqual(pool.list(['v1\u0000canary']), ['v1\u0000canary']);
    assert.deepEqual(pool.list(['v1', 'canary']), ['v1', 'canary']);
    assert.deepEqual(pool.map({ a: '1\u0000b\u00002' }), { a: '1\u0000b\u00002' });
    assert.deepEqual(pool.map({ a: '1', b: '2' }), { a: '1', b: '2' });
    assert.equal(pool.list(['x', 'y']), pool.list(['x', 'y']), 'one shared list');
  });
});
