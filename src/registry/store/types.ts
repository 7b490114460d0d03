/**
 * The storage interface under the registry: a revisioned key-value store with ordered change
 * notification, shaped after etcd v3 so that the embedded store and the etcd store are
 * interchangeable (one contract suite runs against both).
 */
import { SwitchyardError } from '../../core/errors.js';

/** One stored key. Revisions come from one store-wide counter that only goes up (Consul's index). */
export interface StoreEntry {
  readonly key: string;
  readonly value: string;
  /** Revision of the transaction that created the key (Consul CreateIndex). */
  readonly createRevision: number;
  /** Revision of the last transaction that wrote the key (Consul ModifyIndex). */
  readonly modRevision: number;
  /** Number of writes since creation, starting at 1. */
  readonly version: number;
}

export type StoreOp =
  /** `lease`: an etcd lease id; the key is deleted when the lease expires (only the etcd store takes it). */
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'deletePrefix'; readonly prefix: string };

/**
 * A guard evaluated atomically with the transaction.
 * `modRevision` with value 0 means "the key does not exist" (Consul's cas=0).
 */
export type StoreCompare =
  | { readonly key: string; readonly target: 'modRevision'; readonly equals: number }
  | { readonly key: string; readonly target: 'exists'; readonly equals: boolean };

/**
 * A guarded transaction that may or may not have committed: the store lost its answer (a member
 * went away mid-request, or no answer came in time) and cannot resend it blindly, since a
 * compare-and-set that did commit would then fail its own compare. The caller may plan again on
 * fresh state when doing so gives the same answer either way (see optimistic.ts).
 */
export class StoreOutcomeUnknownError extends SwitchyardError {
  /** The store's time budget for a write (its --store-timeout): how long a caller may keep trying. */
  readonly budgetMs: number;
  constructor(message: string, cause: unknown, budgetMs: number) {
    super('SY_ERR_STORE_UNAVAILABLE', message, { cause });
    this.name = 'StoreOutcomeUnknownError';
    this.budgetMs = budgetMs;
  }
}

export interface TxnRequest {
  readonly compare?: readonly StoreCompare[];
  readonly success: readonly StoreOp[];
  readonly failure?: readonly StoreOp[];
}

export interface TxnResult {
  readonly succeeded: boolean;
  /**
   * The revision the transaction committed at. A transaction that changed nothing (failed
   * compare with no failure ops, or deletes of absent keys only) does not consume a revision
   * and reports the current one.
   */
  readonly revision: number;
}

export interface StoreEvent {
  readonly type: 'put' | 'delete';
  readonly key: string;
  /** The new entry for a put. */
  readonly entry?: StoreEntry;
  /** The entry before this event, when there was one. */
  readonly prev?: StoreEntry;
}

/** A committed transaction as listeners see it: all its events share one revision. */
export interface StoreChange {
  readonly revision: number;
  readonly events: readonly StoreEvent[];
}

export type StoreListener = (change: StoreChange) => void;

export interface StoreStats {
  readonly revision: number;
  readonly keys: number;
  readonly [extra: string]: number | string;
}

export interface Store {
  /**
   * Loads durable state (or connects). Resolves with every live entry (in no particular order) and
   * the current revision, so a consumer can build its view before subscribing. Calling it twice is
   * an error.
   */
  open(): Promise<{ readonly revision: number; readonly entries: readonly StoreEntry[] }>;
  /**
   * Applies a transaction atomically. Resolves only once the change is durable (embedded: in the
   * write-ahead log and fsynced; etcd: committed by quorum) and, for the embedded store, after
   * every listener has seen it.
   */
  txn(req: TxnRequest): Promise<TxnResult>;
  /** Current value of one key, as of the last change delivered to listeners. */
  get(key: string): StoreEntry | undefined;
  /** Live entries under a prefix, sorted by key, as of the last change delivered to listeners. */
  range(prefix: string): StoreEntry[];
  /**
   * Registers a listener for every change committed after open(), in revision order, delivered
   * synchronously and exactly once per change. Returns an unsubscribe function.
   */
  subscribe(listener: StoreListener): () => void;
  /** Revision of the last change delivered to listeners. */
  revision(): number;
  stats(): StoreStats;
  /** Flushes pending writes and releases files or connections. Idempotent. */
  close(): Promise<void>;
}
