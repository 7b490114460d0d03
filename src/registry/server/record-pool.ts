/**
 * Compact in-memory records for the catalog view: a parsed record shares what repeats across a
 * million instances (node and service names, tags and tag lists, meta maps, statuses, the empty
 * maps and default weights) instead of holding its own copy of each. Shared values are frozen, so
 * a reader that tried to change one would throw instead of changing every record that shares it.
 * The pool forgets everything when it grows past its bound: records keep what they share, later
 * ones share anew, and a catalog with ever-new values cannot grow it without limit.
 */
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from './model.js';
import { DEFAULT_WEIGHTS } from './stored.js';

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});
const NO_TAGS: readonly string[] = Object.freeze([]);

const isEmpty = (o: object): boolean => {
  for (const _ in o) return false;
  return true;
};

export class RecordPool {
  readonly #max: number;
  #strings = new Map<string, string>();
  #lists = new Map<string, readonly string[]>();
  #maps = new Map<string, Readonly<Record<string, unknown>>>();

  constructor(max = 200_000) {
    this.#max = max;
  }

  /** One shared copy of a string that recurs (names, tags, statuses). */
  str(s: string): string {
    if (s.length === 0) return '';
    const hit = this.#strings.get(s);
    if (hit !== undefined) return hit;
    this.#bound(this.#strings);
    this.#strings.set(s, s);
    return s;
  }

  list(xs: readonly string[]): readonly string[] {
    if (xs.length === 0) return NO_TAGS;
    // The key joins with NUL, which a tag may hold: ["a\0b"] and ["a", "b"] would share one list, and
    // whoever registered first would set the other's tags. Such a list is not shared.
    for (const x of xs) if (x.includes('\u0000')) return Object.freeze(xs.map((t) => this.str(t)));
    const key = xs.join('\u0000');
    const hit = this.#lists.get(key);
    if (hit !== undefined) return hit;
    const shared = Object.freeze(xs.map((x) => this.str(x)));
    this.#bound(this.#lists);
    this.#lists.set(key, shared);
    return shared;
  }

  /** A string map (Meta, TaggedAddresses) shared by content; maps of other values are shared only when empty. */
  map<T extends object>(o: T | null | undefined): T {
    if (o === null || o === undefined || isEmpty(o)) return EMPTY as T;
    let key = '';
    for (const [k, v] of Object.entries(o)) {
      // Not shared either: a NUL in a name or value would make the key ambiguous (see list).
      if (typeof v !== 'string' || k.includes('\u0000') || v.includes('\u0000')) return o;
      key += `${k}\u0000${v}\u0000`;
    }
    const hit = this.#maps.get(key);
    if (hit !== undefined) return hit as T;
    const shared: Record<string, string> = {};
    for (const [k, v] of Object.entries(o)) shared[this.str(k)] = this.str(v as string);
    Object.freeze(shared);
    this.#bound(this.#maps);
    this.#maps.set(key, shared);
    return shared as T;
  }

  node(r: NodeRecord): NodeRecord {
    return {
      ID: r.ID, Node: this.str(r.Node), Address: this.str(r.Address), Datacenter: this.str(r.Datacenter),
      TaggedAddresses: this.map(r.TaggedAddresses), Meta: this.map(r.Meta),
    };
  }

  /** `node` and `id` are the node's name and the instance's ID as the view already holds them (its map keys). */
  service(r: Partial<ServiceRecord>, node: string, id: string): ServiceRecord {
    // Stored without its default-valued fields (stored.ts): they are filled in here, shared.
    const w = r.Weights;
    return {
      Node: node, ID: r.ID === id || r.ID === undefined ? id : r.ID, Service: this.str(r.Service ?? ''), Tags: this.list(r.Tags ?? NO_TAGS) as string[], Address: r.Address ?? '',
      TaggedAddresses: this.map(r.TaggedAddresses), Meta: this.map(r.Meta), Port: r.Port ?? 0,
      Weights: w === undefined || (w.Passing === 1 && w.Warning === 1) ? DEFAULT_WEIGHTS : w, EnableTagOverride: r.EnableTagOverride ?? false,
      Kind: this.str(r.Kind ?? ''), Local: r.Local ?? false,
    };
  }

  /** `checkId` and `serviceId` as the view already holds them (its map key; the instance's ID when the service is known). */
  check(r: Partial<CheckRecord>, node: string, checkId: string, serviceId: string | undefined): CheckRecord {
    const sid = r.ServiceID ?? '';
    return {
      Node: node, CheckID: r.CheckID === checkId || r.CheckID === undefined ? checkId : r.CheckID, Name: this.str(r.Name ?? ''), Status: this.str(r.Status ?? 'critical') as CheckRecord['Status'], Notes: this.str(r.Notes ?? ''), Output: r.Output ?? '',
      ServiceID: serviceId !== undefined && serviceId === sid ? serviceId : sid, ServiceName: this.str(r.ServiceName ?? ''),
      ServiceTags: this.list(r.ServiceTags ?? NO_TAGS) as string[], Type: this.str(r.Type ?? '') as CheckRecord['Type'], Definition: this.map(r.Definition),
    };
  }

  kv(r: KvRecord): KvRecord {
    return r;
  }

  #bound(m: Map<string, unknown>): void {
    if (m.size >= this.#max) m.clear();
  }
}
