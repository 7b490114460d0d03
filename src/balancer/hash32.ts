/** The balancer's string hash, in a module of its own: the ring, sticky cookies and split draws use it. */

/** FNV-1a over UTF-16 code units, then murmur3's finalizer: FNV alone barely moves the high bits between keys like 10.0.0.1 and 10.0.0.2. */
export function hash32(s: string): number {
  return fmix32(fnv(s));
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a's state after `s` (UTF-16 code units). */
export function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}
