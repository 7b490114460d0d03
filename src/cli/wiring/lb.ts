/**
 * Builds a running load balancer by composition: registry source → snapshot store → the data planes
 * behind their listeners, with metrics (src/proxy/lb-metrics.ts), the admin endpoints
 * (lb-admin.ts) and the listeners (lb-listeners.ts) each in their own module.
 */
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry as PromRegistry } from 'prom-client';
import { RuntimeStats } from '../../core/runtime-stats.js';
import type { RuntimeReport } from '../../core/runtime-stats.js';
import { systemRandom } from '../../core/clock.js';
import { loopbackHostGuard } from '../../core/host-guard.js';
import { UpstreamStates } from '../../balancer/index.js';
import { l4Routes } from '../../config/lb.js';
import type { LbConfig } from '../../config/lb.js';
import { splitHostPort } from '../../config/fields.js';
import type { ServiceSet, Source } from '../../discovery/types.js';
import { StateFileWriter, loadServiceSet } from '../../discovery/state-file.js';
import { SnapshotStore } from '../../routing/snapshot-store.js';
import { LiveUpstreams } from '../../routing/live-upstreams.js';
import { HttpProxy } from '../../proxy/node/proxy.js';
import { RequestCounters, RequestIds } from '../../proxy/core/request.js';
import { RouteAdmission } from '../../proxy/core/limits.js';
import { UpstreamTlsFlavours } from '../../proxy/upstream-tls.js';
import { loadTlsContexts } from '../../proxy/tls.js';
import type { RouteSpec } from '../../config/route-spec.js';
import { ipMatcher } from '../../core/ip-list.js';
import { PassiveHealth } from '../../proxy/passive-health.js';
import { UpstreamPools } from '../../proxy/node/pools.js';
import { FastHttpProxy } from '../../proxy/fast/proxy.js';
import { FastPools } from '../../proxy/fast/pool.js';
import { H2Plane } from '../../proxy/h2/plane.js';
import { H2Pools } from '../../proxy/h2/h2-pool.js';
import { LbMetrics } from '../../proxy/lb-metrics.js';
import type { LbStatsReader, UpstreamState } from '../../proxy/lb-metrics.js';
import { adminServer } from './lb-admin.js';
import type { WorkerGather } from './lb-admin.js';
import { openListeners } from './lb-listeners.js';
import { listen } from './listen.js';

export type { WorkerGather } from './lb-admin.js';

/** The state file follows the table at most this often (a crash loses at most this much of it). */
const STATE_FILE_INTERVAL_MS = 1000;

export interface RunningLb {
  readonly address: { host: string; port: number };
  readonly tlsAddress: { host: string; port: number } | undefined;
  readonly tcpAddresses: readonly { host: string; port: number }[];
  readonly udpAddresses: readonly { host: string; port: number }[];
  readonly adminAddress: { host: string; port: number } | undefined;
  readonly snapshots: SnapshotStore;
  readonly states: UpstreamStates;
  /** The Prometheus registry /metrics serves (`up` adds it to the agent's). */
  readonly metrics: PromRegistry;
  /** The same figures, typed, for the web UI. */
  readonly stats: LbStatsReader;
  /** GC pauses and event-loop delay since start or the last reset (this process only). */
  runtime(reset: boolean): RuntimeReport;
  /** New TLS connections get the certificates as their files now are (see Listeners.reloadTls). */
  reloadTls(): { names: readonly string[] } | undefined;
  /**
   * Swaps in new routes (a SIGHUP reload): their CA files are read, then the table is rebuilt.
   * Undefined when they went live, else why not (nothing changed).
   */
  setRoutes(routes: readonly RouteSpec[]): string | undefined;
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
  /** Where tables come from without a source (a worker: its primary); called before the listeners open. */
  feed?: (apply: (set: ServiceSet) => void) => void;
  /** Aborted when the process is told to stop: a start still waiting for its first table gives up (StartStopped). */
  stop?: AbortSignal;
}

/** startLb was stopped before its listeners opened; everything it had started is closed again. */
export class StartStopped extends Error {
  constructor() {
    super('stopped before the first routing table');
    this.name = 'StartStopped';
  }
}

