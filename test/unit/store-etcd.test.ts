// EtcdStore: the same Store contract as the embedded store, on a real etcd; then what only a shared, remote store has.
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import { SwitchyardError } from '../../src/core/errors.js';
import { EtcdStore, parseEtcdUrl } from '../../src/registry/store/etcd.js';
import type { EtcdStoreLogger } from '../../src/registry/store/etcd.js';
import type { StoreChange } from '../../src/registry/store/types.js';
import { runStoreContract } from '../contract/store.contract.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/agent.js';

const silent: EtcdStoreLogger = { warn: () => undefined, info: () => undefined };
const available = etcdAvailable();
let cluster: Promise<EtcdCluster> | undefined;
const etcd = (): Promise<EtcdCluster> => (cluster ??= startEtcd(1));
let seq = 0;
const freshPrefix = (): string => `t${process.pid}-${Date.now()}-${seq++}/`;

after(async () => {
  if (cluster) await (await cluster).stop();
});

if (available) {
  runStoreContract('etcd', async () => {
    const c = await etcd();
    const store = new EtcdStore({ endpoints: c.endpoints, prefix: freshPrefix(), logger: silent });
    return { store, cleanup: () => store.close() };
  });
}

describe('EtcdStore: shared and remote', { skip: !available && 'etcd not installed' }, () => {
  it('parses etcd:// URLs and rejects malformed ones with the URL in the message', () => {
    assert.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379,h2:2379'), { endpoints: ['127.0.0.1:2379', 'h2:2379'], prefix: 'switchyard/' });
    assert.deepEqual(parseEtcdUrl('etcd://[::1]:2379/reg/a'), { endpoints: ['[::1]:2379'], prefix: 'reg/a/' });
    for (const bad of ['http://h:1', 'etcd://', 'etcd://h', 'etcd://h:1,,h:2', 'etcd://h:port']) {
      assert.throws(() => parseEtcdUrl(bad), (e: unknown) => e instanceof SwitchyardError && e.code === 'SY_ERR_CONFIG' && e.message.includes(JSON.stringify(bad)), bad);
    }
  });

  it('two stores on one prefix see the same entries at the same revisions, in the same order', async () => {
    const c = await etcd();
    const prefix = freshPrefix();
    const a = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
    const b = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
    try {
      await a.open();
      await b.open();
      const seenA: StoreChange[] = [];
      const seenB: StoreChange[] = [];
      a.subscribe((ch) => seenA.push(ch));
      b.subscribe((ch) => seenB.push(ch));
      const writes = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).txn({ success: [{ type: 'put', key: `k/${i % 5}`, value: String(i) }] })));
      const last = Math.max(...writes.map((w) => w.revision));
      await waitFor(() => a.revision() >= last && b.revision() >= last, 'both mirrors caught up');
      assert.deepEqual(seenA.map((x) => x.revision), seenB.map((x) => x.revision));
      assert.deepEqual(a.range(''), b.range(''));
      assert.equal(seenA.length, 30);
      // A store opened later starts from the same state.
      const late = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
      const opened = await late.open();
      assert.deepEqual([...opened.entries].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0)), a.range(''));
      await late.close();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('ignores keys outside its prefix', async () => {
    const c = await etcd();
    const prefix = freshPrefix();
    const a = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
    const other = new EtcdStore({ endpoints: c.endpoints, prefix: `${prefix.slice(0, -1)}x/`, logger: silent });
    try {
      await a.open();
      await other.open();
      await other.txn({ success: [{ type: 'put', key: 'a', value: '1' }] });
      await a.txn({ success: [{ type: 'put', key: 'b', value: '2' }] });
      assert.deepEqual(a.range('').map((e) => e.key), ['b']);
      assert.deepEqual(other.range('').map((e) => e.key), ['a']);
    } finally {
      await a.close();
      await other.close();
    }
  });

  it('a leased key disappears, for every mirror, when its lease is revoked', async () => {
    const c = await etcd();
    const prefix = freshPrefix();
    const a = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
    const b = new EtcdStore({ endpoints: c.endpoints, prefix, logger: silent });
    try {
      await a.open();
      await b.open();
      const lease = await a.lease(5);
      await a.txn({ success: [{ type: 'put', key: 'alive/n1', value: 'x', lease: lease.id }] });
      await waitFor(() => b.get('alive/n1') !== undefined, 'b sees the leased key');
      await lease.revoke();
      await waitFor(() => a.get('alive/n1') === undefined && b.get('alive/n1') === undefined, 'the key is gone everywhere');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the embedded contract for leases: a malformed lease id is refused before anything is sent', async () => {
    const c = await etcd();
    const a = new EtcdStore({ endpoints: c.endpoints, prefix: freshPrefix(), logger: silent });
    try {
      await a.open();
      await assert.rejects(a.txn({ success: [{ type: 'put', key: 'x', value: '1', lease: 'abc' }] }), (e: unknown) => e instanceof SwitchyardError && e.code === 'SY_ERR_INVALID_ARGUMENT');
      assert.equal(a.get('x'), undefined);
    } finally {
      await a.close();
    }
  });

  it('with etcd down: reads keep answering from the mirror, writes fail with SY_ERR_STORE_UNAVAILABLE (no hang); after a restart the watch catches up', async () => {
    const own = await startEtcd(1);
    const prefix = freshPrefix();
    const a = new EtcdStore({ endpoints: own.endpoints, prefix, logger: silent, requestTimeoutMs: 1500 });
    const b = new EtcdStore({ endpoints: own.endpoints, prefix, logger: silent, requestTimeoutMs: 1500 });
    try {
      await a.open();
      await b.open();
      await a.txn({ success: [{ type: 'put', key: 'k', value: 'before' }] });
      await own.kill(0);
      assert.equal(a.get('k')?.value, 'before');
      const started = Date.now();
      await assert.rejects(a.txn({ success: [{ type: 'put', key: 'k', value: 'during' }] }), (e: unknown) =>
        e instanceof SwitchyardError && e.code === 'SY_ERR_STORE_UNAVAILABLE' && /etcd 127\.0\.0\.1:\d+/.test(e.message));
      assert.ok(Date.now() - started < 5000, `the write failed after ${Date.now() - started} ms`);
      await own.start(0);
      await waitFor(async () => {
        try {
          await b.txn({ success: [{ type: 'put', key: 'k', value: 'after' }] });
          return true;
        } catch {
          return false;
        }
      }, 'etcd accepts writes again', 30_000, 250);
      await waitFor(() => a.get('k')?.value === 'after', 'the first store caught up through its resumed watch', 30_000);
    } finally {
      await a.close();
      await b.close();
      await own.stop();
    }
  });
});
