/** UpstreamStates: the mutable per-upstream facts (in-flight, ejection, draining) that outlive routing snapshots. */
import { monotonicClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import type { UpstreamState } from './types.js';

/** Every field is set in the constructor, in one order, so every record shares one hidden class. */
class StateRecord implements UpstreamState {
  readonly id: string;
  inFlight: number;
  consecutiveFailures: number;
  failWindowFails: number;
  failWindowSince: number;
  ejectedUntil: number;
  ejections: number;
  draining: boolean;
  held: boolean;
  readonly since: number;

  constructor(id: string, since: number) {
    this.id = id;
    this.inFlight = 0;
    this.consecutiveFailures = 0;
    this.failWindowFails = 0;
    this.failWindowSince = 0;
    this.ejectedUntil = 0;
    this.ejections = 0;
    this.draining = false;
    this.held = false;
    this.since = since;
  }
}

/**
 * Facts keyed by upstream id. One instance lives as long as the proxy; snapshots come and go
 * around it. Eligibility changes go through methods that bump `version`, which is how strategies
 * know their cached eligibility is stale without scanning on every pick.
 */
export class UpstreamStates {
  readonly #clock: Clock;
  readonly #records = new Map<string, StateRecord>();
  /** Ids forget() was told about that still had requests in flight. */
  readonly #lingering = new Set<string>();
  #version = 0;

  constructor(clock: Clock = monotonicClock) {
    this.#clock = clock;
  }

  /** Changes whenever an ejection, restore, drain flag or invalidate() may have changed eligibility. */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#records.size;
  }

  now(): number {
    return this.#clock.now();
  }

  /** The record for `id`, created on first use (a new upstream starts healthy and idle). */
  get(id: string): UpstreamState {
    return this.#record(id);
  }

  /**
   * Makes a record that counts as long known (slow start does not ramp it): for the instances a
   * balancer finds when it starts, which are not new, only new to it.
   */
  seed(id: string): void {
    if (!this.#records.has(id)) this.#records.set(id, new StateRecord(id, 0));
  }

  peek(id: string): UpstreamState | undefined {
    return this.#records.get(id);
  }

  /** Takes the upstream out of rotation until `untilMs` on the injected clock. */
  eject(id: string, untilMs: number): void {
    const r = this.#record(id);
    r.ejectedUntil = untilMs;
    r.ejections++;
    this.#version++;
  }

  /** Ends an ejection early (a successful probe, an operator). */
  restore(id: string): void {
    const r = this.#record(id);
    if (r.ejectedUntil === 0) return;
    r.ejectedUntil = 0;
    this.#version++;
  }

  setDraining(id: string, draining: boolean): void {
    const r = this.#record(id);
    if (r.draining === draining) return;
    r.draining = draining;
    this.#version++;
  }

  setHeld(id: string, held: boolean): void {
    if (!held && !this.#records.has(id)) return;
    const r = this.#record(id);
    if (r.held === held) return;
    r.held = held;
    this.#version++;
  }

  /** Tells strategies to re-read eligibility, e.g. after an `isEligible` filter changed its mind. */
  invalidate(): void {
    this.#version++;
  }

  /**
   * Forgets idle upstreams that no current snapshot names, so ids of replaced containers do not
   * pile up. A record with requests in flight stays until they finish, or their completions
   * would land on a fresh record if the id came back. Returns how many were dropped.
   */
  retain(ids: ReadonlySet<string>): number {
    let dropped = 0;
    for (const [id, r] of this.#records) {
      if (!ids.has(id) && r.inFlight === 0) {
        this.#records.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Forgets upstreams that left the table (`gone`), as retain() does for everything not named,
   * at the cost of what left: a record with requests in flight is looked at again on later calls
   * until it is idle, unless `isLive` says its id came back. Returns how many were dropped.
   */
  forget(gone: Iterable<string>, isLive: (id: string) => boolean): number {
    let dropped = 0;
    for (const id of gone) this.#lingering.add(id);
    for (const id of this.#lingering) {
      const r = this.#records.get(id);
      if (r === undefined || isLive(id)) this.#lingering.delete(id);
      else if (r.inFlight === 0) {
        this.#records.delete(id);
        this.#lingering.delete(id);
        dropped++;
      }
    }
    return dropped;
  }

  #record(id: string): StateRecord {
    let r = this.#records.get(id);
    if (r === undefined) {
      r = new StateRecord(id, this.#clock.now());
      this.#records.set(id, r);
    }
    return r;
  }
}
