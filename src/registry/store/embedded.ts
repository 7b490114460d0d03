// The embedded, durable Store: in-memory state over a group-committed write-ahead log with snapshots, in one locked data directory.
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SwitchyardError, errorMessage } from '../../core/errors.js';
import { MemoryState, applyEvents, applyTxn, validateTxn } from './memory-state.js';
import type { EntrySource } from './memory-state.js';
import { OverlayState } from './overlay-state.js';
import type { Store, StoreChange, StoreEntry, StoreEvent, StoreListener, StoreStats, TxnRequest, TxnResult } from './types.js';
import { WalWriter, encodeFrames, encodeRecord, fsyncDir, parseSegmentFileName } from './wal.js';
import type { WalOp } from './wal.js';
import { DirLock } from './dir-lock.js';
import { ioError, stderrLogger, unlinkIfPresent } from './files.js';
import type { EmbeddedStoreLogger } from './files.js';
import { recover } from './recovery.js';
import { SNAPSHOT_PATTERN, writeSnapshotFile } from './snapshot-file.js';
import { probeWritable, reopenSegment, repairDelayMs } from './wal-repair.js';

export type { EmbeddedStoreLogger } from './files.js';

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
  /**
   * Told after each group commit: how long its disk work took (append, and fdatasync with sync
   * 'always') and how long each of its writes waited in the store, from txn() to acknowledged.
   * What a writer waits for is then visible apart from what it waits for outside the store.
   */
  readonly onCommit?: (timing: CommitTiming) => void;
}

export interface CommitTiming {
  /** Seconds from the batch's append to its durability; undefined when it wrote nothing (only no-ops waiting their turn). */
  readonly diskSeconds: number | undefined;
  /** Seconds each transaction of the batch spent from txn() to acknowledged, in batch order. */
  readonly txnSeconds: readonly number[];
}

/** Told when the store stops or starts accepting writes again; `reason` says why it stopped. */
export type WritabilityListener = (writable: boolean, reason: string | undefined) => void;

export const DEFAULT_SNAPSHOT_EVERY_BYTES = 64 * 1024 * 1024;
/** Loaded entries moved into the key map per piece, and the time a turn of the event loop gives to it. */
const FOLD_PIECE = 4096;
const FOLD_TURN_MS = 4;

interface PendingTxn {
  /** The WAL record; absent for a transaction that changed nothing but must still wait its turn. */
  readonly payload: string | undefined;
  readonly change: StoreChange | undefined;
  readonly result: TxnResult;
  readonly resolve: (result: TxnResult) => void;
  readonly reject: (err: unknown) => void;
  /** performance.now() at txn(), for onCommit. */
  readonly queuedAt: number;
}

type Phase = 'new' | 'opening' | 'open' | 'closing' | 'closed';

function toWalOp(event: StoreEvent): WalOp {
  return event.type === 'put' && event.entry !== undefined ? ['p', event.key, event.entry.value] : ['d', event.key];
}

/**
 * Two views of the key space. `latest` includes every evaluated transaction and is what compares
 * run against, so transactions serialise in call order without waiting for the disk. `published`
 * only moves once a group commit is durable, and is what get/range/revision and listeners see.
 * `latest` is `published` under an overlay of the changes not yet durable (one map of every key,
 * not two); entries are immutable and shared.
 */
export class EmbeddedStore implements Store {
  private readonly dir: string;
  private readonly logger: EmbeddedStoreLogger;
  private readonly syncAlways: boolean;
  private readonly snapshotEveryBytes: number;
  private readonly onCommit: ((timing: CommitTiming) => void) | undefined;
  private readonly lock: DirLock;

  private phase: Phase = 'new';
  private openTask: Promise<unknown> | undefined;
  private closeTask: Promise<void> | undefined;
  private wal: WalWriter | undefined;
  /** Size of the current segment before the batch being written: where a failed batch is cut off. */
  private walGoodSize = 0;

