// Session creation bodies decode with Consul's defaults and its check-field quirks (fixupEmptySessionChecks, lockDelayMinThreshold).
import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { HttpError } from '../../src/core/errors.js';
import { decodeSessionCreate, renderSession } from '../../src/registry/server/sessions/model.js';

const limits = { minNs: 10e9, maxNs: 86400e9 };
const decode = (body: unknown) => decodeSessionCreate(body, 'agent-node', limits);

it("resolves Checks and NodeChecks as Consul 1.7+ does", () => {
  const cases: [unknown, string[] | null, string[] | undefined][] = [
    [undefined, ['serfHealth'], undefined],
    [{}, ['serfHealth'], undefined],
    [{ Checks: [] }, [], undefined],
    [{ Checks: null }, [], undefined],
    [{ Checks: ['serfHealth'] }, ['serfHealth'], undefined],
    [{ Checks: ['a'] }, ['serfHealth'], ['a']],
    [{ Checks: ['a'], NodeChecks: [] }, [], undefined],
    [{ NodeChecks: ['b'] }, ['b'], undefined],
    [{ NodeChecks: [] }, [], undefined],
    [{ checks: ['serfHealth', 'a'], nodechecks: ['c'] }, ['c'], ['serfHealth', 'a']],
  ];
  for (const [body, nodeChecks, checks] of cases) {
    const s = decode(body);
    assert.deepEqual([s.NodeChecks, s.Checks], [nodeChecks, checks], JSON.stringify(body));
  }
});

it('takes LockDelay as a Go duration or nanoseconds, small values as seconds, 15 s by default', () => {
  for (const [v, ns] of [[undefined, 15e9], ['15s', 15e9], ['1ms', 1e6], [15, 15e9], [0, 0], ['0s', 0], [2_000_000, 2e6], ['999ns', 999e9]] as const) {
    assert.equal(decode(v === undefined ? {} : { LockDelay: v }).LockDelay, ns, String(v));
  }
});

it("validates with Consul's messages", () => {
  const bad: [unknown, RegExp][] = [
    [{ Behavior: 'x' }, /^Invalid Behavior setting 'x'$/],
    [{ TTL: '9s' }, /^Invalid Session TTL '9000000000', must be between \[10s=24h0m0s\]$/],
    [{ TTL: '1x' }, /^Session TTL '1x' invalid: /],
    [{ Node: '' }, /^Must provide Node$/],
    [{ LockDelay: -1 }, /LockDelay: -1 must not be negative/],
    [{ ServiceChecks: [{}] }, /^Request decode failed: ServiceChecks\.0\.ID: /],
    [[1], /^Request decode failed: expected a JSON object/],
  ];
  for (const [body, text] of bad) {
    assert.throws(() => decode(body), (e: unknown) => e instanceof HttpError && e.status === 400 && text.test(e.message), JSON.stringify(body));
  }
  assert.equal(decode({ TTL: '0s' }).TTL, '0s', 'a zero TTL means none, as in Consul');
});

it('renders the fields in Consul order, Checks only when set', () => {
  const s = { ID: 'i', Name: 'n', Node: 'x', LockDelay: 1, Behavior: 'release' as const, TTL: '', NodeChecks: null, ServiceChecks: null };
  assert.deepEqual(Object.keys(renderSession(s, 7)), ['ID', 'Name', 'Node', 'LockDelay', 'Behavior', 'TTL', 'NodeChecks', 'ServiceChecks', 'CreateIndex', 'ModifyIndex']);
  assert.deepEqual(Object.keys(renderSession({ ...s, Checks: ['a'] }, 7)).slice(-3), ['Checks', 'CreateIndex', 'ModifyIndex']);
});
