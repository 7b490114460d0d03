/**
 * The store's own health check: `switchyard:store` on this agent's `consul` service, passing while
 * the write-ahead log takes writes and critical while it does not (full disk, I/O errors).
 */
import type { Logger } from 'pino';
import type { Store, StoreEntry } from '../store/types.js';
import type { CatalogView } from './catalog-view.js';
import { keys } from './model.js';
import { encodeCheck } from './stored.js';
import type { CheckRecord } from './model.js';
import type { LocalNode } from './registry.js';

export const STORE_CHECK_ID = 'switchyard:store';
/** The check hangs on the `consul` service (this agent as a server), not on the node: a registry that cannot write is not a reason to take every other service on the machine out of DNS and the balancer. */
export const STORE_CHECK_SERVICE = 'consul';

/** What the check follows: a store that can say whether it takes writes (the embedded store does). */
export interface WritableStore extends Store {
  writable(): boolean;
  onWritability(listener: (writable: boolean, reason: string | undefined) => void): () => void;
}

const PASSING_OUTPUT = 'Write-ahead log writable';

export class StoreHealthCheck {
  readonly #store: WritableStore;
  readonly #view: CatalogView;
  readonly #node: LocalNode;
  readonly #log: Logger;
  #unsubscribe: (() => void) | undefined;
  #since = 0;

  constructor(opts: { store: WritableStore; view: CatalogView; node: LocalNode; logger: Logger }) {
    this.#store = opts.store;
    this.#view = opts.view;
    this.#node = opts.node;
    this.#log = opts.logger;
  }

  get #key(): string {
    return keys.check(this.#node.name, STORE_CHECK_ID);
  }

  /** Records the check (passing) if it is not there yet, then follows the store's writability. */
  async start(): Promise<void> {
    const rec = this.#record('passing', PASSING_OUTPUT);
    const value = encodeCheck(rec, this.#key);
    if (this.#store.get(this.#key)?.value !== value) {
      const r = await this.#store.txn({ success: [{ type: 'put', key: this.#key, value }] });
      await this.#view.waitForRevision(r.revision);
    }
    this.#unsubscribe = this.#store.onWritability((writable, reason) => this.#show(writable, reason));
    if (!this.#store.writable()) this.#show(false, 'the write-ahead log cannot be written');
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /**
   * The critical status cannot be written to the store (that is the problem it reports), so it is
   * shown in the view only; once the store writes again the stored (passing) record is shown again.
   */
  #show(writable: boolean, reason: string | undefined): void {
    const stored = this.#store.get(this.#key);
    if (writable) {
      if (stored) this.#view.applyTransient([{ type: 'put', key: this.#key, entry: stored, prev: stored }]);
      return;
    }
    this.#since = Date.now();
    const output = `The write-ahead log cannot be written since ${new Date(this.#since).toISOString()}` +
      `${reason ? ` (${reason})` : ''}: writes answer 503 until it can; reads go on`;
    const entry: StoreEntry = {
      key: this.#key,
      value: encodeCheck(this.#record('critical', output), this.#key),
      createRevision: stored?.createRevision ?? this.#view.revision,
      modRevision: stored?.modRevision ?? this.#view.revision,
      version: stored?.version ?? 1,
    };
    this.#view.applyTransient([{ type: 'put', key: this.#key, entry, ...(stored ? { prev: stored } : {}) }]);
    this.#log.debug({ check: STORE_CHECK_ID }, 'store health check critical');
  }

  #record(status: 'passing' | 'critical', output: string): CheckRecord {
    return {
      Node: this.#node.name, CheckID: STORE_CHECK_ID, Name: 'Switchyard store writable', Status: status, Notes: '',
      Output: output, ServiceID: STORE_CHECK_SERVICE, ServiceName: STORE_CHECK_SERVICE, ServiceTags: [], Type: '', Definition: {},
    };
  }
}
