/**
 * What a stored value may look like, key kind by key kind: the shapes the registry itself writes.
 * The API validates what it is given before it becomes a record, and the view, the check runner
 * and the session manager trust the records they read. A value that enters the store another way
 * (a snapshot restore) is held to these shapes first, so a crafted or damaged file cannot leave a
 * record that breaks a reader later. Unknown fields are let through (a newer version may add
 * some); known ones must have their type.
 */
import { z } from 'zod';
import { parseGoDuration } from '../../core/duration.js';
import { keys, splitNodeKey } from './model.js';
import type { CheckType } from './model.js';
import { sessionKeys } from './sessions/model.js';
import { EVENT_KEY } from './events.js';
import { preparedKeys, storedPreparedName, storedPreparedQuery } from './prepared/model.js';

const str = z.string();
const bool = z.boolean();
const count = z.number().int().min(0);
const port = z.number().int().min(0).max(65535);
const strMap = z.record(z.string(), str);
const duration = str.refine((s) => {
  try {
    parseGoDuration(s);
    return true;
  } catch {
    return false;
  }
}, 'not a Go duration');

const node = z.object({ ID: str, Node: str, Address: str, Datacenter: str, TaggedAddresses: strMap, Meta: strMap });

/** Stored without the fields that hold their default (stored.ts): only Service and Port always. */
const service = z.object({
  Node: str.optional(), ID: str.optional(), Service: str, Tags: z.array(str).optional(), Address: str.optional(),
  TaggedAddresses: z.record(z.string(), z.object({ Address: str, Port: port })).optional(), Meta: strMap.optional(), Port: port,
  Weights: z.object({ Passing: count, Warning: count }).optional(), EnableTagOverride: bool.optional(), Kind: str.optional(), Local: bool.optional(),
});

const CHECK_TYPES: readonly CheckType[] = ['http', 'tcp', 'udp', 'h2ping', 'ttl', 'script', 'docker', 'grpc', 'alias', 'maintenance', 'serf', ''];

const definition = z.object({
  HTTP: str.optional(), Header: z.record(z.string(), z.array(str)).optional(), Method: str.optional(), Body: str.optional(),
  TLSSkipVerify: bool.optional(), TLSServerName: str.optional(), DisableRedirects: bool.optional(),
  TCP: str.optional(), TCPUseTLS: bool.optional(), UDP: str.optional(), H2PING: str.optional(), H2PingUseTLS: bool.optional(),
  TTL: duration.optional(), Interval: duration.optional(), Timeout: duration.optional(), DeregisterCriticalServiceAfter: duration.optional(),
  SuccessBeforePassing: count.optional(), FailuresBeforeWarning: count.optional(), FailuresBeforeCritical: count.optional(),
  OutputMaxSize: count.optional(), ScriptArgs: z.array(str).optional(), Script: str.optional(), DockerContainerID: str.optional(), Shell: str.optional(), GRPC: str.optional(), GRPCUseTLS: bool.optional(),
  AliasNode: str.optional(), AliasService: str.optional(),
});

const check = z.object({
  Node: str.optional(), CheckID: str.optional(), Name: str, Status: z.enum(['passing', 'warning', 'critical']),
  Notes: str.optional(), Output: str.optional(), ServiceID: str.optional(), ServiceName: str.optional(),
  ServiceTags: z.array(str).optional(), Type: z.enum(CHECK_TYPES as [CheckType, ...CheckType[]]).optional(), Definition: definition.optional(),
});

const kv = z.object({
  Flags: str.regex(/^\d{1,20}$/, 'not a decimal uint64'),
  Value: str.regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64').nullable(),
  LockIndex: count,
  Session: str.optional(),
});

const session = z.object({
  ID: str, Name: str, Node: str, LockDelay: count, Behavior: z.enum(['release', 'delete']), TTL: z.union([z.literal(''), duration]),
  NodeChecks: z.array(str).nullable(), ServiceChecks: z.array(z.object({ ID: str, Namespace: str })).nullable(), Checks: z.array(str).optional(),
});

