/**
 * Decoding of Consul API request bodies: case-insensitive keys (python-consul sends lower case,
 * newer Consul accepts snake_case), durations as Go strings or nanosecond numbers, then shape
 * validation with zod. Errors carry Consul's wording where Consul has one, and name the field.
 */
import { z } from 'zod';
import { HttpError, badRequest, errorMessage } from '../../core/errors.js';
import { formatGoDuration, parseGoDuration } from '../../core/duration.js';
import { jsonDepthOverflow } from '../../core/json-depth.js';

/** Canonical field names per object kind; lookups fold case and drop '_' / '-'. */
export const fold = (k: string): string => k.toLowerCase().replace(/[_-]/g, '');

export function dictionary(names: string[], aliases: Record<string, string> = {}): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of names) m.set(fold(n), n);
  for (const [a, n] of Object.entries(aliases)) m.set(fold(a), n);
  return m;
}

const CHECK_FIELDS = dictionary(
  ['CheckID', 'Name', 'Notes', 'ServiceID', 'Status', 'Interval', 'Timeout', 'TTL', 'HTTP', 'Header', 'Method', 'Body',
    'TLSSkipVerify', 'TLSServerName', 'DisableRedirects', 'TCP', 'TCPUseTLS', 'GRPC', 'GRPCUseTLS', 'ScriptArgs', 'Script',
    'DockerContainerID', 'Shell', 'AliasNode', 'AliasService', 'DeregisterCriticalServiceAfter', 'SuccessBeforePassing',
    'FailuresBeforeWarning', 'FailuresBeforeCritical', 'OutputMaxSize', 'H2PING', 'H2PingUseTLS', 'UDP', 'OSService',
    'Definition', 'Node', 'Type', 'Output'],
  { ID: 'CheckID', Args: 'ScriptArgs' },
);
const WEIGHTS_FIELDS = dictionary(['Passing', 'Warning']);
const TAGGED_ADDR_FIELDS = dictionary(['Address', 'Port']);
const SERVICE_FIELDS = dictionary(
  ['ID', 'Name', 'Service', 'Tags', 'Address', 'TaggedAddresses', 'Meta', 'Port', 'Kind', 'EnableTagOverride', 'Weights',
    'Check', 'Checks', 'Proxy', 'Connect', 'Namespace', 'Partition', 'SocketPath', 'Locality'],
);
const CATALOG_REGISTER_FIELDS = dictionary(
  ['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'NodeMeta', 'Service', 'Check', 'Checks', 'SkipNodeUpdate'],
);
const CATALOG_DEREGISTER_FIELDS = dictionary(['Datacenter', 'Node', 'ServiceID', 'CheckID']);
const CHECK_UPDATE_FIELDS = dictionary(['Status', 'Output']);

/** Renames known keys to their canonical spelling; nested objects get their own dictionary. User maps keep their keys. */
export function canon(value: unknown, dict: Map<string, string>, nested: Record<string, (v: unknown) => unknown> = {}): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const name = dict.get(fold(k));
    if (name === undefined) continue; // Consul ignores unknown keys.
    // Two spellings of one field (e.g. Args and ScriptArgs): the first non-empty one wins.
    if (name in out && (v === undefined || v === null)) continue;
    const fn = nested[name];
    out[name] = fn ? fn(v) : v;
  }
  return out;
}

const canonCheck = (v: unknown): unknown => canon(v, CHECK_FIELDS, { Definition: canonCheck });
const canonChecks = (v: unknown): unknown => (Array.isArray(v) ? v.map(canonCheck) : v);
const canonTagged = (v: unknown): unknown => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, a]) => [k, canon(a, TAGGED_ADDR_FIELDS)]));
};
const canonService = (v: unknown): unknown =>
  canon(v, SERVICE_FIELDS, {
    Check: canonCheck,
    Checks: canonChecks,
    Weights: (w) => canon(w, WEIGHTS_FIELDS),
    TaggedAddresses: canonTagged,
  });

// ---------------------------------------------------------------------------------------------
// Shapes

const str = z.string();
/**
 * A JSON object of `value`s. zod drops a "__proto__" key from a record without a word (assigning it
 * would set the prototype of the object it builds), so a meta key or header by that name was lost.
 * Consul keeps it like any other key; here it is refused with a clear message instead.
 */
export function strictRecord<V extends z.ZodType>(value: V) {
  return z
    .custom<unknown>((v) => v === null || typeof v !== 'object' || !Object.hasOwn(v, '__proto__'), {
      message: 'the key "__proto__" is not supported (in JavaScript it names an object\'s prototype)',
    })
    .pipe(z.record(z.string(), value));
}

const strMap = strictRecord(z.string());
const duration = z.union([z.string(), z.number()]);
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const checkShape = z.object({
  CheckID: str.optional(),
  Name: str.optional(),
  Notes: str.optional(),
  ServiceID: str.optional(),
  Status: str.optional(),
  Interval: duration.optional(),
  Timeout: duration.optional(),
  TTL: duration.optional(),
  HTTP: str.optional(),
  Header: strictRecord(z.array(z.string())).optional(),
  Method: str.optional(),
  Body: str.optional(),
  TLSSkipVerify: z.boolean().optional(),
  TLSServerName: str.optional(),
  DisableRedirects: z.boolean().optional(),
  TCP: str.optional(),
  TCPUseTLS: z.boolean().optional(),
  GRPC: str.optional(),
  GRPCUseTLS: z.boolean().optional(),
  ScriptArgs: z.array(z.string()).nullable().optional(),
  Script: str.optional(),
  DockerContainerID: str.optional(),
  Shell: str.optional(),
  AliasNode: str.optional(),
  AliasService: str.optional(),
  DeregisterCriticalServiceAfter: duration.optional(),
  SuccessBeforePassing: int(0, 1e6).optional(),
  FailuresBeforeWarning: int(0, 1e6).optional(),
  FailuresBeforeCritical: int(0, 1e6).optional(),
  OutputMaxSize: int(0, 1 << 24).optional(),
  H2PING: str.optional(),
  H2PingUseTLS: z.boolean().optional(),
  UDP: str.optional(),
  OSService: str.optional(),
  Definition: strictRecord(z.unknown()).optional(),
  Node: str.optional(),
  /** Catalog registration only: the agent API sets no output (its checks write their own). */
  Output: str.optional(),
});
export type CheckInput = z.infer<typeof checkShape>;

