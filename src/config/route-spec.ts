/** A route as configured or derived from tags, before it is compiled into a routing snapshot. */

/** The balancing strategies by configuration name: the one list the schema, the tag parser and the balancer's registry derive from. */
export const STRATEGY_NAMES = ['round_robin', 'least_conn', 'p2c', 'random', 'hash'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export function isStrategyName(name: string): name is StrategyName {
  return (STRATEGY_NAMES as readonly string[]).includes(name);
}

/**
 * What an instance speaks: HTTP/1.1 (the default), HTTP/1.1 over TLS (https), HTTP/2 with prior
 * knowledge (h2c), HTTP/2 over TLS (h2), or gRPC over either (grpc, grpcs). gRPC is HTTP/2 plus its
 * own status semantics: gRPC-shaped errors, retries of UNAVAILABLE, passive health on grpc-status.
 */
export type UpstreamProtocol = 'http' | 'https' | 'h2c' | 'h2' | 'grpc' | 'grpcs';
export const UPSTREAM_PROTOCOLS: readonly UpstreamProtocol[] = ['http', 'https', 'h2c', 'h2', 'grpc', 'grpcs'];

/** The protocols spoken over TLS to the instances. */
export function isTlsProtocol(p: UpstreamProtocol): boolean {
  return p === 'https' || p === 'h2' || p === 'grpcs';
}

/**
 * An upstream protocol from a tag option, a config value or service meta `protocol`; Consul's
 * service-defaults names (http2 for h2c) are accepted too. Undefined for anything else.
 */
export function parseUpstreamProtocol(v: string): UpstreamProtocol | undefined {
  const l = v.trim().toLowerCase();
  if (l === 'http2') return 'h2c';
  return (UPSTREAM_PROTOCOLS as readonly string[]).includes(l) ? (l as UpstreamProtocol) : undefined;
}

export type HashBy = { readonly kind: 'ip' } | { readonly kind: 'header'; readonly name: string } | { readonly kind: 'cookie'; readonly name: string };

/** One subset of a split route: the instances carrying these tags and meta values, and their share. */
export interface SplitSpec {
  readonly tags: readonly string[];
  /** Exact service-meta matches. */
  readonly meta: readonly (readonly [string, string])[];
  /** Share of the route's traffic, in percent of the sum of the split's weights. */
  readonly weight: number;
  /** For tag-derived splits: the service of this subset (config splits use the route's service). */
  readonly service?: string;
}

/** The timeouts of one request to an instance (ms; total 0: none). */
export interface UpstreamTimeouts {
  /** From the request sent to the response head. */
  readonly headerMs: number;
  /** Between two reads of a body, either way. */
  readonly idleMs: number;
  /** The whole exchange. */
  readonly totalMs: number;
}

/** When a failed attempt is tried again on another instance (see retry-policy.ts). */
export interface RetrySettings {
  readonly attempts: number;
  readonly budgetPercent: number;
  readonly minConcurrency: number;
}

export interface StickyCookie {
  readonly name: string;
  /** What follows name=value: Path, Max-Age, HttpOnly, SameSite (Secure is added per request, see `secure`). */
  readonly attributes: string;
  /** true: always Secure; false: never; undefined: when the client came over TLS. */
  readonly secure: boolean | undefined;
}

/** Per-route admission limits (circuit breaking and rate limiting). */
export interface RouteLimits {
  /** Requests in flight on this route beyond which new ones get 503 (0: no limit). */
  readonly maxConcurrent: number;
  /** A token bucket per client key: `perSecond` tokens a second, holding at most `burst`. */
  readonly rate?: { readonly perSecond: number; readonly burst: number; readonly by: HashBy };
}

export interface RouteSpec {
  /** Where it came from, for /routes and error messages: `config:routes[2]`, `tag:web/urlprefix-/api`, `--service`. */
  readonly origin: string;
  /** Exact host (`api.example.com`), wildcard (`*.example.com`) or undefined for any host. Lower case, no port. */
  readonly host?: string;
  readonly pathPrefix: string;
  /** Exact header matches, names lower case. */
  readonly headers: readonly (readonly [string, string])[];
  readonly service: string;
  /** Instances must carry all of these tags. */
  readonly tags: readonly string[];
  readonly stripPrefix?: string;
  readonly balance: StrategyName;
  readonly hashBy?: HashBy;
  /** Weighted subsets of the service (canaries): each request goes to one subset, then to an instance in it. */
  readonly split?: readonly SplitSpec[];
  /** Keeps a client in the same split subset: its IP, a header or a cookie chooses the subset. */
  readonly sticky?: HashBy;
  /** Slow start window (ms) for new and recovered instances; 0 or absent: off. */
  readonly slowStartMs?: number;
  /** A share of the requests is copied to another service, fire-and-forget. */
  readonly mirror?: { readonly service: string; readonly percent: number };
  readonly limits?: RouteLimits;
  /** The instances' protocol; absent: each instance's meta `protocol`, else http. */
  readonly protocol?: UpstreamProtocol;
  /** TLS upstreams (https, h2, grpcs): accept any certificate (Fabio's tlsskipverify=true). */
  readonly tlsSkipVerify?: boolean;
  /**
   * TLS upstreams: the name sent as SNI and checked against the certificate (nginx's
   * proxy_ssl_name); absent: the instance's address (an IP is checked against the IP SANs, no SNI).
   */
  readonly tlsServerName?: string;
  /** TLS upstreams: a PEM file of the CAs to trust instead of the system's (nginx's proxy_ssl_trusted_certificate). */
  readonly tlsCaFile?: string;
  /** TLS upstreams: the certificate (PEM, leaf first) and key shown to instances that ask for one (nginx's proxy_ssl_certificate). */
  readonly tlsClientCertificate?: { readonly certFile: string; readonly keyFile: string };
  /**
   * A cookie the balancer sets naming the instance that answered; a client that sends it back goes
   * to that instance while it is in the healthy pool (nginx's `sticky cookie`, Traefik's
   * sticky.cookie, HAProxy's `cookie … insert`).
   */
  readonly stickyCookie?: StickyCookie;
  /** This route's timeouts, the balancer's with the route's own in place (nginx's proxy_read_timeout per location); absent: the balancer's. */
  readonly timeouts?: UpstreamTimeouts;
  /** This route's retries, likewise (nginx's proxy_next_upstream_tries per location); absent: the balancer's. */
  readonly retries?: RetrySettings;
}

/**
 * Orders routes most specific first: exact host, then wildcard host (longer suffix first), then any
 * host; within that the longer path prefix, then more header conditions.
 */
export function specificity(a: RouteSpec, b: RouteSpec): number {
  const hostRank = (r: RouteSpec): number => (r.host === undefined ? 0 : r.host.startsWith('*.') ? 1 : 2);
  const d = hostRank(b) - hostRank(a);
  if (d !== 0) return d;
  if (a.host?.startsWith('*.') && b.host?.startsWith('*.') && a.host.length !== b.host.length) return b.host.length - a.host.length;
  if (a.pathPrefix.length !== b.pathPrefix.length) return b.pathPrefix.length - a.pathPrefix.length;
  return b.headers.length - a.headers.length;
}
