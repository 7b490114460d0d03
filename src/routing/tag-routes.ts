/** Routes derived from service tags, in Fabio's `urlprefix-` convention. */
import type { RouteSpec, StrategyName } from '../config/route-spec.js';

const STRATEGIES: ReadonlySet<string> = new Set(['round_robin', 'least_conn', 'p2c', 'random', 'hash']);

/** `urlprefix-[host]/path [strip=/p] [proto=http] [balance=…]`; undefined for other tags, `{error}` for bad ones. */
export function parseUrlprefixTag(service: string, tag: string, defaults: { balance: StrategyName }): RouteSpec | { error: string } | undefined {
  if (!tag.startsWith('urlprefix-')) return undefined;
  const [target = '', ...opts] = tag.slice('urlprefix-'.length).trim().split(/\s+/);
  const origin = `tag:${service}/${tag}`;
  const slash = target.indexOf('/');
  if (slash < 0) {
    if (target.startsWith(':')) return { error: `${origin}: TCP routes (urlprefix-:port proto=tcp) are configured with tcp: in the config file` };
    return { error: `${origin}: expected urlprefix-[host]/path, e.g. urlprefix-/api or urlprefix-example.com/` };
  }
  const host = target.slice(0, slash).toLowerCase();
  const pathPrefix = target.slice(slash);
  let stripPrefix: string | undefined;
  let balance = defaults.balance;
  for (const o of opts) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    const v = eq < 0 ? '' : o.slice(eq + 1);
    if (k === 'strip') stripPrefix = v;
    else if (k === 'proto') {
      if (v !== 'http') return { error: `${origin}: proto=${v} is not supported on HTTP routes (only proto=http)` };
    } else if (k === 'balance') {
      if (!STRATEGIES.has(v)) return { error: `${origin}: unknown balance=${v}` };
      balance = v as StrategyName;
    } else if (k === 'weight' || k === 'opts' || k === 'redirect' || k === 'tlsskipverify' || k === 'host') {
      // Fabio options that do not apply here; ignored rather than failing the route.
    } else return { error: `${origin}: unknown option ${JSON.stringify(k)}` };
  }
  if (stripPrefix !== undefined && !pathPrefix.startsWith(stripPrefix)) return { error: `${origin}: strip=${stripPrefix} is not a prefix of ${pathPrefix}` };
  return {
    // Fabio semantics: a tag route is served by the instances that carry that tag.
    origin, pathPrefix, headers: [], service, tags: [tag], balance,
    ...(host !== '' ? { host } : {}), ...(stripPrefix !== undefined ? { stripPrefix } : {}),
  };
}
