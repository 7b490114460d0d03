// The JSON depth scanner that guards request bodies: counts only real brackets, stops at the first level over the limit.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepthOverflow } from '../../src/core/json-depth.js';
import { MAX_JSON_DEPTH, parseJsonBody } from '../../src/registry/server/decode.js';
import { HttpError } from '../../src/core/errors.js';

describe('jsonDepthOverflow', () => {
  const rows: [text: string, max: number, expected: number][] = [
    ['{}', 1, -1],
    ['{"a":[1,{"b":[]}]}', 4, -1],
    ['{"a":[1,{"b":[]}]}', 3, 13],
    ['[[[]]]', 2, 2],
    ['"[[[[[["', 1, -1],
    ['{"k":"\\"[[[","v":[]}', 2, -1],
    ['{"k":"\\\\","v":[[]]}', 2, 15],
    ['[] [] []', 1, -1],
  ];
  for (const [text, max, expected] of rows) {
    it(`${JSON.stringify(text)} with max ${max} → ${expected}`, () => assert.equal(jsonDepthOverflow(text, max), expected));
  }

  it('handles a million levels without recursion', () => {
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    assert.equal(jsonDepthOverflow(deep, 100), 100);
  });
});

describe('parseJsonBody depth limit', () => {
  const nest = (n: number): string => `${'{"a":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;

  it(`accepts exactly ${MAX_JSON_DEPTH} levels`, () => {
    assert.equal(typeof parseJsonBody(Buffer.from(nest(MAX_JSON_DEPTH))), 'object');
  });

  it(`refuses ${MAX_JSON_DEPTH + 1} levels with 400 naming the limit and where it was crossed`, () => {
    assert.throws(() => parseJsonBody(Buffer.from(nest(MAX_JSON_DEPTH + 1))), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.equal(err.status, 400);
      assert.equal(err.message, `Request decode failed: JSON nested deeper than 100 levels of arrays and objects (level 101 opens at character ${5 * 100})`);
      return true;
    });
  });
});
