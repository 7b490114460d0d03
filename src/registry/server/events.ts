/**
 * User events (/v1/event/fire, /v1/event/list): an agent-local ring buffer of the last 256 events,
 * as a Consul agent keeps. Consul spreads events by gossip to every agent; Switchyard has no
 * gossip, so an event is seen by the agent it was fired at (documented in docs/registry.md). The
 * node, service and tag filters decide, as in Consul, whether this agent keeps it at all.
 */
import { randomUUID } from 'node:crypto';
import { HttpError, badRequest } from '../../core/errors.js';
import { RE2JS } from 're2js';
import type { Cancel } from './catalog-reader.js';

export interface UserEvent {
  ID: string;
  Name: string;
  /** base64, or null without a payload (Go's []byte). */
  Payload: string | null;
  NodeFilter: string;
  ServiceFilter: string;
  TagFilter: string;
  Version: number;
  LTime: number;
}

export interface FireInput {
  readonly name: string;
  readonly payload: Buffer;
  readonly node: string;
  readonly service: string;
  readonly tag: string;
}

export interface EventBufferOptions {
  /** This agent's node name (the node filter matches it). */
  readonly node: string;
  /** This agent's own services (the service and tag filters match them; Consul matches the service ID). */
  readonly localServices: () => Iterable<{ readonly ID: string; readonly Tags: readonly string[] }>;
  /** Consul keeps 256. */
  readonly size?: number;
}

/** Serf's UserEventSizeLimit, counted on name plus payload. */
export const USER_EVENT_SIZE_LIMIT = 512;
const USER_EVENT_VERSION = 1;

/** Go's regexp (RE2) through a linear-time engine, as the ?filter matcher: no filter can make a match backtrack. */
function regexp(what: string, src: string): RE2JS {
  try {
    return RE2JS.compile(src);
  } catch (err) {
    throw badRequest(`Invalid ${what} filter: ${(err as Error).message}`);
  }
}

/** Consul's uuidToUint64: the two 64-bit halves of the newest event's ID XORed, as the list's index. */
export function eventIndex(events: readonly UserEvent[]): bigint {
  const last = events[events.length - 1];
  if (!last) return 1n;
  const hex = last.ID.replace(/-/g, '');
  return BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16, 32)}`);
}

export class EventBuffer {
  readonly #o: EventBufferOptions;
  readonly #size: number;
  #events: UserEvent[] = [];
  #ltime = 0;
  #waiters = new Set<() => void>();

  constructor(opts: EventBufferOptions) {
    this.#o = opts;
    this.#size = opts.size ?? 256;
  }

  /** Validates and records an event; returns it as Consul's fire answer shows it (LTime 0: gossip assigns it later). */
  fire(input: FireInput): UserEvent {
    if (input.name === '') throw badRequest('Missing name');
    if (input.tag !== '' && input.service === '') throw badRequest('Cannot provide tag filter without service filter');
    const nodeRe = input.node === '' ? undefined : regexp('node', input.node);
    const serviceRe = input.service === '' ? undefined : regexp('service', input.service);
    const tagRe = input.tag === '' ? undefined : regexp('tag', input.tag);
    const size = Buffer.byteLength(input.name) + input.payload.length;
    if (size > USER_EVENT_SIZE_LIMIT) {
      throw new HttpError(413, `user event exceeds configured limit of ${USER_EVENT_SIZE_LIMIT} bytes before encoding (name and payload: ${size} bytes)`);
    }
    const event: UserEvent = {
      ID: randomUUID(), Name: input.name, Payload: input.payload.length === 0 ? null : input.payload.toString('base64'),
      NodeFilter: input.node, ServiceFilter: input.service, TagFilter: input.tag, Version: USER_EVENT_VERSION, LTime: 0,
    };
    if (this.#mine(nodeRe, serviceRe, tagRe)) {
      this.#events.push({ ...event, LTime: ++this.#ltime });
      if (this.#events.length > this.#size) this.#events = this.#events.slice(-this.#size);
      const waiters = this.#waiters;
      this.#waiters = new Set();
      for (const w of waiters) w();
    }
    return event;
  }

  /** Oldest first, optionally only one name. */
  list(name: string): UserEvent[] {
    return name === '' ? [...this.#events] : this.#events.filter((e) => e.Name === name);
  }

  /** Parks until an event is recorded (→ true), the timeout passes or `cancel` fires (→ false). */
  wait(timeoutMs: number, cancel: Cancel): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (changed: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unlisten();
        this.#waiters.delete(wake);
        resolve(changed);
      };
      const wake = (): void => finish(true);
      const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
      const unlisten = cancel.onCancel(() => finish(false));
      if (cancel.cancelled) finish(false);
      else this.#waiters.add(wake);
    });
  }

  /** Consul's shouldProcessUserEvent: the node name, then a local service ID (and one of its tags). */
  #mine(nodeRe: RE2JS | undefined, serviceRe: RE2JS | undefined, tagRe: RE2JS | undefined): boolean {
    if (nodeRe && !nodeRe.test(this.#o.node)) return false;
    if (!serviceRe) return true;
    for (const s of this.#o.localServices()) {
      if (!serviceRe.test(s.ID)) continue;
      if (!tagRe || s.Tags.some((t) => tagRe.test(t))) return true;
    }
    return false;
  }
}
