// The catalog view kept write by write, against two oracles, over random sequences of store transactions
// (fast-check): the same store's entries loaded into a fresh view (what an agent restarted at that moment
// would serve), and, for every read a blocking query can make, Consul's contract that an answer which
// changed comes with a higher index. A missed index move is a watcher (consul-template, the balancer)
// that never sees the change; a wrong version is a cached answer served stale.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CatalogView } from '../../src/registry/server/catalog-view.js';
import { topics } from '../../src/registry/server/catalog-reader.js';
import type { CatalogReader, Indexed, WatchSpec } from '../../src/registry/server/catalog-reader.js';
import { keys } from '../../src/registry/server/model.js';
import type { CheckRecord, HealthStatus, NodeRecord } from '../../src/registry/server/model.js';
import { checksInState, healthEntries, serviceTagsIndex } from '../../src/registry/server/queries.js';
import { checkWithDefaults, encodeCheck, encodeService, serviceWithDefaults } from '../../src/registry/server/stored.js';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import { LocalSource } from '../../src/discovery/local-source.js';
import { manualCancel } from '../helpers/cancel.js';
import { Followed, plainSet } from '../helpers/followed.js';
import type { ServiceSet } from '../../src/discovery/types.js';
import type { StoreOp } from '../../src/registry/store/types.js';

const silent = { warn: () => undefined, info: () => undefined };
const RUNS = Number(process.env.SY_FC_RUNS ?? 150);

// Small name spaces, so random writes collide: the same ID under another name, a check of a service that
// comes and goes, a node record removed under its services.
const NODES = ['n1', 'n2', 'n3'];
const IDS = ['i1', 'i2', 'i3'];
const NAMES = ['web', 'db', 'api'];
const TAGS = ['a', 'b', 'c'];
const CHECKS = ['k1', 'k2', 'serfHealth'];
const KV = ['app/x', 'app/y', 'app/z/1', 'ap', 'other'];
const KV_PREFIXES = ['', 'app/', 'app/z', 'ap', 'o'];

const op: fc.Arbitrary<StoreOp> = fc.oneof(
  fc.record({ node: fc.constantFrom(...NODES), addr: fc.constantFrom('10.0.0.1', '10.0.0.2'), meta: fc.constantFrom('x', 'y') }).map(({ node, addr, meta }): StoreOp => {
    const rec: NodeRecord = { ID: '', Node: node, Address: addr, Datacenter: 'dc1', TaggedAddresses: {}, Meta: { m: meta } };
    return { type: 'put', key: keys.node(node), value: JSON.stringify(rec) };
  }),
  fc.constantFrom(...NODES).map((node): StoreOp => ({ type: 'delete', key: keys.node(node) })),
  fc.record({ node: fc.constantFrom(...NODES), id: fc.constantFrom(...IDS), name: fc.constantFrom(...NAMES), tags: fc.subarray(TAGS), port: fc.constantFrom(80, 81) })
    .map(({ node, id, name, tags, port }): StoreOp => {
      const key = keys.service(node, id);
      return { type: 'put', key, value: encodeService(serviceWithDefaults({ Node: node, ID: id, Service: name, Tags: tags, Port: port }), key) };
    }),
  fc.record({ node: fc.constantFrom(...NODES), id: fc.constantFrom(...IDS) }).map(({ node, id }): StoreOp => ({ type: 'delete', key: keys.service(node, id) })),
  fc.record({
    node: fc.constantFrom(...NODES), id: fc.constantFrom(...CHECKS), service: fc.constantFrom('', ...IDS), name: fc.constantFrom('', ...NAMES),
    status: fc.constantFrom<HealthStatus>('passing', 'warning', 'critical'),
  }).map(({ node, id, service, name, status }): StoreOp => {
    const key = keys.check(node, id);
    const rec = checkWithDefaults({ Node: node, CheckID: id, Name: id, Status: status, ServiceID: service, ServiceName: service === '' ? '' : name });
    return { type: 'put', key, value: encodeCheck(rec, key) };
  }),
  fc.record({ node: fc.constantFrom(...NODES), id: fc.constantFrom(...CHECKS) }).map(({ node, id }): StoreOp => ({ type: 'delete', key: keys.check(node, id) })),
  fc.record({ key: fc.constantFrom(...KV), v: fc.constantFrom('1', '2') }).map(({ key, v }): StoreOp => ({ type: 'put', key: keys.kv(key), value: JSON.stringify({ Key: key, Value: v, Flags: 0 }) })),
  fc.constantFrom(...KV).map((key): StoreOp => ({ type: 'delete', key: keys.kv(key) })),
  // What deregistering a node or a KV tree writes: every key under a prefix.
  fc.constantFrom(...NODES.flatMap((n) => [keys.servicePrefix(n), keys.checkPrefix(n)]), 'k/app/', 'k/ap', 's/', 'c/').map((prefix): StoreOp => ({ type: 'deletePrefix', prefix })),
);

