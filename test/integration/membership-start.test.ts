// An agent starting while its etcd hangs (an election, a member restart): Membership.start keeps announcing
// within its budget instead of failing at the first store timeout, and gives up with a clear error after it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { SwitchyardError } from '../../src/core/errors.js';
import { ALIVE_PREFIX, Membership } from '../../src/registry/cluster/membership.js';
import { CatalogView } from '../../src/registry/server/catalog-view.js';
import { Registry } from '../../src/registry/server/registry.js';
import { EtcdStore } from '../../src/registry/store/etcd.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';

const silent = { warn: () => undefined, info: () => undefined };

describe('membership start while etcd hangs', { skip: !etcdAvailable() && 'etcd not installed' }, () => {
  let etcd: EtcdCluster;
  let seq = 0;
  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    etcd.resume(0);
    await etcd.stop();
  });

  /** An opened store (600 ms request budget) with a registry and a membership for node `node`, as the agent wires them. */
  const open = async (node: string, startBudgetMs: number) => {
    const store = new EtcdStore({ endpoints: etcd.endpoints, prefix: `start-${process.pid}-${seq++}/`, logger: silent, requestTimeoutMs: 600 });
    const opened = await store.open();
    const view = new CatalogView(opened);
    const unsubscribe = store.subscribe((c) => view.apply(c));
    const registry = new Registry({ store, view, node: { name: node, id: `id-${node}`, address: '127.0.0.1', datacenter: 'dc1' } });
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const membership = new Membership({ store, registry, logger, ttlSeconds: 5, advertiseUrl: 'http://127.0.0.1:1', startBudgetMs });
    const close = async (): Promise<void> => {
      await membership.close();
      unsubscribe();
      await store.close();
    };
    return { store, membership, warnings, close };
  };

  it('an etcd that hangs for 3 store timeouts during start: the agent announces once it answers', { timeout: 60_000 }, async () => {
    const a = await open('hang-node', 30_000);
    try {
      etcd.pause(0);
      const resumed = new Promise<void>((resolve) => setTimeout(() => {
        etcd.resume(0);
        resolve();
      }, 1800));
      // Before the budget, start() rejected after one timeout ("... within 600 ms") and the agent exited.
      await a.membership.start();
      await resumed;
      assert.ok(a.store.get(ALIVE_PREFIX + 'hang-node'), 'the alive key is written');
      assert.ok(a.warnings.some((w) => w.includes('retrying')), `a retry was logged: ${a.warnings.join('')}`);
    } finally {
      etcd.resume(0);
      await a.close();
    }
  });

  it('an etcd that stays hung past the budget: start fails with SY_ERR_STORE_UNAVAILABLE, not a hang', { timeout: 60_000 }, async () => {
    const a = await open('gone-node', 2000);
    try {
      etcd.pause(0);
      await assert.rejects(a.membership.start(), (e: unknown) => e instanceof SwitchyardError && e.code === 'SY_ERR_STORE_UNAVAILABLE');
    } finally {
      etcd.resume(0);
      await a.close();
    }
  });
});
