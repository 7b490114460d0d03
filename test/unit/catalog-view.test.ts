// CatalogView through its CatalogReader / CatalogWatch faces, fed by a real embedded store: what readers see after
// each kind of write, which topics a change moves (and which it leaves alone), parked waits, and the writer answered
// before the watchers it wakes.
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CatalogView, topics } from '../../src/registry/server/catalog-view.js';
import type { CatalogReader, Indexed, WaitEnd } from '../../src/registry/server/catalog-reader.js';
import { blocking } from '../../src/registry/server/http/blocking.js';
import type { Ctx } from '../../src/registry/server/http/context.js';
import { keys } from '../../src/registry/server/model.js';
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from '../../src/registry/server/model.js';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import { manualCancel } from '../helpers/cancel.js';
import type { StoreOp } from '../../src/registry/store/types.js';

const silent = { warn: () => undefined, info: () => undefined };

const nodeRec = (name: string, meta: Record<string, string> = {}): NodeRecord => ({
  ID: '', Node: name, Address: `10.0.0.${name.length}`, Datacenter: 'dc1', TaggedAddresses: {}, Meta: meta,
});
const svcRec = (node: string, id: string, name: string, tags: string[] = [], port = 80): ServiceRecord => ({
  Node: node, ID: id, Service: name, Tags: tags, Address: '', TaggedAddresses: {}, Meta: {}, Port: port,
  Weights: { Passing: 1, Warning: 1 }, EnableTagOverride: false, Kind: '', Local: false,
});
const checkRec = (node: string, id: string, serviceId = '', status: CheckRecord['Status'] = 'passing'): CheckRecord => ({
  Node: node, CheckID: id, Name: id, Status: status, Notes: '', Output: '', ServiceID: serviceId, ServiceName: '', ServiceTags: [], Type: '', Definition: {},
});

const put = (key: string, rec: unknown): StoreOp => ({ type: 'put', key, value: JSON.stringify(rec) });
const del = (key: string): StoreOp => ({ type: 'delete', key });

/** A store in a temp dir and a view following it, the way the agent wires them. */
class Fixture {
  store!: EmbeddedStore;
  view!: CatalogView;
  dir!: string;
  #unsubscribe: (() => void) | undefined;

  async open(dir?: string): Promise<void> {
    this.dir = dir ?? (await mkdtemp(join(tmpdir(), 'sy-view-')));
    this.store = new EmbeddedStore({ dir: this.dir, sync: 'none', logger: silent });
    this.view = new CatalogView(await this.store.open());
    this.#unsubscribe = this.store.subscribe((c) => this.view.apply(c));
  }

  async write(...ops: StoreOp[]): Promise<number> {
    return (await this.store.txn({ success: ops })).revision;
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    await this.store.close();
  }
}

const ids = (xs: Iterable<Indexed<{ ID: string }>>): string[] => [...xs].map((x) => x.rec.ID).sort();
const checkIds = (xs: Iterable<Indexed<CheckRecord>>): string[] => [...xs].map((x) => x.rec.CheckID).sort();
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
/** A wait ended by a change carries the time that change was applied (a positive performance.now()). */
const woke = (end: WaitEnd): boolean => end !== false && end > 0;

