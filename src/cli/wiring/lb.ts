/** Builds a running load balancer: source → snapshot store → proxy listeners, plus admin and metrics. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import { RuntimeStats } from '../../core/runtime-stats.js';
import type { RuntimeReport } from '../../core/runtime-stats.js';
import { systemRandom } from '../../core/clock.js';
import { UpstreamStates } from '../../balancer/index.js';
import type { Upstream } from '../../balancer/index.js';
import type { LbConfig } from '../../config/lb.js';
import { splitHostPort } from '../../config/fields.js';
import type { ServiceSet, Source } from '../../discovery/types.js';
import { loadServiceSet, saveServiceSet } from '../../discovery/state-file.js';
import { SnapshotStore } from '../../routing/snapshot-store.js';
import { HttpProxy } from '../../proxy/node/proxy.js';
import { RequestCounters, RequestIds } from '../../proxy/core/request.js';
import { RouteAdmission } from '../../proxy/core/limits.js';
import { explainAllowList } from '../../proxy/core/explain.js';
import type { ProxyMetrics } from '../../proxy/core/request.js';
import { PassiveHealth } from '../../proxy/passive-health.js';
import { UpstreamPools } from '../../proxy/node/pools.js';
import { FastHttpProxy } from '../../proxy/fast/proxy.js';
import { FastPools } from '../../proxy/fast/pool.js';
import { H2Plane } from '../../proxy/h2/plane.js';
import { H2Pools } from '../../proxy/h2/h2-pool.js';
import { sniffPreface } from '../../proxy/h2/preface.js';
import { LatencyHistogram } from '../../proxy/latency-histogram.js';
import type { LatencyChild } from '../../proxy/latency-histogram.js';
import { TcpProxy } from '../../proxy/tcp-proxy.js';
import { loadTlsContexts } from '../../proxy/tls.js';
import { tcpGroupKey } from '../../routing/snapshot.js';
import { listen } from './listen.js';

export interface RunningLb {
  readonly address: { host: string; port: number };
  readonly tlsAddress: { host: string; port: number } | undefined;
  readonly tcpAddresses: readonly { host: string; port: number }[];
  readonly adminAddress: { host: string; port: number } | undefined;
  readonly snapshots: SnapshotStore;
  readonly states: UpstreamStates;
  readonly metrics: PromRegistry;
  /** GC pauses and event-loop delay since start or the last reset (this process only). */
  runtime(reset: boolean): RuntimeReport;
  /** Feeds a ServiceSet directly (used by `up` with the in-process catalog, and by workers). */
  apply(set: ServiceSet): void;
  close(): Promise<void>;
}

export interface LbParts {
  /** The registry source; absent in cluster workers, which receive sets from the primary. */
  source?: Source;
  /** Serve admin endpoints (the primary does it when running workers). */
  admin?: boolean;
  /** Collect Node process metrics (off inside `up`, where the agent already does). */
  processMetrics?: boolean;
  /** A primary's view of its workers: their metrics and runtime reports join its own on the admin endpoints. */
  workers?: WorkerGather;
}

export interface WorkerGather {
  metrics(): Promise<Awaited<ReturnType<PromRegistry['getMetricsAsJSON']>>[]>;
  runtime(reset: boolean): Promise<RuntimeReport[]>;
}

