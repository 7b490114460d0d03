// The Store contract: interface semantics every implementation (embedded, etcd) must pass, tested through the interface only.
import { strict as assert } from 'node:assert';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SwitchyardError } from '../../src/core/errors.js';
import type { Store, StoreChange, StoreEntry, StoreOp, TxnRequest, TxnResult } from '../../src/registry/store/types.js';

export interface StoreFixture {
  readonly store: Store;
  readonly cleanup: () => Promise<void>;
}

/**
 * Reads are read-your-writes: once txn() has resolved, get/range/revision reflect it.
 * `makeStore` returns a fresh, not yet opened store over empty data that nothing else writes to
 * while the test runs (revisions are asserted to advance by exactly one per change); `cleanup`
 * closes it if the test did not and removes its data.
 */
export function runStoreContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;
    let base: number;

    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
      const opened = await store.open();
      assert.deepEqual(opened.entries, [], 'a fresh store holds no entries');
      base = opened.revision;
      assert.equal(store.revision(), base);
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    const put = (key: string, value: string): Promise<TxnResult> => store.txn({ success: [{ type: 'put', key, value }] });
    const del = (key: string): Promise<TxnResult> => store.txn({ success: [{ type: 'delete', key }] });
    const record = (): StoreChange[] => {
      const changes: StoreChange[] = [];
      store.subscribe((c) => changes.push(c));
      return changes;
    };
    const rejectsWith = async (p: Promise<unknown>, code: string): Promise<void> => {
      await assert.rejects(p, (err: unknown) => err instanceof SwitchyardError && err.code === code);
    };

    describe('open', () => {
      it('rejects a second open()', async () => {
        await assert.rejects(store.open());
      });
    });

    describe('put and get', () => {
      it('creates a key at a new revision with version 1', async () => {
        const res = await put('a', '1');
        assert.deepEqual(res, { succeeded: true, revision: base + 1 });
        assert.deepEqual(store.get('a'), { key: 'a', value: '1', createRevision: base + 1, modRevision: base + 1, version: 1 });
        assert.equal(store.revision(), base + 1);
      });

      it('overwriting keeps createRevision, moves modRevision and counts versions', async () => {
        await put('a', '1');
        await put('b', 'x');
        const res = await put('a', '2');
        assert.equal(res.revision, base + 3);
        assert.deepEqual(store.get('a'), { key: 'a', value: '2', createRevision: base + 1, modRevision: base + 3, version: 2 });
        await put('a', '2');
        assert.deepEqual(store.get('a'), { key: 'a', value: '2', createRevision: base + 1, modRevision: base + 4, version: 3 }, 'a put of the same value is still a write');
      });

      it('a key put again after a delete starts over', async () => {
        await put('a', '1');
        await put('a', '2');
        await del('a');
        const res = await put('a', '3');
        assert.deepEqual(store.get('a'), { key: 'a', value: '3', createRevision: res.revision, modRevision: res.revision, version: 1 });
      });

      it('returns undefined for an absent key', () => {
        assert.equal(store.get('nope'), undefined);
      });

      it('stores empty, unicode and large values and unusual keys verbatim', async () => {
        const big = 'x'.repeat(256 * 1024);
        const values: [string, string][] = [
          ['empty', ''],
          ['unicode/ключ/🔑', 'välue ✓ 🚀 "quoted" \\ back\nslash'],
          ['big', big],
          ['spaces and/slashes//', '{"json":true}'],
        ];
        await store.txn({ success: values.map(([key, value]): StoreOp => ({ type: 'put', key, value })) });
        for (const [key, value] of values) assert.equal(store.get(key)?.value, value, key);
      });
    });

    describe('range', () => {
      it('returns live entries under a prefix sorted by key', async () => {
        for (const key of ['svc/web/2', 'svc/api/1', 'svc0', 'svc/web/1', 'sv', 'svc/', 'other/1', 'svc/api/10']) await put(key, key.toUpperCase());
        assert.deepEqual(store.range('svc/').map((e) => e.key), ['svc/', 'svc/api/1', 'svc/api/10', 'svc/web/1', 'svc/web/2']);
        assert.deepEqual(store.range('svc/web/').map((e) => [e.key, e.value]), [['svc/web/1', 'SVC/WEB/1'], ['svc/web/2', 'SVC/WEB/2']]);
        assert.deepEqual(store.range('svc').map((e) => e.key), ['svc/', 'svc/api/1', 'svc/api/10', 'svc/web/1', 'svc/web/2', 'svc0']);
        assert.deepEqual(store.range('zzz'), []);
        assert.deepEqual(store.range('').map((e) => e.key), ['other/1', 'sv', 'svc/', 'svc/api/1', 'svc/api/10', 'svc/web/1', 'svc/web/2', 'svc0']);
      });

      it('returns full entries and drops deleted keys', async () => {
        await put('p/a', '1');
        await put('p/b', '2');
        await put('p/a', '3');
        await del('p/b');
        assert.deepEqual(store.range('p/'), [{ key: 'p/a', value: '3', createRevision: base + 1, modRevision: base + 3, version: 2 }]);
      });
    });

    describe('transactions', () => {
      it('applies every op of a transaction at one shared revision', async () => {
        await put('x', 'old');
        const res = await store.txn({ success: [{ type: 'put', key: 'a', value: '1' }, { type: 'put', key: 'b', value: '2' }, { type: 'delete', key: 'x' }] });
        assert.deepEqual(res, { succeeded: true, revision: base + 2 });
        assert.equal(store.get('a')?.modRevision, base + 2);
        assert.equal(store.get('b')?.modRevision, base + 2);
        assert.equal(store.get('x'), undefined);
        assert.equal(store.revision(), base + 2);
      });

      it('delete removes a key and consumes a revision', async () => {
        await put('a', '1');
        const res = await del('a');
        assert.deepEqual(res, { succeeded: true, revision: base + 2 });
        assert.equal(store.get('a'), undefined);
      });

      it('deleting absent keys changes nothing and consumes no revision', async () => {
        await put('a', '1');
        const res = await store.txn({ success: [{ type: 'delete', key: 'missing' }, { type: 'deletePrefix', prefix: 'nothing/' }] });
        assert.deepEqual(res, { succeeded: true, revision: base + 1 });
        assert.equal(store.revision(), base + 1);
        assert.equal((await put('b', '2')).revision, base + 2, 'the next change takes the next revision');
      });

      it('deletePrefix removes exactly the keys under the prefix in one revision', async () => {
        for (const key of ['s/a', 's/b', 's/c/d', 's', 'sa', 't']) await put(key, '1');
        const res = await store.txn({ success: [{ type: 'deletePrefix', prefix: 's/' }] });
        assert.equal(res.revision, base + 7);
        assert.deepEqual(store.range('').map((e) => e.key), ['s', 'sa', 't']);
      });

      it('compare on modRevision guards a write; 0 means the key is absent', async () => {
        const absent = await store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: 0 }], success: [{ type: 'put', key: 'a', value: '1' }] });
        assert.deepEqual(absent, { succeeded: true, revision: base + 1 });
        const again = await store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: 0 }], success: [{ type: 'put', key: 'a', value: '2' }] });
        assert.equal(again.succeeded, false);
        assert.equal(store.get('a')?.value, '1');
        const stale = await store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: base + 7 }], success: [{ type: 'put', key: 'a', value: '3' }] });
        assert.equal(stale.succeeded, false);
        const current = await store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: base + 1 }], success: [{ type: 'put', key: 'a', value: '4' }] });
        assert.deepEqual(current, { succeeded: true, revision: base + 2 });
        assert.equal(store.get('a')?.value, '4');
      });

      it('compare on exists', async () => {
        const onAbsent = await store.txn({ compare: [{ key: 'a', target: 'exists', equals: true }], success: [{ type: 'put', key: 'a', value: '1' }] });
        assert.equal(onAbsent.succeeded, false);
        assert.equal(store.get('a'), undefined);
        const create = await store.txn({ compare: [{ key: 'a', target: 'exists', equals: false }], success: [{ type: 'put', key: 'a', value: '1' }] });
        assert.equal(create.succeeded, true);
        const update = await store.txn({ compare: [{ key: 'a', target: 'exists', equals: true }], success: [{ type: 'put', key: 'a', value: '2' }] });
        assert.equal(update.succeeded, true);
        assert.equal(store.get('a')?.value, '2');
        await del('a');
        const gone = await store.txn({ compare: [{ key: 'a', target: 'exists', equals: true }], success: [{ type: 'put', key: 'a', value: '3' }] });
        assert.equal(gone.succeeded, false);
      });

      it('every compare must hold', async () => {
        await put('a', '1');
        const req = (bRev: number): TxnRequest => ({
          compare: [{ key: 'a', target: 'exists', equals: true }, { key: 'b', target: 'modRevision', equals: bRev }],
          success: [{ type: 'put', key: 'c', value: 'yes' }],
        });
        assert.equal((await store.txn(req(base + 1))).succeeded, false);
        assert.equal(store.get('c'), undefined);
        assert.equal((await store.txn(req(0))).succeeded, true);
        assert.equal(store.get('c')?.value, 'yes');
      });

      it('runs the failure ops when a compare fails, consuming a revision', async () => {
        await put('a', '1');
        const res = await store.txn({
          compare: [{ key: 'a', target: 'modRevision', equals: 0 }],
          success: [{ type: 'put', key: 'a', value: 'won' }],
          failure: [{ type: 'put', key: 'lost', value: 'yes' }, { type: 'delete', key: 'a' }],
        });
        assert.deepEqual(res, { succeeded: false, revision: base + 2 });
        assert.equal(store.get('a'), undefined);
        assert.equal(store.get('lost')?.modRevision, base + 2);
      });

      it('a failed compare without failure ops consumes no revision and reports the current one', async () => {
        await put('a', '1');
        await put('b', '1');
        const changes = record();
        const res = await store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: 99999 }], success: [{ type: 'put', key: 'a', value: 'x' }] });
        assert.deepEqual(res, { succeeded: false, revision: base + 2 });
        assert.equal(store.revision(), base + 2);
        assert.equal((await put('c', '1')).revision, base + 3);
        assert.deepEqual(changes.map((c) => c.revision), [base + 3], 'no change is delivered for the no-op');
      });

      it('concurrent create-if-absent transactions: exactly one wins', async () => {
        const attempts = await Promise.all(Array.from({ length: 10 }, (_, i) =>
          store.txn({ compare: [{ key: 'leader', target: 'modRevision', equals: 0 }], success: [{ type: 'put', key: 'leader', value: String(i) }] })));
        const winners = attempts.filter((r) => r.succeeded);
        assert.equal(winners.length, 1);
        assert.equal(store.get('leader')?.modRevision, winners[0]?.revision);
        assert.equal(store.revision(), base + 1);
      });

      it('concurrent writers get distinct consecutive revisions', async () => {
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => put(`k/${i % 7}`, String(i))));
        const revs = results.map((r) => r.revision).sort((a, b) => a - b);
        assert.deepEqual(revs, Array.from({ length: 40 }, (_, i) => base + 1 + i));
        assert.equal(store.revision(), base + 40);
        for (let k = 0; k < 7; k++) {
          const writes = results.filter((_, i) => i % 7 === k);
          assert.equal(store.get(`k/${k}`)?.version, writes.length);
        }
      });
    });

    describe('listeners', () => {
      it('deliver each change once, in revision order, with entries and prev entries', async () => {
        const changes = record();
        await put('a', '1');
        await put('a', '2');
        await store.txn({ success: [{ type: 'put', key: 'b', value: '1' }, { type: 'put', key: 'c', value: '1' }] });
        await del('a');
        await store.txn({ success: [{ type: 'deletePrefix', prefix: '' }] });
        await del('a');

        assert.deepEqual(changes.map((c) => c.revision), [base + 1, base + 2, base + 3, base + 4, base + 5]);
        const entry = (key: string, value: string, create: number, mod: number, version: number): StoreEntry => ({ key, value, createRevision: create, modRevision: mod, version });
        const a1 = entry('a', '1', base + 1, base + 1, 1);
        const a2 = entry('a', '2', base + 1, base + 2, 2);
        const b = entry('b', '1', base + 3, base + 3, 1);
        const c = entry('c', '1', base + 3, base + 3, 1);
        assert.deepEqual(changes[0]?.events, [{ type: 'put', key: 'a', entry: a1 }]);
        assert.deepEqual(changes[1]?.events, [{ type: 'put', key: 'a', entry: a2, prev: a1 }]);
        assert.deepEqual(changes[2]?.events, [{ type: 'put', key: 'b', entry: b }, { type: 'put', key: 'c', entry: c }]);
        assert.deepEqual(changes[3]?.events, [{ type: 'delete', key: 'a', prev: a2 }]);
        const wiped = [...(changes[4]?.events ?? [])].sort((x, y) => (x.key < y.key ? -1 : 1));
        assert.deepEqual(wiped, [{ type: 'delete', key: 'b', prev: b }, { type: 'delete', key: 'c', prev: c }]);
      });

      it('concurrent transactions are delivered exactly once each, in order', async () => {
        await store.txn({ success: Array.from({ length: 10 }, (_, i): StoreOp => ({ type: 'put', key: `d/${i}`, value: 'x' })) });
        const changes = record();
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
          i % 5 === 4 ? del(`d/${(i - 4) / 5}`) : put(`k/${i}`, String(i))));
        const revs = changes.map((c) => c.revision);
        assert.deepEqual(revs, Array.from({ length: 50 }, (_, i) => base + 2 + i));
        assert.deepEqual([...results.map((r) => r.revision)].sort((a, b) => a - b), revs);
        for (const change of changes) {
          assert.equal(change.events.length, 1);
          for (const ev of change.events) if (ev.entry) assert.equal(ev.entry.modRevision, change.revision);
        }
      });

      it('every subscriber gets every change; unsubscribe stops delivery', async () => {
        const first: number[] = [];
        const second: number[] = [];
        const stopFirst = store.subscribe((c) => first.push(c.revision));
        await put('a', '1');
        const stopSecond = store.subscribe((c) => second.push(c.revision));
        await put('a', '2');
        stopFirst();
        stopFirst();
        await put('a', '3');
        stopSecond();
        await put('a', '4');
        assert.deepEqual(first, [base + 1, base + 2]);
        assert.deepEqual(second, [base + 2, base + 3]);
      });

      it('a listener may unsubscribe itself while being called', async () => {
        const calls: number[] = [];
        const stop = store.subscribe((c) => {
          calls.push(c.revision);
          stop();
        });
        await put('a', '1');
        await put('a', '2');
        assert.deepEqual(calls, [base + 1]);
      });
    });

    describe('stats', () => {
      it('reports revision and key count', async () => {
        await put('a', '1');
        await put('b', '1');
        await del('a');
        const stats = store.stats();
        assert.equal(stats.revision, base + 3);
        assert.equal(stats.keys, 1);
      });
    });

    describe('close', () => {
      it('is idempotent and rejects later txns with SY_ERR_STORE_CLOSED', async () => {
        await put('a', '1');
        await Promise.all([store.close(), store.close()]);
        await store.close();
        await rejectsWith(put('b', '1'), 'SY_ERR_STORE_CLOSED');
        await rejectsWith(store.txn({ success: [] }), 'SY_ERR_STORE_CLOSED');
      });

      it('lets transactions already submitted finish', async () => {
        const pending = [put('a', '1'), put('b', '2')];
        const closing = store.close();
        const results = await Promise.all(pending);
        await closing;
        assert.deepEqual(results.map((r) => r.succeeded), [true, true]);
      });
    });
  });
}
