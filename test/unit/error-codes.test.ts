// Every error code is documented in docs/errors.md, and the document lists no code that does not exist.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ErrorCodes } from '../../src/core/errors.js';

it('docs/errors.md documents exactly the codes in src/core/errors.ts', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/`(SY_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
  const defined = new Set(Object.keys(ErrorCodes));
  assert.deepEqual([...defined].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !defined.has(c as string)), [], 'documented codes that do not exist');
});
