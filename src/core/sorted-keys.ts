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
  #dirty = false;
  /** A key was removed since the last merge: only then can a listed key be gone (or come back added). */
  #removed = false;
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

  /** Call after a key was removed. */
  removed(): void {
    this.#dirty = true;
    this.#removed = true;
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
    if (!this.#removed && add.length * 64 < old.length) return this.#settle(spliced(old, add));
    const out: string[] = [];
    let i = 0;
    let j = 0;
    if (!this.#removed) {
      // Only additions, of keys that did not exist: a plain merge. Asking the map about each of a
      // million keys was a tenth of an agent's restart after replaying a log of registrations.
      while (i < old.length || j < add.length) {
        if (j >= add.length || (i < old.length && (old[i] as string) < (add[j] as string))) out.push(old[i++] as string);
        else out.push(add[j++] as string);
      }
    } else {
      // Merge two sorted lists, dropping keys that no longer exist and duplicates (deleted then re-added).
      while (i < old.length || j < add.length) {
        let k: string;
        if (j >= add.length || (i < old.length && (old[i] as string) <= (add[j] as string))) k = old[i++] as string;
        else k = add[j++] as string;
        if (out[out.length - 1] !== k && this.#has(k)) out.push(k);
      }
    }
    return this.#settle(out);
  }

  #settle(sorted: string[]): string[] {
    this.#sorted = sorted;
    this.#added = [];
    this.#dirty = false;
    this.#removed = false;
    return sorted;
  }
}

/**
 * `add` (sorted, none of them in `old`) merged into `old` by copying the runs of `old` between
 * them: a few new keys among two million cost two array copies, not two million string compares
 * (about 70 ms, on the event loop, at every read after a registration of a new instance).
 */
function spliced(old: readonly string[], add: readonly string[]): string[] {
  const parts: (readonly string[])[] = [];
  let from = 0;
  for (const a of add) {
    const at = lowerBound(old, a, from);
    parts.push(old.slice(from, at), [a]);
    from = at;
  }
  parts.push(old.slice(from));
  return ([] as string[]).concat(...parts);
}
