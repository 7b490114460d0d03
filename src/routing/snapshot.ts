/**
 * The immutable routing snapshot: routes ordered most specific first, each bound to an upstream
 * group (instances + a balancing strategy built for this snapshot). Built off the hot path from
 * route specs and a ServiceSet; a request captures one snapshot and uses it to the end.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Random } from '../core/clock.js';
import { createStrategy } from '../balancer/index.js';
import type { Strategy, Upstream, UpstreamStates } from '../balancer/index.js';
import type { ChangeStamp, Instance, ServiceSet } from '../discovery/types.js';
import type { HashBy, RouteSpec, SplitSpec, StrategyName, UpstreamProtocol } from '../config/route-spec.js';
import { parseUpstreamProtocol, specificity } from '../config/route-spec.js';
import { parseUrlprefixTag } from './tag-routes.js';
import { RouteMatcher } from './matcher.js';
import { routePrefix, stripPrefix } from './path.js';

export interface UpstreamGroup {
  readonly key: string;
  readonly service: string;
  readonly upstreams: readonly Upstream[];
  readonly instances: ReadonlyMap<string, Instance>;
  readonly strategy: Strategy;
}

/** A route's weighted subsets: a request draws one subset (by weight, or by its sticky key), then an instance in it. */
export interface RouteSplit {
  readonly groups: readonly UpstreamGroup[];
  /** Each subset's share, summing to 1, in the order of `groups`. */
  readonly shares: readonly number[];
  /** Running sums of `shares` (the last is 1). */
  readonly cumulative: readonly number[];
  readonly sticky: HashBy | undefined;
}

export interface CompiledRoute {
  readonly spec: RouteSpec;
  /** The instances the route sends to; for a split route, its first subset (the split lists them all). */
  readonly group: UpstreamGroup;
  readonly split: RouteSplit | undefined;
  /** Where a share of the requests is copied (spec.mirror), when the mirror service is known. */
  readonly mirror: UpstreamGroup | undefined;
  /** spec.pathPrefix in matching form (normalised, no trailing slash): matched on segment boundaries. */
  readonly prefix: string;
  /** spec.stripPrefix in the same form, when the route strips one. */
  readonly strip: string | undefined;
}

export interface BuildInput {
  readonly version: number;
  readonly specs: readonly RouteSpec[];
  readonly set: ServiceSet;
  readonly states: UpstreamStates;
  readonly random: Random;
  readonly panicThreshold: number;
  readonly defaultBalance: StrategyName;
  readonly isEligible?: (u: Upstream) => boolean;
  /** The balancer's first table: its instances are long known, not new (no slow start for them). */
  readonly initial?: boolean;
  /** Services behind TCP listeners: groups without HTTP routes, looked up by tcpGroupKey. */
  readonly tcp?: readonly { readonly service: string; readonly balance: StrategyName }[];
  /** The registry change this table is built for (change latency); see ServiceSet.change. */
  readonly change?: ChangeStamp;
}

export const tcpGroupKey = (service: string, balance: string): string => `tcp:${service}|${balance}`;

export class RoutingSnapshot {
  readonly version: number;
  readonly routes: readonly CompiledRoute[];
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  /** Items left out of this snapshot and why (a bad tag never takes the table down). */
  readonly errors: readonly string[];
  readonly builtAt: number;
  readonly #matcher: RouteMatcher<CompiledRoute>;
  /** One catch-all route and nothing else (the seeds' setup): matching is a field read. */
  readonly only: CompiledRoute | undefined;
  /** Some route matches on headers: only then does a plane build a header object to match with. */
  readonly needsHeaders: boolean;
  /** The registry change this table was built for, if it was built for one. */
  readonly change: ChangeStamp | undefined;
  /**
   * Date.now() when this table routed its first request; 0 until then. The one thing a table
   * learns after it is built: the planes check it per request (a field read) and call
   * markRouted() once.
   */
  routedAt = 0;
  #onRouted: ((snap: RoutingSnapshot) => void) | undefined;

