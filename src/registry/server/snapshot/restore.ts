/**
 * Restoring a snapshot: the store is made equal to it. Through an agent that is ONE guarded
 * transaction, so readers see either the old catalog or the restored one, never a mix, and a write
 * racing the restore makes it plan again instead of being overwritten unseen. Into a store no agent
 * serves (etcd, whose transactions are small) it is a series of guarded batches. Only what differs
 * is written: a key whose value is the same keeps its indexes, so blocking queries on the parts the
 * restore does not change stay parked. Revisions keep going up (the restored keys get the restore's
 * revision): a client's blocking index never has to go backwards, unlike Consul's restore.
 */
import { HttpError, SwitchyardError } from '../../../core/errors.js';
import type { Store, StoreCompare, StoreEntry, StoreOp } from '../../store/types.js';
import { optimistic, unchanged } from '../optimistic.js';
import { MEMBERSHIP_PREFIXES, storedValueProblem } from '../stored-schema.js';
import { SESSION_TTL_MULTIPLIER, sessionKeys, sessionTtlNs } from '../sessions/model.js';
import type { SessionRecord, SessionTtlRecord } from '../sessions/model.js';
import { SnapshotError } from './format.js';

/**
 * The most one restore writes (keys and values of its writes). The embedded store logs a
 * transaction as one record, and one record must stay well inside a JavaScript string; this is
 * about a million keys of the usual size (500,000 instances with one check each).
 */
export const MAX_RESTORE_BYTES = 256 * 1024 * 1024;

export interface RestoreSummary {
  /** The revision the restore committed at (the current one when nothing differed). */
  readonly revision: number;
  readonly written: number;
  readonly deleted: number;
  readonly unchanged: number;
  /** Cluster membership keys in the snapshot, not restored (they belong to the agents alive when it was taken). */
  readonly skipped: number;
}

const isMembership = (key: string): boolean => MEMBERSHIP_PREFIXES.some((p) => key.startsWith(p));

/** How long the shape check runs before it lets the agent's other requests through (it costs about 2.5 µs a key). */
const CHECK_SLICE_MS = 10;

/**
 * Checks every entry against the shapes the registry writes, before anything is planned, in slices
 * of about 10 ms: 200,000 keys held the agent's event loop for 0.5–0.7 s in one piece.
 */