/** One transaction: a few ops, at most one per key or prefix (the last wins). */
const txn = fc.array(op, { minLength: 1, maxLength: 4 }).map((ops) => [...new Map(ops.map((o) => ['key' in o ? o.key : `prefix ${o.prefix}`, o])).values()]);

const plain = (x: Indexed<unknown> | undefined): unknown => (x === undefined ? null : { rec: x.rec, c: x.createIndex, m: x.modifyIndex });
const byCheck = (a: Indexed<CheckRecord>, b: Indexed<CheckRecord>): number => (a.rec.CheckID < b.rec.CheckID ? -1 : a.rec.CheckID > b.rec.CheckID ? 1 : 0);

interface Read {
  readonly name: string;
  readonly spec: WatchSpec;
  /** What the route built on this read answers, as data (check order inside an entry left aside: it is insertion order). */
  readonly answer: (v: CatalogReader) => unknown;
}

/** The reads blocking queries make, each with the spec its route parks on (src/registry/server/http/routes/catalog.ts, kv.ts). */
const READS: readonly Read[] = [
  ...NAMES.map((name): Read => ({
    name: `health/service/${name} (catalog/service, health/checks)`,
    spec: { topics: [topics.service(name)] },
    answer: (v) => healthEntries(v, name).map((e) => ({ node: plain(e.node), service: plain(e.service), checks: [...e.checks].sort(byCheck).map(plain) })),
  })),
  ...NODES.map((node): Read => ({
    name: `catalog/node/${node} + health/node/${node}`,
    spec: { topics: [topics.node(node)] },
    answer: (v) => ({
      node: plain(v.node(node)),
      services: [...v.nodeServices(node)].sort((a, b) => (a.rec.ID < b.rec.ID ? -1 : 1)).map(plain),
      checks: [...v.checksOnNode(node)].sort(byCheck).map(plain),
    }),
  })),
  { name: 'catalog/services', spec: { topics: [topics.SERVICES] }, answer: (v) => serviceTagsIndex(v) },
  {
    name: 'service names and tag sets (DNS, name lists)',
    spec: { topics: [topics.SERVICE_NAMES] },
    answer: (v) => v.serviceNames().map((n) => [n, [...v.serviceTags(n)].sort()]),
  },
  { name: 'catalog/nodes', spec: { topics: [topics.NODES] }, answer: (v) => [...v.nodes()].sort((a, b) => (a.rec.Node < b.rec.Node ? -1 : 1)).map(plain) },
  { name: 'health/state/any', spec: { topics: [topics.CHECKS] }, answer: (v) => checksInState(v, 'any').map(plain) },
  ...KV.map((key): Read => ({ name: `kv/${key}`, spec: { kv: key, prefix: false }, answer: (v) => plain(v.kvEntry(key)) })),
  ...KV_PREFIXES.map((prefix): Read => ({
    name: `kv/${prefix}?recurse`,
    spec: { kv: prefix, prefix: true },
    answer: (v) => v.kvKeysUnder(prefix).map((k) => [k, plain(v.kvEntry(k))]),
  })),
];

/** Everything a reader can see, in a form two views can be compared by (orders that are insertion orders sorted). */
function everything(v: CatalogReader): unknown {
  const answers = READS.map((r) => {
    const a = r.answer(v);
    // catalog/services lists tags in first-seen order, which a view built in one go need not share.
    return 'topics' in r.spec && r.spec.topics[0] === topics.SERVICES ? Object.entries(a as Record<string, string[]>).map(([n, t]) => [n, [...t].sort()]) : a;
  });
  return { answers, instances: v.instanceCount() };
}

/** What the balancer follows inside `switchyard up`: the in-process source on this view. */
class Follower extends Followed {
  constructor(view: CatalogView) {
    super(new LocalSource(view, () => true));
  }

