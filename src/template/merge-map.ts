/**
 * consul-template's mergeMap and mergeMapWithOverride: mergo.Map(&dst, src[, WithOverride]) on two
 * map[string]interface {}, as dario.cat/mergo v1.0.2 (what consul-template builds with) does it:
 *
 * - a key dst lacks, or holds an empty value for ("", 0, false, nil, an empty map or slice), takes
 *   src's value; with override every key does; a nil in src is written only with override;
 * - two maps under one key merge recursively, and the merge writes into dst's nested map itself;
 * - dst is changed in place and returned (Go maps are references: the template sees the change in
 *   the first argument too).
 */
import type { MapKey, Value } from './values.js';
import { GoMap, goMap, isTrue } from './values.js';

/** mergo's isEmptyValue (the interface dereferenced) is Go's template falsity: nil, "", 0, false, an empty map or slice. */
const isEmpty = (v: Value): boolean => !isTrue(v);

/**
 * deepMerge of two maps, `dst` written in place. mergo's slice branch decides on the outer maps'
 * emptiness, which for a key dst holds comes to the same rule as for any other value.
 */
function mergeInto(dst: GoMap, src: GoMap, overwrite: boolean, depth: number): void {
  if (depth > 1000) throw new Error('maps nested more than 1000 levels deep');
  const out = dst.entries as Map<MapKey, Value>;
  for (const [key, s] of src.entries) {
    const had = out.has(key);
    const d = out.get(key);
    if (s === undefined) {
      if (overwrite) out.set(key, undefined);
      continue;
    }
    if (s instanceof GoMap && d instanceof GoMap) {
      // Merged into the map dst holds (a nil one cannot be written: it is replaced below).
      if (!d.isNil) mergeInto(d, s, overwrite, depth + 1);
      if (!isEmpty(d)) continue;
    }
    if (overwrite || !had || isEmpty(d)) out.set(key, s);
  }
}

export function mergeMaps(dst: GoMap, src: GoMap, overwrite: boolean): GoMap {
  const target = dst.isNil && !src.isNil ? goMap(dst.type.name, dst.type.zero, []) : dst;
  if (src.isNil) return target;
  mergeInto(target, src, overwrite, 0);
  return target;
}