  constructor(version: number, routes: CompiledRoute[], groups: Map<string, UpstreamGroup>, errors: string[], change?: ChangeStamp) {
    this.change = change;
    this.version = version;
    this.routes = routes;
    this.groups = groups;
    this.errors = errors;
    this.builtAt = Date.now();
    this.#matcher = new RouteMatcher(routes);
    this.needsHeaders = routes.some((r) => r.spec.headers.length > 0);
    const first = routes[0];
    this.only = routes.length === 1 && first && first.spec.host === undefined && first.prefix === '/' && first.spec.headers.length === 0 ? first : undefined;
  }

  /** Records the first request this table routed (change latency's last stage); later calls do nothing. */
  markRouted(): void {
    if (this.routedAt !== 0) return;
    this.routedAt = Date.now();
    this.#onRouted?.(this);
  }

  /** Who hears about the first routed request (the snapshot store); one listener. */
  onFirstRouted(fn: (snap: RoutingSnapshot) => void): void {
    this.#onRouted = fn;
  }

  /**
   * The most specific route for a request, or undefined (404). `host` is the raw Host header (or
   * the authority of an absolute-form target); `path` is normalised (routing/path.ts), no query.
   */
  match(rawHost: string | undefined, path: string, headers: IncomingHttpHeaders): CompiledRoute | undefined {
    if (this.only) return this.only;
    return this.#matcher.match(normalizeHost(rawHost), path, headers);
  }

  /** A plain description for /routes, logs and tests. */
  dump(states?: UpstreamStates): Record<string, unknown> {
    return {
      version: this.version,
      builtAt: new Date(this.builtAt).toISOString(),
      routes: this.routes.map((r) => ({
        origin: r.spec.origin, host: r.spec.host ?? '*', path: r.spec.pathPrefix, headers: Object.fromEntries(r.spec.headers),
        service: r.spec.service, tags: r.spec.tags, strip: r.spec.stripPrefix ?? null, balance: r.spec.balance, group: r.group.key,
        protocol: r.spec.protocol ?? (r.group.upstreams.some((u) => u.protocol !== undefined) ? 'by instance (meta protocol)' : 'http'),
        ...(r.split ? { split: r.split.groups.map((g, i) => ({ group: g.key, share: Math.round((r.split as RouteSplit).shares[i]! * 10000) / 100, instances: g.upstreams.length })), sticky: r.split.sticky ?? null } : {}),
        ...(r.spec.slowStartMs ? { slowStartMs: r.spec.slowStartMs } : {}),
        ...(r.spec.mirror ? { mirror: { ...r.spec.mirror, group: r.mirror?.key ?? null } } : {}),
        ...(r.spec.limits ? { limits: r.spec.limits } : {}),
      })),
      groups: [...this.groups.values()].map((g) => ({
        key: g.key, service: g.service, strategy: g.strategy.name,
        upstreams: g.upstreams.map((u) => {
          const s = states?.peek(u.id);
          const ramp = g.strategy.rampFactor?.(u.id);
          const inst = g.instances.get(u.id);
          return {
            id: u.id, address: `${u.address}:${u.port}`, weight: u.weight, ...(u.protocol !== undefined ? { protocol: u.protocol } : {}), ...(ramp !== undefined && ramp < 1 ? { slowStart: Math.round(ramp * 100) / 100 } : {}),
            status: inst?.status,
            ...(inst?.held ? { heldUntil: new Date(inst.held.until).toISOString() } : {}),
            inFlight: s?.inFlight ?? 0, ejectedUntil: s && s.ejectedUntil > Date.now() ? new Date(s.ejectedUntil).toISOString() : null,
            draining: s?.draining ?? false,
          };
        }),
      })),
      errors: this.errors,
    };
  }
}

