/**
 * The retry rule every data plane follows: a failure before anything reached an instance
 * (a refused or failed connect) may be retried for any method; a 502/503/504 or a reset only for
 * idempotent methods; never once a body was (partly) streamed; bounded by attempts and by a retry
 * budget shared by the planes. One rule in one place, so the planes cannot drift apart.
 */
import type { RetrySettings } from '../../config/route-spec.js';

export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
export const RETRY_STATUS: ReadonlySet<number> = new Set([502, 503, 504]);

/** Requests and retries in flight across both planes: the retry budget's base. */
export interface RetryCounters {
  activeRequests: number;
  activeRetries: number;
}

export interface RetryAttempt {
  readonly attempts: number;
  /** The client's exchange already ended (answered or gone). */
  readonly finished: boolean;
  readonly method: string;
  /** Nothing reached an instance (connect failed): safe for any method. */
  readonly safeForAnyMethod: boolean;
  /** Some of the request body was streamed to the failed attempt and cannot be sent again. */
  readonly bodySent: boolean;
  /**
   * The instance was not there: its connect was refused, or its connection was reset or closed
   * before a byte of the response came back (a killed process). Retrying puts no extra load on a
   * struggling service, so it is not charged to the budget — a budget meant to stop retry storms
   * must not turn one crashed instance into client errors.
   */
  readonly uncharged: boolean;
}

export function mayRetry(a: RetryAttempt, r: RetrySettings, counters: RetryCounters): boolean {
  if (a.attempts >= r.attempts || a.finished) return false;
  if (!a.safeForAnyMethod && !IDEMPOTENT.has(a.method)) return false;
  if (a.bodySent) return false;
  // The budget exists to stop retries from multiplying load on a struggling service.
  if (a.uncharged) return true;
  return counters.activeRetries < Math.max(r.minConcurrency, (r.budgetPercent / 100) * counters.activeRequests);
}
