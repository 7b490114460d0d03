// The write-ahead log: record framing, segment naming, appends, and scanning segments back for recovery.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** [u32 payload length][u32 crc32 of payload], little-endian, then the payload. */
export const FRAME_HEADER_BYTES = 8;

/** A concrete op as logged: compares were evaluated before logging, so replay is blind. */
export type WalOp = readonly ['p', string, string] | readonly ['d', string];

export interface WalRecord {
  readonly r: number;
  readonly o: readonly WalOp[];
}

/** Frames payloads back to back into one buffer, so a whole group commit is a single write. */
export function encodeFrames(payloads: readonly string[]): Buffer {
  const lengths = payloads.map((p) => Buffer.byteLength(p, 'utf8'));
  const total = lengths.reduce((sum, n) => sum + FRAME_HEADER_BYTES + n, 0);
  const buf = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = 0; i < payloads.length; i++) {
    const length = lengths[i] as number;
    const start = offset + FRAME_HEADER_BYTES;
    buf.writeUInt32LE(length, offset);
    buf.write(payloads[i] as string, start, length, 'utf8');
    buf.writeUInt32LE(crc32(buf.subarray(start, start + length)), offset + 4);
    offset = start + length;
  }
  return buf;
}

export function encodeRecord(record: WalRecord): string {
  return JSON.stringify(record);
}

/** Parses a payload whose checksum already matched; a shape error here means a bug or tampering, not a torn write. */
export function decodeRecord(payload: Buffer): WalRecord {
  const parsed: unknown = JSON.parse(payload.toString('utf8'));
  const rec = parsed as Partial<Record<string, unknown>> | null;
  if (rec === null || typeof rec !== 'object' || !Number.isSafeInteger(rec['r']) || (rec['r'] as number) < 1 || !Array.isArray(rec['o'])) {
    throw new Error('record is not {r: revision, o: ops}');
  }
  for (const op of rec['o'] as unknown[]) {
    const ok = Array.isArray(op) && (
      (op.length === 3 && op[0] === 'p' && typeof op[1] === 'string' && typeof op[2] === 'string') ||
      (op.length === 2 && op[0] === 'd' && typeof op[1] === 'string'));
    if (!ok) throw new Error(`record ${String(rec['r'])} holds a malformed op ${JSON.stringify(op)}`);
  }
  return parsed as WalRecord;
}

export interface Frame {
  readonly offset: number;
  readonly payload: Buffer;
}

export interface FrameScan {
  /** Every intact frame from the start of the buffer up to the first bad byte. */
  readonly frames: Frame[];
  /** Offset just past the last intact frame. */
  readonly end: number;
  /** Why the bytes from `end` on do not form a frame; absent when the buffer is all frames. */
  readonly badReason?: string;
}

/**
 * The payload length of the frame at `offset`, or why no intact frame can start there. `left` is how
 * many bytes the file holds from `offset` on; `buf` must hold the header when `left` does.
 */
function frameLength(buf: Buffer, offset: number, left: number): number | string {
  if (left < FRAME_HEADER_BYTES) return `truncated header (${left} of ${FRAME_HEADER_BYTES} bytes)`;
  const length = buf.readUInt32LE(offset);
  // Zero-filled space (a file extended but never written) would otherwise parse as empty frames with crc 0.
  if (length === 0) return 'zero-length record';
  if (length > left - FRAME_HEADER_BYTES) return `truncated record (header says ${length} payload bytes, ${left - FRAME_HEADER_BYTES} present)`;
  return length;
}

/** The payload of the frame at `offset` (whose header said `length`) if its checksum matches. */
function checkedPayload(buf: Buffer, offset: number, length: number): Buffer | undefined {
  const payload = buf.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length);
  return crc32(payload) === buf.readUInt32LE(offset + 4) ? payload : undefined;
}

/** Reads frames from the start until the buffer ends or a frame fails its checks. */
export function scanFrames(buf: Buffer): FrameScan {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const length = frameLength(buf, offset, buf.length - offset);
    if (typeof length === 'string') return { frames, end: offset, badReason: length };
    const payload = checkedPayload(buf, offset, length);
    if (payload === undefined) return { frames, end: offset, badReason: 'checksum mismatch' };
    frames.push({ offset, payload });
    offset += FRAME_HEADER_BYTES + length;
  }
  return { frames, end: offset };
}

/** Bytes read from a file at a time by `forEachFrame` (the buffer grows for a larger frame). */
const FRAME_READ_BYTES = 1 << 20;

/**
 * `scanFrames` for a file too large to hold at once (a snapshot of a million instances is 300 MB):
 * reads it in pieces through one reused buffer and hands each intact frame (and the file's size) to
 * `onFrame`; the payload is valid only during the call. Reading such a file whole made every page
 * of it a first touch, which costs 0.8 s per 300 MB where page faults are expensive (virtual machines).
 */
