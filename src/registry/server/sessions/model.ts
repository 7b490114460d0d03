/**
 * Sessions as stored and as Consul shows them: the record, the store keys of sessions, their TTL
 * deadlines and KV lock-delays, decoding of /v1/session/create with Consul's defaults and quirks,
 * and rendering.
 */
import { z } from 'zod';
import { badRequest } from '../../../core/errors.js';
import { formatGoDuration, parseGoDuration } from '../../../core/duration.js';
import { canon, decodeWith, dictionary } from '../decode.js';
import { NODE_CHECK_SERF } from '../model.js';

export type SessionBehavior = 'release' | 'delete';

export interface ServiceCheckRef {
  ID: string;
  Namespace: string;
}

/** Field for field what Consul keeps; `LockDelay` in nanoseconds, `TTL` as the client wrote it. */
export interface SessionRecord {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: SessionBehavior;
  TTL: string;
  NodeChecks: string[] | null;
  ServiceChecks: ServiceCheckRef[] | null;
  /** Consul's pre-1.7 field, kept (and shown) only when a client set it to something else than the default. */
  Checks?: string[];
}

/** A session's TTL deadline (wall clock, ms): renewals rewrite this key, never the session's own. */
export interface SessionTtlRecord {
  Expires: number;
}

/** A KV key's lock-delay after its holder's session was invalidated (wall clock, ms). */
export interface LockDelayRecord {
  Until: number;
  Session: string;
  /** The invalidated session's node: its agent forgets the delay once it has passed. */
  Node: string;
}

/**
 * Store keys. `sess/` holds the sessions; `sttl/` their TTL deadlines, so renewals do not touch
 * the session (its index, and the blocking queries on it, stay put, as in Consul); `sl/` is
 * written by every lock acquisition, so an invalidation planned before a concurrent acquisition
 * by the same session loses its race instead of leaving a lock held by a dead session; `ld/`
 * holds lock-delays, which must be seen by every agent of a cluster.
 */
export const sessionKeys = {
  SESSION_PREFIX: 'sess/',
  session: (id: string) => `sess/${id}`,
  TTL_PREFIX: 'sttl/',
  ttl: (id: string) => `sttl/${id}`,
  locks: (id: string) => `sl/${id}`,
  LOCK_DELAY_PREFIX: 'ld/',
  lockDelay: (kvKey: string) => `ld/${kvKey}`,
} as const;

/** Consul's limits (structs.SessionTTLMax, SessionTTLMultiplier, MaxLockDelay). */
export const SESSION_TTL_MAX_NS = 24 * 3600e9;
export const SESSION_TTL_MULTIPLIER = 2;
export const MAX_LOCK_DELAY_NS = 60e9;
const DEFAULT_LOCK_DELAY_NS = 15e9;
/** Below this a LockDelay number or duration is taken as seconds (Consul's lockDelayMinThreshold). */
const LOCK_DELAY_SECONDS_BELOW = 1000;

/** Every check ID whose failure invalidates the session (Consul's Session.CheckIDs). */
export function sessionCheckIds(s: SessionRecord): string[] {
  return [...(s.Checks ?? []), ...(s.NodeChecks ?? []), ...(s.ServiceChecks ?? []).map((c) => c.ID)];
}

/** The TTL in nanoseconds (0: none). The string was validated at creation. */
export function sessionTtlNs(s: SessionRecord): number {
  return s.TTL === '' ? 0 : parseGoDuration(s.TTL);
}

// ---------------------------------------------------------------------------------------------
// /v1/session/create

const FIELDS = dictionary(['ID', 'Name', 'Node', 'LockDelay', 'Behavior', 'TTL', 'Checks', 'NodeChecks', 'ServiceChecks', 'Namespace', 'Partition']);
const SERVICE_CHECK_FIELDS = dictionary(['ID', 'Namespace']);

const createShape = z.object({
  Name: z.string().optional(),
  Node: z.string().optional(),
  LockDelay: z.union([z.string(), z.number()]).nullable().optional(),
  Behavior: z.string().optional(),
  TTL: z.string().optional(),
  Checks: z.array(z.string()).nullable().optional(),
  NodeChecks: z.array(z.string()).nullable().optional(),
  ServiceChecks: z.array(z.object({ ID: z.string(), Namespace: z.string().optional() })).nullable().optional(),
});

