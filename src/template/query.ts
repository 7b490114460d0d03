// consul-template dependency queries: argument grammar, validation errors and the identity strings of dependencies.
import { goQuote } from './strconv.js';

export type HealthFilter = 'any' | 'passing' | 'warning' | 'critical' | 'maintenance';

const HEALTH_FILTERS: ReadonlySet<string> = new Set(['any', 'passing', 'warning', 'critical', 'maintenance']);

/** The optional `?ns=…&partition=…` part (newer consul-template); kept so the runner can pass it on. */
export interface ConsulQueryParams {
  readonly namespace: string;
  readonly partition: string;
  readonly peer: string;
  readonly samenessGroup: string;
}

/** `service "[tag.]name[?query][@dc][~near][|filter]"` (also `connect`). */
export interface ServiceQuery extends ConsulQueryParams {
  readonly name: string;
  readonly tag: string;
  readonly dc: string;
  readonly near: string;
  /** Sorted; `['passing']` when no filter was written. */
  readonly filters: readonly HealthFilter[];
  /** consul-template asks the server for ?passing=1 exactly when the filter list is ['passing']. */
  readonly passingOnly: boolean;
  readonly connect: boolean;
}

/** `services "[?query][@dc]"`. */
export interface ServicesQuery extends ConsulQueryParams {
  readonly dc: string;
}

/** `key`/`keyExists`/`keyOrDefault "key[?query][@dc]"` (a leading / is dropped). */
export interface KeyQuery extends ConsulQueryParams {
  readonly key: string;
  readonly dc: string;
}

/** `ls`/`tree` "prefix[?query][@dc]". */
export interface PrefixQuery extends ConsulQueryParams {
  readonly prefix: string;
  readonly dc: string;
}

/** `node "[name][?query][@dc]"`; an empty name means the agent's own node. */
export interface NodeQuery extends ConsulQueryParams {
  readonly name: string;
  readonly dc: string;
}

/** `nodes "[?query][@dc][~near]"`. */
export interface NodesQuery extends ConsulQueryParams {
  readonly dc: string;
  readonly near: string;
}

/**
 * Something a template reads. `id` is consul-template's dependency String() (e.g. `health.service(web|passing)`,
 * `kv.block(app/x)`), which identifies the data: equal ids share one watch.
 */
export type Dependency =
  | { readonly type: 'health.service' | 'health.connect'; readonly id: string; readonly query: ServiceQuery }
  | { readonly type: 'catalog.services'; readonly id: string; readonly query: ServicesQuery }
  /** kv.block is `key`: it stays missing until the key exists. kv.get serves keyExists and keyOrDefault. */
  | { readonly type: 'kv.block' | 'kv.get'; readonly id: string; readonly query: KeyQuery }
  | { readonly type: 'kv.list'; readonly id: string; readonly query: PrefixQuery }
  | { readonly type: 'catalog.node'; readonly id: string; readonly query: NodeQuery }
  | { readonly type: 'catalog.nodes'; readonly id: string; readonly query: NodesQuery }
  | { readonly type: 'catalog.datacenters'; readonly id: string }
  | { readonly type: 'file'; readonly id: string; readonly path: string };

/** A malformed query argument; the message is consul-template's (e.g. `health.service: invalid filter: …`). */
export class QueryError extends Error {}

// [[:word:]] in Go's regexp is [0-9A-Za-z_], which is JS's \w without the u flag.
const TAG = String.raw`(?:(?<tag>[\w=:.\-]+)\.)?`;
const SERVICE_NAME = String.raw`(?<name>[\w\-]+)`;
const QUERY = String.raw`(?:\?(?<query>[\w\-=&]+))?`;
const DC = String.raw`(?:@(?<dc>[\w.\-]+))?`;
const NEAR = String.raw`(?:~(?<near>[\w.\-]+))?`;
const FILTER = String.raw`(?:\|(?<filter>[\w,]+))?`;
const KEY = String.raw`\/?(?<key>[^@?]+)`;
const PREFIX = String.raw`\/?(?<prefix>[^@?]+)`;
const NODE_NAME = String.raw`(?<name>[\w.\-]+)`;

const HEALTH_SERVICE_RE = new RegExp(`^${TAG}${SERVICE_NAME}${QUERY}${DC}${NEAR}${FILTER}$`);
const CATALOG_SERVICES_RE = new RegExp(`^${QUERY}${DC}$`);
const KV_GET_RE = new RegExp(`^${KEY}${QUERY}${DC}$`);
const KV_LIST_RE = new RegExp(`^${PREFIX}${QUERY}${DC}$`);
const CATALOG_NODE_RE = new RegExp(`^${NODE_NAME}${QUERY}${DC}$`);
const CATALOG_NODES_RE = new RegExp(`^${QUERY}${DC}${NEAR}$`);

const QUERY_KEYS = ['ns', 'peer', 'partition', 'sameness-group'];

function groups(re: RegExp, s: string): Record<string, string> {
  const m = re.exec(s);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m?.groups ?? {})) out[k] = v ?? '';
  return out;
}

/** GetConsulQueryOpts: url.ParseQuery of the ?query part, keys limited to ns, peer, partition, sameness-group. */
function queryParams(raw: string, label: string): ConsulQueryParams {
  const values = new Map<string, string>();
  if (raw !== '') {
    for (const part of raw.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? '' : part.slice(eq + 1);
      if (!QUERY_KEYS.includes(key)) {
        throw new QueryError(`${label}: invalid query parameter key ${goQuote(key)} in query ${goQuote(raw)}: supported keys: ns,peer,partition,sameness-group`);
      }
      if (!values.has(key)) values.set(key, value);
    }
  }
  return {
    namespace: values.get('ns') ?? '',
    partition: values.get('partition') ?? '',
    peer: values.get('peer') ?? '',
    samenessGroup: values.get('sameness-group') ?? '',
  };
}

