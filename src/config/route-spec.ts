/** A route as configured or derived from tags, before it is compiled into a routing snapshot. */

export type StrategyName = 'round_robin' | 'least_conn' | 'p2c' | 'random' | 'hash';

export type HashBy = { readonly kind: 'ip' } | { readonly kind: 'header'; readonly name: string } | { readonly kind: 'cookie'; readonly name: string };

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
