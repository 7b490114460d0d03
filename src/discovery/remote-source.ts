/**
 * Follows a Consul-compatible HTTP API with blocking queries: /v1/catalog/services for the service
 * list and one /v1/health/service/:name watch per followed service. Emits the whole ServiceSet,
 * coalescing bursts; on errors it keeps the last set (fail static) and retries with backoff.
 */
import type { Logger } from 'pino';
import { RegistryClient, watch } from '../registry/api/client.js';
import type { ApiHealthEntry } from '../registry/api/types.js';
import { instanceStatus, sameServiceSet } from './types.js';
import type { FollowPredicate, Instance, ServiceSet, Source, SourceStatus } from './types.js';

export interface RemoteSourceOptions {
  address: string;
  token?: string;
  follow: FollowPredicate;
  logger: Logger;
  waitMs?: number;
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
  }

  status(): SourceStatus {
    return this.#status;
  }

  start(emit: (set: ServiceSet) => void): void {
    this.#emit = emit;
    void watch<Record<string, string[]>>(this.#client, '/v1/catalog/services', (v) => {
      this.#ok();
      this.#catalog = new Map(Object.entries(v ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)));
      this.#catalogLoaded = true;
      this.#reconcile();
    }, this.#ac.signal, this.#watchOpts('catalog/services'));
  }

  #watchOpts(what: string): Parameters<typeof watch>[4] {
    return {
      waitMs: this.#opts.waitMs ?? 60_000,
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
      this.#pending.delete(name);
    }
    for (const name of wanted) {
      if (this.#watches.has(name)) continue;
      const ac = new AbortController();
      this.#ac.signal.addEventListener('abort', () => ac.abort(), { once: true });
      this.#watches.set(name, ac);
      this.#pending.add(name);
      void watch<ApiHealthEntry[]>(this.#client, `/v1/health/service/${encodeURIComponent(name)}`, (v) => {
        this.#ok();
        this.#instances.set(name, toInstances(name, v ?? []));
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
      if (sameServiceSet(this.#last, set)) return;
      this.#last = set;
      this.#emit?.(set);
    });
  }

  async close(): Promise<void> {
    this.#ac.abort();
    await this.#client.close();
  }
}
