// grpc-timeout as the balancer forwards it: at most 8 digits and a unit (the instance refuses longer values),
// never shorter than what was left, and rounded up by less than one unit.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatGrpcTimeout, parseGrpcTimeout } from '../../src/proxy/h2/grpc.js';

const UNIT_MS: Record<string, number> = { m: 1, S: 1000, M: 60_000, H: 3_600_000 };

it('any deadline left, up to 99,999,999 hours, is a valid header that keeps it', () => {
  fc.assert(fc.property(fc.double({ min: 0, max: 99_999_999 * 3_600_000, noNaN: true }), (ms) => {
    const v = formatGrpcTimeout(ms);
    assert.match(v, /^\d{1,8}[mSMH]$/, `${ms} ms → ${v}`);
    const back = parseGrpcTimeout(v) as number;
    assert.ok(back >= Math.min(ms, 99_999_999 * 3_600_000) && back >= 1, `${ms} ms → ${v} → ${back} ms`);
    assert.ok(back - Math.max(1, ms) < (UNIT_MS[v.slice(-1)] as number), `${ms} ms → ${v}: rounded up by a unit or more`);
  }), { numRuns: 2000 });
  // Where milliseconds stop fitting (27.7 hours): seconds.
  assert.equal(formatGrpcTimeout(99_999_999), '99999999m');
  assert.equal(formatGrpcTimeout(100_000_000), '100000S');
  assert.equal(formatGrpcTimeout(0), '1m');
});
