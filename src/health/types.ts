/** Result types shared by the one-shot health check runners (HTTP, TCP, TTL output handling). */
import { MAX_TIMER_MS } from '../core/clock.js';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface CheckResult {
  status: CheckStatus;
  output: string;
}

/** Consul's default check timeout; used when a definition carries no usable timeout, so a check can never hang. */
export const DEFAULT_CHECK_TIMEOUT_MS = 10_000;

/** Consul's default cap on a check's captured output (agent `check_output_max_size`). */
export const DEFAULT_OUTPUT_MAX_SIZE = 4096;

/** A positive, timer-safe timeout (see MAX_TIMER_MS). */
export function effectiveTimeoutMs(timeoutMs: number): number {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return DEFAULT_CHECK_TIMEOUT_MS;
  return Math.min(timeoutMs, MAX_TIMER_MS);
}
