/**
 * The immutable routing snapshot: routes ordered most specific first, each bound to an upstream
 * group (instances + a balancing strategy built for this snapshot). Built off the hot path from
 * route specs and a ServiceSet; a request captures one snapshot and uses it to the end.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Random } from '../core/clock.js';
import { createStrategy } from '../balancer/index.js';
import type { Strategy, Upstream, UpstreamStates } from '../balancer/index.js';
import type { Instance, ServiceSet } from '../discovery/types.js';
import type { RouteSpec, StrategyName } from '../config/route-spec.js';
import { specificity } from '../config/route-spec.js';
import { parseUrlprefixTag } from './tag-routes.js';
import { prefixMatches, routePrefix, stripPrefix } from './path.js';

export interface UpstreamGroup {
  readonly key: string;
  readonly service: string;
  readonly upstreams: readonly Upstream[];
  readonly instances: ReadonlyMap<string, Instance>;
  readonly strategy: Strategy;
}

export interface CompiledRoute {
  readonly spec: RouteSpec;
  readonly group: UpstreamGroup;
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
  /** Services behind TCP listeners: groups without HTTP routes, looked up by tcpGroupKey. */
  readonly tcp?: readonly { readonly service: string; readonly balance: StrategyName }[];
}

export const tcpGroupKey = (service: string, balance: string): string => `tcp:${service}|${balance}`;

export class RoutingSnapshot {
  readonly version: number;
  readonly routes: readonly CompiledRoute[];
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  /** Items left out of this snapshot and why (a bad tag never takes the table down). */
  readonly errors: readonly string[];
  readonly builtAt: number;
  readonly #exact = new Map<string, CompiledRoute[]>();
  readonly #wildcard: { suffix: string; routes: CompiledRoute[] }[] = [];
  readonly #anyHost: CompiledRoute[] = [];
  /** One catch-all route and nothing else (the seeds' setup): matching is a field read. */
  readonly only: CompiledRoute | undefined;
  /** Some route matches on headers: only then does a plane build a header object to match with. */
  readonly needsHeaders: boolean;

  constructor(version: number, routes: CompiledRoute[], groups: Map<string, UpstreamGroup>, errors: string[]) {
    this.version = version;
    this.routes = routes;
    this.groups = groups;
    this.errors = errors;
    this.builtAt = Date.now();
    for (const r of routes) {
      const h = r.spec.host;
      if (h === undefined) this.#anyHost.push(r);
      else if (h.startsWith('*.')) {
        const suffix = h.slice(1);
        let w = this.#wildcard.find((x) => x.suffix === suffix);
        if (!w) this.#wildcard.push((w = { suffix, routes: [] }));
        w.routes.push(r);
      } else {
        let l = this.#exact.get(h);
        if (!l) this.#exact.set(h, (l = []));
        l.push(r);
      }
    }
    this.#wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
    this.needsHeaders = routes.some((r) => r.spec.headers.length > 0);
    const first = routes[0];
    this.only = routes.length === 1 && first && first.spec.host === undefined && first.prefix === '/' && first.spec.headers.length === 0 ? first : undefined;
  }

  /**
   * The most specific route for a request, or undefined (404). `host` is the raw Host header (or
   * the authority of an absolute-form target); `path` is normalised (routing/path.ts), no query.
   */
  match(rawHost: string | undefined, path: string, headers: IncomingHttpHeaders): CompiledRoute | undefined {
    if (this.only) return this.only;
    const host = normalizeHost(rawHost);
    if (host) {
      const exact = this.#exact.get(host);
      if (exact) {
        const r = firstMatch(exact, path, headers);
        if (r) return r;
      }
      for (const w of this.#wildcard) {
        if (host.endsWith(w.suffix) && host.length > w.suffix.length) {
          const r = firstMatch(w.routes, path, headers);
          if (r) return r;
        }
      }
    }
    return firstMatch(this.#anyHost, path, headers);
  }

  /** A plain description for /routes, logs and tests. */
  dump(states?: UpstreamStates): Record<string, unknown> {
    return {
      version: this.version,
      builtAt: new Date(this.builtAt).toISOString(),
      routes: this.routes.map((r) => ({
        origin: r.spec.origin, host: r.spec.host ?? '*', path: r.spec.pathPrefix, headers: Object.fromEntries(r.spec.headers),
        service: r.spec.service, tags: r.spec.tags, strip: r.spec.stripPrefix ?? null, balance: r.spec.balance, group: r.group.key,
      })),
      groups: [...this.groups.values()].map((g) => ({
        key: g.key, service: g.service, strategy: g.strategy.name,
        upstreams: g.upstreams.map((u) => {
          const s = states?.peek(u.id);
          return {
            id: u.id, address: `${u.address}:${u.port}`, weight: u.weight, status: g.instances.get(u.id)?.status,
            inFlight: s?.inFlight ?? 0, ejectedUntil: s && s.ejectedUntil > Date.now() ? new Date(s.ejectedUntil).toISOString() : null,
            draining: s?.draining ?? false,
          };
        }),
      })),
      errors: this.errors,
    };
  }
}

function firstMatch(list: readonly CompiledRoute[], path: string, headers: IncomingHttpHeaders): CompiledRoute | undefined {
  for (const r of list) {
    if (!prefixMatches(r.prefix, path)) continue;
    let ok = true;
    for (const [name, value] of r.spec.headers) {
      if (headers[name] !== value) {
        ok = false;
        break;
      }
    }
    if (ok) return r;
  }
  return undefined;
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
  const specs: RouteSpec[] = [...input.specs];
  for (const [service, tags] of input.set.catalog) {
    for (const tag of new Set(tags)) {
      const r = parseUrlprefixTag(service, tag, { balance: input.defaultBalance });
      if (r === undefined) continue;
      if ('error' in r) errors.push(r.error);
      else specs.push(r);
    }
  }
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
    const key = `${spec.service}|${[...spec.tags].sort().join(',')}|${spec.balance}`;
    routes.push({ spec, prefix, strip, group: groupFor(groups, key, input, spec.service, spec.tags, spec.balance) });
  }
  for (const t of input.tcp ?? []) groupFor(groups, tcpGroupKey(t.service, t.balance), input, t.service, [], t.balance);
  return new RoutingSnapshot(input.version, routes, groups, errors);
}

/** The group for `key`, built on first use: instances carrying all `tags`, weighted by health. */
function groupFor(groups: Map<string, UpstreamGroup>, key: string, input: BuildInput, service: string, tags: readonly string[], balance: StrategyName): UpstreamGroup {
  let g = groups.get(key);
  if (g) return g;
  const instances = (input.set.instances.get(service) ?? []).filter((i) => tags.every((t) => i.tags.includes(t)));
  const upstreams: Upstream[] = instances.map((i) => Object.freeze({
    id: i.id, address: i.address, port: i.port, weight: i.status === 'passing' ? i.weights.passing : i.weights.warning,
  }));
  g = {
    key, service, upstreams, instances: new Map(instances.map((i) => [i.id, i])),
    strategy: createStrategy(balance, upstreams, {
      states: input.states, random: input.random, panicThreshold: input.panicThreshold / 100,
      ...(input.isEligible ? { isEligible: input.isEligible } : {}),
    }),
  };
  groups.set(key, g);
  return g;
}

/** The path an instance receives for a request matched by `route`: the normalised path, strip prefix removed. */
export function forwardedPath(route: CompiledRoute, path: string): string {
  return route.strip === undefined ? path : stripPrefix(path, route.strip);
}
