/** PersistentMap: an immutable ReadonlyMap whose updates return a new map sharing all but the touched path. */
import { Map as ImmutableMap } from 'immutable';

/**
 * A read-only Map value (Immutable.js's hash array mapped trie underneath): `set` and `delete`
 * return a new map in O(log n) and leave this one as it was, so a table or a ServiceSet can be
 * handed on after every change without copying it. Iteration is in ascending key order (the
 * order sources always emitted), sorted once per map value on the first full walk.
 */
export class PersistentMap<K extends string, V> implements ReadonlyMap<K, V> {
  readonly #m: ImmutableMap<K, V>;
  #sorted: K[] | undefined;

  private constructor(m: ImmutableMap<K, V>) {
    this.#m = m;
  }

  static empty<K extends string, V>(): PersistentMap<K, V> {
    return new PersistentMap(ImmutableMap<K, V>());
  }

  /** The same entries as `m`; a PersistentMap is returned as it is (O(1)), anything else copied once. */
  static of<K extends string, V>(m: ReadonlyMap<K, V> | Iterable<readonly [K, V]>): PersistentMap<K, V> {
    if (m instanceof PersistentMap) return m as PersistentMap<K, V>;
    return new PersistentMap(ImmutableMap<K, V>().withMutations((w) => {
      for (const [k, v] of m) w.set(k, v);
    }));
  }

  get size(): number {
    return this.#m.size;
  }

  get(key: K): V | undefined {
    return this.#m.get(key);
  }

  has(key: K): boolean {
    return this.#m.has(key);
  }

  set(key: K, value: V): PersistentMap<K, V> {
    const next = this.#m.set(key, value);
    return next === this.#m ? this : new PersistentMap(next);
  }

  delete(key: K): PersistentMap<K, V> {
    const next = this.#m.delete(key);
    return next === this.#m ? this : new PersistentMap(next);
  }

  /** Several updates at once (`undefined` deletes): one new map. */
  update(changes: Iterable<readonly [K, V | undefined]>): PersistentMap<K, V> {
    const next = this.#m.withMutations((w) => {
      for (const [k, v] of changes) {
        if (v === undefined) w.delete(k);
        else w.set(k, v);
      }
    });
    return next === this.#m ? this : new PersistentMap(next);
  }

  #keys(): K[] {
    this.#sorted ??= [...this.#m.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return this.#sorted;
  }

  *keys(): MapIterator<K> {
    yield* this.#keys();
  }

  *values(): MapIterator<V> {
    for (const k of this.#keys()) yield this.#m.get(k) as V;
  }

  *entries(): MapIterator<[K, V]> {
    for (const k of this.#keys()) yield [k, this.#m.get(k) as V];
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const k of this.#keys()) fn.call(thisArg, this.#m.get(k) as V, k, this);
  }
}
