// Go-style flags (one dash, explicit booleans) become commander's before parsing.
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { normalizeGoFlags } from '../../src/cli/go-flags.js';

it('rewrites known single-dash long flags and explicit booleans, and nothing after --', () => {
  const out = normalizeGoFlags(
    ['node', 'main', 'lock', '-timeout=5s', '-shell=false', '-verbose=true', '--pass-stdin=0', '-n', '2', '-x', 'app', '--', '-shell=false', '-timeout'],
    new Set(['timeout', 'shell', 'verbose', 'pass-stdin']),
    new Set(['shell', 'verbose', 'pass-stdin']),
  );
  assert.deepEqual(out, ['node', 'main', 'lock', '--timeout=5s', '--no-shell', '--verbose', '--no-pass-stdin', '-n', '2', '-x', 'app', '--', '-shell=false', '-timeout']);
});
