/**
 * Follows a Consul-compatible HTTP API with blocking queries: /v1/catalog/services for the service
 * list and one /v1/health/service/:name watch per followed service. Emits the whole ServiceSet,
 * coalescing bursts; on errors it keeps the last set (fail static) and retries with backoff. An
 * answer is compared with what it replaces for its service only, and the set is kept in persistent
 * maps: emitting after a change to one service costs that service, not the catalog.
 */
import type { Logger } from 'pino';
import { RegistryClient, RegistryClientError, watch } from '../registry/api/client.js';
import type { WatchAnswer } from '../registry/api/client.js';
import type { ApiHealthEntry } from '../registry/api/types.js';
import { PersistentMap } from '../core/persistent-map.js';
import { instanceStatus, sameInstances, sameStrings } from './types.js';
import { ChangeClock } from './change-clock.js';
import { StaleWatches } from './stale-watches.js';
import type { FollowPredicate, Instance, ServiceSet, Source, SourceStatus } from './types.js';

export interface RemoteSourceOptions {
  address: string;
  token?: string;
  follow: FollowPredicate;
  logger: Logger;
  waitMs?: number;
  /** Silence beyond the wait (and its jitter) before a watch counts as stale (default 5 s). */
  staleMarginMs?: number;
}

/** Ids of the entries the registry lists but whose checks hold out of the table (critical, maintenance). */
export function criticalIds(entries: readonly ApiHealthEntry[]): string[] {
  return entries.filter((e) => instanceStatus(e.Checks ?? []) === undefined).map((e) => `${e.Node.Node}/${e.Service.ID}`).sort();
}

