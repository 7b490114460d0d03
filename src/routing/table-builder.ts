/**
 * The routing table kept current change by change. A change to some services recompiles what
 * depends on them only: their tag routes, the upstream groups over their instances (a group whose
 * instances did not change is carried over as the same object, strategy state and all), the routes
 * that use those groups, and the matcher paths of those routes; everything else is shared with the
 * previous table. A first build is the same walk over every service.
 */
import type { Random } from '../core/clock.js';
import { PersistentMap } from '../core/persistent-map.js';
import { createStrategy } from '../balancer/index.js';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { ChangeStamp, Instance, ServiceSet } from '../discovery/types.js';
import type { RouteSpec, SplitSpec, StrategyName, UpstreamProtocol } from '../config/route-spec.js';
import { parseUpstreamProtocol, specificity } from '../config/route-spec.js';
import { parseUrlprefixTag } from './tag-routes.js';
import { RouteMatcher } from './matcher.js';
import { routePrefix } from './path.js';
import type { CompiledRoute, RouteSplit, TableChanges, TableParts, UpstreamGroup } from './snapshot.js';

export interface TableOptions {
  readonly specs: readonly RouteSpec[];
  readonly states: UpstreamStates;
  readonly random: Random;
  readonly panicThreshold: number;
  readonly defaultBalance: StrategyName;
  readonly isEligible?: (u: Upstream) => boolean;
  /** Services behind TCP listeners: groups without HTTP routes, looked up by tcpGroupKey. */
  readonly tcp?: readonly { readonly service: string; readonly balance: StrategyName }[];
}

export const tcpGroupKey = (service: string, balance: string): string => `tcp:${service}|${balance}`;

/**
 * Where a route stands among routes of equal specificity: config routes in file order, then tag
 * routes by service name and the tag's place among the service's tags (the order a whole-catalog
 * build walked them in).
 */
type Rank = readonly [kind: number, service: string, index: number];

const compareRank = (a: Rank, b: Rank): number => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0) || a[2] - b[2];

/** A spec that can become a route: its matching form, or why it cannot. */
interface Candidate {
  readonly spec: RouteSpec;
  readonly rank: Rank;
  /** host|prefix|headers: one route per key, the most specific candidate wins. */
  readonly key: string;
  readonly prefix: string;
  readonly strip: string | undefined;
}

function candidate(spec: RouteSpec, rank: Rank): Candidate | { error: string } {
  const prefix = routePrefix(spec.pathPrefix);
  const strip = spec.stripPrefix === undefined ? undefined : routePrefix(spec.stripPrefix);
  if (typeof prefix !== 'string' || (strip !== undefined && typeof strip !== 'string')) {
    return { error: `${spec.origin}: ${typeof prefix !== 'string' ? `path ${spec.pathPrefix}: ${prefix.error}` : `strip ${spec.stripPrefix}: ${(strip as { error: string }).error}`}` };
  }
  return { spec, rank, prefix, strip, key: `${spec.host ?? '*'}|${prefix}|${JSON.stringify(spec.headers)}` };
}

interface GroupSpec {
  readonly service: string;
  readonly tags: readonly string[];
  readonly meta: readonly (readonly [string, string])[];
  readonly balance: StrategyName;
  readonly slowStartMs: number;
}

interface GroupSlot {
  group: UpstreamGroup;
  readonly spec: GroupSpec;
  /** Routes and TCP listeners using it; the group leaves the table at 0. */
  refs: number;
}

/** A tag route of one service, before routes of several services on the same host and path are merged. */
interface TagRoute {
  readonly service: string;
  readonly index: number;
  readonly spec: RouteSpec;
  /** host|pathPrefix: tag routes sharing it become one split route. */
  readonly mergeKey: string;
}

interface ServiceEntry {
  tags: readonly string[] | undefined;
  instances: readonly Instance[] | undefined;
  tagRoutes: readonly TagRoute[];
}

