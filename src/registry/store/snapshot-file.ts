// Snapshot files: framed like the WAL, a header frame {v, r, n} then frames of {e: [[key, value, create, mod, version], ...]}.
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoreEntry } from './types.js';
import type { EntrySource } from './memory-state.js';
import { encodeFrames, fsyncDir, scanFrames, writeAll } from './wal.js';

export const SNAPSHOT_PATTERN = /^snapshot-(\d{16})\.snap$/;
export const SNAPSHOT_TMP_PATTERN = /^snapshot-\d{16}\.snap\.tmp$/;
/** Entries per snapshot frame: big enough to amortise framing, small enough to stay far from string limits. */
const SNAPSHOT_CHUNK_ENTRIES = 1000;
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
    for (let i = 0; i < entries.length; i += SNAPSHOT_CHUNK_ENTRIES) {
      const chunk = entries.slice(i, i + SNAPSHOT_CHUNK_ENTRIES).map((e) => [e.key, e.value, e.createRevision, e.modRevision, e.version]);
      const payload = JSON.stringify({ e: chunk });
      payloads.push(payload);
      gathered += payload.length;
      if (gathered >= SNAPSHOT_WRITE_BYTES) {
        await writeAll(fh, encodeFrames(payloads));
        payloads = [];
        gathered = 0;
      }
    }
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

export async function readSnapshotFile(path: string): Promise<{ revision: number; entries: StoreEntry[] }> {
  const scan = scanFrames(await readFile(path));
  if (scan.badReason !== undefined) throw new Error(`damaged at offset ${scan.end} (${scan.badReason})`);
  const [first, ...rest] = scan.frames;
  if (first === undefined) throw new Error('empty');
  const header = JSON.parse(first.payload.toString('utf8')) as { v?: unknown; r?: unknown; n?: unknown };
  if (header.v !== 1 || !Number.isSafeInteger(header.r) || !Number.isSafeInteger(header.n)) throw new Error('bad header');
  const entries: StoreEntry[] = [];
  for (const frame of rest) {
    const chunk = JSON.parse(frame.payload.toString('utf8')) as { e?: unknown };
    if (!Array.isArray(chunk.e)) throw new Error(`bad chunk at offset ${frame.offset}`);
    for (const t of chunk.e as unknown[]) {
      if (!isEntryTuple(t)) throw new Error(`bad entry at offset ${frame.offset}`);
      entries.push(Object.freeze({ key: t[0], value: t[1], createRevision: t[2], modRevision: t[3], version: t[4] }));
    }
  }
  if (entries.length !== header.n) throw new Error(`header promises ${String(header.n)} entries, file holds ${entries.length}`);
  return { revision: header.r as number, entries };
}

