// A commit whose answer the store lost (etcd: the member went away mid-request) is resolved by planning again
// when the plan says that is safe, and fails otherwise. The store is the real embedded one; only the loss of
// the answer is injected, after or before the commit, as a member dying at either moment would do.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import pino from 'pino';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import { StoreOutcomeUnknownError } from '../../src/registry/store/types.js';
import type { Store, TxnRequest, TxnResult } from '../../src/registry/store/types.js';
import { REPLAN, optimistic, unchanged } from '../../src/registry/server/optimistic.js';
import type { Plan } from '../../src/registry/server/optimistic.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The real store, whose next `lose` transactions lose their answer: committed first (`when: 'after'`) or never sent. */
async function lossyStore(when: 'after' | 'before', lose: number, o: { budgetMs?: number; lossMs?: number } = {}): Promise<{ store: Store; sent: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-optimistic-'));
  dirs.push(dir);
  const real = new EmbeddedStore({ dir, logger: pino({ level: 'silent' }) });
  await real.open();
  let left = lose;
  let sent = 0;
  const store: Store = {
    open: () => real.open(), get: (k) => real.get(k), range: (p) => real.range(p), subscribe: (l) => real.subscribe(l),
    revision: () => real.revision(), stats: () => real.stats(), close: () => real.close(),
    txn: async (req: TxnRequest): Promise<TxnResult> => {
      sent++;
      if (left > 0) {
        left--;
        if (when === 'after') await real.txn(req);
        // A lost answer takes time to be noticed (a member's attempt deadline).
        if (o.lossMs) await new Promise((res) => setTimeout(res, o.lossMs));
        throw new StoreOutcomeUnknownError('write failed on etcd: 14 UNAVAILABLE: Connection dropped (the write may or may not have been applied)', new Error('Connection dropped'), o.budgetMs ?? 5000);
      }
      return real.txn(req);
    },
  };
  after(() => real.close());
  return { store, sent: () => sent };
}

/** A plain write guarded by the entry it replaces, counting its writes in the value (as a derived record would carry state over). */
const counterPlan = (store: Store, replayable: boolean) => (): Plan<string> => {
  const prev = store.get('k');
  const n = prev ? Number(prev.value) : 0;
  return { txn: { compare: [unchanged('k', prev)], success: [{ type: 'put', key: 'k', value: String(n + 1) }] }, done: () => `wrote ${n + 1}`, replayable };
};

for (const when of ['after', 'before'] as const) {
  it(`a replayable plan whose commit answer was lost ${when} committing plans again and answers`, async () => {
    const { store, sent } = await lossyStore(when, 1);
    const answer = await optimistic(store, counterPlan(store, true), { what: 'test write' });
    // Lost after committing: the second plan saw the first write and wrote on top of it (2); lost before: the first write is the only one (1).
    assert.equal(answer, when === 'after' ? 'wrote 2' : 'wrote 1');
    assert.equal(store.get('k')?.value, when === 'after' ? '2' : '1');
    assert.equal(sent(), 2);
  });

  it(`a plan that is not replayable fails with the lost outcome (${when}) and plans nothing more`, async () => {
    const { store, sent } = await lossyStore(when, 1);
    await assert.rejects(optimistic(store, counterPlan(store, false), { what: 'test write' }), (err: unknown) => {
      assert.ok(err instanceof StoreOutcomeUnknownError);
      assert.match(err.message, /may or may not have been applied/);
      return true;
    });
    assert.equal(sent(), 1);
  });
}

it('a store that keeps losing answers is not asked forever: the request fails once the store\'s budget for a write is spent', async () => {
  const { store, sent } = await lossyStore('before', 1000, { budgetMs: 400, lossMs: 50 });
  const t0 = Date.now();
  await assert.rejects(optimistic(store, counterPlan(store, true), { what: 'test write' }), StoreOutcomeUnknownError);
  const took = Date.now() - t0;
  assert.ok(took >= 400 && took < 2000, `gave up after ${took} ms (budget 400 ms)`);
  assert.ok(sent() >= 3 && sent() <= 21, `${sent()} attempts`);
  assert.equal(store.get('k'), undefined);
});

it('a lost race still plans again on fresher state (REPLAN), unchanged', async () => {
  const { store } = await lossyStore('before', 0);
  await store.txn({ success: [{ type: 'put', key: 'k', value: '5' }] });
  let plans = 0;
  const answer = await optimistic(store, () => {
    plans++;
    // The first plan guards on a stale revision and loses; the second reads the store as it is.
    const prev = store.get('k');
    const guard = plans === 1 ? { key: 'k', target: 'modRevision' as const, equals: 1_000 } : unchanged('k', prev);
    return { txn: { compare: [guard], success: [{ type: 'put', key: 'k', value: 'x' }] }, done: () => 'ok', lost: () => REPLAN };
  }, { what: 'test write' });
  assert.equal(answer, 'ok');
  assert.equal(plans, 2);
});
