/**
 * The balancer's metrics, defined once: the Prometheus registry `/metrics` serves, the per-request
 * sink the data planes write to (ProxyMetrics), the events the rest of the balancer reports
 * (ejections, guard holds, change latency, HTTP/2 refusals, TCP connections, table swaps), and a
 * typed reader of the same figures for the web UI. The reader holds the metric objects themselves,
 * so renaming a metric changes what Prometheus sees and nothing the UI shows.
 */
import { Counter, Gauge, Histogram, Registry as PromRegistry, collectDefaultMetrics } from 'prom-client';
import type { Upstream } from '../balancer/index.js';
import type { CompiledRoute } from '../routing/snapshot.js';
import type { ProxyMetrics } from './core/request.js';
import { LatencyHistogram } from '../core/latency-histogram.js';
import type { LatencyChild } from '../core/latency-histogram.js';

/** Request latency buckets (seconds). */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Change latency buckets (seconds): a registry change can take from a millisecond to a held minute. */
export const CHANGE_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the gauges report, asked when scraped. */
/**
 * What the balancer makes of an instance, worst first: ejected by passive health, draining (left the
 * registry, finishing its requests), held by the mass-loss guard, or taking traffic as the registry's
 * checks say (warning: at its warning weight).
 */
export type UpstreamState = 'ejected' | 'draining' | 'held' | 'warning' | 'passing';

export interface LbFacts {
  /** Requests in flight per instance address. */
  inFlight(): Iterable<readonly [instance: string, n: number]>;
  /** The registry watch (undefined where none runs: workers, tests feeding sets). */
  registry(): { readonly connected: boolean; readonly lastContact: number; readonly stale?: boolean } | undefined;
  /** The service of every instance the mass-loss guard holds now. */
  heldServices(): Iterable<string>;
  /** Every instance of the table in use with what the balancer makes of it now (see UPSTREAM_STATES). */
  upstreamStates(): Iterable<readonly [service: string, instance: string, state: UpstreamState]>;
  drainingPools(): number;
  h2Sessions(): number;
}

export interface LbMetricsOptions {
  /** Node process metrics (off inside `up`, where the agent collects them). */
  readonly processMetrics: boolean;
  /** Tables serve requests here (not a primary that only hands them to workers): change latency lives here. */
  readonly serving: boolean;
  /** The registry is followed here: the watch and the guard metrics live here (so a primary's sum over workers lists them once). */
  readonly following: boolean;
  readonly facts: LbFacts;
}

/** Cumulative bucket counts: `counts[i]` observations ≤ `bounds[i]`; the last bound is +Inf. */
export interface Buckets {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
}

export interface RequestCount {
  readonly route: string;
  readonly service: string;
  /** host:port, '' when no instance was available. */
  readonly instance: string;
  /** What the client spoke: http/1.1 or h2. */
  readonly protocol: string;
  readonly grpcStatus: number | undefined;
  /** 0: the client went away first. */
  readonly status: number;
  readonly count: number;
}

export type ChangeStage = 'swap' | 'first_request';

/** One read of the balancer's counters, as the UI turns them into rates. */
export interface LbStatsSample {
  readonly requests: readonly RequestCount[];
  /** Request latency per route origin. */
  readonly latency: ReadonlyMap<string, Buckets>;
  /** Passive-health ejections per instance id. */
  readonly ejections: ReadonlyMap<string, number>;
  /** Change latency per stage, both clocks (registry, arrival) together. */
  readonly changeLatency: Readonly<Record<ChangeStage, { readonly buckets: Buckets; readonly sumSeconds: number }>>;
}

export interface LbStatsReader {
  read(): Promise<LbStatsSample>;
}

type Children = { n: number; c: { inc(v: number): void }; h: LatencyChild };

