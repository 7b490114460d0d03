/** Builds a running registry agent (store → view → registry → checks → HTTP API) from its config. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { LatencyHistogram } from '../../core/latency-histogram.js';
import type { LatencyChild } from '../../core/latency-histogram.js';
import type { AgentConfig } from '../../config/agent.js';
import { splitHostPort } from '../../config/fields.js';
import { loopbackHostGuard } from '../../core/host-guard.js';
import { monotonicClock, systemClock, systemRandom } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import { EmbeddedStore } from '../../registry/store/embedded.js';
import type { CommitTiming } from '../../registry/store/embedded.js';
import { DirLock } from '../../registry/store/dir-lock.js';
import { EtcdStore, parseEtcdUrl, readEtcdTls } from '../../registry/store/etcd.js';
import { ALIVE_PREFIX, Membership } from '../../registry/cluster/membership.js';
import { AntiEntropy } from '../../registry/cluster/anti-entropy.js';
import type { Store, StoreOp } from '../../registry/store/types.js';
import { CatalogView } from '../../registry/server/catalog-view.js';
import { Registry } from '../../registry/server/registry.js';
import { CheckScheduler } from '../../registry/server/checks/scheduler.js';
import { StoreHealthCheck } from '../../registry/server/store-health.js';
import { createApiServer } from '../../registry/server/http/server.js';
import { DEFAULT_BLOCKING } from '../../registry/server/http/blocking.js';
import type { ApiDeps } from '../../registry/server/http/deps.js';
import { ReadCache } from '../../registry/server/http/read-cache.js';
import { agentRoutes } from '../../registry/server/http/routes/agent.js';
import { catalogRoutes } from '../../registry/server/http/routes/catalog.js';
import { kvRoutes } from '../../registry/server/http/routes/kv.js';
import { statusRoutes } from '../../registry/server/http/routes/status.js';
import { sessionRoutes } from '../../registry/server/http/routes/session.js';
import { txnRoutes } from '../../registry/server/http/routes/txn.js';
import { snapshotRoutes } from '../../registry/server/http/routes/snapshot.js';
import { eventRoutes } from '../../registry/server/http/routes/event.js';
import { queryRoutes } from '../../registry/server/http/routes/query.js';
import { PreparedQueryView } from '../../registry/server/prepared/view.js';
import { PreparedQueryWrites } from '../../registry/server/prepared/writes.js';
import { preparedLookup } from '../../registry/server/prepared/execute.js';
import type { PreparedLookup } from '../../registry/server/prepared/execute.js';
import { unknownRoutes } from '../../registry/server/http/routes/unknown.js';
import { EventBuffer } from '../../registry/server/events.js';
import { ConsulMetrics } from '../../registry/server/http/consul-metrics.js';
import { SessionView } from '../../registry/server/sessions/view.js';
import { Sessions } from '../../registry/server/sessions/manager.js';
import { createUiHandler } from '../../ui/handler.js';
import type { LiveLb, LiveSource } from '../../ui/lb-live.js';
import { listen } from './listen.js';
import { startDns } from './dns.js';
import type { RunningDns } from './dns.js';
import { VERSION } from './version.js';
import { applyHeapGrowth } from './heap-growth.js';
import { RuntimeStats } from '../../core/runtime-stats.js';

export interface RunningAgent {
  readonly address: { host: string; port: number };
  readonly url: string;
  readonly registry: Registry;
  readonly view: CatalogView;
  readonly sessions: Sessions;
  readonly metrics: PromRegistry;
  /** The DNS interface when --dns-addr is set. */
  readonly dns: RunningDns | undefined;
  /** Runs a prepared query by ID or name (the DNS interface's `<query>.query.consul`). */
  readonly preparedQuery: PreparedLookup;
  /** Serves another component's metrics on this agent's /metrics too (used by `up`). */
  addMetrics(registry: PromRegistry): void;
  /** Shows this balancer live in the web UI (used by `up`; without one the UI says there is none). */
  attachLb(lb: LiveLb, source?: LiveSource): void;
  close(): Promise<void>;
}

