/**
 * Follows a Consul-compatible HTTP API with blocking queries: /v1/catalog/services for the service
 * list and one /v1/health/service/:name watch per followed service. Emits the whole ServiceSet,
 * coalescing bursts; on errors it keeps the last set (fail static) and retries with backoff.
 */
import type { Logger } from 'pino';
import { RegistryClient, watch } from '../registry/api/client.js';
import type { WatchAnswer } from '../registry/api/client.js';
import type { ApiHealthEntry } from '../registry/api/types.js';
import { instanceStatus, sameServiceSet } from './types.js';
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

export class RemoteSource implements Source {
  readonly #client: RegistryClient;
  readonly #opts: RemoteSourceOptions;
  readonly #ac = new AbortController();
  readonly #watches = new Map<string, AbortController>();
  #catalog = new Map<string, readonly string[]>();
  readonly #instances = new Map<string, readonly Instance[]>();
  readonly #critical = new Map<string, readonly string[]>();
  readonly #changes = new ChangeClock();
  readonly #stale: StaleWatches;
  #saidArrival = false;
  /** Services whose first health answer has not arrived: the set is not emitted before they have data. */
  readonly #pending = new Set<string>();
  #catalogLoaded = false;
  #emit: ((s: ServiceSet) => void) | undefined;
  #last: ServiceSet | undefined;
  #scheduled = false;
  #status: SourceStatus = { connected: false, lastContact: 0 };

  constructor(opts: RemoteSourceOptions) {
    this.#opts = opts;
    this.#client = new RegistryClient({ address: opts.address, ...(opts.token ? { token: opts.token } : {}) });
    this.#stale = new StaleWatches({ waitMs: opts.waitMs ?? 60_000, marginMs: opts.staleMarginMs ?? 5000, logger: opts.logger });
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
      this.#catalog = new Map(Object.entries(v ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
      this.#catalogLoaded = true;
      this.#reconcile();
    }, this.#ac.signal, this.#watchOpts('catalog/services'));
  }

  #watchOpts(what: string): Parameters<typeof watch>[4] {
    return {
      waitMs: this.#opts.waitMs ?? 60_000,
      onAnswer: () => this.#stale.heard(what),
      onError: (err, attempt) => {
        this.#status = { ...this.#status, connected: false, lastError: (err as Error).message };
        if (attempt !== 1 && attempt % 10 !== 0) return;
        // Say what traffic gets: the last table this source emitted, or, before its first one, nothing from it.
        const msg = this.#last
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

  #reconcile(): void {
    const wanted = new Set<string>();
    for (const [name, tags] of this.#catalog) if (this.#opts.follow(name, tags)) wanted.add(name);
    for (const [name, ac] of this.#watches) {
      if (wanted.has(name)) continue;
      ac.abort();
      this.#watches.delete(name);
      this.#instances.delete(name);
      this.#critical.delete(name);
      this.#pending.delete(name);
      this.#stale.stopped(`health/service/${name}`);
      this.#changes.forget(`health/service/${name}`);
    }
    for (const name of wanted) {
      if (this.#watches.has(name)) continue;
      const ac = new AbortController();
      this.#ac.signal.addEventListener('abort', () => ac.abort(), { once: true });
      this.#watches.set(name, ac);
      this.#pending.add(name);
      this.#stale.started(`health/service/${name}`);
      void watch<ApiHealthEntry[]>(this.#client, `/v1/health/service/${encodeURIComponent(name)}`, (v, _i, _s, answer) => {
        this.#ok();
        this.#noteChange(`health/service/${name}`, answer);
        this.#instances.set(name, toInstances(name, v ?? []));
        this.#critical.set(name, criticalIds(v ?? []));
        this.#pending.delete(name);
        this.#schedule();
      }, ac.signal, this.#watchOpts(`health/service/${name}`));
    }
    this.#schedule();
  }

  /** Coalesces a burst of watch answers into one emission (latest state wins). */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#catalogLoaded || this.#pending.size > 0) return;
      const set: ServiceSet = { catalog: new Map(this.#catalog), instances: new Map([...this.#instances].sort(([a], [b]) => (a < b ? -1 : 1))) };
      if (sameServiceSet(this.#last, set)) {
        this.#changes.take(false);
        return;
      }
      const change = this.#changes.take(true);
      const full: ServiceSet = { ...set, critical: new Map(this.#critical), ...(change ? { change } : {}) };
      this.#last = full;
      this.#emit?.(full);
    });
  }

  async close(): Promise<void> {
    this.#stale.close();
    this.#ac.abort();
    await this.#client.close();
  }
}