export async function startLb(cfg: LbConfig, logger: Logger, parts: LbParts): Promise<RunningLb> {
  const states = new UpstreamStates();
  const metrics = new PromRegistry();
  const runtimeStats = new RuntimeStats();
  const runtime = (reset: boolean): RuntimeReport => {
    const r = runtimeStats.report();
    if (reset) runtimeStats.reset();
    return r;
  };
  if (parts.processMetrics !== false) collectDefaultMetrics({ register: metrics, prefix: 'switchyard_lb_' });
  // Per-request metrics stay off prom-client's per-call label hashing: the request counter is
  // counted in plain fields and handed over when scraped, the latency histogram is our own.
  const requests = new Counter({ name: 'switchyard_lb_requests_total', help: 'Proxied requests by route, service, instance and status (0 = client went away)', labelNames: ['route', 'service', 'instance', 'protocol', 'grpc_status', 'status'], registers: [metrics], collect() { flushRequestCounts(); } });
  const latency = new LatencyHistogram({ name: 'switchyard_lb_request_seconds', help: 'Request latency through the balancer', labelNames: ['route', 'service'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [metrics] });
  const retries = new Counter({ name: 'switchyard_lb_retries_total', help: 'Retries on another instance', labelNames: ['service', 'reason'], registers: [metrics] });
  const limited = new Counter({ name: 'switchyard_lb_limited_total', help: 'Requests refused by a route\'s limits (reason: concurrency or rate)', labelNames: ['route', 'reason'], registers: [metrics] });
  const mirrored = new Counter({ name: 'switchyard_lb_mirrored_total', help: 'Copies of requests for a route\'s mirror, by outcome (sent, dropped, failed, skipped)', labelNames: ['route', 'service', 'outcome'], registers: [metrics] });
  const ejections = new Counter({ name: 'switchyard_lb_ejections_total', help: 'Passive-health ejections', labelNames: ['instance', 'reason'], registers: [metrics] });
  const generation = new Gauge({ name: 'switchyard_lb_table_generation', help: 'Version of the routing table in use', registers: [metrics] });
  const lastChange = new Gauge({ name: 'switchyard_lb_table_built_timestamp_seconds', help: 'When the routing table in use was built', registers: [metrics] });
  new Gauge({ name: 'switchyard_lb_in_flight', help: 'Requests in flight per instance', labelNames: ['instance'], registers: [metrics], collect() {
    this.reset();
    for (const g of snapshots.current?.groups.values() ?? []) for (const u of g.upstreams) this.set({ instance: `${u.address}:${u.port}` }, states.peek(u.id)?.inFlight ?? 0);
  } });
  new Gauge({ name: 'switchyard_lb_registry_connected', help: '1 while the registry answers', registers: [metrics], collect() { this.set(parts.source?.status().connected ? 1 : 0); } });
  new Gauge({ name: 'switchyard_lb_registry_last_contact_seconds', help: 'Seconds since the registry last answered (registry lag)', registers: [metrics], collect() {
    const t = parts.source?.status().lastContact ?? 0;
    this.set(t === 0 ? -1 : (Date.now() - t) / 1000);
  } });
  // Where a table serves requests: a primary with workers builds tables only to hand them on.
  const serving = parts.workers === undefined;
  // Each metric lives where its facts are, so a primary's sum over its workers does not list it twice:
  // the watch and the guard where the registry is followed, change latency where tables serve.
  const following = parts.source ? [metrics] : [];
  new Gauge({ name: 'switchyard_lb_registry_stale', help: '1 while a registry watch has heard nothing for longer than its blocking wait plus the stale margin', registers: following, collect() { this.set(parts.source?.status().stale ? 1 : 0); } });
  const changeLatency = new Histogram({
    name: 'switchyard_lb_change_latency_seconds', help: 'From a registry change being committed to the table swap (stage="swap") and to the first request routed by that table (stage="first_request"); clock="arrival" when the registry does not say when it committed (Consul)',
    labelNames: ['stage', 'clock'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: serving ? [metrics] : [],
  });
  const guardHolds = new Counter({ name: 'switchyard_lb_guard_holds_total', help: 'Instances the mass-loss guard held in the table after they left the registry', labelNames: ['service'], registers: following });
  new Gauge({ name: 'switchyard_lb_guard_held_instances', help: 'Instances the mass-loss guard holds in the table now', labelNames: ['service'], registers: following, collect() {
    this.reset();
    const counts = new Map<string, number>();
    for (const h of snapshots.guardState()?.held ?? []) counts.set(h.service, (counts.get(h.service) ?? 0) + 1);
    for (const [service, n] of counts) this.set({ service }, n);
  } });
  new Gauge({ name: 'switchyard_lb_draining_pools', help: 'Upstream pools draining after removal', registers: [metrics], collect() { this.set(pools.drainingCount() + (fastPools?.drainingCount() ?? 0) + h2Pools.drainingCount()); } });
  const h2Refused = new Counter({ name: 'switchyard_lb_h2_refused_total', help: 'HTTP/2 client connections closed or streams reset for abuse or a limit (rapid_reset, control_flood, stalled_stream)', labelNames: ['reason'], registers: [metrics] });
  new Gauge({ name: 'switchyard_lb_h2_sessions', help: 'HTTP/2 client connections open', registers: [metrics], collect() { this.set(h2?.size ?? 0); } });

  const ph = cfg.passiveHealth;
  const health = new PassiveHealth(states, ph, (id, reason, ms) => {
    ejections.inc({ instance: id, reason: reason.includes('outlier') ? 'outlier' : 'max_fails' });
    logger.warn({ instance: id, reason, ejectedForMs: ms }, 'instance ejected by passive health');
  });
  const snapshots = new SnapshotStore({
    specs: cfg.routes, states, random: systemRandom, panicThreshold: ph.panicThreshold, defaultBalance: cfg.defaultBalance, logger, tcp: cfg.tcp,
    // The guard runs where the registry is followed; workers get tables their primary already guarded.
    ...(parts.source ? { guard: cfg.guard } : {}),
    onGuardEvent: (e) => {
      if (e.kind === 'held') guardHolds.inc({ service: e.service }, e.ids.length);
    },
    ...(serving ? { onChangeLatency: (stage: string, seconds: number, clock: string) => changeLatency.observe({ stage, clock }, seconds) } : {}),
  });
  const pools = new UpstreamPools({ connectTimeoutMs: cfg.timeouts.connectMs, drainTimeoutMs: cfg.timeouts.drainMs, logger });
  const fastPools = cfg.dataPlane === 'fast' ? new FastPools({ connectTimeoutMs: cfg.timeouts.connectMs, drainTimeoutMs: cfg.timeouts.drainMs, logger }) : undefined;
  const h2Pools = new H2Pools({ connectTimeoutMs: cfg.timeouts.connectMs, drainTimeoutMs: cfg.timeouts.drainMs, logger });

  // route → instance id → status → label children; cleared on every swap (after a flush). Nested
  // maps avoid building a label key string per request.
  type Children = { n: number; c: { inc(v: number): void }; h: LatencyChild };
  const children = new Map<object, Map<string, Map<number, Children>>>();
  function flushRequestCounts(): void {
    for (const byUp of children.values()) for (const byStatus of byUp.values()) for (const ch of byStatus.values()) {
      if (ch.n > 0) {
        ch.c.inc(ch.n);
        ch.n = 0;
      }
    }
  }
  const proxyMetrics: ProxyMetrics = {
    request(route, up, status, seconds, protocol = 'http/1.1', grpcStatus) {
      let byUp = children.get(route);
      if (!byUp) children.set(route, (byUp = new Map()));
      const id = up ? up.id : '';
      let byStatus = byUp.get(id);
      if (!byStatus) byUp.set(id, (byStatus = new Map()));
      // One number for status, protocol and gRPC status: no key string built per request.
      const key = status + (protocol === 'h2' ? 1000 : 0) + (grpcStatus === undefined ? 0 : (grpcStatus + 1) * 10_000);
      let ch = byStatus.get(key);
      if (!ch) {
        const inst = up ? `${up.address}:${up.port}` : '';
        ch = {
          n: 0, c: requests.labels(route.spec.origin, route.spec.service, inst, protocol, grpcStatus === undefined ? '' : String(grpcStatus), String(status)),
          h: latency.labels(route.spec.origin, route.spec.service),
        };
        byStatus.set(key, ch);
      }
      ch.n++;
      latency.observe(ch.h, seconds);
    },
    retry(route, reason) {
      retries.inc({ service: route.spec.service, reason: /^status \d+$/.test(reason) ? reason.replace('status ', '') : reason.slice(0, 40) });
    },
    limited(route, reason) {
      limited.inc({ route: route.spec.origin, reason });
    },
    mirrored(route, outcome) {
      mirrored.inc({ route: route.spec.origin, service: route.spec.mirror?.service ?? '', outcome });
    },
  };
  const accessLog = cfg.accessLog ? logger.child({ log: 'access' }) : undefined;
  // Both planes draw on one retry budget.
  const counters = new RequestCounters();
  const ids = new RequestIds();
  const admission = new RouteAdmission(() => states.now());
  const explainFrom = cfg.explainFrom.length > 0 ? explainAllowList(cfg.explainFrom) : undefined;
  const core = { states, health, config: cfg, metrics: proxyMetrics, logger, accessLog, counters, ids, random: systemRandom, admission, explainFrom };
  const proxy = new HttpProxy({ ...core, snapshots, pools });
  // The fast plane serves HTTP/1.x on every listener by itself; the Node plane only with --data-plane node.
  const fast = fastPools ? new FastHttpProxy({ ...core, snapshots, pools: fastPools }) : undefined;
  fast?.start();
  // HTTP/2 clients (either plane's listeners hand them over) are served by the HTTP/2 plane.
  const h2 = cfg.http2.enabled
    ? new H2Plane({ ...core, snapshots, pools, fastPools, h2Pools, h2: cfg.http2, onRefused: (reason) => h2Refused.inc({ reason }) })
    : undefined;
  h2?.start();
  if (fast && h2) fast.h2c = (socket, already) => h2.accept(socket, already);

  snapshots.onSwap((next, _prev, set) => {
    generation.set(next.version);
    lastChange.set(next.builtAt / 1000);
    const live: Upstream[] = [];
    const ids = new Set<string>();
    for (const g of next.groups.values()) for (const u of g.upstreams) {
      live.push(u);
      ids.add(u.id);
    }
    pools.retain(live);
    fastPools?.retain(live);
    h2Pools.retain(live);
    states.retain(ids);
    flushRequestCounts();
    children.clear();
    if (cfg.stateFile) {
      try {
        saveServiceSet(cfg.stateFile, set);
      } catch (err) {
        logger.warn({ err: (err as Error).message, file: cfg.stateFile }, 'could not write the state file');
      }
    }
    logger.info({ version: next.version, routes: next.routes.length, upstreams: live.length }, 'routing table swapped');
  });

  if (cfg.stateFile) {
    const loaded = loadServiceSet(cfg.stateFile);
    if (loaded && 'error' in loaded) logger.warn({ problem: loaded.error }, 'state file ignored');
    else if (loaded) {
      snapshots.update(loaded.set);
      logger.info({ file: cfg.stateFile, savedAt: loaded.savedAt }, 'serving the last known table from the state file until the registry answers');
    }
  }

  // Node checks header deadlines on a timer (30s by default): tick often enough to honour the limit.
  const connectionsCheckingInterval = Math.max(100, Math.min(1000, cfg.timeouts.clientHeaderMs / 2));
  const nodeOptions = {
    connectionsCheckingInterval, headersTimeout: cfg.timeouts.clientHeaderMs, requestTimeout: 0, keepAliveTimeout: 65_000,
    maxHeaderSize: cfg.limits.maxHeaderSize,
  };
  /** A Node http(s) server for the Node plane, with its refusals worded like the fast plane's. */
  function nodePlane(server: Server, proto: 'http' | 'https'): Server {
    // One more than the limit, so a head over it is seen (and refused) rather than cut silently.
    server.maxHeadersCount = cfg.limits.maxHeaderCount + 1;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res, proto));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => proxy.handleUpgrade(req, socket, head, proto));
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      const body = 'switchyard: CONNECT is not served: this is a reverse proxy, not a forward proxy\n';
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => proxy.onClientError(err, socket));
    return server;
  }
  // Accepted paused: the fast plane starts reading once its reader is in place.
  const nodePlain = fast ? undefined : nodePlane(createServer(nodeOptions), 'http');
  // The Node plane's plain listener looks at the first bytes for the HTTP/2 preface (h2c prior knowledge) before Node's parser does.
  const server: NetServer = fast
    ? createNetServer({ noDelay: true, pauseOnConnect: true }, (socket) => fast.accept(socket, 'http'))
    : h2 ? createNetServer({ noDelay: true, pauseOnConnect: true }, (socket) => sniffPreface(socket, (s, b) => h2.accept(s, b), (s) => {
      nodePlain?.emit('connection', s);
      s.resume();
    })) : (nodePlain as Server);
  const at = splitHostPort(cfg.listen);
  let adminServer: Server | undefined;
  let adminAddress: { host: string; port: number } | undefined;
  const address = await listen(server, at.host, at.port, '--listen');

  let tlsServer: NetServer | undefined;
  let nodeTlsServer: Server | undefined;
  let tlsAddress: { host: string; port: number } | undefined;
  if (cfg.tls) {
    const ctx = loadTlsContexts(cfg.tls.certs);
    const tlsOptions = { cert: ctx.defaultCert, key: ctx.defaultKey, SNICallback: ctx.sniCallback };
    // ALPN picks the plane: h2 goes to the HTTP/2 plane, everything else to the HTTP/1 plane.
    const alpn = h2 ? ['h2', 'http/1.1'] : ['http/1.1'];
    const nodeTls = fast ? undefined : nodePlane(createServer(nodeOptions), 'https');
    tlsServer = createTlsServer({ ...tlsOptions, ALPNProtocols: alpn }, (socket: TLSSocket) => {
      if (h2 && socket.alpnProtocol === 'h2') h2.accept(socket);
      else if (fast) fast.accept(socket, 'https');
      else nodeTls?.emit('connection', socket);
    });
    nodeTlsServer = nodeTls;
    // A handshake that fails is the client's problem: it must not take the listener down.
    tlsServer.on('tlsClientError', (err: Error) => logger.debug({ err: err.message }, 'TLS handshake failed'));
    const t = splitHostPort(cfg.tls.listen);
    tlsAddress = await listen(tlsServer, t.host, t.port, 'tls.listen');
    logger.info({ listen: `${tlsAddress.host}:${tlsAddress.port}`, names: ctx.names }, 'TLS listener ready');
  }

  const tcpConnections = new Counter({ name: 'switchyard_lb_tcp_connections_total', help: 'TCP route connections by listener and outcome', labelNames: ['listen', 'service', 'outcome'], registers: [metrics] });
  const tcpProxies: { proxy: TcpProxy; address: { host: string; port: number } }[] = [];
  for (const t of cfg.tcp) {
    const tp = new TcpProxy({
      groupKey: tcpGroupKey(t.service, t.balance), snapshots, states, health, logger,
      connectTimeoutMs: cfg.timeouts.connectMs, attempts: cfg.retries.attempts, hashByClientIp: t.balance === 'hash',
      onConnection: (_u, ok) => tcpConnections.inc({ listen: t.listen, service: t.service, outcome: ok ? 'connected' : 'failed' }),
    });
    const l = splitHostPort(t.listen);
    tcpProxies.push({ proxy: tp, address: await listen(tp.server, l.host, l.port, `tcp listen ${t.listen}`) });
  }

  if (parts.admin !== false && cfg.adminAddr) {
    adminServer = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        void metricsText().then((t) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(t));
      } else if (path === '/debug/runtime') {
        // A benchmark's attribution: ?reset=1 starts a new window after reporting this one.
        const reset = /[?&]reset=1\b/.test(req.url ?? '');
        void (parts.workers?.runtime(reset) ?? Promise.resolve([])).then((w) => {
          const body = { self: runtime(reset), workers: w };
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
        });
      } else if (path === '/routes') {
        const snap = snapshots.current;
        const body = {
          ...(snap ? snap.dump(states) : { version: 0, routes: [], groups: [], errors: [] }),
          registry: parts.source?.status() ?? null, guard: guardView(), lastChange: lastChangeView(),
        };
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`);
      } else if (path === '/health') {
        const ok = snapshots.current !== undefined;
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'no routing table yet\n');
      } else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: try /metrics, /routes, /health or /debug/runtime\n');
    });
    const a = splitHostPort(cfg.adminAddr);
    adminAddress = await listen(adminServer, a.host, a.port, '--admin-addr');
  }

  /** The mass-loss guard for /routes: its settings and the instances it holds (null when off). */
  function guardView(): Record<string, unknown> | null {
    const g = snapshots.guardState();
    if (!g) return null;
    return {
      maxDropPercent: g.maxDropPercent, holdMs: g.holdMs,
      held: g.held.map((h) => ({ ...h, since: new Date(h.since).toISOString(), until: new Date(h.until).toISOString() })),
    };
  }

  /** The last registry change's way through this process's table (null before the first change; with workers it is theirs, see /metrics). */
  function lastChangeView(): Record<string, unknown> | null {
    const c = snapshots.lastChange;
    if (!c || !serving) return null;
    return { version: c.version, committedAt: new Date(c.committedAt).toISOString(), clock: c.clock, swapSeconds: c.swapSeconds, firstRequestSeconds: c.firstRequestSeconds ?? null };
  }

  /** This process's metrics, with the workers' summed in when this is a primary. */
  async function metricsText(): Promise<string> {
    const own = await metrics.metrics();
    if (!parts.workers) return own;
    const replies = await parts.workers.metrics();
    return `${await AggregatorRegistry.aggregate(replies).metrics()}\n${own}`;
  }

  parts.source?.start((set) => snapshots.update(set));
  logger.info({ listen: `${address.host}:${address.port}`, admin: adminAddress ? `${adminAddress.host}:${adminAddress.port}` : null, routes: cfg.routes.length }, 'load balancer listening');

  let closed = false;
  return {
    address, adminAddress, snapshots, states, metrics, runtime, tlsAddress, tcpAddresses: tcpProxies.map((t) => t.address),
    apply: (set) => void snapshots.update(set),
    async close() {
      if (closed) return;
      closed = true;
      await parts.source?.close();
      snapshots.close();
      // Stop accepting, let in-flight requests finish (up to the drain timeout), then close pools.
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      const tlsDrained = tlsServer ? new Promise<void>((resolve) => tlsServer.close(() => resolve())) : Promise.resolve();
      if (fast) fast.closeIdle();
      else {
        nodePlain?.closeIdleConnections();
        nodeTlsServer?.closeIdleConnections();
      }
      h2?.closeIdle();
      const timer = setTimeout(() => {
        if (fast) fast.destroyAll();
        else {
          nodePlain?.closeAllConnections();
          nodeTlsServer?.closeAllConnections();
        }
        h2?.destroyAll();
      }, cfg.timeouts.drainMs);
      timer.unref();
      await Promise.all([drained, tlsDrained, ...tcpProxies.map((t) => t.proxy.close(cfg.timeouts.drainMs))]);
      clearTimeout(timer);
      await new Promise<void>((resolve) => (adminServer ? adminServer.close(() => resolve()) : resolve()));
      fast?.stop();
      h2?.stop();
      await Promise.all([pools.close(), fastPools?.close(), h2Pools.close()]);
      runtimeStats.close();
      logger.info('load balancer stopped');
    },
  };
}
