// EmbeddedStore: the Store contract, then durability, recovery, compaction, visibility and locking on real data directories.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SwitchyardError } from '../../src/core/errors.js';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import type { CommitTiming, EmbeddedStoreLogger, EmbeddedStoreOptions } from '../../src/registry/store/embedded.js';
import type { StoreEntry, StoreOp, TxnRequest, TxnResult } from '../../src/registry/store/types.js';
import { FRAME_HEADER_BYTES, scanFrames } from '../../src/registry/store/wal.js';
import { runStoreContract } from '../contract/store.contract.js';

/** open() promises every entry, in no particular order. */
function byKey(entries: readonly StoreEntry[]): StoreEntry[] {
  return [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const silent: EmbeddedStoreLogger = { warn: () => undefined, info: () => undefined };

interface Logged {
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

function captureLogger(): { logger: EmbeddedStoreLogger; warns: Logged[] } {
  const warns: Logged[] = [];
  return { warns, logger: { warn: (obj, msg) => warns.push({ obj: obj as Record<string, unknown>, msg }), info: () => undefined } };
}

const tempDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'sy-store-'));

function contractFixture(opts: Omit<EmbeddedStoreOptions, 'dir'>) {
  return async () => {
    const dir = await tempDir();
    const store = new EmbeddedStore({ logger: silent, ...opts, dir });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  };
}

runStoreContract('EmbeddedStore', contractFixture({}));
// Rotation and snapshots every few records, so every contract case also runs across compactions.
runStoreContract('EmbeddedStore (sync none, tiny snapshots)', contractFixture({ sync: 'none', snapshotEveryBytes: 300 }));

const isStoreError = (code: string, ...mentions: string[]) => (err: unknown): boolean => {
  assert.ok(err instanceof SwitchyardError, `expected a SwitchyardError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const m of mentions) assert.ok(err.message.includes(m), `message ${JSON.stringify(err.message)} should mention ${m}`);
  return true;
};

const walFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => /^wal-\d{16}\.log$/.test(n)).sort();
const snapshotFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => /^snapshot-\d{16}\.snap$/.test(n)).sort();

/** Puts, overwrites, deletes and prefix deletes, 16 transactions in flight at a time. */
async function workload(store: EmbeddedStore, from: number, count: number): Promise<void> {
  const request = (i: number): TxnRequest => {
    if (i % 25 === 24) return { success: [{ type: 'deletePrefix', prefix: `svc/${i % 3}/` }] };
    if (i % 7 === 3) return { success: [{ type: 'delete', key: `svc/${i % 3}/${i % 13}` }] };
    return {
      compare: [{ key: `svc/${i % 3}/${i % 13}`, target: 'exists', equals: false }],
      success: [{ type: 'put', key: `svc/${i % 3}/${i % 13}`, value: `new ${i}` }],
      failure: [{ type: 'put', key: `svc/${i % 3}/${i % 13}`, value: `v${i} ${'x'.repeat(i % 50)}` }, { type: 'put', key: `other/${i % 5}`, value: String(i) }],
    };
  };
  for (let i = from; i < from + count; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, from + count - i) }, (_, j) => store.txn(request(i + j))));
  }
}

describe('EmbeddedStore', () => {
  const dirs: string[] = [];
  const stores: EmbeddedStore[] = [];

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  const newDir = async (): Promise<string> => {
    const dir = await tempDir();
    dirs.push(dir);
    return dir;
  };
  const make = (opts: EmbeddedStoreOptions): EmbeddedStore => {
    const store = new EmbeddedStore({ logger: silent, ...opts });
    stores.push(store);
    return store;
  };
  const reopen = async (opts: EmbeddedStoreOptions) => {
    const store = make(opts);
    const opened = await store.open();
    return { store, opened };
  };
  const put = (store: EmbeddedStore, key: string, value: string): Promise<TxnResult> => store.txn({ success: [{ type: 'put', key, value }] });


  describe('commit timing (onCommit)', () => {
    it('reports each group commit once: its disk time, and every write of it, none shorter than the disk work it waited for', async () => {
      const timings: CommitTiming[] = [];
      const { store } = await reopen({ dir: await newDir(), sync: 'always', onCommit: (t) => timings.push(t) });
      await put(store, 'a', '1');
      // Issued in one turn: one group commit (or two: the first may already be on its way when the others queue).
      await Promise.all([put(store, 'b', '1'), put(store, 'c', '1'), store.txn({ success: [{ type: 'delete', key: 'a' }] })]);
      // A no-op behind nothing pending is answered at once, not in a batch.
      await store.txn({ success: [{ type: 'delete', key: 'nope' }] });
      assert.equal(timings.reduce((n, t) => n + t.txnSeconds.length, 0), 4, JSON.stringify(timings));
      for (const t of timings) {
        const disk = t.diskSeconds;
        assert.ok(disk !== undefined && disk > 0, `a synced commit takes time: ${disk}`);
        for (const w of t.txnSeconds) assert.ok(w >= disk, `a write waits at least for its batch's disk work: ${w} < ${disk}`);
      }
      // A no-op decided while a commit is on its way waits for the next batch, which then writes nothing.
      timings.length = 0;
      const first = put(store, 'd', '1');
      await new Promise((r) => setImmediate(r));
      const noop = store.txn({ success: [{ type: 'delete', key: 'nope' }] });
      await Promise.all([first, noop]);
      assert.deepEqual(timings.map((t) => [t.diskSeconds === undefined, t.txnSeconds.length]), [[false, 1], [true, 1]], 'no disk time for a batch that wrote nothing');
    });

    it('an observer that throws costs a warning, not a write', async () => {
      const { logger, warns } = captureLogger();
      const { store } = await reopen({ dir: await newDir(), sync: 'none', logger, onCommit: () => {
        throw new Error('observer broke');
      } });
      assert.equal((await put(store, 'a', '1')).revision, 1);
      assert.equal((await put(store, 'b', '1')).revision, 2);
      assert.equal(store.get('b')?.value, '1');
      assert.deepEqual(warns.map((w) => [w.msg, w.obj.err]), [['store commit observer failed', 'observer broke'], ['store commit observer failed', 'observer broke']]);
    });
  });

  describe('writes decided on top of writes not yet durable', () => {
    it('a delete, put and delete of one key in flight at once: later writes see the last, and nothing stale remains once durable', async () => {
      const { store } = await reopen({ dir: await newDir(), sync: 'none' });
      await put(store, 'x', '1');
      // Issued in one turn: all are evaluated before any is durable, then published one by one.
      const del = store.txn({ success: [{ type: 'delete', key: 'x' }] });
      const again = put(store, 'x', '2');
      const delAgain = store.txn({ success: [{ type: 'delete', key: 'x' }] });
      const guarded = store.txn({ compare: [{ key: 'x', target: 'exists', equals: false }], success: [{ type: 'put', key: 'y', value: 'x-gone' }] });
      assert.equal(store.get('x')?.value, '1', 'nothing published before the group commit');
      const results = await Promise.all([del, again, delAgain, guarded]);
      assert.ok(results.every((r) => r.succeeded));
      assert.equal(store.get('x'), undefined);
      assert.equal(store.get('y')?.value, 'x-gone');
      // Once durable, the pending state is the published one: guards see x absent, and a put creates it afresh.
      assert.equal((await store.txn({ compare: [{ key: 'x', target: 'exists', equals: true }], success: [{ type: 'put', key: 'z', value: '' }] })).succeeded, false);
      const created = await put(store, 'x', '3');
      assert.equal(store.get('x')?.createRevision, created.revision, 'a new key, not a later version of the deleted one');
      assert.equal(store.get('x')?.version, 1);
    });

    it('a write decided while one group commit is durable and the next is not sees the pending one', async () => {
      const { store } = await reopen({ dir: await newDir(), sync: 'none' });
      await put(store, 'x', '1');
      const first = put(store, 'x', '2');
      // The first group commit is being written; this delete waits for the next one.
      await new Promise((r) => setImmediate(r));
      const second = store.txn({ success: [{ type: 'delete', key: 'x' }] });
      await first;
      assert.equal(store.get('x')?.value, '2', 'the first commit is published, the second not yet');
      const guarded = store.txn({ compare: [{ key: 'x', target: 'exists', equals: false }], success: [{ type: 'put', key: 'y', value: '' }] });
      await second;
      assert.equal((await guarded).succeeded, true, 'the pending delete is what later writes are decided on');
      assert.equal(store.get('x'), undefined);
    });

    it('deletePrefix removes a key that exists only in a write not yet durable', async () => {
      const { store } = await reopen({ dir: await newDir(), sync: 'none' });
      await put(store, 'a/1', '1');
      const pending = put(store, 'a/2', '2');
      const wipe = store.txn({ success: [{ type: 'deletePrefix', prefix: 'a/' }] });
      const keep = put(store, 'b/1', '1');
      await Promise.all([pending, wipe, keep]);
      assert.deepEqual(store.range('a/'), []);
      assert.deepEqual(store.range('').map((e) => e.key), ['b/1']);
    });
  });
  describe('persistence', () => {
    it('reopening after close keeps every entry and the revision', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      await workload(store, 0, 300);
      const entries = store.range('');
      const revision = store.revision();
      assert.ok(entries.length > 10, `the workload leaves entries behind (${entries.length})`);
      await store.close();

      const again = await reopen({ dir });
      assert.equal(again.opened.revision, revision);
      assert.deepEqual(byKey(again.opened.entries), entries);
      assert.deepEqual(again.store.range(''), entries);
      const existing = entries[0] as StoreEntry;
      const res = await put(again.store, existing.key, 'after reopen');
      assert.equal(res.revision, revision + 1);
      assert.deepEqual(again.store.get(existing.key), {
        key: existing.key, value: 'after reopen', createRevision: existing.createRevision, modRevision: revision + 1, version: existing.version + 1,
      });
    });

    it('open() on an empty directory creates it and starts at revision 0', async () => {
      const dir = join(await newDir(), 'nested', 'data');
      const { opened } = await reopen({ dir });
      assert.deepEqual(opened, { revision: 0, entries: [] });
    });

    it('txn before open rejects; open after close rejects; close before open is fine', async () => {
      const dir = await newDir();
      const store = make({ dir });
      await assert.rejects(store.txn({ success: [] }), isStoreError('SY_ERR_STORE_CLOSED'));
      await store.close();
      await assert.rejects(store.open(), isStoreError('SY_ERR_STORE_CLOSED'));
    });

    it('sync none still writes before acknowledging', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir, sync: 'none' });
      await workload(store, 0, 100);
      const entries = store.range('');
      await store.close();
      assert.deepEqual(byKey((await reopen({ dir })).opened.entries), entries);
    });
  });

  describe('snapshots and compaction', () => {
    it('snapshots past the threshold, deletes the WAL it replaces, and reopens to the same state', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir, snapshotEveryBytes: 4096 });
      await workload(store, 0, 600);
      const entries = store.range('');
      const revision = store.revision();
      await store.close();
      const snaps = await snapshotFiles(dir);
      const wals = await walFiles(dir);
      assert.equal(snaps.length, 1, `one snapshot left, got ${snaps.join(', ')}`);
      assert.equal(wals.length, 1, `one WAL segment left, got ${wals.join(', ')}`);
      const snapRevision = Number(/(\d{16})/.exec(snaps[0] as string)?.[1]);
      assert.ok(snapRevision > 0 && snapRevision <= revision, `snapshot revision ${snapRevision} within 1..${revision}`);
      assert.equal(Number(/(\d{16})/.exec(wals[0] as string)?.[1]), snapRevision + 1, 'the live segment starts right after the snapshot');

      const again = await reopen({ dir, snapshotEveryBytes: 4096 });
      assert.equal(again.opened.revision, revision);
      assert.deepEqual(byKey(again.opened.entries), entries);
      assert.equal(again.store.stats().snapshotRevision, snapRevision);
      assert.equal((await put(again.store, 'z', '1')).revision, revision + 1);
    });

    it('reopened on a large snapshot it serves at once, building its key map meanwhile: writes, deletes and reads in that window are exact', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir, snapshotEveryBytes: 256 * 1024 });
      const model = new Map<string, string>();
      /** The revision of each batch of 1,000 puts (instance i is in batch i div 1000). */
      const batchRevision: number[] = [];
      for (let b = 0; b < 120; b++) {
        const success: StoreOp[] = [];
        for (let i = 0; i < 1000; i++) {
          const key = `s/n-${i % 97}/i-${b * 1000 + i}`;
          success.push({ type: 'put', key, value: `v${b}.${i}` });
          model.set(key, `v${b}.${i}`);
        }
        batchRevision[b] = (await store.txn({ success })).revision;
      }
      await store.close();
      assert.equal((await snapshotFiles(dir)).length, 1);

      const { store: again } = await reopen({ dir, sync: 'none', snapshotEveryBytes: 256 * 1024 });
      assert.equal(again.stats()['keyIndex'], 'building', 'the key map is built after open');
      // Keys the snapshot holds (the log's are in the map from the start), last in key order first: the map
      // is built in key order, so those are the ones it reaches last.
      const snapRevision = again.stats()['snapshotRevision'] as number;
      const inSnapshot = [...model.keys()].filter((k) => (batchRevision[Math.floor(Number(k.split('/i-')[1]) / 1000)] ?? Infinity) <= snapRevision);
      assert.ok(inSnapshot.length >= 50_000, `${inSnapshot.length} keys in the snapshot`);
      const keys = inSnapshot.sort().slice(-600).reverse();
      let duringBuild = 0;
      for (let i = 0; i < keys.length; i += 6) {
        if (again.stats()['keyIndex'] === 'building') duringBuild++;
        await Promise.all(keys.slice(i, i + 6).map(async (key, j) => {
          const n = i + j;
          if (n % 3 === 0) {
            await again.txn({ success: [{ type: 'delete', key }] });
            model.delete(key);
          } else if (n % 3 === 1) {
            // Only if absent: a key of the snapshot must be seen as present while it is not yet in the map.
            const r = await again.txn({ compare: [{ key, target: 'exists', equals: false }], success: [{ type: 'put', key, value: 'created' }], failure: [{ type: 'put', key, value: `over ${n}` }] });
            model.set(key, r.succeeded ? 'created' : `over ${n}`);
          } else {
            await again.txn({ success: [{ type: 'put', key: `new/${n}`, value: String(n) }, { type: 'put', key, value: `put ${n}` }] });
            model.set(`new/${n}`, String(n));
            model.set(key, `put ${n}`);
          }
          assert.equal(again.get(key)?.value, model.get(key), `get ${key} after write ${n}`);
        }));
      }
      assert.ok(duringBuild >= 3, `${duringBuild} rounds of writes ran while the key map was being built`);
      for (let i = 0; i < 500 && again.stats()['keyIndex'] !== 'ready'; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(again.stats()['keyIndex'], 'ready');
      const expected = [...model].sort(([a], [b]) => (a < b ? -1 : 1));
      assert.deepEqual(again.range('').map((e) => [e.key, e.value]), expected);
      assert.equal(again.stats().keys, model.size);
      await again.close();
      const third = await reopen({ dir, snapshotEveryBytes: 256 * 1024 });
      assert.deepEqual(byKey(third.opened.entries).map((e) => [e.key, e.value]), expected);
    });

    it('recovers from a crash at any step of a snapshot (leftover temp file, old segment, old snapshot)', async () => {
      const dir = await newDir();
      const side = await newDir();
      const first = await reopen({ dir });
      await workload(first.store, 0, 100);
      await first.store.close();
      const [oldWal] = await walFiles(dir);
      await copyFile(join(dir, oldWal as string), join(side, oldWal as string));

      const second = await reopen({ dir, snapshotEveryBytes: 4096 });
      await workload(second.store, 100, 300);
      await second.store.close();
      const [oldSnap] = await snapshotFiles(dir);
      await copyFile(join(dir, oldSnap as string), join(side, oldSnap as string));

      const third = await reopen({ dir, snapshotEveryBytes: 4096 });
      await workload(third.store, 400, 300);
      const entries = third.store.range('');
      const revision = third.store.revision();
      await third.store.close();
      assert.notEqual((await snapshotFiles(dir))[0], oldSnap, 'a newer snapshot replaced the old one');

      // What a crash before the deletions (and during a snapshot write) leaves behind.
      await copyFile(join(side, oldWal as string), join(dir, oldWal as string));
      await copyFile(join(side, oldSnap as string), join(dir, oldSnap as string));
      await writeFile(join(dir, 'snapshot-0000000099999999.snap.tmp'), 'half a snapsh');

      const { store, opened } = await reopen({ dir, snapshotEveryBytes: 4096 });
      assert.equal(opened.revision, revision);
      assert.deepEqual(byKey(opened.entries), entries);
      const files = await readdir(dir);
      assert.ok(!files.includes(oldWal as string), 'the redundant segment is removed');
      assert.ok(!files.includes(oldSnap as string), 'the older snapshot is removed');
      assert.ok(!files.some((f) => f.endsWith('.tmp')), 'the temp file is removed');
      await workload(store, 700, 50);
    });

    it('refuses to start from nothing when the only snapshot is damaged', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir, snapshotEveryBytes: 2048 });
      await workload(store, 0, 300);
      await store.close();
      const [snap] = await snapshotFiles(dir);
      const path = join(dir, snap as string);
      const bytes = await readFile(path);
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0xff;
      await writeFile(path, bytes);
      const { logger, warns } = captureLogger();
      await assert.rejects(make({ dir, logger }).open(), isStoreError('SY_ERR_STORE_CORRUPT'));
      assert.ok(warns.some((w) => w.msg.includes(snap as string)), 'the unreadable snapshot is reported');
      assert.deepEqual(await readFile(path), bytes, 'nothing on disk changes when recovery refuses');
    });
  });

  describe('damaged WAL', () => {
    /** n sequential puts k/0..k/{n-1}, one record each; returns the segment path, its bytes and its frames. */
    async function logOf(n: number) {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      for (let i = 0; i < n; i++) await put(store, `k/${i}`, `v${i}`);
      await store.close();
      const [name] = await walFiles(dir);
      const path = join(dir, name as string);
      const bytes = await readFile(path);
      const scan = scanFrames(bytes);
      assert.equal(scan.frames.length, n);
      return { dir, name: name as string, path, bytes, frames: scan.frames };
    }

    const sideFiles = async (dir: string, name: string): Promise<string[]> =>
      (await readdir(dir)).filter((f) => f.startsWith(`${name}.corrupt-`));

    it('a torn last record is dropped, logged and kept aside; writing resumes after it', async () => {
      const { dir, name, path, bytes, frames } = await logOf(20);
      const last = frames[19] as { offset: number };
      const cut = last.offset + Math.floor((bytes.length - last.offset) / 2);
      await truncate(path, cut);

      const { logger, warns } = captureLogger();
      const { store, opened } = await reopen({ dir, logger });
      assert.equal(opened.revision, 19);
      assert.equal(store.get('k/19'), undefined);
      assert.equal(store.get('k/18')?.value, 'v18');
      assert.equal(opened.entries.length, 19);

      assert.equal(warns.length, 1, JSON.stringify(warns));
      const warn = warns[0] as Logged;
      assert.equal(warn.obj['file'], path);
      assert.equal(warn.obj['offset'], last.offset);
      assert.equal(warn.obj['droppedBytes'], cut - last.offset);
      assert.equal(warn.obj['droppedRecords'], 1);
      assert.ok(warn.msg.includes(path) && warn.msg.includes(`${cut - last.offset} bytes`) && warn.msg.includes('1 damaged record'), warn.msg);
      const side = await sideFiles(dir, name);
      assert.equal(side.length, 1);
      assert.equal(warn.obj['savedTo'], join(dir, side[0] as string));
      assert.deepEqual(await readFile(join(dir, side[0] as string)), bytes.subarray(last.offset, cut));
      assert.equal((await stat(path)).size, last.offset);

      assert.equal((await put(store, 'k/19', 'again')).revision, 20);
      await store.close();
      const quiet = captureLogger();
      const again = await reopen({ dir, logger: quiet.logger });
      assert.equal(again.opened.revision, 20);
      assert.equal(again.store.get('k/19')?.value, 'again');
      assert.deepEqual(quiet.warns, []);
    });

    it('a last record failing its checksum is dropped, logged and kept aside', async () => {
      const { dir, name, path, bytes, frames } = await logOf(20);
      const last = frames[19] as { offset: number };
      bytes[last.offset + FRAME_HEADER_BYTES + 4] = (bytes[last.offset + FRAME_HEADER_BYTES + 4] as number) ^ 0x01;
      await writeFile(path, bytes);

      const { logger, warns } = captureLogger();
      const { store, opened } = await reopen({ dir, logger });
      assert.equal(opened.revision, 19);
      assert.equal(store.get('k/19'), undefined);
      assert.equal(warns.length, 1);
      const warn = warns[0] as Logged;
      assert.equal(warn.obj['droppedRecords'], 1);
      assert.equal(warn.obj['droppedBytes'], bytes.length - last.offset);
      assert.match(String(warn.obj['reason']), /checksum/);
      const side = await sideFiles(dir, name);
      assert.equal(side.length, 1);
      assert.deepEqual(await readFile(join(dir, side[0] as string)), bytes.subarray(last.offset));
    });

    it('zero-filled space after the last record is dropped as a tail', async () => {
      const { dir, path, bytes } = await logOf(5);
      await writeFile(path, Buffer.concat([bytes, Buffer.alloc(4096)]));
      const { logger, warns } = captureLogger();
      const { opened } = await reopen({ dir, logger });
      assert.equal(opened.revision, 5);
      assert.equal(warns.length, 1);
      assert.equal(warns[0]?.obj['droppedBytes'], 4096);
    });

    it('a damaged record followed by intact ones refuses to open, naming file and offset, and changes nothing', async () => {
      const { dir, name, path, bytes, frames } = await logOf(20);
      const victim = frames[10] as { offset: number };
      bytes[victim.offset + FRAME_HEADER_BYTES + 2] = (bytes[victim.offset + FRAME_HEADER_BYTES + 2] as number) ^ 0x40;
      await writeFile(path, bytes);

      for (let attempt = 0; attempt < 2; attempt++) {
        const { logger, warns } = captureLogger();
        await assert.rejects(make({ dir, logger }).open(), isStoreError('SY_ERR_STORE_CORRUPT', path, `offset ${victim.offset}`));
        assert.deepEqual(warns, []);
      }
      assert.deepEqual(await readFile(path), bytes);
      assert.deepEqual(await sideFiles(dir, name), []);
      assert.ok(!(await readdir(dir)).includes('LOCK'), 'a failed open releases the lock');
    });

    it('a damaged length field in the middle refuses to open too', async () => {
      const { dir, path, bytes, frames } = await logOf(20);
      const victim = frames[7] as { offset: number };
      bytes.writeUInt32LE(0x7ffffff0, victim.offset);
      await writeFile(path, bytes);
      await assert.rejects(make({ dir }).open(), isStoreError('SY_ERR_STORE_CORRUPT', path, `offset ${victim.offset}`));
    });
  });

  describe('kill -9', () => {
    const fixture = fileURLToPath(new URL('../fixtures/embedded-store-writer.ts', import.meta.url));
    const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

    /** Runs the writer child, SIGKILLs it after `killAfter` acknowledgements, returns every acknowledgement it printed. */
    async function killMidStream(dir: string, args: string[], killAfter: number): Promise<Map<number, number>> {
      const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      const acks = new Map<number, number>();
      let stderr = '';
      let pending = '';
      let killed = false;
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const m = /^ack (\d+) (\d+)$/.exec(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          if (m) acks.set(Number(m[1]), Number(m[2]));
        }
        if (!killed && acks.size >= killAfter) {
          killed = true;
          child.kill('SIGKILL');
        }
      });
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      assert.equal(signal, 'SIGKILL', `writer exited on its own (code ${String(code)}): ${stderr}`);
      return acks;
    }

    const variants = [
      { label: 'default snapshots', args: ['8'], snapshots: false },
      { label: 'a snapshot every few records', args: ['8', '8192'], snapshots: true },
    ];
    for (const variant of variants) {
      it(`every acknowledged write survives a SIGKILL mid-stream (${variant.label})`, async () => {
        const dir = await newDir();
        const acks = await killMidStream(dir, variant.args, 400);
        assert.ok(acks.size >= 400, `${acks.size} acknowledgements`);
        if (variant.snapshots) assert.ok((await snapshotFiles(dir)).length > 0, 'the writer was killed after compacting at least once');

        const { store, opened } = await reopen({ dir });
        const maxAcked = Math.max(...acks.values());
        assert.ok(opened.revision >= maxAcked, `recovered revision ${opened.revision} < acknowledged ${maxAcked}`);
        for (const [i, revision] of acks) {
          assert.deepEqual(store.get(`k/${i}`), { key: `k/${i}`, value: `v${i}`, createRevision: revision, modRevision: revision, version: 1 }, `k/${i}`);
        }
        // Each transaction wrote one k/ key and `last` together: no transaction survives in part.
        const written = store.range('k/');
        assert.equal(written.length, opened.revision);
        assert.deepEqual(written.map((e) => e.modRevision).sort((a, b) => a - b), Array.from({ length: opened.revision }, (_, i) => i + 1));
        assert.equal(store.get('last')?.modRevision, opened.revision);
        assert.equal((await put(store, 'after', 'crash')).revision, opened.revision + 1);
      });
    }
  });

  describe('serialisation and visibility', () => {
    it('compares see earlier transactions that are not durable yet, in call order', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      const order: string[] = [];
      const track = (name: string, p: Promise<TxnResult>) => p.then((r) => {
        order.push(name);
        return r;
      });
      const p1 = track('put', put(store, 'a', '1'));
      const p2 = track('cas', store.txn({ compare: [{ key: 'a', target: 'modRevision', equals: 1 }], success: [{ type: 'put', key: 'a', value: '2' }] }));
      const p3 = track('noop', store.txn({ compare: [{ key: 'a', target: 'exists', equals: false }], success: [{ type: 'put', key: 'a', value: '3' }] }));
      assert.deepEqual(await Promise.all([p1, p2, p3]), [{ succeeded: true, revision: 1 }, { succeeded: true, revision: 2 }, { succeeded: false, revision: 2 }]);
      assert.deepEqual(order, ['put', 'cas', 'noop'], 'a no-op decided on pending writes is not acknowledged before them');
      assert.equal(store.get('a')?.value, '2');
    });

    it('get, range and revision show a transaction only once it is durable and delivered', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      const pending = put(store, 'a/1', 'x');
      assert.equal(store.get('a/1'), undefined);
      assert.deepEqual(store.range('a/'), []);
      assert.equal(store.revision(), 0);
      await pending;
      assert.equal(store.get('a/1')?.value, 'x');
      assert.equal(store.revision(), 1);
    });

    it('listeners run before the txn resolves and see the store as of their change', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      const seen: { revision: number; storeRevision: number; value: string | undefined }[] = [];
      store.subscribe((c) => seen.push({ revision: c.revision, storeRevision: store.revision(), value: store.get(c.events[0]?.key ?? '')?.value }));
      const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const res = await put(store, `k/${i}`, String(i));
        assert.ok(seen.some((s) => s.revision === res.revision), 'delivered before resolving');
        return res;
      }));
      assert.equal(seen.length, 20);
      for (const s of seen) assert.equal(s.storeRevision, s.revision);
      assert.deepEqual(seen.map((s) => s.value), results.map((_, i) => String(i)));
    });

    it('a throwing listener is logged and does not stop other listeners or the txn', async () => {
      const dir = await newDir();
      const { logger, warns } = captureLogger();
      const { store } = await reopen({ dir, logger });
      const got: number[] = [];
      store.subscribe(() => {
        throw new Error('listener bug');
      });
      store.subscribe((c) => got.push(c.revision));
      assert.equal((await put(store, 'a', '1')).revision, 1);
      assert.deepEqual(got, [1]);
      assert.ok(warns.some((w) => w.obj['err'] === 'listener bug'), JSON.stringify(warns));
    });

    it('rejects malformed requests with SY_ERR_INVALID_ARGUMENT and changes nothing', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      await put(store, 'a', '1');
      const bad: unknown[] = [
        { success: [{ type: 'put', key: '', value: 'x' }] },
        { success: [{ type: 'put', key: 'b', value: 1 }] },
        { success: [{ type: 'put', key: 'ok', value: 'x' }, { type: 'upsert', key: 'b', value: 'x' }] },
        { success: 'nope' },
        { compare: [{ key: 'a', target: 'value', equals: '1' }], success: [] },
        { compare: [{ key: 'a', target: 'modRevision', equals: -1 }], success: [] },
      ];
      for (const req of bad) await assert.rejects(store.txn(req as TxnRequest), isStoreError('SY_ERR_INVALID_ARGUMENT'));
      assert.equal(store.revision(), 1);
      assert.equal(store.get('ok'), undefined);
      assert.equal((await put(store, 'c', '1')).revision, 2);
    });

    it('a failed WAL write refuses the batch and writes until a repair, publishes nothing, then takes writes again without a restart', async () => {
      const dir = await newDir();
      const { logger, warns } = captureLogger();
      const { store } = await reopen({ dir, logger });
      await put(store, 'a', '1');
      // Stands in for EIO/ENOSPC on this file handle: the repair reopens the segment, and the new handle writes.
      const internals = store as unknown as { wal: { append(buf: Buffer): Promise<void> } };
      internals.wal.append = () => Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
      const flips: [boolean, string | undefined][] = [];
      let backUp!: () => void;
      const writableAgain = new Promise<void>((resolve) => (backUp = resolve));
      store.onWritability((w, reason) => {
        flips.push([w, reason]);
        if (w) backUp();
      });
      const seen: number[] = [];
      store.subscribe((c) => seen.push(c.revision));
      const settled = await Promise.allSettled([put(store, 'b', '1'), put(store, 'c', '1')]);
      for (const s of settled) {
        assert.equal(s.status, 'rejected');
        if (s.status === 'rejected') isStoreError('SY_ERR_STORE_UNAVAILABLE', 'EIO', 'nothing was applied')(s.reason);
      }
      assert.equal(store.writable(), false);
      // Until the repair has run (its first try is 100 ms away), writes are refused at once.
      await assert.rejects(put(store, 'd', '1'), isStoreError('SY_ERR_STORE_UNAVAILABLE'));
      assert.deepEqual(seen, []);
      assert.equal(store.get('b'), undefined);
      assert.equal(store.revision(), 1);
      assert.equal(warns.filter((w) => w.msg.startsWith('store unwritable')).length, 1, JSON.stringify(warns));
      await writableAgain;
      assert.deepEqual(flips, [[false, 'EIO: i/o error, write'], [true, undefined]]);
      assert.equal((await put(store, 'e', '1')).revision, 2, 'refused writes consumed no revision');
      assert.deepEqual(seen, [2]);
      await store.close();
      const again = await reopen({ dir });
      assert.equal(again.opened.revision, 2);
      assert.deepEqual(byKey(again.opened.entries).map((e) => e.key), ['a', 'e']);
    });

    it('ops in one transaction apply in order', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      await put(store, 's/old', '1');
      const ops: StoreOp[] = [{ type: 'deletePrefix', prefix: 's/' }, { type: 'put', key: 's/new', value: '2' }];
      await store.txn({ success: ops });
      assert.deepEqual(store.range('s/').map((e) => e.key), ['s/new']);
      await store.close();
      const again = await reopen({ dir });
      assert.deepEqual(again.store.range('s/').map((e) => e.key), ['s/new']);
    });
  });

  describe('lock', () => {
    it('a second store on the same directory is refused, naming the directory and the holder', async () => {
      const dir = await newDir();
      const { store } = await reopen({ dir });
      await assert.rejects(make({ dir }).open(), isStoreError('SY_ERR_STORE_IO', dir, String(process.pid)));
      await store.close();
      assert.ok(!(await readdir(dir)).includes('LOCK'), 'close releases the lock');
      await reopen({ dir });
    });

    it('a lock left by a process that is gone is taken over', async () => {
      const dir = await newDir();
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      assert.ok(dead !== undefined && dead > 0, 'a pid for the finished child');
      await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: dead, token: 'old' }));
      const { logger, warns } = captureLogger();
      await reopen({ dir, logger });
      assert.ok(warns.some((w) => w.obj['pid'] === dead && w.msg.includes('stale lock')), JSON.stringify(warns));
    });

    describe('a lock whose PID now belongs to an unrelated process (after a reboot, or reused) is taken over', () => {
      let other: ReturnType<typeof spawn> | undefined;
      afterEach(() => {
        other?.kill('SIGKILL');
        other = undefined;
      });
      const unrelated = async (): Promise<number> => {
        other = spawn('sleep', ['60'], { stdio: 'ignore' });
        await once(other, 'spawn');
        return other.pid as number;
      };
      const bootId = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      const cases: [string, (pid: number) => Record<string, unknown>, RegExp][] = [
        ['same boot, another start time (the PID was reused)', (pid) => ({ pid, token: 'old', boot: bootId(), start: '1', cmd: 'node switchyard agent' }), /its PID now belongs to another process: sleep 60/],
        ['recorded before the last boot', (pid) => ({ pid, token: 'old', boot: 'another-boot', start: '1' }), /ran before the machine last booted/],
        ['an older LOCK without a start time, the PID now running something that is not node', (pid) => ({ pid, token: 'old' }), /its PID now belongs to sleep 60/],
      ];
      for (const [name, lock, why] of cases) {
        it(name, { skip: !existsSync('/proc/self/stat') && process.env['CI'] !== 'true' && 'no /proc here' }, async () => {
          const dir = await newDir();
          const pid = await unrelated();
          await writeFile(join(dir, 'LOCK'), JSON.stringify(lock(pid)));
          const { logger, warns } = captureLogger();
          const { store } = await reopen({ dir, logger });
          const took = warns.find((w) => w.obj['pid'] === pid && w.msg.includes('stale lock'));
          assert.ok(took, JSON.stringify(warns));
          assert.match(took.msg, why);
          const lockNow = JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')) as { pid: number };
          assert.equal(lockNow.pid, process.pid, 'the lock is ours now');
          await store.close();
        });
      }
    });

    it('a lock held by a live process is refused, naming its PID and command line', async () => {
      const dir = await newDir();
      const holder = `const { EmbeddedStore } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/registry/store/embedded.ts', import.meta.url)))});
        await new EmbeddedStore({ dir: ${JSON.stringify(dir)} }).open(); process.stdout.write('holding\\n'); setInterval(() => undefined, 1000);`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holder], { stdio: ['ignore', 'pipe', 'inherit'] });
      try {
        await once(child.stdout!, 'data');
        await assert.rejects(make({ dir }).open(), isStoreError('SY_ERR_STORE_IO', dir, `locked by process ${child.pid} (`, '--input-type=module', '--data-dir'));
      } finally {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    });
  });
});
