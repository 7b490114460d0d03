/**
 * Route lookup that does not grow with the table: the host picks a path trie (exact host, then the
 * longest matching wildcard suffix, then any host) and the path walks it segment by segment. A
 * table of 60,000 tag routes costs a request a few map lookups, not a scan of 60,000 prefixes.
 *
 * Order is the snapshot's: exact host before wildcard (longer suffix first) before any host;
 * within a host, the deepest prefix first; within one prefix, the routes in the matcher's order
 * (buildSnapshot's: more header conditions first, config before tags).
 *
 * A matcher is a value: `with()` returns a new one that shares every trie node off the edited
 * paths (persistent maps), so a table swap for one changed route costs that route's path, not the
 * table, and a request holding the old matcher keeps seeing the old routes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Map as ImmutableMap } from 'immutable';

export interface Matchable {
  /** Normalised path prefix without a trailing slash ("/" for the root). */
  readonly prefix: string;
  readonly spec: { readonly host?: string | undefined; readonly headers: readonly (readonly [string, string])[] };
}

interface TrieNode<R> {
  readonly children: ImmutableMap<string, TrieNode<R>> | undefined;
  readonly routes: readonly R[] | undefined;
}

const segments = (prefix: string): string[] => (prefix === '/' ? [] : prefix.slice(1).split('/'));

/** `node` with `edit` applied to the routes at `segs[i..]`; undefined when nothing is left under it. */
function edited<R>(node: TrieNode<R> | undefined, segs: readonly string[], i: number, edit: (routes: readonly R[]) => readonly R[]): TrieNode<R> | undefined {
  let children = node?.children;
  let routes = node?.routes;
  if (i === segs.length) {
    const next = edit(routes ?? []);
    routes = next.length > 0 ? next : undefined;
  } else {
    const seg = segs[i] as string;
    const child = edited(children?.get(seg), segs, i + 1, edit);
    if (child === undefined) children = children?.delete(seg);
    else children = (children ?? ImmutableMap<string, TrieNode<R>>()).set(seg, child);
    if (children !== undefined && children.size === 0) children = undefined;
  }
  return children === undefined && routes === undefined ? undefined : { children, routes };
}

function matchTrie<R extends Matchable>(root: TrieNode<R> | undefined, path: string, headers: IncomingHttpHeaders): R | undefined {
  if (root === undefined) return undefined;
  // The nodes the path passes through, root first; the deepest one that has a fitting route wins.
  const passed: TrieNode<R>[] = [root];
  let node = root;
  let i = 1;
  while (node.children !== undefined && i <= path.length) {
    const j = path.indexOf('/', i);
    const next = node.children.get(j < 0 ? path.slice(i) : path.slice(i, j));
    if (next === undefined) break;
    passed.push(next);
    node = next;
    if (j < 0) break;
    i = j + 1;
  }
  for (let k = passed.length - 1; k >= 0; k--) {
    const routes = passed[k]!.routes;
    if (routes === undefined) continue;
    for (const r of routes) if (headersMatch(r, headers)) return r;
  }
  return undefined;
}

function headersMatch(r: Matchable, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of r.spec.headers) if (headers[name] !== value) return false;
  return true;
}

export class RouteMatcher<R extends Matchable> {
  /** Keyed by host; wildcard hosts by their suffix with its leading dot: "*.example.com" → ".example.com". */
  readonly #exact: ImmutableMap<string, TrieNode<R>>;
  readonly #wildcard: ImmutableMap<string, TrieNode<R>>;
  readonly #anyHost: TrieNode<R> | undefined;
  /** How routes that share a host and prefix are ordered; undefined: in the order they were added. */
  readonly #order: ((a: R, b: R) => number) | undefined;

  /** Adds `routes` in the order they should win among equals (most specific first), or sorted by `order`. */
  constructor(routes: readonly R[], order?: (a: R, b: R) => number, parts?: { exact: ImmutableMap<string, TrieNode<R>>; wildcard: ImmutableMap<string, TrieNode<R>>; anyHost: TrieNode<R> | undefined }) {
    this.#order = order;
    this.#exact = parts?.exact ?? ImmutableMap();
    this.#wildcard = parts?.wildcard ?? ImmutableMap();
    this.#anyHost = parts?.anyHost;
    if (routes.length > 0) {
      const built = this.with([], routes);
      this.#exact = built.#exact;
      this.#wildcard = built.#wildcard;
      this.#anyHost = built.#anyHost;
    }
  }

  /** A matcher without `remove` (by identity) and with `add`; this one is left as it was. */
  with(remove: Iterable<R>, add: Iterable<R>): RouteMatcher<R> {
    let exact = this.#exact;
    let wildcard = this.#wildcard;
    let anyHost = this.#anyHost;
    const order = this.#order;
    const apply = (r: R, edit: (routes: readonly R[]) => readonly R[]): void => {
      const h = r.spec.host;
      const segs = segments(r.prefix);
      if (h === undefined) anyHost = edited(anyHost, segs, 0, edit);
      else {
        const wild = h.startsWith('*.');
        const key = wild ? h.slice(1) : h;
        const m = wild ? wildcard : exact;
        const t = edited(m.get(key), segs, 0, edit);
        const next = t === undefined ? m.delete(key) : m.set(key, t);
        if (wild) wildcard = next;
        else exact = next;
      }
    };
    for (const r of remove) apply(r, (routes) => routes.filter((x) => x !== r));
    for (const r of add) apply(r, (routes) => (order === undefined ? [...routes, r] : [...routes, r].sort(order)));
    return new RouteMatcher<R>([], order, { exact, wildcard, anyHost });
  }

  /** `host`: normalised (lower case, no port, no trailing dot) or undefined; `path`: normalised. */
  match(host: string | undefined, path: string, headers: IncomingHttpHeaders): R | undefined {
    if (host) {
      const exact = this.#exact.get(host);
      if (exact !== undefined) {
        const r = matchTrie(exact, path, headers);
        if (r !== undefined) return r;
      }
      if (this.#wildcard.size > 0) {
        // Longest suffix first: for a.b.example.com try .b.example.com, then .example.com, then .com.
        for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
          const t = this.#wildcard.get(host.slice(dot));
          if (t === undefined || dot === 0) continue;
          const r = matchTrie(t, path, headers);
          if (r !== undefined) return r;
        }
      }
    }
    return matchTrie(this.#anyHost, path, headers);
  }
}