const taggedAddress = z.object({ Address: str.optional(), Port: int(0, 65535).optional() });

const serviceShape = z.object({
  ID: str.optional(),
  Name: str.optional(),
  Service: str.optional(),
  Tags: z.array(z.string()).nullable().optional(),
  Address: str.optional(),
  TaggedAddresses: strictRecord(taggedAddress).nullable().optional(),
  Meta: strMap.nullable().optional(),
  Port: int(0, 65535).optional(),
  Kind: str.optional(),
  EnableTagOverride: z.boolean().optional(),
  Weights: z.object({ Passing: z.number().int().optional(), Warning: z.number().int().optional() }).nullable().optional(),
  Check: checkShape.nullable().optional(),
  Checks: z.array(checkShape).nullable().optional(),
});
export type ServiceInput = z.infer<typeof serviceShape>;

const catalogRegisterShape = z.object({
  ID: str.optional(),
  Node: str.optional(),
  Address: str.optional(),
  Datacenter: str.optional(),
  TaggedAddresses: strMap.nullable().optional(),
  NodeMeta: strMap.nullable().optional(),
  Service: serviceShape.nullable().optional(),
  Check: checkShape.nullable().optional(),
  Checks: z.array(checkShape).nullable().optional(),
  SkipNodeUpdate: z.boolean().optional(),
});
export type CatalogRegisterInput = z.infer<typeof catalogRegisterShape>;

const catalogDeregisterShape = z.object({
  Datacenter: str.optional(),
  Node: str.optional(),
  ServiceID: str.optional(),
  CheckID: str.optional(),
});
export type CatalogDeregisterInput = z.infer<typeof catalogDeregisterShape>;

const checkUpdateShape = z.object({ Status: str.optional(), Output: str.optional() });

// ---------------------------------------------------------------------------------------------
// Entry points

/** Arrays and objects inside one another in a request body; Consul's registrations need 4. */
export const MAX_JSON_DEPTH = 100;

/** Parses a JSON body; Consul answers undecodable bodies with 400 "Request decode failed: ...". */
export function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  if (text.trim() === '') throw badRequest('Request decode failed: EOF');
  const deep = jsonDepthOverflow(text, MAX_JSON_DEPTH);
  if (deep >= 0) {
    throw badRequest(`Request decode failed: JSON nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects (level ${MAX_JSON_DEPTH + 1} opens at character ${deep})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`Request decode failed: ${errorMessage(err)}`);
  }
}

export function decodeWith<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  // Go decodes a JSON null into the zero value, so Consul answers `null` with its usual field errors.
  const value = input === null ? {} : input;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(`Request decode failed: expected a JSON object for ${what}, got ${describe(value)}`);
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = issue ? issue.path.map(String).join('.') : '';
  throw badRequest(`Request decode failed: ${path || what}: ${issue ? issueText(issue, value) : 'invalid'}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function issueText(issue: z.core.$ZodIssue, root: unknown): string {
  let cur: unknown = root;
  for (const p of issue.path) cur = cur && typeof cur === 'object' ? (cur as Record<PropertyKey, unknown>)[p as PropertyKey] : undefined;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}, got ${describe(cur)}`;
    case 'too_small':
    case 'too_big':
      return `${JSON.stringify(cur)} is out of range (${issue.message})`;
    default:
      return issue.message;
  }
}

export const decodeService = (v: unknown): ServiceInput => decodeWith(serviceShape, canonService(v), 'service definition');
export const decodeCheck = (v: unknown): CheckInput => decodeWith(checkShape, canonCheck(v), 'check definition');
export const decodeCatalogRegister = (v: unknown): CatalogRegisterInput =>
  decodeWith(
    catalogRegisterShape,
    canon(v, CATALOG_REGISTER_FIELDS, { Service: canonService, Check: canonCheck, Checks: canonChecks }),
    'registration',
  );
export const decodeCatalogDeregister = (v: unknown): CatalogDeregisterInput =>
  decodeWith(catalogDeregisterShape, canon(v, CATALOG_DEREGISTER_FIELDS), 'deregistration');
export const decodeCheckUpdate = (v: unknown): { Status?: string | undefined; Output?: string | undefined } =>
  decodeWith(checkUpdateShape, canon(v, CHECK_UPDATE_FIELDS), 'check update');

/** A Go duration (string) or nanoseconds (number) → canonical Go string; names the field on error. */
export function normalizeDuration(field: string, v: string | number | undefined): string | undefined {
  if (v === undefined || v === '') return undefined;
  try {
    const ns = typeof v === 'number' ? v : parseGoDuration(v);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`invalid duration ${v}`);
    if (ns < 0) throw new Error(`invalid duration ${JSON.stringify(v)}: must not be negative`);
    return formatGoDuration(ns);
  } catch (err) {
    throw new HttpError(400, `Request decode failed: ${field}: ${errorMessage(err)}`, { code: 'SY_ERR_BAD_DURATION' });
  }
}
