// Getting the write-ahead log writable again after ENOSPC/EIO without a restart: cut the segment back to its last good
// byte, reopen it, prove the disk takes a write, and the backoff between tries.
import { open, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { unlinkIfPresent } from './files.js';
import { WalWriter, fsyncDir, segmentFileName, writeAll } from './wal.js';

/** Delay before repair attempt `n` (0-based): 100 ms doubling to 5 s, so a freed disk is noticed within seconds. */
export function repairDelayMs(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(attempt, 6));
}

/** Bytes the probe writes: a write this size must succeed before writes are accepted again. */
export const PROBE_BYTES = 64 * 1024;
const PROBE_FILE = '.write-probe';

/**
 * Replaces `wal` by a fresh handle on the same segment cut back to `goodSize`: the bytes after it
 * belong to a batch that failed (a partial frame from ENOSPC, or data whose fsync failed) and was
 * never acknowledged. Throws when any step still fails; the caller tries again later.
 */
export async function reopenSegment(dir: string, wal: WalWriter, goodSize: number): Promise<WalWriter> {
  await wal.close().catch(() => undefined); // Already closed by an earlier attempt, or the fd is broken.
  const path = join(dir, segmentFileName(wal.firstRevision));
  await truncate(path, goodSize);
  const fresh = await WalWriter.open(dir, wal.firstRevision);
  try {
    if (fresh.size !== goodSize) throw new Error(`${path} is ${fresh.size} bytes after truncating it to ${goodSize}`);
    await fresh.sync();
    await fsyncDir(dir);
    return fresh;
  } catch (err) {
    await fresh.close().catch(() => undefined);
    throw err;
  }
}

/** Writes, syncs and removes a scratch file of PROBE_BYTES in `dir`: proof that the disk takes writes again. */
export async function probeWritable(dir: string): Promise<void> {
  const path = join(dir, PROBE_FILE);
  try {
    const fh = await open(path, 'w');
    try {
      await writeAll(fh, Buffer.alloc(PROBE_BYTES));
      await fh.sync();
    } finally {
      await fh.close();
    }
  } finally {
    await unlinkIfPresent(path).catch(() => undefined);
  }
}
