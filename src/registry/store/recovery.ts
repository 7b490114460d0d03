// Recovery of the embedded store at open: newest readable snapshot plus the WAL after it, torn tails cut off, damage in the middle refused.
import { open, readdir, readFile, rename, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../core/errors.js';
import { MemoryState, makeEntry } from './memory-state.js';
import { corrupt, fileTimestamp, unlinkIfPresent } from './files.js';
import type { EmbeddedStoreLogger } from './files.js';
import { SNAPSHOT_PATTERN, SNAPSHOT_TMP_PATTERN, readSnapshotFile } from './snapshot-file.js';
import { countFramesFrom, decodeRecord, findFrameAfter, fsyncDir, parseSegmentFileName, scanFrames, writeAll } from './wal.js';

interface DamagedTail {
  readonly file: string;
  readonly offset: number;
  readonly bytes: Buffer;
  readonly records: number;
  readonly reason: string;
}

export interface Recovered {
  readonly state: MemoryState;
  readonly revision: number;
  readonly snapshotRevision: number;
  /** First revision of the segment to keep appending to, if one should be reused. */
  readonly appendTo: number | undefined;
}

/**
 * Newest readable snapshot, then every WAL record after it in revision order. Damage at the very
 * end of the log is a write that never completed: it was never acknowledged, so it is cut off
 * (and kept aside). Damage with intact records after it means acknowledged writes would vanish,
 * so recovery refuses. Nothing on disk changes until the whole log has been judged.
 */
export async function recover(dir: string, logger: EmbeddedStoreLogger): Promise<Recovered> {
  const names = await readdir(dir);

  let state = MemoryState.empty();
  let snapshotRevision = 0;
  const snapshots = names
    .map((name) => ({ name, revision: Number(SNAPSHOT_PATTERN.exec(name)?.[1] ?? NaN) }))
    .filter((s) => !Number.isNaN(s.revision))
    .sort((a, b) => b.revision - a.revision);
  const unreadableSnapshots: string[] = [];
  let loadedSnapshot: string | undefined;
  for (const snap of snapshots) {
    try {
      const loaded = await readSnapshotFile(join(dir, snap.name));
      state = MemoryState.fromEntries(loaded.entries);
      snapshotRevision = loaded.revision;
      loadedSnapshot = snap.name;
      break;
    } catch (err) {
      unreadableSnapshots.push(snap.name);
      logger.warn({ file: join(dir, snap.name), err: errorMessage(err) }, `ignoring unreadable snapshot ${join(dir, snap.name)}; falling back to older state`);
    }
  }

  const segments = names
    .map((name) => ({ name, firstRevision: parseSegmentFileName(name) }))
    .filter((s): s is { name: string; firstRevision: number } => s.firstRevision !== undefined)
    .sort((a, b) => a.firstRevision - b.firstRevision);
  const sizes = await Promise.all(segments.map(async (s) => (await stat(join(dir, s.name))).size));

  // Segment names carry their first revision, so a hole is visible even when no record exists to show it.
  const firstSegment = segments[0];
  if (firstSegment !== undefined && firstSegment.firstRevision > snapshotRevision + 1) {
    throw corrupt(`${join(dir, firstSegment.name)} starts at revision ${firstSegment.firstRevision}, but ` +
      (loadedSnapshot === undefined ? 'no readable snapshot' : `snapshot ${loadedSnapshot}`) +
      ` only covers up to revision ${snapshotRevision}: revisions ${snapshotRevision + 1}..${firstSegment.firstRevision - 1} are missing`);
  }

  let revision = snapshotRevision;
  let lastSeen = 0;
  let tail: DamagedTail | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as { name: string; firstRevision: number };
    const path = join(dir, seg.name);
    const buf = await readFile(path);
    const scan = scanFrames(buf);
    if (scan.badReason !== undefined) {
      const next = findFrameAfter(buf, scan.end + 1);
      if (next >= 0) {
        throw corrupt(`${path}: record at offset ${scan.end} is damaged (${scan.badReason}) but an intact record follows at offset ${next}; ` +
          'refusing to start without acknowledged writes (to start anyway, truncate the segment at that offset, losing every record after it)');
      }
      const later = segments.slice(i + 1).filter((_, j) => (sizes[i + 1 + j] ?? 0) > 0);
      if (later.length > 0) {
        throw corrupt(`${path}: record at offset ${scan.end} is damaged (${scan.badReason}) and later segments (${later.map((s) => s.name).join(', ')}) hold records`);
      }
      tail = { file: path, offset: scan.end, bytes: buf.subarray(scan.end), records: countFramesFrom(buf, scan.end), reason: scan.badReason };
    }
    for (const frame of scan.frames) {
      let rec;
      try {
        rec = decodeRecord(frame.payload);
      } catch (err) {
        throw corrupt(`${path}: record at offset ${frame.offset} has a valid checksum but cannot be decoded: ${errorMessage(err)}`);
      }
      if (rec.r <= lastSeen) throw corrupt(`${path}: record at offset ${frame.offset} has revision ${rec.r}, not after ${lastSeen}`);
      lastSeen = rec.r;
      if (rec.r <= snapshotRevision) continue;
      if (rec.r !== revision + 1) {
        throw corrupt(`${path}: record at offset ${frame.offset} has revision ${rec.r} but revision ${revision + 1} is next; ` +
          `records ${revision + 1}..${rec.r - 1} are missing`);
      }
      for (const op of rec.o) {
        if (op[0] === 'p') state.set(makeEntry(op[1], op[2], rec.r, state.get(op[1])));
        else state.delete(op[1]);
      }
      revision = rec.r;
    }
  }
  // A snapshot is only written once its revision is durable, so recovery must reach it.
  const newestSnapshot = snapshots[0];
  if (newestSnapshot !== undefined && revision < newestSnapshot.revision) {
    throw corrupt(`${join(dir, newestSnapshot.name)} is unreadable and the remaining snapshots and WAL only reach revision ${revision}`);
  }

  // The log is judged sound: now the disk may change.
  for (const name of names) {
    // A snapshot, or a side file of dropped bytes, that was still being written when the process died.
    if (SNAPSHOT_TMP_PATTERN.test(name) || SIDE_TMP_PATTERN.test(name)) await unlinkIfPresent(join(dir, name));
  }
  if (tail !== undefined) {
    const savedTo = `${tail.file}.corrupt-${fileTimestamp()}`;
    await saveAside(savedTo, tail.bytes);
    await truncate(tail.file, tail.offset);
    const fh = await open(tail.file, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    logger.warn(
      { file: tail.file, offset: tail.offset, droppedBytes: tail.bytes.length, droppedRecords: tail.records, reason: tail.reason, savedTo, revision },
      `dropped ${tail.records} damaged record(s) (${tail.bytes.length} bytes, ${tail.reason}) from the tail of ${tail.file} at offset ${tail.offset}; ` +
      `recovered up to revision ${revision}; the dropped bytes are in ${savedTo}`,
    );
  }
  for (const name of unreadableSnapshots) {
    // Kept for inspection but renamed, so the next open does not trip over it again.
    await rename(join(dir, name), join(dir, `${name}.corrupt-${fileTimestamp()}`));
  }
  if (loadedSnapshot !== undefined) {
    for (const snap of snapshots) {
      if (snap.revision < snapshotRevision && !unreadableSnapshots.includes(snap.name)) await unlinkIfPresent(join(dir, snap.name));
    }
  }
  // A segment is obsolete when the snapshot covers everything up to where the next segment starts.
  // An empty last segment is replaced by one named after the next revision: a name ahead of the
  // records it would hold could sort after a later segment and scramble the replay order.
  let appendTo: number | undefined;
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as { name: string; firstRevision: number };
    const next = segments[i + 1];
    const size = tail !== undefined && tail.file === join(dir, seg.name) ? tail.offset : (sizes[i] ?? 0);
    if (next !== undefined) {
      if (next.firstRevision <= snapshotRevision + 1) await unlinkIfPresent(join(dir, seg.name));
    } else if (size > 0) {
      appendTo = seg.firstRevision;
    } else {
      await unlinkIfPresent(join(dir, seg.name));
    }
  }
  await fsyncDir(dir);
  return { state, revision, snapshotRevision, appendTo };
}

const SIDE_TMP_PATTERN = /\.corrupt-[^/]+\.tmp$/;

/**
 * Keeps `bytes` in `path`, written under a temporary name and renamed only once complete and synced:
 * on a full disk the open fails with nothing left behind, instead of an empty side file per attempt.
 */
async function saveAside(path: string, bytes: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    const side = await open(tmp, 'wx');
    try {
      await writeAll(side, bytes);
      await side.sync();
    } finally {
      await side.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlinkIfPresent(tmp).catch(() => undefined);
    throw err;
  }
}