function nodeId(dataDir: string): string {
  const f = join(dataDir, 'node-id');
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    const id = randomUUID();
    writeFileSync(f, `${id}\n`);
    return id;
  }
}

/**
 * The API's accept queue. Watchers reconnect together (a fleet of consul-template or balancers after
 * an agent restart or a network blip): with Node's 511, a storm of 15,000 blocking queries overflowed
 * it 16,000 times on this machine, and each dropped SYN costs the client a one-second retransmit.
 */
const API_BACKLOG = 4096;

/** The embedded store's write timings as histograms: what a writer waits for inside the store. */
function commitObserver(metrics: PromRegistry): (timing: CommitTiming) => void {
  const buckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 5];
  const disk = new Histogram({ name: 'switchyard_store_commit_seconds', help: 'Embedded store: disk time of each group commit (WAL append, and fdatasync with --sync always)', buckets, registers: [metrics] });
  const txn = new Histogram({ name: 'switchyard_store_txn_seconds', help: 'Embedded store: each write from submitted to acknowledged (its wait for the group commit ahead of it, the disk, and applying it)', buckets, registers: [metrics] });
  return (t) => {
    if (t.diskSeconds !== undefined) disk.observe(t.diskSeconds);
    for (const s of t.txnSeconds) txn.observe(s);
  };
}

