/**
 * The immutable routing snapshot: routes ordered most specific first, each bound to an upstream
 * group (instances + a balancing strategy). Built off the hot path from route specs and a
 * ServiceSet (table-builder.ts keeps it current change by change: a new snapshot shares every
 * unchanged route, group and matcher path with the one before); a request captures one snapshot
 * and uses it to the end.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Random } from '../core/clock.js';
import type { PersistentMap } from '../core/persistent-map.js';
import type { Strategy, Upstream, UpstreamStates } from '../balancer/index.js';
import type { ChangeStamp, Instance, ServiceSet } from '../discovery/types.js';
import type { HashBy, RouteSpec, StrategyName, UpstreamProtocol } from '../config/route-spec.js';
import { TableBuilder, tcpGroupKey } from './table-builder.js';
import type { RouteMatcher } from './matcher.js';
import { stripPrefix } from './path.js';

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

export { tcpGroupKey };

/** The groups that joined and left the table with this snapshot (a changed group is both: its new and its old object). */
export interface TableChanges {
  readonly added: readonly UpstreamGroup[];
  readonly removed: readonly UpstreamGroup[];
}

/** What a snapshot is made of (table-builder.ts builds it; the persistent parts are shared with other snapshots). */
export interface TableParts {
  /** Route key → route. */
  readonly routes: PersistentMap<string, CompiledRoute>;
  /** Most specific first (specificity, then config before tags). */
  readonly order: (a: CompiledRoute, b: CompiledRoute) => number;
  readonly matcher: RouteMatcher<CompiledRoute>;
  readonly groups: PersistentMap<string, UpstreamGroup>;
  readonly errors: readonly string[];
  /** How many routes match on headers. */
  readonly headerRoutes: number;
  readonly changes: TableChanges;
  readonly change: ChangeStamp | undefined;
}

export class RoutingSnapshot {
  readonly version: number;
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  /** Items left out of this snapshot and why (a bad tag never takes the table down). */
  readonly errors: readonly string[];
  readonly builtAt: number;
  readonly #matcher: RouteMatcher<CompiledRoute>;
  readonly #routeMap: PersistentMap<string, CompiledRoute>;
  readonly #order: (a: CompiledRoute, b: CompiledRoute) => number;
  #routes: readonly CompiledRoute[] | undefined;
  /** One catch-all route and nothing else (the seeds' setup): matching is a field read. */
  readonly only: CompiledRoute | undefined;
  /** Some route matches on headers: only then does a plane build a header object to match with. */
  readonly needsHeaders: boolean;
  /** The registry change this table was built for, if it was built for one. */
  readonly change: ChangeStamp | undefined;
  /** Groups that joined and left the table with this snapshot, against the one before it. */
  readonly changes: TableChanges;
  /**
   * Date.now() when this table routed its first request; 0 until then. The one thing a table
   * learns after it is built: the planes check it per request (a field read) and call
   * markRouted() once.
   */
  routedAt = 0;
  #onRouted: ((snap: RoutingSnapshot) => void) | undefined;

  constructor(version: number, parts: TableParts) {
    this.change = parts.change;
    this.version = version;
    this.#routeMap = parts.routes;
    this.#order = parts.order;
    this.groups = parts.groups;
    this.errors = parts.errors;
    this.changes = parts.changes;
    this.builtAt = Date.now();
    this.#matcher = parts.matcher;
    this.needsHeaders = parts.headerRoutes > 0;
    const first = parts.routes.size === 1 ? (parts.routes.values().next().value as CompiledRoute) : undefined;
    this.only = first && first.spec.host === undefined && first.prefix === '/' && first.spec.headers.length === 0 ? first : undefined;
  }

  /** Every route, most specific first (sorted on first use: the table is kept by route key). */
  get routes(): readonly CompiledRoute[] {
    this.#routes ??= Object.freeze([...this.#routeMap.values()].sort(this.#order));
    return this.#routes;
  }

  /** How many routes the table has (without listing them). */
  get routeCount(): number {
    return this.#routeMap.size;
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
            inFlight: s?.inFlight ?? 0, ejectedUntil: s && states && s.ejectedUntil > states.now() ? new Date(s.ejectedUntil).toISOString() : null,
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

/** Builds a snapshot from scratch; never throws for dynamic input: bad tags are recorded in `errors`. */
export function buildSnapshot(input: BuildInput): RoutingSnapshot {
  const builder = new TableBuilder({
    specs: input.specs, states: input.states, random: input.random, panicThreshold: input.panicThreshold, defaultBalance: input.defaultBalance,
    ...(input.isEligible ? { isEligible: input.isEligible } : {}), ...(input.tcp ? { tcp: input.tcp } : {}),
  });
  return new RoutingSnapshot(input.version, builder.build(input.set, { initial: input.initial === true, change: input.change }));
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
  if (p === undefined || p === 'http' || p === 'https') return undefined;
  return `the instances of ${route.spec.service} speak ${p}: send this request over HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2)`;
}

/** The path an instance receives for a request matched by `route`: the normalised path, strip prefix removed. */
export function forwardedPath(route: CompiledRoute, path: string): string {
  return route.strip === undefined ? path : stripPrefix(path, route.strip);
}
