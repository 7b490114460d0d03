/** What the API's route handlers are wired with (built in cli/, passed down, no globals). */
import type { CatalogReader, CatalogWatch } from '../catalog-reader.js';
import type { Registry } from '../registry.js';
import type { Sessions } from '../sessions/manager.js';
import type { EventBuffer } from '../events.js';
import type { Store } from '../../store/types.js';
import type { Clock } from '../../../core/clock.js';
import type { BlockingOptions } from './blocking.js';
import type { ReadCache } from './read-cache.js';
import type { PreparedQueryView } from '../prepared/view.js';
import type { PreparedQueryWrites } from '../prepared/writes.js';

export interface ApiDeps {
  readonly registry: Registry;
  readonly view: CatalogReader & CatalogWatch;
  readonly sessions: Sessions;
  readonly events: EventBuffer;
  /** /v1/query: the prepared queries' read side and their writes. */
  readonly prepared: { readonly view: PreparedQueryView; readonly writes: PreparedQueryWrites };
  /** For /v1/txn, which plans over the raw store; the clock decides lock-delays. */
  readonly store: Store;
  /** Which store is under the registry: a snapshot restore is one transaction, which only the embedded store can take whole. */
  readonly storeKind: 'embedded' | 'etcd';
  readonly clock: Clock;
  /** Shortest session TTL accepted (Consul's session_ttl_min). */
  readonly sessionTtlMinNs: number;
  readonly blocking: BlockingOptions;
  /** Shares one encoding of a read among every request for it at the same revision. */
  readonly readCache: ReadCache;
  /** Told about every TTL update, so the check's expiry timer restarts even when the status did not change. */
  readonly onTtlUpdate: (checkId: string) => void;
  readonly version: string;
  readonly metricsText?: () => Promise<string>;
  /** /v1/agent/metrics in Consul's JSON shape. */
  readonly metricsJson?: () => Promise<unknown>;
}