export async function startLb(cfg: LbConfig, logger: Logger, parts: LbParts): Promise<RunningLb> {
  const states = new UpstreamStates();
  const runtimeStats = new RuntimeStats();
  const runtime = (reset: boolean): RuntimeReport => {
    const r = runtimeStats.report();
    if (reset) runtimeStats.reset();
    return r;
  };
  // Where a table serves requests: a primary with workers builds tables only to hand them on.
  const serving = parts.workers === undefined;
  const m: LbMetrics = new LbMetrics({
    processMetrics: parts.processMetrics !== false, serving, following: parts.source !== undefined,
    facts: {
      *inFlight() {
        for (const g of snapshots.current?.groups.values() ?? []) for (const u of g.upstreams) yield [`${u.address}:${u.port}`, states.peek(u.id)?.inFlight ?? 0] as const;
      },
      registry: () => parts.source?.status(),
      *heldServices() {
        for (const h of snapshots.guardState()?.held ?? []) yield h.service;
      },
      *upstreamStates() {
        // An instance routed by several groups (tag subsets, splits) is one instance.
        const seen = new Set<string>();
        const now = states.now();
        for (const g of snapshots.current?.groups.values() ?? []) {
          for (const u of g.upstreams) {
            const instance = `${u.address}:${u.port}`;
            const key = `${g.service}\u0000${instance}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const st = states.peek(u.id);
            const inst = g.instances.get(u.id);
            const state: UpstreamState = st && st.ejectedUntil > now ? 'ejected' : st?.draining ? 'draining' : inst?.held ? 'held' : inst?.status === 'warning' ? 'warning' : 'passing';
            yield [g.service, instance, state] as const;
          }
        }
      },
      drainingPools: () => pools.drainingCount() + (fastPools?.drainingCount() ?? 0) + h2Pools.drainingCount(),
      h2Sessions: (): number => h2?.size ?? 0,
    },
  });

  const ph = cfg.passiveHealth;
  const health = new PassiveHealth(states, ph, (id, reason, ms) => {
    m.ejected(id, reason);
    logger.warn({ instance: id, reason, ejectedForMs: ms }, 'instance ejected by passive health');
  });
  const snapshots = new SnapshotStore({
    specs: cfg.routes, states, random: systemRandom, panicThreshold: ph.panicThreshold, defaultBalance: cfg.defaultBalance, logger, tcp: l4Routes(cfg),
    // The guard runs where the registry is followed; workers get tables their primary already guarded.
    ...(parts.source ? { guard: cfg.guard } : {}),
    onGuardEvent: (e) => {
      if (e.kind === 'held') m.guardHeld(e.service, e.ids.length);
    },
    ...(serving ? { onChangeLatency: (stage: string, seconds: number, clock: string) => m.changeLatency(stage, seconds, clock) } : {}),
  });
  const poolOptions = { connectTimeoutMs: cfg.timeouts.connectMs, drainTimeoutMs: cfg.timeouts.drainMs, logger };
  const pools = new UpstreamPools(poolOptions);
  const fastPools = cfg.dataPlane === 'fast' ? new FastPools(poolOptions) : undefined;
  const h2Pools = new H2Pools({ ...poolOptions, liveness: { timeMs: cfg.http2.keepaliveTimeMs, timeoutMs: cfg.http2.keepaliveTimeoutMs } });

  const accessLog = cfg.accessLog ? logger.child({ log: 'access' }) : undefined;
  // Every plane draws on one retry budget.
  const counters = new RequestCounters();
  const ids = new RequestIds();
  const admission = new RouteAdmission(() => states.now());
  const explainFrom = cfg.explainFrom.length > 0 ? ipMatcher(cfg.explainFrom) : undefined;
  // CA files are read here, before any listener opens: a bad one stops the start with the route named.
  const upstreamTls = new UpstreamTlsFlavours(cfg.routes);
  const core = { states, health, config: cfg, metrics: m.proxy, logger, accessLog, counters, ids, random: systemRandom, admission, explainFrom, upstreamTls };
  const proxy = new HttpProxy({ ...core, snapshots, pools });
  // The fast plane serves HTTP/1.x on every listener by itself; the Node plane only with --data-plane node.
  const fast = fastPools ? new FastHttpProxy({ ...core, snapshots, pools: fastPools }) : undefined;
  fast?.start();
  // HTTP/2 clients (either plane's listeners hand them over) are served by the HTTP/2 plane.
  const h2 = cfg.http2.enabled
    ? new H2Plane({ ...core, snapshots, pools, fastPools, h2Pools, h2: cfg.http2, onRefused: (reason) => m.h2Refused(reason) })
    : undefined;
  h2?.start();
  if (fast && h2) fast.h2c = (socket, already) => h2.accept(socket, already);

  const stateWriter = cfg.stateFile
    ? new StateFileWriter(cfg.stateFile, STATE_FILE_INTERVAL_MS, (err) => logger.warn({ err: err.message, file: cfg.stateFile }, 'could not write the state file'))
    : undefined;
  // What left the table, from the groups each swap adds and removes (a change costs what it touched).
  const live = new LiveUpstreams();
  snapshots.onSwap((next, _prev, set) => {
    const gone = live.swap(next.changes);
    pools.release(gone.addresses);
    fastPools?.release(gone.addresses);
    h2Pools.release(gone.addresses);
    states.forget(gone.ids, (id) => live.has(id));
    m.tableSwapped(next.version, next.builtAt);
    stateWriter?.save(set);
    logger.info({ version: next.version, routes: next.routeCount, upstreams: live.size }, 'routing table swapped');
  });

  if (cfg.stateFile) {
    const loaded = loadServiceSet(cfg.stateFile);
    if (loaded && 'error' in loaded) logger.warn({ problem: loaded.error }, 'state file ignored');
    else if (loaded) {
      snapshots.update(loaded.set);
      logger.info({ file: cfg.stateFile, savedAt: loaded.savedAt }, 'serving the last known table from the state file until the registry answers');
    }
  }

  let admin: Server | undefined;
  let adminAddress: { host: string; port: number } | undefined;
  if (parts.admin !== false && cfg.adminAddr) {
    const a = splitHostPort(cfg.adminAddr);
    const hostCheck = loopbackHostGuard(a.host, cfg.adminAllowedHosts, 'admin-allowed-hosts in the config file');
    admin = adminServer({ metrics: m.registry, snapshots, states, source: parts.source, workers: parts.workers, serving, runtime, hostCheck });
    adminAddress = await listen(admin, a.host, a.port, '--admin-addr');
  }
  /** Stops everything started so far: on close, and when the start is given up before the listeners open. */
  const stopParts = async (opened: Awaited<ReturnType<typeof openListeners>> | undefined): Promise<void> => {
    await parts.source?.close();
    snapshots.close();
    await stateWriter?.close();
    // Stop accepting, let in-flight requests finish (up to the drain timeout), then close pools.
    await opened?.close(cfg.timeouts.drainMs);
    await new Promise<void>((resolve) => (admin ? admin.close(() => resolve()) : resolve()));
    fast?.stop();
    h2?.stop();
    await Promise.all([pools.close(), fastPools?.close(), h2Pools.close()]);
    runtimeStats.close();
  };

  parts.source?.start((set) => snapshots.update(set));
  parts.feed?.((set) => snapshots.update(set));
  let listeners: Awaited<ReturnType<typeof openListeners>>;
  try {
    // A balancer that accepts before it knows any instance can only refuse what it accepted (every
    // restart would cost its first clients a 503): the listeners open with the first table.
    if (serving) await firstTable(snapshots, cfg.timeouts.firstTableMs, logger, parts.stop);
    if (parts.stop?.aborted) throw new StartStopped();
    listeners = await openListeners(cfg, logger, { fast, node: proxy, h2 }, {
      snapshots, states, health, onConnection: (l, service, ok) => m.tcpConnection(l, service, ok), onIdleClose: (l) => m.tcpIdleClosed(l), onConnRefused: (l) => m.connRefused(l),
      onProxyProtocolRefused: (l, reason) => m.proxyProtocolRefused(l, reason),
      onUdpSession: (l, service, outcome) => m.udpSession(l, service, outcome),
      onUdpDatagram: (l, direction, bytes) => m.udpDatagram(l, direction, bytes),
    });
  } catch (err) {
    await stopParts(undefined);
    throw err;
  }
  const { address } = listeners;
  logger.info({ listen: `${address.host}:${address.port}`, admin: adminAddress ? `${adminAddress.host}:${adminAddress.port}` : null, routes: cfg.routes.length }, 'load balancer listening');

  let closed = false;
  return {
    address, adminAddress, snapshots, states, metrics: m.registry, stats: m, runtime, tlsAddress: listeners.tlsAddress, tcpAddresses: listeners.tcpAddresses, udpAddresses: listeners.udpAddresses,
    apply: (set) => void snapshots.update(set),
    setRoutes(routes) {
      try {
        upstreamTls.load(routes);
      } catch (err) {
        return (err as Error).message;
      }
      if (!snapshots.setSpecs(routes)) return 'the new routes do not build a table';
      fast?.routesChanged(routes);
      h2?.routesChanged(routes);
      return undefined;
    },
    reloadTls: () => listeners.reloadTls(),
    async close() {
      if (closed) return;
      closed = true;
      await stopParts(listeners);
      logger.info('load balancer stopped');
    },
  };
}

/**
 * What `lb --check` reads besides the config, as `nginx -t` does: the listener's certificates and keys,
 * and the routes' CA files and client certificates, each checked as a start would check it. Throws the
 * start's own error (file and field named).
 */
export function checkConfigFiles(cfg: LbConfig): void {
  if (cfg.tls) loadTlsContexts(cfg.tls.certs);
  new UpstreamTlsFlavours(cfg.routes);
}

/**
 * SIGHUP: the TLS certificates are read again (renewed files go live without a restart, open connections
 * keep theirs). A file that does not load leaves the previous certificates in use and says why.
 */
export function reloadCertificates(lb: RunningLb, logger: Logger): void {
  try {
    const r = lb.reloadTls();
    if (r) logger.info({ names: r.names }, 'SIGHUP: TLS certificates reloaded');
    else logger.debug('SIGHUP: no TLS listener, no certificates to reload');
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'SIGHUP: TLS certificates not reloaded; the previous ones stay in use');
  }
}

/** Resolves once `snapshots` holds a table, after `ms` without one (then requests get 503 until one comes), or when stopped. */
function firstTable(snapshots: SnapshotStore, ms: number, logger: Logger, stop: AbortSignal | undefined): Promise<void> {
  if (snapshots.current !== undefined || ms <= 0 || stop?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      off();
      stop?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(() => {
      logger.warn({ waitedMs: ms }, 'no routing table yet: listening anyway, requests get 503 until the registry answers');
      done();
    }, ms);
    const off = snapshots.onSwap(done);
    stop?.addEventListener('abort', done, { once: true });
  });
}
