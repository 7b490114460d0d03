// Frames read from a file in pieces (forEachFrame) against the whole-buffer scan (scanFrames), and snapshot
// files written and read back through them.
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { readSnapshotFile, writeSnapshotFile } from '../../src/registry/store/snapshot-file.js';
import type { StoreEntry } from '../../src/registry/store/types.js';
import { FRAME_HEADER_BYTES, encodeFrames, forEachFrame, scanFrames } from '../../src/registry/store/wal.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sy-frames-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What forEachFrame saw, in scanFrames' terms (payloads copied: they are views into a reused buffer). */
async function streamed(path: string, readBytes: number): Promise<{ frames: { offset: number; payload: string }[]; end: number; badReason?: string }> {
  const frames: { offset: number; payload: string }[] = [];
  const scan = await forEachFrame(path, (f) => frames.push({ offset: f.offset, payload: f.payload.toString('latin1') }), readBytes);
  return { frames, ...scan };
}

function scanned(buf: Buffer): { frames: { offset: number; payload: string }[]; end: number; badReason?: string } {
  const scan = scanFrames(buf);
  return { ...scan, frames: scan.frames.map((f) => ({ offset: f.offset, payload: f.payload.toString('latin1') })) };
}

/** A way to damage a framed file: what a torn write, a flipped bit or preallocated space leaves. */
const damage = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('zeros' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 20 }) }),
);

describe('forEachFrame', () => {
  it('sees exactly the frames, end and damage scanFrames sees, whatever the read size (property)', async () => {
    const path = join(dir, 'frames.bin');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ minLength: 1, maxLength: 3000 }), { maxLength: 12 }),
        damage,
        fc.integer({ min: 1, max: 4096 }),
        async (payloads, dmg, readBytes) => {
          let buf = payloads.length > 0 ? encodeFrames(payloads) : Buffer.alloc(0);
          if (dmg.kind === 'truncate') buf = buf.subarray(0, Math.floor(dmg.at * buf.length));
          else if (dmg.kind === 'flip' && buf.length > 0) {
            buf = Buffer.from(buf);
            const i = Math.min(buf.length - 1, Math.floor(dmg.at * buf.length));
            buf[i] = (buf[i] as number) ^ 0x20;
          } else if (dmg.kind === 'zeros') buf = Buffer.concat([buf, Buffer.alloc(dmg.n)]);
          else if (dmg.kind === 'garbage') buf = Buffer.concat([buf, Buffer.from(dmg.bytes)]);
          await writeFile(path, buf);
          assert.deepEqual(await streamed(path, readBytes), scanned(buf));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads a frame larger than its read size, and one that ends exactly at a piece boundary', async () => {
    const path = join(dir, 'big.bin');
    const big = 'x'.repeat(10_000);
    const exact = 'y'.repeat(64 - FRAME_HEADER_BYTES);
    await writeFile(path, encodeFrames([exact, big, exact, 'z']));
    const got = await streamed(path, 64);
    assert.deepEqual(got.frames.map((f) => f.payload.length), [exact.length, big.length, exact.length, 1]);
    assert.equal(got.badReason, undefined);
  });

  it('hands over payloads that are views of one reused buffer (valid during the call only)', async () => {
    const path = join(dir, 'views.bin');
    await writeFile(path, encodeFrames(['first', 'second']));
    const views: Buffer[] = [];
    await forEachFrame(path, (f) => views.push(f.payload), 16);
    assert.equal(views.length, 2);
    assert.equal(views[0]?.buffer, views[1]?.buffer, 'one backing buffer');
  });
});

const entry = (key: string, value: string, rev: number): StoreEntry => ({ key, value, createRevision: rev, modRevision: rev, version: 1 });

describe('snapshot files', () => {
  it('round-trips entries, with frames small enough to decode outside large-object space and big values alone', async () => {
    const entries: StoreEntry[] = [];
    for (let i = 0; i < 5000; i++) entries.push(entry(`s/n-${i % 50}/i-${String(i).padStart(5, '0')}`, JSON.stringify({ Service: `svc-${i % 70}`, Tags: ['a', 'é', '"q"'], Port: i }), i + 1));
    entries.push(entry('s/z/big', JSON.stringify({ blob: 'b'.repeat(200_000) }), 6000));
    entries.push(entry('s/z/zz', '{}', 6001));
    const name = await writeSnapshotFile(dir, 6001, entries);
    const path = join(dir, name);
    const back = await readSnapshotFile(path);
    assert.equal(back.revision, 6001);
    assert.deepEqual(back.entries, entries);
    const scan = scanFrames(await readFile(path));
    assert.equal(scan.badReason, undefined);
    const [, ...chunks] = scan.frames.map((f) => JSON.parse(f.payload.toString('utf8')) as { e: unknown[] });
    for (const [i, f] of scan.frames.slice(1).entries()) {
      const n = chunks[i]?.e.length ?? 0;
      assert.ok(f.payload.length <= 64 * 1024 || n === 1, `frame ${i}: ${f.payload.length} bytes for ${n} entries`);
    }
    assert.ok(chunks.length > 5000 / 1000, `${chunks.length} frames: more than one per 1,000 entries`);
  });

  it('refuses a damaged or short file, saying where and why', async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => entry(`k/${String(i).padStart(5, '0')}`, JSON.stringify({ v: 'x'.repeat(40) }), i + 1));
    const path = join(dir, await writeSnapshotFile(dir, 3000, entries));
    const size = (await readFile(path)).length;
    await truncate(path, size - 10);
    await assert.rejects(readSnapshotFile(path), /^Error: damaged at offset \d+ \(truncated record \(header says \d+ payload bytes, \d+ present\)\)$/);
    await truncate(path, 0);
    await assert.rejects(readSnapshotFile(path), /^Error: empty$/);
    const lying = join(dir, 'lying.snap');
    await writeFile(lying, encodeFrames([JSON.stringify({ v: 1, r: 5, n: 3 }), JSON.stringify({ e: [['a', '{}', 1, 1, 1]] })]));
    await assert.rejects(readSnapshotFile(lying), /^Error: header promises 3 entries, file holds 1$/);
    await writeFile(lying, encodeFrames([JSON.stringify({ v: 1, r: 5, n: 1e15 }), JSON.stringify({ e: [['a', '{}', 1, 1, 1]] })]));
    await assert.rejects(readSnapshotFile(lying), /^Error: header promises 1000000000000000 entries, file holds 1$/);
  });
});