export class LbMetrics implements LbStatsReader {
  readonly registry = new PromRegistry();
  /** The per-request sink both HTTP planes and the HTTP/2 plane write to. */
  readonly proxy: ProxyMetrics;
  readonly #requests: Counter<string>;
  readonly #latency: LatencyHistogram;
  readonly #ejections: Counter<string>;
  readonly #generation: Gauge<string>;
  readonly #builtAt: Gauge<string>;
  readonly #changeLatency: Histogram<string>;
  readonly #guardHolds: Counter<string>;
  readonly #h2Refused: Counter<string>;
  readonly #tcp: Counter<string>;
  readonly #idleTunnels: Counter<string>;
  readonly #connRefused: Counter<string>;
  readonly #proxyRefused: Counter<string>;
  readonly #udpSessions: Counter<string>;
  readonly #udpDatagrams: Counter<string>;
  readonly #udpBytes: Counter<string>;
  readonly #udpChildren = new Map<string, { datagrams: Counter.Internal; bytes: Counter.Internal }>();
  /**
   * route → instance id → status key → label children; cleared on every swap (after a flush).
   * Requests are counted in plain fields and handed to prom-client when scraped: its per-call label
   * hashing would be the most expensive thing on the request path.
   */
  readonly #children = new Map<object, Map<string, Map<number, Children>>>();

