/** Which services a balancer follows: those its routes name (mirrors included), and every service with a urlprefix- tag. */
import type { RouteSpec } from '../config/route-spec.js';
import type { FollowPredicate } from './types.js';

export function followPredicate(routes: readonly RouteSpec[], extra: readonly string[] = []): FollowPredicate {
  const named = new Set([...routes.map((r) => r.service), ...routes.flatMap((r) => (r.mirror ? [r.mirror.service] : [])), ...extra]);
  return (name, tags) => named.has(name) || tags.some((t) => t.startsWith('urlprefix-'));
}

/** The services a balancer follows, replaced when its routes are reloaded; the source keeps asking `predicate`. */
export class FollowedServices {
  #current: FollowPredicate;

  constructor(routes: readonly RouteSpec[], extra: readonly string[] = []) {
    this.#current = followPredicate(routes, extra);
  }

  readonly predicate: FollowPredicate = (name, tags) => this.#current(name, tags);

  set(routes: readonly RouteSpec[], extra: readonly string[] = []): void {
    this.#current = followPredicate(routes, extra);
  }

  /** Follows what either set of routes names (while a reload waits for the new services' instances). */
  union(a: readonly RouteSpec[], b: readonly RouteSpec[], extra: readonly string[] = []): void {
    const first = followPredicate(a, extra);
    const second = followPredicate(b, extra);
    this.#current = (name, tags) => first(name, tags) || second(name, tags);
  }
}
