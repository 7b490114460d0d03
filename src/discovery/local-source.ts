/**
 * Follows the in-process catalog (inside `switchyard up`): no HTTP, no polling. Rebuilds the whole
 * ServiceSet when a change touches the catalog or a followed service, coalescing bursts.
 */
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { topics } from '../registry/server/catalog-reader.js';
import { healthEntries, serviceTagsIndex } from '../registry/server/queries.js';
import { instanceStatus, sameServiceSet } from './types.js';
import type { FollowPredicate, Instance, ServiceSet, Source, SourceStatus } from './types.js';

export class LocalSource implements Source {
  readonly #view: CatalogReader;
  readonly #follow: FollowPredicate;
  #unsubscribe: (() => void) | undefined;
  #scheduled = false;
  #last: ServiceSet | undefined;
  #followed = new Set<string>();

  constructor(view: CatalogReader, follow: FollowPredicate) {
    this.#view = view;
    this.#follow = follow;
  }

  status(): SourceStatus {
    return { connected: true, lastContact: Date.now() };
  }

  start(emit: (set: ServiceSet) => void): void {
    const build = (): void => {
      this.#scheduled = false;
      const set = this.#build();
      if (sameServiceSet(this.#last, set)) return;
      this.#last = set;
      emit(set);
    };
    this.#unsubscribe = this.#view.onChange((touched) => {
      if (this.#scheduled) return;
      let relevant = touched.has(topics.SERVICES);
      if (!relevant) for (const name of this.#followed) if (touched.has(topics.service(name))) relevant = true;
      if (!relevant) return;
      this.#scheduled = true;
      setImmediate(build);
    });
    build();
  }

  #build(): ServiceSet {
    const catalog = new Map(Object.entries(serviceTagsIndex(this.#view)));
    const instances = new Map<string, Instance[]>();
    const followed = new Set<string>();
    for (const [name, tags] of catalog) {
      if (!this.#follow(name, tags)) continue;
      followed.add(name);
      const list: Instance[] = [];
      for (const e of healthEntries(this.#view, name)) {
        const status = instanceStatus(e.checks.map((c) => c.rec));
        if (!status) continue;
        const s = e.service.rec;
        list.push({
          id: `${s.Node}/${s.ID}`, service: name, node: s.Node, address: s.Address || (e.node?.rec.Address ?? ''), port: s.Port,
          tags: s.Tags, meta: s.Meta, weights: { passing: s.Weights.Passing, warning: s.Weights.Warning }, status,
        });
      }
      instances.set(name, list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    }
    this.#followed = followed;
    return { catalog, instances };
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
  }
}
