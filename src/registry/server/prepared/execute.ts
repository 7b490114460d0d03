/**
 * Executing a prepared query (/v1/query/:id/execute and `<name>.query.consul`): the service's
 * instances with Consul's filters, in a fresh random order, the instances on the `near` node first,
 * cut to `limit`. Health as Consul's prepared queries see it: a critical check (maintenance included)
 * drops an instance, a warning too with OnlyPassing; IgnoreCheckIDs are not looked at.
 */
import type { Random } from '../../../core/clock.js';
import { shuffle } from '../../../core/shuffle.js';
import type { CatalogReader } from '../catalog-reader.js';
import { healthEntries } from '../queries.js';
import type { HealthEntry } from '../queries.js';
import type { PreparedQueryRecord } from './model.js';
import { renderTemplate } from './template.js';

export interface ExecuteOptions {
  /** ?near= (overrides the query's Service.Near): a node name, or `_agent`. */
  readonly near?: string;
  /** ?limit=: at most this many instances (0: all). */
  readonly limit?: number;
  /** This agent's node, for `_agent`. */
  readonly agentNode: string;
  /** The client's address, for `_ip`: the node with that address counts as near. */
  readonly clientIp?: string;
  readonly random: Random;
}

export interface Execution {
  readonly service: string;
  readonly entries: HealthEntry[];
  readonly dnsTtl: string;
}

function healthy(e: HealthEntry, onlyPassing: boolean, ignore: ReadonlySet<string>): boolean {
  for (const c of e.checks) {
    if (ignore.has(c.rec.CheckID)) continue;
    if (c.rec.Status === 'critical') return false;
    if (onlyPassing && c.rec.Status === 'warning') return false;
  }
  return true;
}

/** Consul's tag filter: every tag is required, a `!tag` is forbidden; case-insensitive. */
function tagsAllow(tags: readonly string[], want: readonly string[]): boolean {
  const have = new Set(tags.map((t) => t.toLowerCase()));
  for (const raw of want) {
    const forbid = raw.startsWith('!');
    const t = (forbid ? raw.slice(1) : raw).toLowerCase();
    if (t === '') continue;
    if (have.has(t) === forbid) return false;
  }
  return true;
}

const metaAllows = (meta: Readonly<Record<string, string>> | undefined, want: Readonly<Record<string, string>> | null): boolean =>
  want === null || Object.entries(want).every(([k, v]) => meta?.[k] === v);

function nearNode(view: CatalogReader, q: PreparedQueryRecord, o: ExecuteOptions): string | undefined {
  const near = o.near !== undefined && o.near !== '' ? o.near : q.Service.Near;
  if (near === '') return undefined;
  if (near === '_agent') return o.agentNode;
  if (near === '_ip') {
    if (o.clientIp === undefined) return undefined;
    for (const n of view.nodes()) if (n.rec.Address === o.clientIp) return n.rec.Node;
    return undefined;
  }
  return near;
}

/** Runs a query already rendered for the name asked (see renderTemplate). */
export function executePrepared(view: CatalogReader, q: PreparedQueryRecord, o: ExecuteOptions): Execution {
  const s = q.Service;
  const ignore = new Set(s.IgnoreCheckIDs ?? []);
  const entries = healthEntries(view, s.Service).filter((e) => healthy(e, s.OnlyPassing, ignore)
    && tagsAllow(e.service.rec.Tags, s.Tags ?? [])
    && metaAllows(e.node?.rec.Meta, s.NodeMeta)
    && metaAllows(e.service.rec.Meta, s.ServiceMeta));
  shuffle(entries, o.random);
  // Consul sorts by network round-trip time from the near node; with no coordinates here, the
  // near node's own instances (round trip 0) come first and the rest stay in random order.
  const near = nearNode(view, q, o);
  const ordered = near === undefined ? entries : [...entries.filter((e) => e.service.rec.Node === near), ...entries.filter((e) => e.service.rec.Node !== near)];
  const limit = o.limit ?? 0;
  return { service: s.Service, entries: limit > 0 ? ordered.slice(0, limit) : ordered, dnsTtl: q.DNS.TTL };
}

/** Runs the query a name or ID resolves to (templates render for it); undefined when none does. DNS asks this way. */
export type PreparedLookup = (idOrName: string, clientIp?: string) => Execution | undefined;

export function preparedLookup(view: CatalogReader, queries: { resolve(idOrName: string): { rec: PreparedQueryRecord } | undefined }, o: Omit<ExecuteOptions, 'near' | 'limit' | 'clientIp'>): PreparedLookup {
  return (idOrName, clientIp) => {
    const q = queries.resolve(idOrName);
    return q ? executePrepared(view, renderTemplate(q.rec, idOrName), { ...o, ...(clientIp !== undefined ? { clientIp } : {}) }) : undefined;
  };
}
