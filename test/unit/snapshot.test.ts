// The snapshot file (src/registry/server/snapshot/format.ts) and the stored-value shapes a restore
// holds it to (stored-schema.ts): what is written reads back the same (fast-check), any change to
// the file's content is refused, every refusal says where and why, and a restore into a real
// embedded store makes it equal to the snapshot in one transaction that leaves equal keys alone.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { SnapshotError, decodeSnapshot, encodeSnapshot } from '../../src/registry/server/snapshot/format.js';
import { checkEntries, restoreEntries, restoreInBatches } from '../../src/registry/server/snapshot/restore.js';
import { storedValueProblem } from '../../src/registry/server/stored-schema.js';
import { encodeCheck, encodeService } from '../../src/registry/server/stored.js';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import type { StoreEntry } from '../../src/registry/store/types.js';

const HEADER = { revision: 100, created: '2026-12-07T00:00:00.000Z', node: 'n1', datacenter: 'dc1', store: 'embedded' };
const LIMITS = { maxBytes: 64 * 1024 * 1024 };
const entry = (key: string, value: string, create = 1, mod = create, version = 1): StoreEntry => ({ key, value, createRevision: create, modRevision: mod, version });

const entriesArb = fc.uniqueArray(
  fc.record({
    key: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
    value: fc.string({ unit: 'grapheme', maxLength: 80 }),
    createRevision: fc.integer({ min: 1, max: 50 }),
    extra: fc.integer({ min: 0, max: 50 }),
    version: fc.integer({ min: 1, max: 9 }),
  }).map((r) => entry(r.key, r.value, r.createRevision, r.createRevision + r.extra, r.version)),
  { selector: (e) => e.key, maxLength: 40 },
);

async function refused(file: Buffer, pattern: RegExp): Promise<void> {
  await assert.rejects(decodeSnapshot(file, LIMITS), (err: unknown) => {
    assert.ok(err instanceof SnapshotError, `a SnapshotError, got ${String(err)}`);
    assert.equal(err.code, 'SY_ERR_SNAPSHOT');
    assert.match(err.message, pattern);
    return true;
  });
}

/** The file's lines (uncompressed), to alter and compress again. */
const linesOf = (file: Buffer): string[] => gunzipSync(file).toString().split('\n');
const fileOf = (lines: readonly string[]): Buffer => gzipSync(Buffer.from(lines.join('\n')));

