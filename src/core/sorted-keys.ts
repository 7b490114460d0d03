/**
 * A sorted set of keys that changes one key at a time and is read by prefix: the store's key index
 * (two million keys at a million instances), the KV keys and the service names of the catalog view.
 *
 * The keys live in sorted chunks of at most CHUNK_MAX keys. Adding or removing a key costs a binary
 * search and a copy within one chunk; a prefix read costs a binary search and the keys it returns.
 * One flat sorted array, kept lazily and merged on the next read, made that read cost two copies of
 * two million pointers after any change (about 30 ms), and after a removal a map lookup per listed
 * key (about a second, on the event loop, at the first read after every deregistration).
 *
 * `frozen()` gives the keys of this moment for a snapshot to read later, in pieces, while the set
 * goes on changing: chunks are shared with it and copied by the set before their first change after.
 */

/** Index of the first key >= `key` (UTF-16 code unit order, the order of `<`). */
export function lowerBound(keys: readonly string[], key: string, from = 0): number {
  let lo = from;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Keys per chunk at most; a full chunk splits in two. Small enough that a copy is cheap (~1 µs). */
const CHUNK_MAX = 512;

interface Chunk {
  /** Sorted, never empty. */
  keys: string[];
  /** The set's generation when this chunk was made: older chunks may be shared with a frozen view. */
  gen: number;
}

/** The keys of one moment, read by position. */
export interface FrozenKeys {
  readonly length: number;
  slice(start: number, end: number): string[];
}

export class SortedKeys {
  #chunks: Chunk[] = [];
  #size = 0;
  /** Bumped by `frozen()`: chunks of an older generation are shared and copied before a change. */
  #gen = 0;
  /** The flat list `all()` returns, until the next change. */
  #flat: string[] | undefined;
  readonly #chunkMax: number;

  /** `initial`: sorted, without duplicates (a snapshot's keys, in its order). `chunkMax`: tests use tiny chunks. */
  constructor(initial: readonly string[] = [], chunkMax = CHUNK_MAX) {
    this.#chunkMax = Math.max(2, chunkMax);
    const fill = Math.max(1, this.#chunkMax >>> 1);
    for (let i = 0; i < initial.length; i += fill) {
      this.#chunks.push({ keys: initial.slice(i, i + fill), gen: this.#gen });
    }
    this.#size = initial.length;
  }

  get size(): number {
    return this.#size;
  }

  /** Call after a key that did not exist was added. */
  added(key: string): void {
    this.#flat = undefined;
    this.#size++;
    if (this.#chunks.length === 0) {
      this.#chunks.push({ keys: [key], gen: this.#gen });
      return;
    }
    // The first chunk whose last key is >= key; past the end, the last chunk takes it.
    const ci = Math.min(this.#chunkAt(key), this.#chunks.length - 1);
    const c = this.#own(ci);
    c.keys.splice(lowerBound(c.keys, key), 0, key);
    if (c.keys.length > this.#chunkMax) {
      const half = c.keys.length >>> 1;
      this.#chunks.splice(ci + 1, 0, { keys: c.keys.slice(half), gen: this.#gen });
      c.keys.length = half;
    }
  }

  /** Call after `key` was removed. */
  removed(key: string): void {
    const ci = this.#chunkAt(key);
    const c = this.#chunks[ci];
    if (c === undefined) return;
    const at = lowerBound(c.keys, key);
    if (c.keys[at] !== key) return;
    this.#flat = undefined;
    this.#size--;
    if (c.keys.length === 1) {
      this.#chunks.splice(ci, 1);
      return;
    }
    this.#own(ci).keys.splice(at, 1);
  }

  /** The keys starting with `prefix`, sorted. */
  withPrefix(prefix: string): string[] {
    const out: string[] = [];
    for (let ci = this.#chunkAt(prefix); ci < this.#chunks.length; ci++) {
      const keys = (this.#chunks[ci] as Chunk).keys;
      for (let i = lowerBound(keys, prefix); i < keys.length; i++) {
        const k = keys[i] as string;
        if (!k.startsWith(prefix)) return out;
        out.push(k);
      }
    }
    return out;
  }

  /** Every key, sorted (one flat array, kept until the next change). */
  all(): readonly string[] {
    if (this.#flat === undefined) {
      const flat: string[] = [];
      for (const c of this.#chunks) for (const k of c.keys) flat.push(k);
      this.#flat = flat;
    }
    return this.#flat;
  }

  /** The keys as they are now, to read later while the set changes. Costs one pointer per chunk. */
  frozen(): FrozenKeys {
    const chunks = this.#chunks.map((c) => c.keys);
    this.#gen++;
    // starts[i]: position of chunks[i]'s first key.
    const starts: number[] = [];
    let n = 0;
    for (const keys of chunks) {
      starts.push(n);
      n += keys.length;
    }
    return {
      length: n,
      slice(start, end) {
        const out: string[] = [];
        const stop = Math.min(end, n);
        if (start >= stop) return out;
        // The chunk holding position `start`: the last one starting at or before it.
        let ci = 0;
        let hi = starts.length - 1;
        while (ci < hi) {
          const mid = (ci + hi + 1) >>> 1;
          if ((starts[mid] as number) <= start) ci = mid;
          else hi = mid - 1;
        }
        for (let pos = start; pos < stop; ci++) {
          const keys = chunks[ci] as string[];
          for (let i = pos - (starts[ci] as number); i < keys.length && pos < stop; i++, pos++) out.push(keys[i] as string);
        }
        return out;
      },
    };
  }

  /** Index of the first chunk whose last key is >= key (the chunk count when there is none). */
  #chunkAt(key: string): number {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const keys = (this.#chunks[mid] as Chunk).keys;
      if ((keys[keys.length - 1] as string) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The chunk at `ci`, copied first if a frozen view may share it. */
  #own(ci: number): Chunk {
    const c = this.#chunks[ci] as Chunk;
    if (c.gen === this.#gen) return c;
    const mine = { keys: c.keys.slice(), gen: this.#gen };
    this.#chunks[ci] = mine;
    return mine;
  }
}
