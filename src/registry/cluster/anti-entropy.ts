/**
 * Anti-entropy for an agent on a shared store, as a Consul agent does it: the agent remembers
 * the services and checks registered through its own API (in its data dir, so a restart keeps
 * them) and puts back any that went missing from the catalog — deleted through the catalog API
 * of another agent, or lost with the etcd data. It never removes anything and never overrides a
 * record that is present (check statuses belong to the check runner).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Store, StoreOp } from '../store/types.js';
import { NODE_CHECK_SERF, keys } from '../server/model.js';
import type { ServiceRecord } from '../server/model.js';

export interface AntiEntropyOptions {
  readonly store: Store;
  readonly node: string;
  readonly dataDir: string;
  readonly logger: Logger;
  /** How often the catalog is compared with what was registered here (default 30 s). */
  readonly intervalMs?: number;
}

const FILE = 'local-services.json';

export class AntiEntropy {
  readonly #o: AntiEntropyOptions;
  readonly #file: string;
  /** Store key → value of every service and check this agent registered. */
  #local = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #saveTimer: NodeJS.Timeout | undefined;
  #saving = false;
  #dirty = false;
  #closed = false;
  #lastSaveMs = 0;
  #inflight: Promise<void> = Promise.resolve();
  #syncing: Promise<void> | undefined;

  constructor(opts: AntiEntropyOptions) {
    this.#o = opts;
    this.#file = join(opts.dataDir, FILE);
  }

  /** Loads the journal; without one (first start in cluster mode) it adopts this node's local services in the store. */
  load(): void {
    try {
      const raw = JSON.parse(readFileSync(this.#file, 'utf8')) as { node?: string; entries?: Record<string, string> };
      if (raw.node === this.#o.node && raw.entries && typeof raw.entries === 'object') {
        this.#local = new Map(Object.entries(raw.entries).filter(([, v]) => typeof v === 'string'));
        return;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#o.logger.warn({ file: this.#file, err: (err as Error).message }, 'ignoring an unreadable anti-entropy journal');
    }
    const store = this.#o.store;
    for (const e of store.range(keys.servicePrefix(this.#o.node))) {
      try {
        if ((JSON.parse(e.value) as ServiceRecord).Local) this.#local.set(e.key, e.value);
      } catch {
        // not a service record: leave it
      }
    }
    for (const e of store.range(keys.checkPrefix(this.#o.node))) {
      if (e.key !== keys.check(this.#o.node, NODE_CHECK_SERF)) this.#local.set(e.key, e.value);
    }
    this.#save();
  }

  /** Records a committed change made through this agent's API. */
  record(ops: readonly StoreOp[]): void {
    const own = [keys.servicePrefix(this.#o.node), keys.checkPrefix(this.#o.node)];
    let changed = false;
    for (const op of ops) {
      if (op.type === 'deletePrefix') continue;
      if (!own.some((p) => op.key.startsWith(p))) continue;
      if (op.type === 'put') this.#local.set(op.key, op.value);
      else this.#local.delete(op.key);
      changed = true;
    }
    if (changed) this.#scheduleSave();
  }

  start(): void {
    this.#timer = setInterval(() => void this.sync(), this.#o.intervalMs ?? 30_000);
    this.#timer.unref();
  }

  /** Puts back every remembered record missing from the store (one transaction, create-only). */
  sync(): Promise<void> {
    this.#syncing ??= this.#syncOnce().finally(() => (this.#syncing = undefined));
    return this.#syncing;
  }

  async #syncOnce(): Promise<void> {
    const store = this.#o.store;
    const missing = [...this.#local].filter(([k]) => store.get(k) === undefined);
    if (missing.length === 0) return;
    try {
      const r = await store.txn({
        compare: missing.map(([key]) => ({ key, target: 'exists' as const, equals: false })),
        success: missing.map(([key, value]) => ({ type: 'put' as const, key, value })),
      });
      if (r.succeeded) this.#o.logger.warn({ restored: missing.map(([k]) => k) }, 'anti-entropy: put back services and checks missing from the catalog');
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'anti-entropy sync failed; the next round retries');
    }
  }

  /**
   * Saves are coalesced and written asynchronously, spaced by at least 20× the last save's cost:
   * the journal is rewritten whole, which for tens of thousands of local services takes tens of
   * milliseconds, and a registration burst must not spend the event loop on it.
   */
  #scheduleSave(): void {
    this.#dirty = true;
    if (this.#saveTimer || this.#saving) return;
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined;
      this.#inflight = this.#saveAsync();
    }, Math.max(100, 20 * this.#lastSaveMs));
  }

  async #saveAsync(): Promise<void> {
    this.#saving = true;
    this.#dirty = false;
    const started = performance.now();
    try {
      const tmp = `${this.#file}.tmp`;
      await writeFile(tmp, this.#serialize());
      await rename(tmp, this.#file);
    } catch (err) {
      this.#o.logger.warn({ file: this.#file, err: (err as Error).message }, 'could not save the anti-entropy journal');
    } finally {
      this.#lastSaveMs = performance.now() - started;
      this.#saving = false;
      if (this.#dirty && !this.#closed) this.#scheduleSave();
    }
  }

  #serialize(): string {
    return JSON.stringify({ node: this.#o.node, entries: Object.fromEntries(this.#local) });
  }

  /** Synchronous save, for load() and close(). */
  #save(): void {
    try {
      const tmp = `${this.#file}.tmp`;
      writeFileSync(tmp, this.#serialize());
      renameSync(tmp, this.#file);
      this.#dirty = false;
    } catch (err) {
      this.#o.logger.warn({ file: this.#file, err: (err as Error).message }, 'could not save the anti-entropy journal');
    }
  }

  /** Stops the timers and leaves the journal current on disk (after any save in flight). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#saveTimer) clearTimeout(this.#saveTimer);
    this.#saveTimer = undefined;
    await this.#inflight;
    if (this.#dirty) this.#save();
  }
}
