/**
 * Encoded read results keyed by (request, version of what it reads). A change wakes every watcher
 * of a topic at once; they all re-run the same query against the same version, so one render (and
 * at most one gzip) serves them all instead of a thousand identical encodings, and the answer is
 * the same buffer written to every socket.
 */
import type { Reply } from './context.js';
import { encodeJson } from './encode.js';

/** Query parameters that do not change what a read returns. */
const IGNORED = new Set(['index', 'wait', 'token', 'stale', 'consistent', 'leader', 'cached', 'max_stale']);

export class ReadCache {
  readonly #entries = new Map<string, { version: number; reply: Reply & { index: number } }>();
  readonly #max: number;

  constructor(max = 4096) {
    this.#max = max;
  }

  /**
   * Two requests share an entry only if they ask the same thing. Names and values are decoded, so
   * they may hold '&', '=' or '?': joined as text, `?tag=v1%26x=1` (one tag "v1&x=1") keyed like
   * `?tag=v1&x=1` and cached an empty answer for the watchers of the other, until the next change.
   * The parameters go into JSON instead, which keeps every boundary; without any, the key is the path
   * (a path starts with '/', a key with parameters with '[').
   */
  static key(path: string, query: URLSearchParams): string {
    let pairs: [string, string][] | undefined;
    query.forEach((v, k) => {
      if (!IGNORED.has(k)) (pairs ??= []).push([k, v]);
    });
    if (pairs === undefined) return path;
    // Order does not change an answer (a repeated tag filters the same either way): sorted, so it is one entry.
    pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
    return JSON.stringify([path, pairs]);
  }

  /** Returns the cached reply for this version, or runs `run`, encodes its JSON once and caches it. */
  get(key: string, version: number, pretty: boolean, run: () => Reply & { index: number }): Reply & { index: number } {
    const hit = this.#entries.get(key);
    if (hit && hit.version === version) return hit.reply;
    const r = run();
    const reply: Reply & { index: number } = r.json === undefined
      ? { ...r, shared: {} }
      : { ...r, json: undefined, raw: Buffer.from(encodeJson(r.json, pretty)), headers: { ...r.headers, 'Content-Type': 'application/json' }, shared: {} };
    if (hit) this.#entries.delete(key);
    else if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, { version, reply });
    return reply;
  }
}