const ttl = z.object({ Expires: z.number() });
const lockDelay = z.object({ Until: z.number(), Session: str, Node: str });
const anyObject = z.record(z.string(), z.unknown());

/** The key kinds the registry writes, the part of the key after the prefix that must be non-empty, and the value's shape. */
const KINDS: readonly { prefix: string; shape: z.ZodType; nodeAndId?: boolean; emptyRest?: boolean; keyField?: { field: string; names: string } }[] = [
  { prefix: 'n/', shape: node, keyField: { field: 'Node', names: 'node' } },
  { prefix: 's/', shape: service, nodeAndId: true },
  { prefix: 'c/', shape: check, nodeAndId: true },
  { prefix: 'k/', shape: kv },
  { prefix: sessionKeys.SESSION_PREFIX, shape: session },
  { prefix: sessionKeys.TTL_PREFIX, shape: ttl },
  { prefix: 'sl/', shape: anyObject },
  { prefix: sessionKeys.LOCK_DELAY_PREFIX, shape: lockDelay },
  { prefix: preparedKeys.PREFIX, shape: storedPreparedQuery, keyField: { field: 'ID', names: 'query' } },
  // The catch-all template claims the empty name.
  { prefix: preparedKeys.NAME_PREFIX, shape: storedPreparedName, emptyRest: true },
];

/** Keys of the cluster membership (etcd mode): bound to the leases of the agents alive when they were written. */
export const MEMBERSHIP_PREFIXES: readonly string[] = [keys.ALIVE_PREFIX, keys.MEMBER_PREFIX];

/**
 * Where a parsed value holds a "__proto__" key, at any depth. The API refuses the name (docs/registry.md):
 * copied into a plain object it sets the prototype instead of a field. Zod's own records copy keys that
 * way, so the check looks at the parsed JSON itself.
 */
function protoKeyPath(v: unknown, path: string[] = []): string[] | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (Object.hasOwn(v, '__proto__')) return path;
  for (const [k, child] of Object.entries(v)) {
    const found = protoKeyPath(child, [...path, k]);
    if (found) return found;
  }
  return undefined;
}

/** Why `value` is not something the registry would have stored under `key`, or undefined when it is. */
export function storedValueProblem(key: string, value: string): string | undefined {
  const kind = KINDS.find((k) => key.startsWith(k.prefix));
  if (kind === undefined && key !== EVENT_KEY) return 'not a key this registry writes';
  const rest = kind === undefined ? '' : key.slice(kind.prefix.length);
  if (kind !== undefined && rest === '' && !kind.emptyRest) return 'the key names nothing after its prefix';
  // Node names never hold '/' (the API refuses them): service and check keys split at the first one.
  if (kind?.prefix === 'n/' && rest.includes('/')) return 'a node name must not contain "/"';
  if (kind?.nodeAndId) {
    const [n, id] = splitNodeKey(rest);
    if (!rest.includes('/') || n === '' || id === '') return 'the key must name a node and an ID';
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return 'the value is not JSON';
  }
  const proto = protoKeyPath(parsed);
  if (proto !== undefined) return `${proto.length > 0 ? `${proto.join('.')}: ` : ''}the key "__proto__" is not supported`;
  if (kind === undefined) return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? undefined : 'the value is not a JSON object';
  const r = kind.shape.safeParse(parsed);
  if (r.success) {
    const k = kind.keyField;
    const named = k === undefined ? rest : (parsed as Record<string, unknown>)[k.field];
    return named !== rest ? `the record names ${k?.names ?? ''} ${JSON.stringify(named)}, its key ${JSON.stringify(rest)}` : undefined;
  }
  const issue = r.error.issues[0];
  return `${issue?.path.length ? `${issue.path.join('.')}: ` : ''}${issue?.message ?? 'invalid value'}`;
}
