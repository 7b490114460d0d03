/**
 * Consul's KV lock rules (kvsLockTxn, kvsUnlockTxn, the lock-delay pre-check) as pure decisions
 * over guarded reads, shared by `PUT /v1/kv?acquire|release` and the `lock`/`unlock` verbs of
 * `/v1/txn`.
 */
import { keys } from '../model.js';
import { parseStored } from '../stored.js';
import type { CheckRecord, KvRecord } from '../model.js';
import type { Reads } from '../optimistic.js';
import { sessionCheckIds, sessionKeys } from './model.js';
import type { LockDelayRecord, SessionRecord } from './model.js';

/** A KV value as a write carries it. */
export interface KvWrite {
  readonly value: string | null;
  readonly flags: string;
}

/**
 * The session if it can hold locks: it exists, and (because check failures invalidate sessions a
 * moment after the check's write, not in the same transaction as in Consul) neither its node nor
 * any of its checks is gone or critical. Every key read is guarded.
 */
export function liveSession(reads: Reads, id: string): SessionRecord | undefined {
  const e = reads.get(sessionKeys.session(id));
  const rec = e ? parseStored<SessionRecord>(e.value) : undefined;
  if (!rec) return undefined;
  if (!reads.get(keys.node(rec.Node))) return undefined;
  for (const c of sessionCheckIds(rec)) {
    const ce = reads.get(keys.check(rec.Node, c));
    if (!ce || parseStored<CheckRecord>(ce.value)?.Status === 'critical') return undefined;
  }
  return rec;
}

/** Whether the key is inside the lock-delay left by its last holder's invalidation (guarded read). */
export function lockDelayed(reads: Reads, kvKey: string, now: number): boolean {
  const e = reads.get(sessionKeys.lockDelay(kvKey));
  const rec = e ? parseStored<LockDelayRecord>(e.value) : undefined;
  return rec !== undefined && rec.Until > now;
}

/**
 * The entry after `session` takes the lock, or undefined when another session holds it. The first
 * acquisition by a session bumps LockIndex; re-acquiring a held lock keeps it.
 */
export function lockedRecord(prev: KvRecord | undefined, session: string, w: KvWrite): KvRecord | undefined {
  if (prev?.Session && prev.Session !== session) return undefined;
  const lockIndex = prev?.Session === session ? prev.LockIndex : (prev?.LockIndex ?? 0) + 1;
  return { Flags: w.flags, Value: w.value, LockIndex: lockIndex, Session: session };
}

/** The entry after `session` releases the lock, or undefined when the key is absent or held by someone else. */
export function unlockedRecord(prev: KvRecord | undefined, session: string, w: KvWrite): KvRecord | undefined {
  if (!prev || prev.Session !== session) return undefined;
  return { Flags: w.flags, Value: w.value, LockIndex: prev.LockIndex };
}
