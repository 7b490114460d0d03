/**
 * Follows the in-process catalog (inside `switchyard up`): no HTTP, no polling. Rebuilds the whole
 * ServiceSet when a change touches the catalog or a followed service, coalescing bursts; the set
 * carries when the first change of the burst was applied (change latency), read off the same clock.
 */
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { topics } from '../registry/server/catalog-reader.js';
import { healthEntries, serviceTagsIndex } from '../registry/server/queries.js';
import { instanceStatus, sameInstances, sameStrings } from './types.js';
import type { ChangeStamp, FollowPredicate, Instance, ServiceSet, Source, SourceStatus } from './types.js';

export class LocalSource implements Source {
  readonly #view: CatalogReader;
  readonly #follow: FollowPredicate;
  #unsubscribe: (() => void) | undefined;
  #scheduled = false;
  #last: ServiceSet | undefined;
  #followed = new Set<string>();
  /** When the first change since the last build was applied (the listener runs inside the apply). */
  #changedAt: number | undefined;

  constructor(view: CatalogReader, follow: FollowPredicate) {
    this.#view = view;
    this.#follow = follow;
  }

  status(): SourceStatus {
    return { connected: true, lastContact: Date.now(), stale: false, changeClock: 'registry' };
  }

  start(emit: (set: ServiceSet) => void): void {
    const build = (): void => {
      this.#scheduled = false;
      const at = this.#changedAt;
      this.#changedAt = undefined;
      const set = this.#build();
      const changed = changedServices(this.#last, set);
      if (changed !== undefined && changed.size === 0) return;
      // The first set is the catalog as found, not a change.
      const change: ChangeStamp | undefined = this.#last !== undefined && at !== undefined ? { committedAt: at, clock: 'registry' } : undefined;
      this.#last = set;
      emit({ ...set, ...(changed ? { changed } : {}), ...(change ? { change } : {}) });
    };
    this.#unsubscribe = this.#view.onChange((touched) => {
      if (this.#scheduled) return;
      let relevant = touched.has(topics.SERVICES);
      if (!relevant) for (const name of this.#followed) if (touched.has(topics.service(name))) relevant = true;
      if (!relevant) return;
      this.#changedAt = Date.now();
      this.#scheduled = true;
      setImmediate(build);
    });
    build();
  }

  #build(): ServiceSet {
    const catalog = new Map(Object.entries(serviceTagsIndex(this.#view)));
    const instances = new Map<string, Instance[]>();
    const critical = new Map<string, string[]>();
    const followed = new Set<string>();
    for (const [name, tags] of catalog) {
      if (!this.#follow(name, tags)) continue;
      followed.add(name);
      const list: Instance[] = [];
      const out: string[] = [];
      for (const e of healthEntries(this.#view, name)) {
        const status = instanceStatus(e.checks.map((c) => c.rec));
        const s = e.service.rec;
        if (!status) {
          out.push(`${s.Node}/${s.ID}`);
          continue;
        }
        list.push({
          id: `${s.Node}/${s.ID}`, service: name, node: s.Node, address: s.Address || (e.node?.rec.Address ?? ''), port: s.Port,
          tags: s.Tags, meta: s.Meta, weights: { passing: s.Weights.Passing, warning: s.Weights.Warning }, status,
        });
      }
      instances.set(name, list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
      critical.set(name, out.sort());
    }
    this.#followed = followed;
    return { catalog, instances, critical };
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
  }
}

/** The services whose catalog entry or instances differ between two sets; undefined when there is no previous set. */
function changedServices(prev: ServiceSet | undefined, next: ServiceSet): Set<string> | undefined {
  if (prev === undefined) return undefined;
  const out = new Set<string>();
  for (const [name, tags] of next.catalog) if (!sameStrings(prev.catalog.get(name), tags)) out.add(name);
  for (const name of prev.catalog.keys()) if (!next.catalog.has(name)) out.add(name);
  for (const [name, list] of next.instances) if (!prev.instances.has(name) || !sameInstances(prev.instances.get(name), list)) out.add(name);
  for (const name of prev.instances.keys()) if (!next.instances.has(name)) out.add(name);
  return out;
}
