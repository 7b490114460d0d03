/**
 * Encoded read results keyed by (request, view revision). A change wakes every watcher of a
 * topic at once; they all re-run the same query against the same revision, so one render serves
 * them all instead of a thousand identical JSON encodings.
 */
import type { Reply } from './context.js';
import { encodeJson } from './encode.js';

/** Query parameters that do not change what a read returns. */
const IGNORED = new Set(['index', 'wait', 'token', 'stale', 'consistent', 'leader', 'cached', 'max_stale']);

export class ReadCache {
  readonly #entries = new Map<string, { revision: number; reply: Reply & { index: number } }>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  static key(path: string, query: URLSearchParams): string {
    const parts: string[] = [];
    for (const [k, v] of query) if (!IGNORED.has(k)) parts.push(`${k}=${v}`);
    return `${path}?${parts.sort().join('&')}`;
  }

  /** Returns the cached reply for this revision, or runs `run`, encodes its JSON once and caches it. */
  get(key: string, revision: number, pretty: boolean, run: () => Reply & { index: number }): Reply & { index: number } {
    const hit = this.#entries.get(key);
    if (hit && hit.revision === revision) return hit.reply;
    const r = run();
    const reply: Reply & { index: number } = r.json === undefined
      ? r
      : { ...r, json: undefined, raw: Buffer.from(encodeJson(r.json, pretty)), headers: { ...r.headers, 'Content-Type': 'application/json' } };
    if (hit) this.#entries.delete(key);
    else if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, { revision, reply });
    return reply;
  }
}
