// Go-style flags (one dash, explicit booleans) become commander's before parsing.
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { normalizeGoFlags } from '../../src/cli/go-flags.js';
import { parseGoFlags } from '../../src/core/go-flagset.js';

it('rewrites known single-dash long flags and explicit booleans, and nothing after --', () => {
  const out = normalizeGoFlags(
    ['node', 'main', 'lock', '-timeout=5s', '-shell=false', '-verbose=true', '--pass-stdin=0', '-n', '2', '-x', 'app', '--', '-shell=false', '-timeout'],
    new Set(['timeout', 'shell', 'verbose', 'pass-stdin']),
    new Set(['shell', 'verbose', 'pass-stdin']),
  );
  assert.deepEqual(out, ['node', 'main', 'lock', '--timeout=5s', '--no-shell', '--verbose', '--no-pass-stdin', '-n', '2', '-x', 'app', '--', '-shell=false', '-timeout']);
});

it('parseGoFlags reads flags as Go\'s flag package does: up to the first argument, uint64 in any base Go takes', () => {
  const specs = { b: { kind: 'bool', usage: '' }, s: { kind: 'string', usage: '' }, n: { kind: 'uint64', usage: '' } } as const;
  const p = parseGoFlags(['-b', '--s', 'x', '-n=0x1F', 'key', '-b', '-5'], specs);
  assert.deepEqual([{ ...p.values }, p.rest, p.help], [{ b: true, s: 'x', n: 31n }, ['key', '-b', '-5'], false]);
  for (const [text, want] of [['017', 15n], ['0o17', 15n], ['0b101', 5n], ['1_000', 1000n], ['0', 0n], ['18446744073709551615', 18446744073709551615n]] as const) {
    assert.equal(parseGoFlags([`-n=${text}`], specs).values.n, want, text);
  }
  assert.deepEqual(parseGoFlags(['-b=false', '--', '-s'], specs).rest, ['-s']);
  assert.deepEqual(parseGoFlags(['-', '-b'], specs).rest, ['-', '-b'], 'a lone dash is an argument');
  assert.equal(parseGoFlags(['-help'], specs).help, true);
  for (const [args, msg] of [
    [['-n=08'], 'invalid value "08" for flag -n: parse error'], [['-n=1__0'], 'invalid value "1__0" for flag -n: parse error'],
    [['-n=18446744073709551616'], 'invalid value "18446744073709551616" for flag -n: value out of range'],
    [['-b=yes'], 'invalid boolean value "yes" for -b: parse error'], [['-s'], 'flag needs an argument: -s'],
    [['-=x'], 'bad flag syntax: -=x'], [['-x'], 'flag provided but not defined: -x'], [['-constructor'], 'flag provided but not defined: -constructor'],
  ] as const) assert.throws(() => parseGoFlags(args, specs), (e: Error) => e.message === msg, args.join(' '));
});
