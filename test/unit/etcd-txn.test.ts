// The etcd Txn wire code (src/registry/store/etcd-txn.ts) against protobufjs and etcd's own rpc.proto (as etcd3 ships
// it): what encodeTxn writes decodes to the same transaction, and decodeTxn reads what protobufjs writes, on random
// transactions and answers (fast-check). The calls themselves run against real etcd in the cluster suites.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { decodeTxn, encodeTxn } from '../../src/registry/store/etcd-txn.js';
import type { TxnCompare, TxnOp } from '../../src/registry/store/etcd-txn.js';

const require = createRequire(import.meta.url);
// Field names as the .proto spells them (etcd3 loads it the same way).
const root = new protobuf.Root().loadSync(join(dirname(require.resolve('etcd3/package.json')), 'proto', 'rpc.proto'), { keepCase: true });
const TxnRequest = root.lookupType('etcdserverpb.TxnRequest');
const TxnResponse = root.lookupType('etcdserverpb.TxnResponse');
const asObject = { longs: String, bytes: Buffer, defaults: false, oneofs: false } as const;

/** Records with Object's prototype, so deepEqual compares them with what the decoders build. */
const record = <T extends Record<string, unknown>>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;
const bytes = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a));
const revision = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const compare: fc.Arbitrary<TxnCompare> = fc.oneof(
  record({ key: bytes, target: fc.constant(1), result: fc.constantFrom(0, 1), create_revision: revision }),
  record({ key: bytes, target: fc.constant(2), result: fc.constant(0), mod_revision: revision }),
);
const op: fc.Arbitrary<TxnOp> = fc.oneof(
  record({ request_put: record({ key: bytes, value: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) }) }),
  // Lease IDs are int64: some beyond 2^53, where a double would round them.
  record({ request_put: record({ key: bytes, value: bytes, lease: fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }).map(String) }) }),
  record({ request_delete_range: record({ key: bytes }) }),
  record({ request_delete_range: record({ key: bytes, range_end: bytes }) }),
);

/** What protobufjs reads back, in the shape encodeTxn was given (proto3 leaves zero scalars out: filled back in). */
function normalizeCompare(c: Record<string, unknown>): TxnCompare {
  const out: Record<string, unknown> = { key: c.key, target: c.target ?? 0, result: c.result ?? 0 };
  if (c.create_revision !== undefined) out.create_revision = Number(c.create_revision);
  if (c.mod_revision !== undefined) out.mod_revision = Number(c.mod_revision);
  return out as unknown as TxnCompare;
}

function normalizeOp(o: Record<string, Record<string, unknown>>): TxnOp {
  if (o.request_put) {
    const p = o.request_put;
    return { request_put: { key: p.key as Buffer, value: (p.value as Buffer | undefined) ?? Buffer.alloc(0), ...(p.lease !== undefined ? { lease: String(p.lease) } : {}) } };
  }
  const d = o.request_delete_range ?? {};
  return { request_delete_range: { key: d.key as Buffer, ...(d.range_end !== undefined ? { range_end: d.range_end as Buffer } : {}) } };
}

describe('etcd Txn wire format', () => {
  it('encodeTxn: protobufjs reads back every compare and op, int64 lease IDs exactly', () => {
    fc.assert(fc.property(fc.array(compare, { maxLength: 3 }), fc.array(op, { maxLength: 6 }), fc.array(op, { maxLength: 3 }), (cmp, success, failure) => {
      const got = TxnRequest.toObject(TxnRequest.decode(encodeTxn(cmp, success, failure)), asObject) as Record<string, Record<string, unknown>[] | undefined>;
      assert.deepEqual((got.compare ?? []).map(normalizeCompare), cmp);
      assert.deepEqual((got.success ?? []).map((o) => normalizeOp(o as Record<string, Record<string, unknown>>)), success);
      assert.deepEqual((got.failure ?? []).map((o) => normalizeOp(o as Record<string, Record<string, unknown>>)), failure);
    }), { numRuns: 300 });
  });

  it('a compare against revision 0 still carries its target value (a oneof has presence)', () => {
    const got = TxnRequest.decode(encodeTxn([{ key: Buffer.from('k'), target: 1, result: 0, create_revision: 0 }], [], [])) as unknown as { compare: { target_union?: string }[] };
    assert.equal(got.compare[0]?.target_union, 'create_revision');
  });

  it('decodeTxn: reads revision, succeeded and each delete count from what protobufjs writes, skipping what it does not need', () => {
    const answer = record({
      header: record({ cluster_id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), member_id: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), revision, raft_term: revision }),
      succeeded: fc.boolean(),
      responses: fc.array(fc.oneof(
        record({ response_put: record({ header: record({ revision }) }) }),
        record({ response_delete_range: record({ deleted: fc.integer({ min: 0, max: 1_000_000 }) }) }),
        record({ response_range: record({ count: fc.integer({ min: 0, max: 1000 }), kvs: fc.array(record({ key: bytes, value: bytes, mod_revision: revision }), { maxLength: 2 }) }) }),
      ), { maxLength: 6 }),
    });
    fc.assert(fc.property(answer, (a) => {
      const msg = TxnResponse.fromObject({
        ...a, header: { ...a.header, cluster_id: a.header.cluster_id.toString(), member_id: a.header.member_id.toString() },
      });
      const got = decodeTxn(Buffer.from(TxnResponse.encode(msg).finish()));
      assert.equal(got.header.revision, a.header.revision);
      assert.equal(got.succeeded, a.succeeded);
      assert.deepEqual(got.responses.map((r) => r.response_delete_range?.deleted), a.responses.map((r) => ('response_delete_range' in r ? r.response_delete_range.deleted : undefined)));
    }), { numRuns: 300 });
  });

  it('decodeTxn refuses a truncated answer instead of reading past it', () => {
    const full = Buffer.from(TxnResponse.encode(TxnResponse.fromObject({ header: { revision: 300 }, succeeded: true, responses: [{ response_delete_range: { deleted: 2 } }] })).finish());
    for (let n = 1; n < full.length; n++) {
      try {
        decodeTxn(full.subarray(0, n));
      } catch (err) {
        assert.match(String(err), /truncated|wire type|too long/);
      }
    }
    assert.throws(() => decodeTxn(full.subarray(0, full.length - 1)), /truncated/);
  });
});
