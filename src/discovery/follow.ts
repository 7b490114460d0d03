/** Which services a balancer follows: those its routes name (mirrors included), and every service with a urlprefix- tag. */
import type { RouteSpec } from '../config/route-spec.js';
import type { FollowPredicate } from './types.js';

export function followPredicate(routes: readonly RouteSpec[], extra: readonly string[] = []): FollowPredicate {
  const named = new Set([...routes.map((r) => r.service), ...routes.flatMap((r) => (r.mirror ? [r.mirror.service] : [])), ...extra]);
  return (name, tags) => named.has(name) || tags.some((t) => t.startsWith('urlprefix-'));
}
