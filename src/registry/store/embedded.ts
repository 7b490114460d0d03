// The embedded, durable Store: in-memory state over a group-committed write-ahead log with snapshots, in one locked data directory.
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SwitchyardError, errorMessage } from '../../core/errors.js';
import { MemoryState, applyEvents, applyTxn, makeEntry, validateTxn } from './memory-state.js';
import type { Store, StoreChange, StoreEntry, StoreEvent, StoreListener, StoreStats, TxnRequest, TxnResult } from './types.js';
import {
  WalWriter, countFramesFrom, decodeRecord, encodeFrames, encodeRecord, findFrameAfter, fsyncDir, parseSegmentFileName,
  scanFrames, writeAll,
} from './wal.js';
import type { WalOp } from './wal.js';

export interface EmbeddedStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface EmbeddedStoreOptions {
  /** Data directory, created if missing. One process at a time (a LOCK file enforces it). */
  readonly dir: string;
  /** Recovery losses, snapshot failures and listener errors go to warn. Default: warn to stderr. */
  readonly logger?: EmbeddedStoreLogger;
  /**
   * 'always' (default): fdatasync every group commit before acknowledging. 'none': the write
   * reaches the OS before acknowledging (survives a process crash, not a power loss).
   */
  readonly sync?: 'always' | 'none';
  /** Size of the current WAL segment that triggers a snapshot and a fresh segment. Default 64 MiB. */
  readonly snapshotEveryBytes?: number;
}

export const DEFAULT_SNAPSHOT_EVERY_BYTES = 64 * 1024 * 1024;

const LOCK_FILE = 'LOCK';
const SNAPSHOT_PATTERN = /^snapshot-(\d{16})\.snap$/;
const SNAPSHOT_TMP_PATTERN = /^snapshot-\d{16}\.snap\.tmp$/;
/** Entries per snapshot frame: big enough to amortise framing, small enough to stay far from string limits. */
const SNAPSHOT_CHUNK_ENTRIES = 1000;
/** Snapshot bytes gathered before one write. */
const SNAPSHOT_WRITE_BYTES = 1 << 20;

const stderrLogger: EmbeddedStoreLogger = {
  warn: (obj, msg) => console.warn(`switchyard store: ${msg}`, obj),
  info: () => undefined,
};

function ioError(message: string, cause: unknown): SwitchyardError {
  if (cause instanceof SwitchyardError) return cause;
  return new SwitchyardError('SY_ERR_STORE_IO', `${message}: ${errorMessage(cause)}`, { cause });
}

function corrupt(message: string): SwitchyardError {
  return new SwitchyardError('SY_ERR_STORE_CORRUPT', message);
}

function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
}

function fileTimestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

function snapshotFileName(revision: number): string {
  return `snapshot-${String(revision).padStart(16, '0')}.snap`;
}

// ---------------------------------------------------------------------------------------------
// Lock

/**
 * LOCK holds {pid, token}. Node has no flock, so liveness is a signal-0 probe of the pid. A lock
 * naming our own pid is either another store instance in this process (written after we started)
 * or left by an earlier process that had the same pid (pid 1 in a container), told apart by mtime.
 */
class DirLock {
  private readonly path: string;
  private readonly token = randomUUID();
  private held = false;

  constructor(private readonly dir: string, private readonly logger: EmbeddedStoreLogger) {
    this.path = join(dir, LOCK_FILE);
  }

