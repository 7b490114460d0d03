/**
 * A sorted view of a changing key set, kept lazily: inserts and deletes are O(1) and the order is
 * restored by one merge when a range is asked for. Keeping an array sorted on every insert costs a
 * memmove of the whole array, which dominated registration cost at tens of thousands of keys.
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

export class SortedKeys {
  #sorted: string[];
  #added: string[] = [];
  /**
   * Keys removed since the last merge: only these can be listed and gone (or gone and back). A
   * merge asks the authority about them alone, not about each of two million listed keys (about
   * half a second, on the event loop, at the first read after every deregistration).
   */
  #removed = new Set<string>();
  #dirty = false;
  /** The authority on which keys exist; deleted keys are dropped from #sorted at the next merge. */
  readonly #has: (key: string) => boolean;

  constructor(has: (key: string) => boolean, initial: string[] = []) {
    this.#has = has;
    this.#sorted = initial;
  }

  /** Call after a key that did not exist was added. */
  added(key: string): void {
    this.#added.push(key);
    this.#dirty = true;
  }

  /** Call after `key` was removed. */
  removed(key: string): void {
    this.#removed.add(key);
    this.#dirty = true;
  }

  /** The keys starting with `prefix`, sorted. */
  withPrefix(prefix: string): string[] {
    const keys = this.#ordered();
    const out: string[] = [];
    for (let i = lowerBound(keys, prefix); i < keys.length; i++) {
      const k = keys[i] as string;
      if (!k.startsWith(prefix)) break;
      out.push(k);
    }
    return out;
  }

  all(): readonly string[] {
    return this.#ordered();
  }

  #ordered(): string[] {
    if (!this.#dirty) return this.#sorted;
    const add = this.#added.sort();
    const old = this.#sorted;
    const removed = this.#removed;
    if ((add.length + removed.size) * 64 < old.length) return this.#settle(spliced(old, add, removed, this.#has));
    // Many changes: one merge of two sorted lists, dropping keys that no longer exist and
    // duplicates (deleted then re-added). A key never removed since the last merge still exists.
    const out: string[] = [];
    let i = 0;
    let j = 0;
    while (i < old.length || j < add.length) {
      let k: string;
      if (j >= add.length || (i < old.length && (old[i] as string) <= (add[j] as string))) k = old[i++] as string;
      else k = add[j++] as string;
      if (out[out.length - 1] !== k && (removed.size === 0 || !removed.has(k) || this.#has(k))) out.push(k);
    }
    return this.#settle(out);
  }

  #settle(sorted: string[]): string[] {
    this.#sorted = sorted;
    this.#added = [];
    this.#removed = new Set();
    this.#dirty = false;
    return sorted;
  }
}

const isAt = (keys: readonly string[], i: number, key: string): boolean => i < keys.length && keys[i] === key;

/**
 * Few changes among many keys: the listed keys that are gone are cut out and the new ones put in
 * by copying the runs of `old` between them, two array copies instead of two million string
 * compares (about 70 ms at 2 M keys, at every read after a change).
 */
function spliced(old: readonly string[], add: readonly string[], removed: ReadonlySet<string>, has: (key: string) => boolean): string[] {
  // [position in old, key to insert there, or undefined to drop the key at that position]
  const edits: [number, string | undefined][] = [];
  for (const k of removed) {
    const at = lowerBound(old, k);
    if (isAt(old, at, k) && !has(k)) edits.push([at, undefined]);
  }
  let prev: string | undefined;
  for (const k of add) {
    if (k === prev) continue; // added, removed and added again
    prev = k;
    const at = lowerBound(old, k);
    if (!isAt(old, at, k) && has(k)) edits.push([at, k]);
  }
  // At one position an insert (of a smaller key) comes before the drop of the listed key there.
  edits.sort((a, b) => a[0] - b[0] || (a[1] === undefined ? 1 : 0) - (b[1] === undefined ? 1 : 0));
  const parts: (readonly string[])[] = [];
  let from = 0;
  for (const [at, k] of edits) {
    parts.push(old.slice(from, at));
    from = at;
    if (k === undefined) from = at + 1;
    else parts.push([k]);
  }
  parts.push(old.slice(from));
  return ([] as string[]).concat(...parts);
}