  /**
   * After a write: the latest set equals a source started now (`critical` only if a set was emitted since
   * `from`), and the table kept from the `changed` lists equals it (a service left unnamed keeps its old entry).
   */
  check(view: CatalogView, from: number, why: string): void {
    const last = this.latest as ServiceSet;
    let now: ServiceSet | undefined;
    const fresh = new LocalSource(view, () => true);
    fresh.start((set) => (now ??= set));
    void fresh.close();
    const critical = this.sets.length > from;
    assert.deepEqual(plainSet(last, { sortTags: true, critical }), plainSet(now as ServiceSet, { sortTags: true, critical }), `${why}: the balancer's source holds another set than a source started now`);
    assert.deepEqual(this.kept(), plainSet(last), `${why}: a service changed but no set named it (an incremental table would keep the old one)`);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** The index a blocking query on `spec` reports. */
const indexOf = (v: CatalogView, spec: WatchSpec): number => ('topics' in spec ? v.topicIndex(spec.topics) : v.kvIndex(spec.kv, spec.prefix));

/** Commits `ops` with a query parked on every read; each read whose answer changed must have a higher index, a new version, and its query woken. */
async function writeAndCheck(store: EmbeddedStore, view: CatalogView, follower: Follower, ops: StoreOp[], step: number): Promise<void> {
  const emitted = follower.sets.length;
  const before = READS.map((r) => ({ answer: JSON.stringify(r.answer(view)), index: indexOf(view, r.spec), version: view.version(r.spec) }));
  // Lets go of the step's parked queries once they have been checked (one left parked holds the process 60 s).
  const cancel = manualCancel();
  const woken = READS.map((r) => {
    let fired = false;
    void view.wait(r.spec, 60_000, cancel).then((w) => (fired = w !== false));
    return () => fired;
  });
  try {
    const { revision } = await store.txn({ success: ops });
    await view.waitForRevision(revision);
    await new Promise((r) => setImmediate(r));
    for (const [i, r] of READS.entries()) {
      const was = before[i] as (typeof before)[number];
      if (JSON.stringify(r.answer(view)) === was.answer) continue;
      const why = `step ${step}, ${r.name} changed after ${JSON.stringify(ops)}`;
      const index = indexOf(view, r.spec);
      assert.ok(index > was.index, `${why}, but its index stayed at ${was.index} (now ${index})`);
      assert.ok(view.version(r.spec) !== was.version, `${why}, but its version did not move (a cached answer would be served)`);
      assert.ok((woken[i] as () => boolean)(), `${why}, but a query parked on it was not woken`);
    }
    // The source builds on the turn after the change (setImmediate).
    await new Promise((r) => setImmediate(r));
    follower.check(view, emitted, `step ${step}, after ${JSON.stringify(ops)}`);
  } finally {
    cancel.fire();
  }
}

describe('catalog view: kept write by write, it serves what a fresh load serves and moves the index of every answer that changed', () => {
  it('over random transactions (nodes, services, checks and KV colliding on few names)', async () => {
    const out = await fc.check(
      fc.asyncProperty(fc.array(txn, { minLength: 1, maxLength: 25 }), async (txns) => {
        const dir = await mkdtemp(join(tmpdir(), 'sy-view-model-'));
        const store = new EmbeddedStore({ dir, sync: 'none', logger: silent });
        try {
          // The agent's own node record is always the first write (revision 1). Before it an empty store reports
          // index 1 (Consul's "never 0"), which a write at revision 1 could not move past.
          await store.open();
          await store.txn({ success: [{ type: 'put', key: keys.node('agent'), value: JSON.stringify({ ID: '', Node: 'agent', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {} }) }] });
          const view = new CatalogView({ revision: store.revision(), entries: store.range('') });
          const unsubscribe = store.subscribe((c) => view.apply(c));
          const follower = new Follower(view);
          try {
            for (const [step, ops] of txns.entries()) await writeAndCheck(store, view, follower, ops, step);
            // The oracle: the store's entries now, loaded in one go, as a restarted agent would.
            const fresh = new CatalogView({ revision: store.revision(), entries: store.range('') });
            assert.deepEqual(everything(view), everything(fresh), `after ${txns.length} transactions the view differs from a fresh load of the same store`);
          } finally {
            await follower.close();
            unsubscribe();
          }
        } finally {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS },
    );
    // fc.assert's report leaves out the failed assertion's message; this one says what broke and shows the shrunk case.
    if (out.failed) assert.fail(`${String(out.errorInstance instanceof Error ? out.errorInstance.message : out.errorInstance)}\n${fc.defaultReportMessage(out)}`);
  });
});