function scopeSuffix(q: { dc: string } & ConsulQueryParams, withPeer: boolean): string {
  let s = '';
  if (q.dc !== '') s += `@${q.dc}`;
  if (q.partition !== '') s += `@partition=${q.partition}`;
  if (q.namespace !== '') s += `@ns=${q.namespace}`;
  if (withPeer && q.peer !== '') s += `@peer=${q.peer}`;
  if (withPeer && q.samenessGroup !== '') s += `@sameness-group=${q.samenessGroup}`;
  return s;
}

/** NewHealthServiceQuery; `s` is the template arguments joined with "|". */
export function parseServiceQuery(s: string, connect = false): ServiceQuery {
  const label = connect ? 'health.connect' : 'health.service';
  if (!HEALTH_SERVICE_RE.test(s)) throw new QueryError(`health.service: invalid format: ${goQuote(s)}`);
  const m = groups(HEALTH_SERVICE_RE, s);
  let filters: HealthFilter[] = [];
  if ((m.filter ?? '') !== '') {
    for (const raw of (m.filter as string).split(',')) {
      const f = raw.trim();
      if (f === '') continue;
      if (!HEALTH_FILTERS.has(f)) throw new QueryError(`health.service: invalid filter: ${goQuote(f)} in ${goQuote(s)}`);
      filters.push(f as HealthFilter);
    }
    filters.sort();
  } else filters = ['passing'];
  const params = queryParams(m.query ?? '', label);
  if (params.samenessGroup !== '' && params.peer !== '') throw new QueryError('health.service: cannot specify both peer and sameness-group');
  return {
    name: m.name ?? '', tag: m.tag ?? '', dc: m.dc ?? '', near: m.near ?? '', filters,
    passingOnly: filters.length === 1 && filters[0] === 'passing', connect, ...params,
  };
}

export function serviceDependencyId(q: ServiceQuery): string {
  let name = q.tag !== '' ? `${q.tag}.${q.name}` : q.name;
  name += scopeSuffix(q, true);
  if (q.near !== '') name += `~${q.near}`;
  if (q.filters.length > 0) name += `|${q.filters.join(',')}`;
  return `${q.connect ? 'health.connect' : 'health.service'}(${name})`;
}

export function parseServicesQuery(s: string): ServicesQuery {
  if (!CATALOG_SERVICES_RE.test(s)) throw new QueryError(`catalog.services: invalid format: ${goQuote(s)}`);
  const m = groups(CATALOG_SERVICES_RE, s);
  return { dc: m.dc ?? '', ...queryParams(m.query ?? '', 'catalog.services') };
}

export function servicesDependencyId(q: ServicesQuery): string {
  const name = scopeSuffix(q, false);
  return name === '' ? 'catalog.services' : `catalog.services(${name})`;
}

export function parseKeyQuery(s: string): KeyQuery {
  if (s !== '' && !KV_GET_RE.test(s)) throw new QueryError(`kv.get: invalid format: ${goQuote(s)}`);
  const m = groups(KV_GET_RE, s);
  return { key: m.key ?? '', dc: m.dc ?? '', ...queryParams(m.query ?? '', 'kv.get') };
}

export function keyDependencyId(q: KeyQuery, block: boolean): string {
  return `${block ? 'kv.block' : 'kv.get'}(${q.key}${scopeSuffix(q, false)})`;
}

export function parsePrefixQuery(s: string): PrefixQuery {
  if (s !== '' && !KV_LIST_RE.test(s)) throw new QueryError(`kv.list: invalid format: ${goQuote(s)}`);
  const m = groups(KV_LIST_RE, s);
  return { prefix: m.prefix ?? '', dc: m.dc ?? '', ...queryParams(m.query ?? '', 'kv.list') };
}

export function prefixDependencyId(q: PrefixQuery): string {
  return `kv.list(${q.prefix}${scopeSuffix(q, false)})`;
}

export function parseNodeQuery(s: string): NodeQuery {
  if (s !== '' && !CATALOG_NODE_RE.test(s)) throw new QueryError(`catalog.node: invalid format: ${goQuote(s)}`);
  const m = groups(CATALOG_NODE_RE, s);
  return { name: m.name ?? '', dc: m.dc ?? '', ...queryParams(m.query ?? '', 'catalog.node') };
}

export function nodeDependencyId(q: NodeQuery): string {
  const name = q.name + scopeSuffix(q, false);
  return name === '' ? 'catalog.node' : `catalog.node(${name})`;
}

export function parseNodesQuery(s: string): NodesQuery {
  if (!CATALOG_NODES_RE.test(s)) throw new QueryError(`catalog.nodes: invalid format: ${goQuote(s)}`);
  const m = groups(CATALOG_NODES_RE, s);
  return { dc: m.dc ?? '', near: m.near ?? '', ...queryParams(m.query ?? '', 'catalog.nodes') };
}

export function nodesDependencyId(q: NodesQuery): string {
  let name = scopeSuffix(q, false);
  if (q.near !== '') name += `~${q.near}`;
  return name === '' ? 'catalog.nodes' : `catalog.nodes(${name})`;
}