describe('snapshot file', () => {
  it('reads back exactly what was written (fast-check, 300 runs)', async () => {
    await fc.assert(fc.asyncProperty(entriesArb, async (entries) => {
      const file = await encodeSnapshot(HEADER, entries);
      const snap = await decodeSnapshot(file, LIMITS);
      assert.deepEqual(snap.entries, entries);
      assert.deepEqual(snap.header, { ...HEADER, keys: entries.length });
    }), { numRuns: 300, seed: 20261207 });
  });

  it('refuses any one-byte change to the content, and any cut (fast-check, 500 runs)', async () => {
    const file = await encodeSnapshot(HEADER, [entry('n/a', '{"x":1}'), entry('k/b', 'v', 2, 5, 3), entry('s/a/web', 'w', 3)]);
    const plain = gunzipSync(file);
    // The last byte is the newline after the trailer: whitespace there changes nothing the file says.
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: plain.length - 2 }), fc.integer({ min: 1, max: 255 }), async (at, delta) => {
      const altered = Buffer.from(plain);
      altered[at] = ((altered[at] as number) + delta) % 256;
      await assert.rejects(decodeSnapshot(gzipSync(altered), LIMITS), SnapshotError);
    }), { numRuns: 400, seed: 20261207 });
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: file.length - 1 }), async (cut) => {
      await assert.rejects(decodeSnapshot(file.subarray(0, cut), LIMITS), SnapshotError);
    }), { numRuns: 100, seed: 20261207 });
  });

  it('says what is wrong and where', async () => {
    const good = await encodeSnapshot(HEADER, [entry('k/a', '1'), entry('k/b', '2', 2)]);
    const lines = linesOf(good);
    await refused(Buffer.from('{"switchyard-snapshot":1}'), /not gzip-compressed/);
    await refused(gzipSync(Buffer.from('hello\n')), /line 1: not a Switchyard snapshot \(the header is not JSON\)/);
    await refused(gzipSync(Buffer.from('{"consul":1}\n')), /line 1: not a Switchyard snapshot \(no "switchyard-snapshot" header\)/);
    await refused(fileOf([lines[0]!.replace('"switchyard-snapshot":1', '"switchyard-snapshot":2'), ...lines.slice(1)]), /line 1: snapshot format 2 is not supported \(this build reads format 1\)/);
    await refused(fileOf([lines[0]!.replace('"revision":100', '"revision":-1'), ...lines.slice(1)]), /line 1: header field "revision" must be a non-negative integer, got -1/);
    await refused(fileOf(lines.slice(0, 3)), /ends at line 3 without its trailer: the file is truncated/);
    await refused(good.subarray(0, good.length - 10), /compressed stream is truncated|truncated/);
    await refused(fileOf([lines[0]!, lines[1]!, lines[1]!, ...lines.slice(3)]), /line 3: key "k\/a" appears twice/);
    await refused(fileOf([lines[0]!, '["k/a","1",1]', ...lines.slice(2)]), /line 2: a key line must be \[key, value, createRevision, modRevision, version\]/);
    await refused(fileOf([lines[0]!, '["k/a",1,1,1,1]', ...lines.slice(2)]), /line 2: the value of "k\/a" must be a string/);
    await refused(fileOf([lines[0]!, '["k/a","1",5,2,1]', ...lines.slice(2)]), /line 2: the revisions of "k\/a" must be integers with 1 ≤ createRevision ≤ modRevision/);
    await refused(fileOf([lines[0]!, '["k/a","1",1,101,1]', ...lines.slice(2)]), /line 2: key "k\/a" was written at revision 101, after the snapshot's revision 100/);
    await refused(fileOf([...lines.slice(0, 3), '{"end":2}', '']), /line 4: the trailer must be/);
    await refused(fileOf([...lines.slice(0, 3), lines[3]!.replace('"end":2', '"end":3'), '']), /line 4: the snapshot holds 2 keys, its header says 2 and its trailer 3/);
    await refused(fileOf([...lines.slice(0, 2), ...lines.slice(3)]), /line 3: the snapshot holds 1 keys, its header says 2/);
    await refused(fileOf([...lines.slice(0, 4), 'more']), /line 5: data after the trailer/);
    await refused(fileOf([lines[0]!, lines[1]!.replace('"1"', '"9"'), ...lines.slice(2)]), /line 4: the SHA-256 of the snapshot does not match its trailer: the file was altered/);
    await assert.rejects(decodeSnapshot(good, { maxBytes: 100 }), /expands to more than 100 bytes/);
  });

  it('a bomb (256 MiB of zeros in a quarter MiB of gzip, one endless line) is refused at its limit, read once (it took 138 s when each piece was appended and searched again)', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
    await refused(bomb, /line 1 is longer than 67108864 characters|expands to more than 67108864 bytes/);
    // One line without its end, under the size limit: refused at the line limit, read in linear time.
    await assert.rejects(decodeSnapshot(bomb, { maxBytes: 200 * 1024 * 1024 }), /line 1 is longer than 67108864 characters: not a snapshot line/);
  });
});

