/**
 * A map from strings to values, split over a fixed number of Maps by a hash of the key, for maps that
 * reach millions of keys (the store's key space). A JS Map rehashes its whole table when it doubles:
 * at 1,048,576 keys one `set` took 147 ms here, an event-loop stall in the middle of a bulk load or of
 * a restart's background indexing. Split 64 ways, the largest rehash at two million keys moves about
 * 16,000 entries (a few milliseconds). The hash reads at most a dozen of a key's characters.
 */

const SHARD_BITS = 6;
const SHARDS = 1 << SHARD_BITS;

/** Code units hashed, from the end of the key, where keys of one kind differ (IDs, counters). */
const HASHED_TAIL = 12;

/**
 * FNV-1a over the length and the last HASHED_TAIL code units; the top bits pick the shard. Keys that
 * share their last code units and length share a shard: at worst the map behaves as one Map.
 */
function shardOf(key: string): number {
  let h = Math.imul(0x811c9dc5 ^ key.length, 0x01000193);
  for (let i = Math.max(0, key.length - HASHED_TAIL); i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> (32 - SHARD_BITS);
}

export class ShardedMap<V> {
  readonly #shards: Map<string, V>[] = Array.from({ length: SHARDS }, () => new Map<string, V>());
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    return (this.#shards[shardOf(key)] as Map<string, V>).get(key);
  }

  has(key: string): boolean {
    return (this.#shards[shardOf(key)] as Map<string, V>).has(key);
  }

  set(key: string, value: V): this {
    const m = this.#shards[shardOf(key)] as Map<string, V>;
    const before = m.size;
    m.set(key, value);
    this.#size += m.size - before;
    return this;
  }

  delete(key: string): boolean {
    const gone = (this.#shards[shardOf(key)] as Map<string, V>).delete(key);
    if (gone) this.#size--;
    return gone;
  }

  /** Every entry, in no particular order (shard by shard); a callback, not an iterator, to keep two million calls cheap. */
  forEach(fn: (value: V, key: string) => void): void {
    for (const m of this.#shards) m.forEach(fn);
  }
}
