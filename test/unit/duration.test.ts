// Go time.ParseDuration / Duration.String compatibility.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { formatGoDuration, parseGoDuration } from '../../src/core/duration.js';

it('parses Go durations', () => {
  const cases: [string, number][] = [
    ['0', 0], ['10s', 10e9], ['1m30s', 90e9], ['1.5h', 5400e9], ['250ms', 250e6], ['2h45m', 9900e9], ['-1s', -1e9],
    ['1us', 1e3], ['1µs', 1e3], ['5ns', 5], ['.5s', 5e8], ['1.s', 1e9], ['1h0m0s', 3600e9],
  ];
  for (const [s, ns] of cases) assert.equal(parseGoDuration(s), ns, s);
});

it('rejects what Go rejects, naming the input', () => {
  for (const s of ['', '5', '1x', 'abc', 's', '1.5', '--1s', '1 s', '.s']) {
    assert.throws(() => parseGoDuration(s), (e: Error & { code?: string }) => e.code === 'SY_ERR_BAD_DURATION' && e.message.includes(JSON.stringify(s)), s);
  }
});

it('formats like Duration.String', () => {
  const cases: [number, string][] = [[0, '0s'], [10e9, '10s'], [90e9, '1m30s'], [3600e9, '1h0m0s'], [5e8, '500ms'], [1.5e9, '1.5s'], [1500, '1.5µs'], [7, '7ns'], [-2e9, '-2s']];
  for (const [ns, s] of cases) assert.equal(formatGoDuration(ns), s, String(ns));
});