export function toInstances(service: string, entries: readonly ApiHealthEntry[]): Instance[] {
  const out: Instance[] = [];
  for (const e of entries) {
    const status = instanceStatus(e.Checks ?? []);
    if (!status) continue;
    const w = e.Service.Weights ?? { Passing: 1, Warning: 1 };
    out.push({
      id: `${e.Node.Node}/${e.Service.ID}`,
      service,
      node: e.Node.Node,
      address: e.Service.Address || e.Node.Address,
      port: e.Service.Port,
      tags: e.Service.Tags ?? [],
      meta: e.Service.Meta ?? {},
      weights: { passing: w.Passing, warning: w.Warning },
      status,
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * A blocking watch holds one connection for its whole wait, and a RegistryClient opens at most 64
 * to an agent: watches beyond that queued in the client, not at the agent, and a change to their
 * service waited for some other watch to return (seconds at 500 followed services, tens of seconds
 * at 5,000: bench/results/scale-lb.md). So the health watches are spread over clients of this many.
 */
const WATCHES_PER_CLIENT = 60;
/** Retry cap of a watch that has not had its first answer (then the usual 10 s). */
const FIRST_ANSWER_MAX_BACKOFF_MS = 1000;

export class RemoteSource implements Source {
  readonly #client: RegistryClient;
  /** The clients the health watches run on, with how many each carries. */
  readonly #pool: { readonly client: RegistryClient; watches: number }[] = [];
  readonly #watchClient = new Map<string, { readonly client: RegistryClient; watches: number }>();
  readonly #opts: RemoteSourceOptions;
  readonly #ac = new AbortController();
  readonly #watches = new Map<string, AbortController>();
  #catalog = PersistentMap.empty<string, readonly string[]>();
  #instances = PersistentMap.empty<string, readonly Instance[]>();
  #critical = PersistentMap.empty<string, readonly string[]>();
  /** Services whose catalog entry or instances changed since the last emitted set. */
  #dirty = new Set<string>();
  readonly #changes = new ChangeClock();
  readonly #stale: StaleWatches;
  #saidArrival = false;
  /** Services whose first health answer has not arrived: the set is not emitted before they have data. */
  readonly #pending = new Set<string>();
  #catalogLoaded = false;
  #emit: ((s: ServiceSet) => void) | undefined;
  /** refollow()s waiting for every followed service's first answer to have been emitted. */
  #settled: (() => void)[] = [];
  #emitted = false;
  #scheduled = false;
  #status: SourceStatus = { connected: false, lastContact: 0 };

  constructor(opts: RemoteSourceOptions) {
    this.#opts = opts;
    this.#client = this.#newClient();
    this.#stale = new StaleWatches({ waitMs: opts.waitMs ?? 60_000, marginMs: opts.staleMarginMs ?? 5000, logger: opts.logger });
  }

  #newClient(): RegistryClient {
    return new RegistryClient({ address: this.#opts.address, ...(this.#opts.token ? { token: this.#opts.token } : {}) });
  }

  status(): SourceStatus {
    const clock = this.#changes.clock;
    return {
      ...this.#status, stale: this.#stale.stale, staleWatches: this.#stale.staleWatches(), staleAfterMs: this.#stale.staleAfterMs,
      ...(clock ? { changeClock: clock } : {}),
    };
  }

  /** A changed answer: its commit time goes to the next set (change latency). */
  #noteChange(watch: string, a: WatchAnswer): void {
    this.#changes.note(watch, a.indexTime, a.receivedAt);
    if (a.indexTime === undefined && !this.#saidArrival) {
      this.#saidArrival = true;
      this.#opts.logger.info({ registry: this.#client.base }, 'the registry does not say when changes were committed (no X-Switchyard-Index-Time: not a Switchyard agent): change latency is measured from when its answers arrive');
    }
  }

  start(emit: (set: ServiceSet) => void): void {
    this.#emit = emit;
    this.#stale.started('catalog/services');
    void watch<Record<string, string[]>>(this.#client, '/v1/catalog/services', (v, _i, _s, answer) => {
      this.#ok();
      this.#noteChange('catalog/services', answer);
      this.#catalogLoaded = true;
      this.#reconcile(this.#takeCatalog(v ?? {}));
    }, this.#ac.signal, this.#watchOpts('catalog/services'));
  }

  #watchOpts(what: string, service?: string): Parameters<typeof watch>[4] {
    return {
      waitMs: this.#opts.waitMs ?? 60_000,
      // Until the registry first answers there is no table to serve: retry often (one read per watch).
      firstAnswerMaxBackoffMs: FIRST_ANSWER_MAX_BACKOFF_MS,
      onAnswer: () => this.#stale.heard(what),
      onError: (err, attempt) => {
        // An answer with an error status is a reachable registry refusing one watch, not a lost connection.
        const refused = err instanceof RegistryClientError && err.status !== undefined;
        this.#status = { ...this.#status, ...(refused ? {} : { connected: false }), lastError: (err as Error).message };
        if (service !== undefined && this.#pending.delete(service)) {
          // One service the registry cannot answer for (real Consul redirects a name such as "..") must not
          // hold back every other service's changes: the table goes on without it until it answers.
          this.#opts.logger.warn({ service, err: (err as Error).message }, 'no first answer for a followed service: the table goes on without its instances until the registry answers for it');
          this.#schedule();
          return;
        }
        if (attempt !== 1 && attempt % 10 !== 0) return;
        if (refused) {
          this.#opts.logger.warn({ what, attempt, err: (err as Error).message }, 'the registry refused a watch: retrying it with backoff');
          return;
        }
        // Say what traffic gets: the last table this source emitted, or, before its first one, nothing from it.
        const msg = this.#emitted
          ? 'registry unreachable: serving the last known table'
          : 'registry unreachable and no table from it yet: requests get 503 (unless a state file supplied a table) until it answers';
        this.#opts.logger.warn({ what, attempt, err: (err as Error).message }, msg);
      },
    };
  }

  #ok(): void {
    if (!this.#status.connected) this.#opts.logger.info({ registry: this.#client.base }, 'registry connected');
    this.#status = { connected: true, lastContact: Date.now() };
  }

  /** Takes in a catalog answer; returns the names whose entry changed (the whole answer is walked, but only to compare). */
  #takeCatalog(v: Record<string, string[]>): string[] {
    const changed: [string, readonly string[] | undefined][] = [];
    const names = Object.keys(v);
    let known = 0;
    for (const name of names) {
      const tags = v[name] ?? [];
      const had = this.#catalog.get(name);
      if (had !== undefined) known++;
      if (!sameStrings(had, tags)) changed.push([name, tags]);
    }
    // Only when some name is gone is the old catalog walked for it.
    if (known < this.#catalog.size) for (const name of this.#catalog.keys()) if (!Object.hasOwn(v, name)) changed.push([name, undefined]);
    this.#catalog = this.#catalog.update(changed);
    for (const [name] of changed) this.#dirty.add(name);
    return changed.map(([name]) => name);
  }

  refollow(): Promise<void> {
    if (this.#emit === undefined) return Promise.resolve();
    this.#reconcile([...this.#catalog.keys()]);
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  /** Starts and stops health watches for the services whose catalog entry changed. */
  #reconcile(names: readonly string[]): void {
    for (const name of names) {
      const tags = this.#catalog.get(name);
      const wanted = tags !== undefined && this.#opts.follow(name, tags);
      const ac = this.#watches.get(name);
      if (wanted && ac === undefined) this.#startWatch(name);
      else if (!wanted && ac !== undefined) {
        ac.abort();
        this.#watches.delete(name);
        const c = this.#watchClient.get(name);
        if (c) c.watches--;
        this.#watchClient.delete(name);
        this.#instances = this.#instances.delete(name);
        this.#critical = this.#critical.delete(name);
        this.#pending.delete(name);
        this.#stale.stopped(`health/service/${name}`);
        this.#changes.forget(`health/service/${name}`);
        this.#dirty.add(name);
      }
    }
    this.#schedule();
  }

  #startWatch(name: string): void {
    // Not linked to #ac by a listener (one per watch ever started, never removed while the source lives):
    // close() aborts the watches it holds.
    const ac = new AbortController();
    this.#watches.set(name, ac);
    this.#pending.add(name);
    this.#stale.started(`health/service/${name}`);
    let c = this.#pool.find((x) => x.watches < WATCHES_PER_CLIENT);
    if (c === undefined) this.#pool.push((c = { client: this.#newClient(), watches: 0 }));
    c.watches++;
    this.#watchClient.set(name, c);
    void watch<ApiHealthEntry[]>(c.client, `/v1/health/service/${encodeURIComponent(name)}`, (v, _i, _s, answer) => {
      this.#ok();
      this.#noteChange(`health/service/${name}`, answer);
      const list = toInstances(name, v ?? []);
      if (!this.#instances.has(name) || !sameInstances(this.#instances.get(name), list)) {
        this.#instances = this.#instances.set(name, list);
        this.#dirty.add(name);
      }
      const critical = criticalIds(v ?? []);
      if (!sameStrings(this.#critical.get(name), critical)) this.#critical = this.#critical.set(name, critical);
      this.#pending.delete(name);
      this.#schedule();
    }, ac.signal, this.#watchOpts(`health/service/${name}`, name));
  }

  /** Coalesces a burst of watch answers into one emission (latest state wins). */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#catalogLoaded || this.#pending.size > 0) return;
      const settled = this.#settled.splice(0);
      if (this.#dirty.size === 0 && this.#emitted) {
        this.#changes.take(false);
      } else {
        const change = this.#changes.take(true);
        const changed = this.#dirty;
        this.#dirty = new Set();
        this.#emitted = true;
        this.#emit?.({ catalog: this.#catalog, instances: this.#instances, critical: this.#critical, changed, ...(change ? { change } : {}) });
      }
      for (const r of settled) r();
    });
  }

  async close(): Promise<void> {
    for (const r of this.#settled.splice(0)) r();
    this.#stale.close();
    this.#ac.abort();
    for (const ac of this.#watches.values()) ac.abort();
    await Promise.all([this.#client.close(), ...this.#pool.map((c) => c.client.close())]);
  }
}