  async acquire(): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await writeFile(this.path, `${JSON.stringify({ pid: process.pid, token: this.token })}\n`, { flag: 'wx' });
        this.held = true;
        return;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw ioError(`cannot create lock file ${this.path}`, err);
      }
      const holder = await this.readHolder();
      if (holder === undefined) continue;
      if (holder.pid === undefined) {
        // Created but not yet written: another process may be between open and write right now.
        if (Date.now() - holder.mtimeMs < 2000) {
          await sleep(50);
          continue;
        }
      } else if (this.alive(holder.pid, holder.mtimeMs)) {
        throw new SwitchyardError('SY_ERR_STORE_IO',
          `data directory ${this.dir} is locked by process ${holder.pid} (${this.path}); two processes cannot open one store`);
      }
      this.logger.warn({ file: this.path, pid: holder.pid ?? null }, `removing stale lock ${this.path} left by a process that is gone`);
      await unlinkIfPresent(this.path).catch((err: unknown) => {
        throw ioError(`cannot remove stale lock ${this.path}`, err);
      });
    }
    throw new SwitchyardError('SY_ERR_STORE_IO', `could not acquire ${this.path}: it keeps reappearing`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    try {
      if ((await readFile(this.path, 'utf8')).includes(this.token)) await unlink(this.path);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') this.logger.warn({ file: this.path, err: errorMessage(err) }, 'could not remove lock file');
    }
  }

  private async readHolder(): Promise<{ pid: number | undefined; mtimeMs: number } | undefined> {
    try {
      const [text, st] = await Promise.all([readFile(this.path, 'utf8'), stat(this.path)]);
      let pid: number | undefined;
      try {
        const parsed = JSON.parse(text) as { pid?: unknown };
        if (Number.isSafeInteger(parsed.pid) && (parsed.pid as number) > 0) pid = parsed.pid as number;
      } catch {
        pid = undefined;
      }
      return { pid, mtimeMs: st.mtimeMs };
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw ioError(`cannot read lock file ${this.path}`, err);
    }
  }

  private alive(pid: number, mtimeMs: number): boolean {
    if (pid === process.pid) {
      const startedAt = Date.now() - process.uptime() * 1000;
      // 50 ms covers the coarse clock behind file timestamps.
      return mtimeMs >= startedAt - 50;
    }
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return errCode(err) === 'EPERM';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: framed like the WAL; a header frame {v, r, n} then frames of {e: [[key, value, create, mod, version], ...]}.

async function writeSnapshotFile(dir: string, revision: number, entries: readonly StoreEntry[]): Promise<string> {
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

async function readSnapshotFile(path: string): Promise<{ revision: number; entries: StoreEntry[] }> {
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

// ---------------------------------------------------------------------------------------------
// Recovery

interface DamagedTail {
  readonly file: string;
  readonly offset: number;
  readonly bytes: Buffer;
  readonly records: number;
  readonly reason: string;
}

interface Recovered {
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
async function recover(dir: string, logger: EmbeddedStoreLogger): Promise<Recovered> {
  const names = await readdir(dir);

  const state = new MemoryState();
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
      for (const entry of loaded.entries) state.set(entry);
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
    // A snapshot that was still being written when the process died.
    if (SNAPSHOT_TMP_PATTERN.test(name)) await unlinkIfPresent(join(dir, name));
  }
  if (tail !== undefined) {
    const savedTo = `${tail.file}.corrupt-${fileTimestamp()}`;
    const side = await open(savedTo, 'wx');
    try {
      await writeAll(side, tail.bytes);
      await side.sync();
    } finally {
      await side.close();
    }
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

// ---------------------------------------------------------------------------------------------
// Store

interface PendingTxn {
  /** The WAL record; absent for a transaction that changed nothing but must still wait its turn. */
  readonly payload: string | undefined;
  readonly change: StoreChange | undefined;
  readonly result: TxnResult;
  readonly resolve: (result: TxnResult) => void;
  readonly reject: (err: unknown) => void;
}

type Phase = 'new' | 'opening' | 'open' | 'closing' | 'closed';

function toWalOp(event: StoreEvent): WalOp {
  return event.type === 'put' && event.entry !== undefined ? ['p', event.key, event.entry.value] : ['d', event.key];
}

/**
 * Two views of the key space. `latest` includes every evaluated transaction and is what compares
 * run against, so transactions serialise in call order without waiting for the disk. `published`
 * only moves once a group commit is durable, and is what get/range/revision and listeners see.
 * Entries are immutable and shared between the views.
 */
export class EmbeddedStore implements Store {
  private readonly dir: string;
  private readonly logger: EmbeddedStoreLogger;
  private readonly syncAlways: boolean;
  private readonly snapshotEveryBytes: number;
  private readonly lock: DirLock;

  private phase: Phase = 'new';
  private openTask: Promise<unknown> | undefined;
  private closeTask: Promise<void> | undefined;
  private wal: WalWriter | undefined;
  private failure: SwitchyardError | undefined;

  private latest = new MemoryState();
  private latestRevision = 0;
  private published = new MemoryState();
  private publishedRevision = 0;

  private queue: PendingTxn[] = [];
  private flushScheduled = false;
  private flushing = false;
  private idleWaiters: (() => void)[] = [];

  private snapshotTask: Promise<void> | undefined;
  private snapshotRevision = 0;
  /** After a failed rotation, the segment size at which to try again. */
  private rotateRetryAt = 0;

  private readonly listeners = new Set<StoreListener>();
  /** Replaced, never mutated, so a delivery in progress iterates a stable list. */
  private listenerList: readonly StoreListener[] = [];

  private commits = 0;
  private committedTxns = 0;

  constructor(opts: EmbeddedStoreOptions) {
    if (typeof opts.dir !== 'string' || opts.dir === '') throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', 'EmbeddedStore needs a data directory');
    const every = opts.snapshotEveryBytes ?? DEFAULT_SNAPSHOT_EVERY_BYTES;
    if (!Number.isSafeInteger(every) || every < 1) {
      throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `snapshotEveryBytes must be a positive integer, got ${String(opts.snapshotEveryBytes)}`);
    }
    if (opts.sync !== undefined && opts.sync !== 'always' && opts.sync !== 'none') {
      throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `sync must be 'always' or 'none', got ${String(opts.sync)}`);
    }
    this.dir = opts.dir;
    this.logger = opts.logger ?? stderrLogger;
    this.syncAlways = (opts.sync ?? 'always') === 'always';
    this.snapshotEveryBytes = every;
    this.lock = new DirLock(this.dir, this.logger);
  }

  open(): Promise<{ readonly revision: number; readonly entries: readonly StoreEntry[] }> {
    if (this.phase !== 'new') {
      return Promise.reject(new SwitchyardError(this.phase === 'open' || this.phase === 'opening' ? 'SY_ERR_INTERNAL' : 'SY_ERR_STORE_CLOSED',
        `store in ${this.dir} was already opened (${this.phase}); open() may be called once`));
    }
    this.phase = 'opening';
    const task = this.doOpen();
    this.openTask = task;
    return task;
  }

  private async doOpen(): Promise<{ readonly revision: number; readonly entries: readonly StoreEntry[] }> {
    try {
      await mkdir(this.dir, { recursive: true }).catch((err: unknown) => {
        throw ioError(`cannot create data directory ${this.dir}`, err);
      });
      await this.lock.acquire();
      try {
        const rec = await recover(this.dir, this.logger).catch((err: unknown) => {
          throw ioError(`cannot recover store in ${this.dir}`, err);
        });
        this.wal = await WalWriter.open(this.dir, rec.appendTo ?? rec.revision + 1);
        await fsyncDir(this.dir);
        this.latest = rec.state;
        this.published = rec.state.clone();
        this.latestRevision = this.publishedRevision = rec.revision;
        this.snapshotRevision = rec.snapshotRevision;
      } catch (err) {
        await this.wal?.close().catch(() => undefined);
        this.wal = undefined;
        await this.lock.release();
        throw err;
      }
    } catch (err) {
      this.phase = 'closed';
      throw ioError(`cannot open store in ${this.dir}`, err);
    }
    this.phase = 'open';
    this.logger.info({ dir: this.dir, revision: this.publishedRevision, keys: this.published.size, wal: this.wal?.name }, 'store opened');
    return { revision: this.publishedRevision, entries: this.published.entries() };
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    if (this.phase !== 'open') {
      return Promise.reject(new SwitchyardError('SY_ERR_STORE_CLOSED', `store in ${this.dir} is ${this.phase === 'new' || this.phase === 'opening' ? 'not open yet' : 'closed'}`));
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    try {
      validateTxn(req);
    } catch (err) {
      return Promise.reject(err);
    }
    const revision = this.latestRevision + 1;
    const outcome = applyTxn(this.latest, req, revision);
    let payload: string | undefined;
    let change: StoreChange | undefined;
    if (outcome.events.length > 0) {
      this.latestRevision = revision;
      change = Object.freeze({ revision, events: Object.freeze(outcome.events) });
      payload = encodeRecord({ r: revision, o: outcome.events.map(toWalOp) });
    }
    const result: TxnResult = Object.freeze({ succeeded: outcome.succeeded, revision: this.latestRevision });
    // A no-op decided on top of writes not yet durable must not be acknowledged before them.
    if (change === undefined && this.queue.length === 0 && !this.flushing && !this.flushScheduled) return Promise.resolve(result);
    return new Promise<TxnResult>((resolve, reject) => {
      this.queue.push({ payload, change, result, resolve, reject });
      this.scheduleFlush();
    });
  }

  get(key: string): StoreEntry | undefined {
    return this.published.get(key);
  }

  range(prefix: string): StoreEntry[] {
    return this.published.range(prefix);
  }

  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    this.listenerList = [...this.listeners];
    return () => {
      if (this.listeners.delete(listener)) this.listenerList = [...this.listeners];
    };
  }

  revision(): number {
    return this.publishedRevision;
  }

  stats(): StoreStats {
    return {
      revision: this.publishedRevision,
      keys: this.published.size,
      pendingTxns: this.queue.length,
      walSegment: this.wal?.name ?? '',
      walBytes: this.wal?.size ?? 0,
      snapshotRevision: this.snapshotRevision,
      groupCommits: this.commits,
      committedTxns: this.committedTxns,
      sync: this.syncAlways ? 'always' : 'none',
    };
  }

  close(): Promise<void> {
    this.closeTask ??= this.doClose();
    return this.closeTask;
  }

  private currentPhase(): Phase {
    return this.phase;
  }

  private async doClose(): Promise<void> {
    if (this.currentPhase() === 'new') {
      this.phase = 'closed';
      return;
    }
    await this.openTask?.catch(() => undefined);
    if (this.currentPhase() === 'closed') return;
    this.phase = 'closing';
    await this.whenIdle();
    await this.snapshotTask;
    let failed: unknown;
    try {
      if (this.wal !== undefined) {
        if (this.failure === undefined) await this.wal.sync();
        await this.wal.close();
      }
    } catch (err) {
      failed = err;
    }
    this.wal = undefined;
    await this.lock.release();
    this.phase = 'closed';
    if (failed !== undefined) throw ioError(`closing the write-ahead log in ${this.dir} failed`, failed);
  }

  // -- group commit ----------------------------------------------------------------------------

  /**
   * Deferred by one macrotask so that every caller woken by the previous commit (their
   * continuations run as microtasks, possibly several hops deep) joins the next batch instead of
   * the first of them going to disk alone.
   */
  private scheduleFlush(): void {
    if (this.flushing || this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.runFlushLoop();
    });
  }

  private async runFlushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0 && this.failure === undefined) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeBatch(batch);
        } catch (err) {
          this.fail(err, batch);
          break;
        }
        this.publish(batch);
        const wal = this.wal as WalWriter;
        if (wal.size >= Math.max(this.snapshotEveryBytes, this.rotateRetryAt) && this.snapshotTask === undefined) await this.rotate();
      }
    } catch (err) {
      this.fail(err, []);
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private async writeBatch(batch: readonly PendingTxn[]): Promise<void> {
    const payloads: string[] = [];
    for (const item of batch) if (item.payload !== undefined) payloads.push(item.payload);
    if (payloads.length === 0) return;
    const wal = this.wal as WalWriter;
    await wal.append(encodeFrames(payloads));
    if (this.syncAlways) await wal.sync();
    this.commits++;
  }

  private publish(batch: readonly PendingTxn[]): void {
    for (const item of batch) {
      const change = item.change;
      if (change !== undefined) {
        applyEvents(this.published, change.events);
        this.publishedRevision = change.revision;
        this.committedTxns++;
        this.deliver(change);
      }
      item.resolve(item.result);
    }
  }

  private deliver(change: StoreChange): void {
    for (const listener of this.listenerList) {
      // Unsubscribed by an earlier listener during this very delivery.
      if (!this.listeners.has(listener)) continue;
      try {
        listener(change);
      } catch (err) {
        this.logger.warn({ revision: change.revision, err: errorMessage(err) }, 'store listener threw; other listeners still get the change');
      }
    }
  }

  /**
   * After a failed write or fsync the file's contents are unknown (the kernel may already have
   * dropped the dirty pages), and `latest` holds changes that may never reach disk: stop writing.
   */
  private fail(err: unknown, batch: readonly PendingTxn[]): void {
    this.failure = new SwitchyardError('SY_ERR_STORE_IO',
      `write-ahead log ${this.wal?.name ?? ''} in ${this.dir} failed, the store accepts no more writes: ${errorMessage(err)}`, { cause: err });
    this.logger.warn({ dir: this.dir, err: errorMessage(err) }, this.failure.message);
    const doomed = [...batch, ...this.queue];
    this.queue = [];
    for (const item of doomed) item.reject(this.failure);
  }

  private whenIdle(): Promise<void> {
    if (!this.flushing && !this.flushScheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // -- snapshots -------------------------------------------------------------------------------

  /**
   * Runs between group commits, when everything written is published: the published state at
   * this moment is exactly the content of the segments so far. New writes go to a fresh segment
   * named after the next revision while the snapshot is written in the background. The old
   * segments are deleted only once the snapshot is durable, so a crash at any step leaves either
   * (old snapshot + all segments) or (new snapshot + segments, some redundant): both recover.
   */
  private async rotate(): Promise<void> {
    const old = this.wal as WalWriter;
    const revision = this.publishedRevision;
    if (old.firstRevision > revision) return;
    const entries = this.published.entries();
    let next: WalWriter | undefined;
    try {
      next = await WalWriter.open(this.dir, revision + 1);
      await fsyncDir(this.dir);
    } catch (err) {
      await next?.close().catch(() => undefined);
      this.rotateRetryAt = old.size + this.snapshotEveryBytes;
      this.logger.warn({ dir: this.dir, err: errorMessage(err) }, 'could not start a new WAL segment; snapshot postponed');
      return;
    }
    this.wal = next;
    this.rotateRetryAt = 0;
    this.snapshotTask = this.snapshot(old, revision, entries).finally(() => {
      this.snapshotTask = undefined;
    });
  }

  private async snapshot(old: WalWriter, revision: number, entries: readonly StoreEntry[]): Promise<void> {
    try {
      await old.close();
      const name = await writeSnapshotFile(this.dir, revision, entries);
      this.snapshotRevision = revision;
      for (const file of await readdir(this.dir)) {
        const first = parseSegmentFileName(file);
        const snap = SNAPSHOT_PATTERN.exec(file);
        if ((first !== undefined && first <= revision) || (snap !== null && Number(snap[1]) < revision)) {
          await unlinkIfPresent(join(this.dir, file));
        }
      }
      await fsyncDir(this.dir);
      this.logger.info({ dir: this.dir, revision, keys: entries.length, file: name }, 'wrote snapshot and dropped the WAL it replaces');
    } catch (err) {
      this.logger.warn({ dir: this.dir, revision, err: errorMessage(err) }, 'snapshot failed; the WAL keeps everything and the next snapshot will retry');
    }
  }
}
