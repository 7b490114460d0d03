/**
 * Read-decide-write against the store with optimistic concurrency: a plan reads the local state,
 * decides, and names every key it read in its transaction's compares; a lost race (a compare
 * failed) re-plans on fresher state. This is what makes multi-key decisions (a lock acquisition,
 * a session's invalidation, a /v1/txn) atomic on both stores, including several agents on etcd.
 */
import { SwitchyardError } from '../../core/errors.js';
import { StoreOutcomeUnknownError } from '../store/types.js';
import type { Store, StoreCompare, StoreEntry, TxnRequest } from '../store/types.js';

/**
 * Lost commit outcomes resolved by planning again, at most, per operation: the store gives each
 * guarded attempt a third of its timeout, so three attempts still fail a store without quorum
 * within about its own timeout (--store-timeout), as a plain write does.
 */
const MAX_UNKNOWN_OUTCOMES = 2;

/** Returned by a plan's callbacks to plan again on fresher state. */
export const REPLAN: unique symbol = Symbol('replan');

export interface Plan<T> {
  /** The writes and their guards; absent when the plan decided without writing. */
  readonly txn?: TxnRequest;
  /** The answer once the transaction committed (given its revision), or at once without a txn. */
  readonly done: (revision: number) => T | typeof REPLAN;
  /** The answer when a compare failed; by default the plan runs again. */
  readonly lost?: () => T | typeof REPLAN;
  /**
   * Whether planning again on the state this transaction leaves gives the same answer as its
   * success (a plain write of a derived record, a lock the session already holds): then a commit
   * whose outcome the store lost is resolved by planning again instead of failing the request.
   */
  readonly replayable?: boolean;
}

export interface OptimisticOptions {
  /** Names the operation in the error raised when it keeps losing races. */
  readonly what: string;
  /** Gives up after this long (default 5 s). */
  readonly timeoutMs?: number;
}

/** The guard "this key is still as I read it" (absent keys compare as modRevision 0). */
export function unchanged(key: string, entry: StoreEntry | undefined): StoreCompare {
  return { key, target: 'modRevision', equals: entry?.modRevision ?? 0 };
}

/** Collects one guard per key read, so a plan can read freely and guard everything once. */
export class Reads {
  readonly #compares = new Map<string, StoreCompare>();
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  get(key: string): StoreEntry | undefined {
    const e = this.#store.get(key);
    if (!this.#compares.has(key)) this.#compares.set(key, unchanged(key, e));
    return e;
  }

  get compares(): StoreCompare[] {
    return [...this.#compares.values()];
  }
}

/**
 * Runs `plan` until its transaction commits (or it decides without writing). Between attempts it
 * waits for the local state to move past what the failed attempt read: on etcd the mirror may lag
 * the cluster by a watch round trip, and re-planning on the same stale state would lose again.
 */
export async function optimistic<T>(store: Store, plan: () => Plan<T>, opts: OptimisticOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  let deadline = Date.now() + timeoutMs;
  let unknown = 0;
  for (let attempt = 1; ; attempt++) {
    const seen = store.revision();
    const p = plan();
    let answer: T | typeof REPLAN;
    if (p.txn === undefined) answer = p.done(seen);
    else {
      let r;
      try {
        r = await store.txn(p.txn);
      } catch (err) {
        // The store spent part of its budget finding out; the next plan gets what the store gives a write.
        if (!(err instanceof StoreOutcomeUnknownError) || p.replayable !== true || ++unknown > MAX_UNKNOWN_OUTCOMES) throw err;
        deadline = Math.max(deadline, Date.now() + timeoutMs);
        await revisionAbove(store, seen, 100);
        continue;
      }
      answer = r.succeeded ? p.done(r.revision) : (p.lost?.() ?? REPLAN);
    }
    if (answer !== REPLAN) return answer;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new SwitchyardError('SY_ERR_CONFLICT', `${opts.what}: gave up after ${attempt} attempts: the keys it reads kept changing under it`);
    }
    await revisionAbove(store, seen, Math.min(left, 250));
  }
}

/** Resolves once the store has delivered a change after `revision`, or after `ms`. */
function revisionAbove(store: Store, revision: number, ms: number): Promise<void> {
  if (store.revision() > revision) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const unsubscribe = store.subscribe((c) => {
      if (c.revision > revision) done();
    });
  });
}