describe('stored-value shapes', () => {
  const svc = { Node: 'n1', ID: 'web-1', Service: 'web', Tags: ['a'], Address: '10.0.0.1', TaggedAddresses: {}, Meta: { k: 'v' }, Port: 80, Weights: { Passing: 1, Warning: 1 }, EnableTagOverride: false, Kind: '', Local: true };
  const chk = { Node: 'n1', CheckID: 'c1', Name: 'c', Status: 'passing' as const, Notes: '', Output: 'ok', ServiceID: 'web-1', ServiceName: 'web', ServiceTags: [], Type: 'http' as const, Definition: { HTTP: 'http://x/', Interval: '10s', Timeout: '1s' } };

  it('accepts what the registry writes', () => {
    assert.equal(storedValueProblem('s/n1/web-1', encodeService(svc, 's/n1/web-1')), undefined);
    assert.equal(storedValueProblem('c/n1/c1', encodeCheck(chk, 'c/n1/c1')), undefined);
    assert.equal(storedValueProblem('n/n1', JSON.stringify({ ID: 'x', Node: 'n1', Address: '1.2.3.4', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {} })), undefined);
    assert.equal(storedValueProblem('k/a/b', JSON.stringify({ Flags: '18446744073709551615', Value: 'aGk=', LockIndex: 0 })), undefined);
    assert.equal(storedValueProblem('k/a/b', JSON.stringify({ Flags: '0', Value: null, LockIndex: 2, Session: 's' })), undefined);
    assert.equal(storedValueProblem('ev/last', JSON.stringify({ ID: 'x' })), undefined);
  });

  it('refuses a value that would break a reader, naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      ['s/n1/web-1', JSON.stringify({ Service: 'web', Port: 80, Tags: 'a' }), /^Tags: /],
      ['s/n1/web-1', JSON.stringify({ Service: 'web', Port: 70000 }), /^Port: /],
      ['s/n1/web-1', JSON.stringify({ Service: 'web', Port: 1, Meta: JSON.parse('{"__proto__":"x"}') }), /__proto__/],
      ['s/n1', JSON.stringify({ Service: 'web', Port: 1 }), /must name a node and an ID/],
      ['c/n1/c1', JSON.stringify({ Name: 'c', Status: 'ok' }), /^Status: /],
      ['c/n1/c1', JSON.stringify({ Name: 'c', Status: 'passing', Definition: { Interval: 'soon' } }), /^Definition\.Interval: not a Go duration/],
      ['k/a', JSON.stringify({ Flags: '-1', Value: null, LockIndex: 0 }), /^Flags: not a decimal uint64/],
      ['k/a', JSON.stringify({ Flags: '0', Value: 'not base64!', LockIndex: 0 }), /^Value: not base64/],
      ['k/', JSON.stringify({ Flags: '0', Value: null, LockIndex: 0 }), /names nothing after its prefix/],
      ['sess/x', JSON.stringify({ ID: 'x', Name: '', Node: 'n1', LockDelay: 0, Behavior: 'explode', TTL: '', NodeChecks: null, ServiceChecks: null }), /^Behavior: /],
      ['zz/a', '{}', /not a key this registry writes/],
      ['n/n1', '{', /not JSON/],
      ['n/a/b', JSON.stringify({ ID: 'x', Node: 'a/b', Address: '', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {} }), /a node name must not contain "\/"/],
      ['n/n1', JSON.stringify({ ID: 'x', Node: 'n2', Address: '', Datacenter: 'dc1', TaggedAddresses: {}, Meta: {} }), /the record names node "n2", its key "n1"/],
      ['ev/last', '[]', /not a JSON object/],
      ['pq/a7f5e2b1-0000-4000-8000-000000000001', JSON.stringify({ ...query, ID: 'a7f5e2b1-0000-4000-8000-000000000002' }), /the record names query "a7f5e2b1-0000-4000-8000-000000000002", its key "a7f5e2b1-0000-4000-8000-000000000001"/],
      ['pq/a7f5e2b1-0000-4000-8000-000000000001', JSON.stringify({ ...query, Service: { ...query.Service, Service: '' } }), /^Service\.Service: /],
      ['pq/a7f5e2b1-0000-4000-8000-000000000001', JSON.stringify({ ...query, Template: { ...query.Template, Type: 'regex' } }), /^Template\.Type: /],
      ['pqn/x', JSON.stringify({ ID: 'not-an-id' }), /^ID: /],
    ];
    // A query as the API stores it, and the catch-all template's claim on the empty name.
    assert.equal(storedValueProblem('pq/a7f5e2b1-0000-4000-8000-000000000001', JSON.stringify(query)), undefined);
    assert.equal(storedValueProblem('pqn/', JSON.stringify({ ID: 'a7f5e2b1-0000-4000-8000-000000000001' })), undefined);
    for (const [key, value, pattern] of cases) assert.match(storedValueProblem(key, value) ?? 'accepted', pattern, `${key} ${value}`);
    await assert.rejects(checkEntries([entry('s/n1/web-1', JSON.stringify({ Service: 'web', Port: 1, Tags: 'a' }))]), /key "s\/n1\/web-1": Tags: /);
  });
});

/** A prepared query as /v1/query stores it. */
const query = {
  ID: 'a7f5e2b1-0000-4000-8000-000000000001', Name: 'q', Session: '', Token: '',
  Template: { Type: '', Regexp: '', RemoveEmptyTags: false },
  Service: { Service: 'web', Failover: { NearestN: 0, Datacenters: null }, IgnoreCheckIDs: null, OnlyPassing: false, Near: '', Tags: ['a'], NodeMeta: null, ServiceMeta: null },
  DNS: { TTL: '' },
};

/** A stored KV record holding `v`. */
const kv = (v: string): string => JSON.stringify({ Flags: '0', Value: Buffer.from(v).toString('base64'), LockIndex: 0 });