export async function forEachFrame(path: string, onFrame: (frame: Frame, fileBytes: number) => void, readBytes = FRAME_READ_BYTES): Promise<Omit<FrameScan, 'frames'>> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let buf = Buffer.allocUnsafe(Math.min(readBytes, Math.max(size, FRAME_HEADER_BYTES)));
    /** File offset of buf[0], and how many bytes of buf hold the file from there. */
    let base = 0;
    let held = 0;
    let at = 0; // offset in buf of the next frame
    /** Makes buf hold `need` bytes from `at` on (fewer only where the file ends). */
    const ensure = async (need: number): Promise<void> => {
      if (held - at >= need || base + held >= size) return;
      if (need > buf.length) {
        const bigger = Buffer.allocUnsafe(need);
        buf.copy(bigger, 0, at, held);
        buf = bigger;
      } else {
        buf.copy(buf, 0, at, held);
      }
      base += at;
      held -= at;
      at = 0;
      while (held < buf.length && base + held < size) {
        const { bytesRead } = await fh.read(buf, held, buf.length - held, base + held);
        if (bytesRead === 0) break; // the file shrank under us: what is missing reads as a truncation
        held += bytesRead;
      }
    };
    for (;;) {
      const offset = base + at;
      if (offset >= size) return { end: offset };
      await ensure(FRAME_HEADER_BYTES);
      // What is buffered decides only when the file shrank under us (held bytes end before its size).
      const length = frameLength(buf, at, held - at >= FRAME_HEADER_BYTES ? size - offset : held - at);
      if (typeof length === 'string') return { end: offset, badReason: length };
      await ensure(FRAME_HEADER_BYTES + length);
      // Fewer bytes than the size said: the file shrank under us, and the frame reads as truncated.
      if (held - at < FRAME_HEADER_BYTES + length) return { end: offset, badReason: frameLength(buf, at, held - at) as string };
      const payload = checkedPayload(buf, at, length);
      if (payload === undefined) return { end: offset, badReason: 'checksum mismatch' };
      onFrame({ offset, payload }, size);
      at += FRAME_HEADER_BYTES + length;
    }
  } finally {
    await fh.close();
  }
}

/**
 * Offset of the first intact frame starting after `from`, or -1. This is what separates a torn
 * tail (nothing valid follows) from damage in the middle of the log (acknowledged records follow
 * and would be lost by truncating). Every byte offset is a candidate because a damaged length
 * field hides where the next frame starts; the JSON braces filter out nearly all random
 * candidates before a checksum is computed.
 */
export function findFrameAfter(buf: Buffer, from: number): number {
  for (let offset = from; offset + FRAME_HEADER_BYTES < buf.length; offset++) {
    const length = buf.readUInt32LE(offset);
    const start = offset + FRAME_HEADER_BYTES;
    if (length < 2 || length > buf.length - start) continue;
    if (buf[start] !== 0x7b || buf[start + length - 1] !== 0x7d) continue;
    if (crc32(buf.subarray(start, start + length)) === buf.readUInt32LE(offset + 4)) return offset;
  }
  return -1;
}

/** How many records the bytes from `from` on held, as far as their length fields tell (a partial one counts). */
export function countFramesFrom(buf: Buffer, from: number): number {
  let count = 0;
  let offset = from;
  while (offset < buf.length) {
    count++;
    const left = buf.length - offset;
    if (left < FRAME_HEADER_BYTES) break;
    const length = buf.readUInt32LE(offset);
    if (length === 0 || length > left - FRAME_HEADER_BYTES) break;
    offset += FRAME_HEADER_BYTES + length;
  }
  return count;
}

const SEGMENT_PATTERN = /^wal-(\d{16})\.log$/;

/** Segments are named after the first revision they may hold, so sorting names sorts the log. */
export function segmentFileName(firstRevision: number): string {
  return `wal-${String(firstRevision).padStart(16, '0')}.log`;
}

export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_PATTERN.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Makes creations, renames and deletions in `dir` durable; a new file's data is useless if its name is lost. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    const { bytesWritten } = await fh.write(buf, offset, buf.length - offset, null);
    offset += bytesWritten;
  }
}

/** The segment currently appended to. */
export class WalWriter {
  readonly name: string;
  readonly firstRevision: number;
  private readonly fh: FileHandle;
  private bytes: number;

  private constructor(name: string, firstRevision: number, fh: FileHandle, bytes: number) {
    this.name = name;
    this.firstRevision = firstRevision;
    this.fh = fh;
    this.bytes = bytes;
  }

  /** Opens (creating if needed) segment `wal-<firstRevision>.log` for appending. */
  static async open(dir: string, firstRevision: number): Promise<WalWriter> {
    const name = segmentFileName(firstRevision);
    const fh = await open(join(dir, name), 'a');
    try {
      const { size } = await fh.stat();
      return new WalWriter(name, firstRevision, fh, size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get size(): number {
    return this.bytes;
  }

  async append(buf: Buffer): Promise<void> {
    await writeAll(this.fh, buf);
    this.bytes += buf.length;
  }

  /** fdatasync: the length change is metadata fdatasync does flush, and it skips timestamps. */
  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
