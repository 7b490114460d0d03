/**
 * Which commit time a source's next ServiceSet carries: the earliest new change among the watch
 * answers since the last set (a coalesced burst is measured from its oldest change). An answer
 * brings a new change when its time is newer than the same watch's previous answer; a watch's
 * first answer (a newly followed service) only when it is newer than everything the last emitted
 * set knew. A re-read after an index reset, or a new watch reading old state, carries none.
 */
import type { ChangeStamp } from './types.js';

export class ChangeClock {
  /** The newest change time the last emitted set included. */
  #watermark = 0;
  #maxSeen = 0;
  /** watch → its last answer's change time. */
  readonly #last = new Map<string, number>();
  #pending: ChangeStamp | undefined;
  #emitted = false;
  #lastClock: ChangeStamp['clock'] | undefined;

  /** One changed answer of `watch`: `indexTime` from the registry when it says, else the arrival time stands in. */
  note(watch: string, indexTime: number | undefined, receivedAt: number): void {
    const stamp: ChangeStamp = indexTime !== undefined ? { committedAt: indexTime, clock: 'registry' } : { committedAt: receivedAt, clock: 'arrival' };
    const t = stamp.committedAt;
    this.#lastClock = stamp.clock;
    if (t > this.#maxSeen) this.#maxSeen = t;
    const prev = this.#last.get(watch);
    this.#last.set(watch, t);
    if (!this.#emitted || t <= (prev ?? this.#watermark)) return;
    if (this.#pending === undefined || t < this.#pending.committedAt) this.#pending = stamp;
  }

  /** A watch ended (its service is no longer followed). */
  forget(watch: string): void {
    this.#last.delete(watch);
  }

  /** Where the last answer's time came from (for the source's status). */
  get clock(): ChangeStamp['clock'] | undefined {
    return this.#lastClock;
  }

  /**
   * The stamp for the set about to be emitted (undefined for the first set: the state as found is
   * no change). `emitting` false: the answers so far changed nothing that is emitted; forget them
   * (the same change may still arrive on another watch and count there).
   */
  take(emitting: boolean): ChangeStamp | undefined {
    const p = this.#pending;
    this.#pending = undefined;
    if (!emitting) return undefined;
    this.#emitted = true;
    this.#watermark = this.#maxSeen;
    return p;
  }
}