export function normalizeHost(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let h = raw.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** Builds a snapshot; never throws for dynamic input: bad tags are recorded in `errors`. */
export function buildSnapshot(input: BuildInput): RoutingSnapshot {
  const errors: string[] = [];
  if (input.initial === true) for (const list of input.set.instances.values()) for (const i of list) input.states.seed(i.id);
  const specs: RouteSpec[] = [...input.specs];
  const tagSpecs: RouteSpec[] = [];
  for (const [service, tags] of input.set.catalog) {
    for (const tag of new Set(tags)) {
      const r = parseUrlprefixTag(service, tag, { balance: input.defaultBalance });
      if (r === undefined) continue;
      if ('error' in r) errors.push(r.error);
      else tagSpecs.push(r);
    }
  }
  specs.push(...mergeTagSplits(tagSpecs, input));
  // Stable order for equal specificity: config routes (listed first) win over tag routes.
  const ordered = specs.map((s, i) => ({ s, i })).sort((a, b) => specificity(a.s, b.s) || a.i - b.i).map((x) => x.s);
  const groups = new Map<string, UpstreamGroup>();
  const routes: CompiledRoute[] = [];
  const seen = new Set<string>();
  for (const spec of ordered) {
    const prefix = routePrefix(spec.pathPrefix);
    const strip = spec.stripPrefix === undefined ? undefined : routePrefix(spec.stripPrefix);
    if (typeof prefix !== 'string' || (strip !== undefined && typeof strip !== 'string')) {
      errors.push(`${spec.origin}: ${typeof prefix !== 'string' ? `path ${spec.pathPrefix}: ${prefix.error}` : `strip ${spec.stripPrefix}: ${(strip as { error: string }).error}`}`);
      continue;
    }
    const dedupe = `${spec.host ?? '*'}|${prefix}|${JSON.stringify(spec.headers)}`;
    if (seen.has(dedupe)) {
      if (!spec.origin.startsWith('tag:') || !routes.some((r) => r.spec.origin === spec.origin)) {
        errors.push(`${spec.origin}: shadowed by an earlier route for the same host, path and headers`);
      }
      continue;
    }
    seen.add(dedupe);
    const slow = spec.slowStartMs ?? 0;
    const group = (service: string, tags: readonly string[], meta: readonly (readonly [string, string])[]): UpstreamGroup =>
      groupFor(groups, input, { service, tags, meta, balance: spec.balance, slowStartMs: slow }, errors);
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
    const mirror = spec.mirror === undefined ? undefined : input.set.instances.has(spec.mirror.service) ? group(spec.mirror.service, [], []) : undefined;
    if (spec.mirror !== undefined && mirror === undefined) errors.push(`${spec.origin}: mirror service ${spec.mirror.service} has no known instances; not mirroring`);
    routes.push({ spec, prefix, strip, split, mirror, group: split ? (split.groups[0] as UpstreamGroup) : group(spec.service, spec.tags, []) });
  }
  for (const t of input.tcp ?? []) groupFor(groups, input, { service: t.service, tags: [], meta: [], balance: t.balance, slowStartMs: 0 }, errors, tcpGroupKey(t.service, t.balance));
  return new RoutingSnapshot(input.version, routes, groups, errors, input.change);
}

/**
 * Tag routes of several services (or tag sets) for the same host and path become one split route,
 * as Fabio serves them: a tag's `weight=0.1` gives its instances that share; subsets without a
 * weight share what is left in proportion to their instance counts (Fabio spreads over every
 * instance), and with no weights at all that is a plain spread over all instances.
 */
function mergeTagSplits(tagSpecs: RouteSpec[], input: BuildInput): RouteSpec[] {
  const byKey = new Map<string, RouteSpec[]>();
  for (const s of tagSpecs) {
    const k = `${s.host ?? '*'}|${s.pathPrefix}`;
    let l = byKey.get(k);
    if (!l) byKey.set(k, (l = []));
    l.push(s);
  }
  const out: RouteSpec[] = [];
  for (const list of byKey.values()) {
    if (list.length === 1) {
      // A lone weighted tag route has nothing to share with: it takes all.
      const { split: _alone, ...only } = list[0] as RouteSpec;
      out.push(only);
      continue;
    }
    const count = (s: RouteSpec): number => (input.set.instances.get(s.service) ?? []).filter((i) => s.tags.every((t) => i.tags.includes(t))).length;
    const explicit = list.reduce((a, s) => a + (s.split?.[0]?.weight ?? 0), 0);
    const rest = list.filter((s) => s.split === undefined);
    const restCount = rest.reduce((a, s) => a + count(s), 0);
    const left = Math.max(0, 100 - explicit);
    const split: SplitSpec[] = list.map((s) => {
      const own = s.split?.[0]?.weight;
      const weight = own !== undefined ? own : restCount > 0 ? (left * count(s)) / restCount : left / rest.length;
      return { service: s.service, tags: s.tags, meta: [], weight: Math.max(weight, 1e-9) };
    });
    const first = list[0] as RouteSpec;
    out.push({ ...first, origin: list.map((s) => s.origin).join(' + '), split });
  }
  return out;
}

interface GroupSpec {
  readonly service: string;
  readonly tags: readonly string[];
  readonly meta: readonly (readonly [string, string])[];
  readonly balance: StrategyName;
  readonly slowStartMs: number;
}

/** The group for a filter, built on first use: instances carrying all `tags` and `meta`, weighted by health. */
function groupFor(groups: Map<string, UpstreamGroup>, input: BuildInput, g: GroupSpec, errors: string[], fixedKey?: string): UpstreamGroup {
  const key = fixedKey ?? `${g.service}|${[...g.tags].sort().join(',')}|${g.meta.map(([k, v]) => `${k}=${v}`).sort().join(',')}|${g.balance}${g.slowStartMs > 0 ? `|slow=${g.slowStartMs}` : ''}`;
  const found = groups.get(key);
  if (found) return found;
  const instances = (input.set.instances.get(g.service) ?? []).filter((i) => g.tags.every((t) => i.tags.includes(t)) && g.meta.every(([k, v]) => i.meta[k] === v));
  const upstreams: Upstream[] = instances.map((i) => {
    const protocol = instanceProtocol(i, errors);
    return Object.freeze({
      id: i.id, address: i.address, port: i.port, weight: i.status === 'passing' ? i.weights.passing : i.weights.warning,
      ...(protocol !== undefined ? { protocol } : {}),
    });
  });
  const group: UpstreamGroup = {
    key, service: g.service, upstreams, instances: new Map(instances.map((i) => [i.id, i])),
    strategy: createStrategy(g.balance, upstreams, {
      states: input.states, random: input.random, panicThreshold: input.panicThreshold / 100,
      ...(input.isEligible ? { isEligible: input.isEligible } : {}),
      ...(g.slowStartMs > 0 ? { slowStartMs: g.slowStartMs } : {}),
    }),
  };
  groups.set(key, group);
  return group;
}

/** An instance's meta `protocol`, when it names one we speak; a bad value is reported and ignored (HTTP/1.1). */
function instanceProtocol(i: Instance, errors: string[]): UpstreamProtocol | undefined {
  const v = i.meta.protocol;
  if (v === undefined || v === '') return undefined;
  const p = parseUpstreamProtocol(v);
  if (p === undefined) {
    const msg = `instance ${i.id}: meta protocol=${JSON.stringify(v)} is not one of http, http2, h2c, h2, grpc, grpcs; sending HTTP/1.1`;
    if (!errors.includes(msg)) errors.push(msg);
  }
  return p;
}

/** What a request to `up` through `route` speaks: the route's protocol, else the instance's, else HTTP/1.1. */
export function upstreamProtocol(route: CompiledRoute, up: Upstream): UpstreamProtocol {
  return route.spec.protocol ?? up.protocol ?? 'http';
}

/**
 * Why an HTTP/1.1 request cannot be served on `route` (its instances speak HTTP/2 or gRPC, and the
 * HTTP/1 planes do not translate), or undefined when it can.
 */
export function http2OnlyReason(route: CompiledRoute): string | undefined {
  const p = route.spec.protocol;
  if (p === undefined || p === 'http') return undefined;
  return `the instances of ${route.spec.service} speak ${p}: send this request over HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2)`;
}

/** The path an instance receives for a request matched by `route`: the normalised path, strip prefix removed. */
export function forwardedPath(route: CompiledRoute, path: string): string {
  return route.strip === undefined ? path : stripPrefix(path, route.strip);
}
