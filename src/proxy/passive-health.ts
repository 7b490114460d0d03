/**
 * Passive health from the traffic itself: nginx's max_fails within fail_timeout, plus Envoy-style
 * outlier ejection on consecutive 5xx with a backoff that grows with each ejection.
 */
import type { UpstreamStates } from '../balancer/index.js';

export interface PassiveHealthOptions {
  maxFails: number;
  failTimeoutMs: number;
  consecutive5xx: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
}

export class PassiveHealth {
  readonly #o: PassiveHealthOptions;
  readonly #states: UpstreamStates;
  readonly #onEject: (id: string, reason: string, ms: number) => void;

  constructor(states: UpstreamStates, opts: PassiveHealthOptions, onEject: (id: string, reason: string, ms: number) => void) {
    this.#states = states;
    this.#o = opts;
    this.#onEject = onEject;
  }

  /** A connect error, reset or timeout talking to the upstream. */
  failure(id: string): void {
    const now = this.#states.now();
    const s = this.#states.get(id);
    s.consecutiveFailures++;
    if (this.#o.maxFails > 0) {
      // The window lives on the upstream's record, so it is forgotten with it (UpstreamStates.forget).
      if (s.failWindowFails === 0 || now - s.failWindowSince > this.#o.failTimeoutMs) {
        s.failWindowFails = 0;
        s.failWindowSince = now;
      }
      s.failWindowFails++;
      if (s.failWindowFails >= this.#o.maxFails && s.ejectedUntil <= now) {
        const fails = s.failWindowFails;
        s.failWindowFails = 0;
        this.#eject(id, `${fails} failures within ${this.#o.failTimeoutMs} ms (max_fails)`, this.#o.failTimeoutMs);
      }
    }
  }

  /** A response arrived; 5xx counts toward outlier ejection, anything else resets it. */
  response(id: string, status: number): void {
    const s = this.#states.get(id);
    if (status >= 500) {
      s.consecutiveFailures++;
      if (this.#o.consecutive5xx > 0 && s.consecutiveFailures >= this.#o.consecutive5xx && s.ejectedUntil <= this.#states.now()) {
        const ms = Math.min(this.#o.baseEjectionMs * (s.ejections + 1), this.#o.maxEjectionMs);
        s.consecutiveFailures = 0;
        this.#eject(id, `${this.#o.consecutive5xx} consecutive 5xx responses (outlier)`, ms);
      }
    } else if (s.consecutiveFailures !== 0) {
      s.consecutiveFailures = 0;
    }
  }

  #eject(id: string, reason: string, ms: number): void {
    this.#states.eject(id, this.#states.now() + ms);
    this.#onEject(id, reason, ms);
  }
}