/** What a compiled route depends on, to recompile it when that changes. */
interface RouteDeps {
  readonly route: CompiledRoute;
  readonly rank: Rank;
  readonly groups: readonly string[];
  readonly mirror: string | undefined;
}

export interface BuildOptions {
  /** The services whose catalog entry or instances may differ from the last set built; undefined: compare every service. */
  readonly changed?: Iterable<string> | undefined;
  /** The balancer's first table: its instances are long known, not new (no slow start for them). */
  readonly initial?: boolean;
  readonly change?: ChangeStamp | undefined;
}

export class TableBuilder {
  readonly #o: TableOptions;
  #set: ServiceSet | undefined;
  readonly #services = new Map<string, ServiceEntry>();
  /** mergeKey → the tag routes sharing it, keyed `${service}\0${index}`. */
  readonly #merge = new Map<string, Map<string, TagRoute>>();
  /** mergeKey → the (merged) tag route's candidate, or its path error. */
  readonly #tagCandidates = new Map<string, Candidate | { error: string }>();
  /** Route key → the candidates for it (config first, then tag candidates by merge key). */
  readonly #byKey = new Map<string, { config: Candidate[]; tags: Map<string, Candidate> }>();
  readonly #routes = new Map<string, RouteDeps>();
  readonly #groups = new Map<string, GroupSlot>();
  readonly #serviceGroups = new Map<string, Set<string>>();
  readonly #groupRoutes = new Map<string, Set<string>>();
  readonly #mirrorRoutes = new Map<string, Set<string>>();
  /** Problems by where they come from (a service's tags, a route key, a group, a candidate); errors() joins them. */
  readonly #errors = new Map<string, readonly string[]>();
  #errorList: readonly string[] = [];
  #errorsDirty = false;
  #rankOf = new WeakMap<CompiledRoute, Rank>();
  readonly #order = (a: CompiledRoute, b: CompiledRoute): number => specificity(a.spec, b.spec) || compareRank(this.#rankOf.get(a) as Rank, this.#rankOf.get(b) as Rank);
  #routeView = PersistentMap.empty<string, CompiledRoute>();
  #groupView = PersistentMap.empty<string, UpstreamGroup>();
  #matcher = new RouteMatcher<CompiledRoute>([], this.#order);
  #headerRoutes = 0;
  #built = false;
  // Per build: what joined and left the table.
  #added: UpstreamGroup[] = [];
  #removed: UpstreamGroup[] = [];
  // Per build: edits of the persistent views, applied at once at its end (one transient map each).
  #routeEdits: [string, CompiledRoute | undefined][] = [];
  #groupEdits: [string, UpstreamGroup | undefined][] = [];

  constructor(o: TableOptions) {
    this.#o = o;
  }