describe('CatalogView as a CatalogReader', () => {
  const f = new Fixture();
  let r: CatalogReader;
  beforeEach(async () => {
    await f.open();
    r = f.view;
  });
  afterEach(async () => {
    await f.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it('answers an empty catalog with empty lists, never undefined collections', () => {
    assert.deepEqual([...r.nodes()], []);
    assert.deepEqual(r.serviceNames(), []);
    assert.deepEqual(r.serviceTags('web'), []);
    assert.deepEqual([...r.instances('web')], []);
    assert.deepEqual([...r.nodeServices('n1')], []);
    assert.deepEqual([...r.nodeChecks('n1')], []);
    assert.deepEqual([...r.serviceChecks('n1', 'web-1')], []);
    assert.deepEqual([...r.checksOnNode('n1')], []);
    assert.deepEqual([...r.allChecks()], []);
    assert.equal(r.node('n1'), undefined);
    assert.equal(r.findService('n1', 'web-1'), undefined);
    assert.equal(r.findCheck('n1', 'c'), undefined);
    assert.equal(r.kvEntry('a'), undefined);
    assert.equal(r.instanceCount(), 0);
    assert.equal(r.topicIndex([topics.service('web')]), 1, 'an index is never 0');
  });

  it('shows nodes, services and checks with the indexes of their writes', async () => {
    const rev1 = await f.write(put(keys.node('n1'), nodeRec('n1')), put(keys.node('n2'), nodeRec('n2')));
    const rev2 = await f.write(
      put(keys.service('n1', 'web-1'), svcRec('n1', 'web-1', 'web', ['a', 'b'])),
      put(keys.service('n2', 'web-2'), svcRec('n2', 'web-2', 'web', ['b', 'c'])),
      put(keys.service('n1', 'db-1'), svcRec('n1', 'db-1', 'db')),
      put(keys.check('n1', 'serfHealth'), checkRec('n1', 'serfHealth')),
      put(keys.check('n1', 'service:web-1'), checkRec('n1', 'service:web-1', 'web-1', 'critical')),
    );
    assert.deepEqual([...r.nodes()].map((n) => n.rec.Node).sort(), ['n1', 'n2']);
    assert.equal(r.node('n1')?.createIndex, rev1);
    assert.equal(r.revision, rev2);
    assert.deepEqual(r.serviceNames(), ['db', 'web'], 'sorted');
    assert.deepEqual(r.serviceTags('web'), ['a', 'b', 'c'], 'union in first-seen order');
    assert.deepEqual(ids(r.instances('web')), ['web-1', 'web-2']);
    assert.deepEqual(ids(r.nodeServices('n1')), ['db-1', 'web-1']);
    assert.equal(r.findService('n2', 'web-2')?.modifyIndex, rev2);
    assert.equal(r.findService('n1', 'web-2'), undefined, 'an ID is looked up on its own node only');
    assert.equal(r.instanceCount(), 3);
    assert.deepEqual(checkIds(r.nodeChecks('n1')), ['serfHealth']);
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'web-1')), ['service:web-1']);
    assert.deepEqual(checkIds(r.serviceChecks('n1', '')), [], "'' is not a service ID (it would name the node-level checks)");
    assert.deepEqual(checkIds(r.checksOnNode('n1')), ['serfHealth', 'service:web-1']);
    assert.deepEqual(checkIds(r.allChecks()), ['serfHealth', 'service:web-1']);
    assert.equal(r.findCheck('n1', 'service:web-1')?.rec.Status, 'critical');
  });

  it('keeps tags, names and counts right as instances change, move and go', async () => {
    await f.write(
      put(keys.service('n1', 'web-1'), svcRec('n1', 'web-1', 'web', ['a', 'b'])),
      put(keys.service('n2', 'web-2'), svcRec('n2', 'web-2', 'web', ['b'])),
    );
    // Re-registered with other tags: the old ones count down, the new ones up.
    await f.write(put(keys.service('n1', 'web-1'), svcRec('n1', 'web-1', 'web', ['b', 'z'], 81)));
    assert.deepEqual([...r.serviceTags('web')].sort(), ['b', 'z']);
    assert.equal(r.instanceCount(), 2);
    assert.equal(r.findService('n1', 'web-1')?.rec.Port, 81);
    assert.equal([...r.instances('web')].length, 2, 'the replaced record is gone from its group');
    // Same ID, another service name: it leaves 'web' and joins 'api'.
    await f.write(put(keys.service('n1', 'web-1'), svcRec('n1', 'web-1', 'api', ['q'])));
    assert.deepEqual(r.serviceNames(), ['api', 'web']);
    assert.deepEqual(ids(r.instances('web')), ['web-2']);
    assert.deepEqual(ids(r.instances('api')), ['web-1']);
    assert.deepEqual(r.serviceTags('web'), ['b']);
    await f.write(del(keys.service('n2', 'web-2')));
    assert.deepEqual(r.serviceNames(), ['api'], 'a name with no instance left is gone');
    assert.deepEqual(r.serviceTags('web'), []);
    assert.deepEqual([...r.instances('web')], []);
    assert.equal(r.instanceCount(), 1);
  });

  it('moves a check between services and drops node-level checks by key', async () => {
    await f.write(
      put(keys.service('n1', 'a'), svcRec('n1', 'a', 'sa')),
      put(keys.service('n1', 'b'), svcRec('n1', 'b', 'sb')),
      put(keys.check('n1', 'chk'), checkRec('n1', 'chk', 'a')),
      put(keys.check('n1', 'maint'), checkRec('n1', 'maint')),
    );
    await f.write(put(keys.check('n1', 'chk'), checkRec('n1', 'chk', 'b', 'warning')));
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'a')), []);
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'b')), ['chk']);
    assert.equal(r.findCheck('n1', 'chk')?.rec.Status, 'warning');
    await f.write(put(keys.check('n1', 'chk2'), checkRec('n1', 'chk2', 'b')), put(keys.check('n1', 'chk3'), checkRec('n1', 'chk3', 'b')));
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'b')), ['chk', 'chk2', 'chk3']);
    await f.write(del(keys.check('n1', 'chk')), del(keys.check('n1', 'chk3')));
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'b')), ['chk2']);
    await f.write(del(keys.check('n1', 'chk2')));
    assert.deepEqual(checkIds(r.serviceChecks('n1', 'b')), []);
    await f.write(del(keys.check('n1', 'maint')));
    assert.deepEqual(checkIds(r.nodeChecks('n1')), []);
    assert.deepEqual(checkIds(r.checksOnNode('n1')), []);
  });

  it('reads KV entries and sorted keys under a prefix, and KV indexes move on deletes too', async () => {
    const kv = (v: string): KvRecord => ({ Flags: '0', Value: Buffer.from(v).toString('base64'), LockIndex: 0 });
    await f.write(put(keys.kv('app/b'), kv('2')), put(keys.kv('app/a'), kv('1')), put(keys.kv('other'), kv('x')));
    assert.deepEqual(r.kvKeysUnder('app/'), ['app/a', 'app/b']);
    assert.equal(r.kvEntry('app/a')?.rec.Value, Buffer.from('1').toString('base64'));
    const before = r.kvIndex('app/', true);
    const rev = await f.write(del(keys.kv('app/a')));
    assert.equal(r.kvEntry('app/a'), undefined);
    assert.deepEqual(r.kvKeysUnder('app/'), ['app/b']);
    assert.equal(r.kvIndex('app/', true), rev, 'the deletion is the prefix\'s newest change');
    assert.ok(rev > before);
    assert.equal(r.kvIndex('app/a', false), rev, 'a deleted key reports its tombstone');
  });

  it('shares what repeats between records, frozen so no reader can change one through another', async () => {
    await f.write(
      put(keys.service('n1', 'w1'), svcRec('n1', 'w1', 'web', ['a', 'b'])),
      put(keys.service('n2', 'w2'), svcRec('n2', 'w2', 'web', ['a', 'b'])),
    );
    const [x, y] = [r.findService('n1', 'w1'), r.findService('n2', 'w2')];
    assert.ok(x && y);
    assert.equal(x.rec.Tags, y.rec.Tags, 'one tag list for equal tags');
    assert.ok(Object.isFrozen(x.rec.Tags));
    assert.throws(() => (x.rec.Tags as string[]).push('c'));
    assert.deepEqual(y.rec.Tags, ['a', 'b']);
  });

  it('reopened on the same data, reads the same and hands out indexes no lower than before', async () => {
    await f.write(put(keys.node('n1'), nodeRec('n1')), put(keys.service('n1', 'w1'), svcRec('n1', 'w1', 'web', ['t'])));
    const idx = r.topicIndex([topics.service('web')]);
    const other = r.topicIndex([topics.service('never-written')]);
    await f.close();
    await f.open(f.dir);
    r = f.view;
    assert.deepEqual(r.serviceNames(), ['web']);
    assert.deepEqual(r.serviceTags('web'), ['t']);
    assert.equal(r.instanceCount(), 1);
    assert.ok(r.topicIndex([topics.service('web')]) >= idx);
    assert.ok(r.topicIndex([topics.service('never-written')]) >= other);
  });
});

