// consul kv export/import's JSON (src/kv/exchange.ts), by property: any tree survives export then
// import unchanged (keys in any script, any bytes, every uint64 flags), the export is plain JSON,
// and base 64 is read as Go's StdEncoding reads it.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeStdBase64, exportJson, parseImport } from '../../src/kv/exchange.js';
import type { ExchangeEntry } from '../../src/kv/exchange.js';

const entry = fc.record({
  key: fc.string({ unit: fc.oneof(fc.constantFrom('/', '.', '<', '>', '&', '"', '\\', '\u2028', '%', ' ', 'flags', '"flags": 1,'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 })), minLength: 1, maxLength: 12 }),
  flags: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String),
  value: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
}).map((e): ExchangeEntry => ({ ...e }));

describe('kv export/import JSON', () => {
  it('import(export(tree)) is the tree, whatever its keys, bytes and flags', () => {
    fc.assert(fc.property(fc.array(entry, { maxLength: 8 }), (tree: ExchangeEntry[]) => {
      const text = exportJson(tree);
      assert.deepEqual(parseImport(text), tree);
      // Plain JSON for anything else that reads it (flags above 2^53 round in a double, as in any JSON reader).
      const plain = JSON.parse(text) as { key: string; value: string }[];
      assert.deepEqual(plain.map((e) => [e.key, e.value]), tree.map((e) => [e.key, e.value.toString('base64')]));
      assert.doesNotMatch(text, /[<>&\u2028]/, 'Go escapes these');
    }), { numRuns: 300 });
  });

  it('base 64 as Go\'s StdEncoding: whole padded quanta of its alphabet, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 30 }), (bytes) => {
      const s = Buffer.from(bytes).toString('base64');
      assert.deepEqual(decodeStdBase64(s), Buffer.from(bytes));
      assert.deepEqual(decodeStdBase64(s.replace(/(.{4})/g, '$1\r\n')), Buffer.from(bytes), 'CR and LF are skipped');
    }), { numRuns: 300 });
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('A', 'b', '9', '+', '/', '=', '-', '_', ' '), maxLength: 12 }), (s) => {
      let decoded: Buffer | undefined;
      try {
        decoded = decodeStdBase64(s);
      } catch {
        return;
      }
      // Accepted: whole quanta of the standard alphabet, at most two = at the end, and the bytes they hold
      // (like Go's non-strict StdEncoding, the unused bits of the last quantum are not checked).
      assert.match(s, /^[A-Za-z0-9+/]*={0,2}$/, `accepted ${JSON.stringify(s)}`);
      assert.equal(s.length % 4, 0, `accepted ${JSON.stringify(s)}`);
      assert.equal(decoded.length, (s.length / 4) * 3 - (/=*$/.exec(s) as RegExpExecArray)[0].length);
    }), { numRuns: 1000 });
    for (const bad of ['aGk', 'aG=k', 'a===', '-_8=', 'aGk=aGk=']) assert.throws(() => decodeStdBase64(bad), /illegal base64 data at input byte \d+/, bad);
  });
});