  constructor(o: LbMetricsOptions) {
    const metrics = this.registry;
    const all = [metrics];
    const following = o.following ? all : [];
    if (o.processMetrics) collectDefaultMetrics({ register: metrics, prefix: 'switchyard_lb_' });
    const flush = (): void => this.flush();
    this.#requests = new Counter({
      name: 'switchyard_lb_requests_total', help: 'Proxied requests by route, service, instance and status (0 = client went away)',
      labelNames: ['route', 'service', 'instance', 'protocol', 'grpc_status', 'status'], registers: all, collect: flush,
    });
    this.#latency = new LatencyHistogram({ name: 'switchyard_lb_request_seconds', help: 'Request latency through the balancer', labelNames: ['route', 'service'], buckets: LATENCY_BUCKETS, registers: all });
    const retries = new Counter({ name: 'switchyard_lb_retries_total', help: 'Retries on another instance', labelNames: ['service', 'reason'], registers: all });
    const limited = new Counter({ name: 'switchyard_lb_limited_total', help: 'Requests refused by a route\'s limits (reason: concurrency or rate)', labelNames: ['route', 'reason'], registers: all });
    const mirrored = new Counter({ name: 'switchyard_lb_mirrored_total', help: 'Copies of requests for a route\'s mirror, by outcome (sent, dropped, failed, skipped)', labelNames: ['route', 'service', 'outcome'], registers: all });
    this.#ejections = new Counter({ name: 'switchyard_lb_ejections_total', help: 'Passive-health ejections', labelNames: ['instance', 'reason'], registers: all });
    // A primary sums its workers' metrics with its own: the table in use is the newest of them, not a sum.
    this.#generation = new Gauge({ name: 'switchyard_lb_table_generation', help: 'Version of the routing table in use', registers: all, aggregator: 'max' });
    this.#builtAt = new Gauge({ name: 'switchyard_lb_table_built_timestamp_seconds', help: 'When the routing table in use was built', registers: all, aggregator: 'max' });
    const f = o.facts;
    new Gauge({ name: 'switchyard_lb_in_flight', help: 'Requests in flight per instance', labelNames: ['instance'], registers: all, collect() {
      this.reset();
      for (const [instance, n] of f.inFlight()) this.set({ instance }, n);
    } });
    // One series per instance, its current state = 1 (HAProxy's server status), for alerts on ejections
    // that outlast a blip. A primary shows the worst any worker has: max over the workers' series.
    new Gauge({ name: 'switchyard_lb_upstream_state', help: 'Each instance of the table in use, by what the balancer makes of it: ejected, draining, held, warning or passing (1 for the current state)', labelNames: ['service', 'instance', 'state'], registers: all, aggregator: 'max', collect() {
      this.reset();
      for (const [service, instance, state] of f.upstreamStates()) this.set({ service, instance, state }, 1);
    } });
    new Gauge({ name: 'switchyard_lb_registry_connected', help: '1 while the registry answers', registers: following, collect() { this.set(f.registry()?.connected ? 1 : 0); } });
    new Gauge({ name: 'switchyard_lb_registry_last_contact_seconds', help: 'Seconds since the registry last answered (registry lag)', registers: following, collect() {
      const t = f.registry()?.lastContact ?? 0;
      this.set(t === 0 ? -1 : (Date.now() - t) / 1000);
    } });
    new Gauge({ name: 'switchyard_lb_registry_stale', help: '1 while a registry watch has heard nothing for longer than its blocking wait plus the stale margin', registers: following, collect() { this.set(f.registry()?.stale ? 1 : 0); } });
    this.#changeLatency = new Histogram({
      name: 'switchyard_lb_change_latency_seconds', help: 'From a registry change being committed to the table swap (stage="swap") and to the first request routed by that table (stage="first_request"); clock="arrival" when the registry does not say when it committed (Consul)',
      labelNames: ['stage', 'clock'], buckets: [...CHANGE_BUCKETS], registers: o.serving ? all : [],
    });
    this.#guardHolds = new Counter({ name: 'switchyard_lb_guard_holds_total', help: 'Instances the mass-loss guard held in the table after they left the registry', labelNames: ['service'], registers: following });
    new Gauge({ name: 'switchyard_lb_guard_held_instances', help: 'Instances the mass-loss guard holds in the table now', labelNames: ['service'], registers: following, collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const service of f.heldServices()) counts.set(service, (counts.get(service) ?? 0) + 1);
      for (const [service, n] of counts) this.set({ service }, n);
    } });
    new Gauge({ name: 'switchyard_lb_draining_pools', help: 'Upstream pools draining after removal', registers: all, collect() { this.set(f.drainingPools()); } });
    this.#h2Refused = new Counter({ name: 'switchyard_lb_h2_refused_total', help: 'HTTP/2 client connections closed or streams reset for abuse or a limit (rapid_reset, control_flood, flood, oversized_headers, stalled_stream, unresponsive)', labelNames: ['reason'], registers: all });
    new Gauge({ name: 'switchyard_lb_h2_sessions', help: 'HTTP/2 client connections open', registers: all, collect() { this.set(f.h2Sessions()); } });
    const idle = new Counter({ name: 'switchyard_lb_idle_tunnels_closed_total', help: 'Upgrade tunnels (kind="upgrade", by route) and TCP route connections (kind="tcp", by listener) closed after timeouts.tunnel without a byte either way', labelNames: ['kind', 'route'], registers: all });
    this.#idleTunnels = idle;
    this.#udpSessions = new Counter({
      name: 'switchyard_lb_udp_sessions_total',
      help: 'UDP route sessions opened, and datagrams from new clients dropped (no_instance, too_many: the route holds max-sessions), by listener',
      labelNames: ['listen', 'service', 'outcome'], registers: all,
    });
    this.#udpDatagrams = new Counter({ name: 'switchyard_lb_udp_datagrams_total', help: 'UDP route datagrams, in (from clients) and out (to clients)', labelNames: ['listen', 'direction'], registers: all });
    this.#udpBytes = new Counter({ name: 'switchyard_lb_udp_bytes_total', help: 'UDP route payload bytes, in (from clients) and out (to clients)', labelNames: ['listen', 'direction'], registers: all });
    this.#proxyRefused = new Counter({
      name: 'switchyard_lb_proxy_protocol_refused_total',
      help: 'Connections from a proxy-protocol.trusted sender closed for their PROXY protocol header, by listener and reason (missing, malformed, timeout, closed)',
      labelNames: ['listener', 'reason'], registers: all,
    });
    this.#connRefused = new Counter({ name: 'switchyard_lb_client_conns_refused_total', help: 'Client connections refused by limits.max-conns-per-client, by listener (http: answered 429; tls, tcp: closed)', labelNames: ['listener'], registers: all });
    this.#tcp = new Counter({ name: 'switchyard_lb_tcp_connections_total', help: 'TCP route connections by listener and outcome', labelNames: ['listen', 'service', 'outcome'], registers: all });

    const children = this.#children;
    const requests = this.#requests;
    const latency = this.#latency;
    this.proxy = {
      request(route: CompiledRoute, up: Upstream | undefined, status: number, seconds: number, protocol = 'http/1.1', grpcStatus?: number) {
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
      tunnelIdle(route) {
        idle.inc({ kind: 'upgrade', route: route.spec.origin });
      },
    };
  }

  /** Hands the requests counted since the last flush to prom-client. */
  flush(): void {
    for (const byUp of this.#children.values()) for (const byStatus of byUp.values()) for (const ch of byStatus.values()) {
      if (ch.n > 0) {
        ch.c.inc(ch.n);
        ch.n = 0;
      }
    }
  }

  /** A new table is in use: the per-route children of the old one are flushed and let go. */
  tableSwapped(version: number, builtAtMs: number): void {
    this.#generation.set(version);
    this.#builtAt.set(builtAtMs / 1000);
    this.flush();
    this.#children.clear();
  }

  ejected(instance: string, reason: string): void {
    this.#ejections.inc({ instance, reason: reason.includes('outlier') ? 'outlier' : 'max_fails' });
  }

  guardHeld(service: string, instances: number): void {
    this.#guardHolds.inc({ service }, instances);
  }

  changeLatency(stage: string, seconds: number, clock: string): void {
    this.#changeLatency.observe({ stage, clock }, seconds);
  }

  h2Refused(reason: string): void {
    this.#h2Refused.inc({ reason });
  }

  tcpConnection(listen: string, service: string, connected: boolean): void {
    this.#tcp.inc({ listen, service, outcome: connected ? 'connected' : 'failed' });
  }

  tcpIdleClosed(listen: string): void {
    this.#idleTunnels.inc({ kind: 'tcp', route: listen });
  }

  udpSession(listen: string, service: string, outcome: string): void {
    this.#udpSessions.inc({ listen, service, outcome });
  }

  /** Per datagram: the labelled series are looked up once per listener and direction. */
  udpDatagram(listen: string, direction: 'in' | 'out', bytes: number): void {
    const key = `${listen}\0${direction}`;
    let c = this.#udpChildren.get(key);
    if (c === undefined) {
      c = { datagrams: this.#udpDatagrams.labels(listen, direction), bytes: this.#udpBytes.labels(listen, direction) };
      this.#udpChildren.set(key, c);
    }
    c.datagrams.inc();
    c.bytes.inc(bytes);
  }

  proxyProtocolRefused(listener: string, reason: string): void {
    this.#proxyRefused.inc({ listener, reason });
  }

  connRefused(listener: string): void {
    this.#connRefused.inc({ listener });
  }

  async read(): Promise<LbStatsSample> {
    const requests: RequestCount[] = [];
    for (const v of (await this.#requests.get()).values) {
      const l = v.labels;
      const gs = String(l.grpc_status ?? '');
      requests.push({
        route: String(l.route ?? ''), service: String(l.service ?? ''), instance: String(l.instance ?? ''), protocol: String(l.protocol ?? ''),
        grpcStatus: gs === '' ? undefined : Number(gs), status: Number(l.status), count: v.value,
      });
    }
    const latency = cumulativeBy((await this.#latency.get()).values, (l) => String(l.route ?? ''), [...LATENCY_BUCKETS, Infinity]);
    const ejections = new Map<string, number>();
    for (const v of (await this.#ejections.get()).values) {
      const id = String(v.labels.instance ?? '');
      ejections.set(id, (ejections.get(id) ?? 0) + v.value);
    }
    const changeValues = (await this.#changeLatency.get()).values;
    const byStage = cumulativeBy(changeValues, (l) => String(l.stage ?? ''), [...CHANGE_BUCKETS, Infinity]);
    const sums: Record<string, number> = {};
    for (const v of changeValues) if (v.metricName?.endsWith('_sum')) sums[String(v.labels.stage)] = (sums[String(v.labels.stage)] ?? 0) + v.value;
    const empty: Buckets = { bounds: [...CHANGE_BUCKETS, Infinity], counts: [...CHANGE_BUCKETS, Infinity].map(() => 0) };
    const stage = (s: ChangeStage): { buckets: Buckets; sumSeconds: number } => ({ buckets: byStage.get(s) ?? empty, sumSeconds: sums[s] ?? 0 });
    return { requests, latency, ejections, changeLatency: { swap: stage('swap'), first_request: stage('first_request') } };
  }
}

type LabelledValue = { value: number; labels: Record<string, string | number | undefined>; metricName?: string };

/** Sums a histogram's `_bucket` series by one label into cumulative counts aligned on `bounds`. */
function cumulativeBy(values: readonly LabelledValue[], key: (labels: LabelledValue['labels']) => string, bounds: readonly number[]): Map<string, Buckets> {
  const index = new Map(bounds.map((b, i) => [b, i]));
  const out = new Map<string, number[]>();
  for (const v of values) {
    if (!v.metricName?.endsWith('_bucket')) continue;
    const i = index.get(v.labels.le === '+Inf' ? Infinity : Number(v.labels.le));
    if (i === undefined) continue;
    const k = key(v.labels);
    let counts = out.get(k);
    if (!counts) out.set(k, (counts = bounds.map(() => 0)));
    counts[i] = (counts[i] ?? 0) + v.value;
  }
  return new Map([...out].map(([k, counts]) => [k, { bounds, counts }]));
}
