/** Routes derived from service tags, in Fabio's `urlprefix-` convention. */
import { durationToMs } from '../core/duration.js';
import { UPSTREAM_PROTOCOLS, isStrategyName, parseUpstreamProtocol } from '../config/route-spec.js';
import type { RouteSpec, StrategyName, UpstreamProtocol } from '../config/route-spec.js';


/**
 * `urlprefix-[host]/path [strip=/p] [proto=http|https|h2c|h2|grpc|grpcs] [tlsskipverify=true] [balance=…] [weight=0.1] [slowstart=30s]`; undefined for
 * other tags, `{error}` for bad ones. `weight` (Fabio's: the share, 0 < w ≤ 1, this service gets of
 * a path several services register) comes back as a one-subset split that buildSnapshot merges.
 */
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
  let weight: number | undefined;
  let slowStartMs: number | undefined;
  let protocol: UpstreamProtocol | undefined;
  let tlsSkipVerify = false;
  for (const o of opts) {
    const eq = o.indexOf('=');
    const k = eq < 0 ? o : o.slice(0, eq);
    const v = eq < 0 ? '' : o.slice(eq + 1);
    if (k === 'strip') stripPrefix = v;
    else if (k === 'proto') {
      if (v === 'tcp') return { error: `${origin}: TCP routes (proto=tcp) are configured with tcp: in the config file` };
      protocol = parseUpstreamProtocol(v);
      if (protocol === undefined || v !== v.toLowerCase() || v === 'http2') return { error: `${origin}: unknown proto=${v} (one of ${UPSTREAM_PROTOCOLS.join(', ')})` };
    } else if (k === 'tlsskipverify') {
      if (v !== 'true' && v !== 'false') return { error: `${origin}: tlsskipverify=${v} must be true or false` };
      tlsSkipVerify = v === 'true';
    } else if (k === 'balance') {
      if (!isStrategyName(v)) return { error: `${origin}: unknown balance=${v}` };
      balance = v;
    } else if (k === 'weight') {
      const w = Number(v);
      if (!(v !== '' && w > 0 && w <= 1)) return { error: `${origin}: weight=${v} must be a share between 0 (excluded) and 1, e.g. weight=0.1` };
      weight = w;
    } else if (k === 'slowstart') {
      try {
        slowStartMs = durationToMs(v);
      } catch {
        return { error: `${origin}: slowstart=${v} is not a duration (e.g. slowstart=30s)` };
      }
    } else if (k === 'opts' || k === 'redirect' || k === 'host') {
      // Fabio options that do not apply here; ignored rather than failing the route.
    } else return { error: `${origin}: unknown option ${JSON.stringify(k)}` };
  }
  if (stripPrefix !== undefined && !pathPrefix.startsWith(stripPrefix)) return { error: `${origin}: strip=${stripPrefix} is not a prefix of ${pathPrefix}` };
  return {
    // Fabio semantics: a tag route is served by the instances that carry that tag.
    origin, pathPrefix, headers: [], service, tags: [tag], balance,
    ...(host !== '' ? { host } : {}), ...(stripPrefix !== undefined ? { stripPrefix } : {}),
    ...(weight !== undefined ? { split: [{ service, tags: [tag], meta: [], weight: weight * 100 }] } : {}),
    ...(slowStartMs ? { slowStartMs } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
    ...(tlsSkipVerify ? { tlsSkipVerify } : {}),
  };
}
