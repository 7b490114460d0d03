/**
 * Route lookup that does not grow with the table: the host picks a path trie (exact host, then the
 * longest matching wildcard suffix, then any host) and the path walks it segment by segment. A
 * table of 60,000 tag routes costs a request a few map lookups, not a scan of 60,000 prefixes.
 *
 * Order is the snapshot's: exact host before wildcard (longer suffix first) before any host;
 * within a host, the deepest prefix first; within one prefix, routes in the order they were added
 * (buildSnapshot adds them most specific first: more header conditions, config before tags).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface Matchable {
  /** Normalised path prefix without a trailing slash ("/" for the root). */
  readonly prefix: string;
  readonly spec: { readonly host?: string | undefined; readonly headers: readonly (readonly [string, string])[] };
}

class TrieNode<R> {
  children: Map<string, TrieNode<R>> | undefined;
  routes: R[] | undefined;
}

class PathTrie<R extends Matchable> {
  readonly root = new TrieNode<R>();

  add(r: R): void {
    let node = this.root;
    if (r.prefix !== '/') {
      for (const seg of r.prefix.slice(1).split('/')) {
        node.children ??= new Map();
        let next = node.children.get(seg);
        if (next === undefined) node.children.set(seg, (next = new TrieNode<R>()));
        node = next;
      }
    }
    (node.routes ??= []).push(r);
  }

  match(path: string, headers: IncomingHttpHeaders): R | undefined {
    // The nodes the path passes through, root first; the deepest one that has a fitting route wins.
    const passed: TrieNode<R>[] = [this.root];
    let node = this.root;
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
}

function headersMatch(r: Matchable, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of r.spec.headers) if (headers[name] !== value) return false;
  return true;
}

export class RouteMatcher<R extends Matchable> {
  readonly #exact = new Map<string, PathTrie<R>>();
  /** Keyed by the suffix with its leading dot: "*.example.com" → ".example.com". */
  readonly #wildcard = new Map<string, PathTrie<R>>();
  readonly #anyHost = new PathTrie<R>();

  /** Adds routes in the order they should win among equals (most specific first). */
  constructor(routes: readonly R[]) {
    for (const r of routes) {
      const h = r.spec.host;
      if (h === undefined) this.#anyHost.add(r);
      else if (h.startsWith('*.')) this.#trie(this.#wildcard, h.slice(1)).add(r);
      else this.#trie(this.#exact, h).add(r);
    }
  }

  #trie(m: Map<string, PathTrie<R>>, key: string): PathTrie<R> {
    let t = m.get(key);
    if (t === undefined) m.set(key, (t = new PathTrie<R>()));
    return t;
  }

  /** `host`: normalised (lower case, no port, no trailing dot) or undefined; `path`: normalised. */
  match(host: string | undefined, path: string, headers: IncomingHttpHeaders): R | undefined {
    if (host) {
      const exact = this.#exact.get(host);
      if (exact !== undefined) {
        const r = exact.match(path, headers);
        if (r !== undefined) return r;
      }
      if (this.#wildcard.size > 0) {
        // Longest suffix first: for a.b.example.com try .b.example.com, then .example.com, then .com.
        for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
          const t = this.#wildcard.get(host.slice(dot));
          if (t === undefined || dot === 0) continue;
          const r = t.match(path, headers);
          if (r !== undefined) return r;
        }
      }
    }
    return this.#anyHost.match(path, headers);
  }
}
