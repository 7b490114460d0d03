// A discovery source as the balancer keeps it, for the model tests: its latest set, and a table that takes from
// each set only the services it names in `changed` (as the incremental routing table does). A service a set
// leaves out of `changed` keeps its old entry there, so `kept()` differs from `plainSet(latest)`.
import type { Instance, ServiceSet, Source } from '../../src/discovery/types.js';

/**
 * A ServiceSet as data, maps as entries sorted by name. `sortTags`: catalog tags sorted (their order is first-seen
 * order, which two views built differently need not share). `critical`: with the held-out ids (a change to them
 * alone is not emitted: they matter only beside a change to the instances).
 */
export function plainSet(s: Pick<ServiceSet, 'catalog' | 'instances' | 'critical'>, o: { sortTags?: boolean; critical?: boolean } = {}): unknown {
  const sorted = <V>(m: ReadonlyMap<string, V> | undefined, f: (v: V) => unknown = (v) => v): unknown => [...(m ?? new Map<string, V>())].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, f(v)]);
  return {
    catalog: sorted(s.catalog, (t) => (o.sortTags ? [...t].sort() : t)),
    instances: sorted(s.instances),
    ...(o.critical ? { critical: sorted(s.critical) } : {}),
  };
}

export class Followed {
  /** Every set the source emitted, in order. */
  readonly sets: ServiceSet[] = [];
  readonly #instances = new Map<string, readonly Instance[]>();
  readonly #catalog = new Map<string, readonly string[]>();

  constructor(readonly source: Source) {
    source.start((set) => {
      const first = this.sets.length === 0;
      const names = first || set.changed === undefined ? new Set([...set.catalog.keys(), ...set.instances.keys(), ...this.#instances.keys(), ...this.#catalog.keys()]) : set.changed;
      for (const n of names) {
        const list = set.instances.get(n);
        if (list === undefined) this.#instances.delete(n);
        else this.#instances.set(n, list);
        const tags = set.catalog.get(n);
        if (tags === undefined) this.#catalog.delete(n);
        else this.#catalog.set(n, tags);
      }
      this.sets.push(set);
    });
  }

  get latest(): ServiceSet | undefined {
    return this.sets.at(-1);
  }

  /** The table kept from the `changed` lists, as plainSet() shows a set. */
  kept(): unknown {
    return plainSet({ catalog: this.#catalog, instances: this.#instances });
  }
}
