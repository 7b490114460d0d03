/**
 * Stale-watch detection for a source's blocking queries: a watch that has heard nothing from the
 * registry (no answer, not even a timed-out one) for longer than its blocking wait plus a margin is
 * stale. A hung agent, a black-holed connection or a stuck proxy look like a quiet registry
 * otherwise: the table would silently stop following changes.
 */
import type { Logger } from 'pino';
import { monotonicClock } from '../core/clock.js';

export interface StaleWatchesOptions {
  /** The blocking wait the watches ask for (ms). */
  waitMs: number;
  /** Silence tolerated beyond the wait and Consul's wait/16 jitter (ms). */
  marginMs: number;
  logger: Logger;
  now?: () => number;
}

export class StaleWatches {
  readonly #o: StaleWatchesOptions;
  readonly #now: () => number;
  /** watch name → when it last heard an answer (or started), on the monotonic clock. */
  readonly #heard = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;
  #stale: string[] = [];

  constructor(opts: StaleWatchesOptions) {
    this.#o = opts;
    // Monotonic: a wall clock stepped forward would call every watch stale, stepped back none.
    this.#now = opts.now ?? monotonicClock.now;
    // A quarter of the margin keeps detection within the margin's slack, never busier than 4 checks a second.
    this.#timer = setInterval(() => this.check(), Math.max(250, Math.min(5000, opts.marginMs / 4)));
    this.#timer.unref();
  }

  /** How long a watch may stay silent (ms). */
  get staleAfterMs(): number {
    return this.#o.waitMs + this.#o.waitMs / 16 + this.#o.marginMs;
  }

  /** A watch starts: its clock starts now. */
  started(watch: string): void {
    this.#heard.set(watch, this.#now());
  }

  /** Any answer from the registry to this watch, changed or not. */
  heard(watch: string): void {
    this.#heard.set(watch, this.#now());
    if (this.#stale.includes(watch)) this.check();
  }

  stopped(watch: string): void {
    this.#heard.delete(watch);
    if (this.#stale.includes(watch)) this.check();
  }

  /** The silent watches with when each last heard from the registry, most silent first. */
  staleWatches(): { watch: string; lastHeard: string }[] {
    return this.#stale.map((w) => ({ watch: w, lastHeard: new Date(this.#heard.get(w) ?? 0).toISOString() }));
  }

  get stale(): boolean {
    return this.#stale.length > 0;
  }

  /** Re-evaluates every watch; logs when the state changes (stale ↔ answering). */
  check(): void {
    const now = this.#now();
    const limit = this.staleAfterMs;
    const silent = [...this.#heard].filter(([, t]) => now - t > limit).sort((a, b) => a[1] - b[1]).map(([w]) => w);
    const was = this.#stale.length > 0;
    this.#stale = silent;
    if (silent.length > 0 && !was) {
      const oldest = this.#heard.get(silent[0] as string) ?? now;
      this.#o.logger.warn({ watches: silent, silentForMs: now - oldest, staleAfterMs: limit }, 'registry watch stale: no answer from the registry within the blocking wait plus margin; the table may be out of date');
    } else if (silent.length === 0 && was) {
      this.#o.logger.info('registry watches answering again: no longer stale');
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
