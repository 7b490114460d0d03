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

  static key(path: string, query: URLSearchParams): string {
    const parts: string[] = [];
    for (const [k, v] of query) if (!IGNORED.has(k)) parts.push(`${k}=${v}`);
    return `${path}?${parts.sort().join('&')}`;
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