/** A real embedded store in a temp dir for the length of `fn`. */
async function withStore(fn: (store: EmbeddedStore) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-snap-'));
  const store = new EmbeddedStore({ dir, logger: pino({ level: 'silent' }), sync: 'none' });
  try {
    await store.open();
    await fn(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('restore into an embedded store', () => {
  it('makes the store equal to the snapshot in one revision; equal keys keep their indexes; membership keys stay out', async () => {
    await withStore(async (store) => {
      await store.txn({ success: [{ type: 'put', key: 'k/same', value: kv('s') }, { type: 'put', key: 'k/changed', value: kv('old') }, { type: 'put', key: 'k/gone', value: kv('g') }] });
      const sameBefore = store.get('k/same')!;
      const snapshot = [entry('k/same', kv('s')), entry('k/changed', kv('new')), entry('k/added', kv('a')), entry('a/n9', '{}'), entry('m/n9', '{}')];
      const before = store.revision();
      const r = await restoreEntries(store, snapshot, { nowMs: Date.now() });
      assert.deepEqual({ ...r, revision: r.revision - before }, { revision: 1, written: 2, deleted: 1, unchanged: 1, skipped: 2 });
      assert.deepEqual(store.range('').map((e) => [e.key, e.value]), [['k/added', kv('a')], ['k/changed', kv('new')], ['k/same', kv('s')]]);
      assert.deepEqual(store.get('k/same'), sameBefore);
      // Again: nothing differs, nothing is written.
      const again = await restoreEntries(store, snapshot, { nowMs: Date.now() });
      assert.deepEqual(again, { revision: r.revision, written: 0, deleted: 0, unchanged: 3, skipped: 2 });
      assert.equal(store.revision(), r.revision);
      // A refused snapshot leaves the store as it was.
      await assert.rejects(restoreEntries(store, [entry('k/x', '{')], { nowMs: Date.now() }), /key "k\/x": the value is not JSON/);
      assert.equal(store.revision(), r.revision);
    });
  });

  it('in batches: a write that beats a batch makes the rest plan again, and the end state is the snapshot', async () => {
    await withStore(async (store) => {
      await store.txn({ success: Array.from({ length: 10 }, (_, i) => ({ type: 'put' as const, key: `k/${i}`, value: kv('old') })) });
      let intruded = false;
      const unsubscribe = store.subscribe(() => {
        if (intruded) return;
        intruded = true;
        // Lands between the first batch and the last, on a key the last one writes.
        void store.txn({ success: [{ type: 'put', key: 'k/9', value: kv('intruder') }, { type: 'put', key: 'k/extra', value: kv('x') }] });
      });
      const r = await restoreInBatches(store, Array.from({ length: 10 }, (_, i) => entry(`k/${i}`, kv('new'))), { nowMs: Date.now(), maxOps: 3, maxBytes: 1 << 20 });
      unsubscribe();
      assert.ok(intruded);
      assert.deepEqual(store.range('').map((e) => [e.key, e.value]), Array.from({ length: 10 }, (_, i) => [`k/${i}`, kv('new')]));
      assert.equal(r.deleted, 1, 'the key written meanwhile is not in the snapshot: deleted');
      assert.equal(r.written, 10);
      assert.ok(r.transactions >= 5, `${r.transactions} transactions: 4 batches of at most 3, one lost, then the rest again`);
    });
  });

  it('gives restored sessions a fresh TTL deadline (2×TTL from now), never an earlier one', async () => {
    await withStore(async (store) => {
      const session = (id: string, ttl: string): string => JSON.stringify({ ID: id, Name: '', Node: 'n1', LockDelay: 15e9, Behavior: 'release', TTL: ttl, NodeChecks: ['serfHealth'], ServiceChecks: null });
      const now = 1_800_000_000_000;
      await restoreEntries(store, [
        entry('sess/old', session('old', '10s')), entry('sttl/old', JSON.stringify({ Expires: 1000 })),
        entry('sess/later', session('later', '10s')), entry('sttl/later', JSON.stringify({ Expires: now + 3_600_000 })),
      ], { nowMs: now });
      assert.deepEqual(JSON.parse(store.get('sttl/old')!.value), { Expires: now + 20_000 });
      assert.deepEqual(JSON.parse(store.get('sttl/later')!.value), { Expires: now + 3_600_000 });
    });
  });
});
