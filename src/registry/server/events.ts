/**
 * User events (/v1/event/fire, /v1/event/list). Consul gossips an event to every agent and each
 * keeps the last 256 that its node, service and tag filters let through. Here the store is the
 * gossip: firing overwrites one key (EVENT_KEY), every agent on the store sees that write in its
 * change stream, applies the filters against itself and keeps the event in its own ring. The key's
 * version is the event's LTime: one counter for the whole cluster, as Serf's Lamport clock is, and
 * it survives restarts as Serf's snapshot keeps the clock. Only the newest event is stored, so an
 * agent sees the events fired while it was following the store (as a Consul agent sees the gossip
 * of its time in the cluster), and the stored bytes stay one event whatever the rate.
 */
import { randomUUID } from 'node:crypto';
import { HttpError, badRequest } from '../../core/errors.js';
import { RE2JS } from 're2js';
import type { Cancel } from './catalog-reader.js';
import type { StoreChange, StoreEntry, TxnRequest } from '../store/types.js';

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
  /** Writes the event to the store every agent follows; resolves once this agent has applied the write (so a list right after a fire shows it). */
  readonly commit: (req: TxnRequest) => Promise<void>;
  /** The stored entries at open: the event key's version is where the clock resumes. */
  readonly initial: readonly StoreEntry[];
  /** Told about a stored event this agent cannot read (written by something else): it is skipped. */
  readonly onUnreadable?: (reason: string) => void;
  /** Consul keeps 256. */
  readonly size?: number;
}

/** The one store key that carries the newest event (outside every other subsystem's prefixes). */
export const EVENT_KEY = 'ev/last';

/** Serf's UserEventSizeLimit, counted on name plus payload. */
export const USER_EVENT_SIZE_LIMIT = 512;
const USER_EVENT_VERSION = 1;

/** Go's regexp (RE2) through a linear-time engine, as the ?filter matcher: no filter can make a match backtrack. */
function regexp(what: string, src: string): RE2JS | undefined {
  if (src === '') return undefined;
  try {
    return RE2JS.compile(src);
  } catch (err) {
    throw badRequest(`Invalid ${what} filter: ${(err as Error).message}`);
  }
}

/** An event's node, service and tag filters, compiled (undefined: no filter); a filter that does not compile throws a 400. */
function filters(f: { readonly node: string; readonly service: string; readonly tag: string }): { node: RE2JS | undefined; service: RE2JS | undefined; tag: RE2JS | undefined } {
  return { node: regexp('node', f.node), service: regexp('service', f.service), tag: regexp('tag', f.tag) };
}

/** Consul's uuidToUint64: the two 64-bit halves of the newest event's ID XORed, as the list's index. */
export function eventIndex(events: readonly UserEvent[]): bigint {
  const last = events[events.length - 1];
  if (!last) return 1n;
  const hex = last.ID.replace(/-/g, '');
  return BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16, 32)}`);
}

const STRING_FIELDS = ['ID', 'Name', 'NodeFilter', 'ServiceFilter', 'TagFilter'] as const;

/** A stored event as this agent reads it, or why it cannot (a value some other writer put under the key). */
function decodeStored(value: string): UserEvent | string {
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return 'not JSON';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not an object';
  const r = raw as Record<string, unknown>;
  for (const f of STRING_FIELDS) if (typeof r[f] !== 'string') return `${f} is not a string`;
  if (r.Payload !== null && typeof r.Payload !== 'string') return 'Payload is neither null nor a string';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(r.ID as string)) return 'ID is not a UUID';
  return {
    ID: r.ID as string, Name: r.Name as string, Payload: r.Payload as string | null, NodeFilter: r.NodeFilter as string,
    ServiceFilter: r.ServiceFilter as string, TagFilter: r.TagFilter as string, Version: typeof r.Version === 'number' ? r.Version : USER_EVENT_VERSION, LTime: 0,
  };
}

export class EventBuffer {
  readonly #o: EventBufferOptions;
  readonly #size: number;
  #events: UserEvent[] = [];
  /** The newest event's LTime seen (kept or not): a re-delivered write (an etcd resync) is not a new event. */
  #ltime: number;
  #waiters = new Set<() => void>();

  constructor(opts: EventBufferOptions) {
    this.#o = opts;
    this.#size = opts.size ?? 256;
    this.#ltime = opts.initial.find((e) => e.key === EVENT_KEY)?.version ?? 0;
  }

  /**
   * Validates and stores an event; every agent following the store (this one included, before this
   * resolves) then decides whether to keep it. Answers it as Consul's fire does (LTime 0: the clock
   * is assigned on delivery). Nothing is written when the input is refused.
   */
  async fire(input: FireInput): Promise<UserEvent> {
    if (input.name === '') throw badRequest('Missing name');
    if (input.tag !== '' && input.service === '') throw badRequest('Cannot provide tag filter without service filter');
    filters(input);
    const size = Buffer.byteLength(input.name) + input.payload.length;
    if (size > USER_EVENT_SIZE_LIMIT) {
      throw new HttpError(413, `user event exceeds configured limit of ${USER_EVENT_SIZE_LIMIT} bytes before encoding (name and payload: ${size} bytes)`);
    }
    const event: UserEvent = {
      ID: randomUUID(), Name: input.name, Payload: input.payload.length === 0 ? null : input.payload.toString('base64'),
      NodeFilter: input.node, ServiceFilter: input.service, TagFilter: input.tag, Version: USER_EVENT_VERSION, LTime: 0,
    };
    const { LTime: _, ...stored } = event;
    await this.#o.commit({ success: [{ type: 'put', key: EVENT_KEY, value: JSON.stringify(stored) }] });
    return event;
  }

  /** A store change, as every agent sees it: a write of the event key is an event for this agent to keep or not. */
  apply(change: StoreChange): void {
    for (const ev of change.events) {
      if (ev.key !== EVENT_KEY || ev.type !== 'put' || !ev.entry || ev.entry.version <= this.#ltime) continue;
      this.#ltime = ev.entry.version;
      const event = decodeStored(ev.entry.value);
      if (typeof event === 'string') {
        this.#o.onUnreadable?.(`${EVENT_KEY} at revision ${ev.entry.modRevision}: ${event}`);
        continue;
      }
      if (!this.#mine(event)) continue;
      this.#events.push({ ...event, LTime: ev.entry.version });
      if (this.#events.length > this.#size) this.#events = this.#events.slice(-this.#size);
      const waiters = this.#waiters;
      this.#waiters = new Set();
      for (const w of waiters) w();
    }
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

  /**
   * Consul's shouldProcessUserEvent: the node name, then a local service ID (and one of its tags).
   * A filter that does not compile here (the firing agent checked it) matches nothing.
   */
  #mine(e: UserEvent): boolean {
    let f: ReturnType<typeof filters>;
    try {
      f = filters({ node: e.NodeFilter, service: e.ServiceFilter, tag: e.TagFilter });
    } catch {
      return false;
    }
    const { node: nodeRe, service: serviceRe, tag: tagRe } = f;
    if (nodeRe && !nodeRe.test(this.#o.node)) return false;
    if (!serviceRe) return true;
    for (const s of this.#o.localServices()) {
      if (!serviceRe.test(s.ID)) continue;
      if (!tagRe || s.Tags.some((t) => tagRe.test(t))) return true;
    }
    return false;
  }
}
