/**
 * /v1/snapshot: GET saves every store key at one revision (the file of snapshot/format.ts), PUT
 * restores one. Consul's paths and verbs; the file is Switchyard's own (Consul's holds Raft state,
 * which a Switchyard registry does not have). Both need the ACL token when one is set.
 */
import { HttpError } from '../../../../core/errors.js';
import { SnapshotError, decodeSnapshot, encodeSnapshot } from '../../snapshot/format.js';
import { restoreEntries } from '../../snapshot/restore.js';
import type { Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

/** The largest snapshot file a restore reads, and the most it may expand to. */
export const MAX_SNAPSHOT_FILE = 512 * 1024 * 1024;
export const MAX_SNAPSHOT_EXPANDED = 1024 * 1024 * 1024;

export function snapshotRoutes(deps: ApiDeps): Route[] {
  const { registry, store } = deps;
  return [{
    path: '/v1/snapshot', methods: ['GET', 'PUT'],
    handler: async (ctx) => {
      const dc = ctx.query.get('dc');
      if (dc && dc !== registry.node.datacenter) throw new HttpError(500, 'No path to datacenter');
      if (ctx.method === 'GET') {
        // One synchronous read: the entries are immutable, so later writes do not reach this snapshot.
        const revision = store.revision();
        const entries = store.range('');
        const raw = await encodeSnapshot({ revision, created: new Date(deps.clock.now()).toISOString(), node: registry.node.name, datacenter: registry.node.datacenter, store: deps.storeKind }, entries);
        return { raw, encoded: true, index: revision, headers: { 'Content-Type': 'application/gzip', 'Content-Disposition': `attachment; filename="switchyard-${revision}.snap"` } };
      }
      if (deps.storeKind !== 'embedded') {
        throw new HttpError(501, 'snapshot restore needs the embedded store: on etcd it would take many transactions, and a reader could see a half-restored catalog (with the agents stopped, `switchyard snapshot restore FILE --store etcd://…` restores in batches)');
      }
      const file = await ctx.body(MAX_SNAPSHOT_FILE, (size, max) => `snapshot file too large (${size} bytes), max size: ${max} bytes`);
      try {
        const snap = await decodeSnapshot(file, { maxBytes: MAX_SNAPSHOT_EXPANDED });
        const done = await restoreEntries(store, snap.entries, { nowMs: deps.clock.now() });
        await deps.view.waitForRevision(done.revision);
        return { json: { ...done, from: { revision: snap.header.revision, created: snap.header.created, node: snap.header.node, datacenter: snap.header.datacenter } }, index: done.revision };
      } catch (err) {
        if (err instanceof SnapshotError) throw new HttpError(400, `snapshot refused, nothing restored: ${err.message}`, { code: 'SY_ERR_SNAPSHOT' });
        throw err;
      }
    },
  }];
}