export async function checkEntries(entries: readonly StoreEntry[]): Promise<void> {
  let sliceStart = performance.now();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as StoreEntry;
    if (!isMembership(e.key)) {
      const problem = storedValueProblem(e.key, e.value);
      if (problem !== undefined) throw new SnapshotError(`key ${JSON.stringify(e.key)}: ${problem}`);
    }
    if ((i & 255) === 255 && performance.now() - sliceStart > CHECK_SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

/**
 * A restored session's TTL deadline becomes at least 2×TTL from now, as Consul's leader gives every
 * session after a restore: the snapshot's deadlines have mostly passed, and the holders of those
 * sessions may still be renewing them.
 */
function freshDeadlines(want: Map<string, string>, nowMs: number): void {
  for (const [key, value] of want) {
    if (!key.startsWith(sessionKeys.TTL_PREFIX)) continue;
    const session = want.get(sessionKeys.session(key.slice(sessionKeys.TTL_PREFIX.length)));
    if (session === undefined) continue;
    const due = nowMs + (sessionTtlNs(JSON.parse(session) as SessionRecord) / 1e6) * SESSION_TTL_MULTIPLIER;
    const rec = JSON.parse(value) as SessionTtlRecord;
    if (rec.Expires < due) want.set(key, JSON.stringify({ ...rec, Expires: due }));
  }
}

export interface RestoreOptions {
  /** Wall clock (ms) for the restored sessions' fresh deadlines. */
  readonly nowMs: number;
  /** Gives up planning again after this long when writes keep racing it. */
  readonly timeoutMs?: number;
}

/** The snapshot's keys and values as a restore writes them: checked, membership keys left out, fresh TTL deadlines. */
async function wanted(entries: readonly StoreEntry[], nowMs: number): Promise<{ want: Map<string, string>; skipped: number }> {
  await checkEntries(entries);
  const want = new Map<string, string>();
  let skipped = 0;
  for (const e of entries) {
    if (isMembership(e.key)) skipped++;
    else want.set(e.key, e.value);
  }
  freshDeadlines(want, nowMs);
  return { want, skipped };
}

/** One write of a restore with its guard ("the key is still as the plan read it") and its size. */
interface Step {
  readonly op: StoreOp;
  readonly guard: StoreCompare;
  readonly bytes: number;
}

interface Diff {
  readonly steps: Step[];
  readonly deleted: number;
  readonly unchanged: number;
  /** Every key the plan read, equal ones included: what a single transaction guards. */
  readonly guards: StoreCompare[];
}

/** What makes the store equal to `want`, read from the store's state in one piece. */
function diff(store: Store, want: ReadonlyMap<string, string>): Diff {
  const steps: Step[] = [];
  const guards: StoreCompare[] = [];
  let same = 0;
  let deleted = 0;
  for (const e of store.range('')) {
    if (isMembership(e.key)) continue;
    const guard = unchanged(e.key, e);
    guards.push(guard);
    const v = want.get(e.key);
    if (v === undefined) {
      steps.push({ op: { type: 'delete', key: e.key }, guard, bytes: e.key.length });
      deleted++;
    } else if (v !== e.value) steps.push({ op: { type: 'put', key: e.key, value: v }, guard, bytes: e.key.length + v.length });
    else same++;
  }
  for (const [key, value] of want) {
    if (store.get(key) !== undefined) continue;
    const guard = unchanged(key, undefined);
    guards.push(guard);
    steps.push({ op: { type: 'put', key, value }, guard, bytes: key.length + value.length });
  }
  return { steps, deleted, unchanged: same, guards };
}

/** The restore as ONE guarded transaction (the embedded store): readers see the old state or the restored one. */
export async function restoreEntries(store: Store, entries: readonly StoreEntry[], opts: RestoreOptions): Promise<RestoreSummary> {
  const { want, skipped } = await wanted(entries, opts.nowMs);
  return optimistic(store, () => {
    const d = diff(store, want);
    const bytes = d.steps.reduce((n, s) => n + s.bytes, 0);
    if (bytes > MAX_RESTORE_BYTES) {
      throw new HttpError(413, `the restore would write ${Math.ceil(bytes / 2 ** 20)} MiB of keys and values in one transaction; the most is ${MAX_RESTORE_BYTES / 2 ** 20} MiB`);
    }
    const summary = (revision: number): RestoreSummary => ({ revision, written: d.steps.length - d.deleted, deleted: d.deleted, unchanged: d.unchanged, skipped });
    if (d.steps.length === 0) return { done: summary };
    return { txn: { compare: d.guards, success: d.steps.map((s) => s.op) }, done: summary };
  }, { what: 'snapshot restore', timeoutMs: opts.timeoutMs ?? 30_000 });
}

export interface BatchLimits {
  /** Operations per transaction (etcd's --max-txn-ops is 128 by default; each write here is a compare and an op). */
  readonly maxOps: number;
  /** Keys and values per transaction (etcd refuses requests past 1.5 MiB by default). */
  readonly maxBytes: number;
}

/**
 * The restore in several transactions, for a store that cannot take it in one (etcd) and that no
 * agent is serving from meanwhile (the caller checks): each guards the keys it writes, a lost guard
 * plans the rest again on fresh state, and running it again after an interruption finishes the job.
 */
export async function restoreInBatches(store: Store, entries: readonly StoreEntry[], opts: RestoreOptions & BatchLimits): Promise<RestoreSummary & { transactions: number }> {
  const { want, skipped } = await wanted(entries, opts.nowMs);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let written = 0;
  let deleted = 0;
  let transactions = 0;
  let first: Diff | undefined;
  for (;;) {
    const d = diff(store, want);
    first ??= d;
    if (d.steps.length === 0) {
      return { revision: store.revision(), written, deleted, unchanged: first.unchanged, skipped, transactions };
    }
    let lost = false;
    for (let i = 0; i < d.steps.length && !lost;) {
      const batch: Step[] = [];
      let bytes = 0;
      while (i < d.steps.length && batch.length < opts.maxOps && (batch.length === 0 || bytes + (d.steps[i] as Step).bytes <= opts.maxBytes)) {
        const s = d.steps[i++] as Step;
        batch.push(s);
        bytes += s.bytes;
      }
      const r = await store.txn({ compare: batch.map((s) => s.guard), success: batch.map((s) => s.op) });
      transactions++;
      if (r.succeeded) {
        for (const s of batch) if (s.op.type === 'delete') deleted++; else written++;
      } else lost = true;
    }
    if (lost) {
      if (Date.now() > deadline) throw new SwitchyardError('SY_ERR_CONFLICT', 'snapshot restore: gave up: the keys it writes kept changing under it (is an agent running on this store?)');
      // The store's view of the keys catches up with the write that beat this one (etcd: a watch round trip).
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