/** `clock` drives session TTLs and lock-delays (tests move it by hand). */
export async function startAgent(cfg: AgentConfig, logger: Logger, opts: { store?: Store; clock?: Clock; lbStarting?: boolean } = {}): Promise<RunningAgent> {
  mkdirSync(cfg.dataDir, { recursive: true });
  const etcd = opts.store === undefined && cfg.store !== 'embedded'
    ? new EtcdStore({
      ...parseEtcdUrl(cfg.store), logger: logger.child({ part: 'etcd' }), requestTimeoutMs: cfg.storeTimeoutMs,
      ...(cfg.etcdTls ? { tls: readEtcdTls(cfg.etcdTls) } : {}),
    })
    : undefined;
  const metrics = new PromRegistry();
  const store = opts.store ?? etcd ?? new EmbeddedStore({ dir: cfg.dataDir, logger, sync: cfg.sync, onCommit: commitObserver(metrics) });
  // The data dir holds this agent's node ID (and in cluster mode its anti-entropy journal): two agents
  // on one dir would be one node twice. The embedded store locks it itself; any other store, here.
  const dirLock = store instanceof EmbeddedStore ? undefined : new DirLock(cfg.dataDir, logger);
  await dirLock?.acquire().catch(async (err: unknown) => {
    await store.close().catch(() => undefined);
    throw err;
  });
  const opened = await store.open().catch(async (err: unknown) => {
    await store.close().catch(() => undefined);
    await dirLock?.release();
    throw err;
  });
  let closed = false;
  const view = new CatalogView(opened);
  // Only now: recovery only ever adds to what is live, and collecting it more often just slowed the
  // restart down (a million instances: 12 s with 40 %, 14.6 s with 30 %, 11.2 s with V8's own growth).
  applyHeapGrowth(cfg.heapGrowthPercent, logger);
  const sessionView = new SessionView(opened);
  const preparedView = new PreparedQueryView(opened);
  // User events travel through the store, so every agent on it sees them (Consul gossips them).
  const events = new EventBuffer({
    node: cfg.node, initial: opened.entries,
    localServices: () => [...view.nodeServices(cfg.node)].map((s) => s.rec).filter((s) => s.Local),
    commit: async (req) => view.waitForRevision((await store.txn(req)).revision),
    onUnreadable: (reason) => logger.warn({ reason }, 'skipped a stored user event this agent cannot read'),
  });
  const unsubscribers = [store.subscribe((c) => view.apply(c)), store.subscribe((c) => sessionView.apply(c)), store.subscribe((c) => preparedView.apply(c)), store.subscribe((c) => events.apply(c))];
  const unsubscribe = (): void => {
    for (const u of unsubscribers) u();
  };
  logger.info({ revision: opened.revision, entries: opened.entries.length, store: etcd ? cfg.store : 'embedded', dataDir: cfg.dataDir }, 'store opened');

  const listenAt = splitHostPort(cfg.httpAddr);
  const advertise = cfg.advertiseAddr ?? (listenAt.host === '0.0.0.0' || listenAt.host === '::' || listenAt.host === 'localhost' ? '127.0.0.1' : listenAt.host);
  const antiEntropy = etcd ? new AntiEntropy({ store: etcd, node: cfg.node, dataDir: cfg.dataDir, logger: logger.child({ part: 'anti-entropy' }) }) : undefined;
  antiEntropy?.load();
  const registry = new Registry({
    store, view, node: { name: cfg.node, id: nodeId(cfg.dataDir), address: advertise, datacenter: cfg.datacenter },
    ...(antiEntropy ? { onLocalCommit: (ops: readonly StoreOp[]) => antiEntropy.record(ops) } : {}),
    scriptChecks: cfg.enableScriptChecks,
  });
  if (cfg.enableScriptChecks) {
    // Consul's own warning, for the same reason: a registration is then a command run on this host.
    const open = cfg.aclToken === undefined;
    logger[open ? 'warn' : 'info']({ httpAddr: cfg.httpAddr, acl: !open }, open
      ? 'script checks are enabled and the API takes no token: anyone who can reach it can run commands on this host (and in its containers) as this user'
      : 'script checks are enabled: a registration with the token can run commands on this host (and in its containers)');
  }
  // In cluster mode the node's health follows an etcd lease (Membership asserts the node itself).
  const membership = etcd
    ? new Membership({ store: etcd, registry, logger: logger.child({ part: 'membership' }), ttlSeconds: cfg.leaseTtlSeconds, onAnnounced: () => void antiEntropy?.sync(), startBudgetMs: Math.max(30_000, 3 * cfg.storeTimeoutMs), advertiseUrl: `http://${advertise.includes(':') ? `[${advertise}]` : advertise}:${listenAt.port}` })
    : undefined;
  // Cluster mode: an agent leaves another node's invalidations to that node's agent for a second.
  const clock = opts.clock ?? systemClock;
  const sessions = new Sessions({
    store, view: sessionView, node: cfg.node, clock, logger: logger.child({ part: 'sessions' }), preparedQueries: preparedView,
    freshTtlsOnStart: !etcd, graceMs: etcd ? 1000 : 0,
  });
  // Embedded mode: a check on this agent's `consul` service that goes critical while the WAL cannot be written.
  const storeHealth = store instanceof EmbeddedStore ? new StoreHealthCheck({ store, view, node: registry.node, logger }) : undefined;
  try {
    if (membership) await membership.start();
    else await registry.ensureLocalNode();
    await storeHealth?.start();
    antiEntropy?.start();
    sessions.start();
  } catch (err) {
    sessions.close();
    storeHealth?.close();
    await membership?.close();
    await antiEntropy?.close();
    unsubscribe();
    await store.close();
    await dirLock?.release();
    throw err;
  }

  collectDefaultMetrics({ register: metrics, prefix: 'switchyard_' });
  // Requests are counted in plain fields and handed to prom-client when scraped, and the latencies go to
  // LatencyHistograms: prom-client's label hashing on every request allocated ~600 bytes per answer, about
  // 7 % of what a re-parking watcher costs the young generation (docs/scale.md, "Where a watcher's bytes go").
  const requestChildren = new Map<string, { n: number; count: { inc(v: number): void }; latency: LatencyChild }>();
  const httpRequests: Counter<string> = new Counter({ name: 'switchyard_registry_http_requests_total', help: 'Registry API requests', labelNames: ['route', 'method', 'status'], registers: [metrics], collect() {
    for (const c of requestChildren.values()) {
      if (c.n > 0) {
        c.count.inc(c.n);
        c.n = 0;
      }
    }
  } });
  // 2, 20 and 200 ms too: the scale targets put a writer's p99 at 5 ms, and "≤ 50 ms" said little about 6 or 49.
  const httpLatency = new LatencyHistogram({ name: 'switchyard_registry_http_request_seconds', help: 'Registry API latency, from the request head parsed to the answer written (blocking queries include their wait)', labelNames: ['route'], buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 10, 60, 600], registers: [metrics] });
  // Buckets fine enough to check the scale targets (a 1,000-way fan-out's p99 < 20 ms, a 10,000-way one's < 100 ms)
  // from the agent's side: with 20 → 50 and 100 → 500 ms gaps a p99 read "≤ 50 ms" whether it was 21 or 49.
  const wakeLatency = new LatencyHistogram({ name: 'switchyard_registry_blocking_wake_seconds', labelNames: [], help: 'From a change being applied to each woken blocking query\'s response being written',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2], registers: [metrics] });
  const wakeAll = wakeLatency.labels();
  const checkResults = new Counter({ name: 'switchyard_registry_check_results_total', help: 'Health check results by type and status', labelNames: ['type', 'status'], registers: [metrics] });
  new Gauge({ name: 'switchyard_registry_index', help: 'Current registry index (store revision)', registers: [metrics], collect() { this.set(view.revision); } });
  if (etcd) {
    new Gauge({ name: 'switchyard_store_watch_connected', help: 'Cluster mode: 1 while this agent\'s etcd watch is up (0: reads may be stale, writes fail)', registers: [metrics], collect() { this.set(etcd.connected() ? 1 : 0); } });
    new Gauge({ name: 'switchyard_cluster_agents_alive', help: 'Cluster mode: agents holding a live etcd lease', registers: [metrics], collect() { this.set(etcd.range(ALIVE_PREFIX).length); } });
  }
  if (store instanceof EmbeddedStore) {
    new Gauge({ name: 'switchyard_store_writable', help: 'Embedded store: 1 while the write-ahead log takes writes, 0 while it cannot be written (full disk, I/O errors; writes answer 503)', registers: [metrics], collect() { this.set(store.writable() ? 1 : 0); } });
  }
  new Gauge({ name: 'switchyard_registry_blocking_queries', help: 'Blocking queries parked right now', registers: [metrics], collect() { this.set(view.waiterCount()); } });
  new Gauge({ name: 'switchyard_registry_services', help: 'Service instances in the catalog', registers: [metrics], collect() { this.set(view.instanceCount()); } });

  const extra: PromRegistry[] = [];

  const consulMetrics = new ConsulMetrics({ registries: () => [metrics, ...extra], clock: systemClock });
  await consulMetrics.start();

  const scheduler = new CheckScheduler({
    // Monotonic: a wall clock stepped forward must not count as time a check has been critical.
    registry, view, logger, clock: monotonicClock, random: systemRandom,
    minIntervalMs: cfg.checkMinIntervalMs, reapIntervalMs: cfg.checkReapIntervalMs, deregisterMinMs: cfg.checkDeregisterMinMs, scriptChecks: cfg.enableScriptChecks,
    onResult: (type, status) => checkResults.inc({ type, status }),
  });
  scheduler.start();

  const runtimeStats = new RuntimeStats();
  const deps: ApiDeps = {
    registry, view, sessions, store, clock, storeKind: store instanceof EtcdStore ? 'etcd' : 'embedded',
    events, prepared: { view: preparedView, writes: new PreparedQueryWrites(store, (rev) => view.waitForRevision(rev)) }, sessionTtlMinNs: cfg.sessionTtlMinMs * 1e6, version: VERSION,
    blocking: { ...DEFAULT_BLOCKING, random: systemRandom },
    readCache: new ReadCache(),
    onTtlUpdate: (id) => scheduler.ttlUpdated(id),
    metricsText: async () => (await Promise.all([metrics, ...extra].map((r) => r.metrics()))).join('\n'),
    metricsJson: () => consulMetrics.summary(),
  };
  const preparedQuery = preparedLookup(view, preparedView, { agentNode: cfg.node, random: systemRandom });
  const ui = createUiHandler({ logger: logger.child({ part: 'ui' }), ...(cfg.aclToken !== undefined ? { aclToken: cfg.aclToken } : {}), ...(opts.lbStarting ? { lbStarting: true } : {}) });
  const hostCheck = loopbackHostGuard(splitHostPort(cfg.httpAddr).host, cfg.allowedHosts, '--allowed-hosts (allowed-hosts in a config file)');
  const api = createApiServer({
    routes: [...agentRoutes(deps), ...catalogRoutes(deps), ...kvRoutes(deps), ...statusRoutes(deps), ...sessionRoutes(deps), ...txnRoutes(deps), ...eventRoutes(deps), ...queryRoutes(deps), ...snapshotRoutes(deps), ...unknownRoutes(deps, { aclToken: cfg.aclToken !== undefined })],
    logger,
    maxBodyBytes: cfg.maxBodyBytes,
    maxConnsPerClient: cfg.httpMaxConnsPerClient,
    maxConnsExempt: cfg.httpMaxConnsExempt,
    ...(cfg.aclToken !== undefined ? { aclToken: cfg.aclToken } : {}),
    ...(hostCheck !== undefined ? { hostCheck } : {}),
    onWake: (seconds) => wakeLatency.observe(wakeAll, seconds),
    fanOut: view,
    onRequest: (route, method, status, seconds) => {
      const k = `${route} ${method} ${status}`;
      let c = requestChildren.get(k);
      if (!c) requestChildren.set(k, (c = { n: 0, count: httpRequests.labels(route, method, String(status)), latency: httpLatency.labels(route) }));
      c.n++;
      httpLatency.observe(c.latency, seconds);
    },
    fallback: (req, res) => {
      if (req.url === '/metrics' && req.method === 'GET') {
        // A collect that throws answers 500 with the reason; an unhandled rejection would end the agent.
        Promise.all([metrics, ...extra].map((r) => r.metrics())).then((texts) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(texts.join('\n')), (err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics could not be collected: ${err instanceof Error ? err.message : String(err)}\n`);
        });
        return true;
      }
      if ((req.url ?? '').split('?')[0] === '/debug/runtime' && req.method === 'GET') {
        // A benchmark's attribution of its tails (event-loop stalls, GC pauses by kind); ?reset=1 starts a new window after this report.
        const report = runtimeStats.report();
        if (/[?&]reset=1\b/.test(req.url ?? '')) runtimeStats.reset();
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(report, null, 2)}\n`);
        return true;
      }
      return ui.handle(req, res);
    },
  });
  let address: { host: string; port: number };
  let dns: RunningDns | undefined;
  try {
    address = await listen(api.listener, listenAt.host, listenAt.port, '--http-addr', API_BACKLOG);
    if (cfg.dns) {
      dns = await startDns(cfg.dns, view, { name: cfg.node, datacenter: cfg.datacenter }, logger.child({ part: 'dns' }), preparedQuery);
      extra.push(dns.metrics);
    }
  } catch (err) {
    scheduler.close();
    sessions.close();
    consulMetrics.close();
    runtimeStats.close();
    storeHealth?.close();
    if (api.listener.listening) await api.close();
    await membership?.close();
    await antiEntropy?.close();
    unsubscribe();
    await store.close();
    await dirLock?.release();
    throw err;
  }
  const hostForUrl = address.host.includes(':') ? `[${address.host}]` : address.host;
  logger.info({ addr: `${address.host}:${address.port}`, node: cfg.node, datacenter: cfg.datacenter, acl: cfg.aclToken !== undefined }, 'agent listening');

  return {
    address,
    url: `http://${hostForUrl}:${address.port}`,
    registry,
    view,
    sessions,
    metrics,
    dns,
    preparedQuery,
    addMetrics: (r) => void extra.push(r),
    attachLb: (lb, source) => ui.attachLb(lb, source),
    async close() {
      if (closed) return;
      closed = true;
      scheduler.close();
      sessions.close();
      consulMetrics.close();
      runtimeStats.close();
      storeHealth?.close();
      ui.close();
      await dns?.close();
      // Parked blocking queries would hold a plain close() for minutes: this ends them now.
      await api.close();
      // Graceful leave: revoking the lease marks this node critical now rather than after the TTL.
      await membership?.close();
      await antiEntropy?.close();
      unsubscribe();
      await store.close();
      await dirLock?.release();
      logger.info('agent stopped');
    },
  };
}
