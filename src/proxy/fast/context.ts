/**
 * Per-proxy state of the fast plane: the coarse clock its timeouts run on, the cached Date header,
 * the two reusable head parsers, and the dependencies every connection and exchange reads.
 */
import type { UpstreamStates } from '../../balancer/index.js';
import { monotonicClock } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import type { LbConfig } from '../../config/lb.js';
import type { RequestDeps } from '../core/request.js';
import { mirrorTls } from '../core/request.js';
import { Head } from '../../core/http1/h1.js';
import type { PassiveHealth } from '../passive-health.js';
import { Mirrors } from './mirror.js';
import type { FastPools } from './pool.js';

export interface FastProxyDeps extends RequestDeps {
  readonly pools: FastPools;
  readonly states: UpstreamStates;
  readonly health: PassiveHealth;
  readonly config: LbConfig;
  /** Time source for the coarse clock (timeouts); the system clock unless a test drives it. */
  readonly clock?: Clock;
}

export class FastContext {
  readonly d: FastProxyDeps;
  readonly clock: Clock | undefined;
  /** Coarse time (ms since the epoch) for timeouts, refreshed on every tick. */
  now: number;
  /**
   * One parser per direction: a head is parsed and used synchronously before any other parse
   * runs on this proxy, so one instance each serves every connection.
   */
  readonly req: Head;
  readonly res: Head;
  readonly mirrors: Mirrors;
  #dateSecond = -1;
  #dateString = '';

  constructor(d: FastProxyDeps) {
    this.d = d;
    this.clock = d.clock;
    this.now = this.readClock();
    this.req = new Head(d.config.limits.maxHeaderCount);
    this.res = new Head(d.config.limits.maxHeaderCount);
    this.mirrors = new Mirrors({
      metrics: d.metrics,
      pools: d.pools,
      timeoutMs: Math.min(d.config.timeouts.headerMs, 30_000),
      res: this.res,
      now: () => this.now,
      tls: (route, up) => mirrorTls(d, route, up),
    });
  }

  readClock(): number {
    return (this.clock ?? monotonicClock).now();
  }

  /** The Date header value, recomputed once a second of the coarse clock, from the wall clock. */
  httpDate(): string {
    const s = Math.floor(this.now / 1000);
    if (s !== this.#dateSecond) {
      this.#dateSecond = s;
      this.#dateString = new Date(this.clock === undefined ? Date.now() : this.now).toUTCString();
    }
    return this.#dateString;
  }
}