describe('CatalogView as a CatalogWatch', () => {
  const f = new Fixture();
  let w: CatalogView;
  beforeEach(async () => {
    await f.open();
    w = f.view;
    await f.write(
      put(keys.node('n1'), nodeRec('n1')), put(keys.node('n2'), nodeRec('n2')),
      put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'])),
      put(keys.service('n2', 'b1'), svcRec('n2', 'b1', 'b', ['y'])),
    );
  });
  afterEach(async () => {
    await f.close();
    await rm(f.dir, { recursive: true, force: true });
  });

  it('moves the version and index of the topics a change touched, and only those', async () => {
    const A = { topics: [topics.service('a')] };
    const B = { topics: [topics.service('b')] };
    const [va, vb, ia, ib] = [w.version(A), w.version(B), w.topicIndex(A.topics), w.topicIndex(B.topics)];
    const rev = await f.write(put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'], 99)));
    assert.ok(w.version(A) > va);
    assert.equal(w.topicIndex(A.topics), rev);
    assert.equal(w.version(B), vb, 'a change to service a leaves what b\'s readers see alone');
    assert.equal(w.topicIndex(B.topics), ib);
    assert.ok(ia < rev);
  });

  it('touches service-names only when a name or a tag union changes, not on every instance', async () => {
    const names = { topics: [topics.SERVICE_NAMES] };
    const v0 = w.version(names);
    await f.write(put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'], 81)));
    assert.equal(w.version(names), v0, 'same name, same tags');
    await f.write(put(keys.service('n2', 'a2'), svcRec('n2', 'a2', 'a', ['x'])));
    assert.equal(w.version(names), v0, 'another instance with a known tag');
    await f.write(put(keys.service('n2', 'a2'), svcRec('n2', 'a2', 'a', ['x', 'new'])));
    const v1 = w.version(names);
    assert.ok(v1 > v0, 'a new tag');
    await f.write(put(keys.service('n2', 'c1'), svcRec('n2', 'c1', 'c')));
    assert.ok(w.version(names) > v1, 'a new name');
  });

  it('a node-level check or node record change wakes the services on that node, not others', async () => {
    const onA = w.wait({ topics: [topics.service('a')] }, 60_000);
    const onB = w.wait({ topics: [topics.service('b')] }, 200);
    await f.write(put(keys.check('n1', 'serfHealth'), checkRec('n1', 'serfHealth', '', 'critical')));
    assert.equal(woke(await onA), true);
    assert.equal(await onB, false, 'n2\'s service b sleeps through n1\'s node check');
    const again = w.wait({ topics: [topics.service('a')] }, 60_000);
    await f.write(put(keys.node('n1'), nodeRec('n1', { rack: 'r2' })));
    assert.equal(woke(await again), true);
  });

  it('a woken blocking query counts its wake from its own change, not from one applied while the fan-out runs', async () => {
    // The agent's wake histogram (switchyard_registry_blocking_wake_seconds) reads this wokeAt. It was the time of
    // the view's latest change when the answer was made; under churn, a later change applied between two slices of a
    // large fan-out made the slow tail of that fan-out look fast.
    const A = { topics: [topics.service('a')] };
    const minIndex = w.topicIndex(A.topics);
    const cancel = manualCancel();
    const ctx = { cancel } as unknown as Ctx;
    const opts = { defaultWaitMs: 60_000, maxWaitMs: 60_000, random: { next: () => 0 } };
    const query = (): { index: number; json: unknown } => ({ index: w.topicIndex(A.topics), json: [] });
    const n = 20_000;
    const answers = Array.from({ length: n }, () => blocking(ctx, w, { minIndex, waitMs: 60_000 }, opts, A, query));
    const before = performance.now();
    await f.write(put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'], 84)));
    const applied = performance.now();
    // Answered before the watchers (see the next test): this change lands while the fan-out is under way.
    await f.write(put(keys.service('n2', 'b1'), svcRec('n2', 'b1', 'b', [], 85)));
    const later = performance.now();
    const replies = await Promise.all(answers);
    const done = performance.now();
    assert.ok(done > later, 'the fan-out outlived the second write');
    const at = new Set(replies.map((r) => r.wokeAt));
    assert.equal(at.size, 1, `one change woke them all, at one time; saw ${at.size} different times`);
    const t = [...at][0] as number;
    assert.ok(t >= before && t <= applied, `wokeAt ${t.toFixed(3)} is the first change's apply, in [${before.toFixed(3)}, ${applied.toFixed(3)}]`);
    cancel.fire();
  });

  it('answers the writer before the watchers its change wakes', async () => {
    const order: string[] = [];
    const parked = Array.from({ length: 50 }, () => w.wait({ topics: [topics.service('a')] }, 60_000).then((c) => void order.push(`watcher:${String(woke(c))}`)));
    assert.equal(w.waiterCount(), 50);
    await f.write(put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'], 82))).then(() => void order.push('writer'));
    assert.deepEqual(order, ['writer'], 'no watcher answered before the write was');
    await Promise.all(parked);
    assert.equal(order.length, 51);
    assert.ok(order.slice(1).every((o) => o === 'watcher:true'));
    assert.equal(w.waiterCount(), 0);
  });

  it('ends a wait on timeout or cancel with false and forgets it', async () => {
    assert.equal(await w.wait({ topics: [topics.service('a')] }, 30), false);
    const c = manualCancel();
    const p = w.wait({ topics: [topics.service('a')] }, 60_000, c);
    assert.equal(w.waiterCount(), 1);
    c.fire();
    assert.equal(await p, false);
    assert.equal(w.waiterCount(), 0);
    const already = manualCancel();
    already.fire();
    assert.equal(await w.wait({ topics: [topics.service('a')] }, 60_000, already), false);
    assert.equal(w.waiterCount(), 0);
  });

  it('a waiter marked by a change and cancelled before its turn still reports the change', async () => {
    const c = manualCancel();
    const p = w.wait({ topics: [topics.service('a')] }, 60_000, c);
    // The view applies the change synchronously; the wake is delivered on a later turn. Cancel in between.
    f.view.apply({ revision: f.view.revision + 1, events: [{ type: 'put', key: keys.service('n1', 'a1'), entry: { key: keys.service('n1', 'a1'), value: JSON.stringify(svcRec('n1', 'a1', 'a', ['x'], 83)), createRevision: 1, modRevision: f.view.revision + 1, version: 2 } }] });
    c.fire();
    assert.equal(woke(await p), true);
  });

  it('wakes KV waiters on their key and on every prefix of it, and not on other keys', async () => {
    const kv = (v: string): KvRecord => ({ Flags: '0', Value: Buffer.from(v).toString('base64'), LockIndex: 0 });
    const exact = w.wait({ kv: 'app/x', prefix: false }, 60_000);
    const prefix = w.wait({ kv: 'ap', prefix: true }, 60_000);
    const other = w.wait({ kv: 'app/y', prefix: false }, 200);
    await f.write(put(keys.kv('app/x'), kv('1')));
    assert.deepEqual((await Promise.all([exact, prefix, other])).map(woke), [true, true, false]);
  });

  it('waitForRevision resolves once the revision is applied', async () => {
    const next = f.view.revision + 1;
    let done = false;
    const p = w.waitForRevision(next).then(() => (done = true));
    await tick();
    assert.equal(done, false);
    await f.write(put(keys.service('n1', 'a1'), svcRec('n1', 'a1', 'a', ['x'], 84)));
    await p;
    assert.equal(done, true);
  });
});