export interface SessionCreateInput {
  readonly Name: string;
  readonly Node: string;
  readonly LockDelay: number;
  readonly Behavior: SessionBehavior;
  readonly TTL: string;
  readonly NodeChecks: string[] | null;
  readonly ServiceChecks: ServiceCheckRef[] | null;
  readonly Checks: string[] | undefined;
}

export interface TtlLimits {
  /** Consul's session_ttl_min (default 10 s). */
  readonly minNs: number;
  readonly maxNs: number;
}

/**
 * Decodes a create body (or none) with Consul's defaults: this agent's node, the serfHealth check,
 * a 15 s lock-delay, release behaviour, no TTL. Both check fields are resolved the way Consul's
 * fixupEmptySessionChecks does, because clients rely on its quirks: `"Checks": []` (python-consul's
 * way to ask for no checks) empties NodeChecks too.
 */
export function decodeSessionCreate(body: unknown, defaultNode: string, ttl: TtlLimits): SessionCreateInput {
  const input = body === undefined ? {} : decodeWith(createShape, canon(body, FIELDS, {
    ServiceChecks: (v) => (Array.isArray(v) ? v.map((c) => canon(c, SERVICE_CHECK_FIELDS)) : v),
  }), 'session');
  let checks: string[] | undefined = 'Checks' in input ? (input.Checks ?? []) : [NODE_CHECK_SERF];
  let nodeChecks: string[] | null = 'NodeChecks' in input ? (input.NodeChecks ?? []) : [NODE_CHECK_SERF];
  if (checks.length === 0) {
    nodeChecks = [];
    checks = undefined;
  } else if (checks.length === 1 && checks[0] === NODE_CHECK_SERF) {
    checks = undefined;
  } else if (nodeChecks.length === 0) {
    checks = undefined;
  }
  const node = 'Node' in input ? (input.Node ?? '') : defaultNode;
  if (node === '') throw badRequest('Must provide Node');
  const behavior = input.Behavior ?? '';
  if (behavior !== '' && behavior !== 'release' && behavior !== 'delete') throw badRequest(`Invalid Behavior setting '${behavior}'`);
  const ttlText = input.TTL ?? '';
  if (ttlText !== '') {
    let ns: number;
    try {
      ns = parseGoDuration(ttlText);
    } catch (err) {
      throw badRequest(`Session TTL '${ttlText}' invalid: ${(err as Error).message}`);
    }
    if (ns !== 0 && (ns < ttl.minNs || ns > ttl.maxNs)) {
      throw badRequest(`Invalid Session TTL '${ns}', must be between [${formatGoDuration(ttl.minNs)}=${formatGoDuration(ttl.maxNs)}]`);
    }
  }
  return {
    Name: input.Name ?? '',
    Node: node,
    LockDelay: lockDelayNs(input.LockDelay),
    Behavior: behavior === 'delete' ? 'delete' : 'release',
    TTL: ttlText,
    NodeChecks: nodeChecks,
    ServiceChecks: input.ServiceChecks ? input.ServiceChecks.map((c) => ({ ID: c.ID, Namespace: c.Namespace ?? '' })) : null,
    Checks: checks,
  };
}

/** Consul's LockDelay: a Go duration or nanoseconds, where values below 1000 mean seconds (clients send 15). */
function lockDelayNs(v: string | number | null | undefined): number {
  if (v === undefined || v === null) return DEFAULT_LOCK_DELAY_NS;
  let ns: number;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw badRequest(`Request decode failed: LockDelay: ${v} is not a duration`);
    ns = Math.trunc(v);
  } else {
    try {
      ns = parseGoDuration(v);
    } catch (err) {
      throw badRequest(`Request decode failed: LockDelay: ${(err as Error).message}`);
    }
  }
  if (ns < 0) throw badRequest(`Request decode failed: LockDelay: ${JSON.stringify(v)} must not be negative`);
  return ns < LOCK_DELAY_SECONDS_BELOW ? ns * 1e9 : ns;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Consul's session JSON (OSS 1.7+ field order); CreateIndex and ModifyIndex never move after creation. */
export function renderSession(s: SessionRecord, createIndex: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ID: s.ID, Name: s.Name, Node: s.Node, LockDelay: s.LockDelay, Behavior: s.Behavior, TTL: s.TTL,
    NodeChecks: s.NodeChecks, ServiceChecks: s.ServiceChecks,
  };
  if (s.Checks && s.Checks.length > 0) out.Checks = s.Checks;
  out.CreateIndex = createIndex;
  out.ModifyIndex = createIndex;
  return out;
}
