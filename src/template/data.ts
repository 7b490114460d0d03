// What templates read: the TemplateData provider contract and the record shapes consul-template hands to templates.
import type { ApiHealthEntry, ApiKvEntry, ApiNode, ApiService } from '../registry/api/types.js';
import type { HealthFilter, KeyQuery, NodeQuery, NodesQuery, PrefixQuery, ServiceQuery, ServicesQuery } from './query.js';
import { compareGoStrings } from './strconv.js';

/** api.HealthCheck as consul-template exposes it in `.Checks`. */
export interface HealthCheck {
  readonly Node: string;
  readonly CheckID: string;
  readonly Name: string;
  readonly Status: string;
  readonly Notes: string;
  readonly Output: string;
  readonly ServiceID: string;
  readonly ServiceName: string;
  readonly ServiceTags: readonly string[];
  readonly Type: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** dependency.HealthService: one element of `service "…"`. */
export interface HealthService {
  readonly Node: string;
  readonly NodeID: string;
  readonly NodeAddress: string;
  readonly NodeTaggedAddresses: Readonly<Record<string, string>> | null;
  readonly NodeMeta: Readonly<Record<string, string>> | null;
  readonly ServiceMeta: Readonly<Record<string, string>> | null;
  /** The service address, or the node address when the service has none. */
  readonly Address: string;
  readonly ServiceTaggedAddresses: Readonly<Record<string, { readonly Address: string; readonly Port: number }>> | null;
  readonly ID: string;
  readonly Name: string;
  /** Sorted copy (byte order), duplicates kept. */
  readonly Tags: readonly string[];
  readonly Checks: readonly HealthCheck[];
  /** Aggregated: maintenance > critical > warning > passing ('' for an unknown check status). */
  readonly Status: string;
  readonly Port: number;
  readonly Weights: { readonly Passing: number; readonly Warning: number };
}

/** dependency.CatalogSnippet: one element of `services`. */
export interface CatalogService {
  readonly Name: string;
  readonly Tags: readonly string[];
}

/** dependency.KeyPair: one element of `ls`/`tree`. `Key` is relative to the queried prefix. */
export interface KeyPair {
  readonly Path: string;
  readonly Key: string;
  readonly Value: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
  readonly LockIndex: number;
  /** uint64: a bigint when it is beyond 2^53 (see parseKvJson). */
  readonly Flags: number | bigint;
  readonly Session: string;
}

/** dependency.Node: one element of `nodes`, and `.Node` of `node`. */
export interface CatalogNodeInfo {
  readonly ID: string;
  readonly Node: string;
  readonly Address: string;
  readonly Datacenter: string;
  readonly TaggedAddresses: Readonly<Record<string, string>> | null;
  readonly Meta: Readonly<Record<string, string>> | null;
}

export interface CatalogNodeService {
  readonly ID: string;
  readonly Service: string;
  readonly Tags: readonly string[];
  readonly Meta: Readonly<Record<string, string>> | null;
  readonly Port: number;
  readonly Address: string;
  readonly EnableTagOverride: boolean;
}

/** dependency.CatalogNode: the result of `node`. */
export interface CatalogNode {
  readonly Node: CatalogNodeInfo;
  readonly Services: readonly CatalogNodeService[];
}

/**
 * The data a render reads. Every method returns `undefined` while the answer is not known yet; the engine then
 * records the dependency as missing (consul-template's multi-pass model) and renders a placeholder.
 * Implementations must be synchronous and side-effect free apart from noting what was asked for.
 */
export interface TemplateData {
  /** Entries already filtered and sorted as consul-template does: use toHealthServices. */
  service(query: ServiceQuery): readonly HealthService[] | undefined;
  /** Sorted by name: use toCatalogServices. */
  services(query: ServicesQuery): readonly CatalogService[] | undefined;
  /** The value; undefined while unknown and ALSO while the key does not exist (`key` blocks until it does). */
  key(query: KeyQuery): string | undefined;
  /** Whether the key exists; undefined while unknown. */
  keyExists(query: KeyQuery): boolean | undefined;
  /** The raw value, null when the key does not exist (the engine substitutes the default), undefined while unknown. */
  keyOrDefault(query: KeyQuery): string | null | undefined;
  /** Every pair under the prefix (kv.list); the engine keeps the top-level ones. Use toKeyPairs. */
  ls(query: PrefixQuery): readonly KeyPair[] | undefined;
  /** Every pair under the prefix (kv.list, same data as ls); the engine drops folder keys. */
  tree(query: PrefixQuery): readonly KeyPair[] | undefined;
  /** null when the node does not exist. Without this method `node` fails with an execution error. */
  node?(query: NodeQuery): CatalogNode | null | undefined;
  /** Sorted by node name unless `~near` was given. */
  nodes?(query: NodesQuery): readonly CatalogNodeInfo[] | undefined;
  datacenters?(): readonly string[] | undefined;
}

/** api.HealthChecks.AggregatedStatus, including its quirk of answering "" at the first unknown status. */
export function aggregatedStatus(checks: readonly { readonly CheckID: string; readonly Status: string }[]): string {
  let warning = false;
  let critical = false;
  let maintenance = false;
  for (const c of checks) {
    if (c.CheckID === '_node_maintenance' || c.CheckID.startsWith('_service_maintenance:')) {
      maintenance = true;
      continue;
    }
    switch (c.Status) {
      case 'passing': break;
      case 'warning': warning = true; break;
      case 'critical': critical = true; break;
      default: return '';
    }
  }
  if (maintenance) return 'maintenance';
  if (critical) return 'critical';
  if (warning) return 'warning';
  // No checks at all also counts as passing.
  return 'passing';
}

function sortedCopy(tags: readonly string[] | null | undefined): string[] {
  return [...(tags ?? [])].sort(compareGoStrings);
}

/**
 * /v1/health/service JSON → what `service` returns, exactly as consul-template's HealthServiceQuery.Fetch: keep
 * an entry when its aggregated status is in the filter list (or the list has `any`), fall back to the node
 * address, sort tags, then sort stably by Node and ID unless `near` was asked for. When the list is just
 * ['passing'] the server was asked for ?passing=1 as well; filtering again here changes nothing.
 */
export function toHealthServices(
  entries: readonly ApiHealthEntry[],
  filter: { readonly filters: readonly HealthFilter[]; readonly near?: string } | readonly HealthFilter[],
): HealthService[] {
  const filters: readonly string[] = Array.isArray(filter) ? filter : (filter as { filters: readonly HealthFilter[] }).filters;
  const near = Array.isArray(filter) ? '' : ((filter as { near?: string }).near ?? '');
  const out: HealthService[] = [];
  for (const e of entries) {
    const checks = e.Checks ?? [];
    const status = aggregatedStatus(checks);
    if (!filters.some((f) => f === status || f === 'any')) continue;
    out.push({
      Node: e.Node.Node,
      NodeID: e.Node.ID,
      NodeAddress: e.Node.Address,
      NodeTaggedAddresses: e.Node.TaggedAddresses,
      NodeMeta: e.Node.Meta,
      ServiceMeta: e.Service.Meta,
      Address: e.Service.Address !== '' ? e.Service.Address : e.Node.Address,
      ServiceTaggedAddresses: null,
      ID: e.Service.ID,
      Name: e.Service.Service,
      Tags: sortedCopy(e.Service.Tags),
      Checks: checks.map((c) => ({
        Node: c.Node, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: '', Output: c.Output,
        ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: c.ServiceID !== '' ? [...(e.Service.Tags ?? [])] : [],
        Type: '', CreateIndex: 0, ModifyIndex: 0,
      })),
      Status: status,
      Port: e.Service.Port,
      Weights: e.Service.Weights ?? { Passing: 1, Warning: 1 },
    });
  }
  if (near === '') {
    // Array.prototype.sort is stable, like Go's sort.Stable(ByNodeThenID).
    out.sort((a, b) => compareGoStrings(a.Node, b.Node) || compareGoStrings(a.ID, b.ID));
  }
  return out;
}

/** /v1/catalog/services JSON (name → tags) → what `services` returns: sorted by name, tags sorted. */
export function toCatalogServices(services: Readonly<Record<string, readonly string[] | null>>): CatalogService[] {
  return Object.entries(services)
    .map(([Name, tags]) => ({ Name, Tags: sortedCopy(tags) }))
    .sort((a, b) => compareGoStrings(a.Name, b.Name));
}

/** A KV entry as parseKvJson reads it: Flags past 2^53 arrive as a string of digits. */
export type KvEntryJson = Omit<ApiKvEntry, 'Flags'> & { readonly Flags: number | string };

/**
 * /v1/kv/<prefix>?recurse JSON → KeyPairs as KVListQuery.Fetch builds them: Path is the full key, Key drops the
 * prefix and then any leading slashes, Value is the decoded bytes as a string.
 */
export function toKeyPairs(entries: readonly KvEntryJson[], prefix: string): KeyPair[] {
  return entries.map((e) => ({
    Path: e.Key,
    Key: (e.Key.startsWith(prefix) ? e.Key.slice(prefix.length) : e.Key).replace(/^\/+/, ''),
    Value: e.Value === null ? '' : Buffer.from(e.Value, 'base64').toString('utf8'),
    CreateIndex: e.CreateIndex,
    ModifyIndex: e.ModifyIndex,
    LockIndex: e.LockIndex,
    Flags: typeof e.Flags === 'string' ? BigInt(e.Flags) : e.Flags,
    Session: e.Session ?? '',
  }));
}

/** /v1/catalog/node/<name> JSON (services keyed by ID) as Consul's api package reads it. */
export interface ApiCatalogNode {
  readonly Node: ApiNode;
  readonly Services: Readonly<Record<string, ApiService & { readonly EnableTagOverride?: boolean }>> | null;
}

/**
 * /v1/catalog/node/<name> JSON → what `node` returns, as CatalogNodeQuery.Fetch builds it: services sorted by
 * name, then ID, each with its tags sorted. Consul answers `null` for a node it does not know.
 */
export function toCatalogNode(n: ApiCatalogNode | null): CatalogNode | null {
  if (n === null) return null;
  const services = Object.values(n.Services ?? {}).map((s) => ({
    ID: s.ID, Service: s.Service, Tags: sortedCopy(s.Tags), Meta: s.Meta, Port: s.Port, Address: s.Address, EnableTagOverride: s.EnableTagOverride ?? false,
  }));
  services.sort((a, b) => compareGoStrings(a.Service, b.Service) || compareGoStrings(a.ID, b.ID));
  const { ID, Node, Address, Datacenter, TaggedAddresses, Meta } = n.Node;
  return { Node: { ID, Node, Address, Datacenter, TaggedAddresses, Meta }, Services: services };
}

/** /v1/catalog/nodes JSON → what `nodes` returns: sorted by name, then address, unless `near` was asked for. */
export function toCatalogNodes(nodes: readonly ApiNode[], near = ''): CatalogNodeInfo[] {
  const out = nodes.map((n) => ({ ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter, TaggedAddresses: n.TaggedAddresses, Meta: n.Meta }));
  if (near === '') out.sort((a, b) => compareGoStrings(a.Node, b.Node) || compareGoStrings(a.Address, b.Address));
  return out;
}