  /** Set while the log cannot be written (ENOSPC, EIO): every write is refused with it until a repair succeeds. */
  private fault: SwitchyardError | undefined;
  private faultSince = 0;
  private repairTimer: NodeJS.Timeout | undefined;
  private repairTask: Promise<void> | undefined;
  /** Failed repairs (and writes failing right after one) in a row: the backoff grows with it. */
  private repairAttempt = 0;
  private readonly writability = new Set<WritabilityListener>();

  private published = MemoryState.empty();
  private latest = new OverlayState(this.published);
  private latestRevision = 0;
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
    this.onCommit = opts.onCommit;
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
        this.published = rec.state;
        this.latest = new OverlayState(this.published);
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
    const entries = this.published.entriesUnordered();
    this.foldKeyIndex();
    return { revision: this.publishedRevision, entries };
  }

  /**
   * Builds the key map of a state loaded from a snapshot after open, a few milliseconds per turn of
   * the event loop, so the agent serves meanwhile (lookups take a binary search until it is done).
   */
  private foldKeyIndex(): void {
    const state = this.published;
    const turn = (): void => {
      if (this.phase !== 'open') return;
      const until = performance.now() + FOLD_TURN_MS;
      while (!state.foldIndex(FOLD_PIECE)) {
        if (performance.now() >= until) {
          setImmediate(turn);
          return;
        }
      }
    };
    if (!state.indexed) setImmediate(turn);
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    if (this.phase !== 'open') {
      return Promise.reject(new SwitchyardError('SY_ERR_STORE_CLOSED', `store in ${this.dir} is ${this.phase === 'new' || this.phase === 'opening' ? 'not open yet' : 'closed'}`));
    }
    if (this.fault !== undefined) return Promise.reject(this.fault);
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
      this.queue.push({ payload, change, result, resolve, reject, queuedAt: performance.now() });
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

  /** False while the write-ahead log cannot be written (reads go on; writes get SY_ERR_STORE_UNAVAILABLE). */
  writable(): boolean {
    return this.fault === undefined;
  }

  /** Subscribes to writability changes (the health check and the metric follow them). Returns an unsubscribe function. */
  onWritability(listener: WritabilityListener): () => void {
    this.writability.add(listener);
    return () => void this.writability.delete(listener);
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
      writable: this.fault === undefined ? 'yes' : 'no',
      // 'building' for a moment after opening on a snapshot (see foldKeyIndex).
      keyIndex: this.published.indexed ? 'ready' : 'building',
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
    clearTimeout(this.repairTimer);
    await this.repairTask;
    await this.whenIdle();
    await this.snapshotTask;
    let failed: unknown;
    try {
      if (this.wal !== undefined) {
        if (this.fault === undefined) {
          await this.wal.sync();
          await this.wal.close();
        } else {
          // Everything acknowledged is durable already; the handle may be the broken one.
          await this.wal.close().catch(() => undefined);
        }
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
      while (this.queue.length > 0 && this.fault === undefined) {
        const batch = this.queue;
        this.queue = [];
        let diskSeconds: number | undefined;
        try {
          diskSeconds = await this.writeBatch(batch);
        } catch (err) {
          this.fail(err, batch);
          break;
        }
        this.publish(batch);
        if (this.onCommit !== undefined) this.reportCommit(batch, diskSeconds);
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

  /** Appends the batch's records (and syncs them); resolves with the seconds that took, undefined when it had none. */
  private async writeBatch(batch: readonly PendingTxn[]): Promise<number | undefined> {
    const payloads: string[] = [];
    for (const item of batch) if (item.payload !== undefined) payloads.push(item.payload);
    if (payloads.length === 0) return undefined;
    const started = performance.now();
    const wal = this.wal as WalWriter;
    this.walGoodSize = wal.size;
    await wal.append(encodeFrames(payloads));
    if (this.syncAlways) await wal.sync();
    this.commits++;
    this.repairAttempt = 0;
    return (performance.now() - started) / 1000;
  }

  private reportCommit(batch: readonly PendingTxn[], diskSeconds: number | undefined): void {
    const now = performance.now();
    try {
      (this.onCommit as (timing: CommitTiming) => void)({ diskSeconds, txnSeconds: batch.map((t) => (now - t.queuedAt) / 1000) });
    } catch (err) {
      this.logger.warn({ err: errorMessage(err) }, 'store commit observer failed');
    }
  }

  private publish(batch: readonly PendingTxn[]): void {
    for (const item of batch) {
      const change = item.change;
      if (change !== undefined) {
        applyEvents(this.published, change.events);
        this.latest.settled(change.events);
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
   * After a failed write or fsync the segment's tail is unknown (a partial frame, or pages the kernel
   * dropped), and `latest` holds changes that will never reach disk. The failed batch and everything
   * queued behind it (decided on top of it) are refused, `latest` goes back to what is durable, and
   * writes stay refused until a repair has cut the segment back and the disk has taken a write.
   */
  private fail(err: unknown, batch: readonly PendingTxn[]): void {
    const reason = errorMessage(err);
    const error = new SwitchyardError('SY_ERR_STORE_UNAVAILABLE',
      `the write-ahead log ${this.wal?.name ?? ''} in ${this.dir} could not be written (${reason}): nothing was applied; ` +
      'writes are refused until the log can be written again (retried automatically, reads go on)', { cause: err });
    const doomed = [...batch, ...this.queue];
    this.queue = [];
    this.latest.reset();
    this.latestRevision = this.publishedRevision;
    const first = this.fault === undefined;
    this.fault = error;
    if (first) {
      this.faultSince = Date.now();
      // Once per outage: every refused write gets the error, the log gets one line.
      this.logger.warn({ dir: this.dir, wal: this.wal?.name, err: reason }, `store unwritable: ${error.message}`);
      this.notifyWritability(false, reason);
    }
    for (const item of doomed) item.reject(error);
    this.scheduleRepair();
  }

  private scheduleRepair(): void {
    if (this.phase !== 'open' || this.repairTimer !== undefined || this.repairTask !== undefined) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      this.repairTask = this.repair().finally(() => {
        this.repairTask = undefined;
        if (this.fault !== undefined) this.scheduleRepair();
      });
    }, repairDelayMs(this.repairAttempt++));
  }

  private async repair(): Promise<void> {
    if (this.phase !== 'open' || this.fault === undefined || this.wal === undefined) return;
    try {
      this.wal = await reopenSegment(this.dir, this.wal, this.walGoodSize);
      await probeWritable(this.dir);
    } catch (err) {
      const reason = errorMessage(err);
      this.fault = new SwitchyardError('SY_ERR_STORE_UNAVAILABLE',
        `the write-ahead log in ${this.dir} cannot be written (${reason}) since ${new Date(this.faultSince).toISOString()}: ` +
        'writes are refused until it can be written again (retried automatically, reads go on)', { cause: err });
      return;
    }
    const downMs = Date.now() - this.faultSince;
    this.fault = undefined;
    this.logger.info({ dir: this.dir, wal: this.wal.name, unwritableMs: downMs }, `store writable again after ${(downMs / 1000).toFixed(1)} s`);
    this.notifyWritability(true, undefined);
  }

  private notifyWritability(writable: boolean, reason: string | undefined): void {
    for (const l of [...this.writability]) {
      try {
        l(writable, reason);
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, 'writability listener threw');
      }
    }
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
    // Read chunk by chunk while the snapshot is written: new writes go on meanwhile.
    const entries = this.published.pin();
    let next: WalWriter | undefined;
    try {
      next = await WalWriter.open(this.dir, revision + 1);
      await fsyncDir(this.dir);
    } catch (err) {
      entries.release();
      await next?.close().catch(() => undefined);
      this.rotateRetryAt = old.size + this.snapshotEveryBytes;
      this.logger.warn({ dir: this.dir, err: errorMessage(err) }, 'could not start a new WAL segment; snapshot postponed');
      return;
    }
    this.wal = next;
    this.rotateRetryAt = 0;
    this.snapshotTask = this.snapshot(old, revision, entries).finally(() => {
      entries.release();
      this.snapshotTask = undefined;
    });
  }

  private async snapshot(old: WalWriter, revision: number, entries: EntrySource): Promise<void> {
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