  /**
   * The table for `set`. `replacing`: the table of another builder this one takes over from (its
   * groups are reported as removed). A throw leaves the builder unusable: start a new one.
   */
  build(set: ServiceSet, b: BuildOptions = {}, replacing?: Iterable<UpstreamGroup>): TableParts {
    this.#set = set;
    this.#added = [];
    this.#removed = replacing ? [...replacing] : [];
    this.#routeEdits = [];
    this.#groupEdits = [];
    if (b.initial === true) for (const list of set.instances.values()) for (const i of list) this.#o.states.seed(i.id);
    const dirtyMerge = new Set<string>();
    const dirtyRoutes = new Set<string>();
    const names = b.changed === undefined || !this.#built ? new Set([...this.#services.keys(), ...set.catalog.keys(), ...set.instances.keys()]) : b.changed;
    for (const s of names) this.#service(s, dirtyMerge, dirtyRoutes);
    for (const mk of dirtyMerge) this.#remerge(mk, dirtyRoutes);
    if (!this.#built) {
      this.#o.specs.forEach((spec, i) => {
        const c = candidate(spec, [0, '', i]);
        if ('error' in c) this.#setErrors(`config:${i}`, [c.error]);
        else {
          this.#slot(c.key).config.push(c);
          dirtyRoutes.add(c.key);
        }
      });
      for (const t of this.#o.tcp ?? []) this.#acquire({ service: t.service, tags: [], meta: [], balance: t.balance, slowStartMs: 0 }, tcpGroupKey(t.service, t.balance));
      this.#built = true;
    }
    const removedRoutes: CompiledRoute[] = [];
    const addedRoutes: CompiledRoute[] = [];
    for (const key of dirtyRoutes) this.#resolve(key, removedRoutes, addedRoutes);
    if (removedRoutes.length > 0 || addedRoutes.length > 0) this.#matcher = this.#matcher.with(removedRoutes, addedRoutes);
    if (this.#routeEdits.length > 0) this.#routeView = this.#routeView.update(this.#routeEdits);
    if (this.#groupEdits.length > 0) this.#groupView = this.#groupView.update(this.#groupEdits);
    // A group built and dropped within this build (its service changed, then its route went) was never in a table.
    const removed = new Set(this.#removed);
    const added = new Set(this.#added);
    const changes: TableChanges = { added: this.#added.filter((g) => !removed.has(g)), removed: this.#removed.filter((g) => !added.has(g)) };
    return {
      routes: this.#routeView, order: this.#order, matcher: this.#matcher, groups: this.#groupView, errors: this.#errorsNow(),
      headerRoutes: this.#headerRoutes, changes, change: b.change,
    };
  }

  /** Takes in one service's catalog entry and instances from the current set. */
  #service(s: string, dirtyMerge: Set<string>, dirtyRoutes: Set<string>): void {
    const set = this.#set as ServiceSet;
    const tags = set.catalog.get(s);
    const instances = set.instances.get(s);
    let e = this.#services.get(s);
    if (e === undefined) {
      if (tags === undefined && instances === undefined) return;
      e = { tags: undefined, instances: undefined, tagRoutes: [] };
      this.#services.set(s, e);
    }
    if (!sameList(e.tags, tags)) {
      e.tags = tags;
      this.#retag(s, e, dirtyMerge);
    }
    if (e.instances !== instances) {
      e.instances = instances;
      this.#refreshGroups(s, dirtyRoutes);
      // Split shares of merged tag routes follow instance counts; a mirror needs its service known.
      for (const t of e.tagRoutes) if ((this.#merge.get(t.mergeKey)?.size ?? 0) > 1) dirtyMerge.add(t.mergeKey);
      for (const key of this.#mirrorRoutes.get(s) ?? []) dirtyRoutes.add(key);
    }
    if (e.tags === undefined && e.instances === undefined) this.#services.delete(s);
  }

  #retag(s: string, e: ServiceEntry, dirtyMerge: Set<string>): void {
    for (const t of e.tagRoutes) {
      const m = this.#merge.get(t.mergeKey);
      m?.delete(`${s}\0${t.index}`);
      if (m?.size === 0) this.#merge.delete(t.mergeKey);
      dirtyMerge.add(t.mergeKey);
    }
    const routes: TagRoute[] = [];
    const errors: string[] = [];
    let index = 0;
    for (const tag of new Set(e.tags ?? [])) {
      const r = parseUrlprefixTag(s, tag, { balance: this.#o.defaultBalance });
      if (r === undefined) continue;
      if ('error' in r) errors.push(r.error);
      else {
        const t: TagRoute = { service: s, index: index++, spec: r, mergeKey: `${r.host ?? '*'}|${r.pathPrefix}` };
        routes.push(t);
        let m = this.#merge.get(t.mergeKey);
        if (m === undefined) this.#merge.set(t.mergeKey, (m = new Map()));
        m.set(`${s}\0${t.index}`, t);
        dirtyMerge.add(t.mergeKey);
      }
    }
    e.tagRoutes = routes;
    this.#setErrors(`tags:${s}`, errors);
  }

  /**
   * Tag routes of several services (or tag sets) for the same host and path become one split route,
   * as Fabio serves them: a tag's `weight=0.1` gives its instances that share; subsets without a
   * weight share what is left in proportion to their instance counts (Fabio spreads over every
   * instance), and with no weights at all that is a plain spread over all instances.
   */
  #remerge(mk: string, dirtyRoutes: Set<string>): void {
    const old = this.#tagCandidates.get(mk);
    if (old !== undefined && !('error' in old)) {
      this.#byKey.get(old.key)?.tags.delete(mk);
      dirtyRoutes.add(old.key);
    }
    this.#tagCandidates.delete(mk);
    this.#setErrors(`cand:${mk}`, []);
    const members = this.#merge.get(mk);
    if (members === undefined || members.size === 0) return;
    const list = [...members.values()].sort((a, b) => compareRank([1, a.service, a.index], [1, b.service, b.index]));
    const first = list[0] as TagRoute;
    let spec: RouteSpec;
    if (list.length === 1) {
      // A lone weighted tag route has nothing to share with: it takes all.
      const { split: _alone, ...only } = first.spec;
      spec = only;
    } else {
      const specs = list.map((t) => t.spec);
      const count = (s: RouteSpec): number => (this.#set?.instances.get(s.service) ?? []).filter((i) => s.tags.every((t) => i.tags.includes(t))).length;
      const explicit = specs.reduce((a, s) => a + (s.split?.[0]?.weight ?? 0), 0);
      const rest = specs.filter((s) => s.split === undefined);
      const restCount = rest.reduce((a, s) => a + count(s), 0);
      const left = Math.max(0, 100 - explicit);
      const split: SplitSpec[] = specs.map((s) => {
        const own = s.split?.[0]?.weight;
        const weight = own !== undefined ? own : restCount > 0 ? (left * count(s)) / restCount : left / rest.length;
        return { service: s.service, tags: s.tags, meta: [], weight: Math.max(weight, 1e-9) };
      });
      spec = { ...first.spec, origin: specs.map((s) => s.origin).join(' + '), split };
    }
    const c = candidate(spec, [1, first.service, first.index]);
    this.#tagCandidates.set(mk, c);
    if ('error' in c) {
      this.#setErrors(`cand:${mk}`, [c.error]);
      return;
    }
    this.#slot(c.key).tags.set(mk, c);
    dirtyRoutes.add(c.key);
  }

  #slot(key: string): { config: Candidate[]; tags: Map<string, Candidate> } {
    let s = this.#byKey.get(key);
    if (s === undefined) this.#byKey.set(key, (s = { config: [], tags: new Map() }));
    return s;
  }

  /** Picks the route for `key` (the most specific candidate, config before tags) and compiles it if it changed. */
  #resolve(key: string, removed: CompiledRoute[], added: CompiledRoute[]): void {
    const slot = this.#byKey.get(key);
    const all = slot ? [...slot.config, ...slot.tags.values()] : [];
    let win: Candidate | undefined;
    for (const c of all) if (win === undefined || (specificity(c.spec, win.spec) || compareRank(c.rank, win.rank)) < 0) win = c;
    const errors: string[] = [];
    for (const c of all) if (c !== win) errors.push(`${c.spec.origin}: shadowed by an earlier route for the same host, path and headers`);
    if (slot && all.length === 0) this.#byKey.delete(key);
    const old = this.#routes.get(key);
    if (win === undefined) {
      if (old) this.#drop(key, old, removed);
      this.#setErrors(`route:${key}`, errors);
      return;
    }
    const next = this.#compile(key, win, errors);
    if (old) this.#drop(key, old, removed);
    this.#routes.set(key, next);
    this.#rankOf.set(next.route, next.rank);
    this.#routeEdits.push([key, next.route]);
    if (next.route.spec.headers.length > 0) this.#headerRoutes++;
    for (const g of next.groups) addTo(this.#groupRoutes, g, key);
    if (next.mirror !== undefined) addTo(this.#mirrorRoutes, next.mirror, key);
    added.push(next.route);
    this.#setErrors(`route:${key}`, errors);
  }

  #drop(key: string, old: RouteDeps, removed: CompiledRoute[]): void {
    this.#routes.delete(key);
    this.#routeEdits.push([key, undefined]);
    if (old.route.spec.headers.length > 0) this.#headerRoutes--;
    for (const g of old.groups) {
      removeFrom(this.#groupRoutes, g, key);
      this.#release(g);
    }
    if (old.mirror !== undefined) removeFrom(this.#mirrorRoutes, old.mirror, key);
    removed.push(old.route);
  }

  #compile(_key: string, c: Candidate, errors: string[]): RouteDeps {
    const spec = c.spec;
    const slow = spec.slowStartMs ?? 0;
    const keys: string[] = [];
    const group = (service: string, tags: readonly string[], meta: readonly (readonly [string, string])[]): UpstreamGroup => {
      const g = this.#acquire({ service, tags, meta, balance: spec.balance, slowStartMs: slow });
      keys.push(g.key);
      return g;
    };
    let split: RouteSplit | undefined;
    if (spec.split !== undefined && spec.split.length > 0) {
      // A tag-derived subset names its own service and tag; a configured one narrows the route's.
      const subsets = spec.split.map((x) => (x.service !== undefined ? group(x.service, x.tags, x.meta) : group(spec.service, [...spec.tags, ...x.tags], x.meta)));
      const total = spec.split.reduce((a, x) => a + x.weight, 0);
      const shares = spec.split.map((x) => x.weight / total);
      let run = 0;
      const cumulative = shares.map((x) => (run += x));
      cumulative[cumulative.length - 1] = 1;
      split = { groups: subsets, shares, cumulative, sticky: spec.sticky };
    }
    const mirror = spec.mirror === undefined ? undefined : this.#set?.instances.has(spec.mirror.service) ? group(spec.mirror.service, [], []) : undefined;
    if (spec.mirror !== undefined && mirror === undefined) errors.push(`${spec.origin}: mirror service ${spec.mirror.service} has no known instances; not mirroring`);
    const route: CompiledRoute = { spec, prefix: c.prefix, strip: c.strip, split, mirror, group: split ? (split.groups[0] as UpstreamGroup) : group(spec.service, spec.tags, []) };
    return { route, rank: c.rank, groups: keys, mirror: spec.mirror?.service };
  }

  /** The group for a filter (one reference more), built on first use. */
  #acquire(g: GroupSpec, fixedKey?: string): UpstreamGroup {
    const key = fixedKey ?? `${g.service}|${[...g.tags].sort().join(',')}|${g.meta.map(([k, v]) => `${k}=${v}`).sort().join(',')}|${g.balance}${g.slowStartMs > 0 ? `|slow=${g.slowStartMs}` : ''}`;
    let slot = this.#groups.get(key);
    if (slot === undefined) {
      slot = { group: this.#newGroup(key, g, this.#members(g)), spec: g, refs: 0 };
      this.#groups.set(key, slot);
      addTo(this.#serviceGroups, g.service, key);
      this.#groupEdits.push([key, slot.group]);
      this.#added.push(slot.group);
    }
    slot.refs++;
    return slot.group;
  }

  #release(key: string): void {
    const slot = this.#groups.get(key);
    if (slot === undefined || --slot.refs > 0) return;
    this.#groups.delete(key);
    removeFrom(this.#serviceGroups, slot.spec.service, key);
    this.#groupEdits.push([key, undefined]);
    this.#setErrors(`group:${key}`, []);
    this.#removed.push(slot.group);
  }

  /** Rebuilds the groups of a service whose instances changed; a group whose members are unchanged stays the same object. */
  #refreshGroups(s: string, dirtyRoutes: Set<string>): void {
    for (const key of this.#serviceGroups.get(s) ?? []) {
      const slot = this.#groups.get(key) as GroupSlot;
      const members = this.#members(slot.spec);
      if (sameMembers(slot.group, members)) continue;
      this.#removed.push(slot.group);
      slot.group = this.#newGroup(key, slot.spec, members);
      this.#added.push(slot.group);
      this.#groupEdits.push([key, slot.group]);
      for (const r of this.#groupRoutes.get(key) ?? []) dirtyRoutes.add(r);
    }
  }

  /** Instances carrying all the group's tags and meta. */
  #members(g: GroupSpec): Instance[] {
    return (this.#set?.instances.get(g.service) ?? []).filter((i) => g.tags.every((t) => i.tags.includes(t)) && g.meta.every(([k, v]) => i.meta[k] === v));
  }

  #newGroup(key: string, g: GroupSpec, instances: readonly Instance[]): UpstreamGroup {
    const errors: string[] = [];
    const upstreams: Upstream[] = instances.map((i) => {
      const protocol = instanceProtocol(i, errors);
      return Object.freeze({
        id: i.id, address: i.address, port: i.port, weight: i.status === 'passing' ? i.weights.passing : i.weights.warning,
        ...(protocol !== undefined ? { protocol } : {}),
      });
    });
    this.#setErrors(`group:${key}`, errors);
    const o = this.#o;
    return {
      key, service: g.service, upstreams, instances: new Map(instances.map((i) => [i.id, i])),
      strategy: createStrategy(g.balance, upstreams, {
        states: o.states, random: o.random, panicThreshold: o.panicThreshold / 100,
        ...(o.isEligible ? { isEligible: o.isEligible } : {}),
        ...(g.slowStartMs > 0 ? { slowStartMs: g.slowStartMs } : {}),
      }),
    };
  }

  #setErrors(source: string, errors: readonly string[]): void {
    const had = this.#errors.get(source);
    if (errors.length === 0) {
      if (had === undefined) return;
      this.#errors.delete(source);
    } else {
      if (had !== undefined && sameList(had, errors)) return;
      this.#errors.set(source, errors);
    }
    this.#errorsDirty = true;
  }

  #errorsNow(): readonly string[] {
    if (this.#errorsDirty) {
      const all = new Set<string>();
      for (const list of this.#errors.values()) for (const e of list) all.add(e);
      this.#errorList = Object.freeze([...all]);
      this.#errorsDirty = false;
    }
    return this.#errorList;
  }
}

/** An instance's meta `protocol`, when it names one we speak; a bad value is reported and ignored (HTTP/1.1). */
function instanceProtocol(i: Instance, errors: string[]): UpstreamProtocol | undefined {
  const v = i.meta.protocol;
  if (v === undefined || v === '') return undefined;
  const p = parseUpstreamProtocol(v);
  if (p === undefined) {
    const msg = `instance ${i.id}: meta protocol=${JSON.stringify(v)} is not one of http, https, http2, h2c, h2, grpc, grpcs; sending HTTP/1.1`;
    if (!errors.includes(msg)) errors.push(msg);
  }
  return p;
}

/** Whether a group over `next` would be the same as `g`: same instances in the same order, same address, weight, protocol, status and hold. */
function sameMembers(g: UpstreamGroup, next: readonly Instance[]): boolean {
  if (g.upstreams.length !== next.length) return false;
  for (let k = 0; k < next.length; k++) {
    const n = next[k] as Instance;
    if (g.upstreams[k]?.id !== n.id) return false;
    const o = g.instances.get(n.id);
    if (o === n) continue;
    if (o === undefined || o.address !== n.address || o.port !== n.port || o.status !== n.status || o.weights.passing !== n.weights.passing
      || o.weights.warning !== n.weights.warning || o.meta.protocol !== n.meta.protocol || o.held?.since !== n.held?.since || o.held?.until !== n.held?.until) return false;
  }
  return true;
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
