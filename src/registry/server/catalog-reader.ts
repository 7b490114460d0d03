/**
 * The registry's closed read side: what the HTTP routes, DNS and the in-process discovery source
 * may ask of the catalog (records, indexes, change notifications, parked waits), never the maps
 * behind them. CatalogView implements it; the write side (Registry, the store) feeds the view.
 */
import type { CheckRecord, KvRecord, NodeRecord, ServiceRecord } from './model.js';

/** A record with the indexes of its last write. Records are shared and frozen where shared: never mutate them. */
export interface Indexed<T> {
  readonly rec: T;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** What a blocking query waits on: catalog topics, or a KV key / prefix. */
export type WatchSpec = { readonly topics: readonly string[] } | { readonly kv: string; readonly prefix: boolean };

export const topics = {
  /** Any node record written (catalog/nodes). */
  NODES: 'nodes',
  /** Any service instance written: Consul's catalog/services index, which moves with every instance. */
  SERVICES: 'services',
  /**
   * The set of service names or the tag union of one of them changed: what name lookups (DNS) and
   * service lists that only show names and tags need to follow, without waking on every instance.
   */
  SERVICE_NAMES: 'service-names',
  CHECKS: 'checks',
  node: (n: string) => `node:${n}`,
  service: (name: string) => `svc:${name}`,
} as const;

/** Cancels a parked query (the client went away). EventEmitter-backed: far cheaper per request than AbortSignal. */
export interface Cancel {
  readonly cancelled: boolean;
  /** Registers `fn`; returns a function that unregisters it. */
  onCancel(fn: () => void): () => void;
}

/** `checks` lists the (node, check ID) pairs written or deleted by the change, for the check scheduler. */
export type ViewListener = (touched: ReadonlySet<string>, revision: number, checks: readonly CheckKey[]) => void;

export interface CheckKey {
  readonly node: string;
  readonly checkId: string;
}

export interface CatalogReader {
  /** The last store revision applied. */
  readonly revision: number;

  node(name: string): Indexed<NodeRecord> | undefined;
  /** Every node record, in no particular order. */
  nodes(): Iterable<Indexed<NodeRecord>>;

  /** Names of the services with at least one instance, sorted. */
  serviceNames(): readonly string[];
  /** Union of the tags of a service's instances (catalog/services), in the order they were first seen. */
  serviceTags(name: string): readonly string[];
  /** Instances of a service, in no particular order; empty for an unknown name. */
  instances(name: string): Iterable<Indexed<ServiceRecord>>;
  /** Service instances registered on a node, in no particular order. */
  nodeServices(node: string): Iterable<Indexed<ServiceRecord>>;
  findService(node: string, serviceId: string): Indexed<ServiceRecord> | undefined;
  /** Service instances in the catalog. */
  instanceCount(): number;

  /** Node-level checks of a node (serfHealth, maintenance, catalog node checks). */
  nodeChecks(node: string): Iterable<Indexed<CheckRecord>>;
  /** Checks of one service instance. */
  serviceChecks(node: string, serviceId: string): Iterable<Indexed<CheckRecord>>;
  /** Every check on a node, node-level and service-level. */
  checksOnNode(node: string): Iterable<Indexed<CheckRecord>>;
  /** Every check in the catalog, in no particular order. */
  allChecks(): Iterable<Indexed<CheckRecord>>;
  findCheck(node: string, checkId: string): Indexed<CheckRecord> | undefined;

  kvEntry(key: string): Indexed<KvRecord> | undefined;
  /** Sorted KV keys starting with prefix. */
  kvKeysUnder(prefix: string): string[];

  /** Index a blocking query on these topics reports: never 0, never below the revision the view opened at. */
  topicIndex(topicNames: readonly string[]): number;
  /**
   * When this view applied the change behind `topicIndex(topicNames)`, in Unix ms; undefined when
   * that index is the open revision (no change to these topics applied since this process started).
   */
  topicAppliedAt(topicNames: readonly string[]): number | undefined;
  kvIndex(key: string, prefix: boolean): number;
  /** Subscribes to every applied change with the set of topics it touched. Returns an unsubscribe function. */
  onChange(listener: ViewListener): () => void;
}

/**
 * How a wait ended: performance.now() when the change that ended it was applied (a blocking query's
 * wake latency counts from there), or false for its deadline or a cancel.
 */
export type WaitEnd = number | false;

/** What a blocking query needs beyond reading: parking on a spec, and what its answer may be cached under. */
export interface CatalogWatch {
  /** Parks until a change touches `spec` (→ when it was applied), the timeout passes or `cancel` fires (→ false). */
  wait(spec: WatchSpec, timeoutMs: number, cancel?: Cancel): Promise<WaitEnd>;
  /**
   * Moves whenever something a read on `spec` shows may have changed, transient changes included
   * (which leave indexes alone): one rendered answer per (request, version) can be shared by every
   * reader, and a change elsewhere in the catalog does not invalidate it.
   */
  version(spec: WatchSpec): number;
  /** Resolves once the view has applied `revision` (read-your-writes after a write through the store). */
  waitForRevision(revision: number): Promise<void>;
}
