/** Read-side queries over the catalog view, shared by the HTTP API, DNS and the in-process LB source. */
import type { CatalogReader, Indexed } from './catalog-reader.js';
import type { CheckRecord, NodeRecord, ServiceRecord } from './model.js';

export interface HealthEntry {
  readonly node: Indexed<NodeRecord> | undefined;
  readonly service: Indexed<ServiceRecord>;
  /** Node-level checks of the service's node, then the service's own checks. */
  readonly checks: Indexed<CheckRecord>[];
}

export interface ServiceFilter {
  /** All must match, case-insensitively (Consul's repeatable ?tag=). */
  tags?: readonly string[];
  /** `k:v` pairs from ?node-meta=, all must match. */
  nodeMeta?: readonly [string, string][];
}

export function byNodeThenId(a: { rec: ServiceRecord }, b: { rec: ServiceRecord }): number {
  const an = a.rec.Node;
  const bn = b.rec.Node;
  if (an !== bn) return an < bn ? -1 : 1;
  return a.rec.ID < b.rec.ID ? -1 : a.rec.ID > b.rec.ID ? 1 : 0;
}

function tagsMatch(rec: ServiceRecord, tags: readonly string[] | undefined): boolean {
  if (!tags || tags.length === 0) return true;
  for (const t of tags) {
    const want = t.toLowerCase();
    if (!rec.Tags.some((x) => x.toLowerCase() === want)) return false;
  }
  return true;
}

function nodeMetaMatch(node: Indexed<NodeRecord> | undefined, meta: ServiceFilter['nodeMeta']): boolean {
  if (!meta || meta.length === 0) return true;
  if (!node) return false;
  return meta.every(([k, v]) => node.rec.Meta[k] === v);
}

/** Instances of a service (sorted by node, then ID) with the tag and node-meta filters applied. */
export function serviceInstances(view: CatalogReader, name: string, f: ServiceFilter = {}): Indexed<ServiceRecord>[] {
  const out: Indexed<ServiceRecord>[] = [];
  for (const s of view.instances(name)) {
    if (!tagsMatch(s.rec, f.tags)) continue;
    if (f.nodeMeta && !nodeMetaMatch(view.node(s.rec.Node), f.nodeMeta)) continue;
    out.push(s);
  }
  return out.sort(byNodeThenId);
}

export function healthEntries(view: CatalogReader, name: string, f: ServiceFilter & { passingOnly?: boolean } = {}): HealthEntry[] {
  const out: HealthEntry[] = [];
  for (const s of serviceInstances(view, name, f)) {
    const checks = [...view.nodeChecks(s.rec.Node), ...view.serviceChecks(s.rec.Node, s.rec.ID)];
    if (f.passingOnly && checks.some((c) => c.rec.Status !== 'passing')) continue;
    out.push({ node: view.node(s.rec.Node), service: s, checks });
  }
  return out;
}

/** Every check, optionally only those in `state` ('any' for all). */
export function checksInState(view: CatalogReader, state: string): Indexed<CheckRecord>[] {
  const out: Indexed<CheckRecord>[] = [];
  for (const c of view.allChecks()) if (state === 'any' || c.rec.Status === state) out.push(c);
  return out.sort((a, b) => (a.rec.Node === b.rec.Node ? cmp(a.rec.CheckID, b.rec.CheckID) : cmp(a.rec.Node, b.rec.Node)));
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** catalog/services: name → union of tags across instances (kept by the view: no walk over the instances). */
export function serviceTagsIndex(view: CatalogReader): Record<string, string[]> {
  return keyedBy(view.serviceNames(), (name) => [name, view.serviceTags(name) as string[]]);
}

/**
 * An object keyed by names clients chose (service names, service and check IDs). Built with
 * Object.fromEntries, which defines each key as the object's own: `out[name] = …` would make a
 * service named `__proto__` set the object's prototype instead, and vanish from the answer.
 */
export function keyedBy<T, V>(items: Iterable<T>, entry: (item: T) => readonly [string, V]): Record<string, V> {
  const entries: (readonly [string, V])[] = [];
  for (const item of items) entries.push(entry(item));
  return Object.fromEntries(entries) as Record<string, V>;
}
