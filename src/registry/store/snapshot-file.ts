// Snapshot files: framed like the WAL, a header frame {v, r, n} then frames of {e: [[key, value, create, mod, version], ...]}.
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreEntry } from './types.js';
import type { EntrySource } from './memory-state.js';
import { encodeFrames, forEachFrame, fsyncDir, writeAll } from './wal.js';

export const SNAPSHOT_PATTERN = /^snapshot-(\d{16})\.snap$/;
export const SNAPSHOT_TMP_PATTERN = /^snapshot-\d{16}\.snap\.tmp$/;
/**
 * Entries read from the state at a time, and the size a frame's payload stops growing at. A frame
 * is decoded as one string on recovery; above V8's regular object size (128 KiB) that string goes
 * to large-object space, which maps fresh memory for every frame (1,000 entries of a million-instance
 * catalog made 150 KB frames: 0.6 s of page faults in a restart here). 48 KiB keeps a frame of
 * usual entries well below; an entry larger than that travels alone.
 */
const SNAPSHOT_SLICE_ENTRIES = 1000;
const SNAPSHOT_FRAME_CHARS = 48 * 1024;
/** Snapshot bytes gathered before one write. */
const SNAPSHOT_WRITE_BYTES = 1 << 20;

export function snapshotFileName(revision: number): string {
  return `snapshot-${String(revision).padStart(16, '0')}.snap`;
}

/** `entries` in key order: an array, or a pinned state read chunk by chunk between writes. */
export async function writeSnapshotFile(dir: string, revision: number, entries: EntrySource): Promise<string> {
  const name = snapshotFileName(revision);
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    let payloads = [JSON.stringify({ v: 1, r: revision, n: entries.length })];
    let gathered = 0;
    let frame: unknown[] = [];
    let chars = 0;
    const endFrame = (): void => {
      const payload = JSON.stringify({ e: frame });
      payloads.push(payload);
      gathered += payload.length;
      frame = [];
      chars = 0;
    };
    for (let i = 0; i < entries.length; i += SNAPSHOT_SLICE_ENTRIES) {
      for (const e of entries.slice(i, i + SNAPSHOT_SLICE_ENTRIES)) {
        // An estimate (escapes add to it) with room to spare below the 128 KiB that matters.
        const size = e.key.length + e.value.length + 40;
        if (frame.length > 0 && chars + size > SNAPSHOT_FRAME_CHARS) endFrame();
        frame.push([e.key, e.value, e.createRevision, e.modRevision, e.version]);
        chars += size;
      }
      if (gathered >= SNAPSHOT_WRITE_BYTES) {
        await writeAll(fh, encodeFrames(payloads));
        payloads = [];
        gathered = 0;
      }
    }
    if (frame.length > 0) endFrame();
    if (payloads.length > 0) await writeAll(fh, encodeFrames(payloads));
    // Synced even with sync='none': once it is in place the WAL it replaces is deleted.
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
  return name;
}

function isEntryTuple(t: unknown): t is [string, string, number, number, number] {
  return Array.isArray(t) && t.length === 5 && typeof t[0] === 'string' && typeof t[1] === 'string' &&
    Number.isSafeInteger(t[2]) && Number.isSafeInteger(t[3]) && Number.isSafeInteger(t[4]);
}

/** Frames after the header stream through `forEachFrame`: the file is never held whole (see there). */
export async function readSnapshotFile(path: string): Promise<{ revision: number; entries: StoreEntry[] }> {
  let header: { r: number; n: number } | undefined;
  let entries: StoreEntry[] = [];
  let count = 0;
  const scan = await forEachFrame(path, (frame, size) => {
    if (header === undefined) {
      const h = JSON.parse(frame.payload.toString('utf8')) as { v?: unknown; r?: unknown; n?: unknown };
      if (h.v !== 1 || !Number.isSafeInteger(h.r) || !Number.isSafeInteger(h.n) || (h.n as number) < 0) throw new Error('bad header');
      header = { r: h.r as number, n: h.n as number };
      // Sized once, instead of grown by copying, when the file can hold that many (an entry takes more than 12 bytes of it).
      if (header.n * 12 <= size) entries = new Array<StoreEntry>(header.n);
      return;
    }
    const chunk = JSON.parse(frame.payload.toString('utf8')) as { e?: unknown };
    if (!Array.isArray(chunk.e)) throw new Error(`bad chunk at offset ${frame.offset}`);
    for (const t of chunk.e as unknown[]) {
      if (!isEntryTuple(t)) throw new Error(`bad entry at offset ${frame.offset}`);
      entries[count++] = Object.freeze({ key: t[0], value: t[1], createRevision: t[2], modRevision: t[3], version: t[4] });
    }
  });
  if (scan.badReason !== undefined) throw new Error(`damaged at offset ${scan.end} (${scan.badReason})`);
  if (header === undefined) throw new Error('empty');
  if (count !== header.n) throw new Error(`header promises ${header.n} entries, file holds ${count}`);
  return { revision: header.r, entries };
}
