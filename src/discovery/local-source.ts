/**
 * Follows the in-process catalog (inside `switchyard up`): no HTTP, no polling. A change brings up
 * to date the services whose topics it touched, and nothing else (the set is kept in persistent
 * maps and names those services), coalescing bursts; the set carries when the first change of the
 * burst was applied (change latency), read off the same clock.
 */
import { PersistentMap } from '../core/persistent-map.js';
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { topics } from '../registry/server/catalog-reader.js';
import { healthEntries } from '../registry/server/queries.js';
import { instanceStatus, sameInstances, sameStrings } from './types.js';
import type { ChangeStamp, FollowPredicate, Instance, ServiceSet, Source, SourceStatus } from './types.js';

/** The prefix of a service's topic: a change touches it for every service it affects (instances, checks, nodes). */
const SERVICE_TOPIC = topics.service('');

export class LocalSource implements Source {
  readonly #view: CatalogReader;
  readonly #follow: FollowPredicate;
  #unsubscribe: (() => void) | undefined;
  #scheduled = false;
  #emitted = false;
  #catalog = PersistentMap.empty<string, readonly string[]>();
  #instances = PersistentMap.empty<string, readonly Instance[]>();
  #critical = PersistentMap.empty<string, readonly string[]>();
  /** Services touched since the last build. */
  #touched = new Set<string>();
  /** When the first change since the last build was applied (the listener runs inside the apply). */
  #changedAt: number | undefined;
  #build: (() => void) | undefined;

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
      const names = this.#touched;
      this.#touched = new Set();
      const changed = this.#take(names);
      if (changed.size === 0 && this.#emitted) return;
      // The first set is the catalog as found, not a change.
      const change: ChangeStamp | undefined = this.#emitted && at !== undefined ? { committedAt: at, clock: 'registry' } : undefined;
      this.#emitted = true;
      emit({ catalog: this.#catalog, instances: this.#instances, critical: this.#critical, changed, ...(change ? { change } : {}) });
    };
    this.#build = build;
    this.#unsubscribe = this.#view.onChange((touched) => {
      let relevant = false;
      for (const t of touched) {
        if (!t.startsWith(SERVICE_TOPIC)) continue;
        this.#touched.add(t.slice(SERVICE_TOPIC.length));
        relevant = true;
      }
      if (!relevant || this.#scheduled) return;
      this.#changedAt = Date.now();
      this.#scheduled = true;
      setImmediate(build);
    });
    for (const name of this.#view.serviceNames()) this.#touched.add(name);
    build();
  }

  /**
   * The follow predicate changed (routes reloaded): every service is looked at again, and a set
   * with the services now followed (and without those no longer) is emitted before this resolves;
   * the catalog is in this process, so there is nothing to wait for.
   */
  refollow(): Promise<void> {
    for (const name of this.#view.serviceNames()) this.#touched.add(name);
    for (const name of this.#instances.keys()) this.#touched.add(name);
    this.#build?.();
    return Promise.resolve();
  }

  /** Brings the named services up to date; returns those whose catalog entry or instances changed. */
  #take(names: Iterable<string>): Set<string> {
    const changed = new Set<string>();
    for (const name of names) {
      const known = !this.#view.instances(name)[Symbol.iterator]().next().done;
      const tags = known ? this.#view.serviceTags(name) : undefined;
      if (!sameStrings(this.#catalog.get(name), tags)) {
        this.#catalog = tags === undefined ? this.#catalog.delete(name) : this.#catalog.set(name, tags);
        changed.add(name);
      }
      if (tags === undefined || !this.#follow(name, tags)) {
        if (this.#instances.has(name)) changed.add(name);
        this.#instances = this.#instances.delete(name);
        this.#critical = this.#critical.delete(name);
        continue;
      }
      const { list, out } = this.#read(name);
      if (!this.#instances.has(name) || !sameInstances(this.#instances.get(name), list)) {
        this.#instances = this.#instances.set(name, list);
        changed.add(name);
      }
      if (!sameStrings(this.#critical.get(name), out)) this.#critical = this.#critical.set(name, out);
    }
    return changed;
  }

  /** A followed service's healthy instances (sorted by id) and the ids its checks hold out. */
  #read(name: string): { list: Instance[]; out: string[] } {
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
    return { list: list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)), out: out.sort() };
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
  }
}
