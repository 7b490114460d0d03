/** The load balancer's static configuration: flags and a YAML file with the same keys, validated and frozen. */
import { deepFreeze } from '../core/freeze.js';
import { z } from 'zod';
import { IP_OR_CIDR_MESSAGE, isIpOrCidr } from '../core/ip-list.js';
import { allowedHostList, goDuration, goDurationBetween, hostPort as hostPort_, msFrom } from './fields.js';
import { STRATEGY_NAMES, UPSTREAM_PROTOCOLS } from './route-spec.js';
import type { HashBy, RetrySettings, RouteLimits, RouteSpec, StickyCookie, StrategyName, UpstreamProtocol } from './route-spec.js';

const duration = goDuration;
const hostPort = hostPort_('127.0.0.1:9080');
const strategy = z.enum(STRATEGY_NAMES);
const hashBy = z.union([
  z.literal('ip'),
  z.strictObject({ header: z.string().min(1) }),
  z.strictObject({ cookie: z.string().min(1) }),
]);

const splitSchema = z.strictObject({
  tags: z.array(z.string()).optional(),
  meta: z.record(z.string(), z.string()).optional(),
  weight: z.number().gt(0, { message: 'must be more than 0' }).max(100),
});

const limitsSchema = z.strictObject({
  'max-concurrent': z.number().int().min(1).optional(),
  rate: z.strictObject({
    'per-second': z.number().gt(0, { message: 'must be more than 0' }),
    burst: z.number().int().min(1).optional(),
    by: z.union([z.literal('ip'), z.strictObject({ header: z.string().min(1) })]).optional(),
  }).optional(),
});

const routeSchema = z.strictObject({
  host: z.string().regex(/^(\*\.)?[A-Za-z0-9.-]+$/, { message: 'must be a host name or *.domain' }).optional(),
  path: z.string().startsWith('/', { message: 'must start with "/"' }).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  service: z.string().min(1),
  tags: z.array(z.string()).optional(),
  'strip-prefix': z.string().startsWith('/', { message: 'must start with "/"' }).optional(),
  balance: strategy.optional(),
  'hash-by': hashBy.optional(),
  /** Weighted subsets (canaries), e.g. [{ tags: [v1], weight: 90 }, { meta: { version: v2 }, weight: 10 }]. */
  split: z.array(splitSchema).min(1).optional(),
  /** Keep a client in its split subset by IP, header or cookie. */
  sticky: hashBy.optional(),
  'slow-start': duration.optional(),
  mirror: z.strictObject({ service: z.string().min(1), percent: z.number().gt(0, { message: 'must be more than 0' }).max(100) }).optional(),
  limits: limitsSchema.optional(),
  /** What the instances speak: http (HTTP/1.1), https (HTTP/1.1 over TLS), h2c, h2 (TLS), grpc, grpcs (TLS). */
  protocol: z.enum(UPSTREAM_PROTOCOLS as [UpstreamProtocol, ...UpstreamProtocol[]]).optional(),
  'tls-skip-verify': z.boolean().optional(),
  'tls-server-name': z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, { message: 'must be a DNS name, e.g. "api.internal"' }).optional(),
  'tls-ca': z.string().min(1).optional(),
  /** Mutual TLS: the certificate (PEM, leaf then chain) and its key, shown to instances that ask for one. */
  'tls-cert': z.string().min(1).optional(),
  'tls-key': z.string().min(1).optional(),
  /** Set a cookie naming the instance that answered, and send a client that returns it back there. */
  'sticky-cookie': z.strictObject({
    name: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { message: 'must be a cookie name (letters, digits and !#$%&\'*+-.^_`|~)' }),
    /** Absent: a session cookie (gone when the browser closes). */
    'max-age': duration.optional(),
    path: z.string().regex(/^\/[\x21-\x3a\x3c-\x7e]*$/, { message: 'must be a path starting with "/", without spaces or ";"' }).optional(),
    /** Absent: Secure when the client came over TLS. */
    secure: z.boolean().optional(),
    'http-only': z.boolean().optional(),
    'same-site': z.enum(['lax', 'strict', 'none']).optional(),
  }).refine((c) => c['same-site'] !== 'none' || c.secure === true, {
    message: 'same-site: none needs secure: true (browsers drop a SameSite=None cookie without Secure)', path: ['same-site'],
  }).optional(),
  /** This route's own upstream timeouts; the others are the balancer's. */
  timeouts: z.strictObject({ header: duration.optional(), idle: duration.optional(), total: duration.optional() }).optional(),
  /** This route's own number of attempts (1: never retried); the retry budget stays the balancer's. */
  retries: z.strictObject({ attempts: z.number().int().min(1).max(10).optional() }).optional(),
}).refine((r) => !(r['tls-skip-verify'] === true && r['tls-ca'] !== undefined), {
  message: 'tls-skip-verify and tls-ca contradict each other: a CA is only used to verify', path: ['tls-ca'],
}).refine((r) => (r['tls-cert'] === undefined) === (r['tls-key'] === undefined), {
  message: 'tls-cert and tls-key go together: a certificate is shown with its key', path: ['tls-key'],
});

export const lbConfigSchema = z.strictObject({
  listen: hostPort.optional(),
  registry: z.string().min(1).optional(),
  token: z.string().optional(),
  service: z.string().min(1).optional(),
  'admin-addr': hostPort.optional(),
  /** With the admin address on loopback, Host names it also answers under (besides localhost, IPs and single labels). */
  'admin-allowed-hosts': allowedHostList.optional(),
  /** Register this balancer in the registry under this service name (with a health check). */
  'register-as': z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { message: 'must be a service name (letters, digits, "-", "_", ".")' }).optional(),
  /** The address registered for this balancer (default: the listen host, or 127.0.0.1 for a wildcard). */
  'advertise-addr': z.string().regex(/^[^\s/]+$/, { message: 'must be an IP address or host name' }).optional(),
  workers: z.number().int().min(1).max(64).optional(),
  /** Connections each listener may accept per event-loop turn (nginx's multi_accept; 1: libuv's one). */
  'accept-batch': z.number().int().min(1).max(256).optional(),
  'state-file': z.string().min(1).optional(),
  'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).optional(),
  'access-log': z.boolean().optional(),
  balance: strategy.optional(),
  'hash-by': hashBy.optional(),
  'data-plane': z.enum(['fast', 'node']).optional(),
  /**
   * Connections from these addresses (a load balancer in front) must begin with a PROXY protocol
   * header (v1 or v2), whose client address then stands for the connection; from others none is read.
   */
  'proxy-protocol': z.strictObject({ trusted: z.array(z.string().refine(isIpOrCidr, { message: IP_OR_CIDR_MESSAGE })).min(1) }).optional(),
  /** Requests from these addresses (CIDR or plain IPs) may ask for X-Switchyard-Explain: 1. */
  explain: z.strictObject({ from: z.array(z.string().refine(isIpOrCidr, { message: IP_OR_CIDR_MESSAGE })).min(1) }).optional(),
  timeouts: z.strictObject({
    connect: duration.optional(),
    header: duration.optional(),
    idle: duration.optional(),
    total: duration.optional(),
    'client-header': duration.optional(),
    'drain': duration.optional(),
    /** An Upgrade tunnel or TCP route connection with no byte either way for this long is closed; 0s: never. */
    tunnel: duration.optional(),
    /** At start, the listeners open once the first routing table is built, or after this long without one; 0s: at once. */
    'first-table': duration.optional(),
  }).optional(),
  limits: z.strictObject({
    'max-header-size': z.number().int().min(1024).max(1 << 20).optional(),
    /** Header fields in one request or response head (both directions); beyond it: 431 / 502. */
    'max-header-count': z.number().int().min(16).max(10_000).optional(),
    'max-body': z.number().int().min(0).optional(),
    /** Connections one client address may hold open on all listeners together (per worker); 0: no limit. */
    'max-conns-per-client': z.number().int().min(0).optional(),
    /** Addresses (IPs, CIDR blocks) the per-client limit does not apply to: a proxy or NAT in front. */
    'max-conns-exempt': z.array(z.string().refine(isIpOrCidr, { message: IP_OR_CIDR_MESSAGE })).optional(),
  }).optional(),
  retries: z.strictObject({
    attempts: z.number().int().min(1).max(10).optional(),
    'budget-percent': z.number().min(0).max(100).optional(),
    'min-concurrency': z.number().int().min(0).optional(),
  }).optional(),
  'passive-health': z.strictObject({
    'max-fails': z.number().int().min(0).optional(),
    'fail-timeout': duration.optional(),
    'consecutive-5xx': z.number().int().min(0).optional(),
    'base-ejection': duration.optional(),
    'max-ejection': duration.optional(),
    'panic-threshold': z.number().min(0).max(100).optional(),
  }).optional(),
  /** The mass-loss guard: more than max-drop % of a service's instances gone at once (not by failing checks) are held for `hold`. */
  guard: z.strictObject({
    'max-drop': z.number().min(0).max(100).optional(),
    hold: goDurationBetween(1e9, 3600e9, 'must be a Go duration from 1s to 1h, e.g. "30s"').optional(),
  }).optional(),
  /** The registry watches: blocking wait per query, and the silence beyond it (plus wait/16 of jitter) that counts as stale. */
  watch: z.strictObject({
    wait: goDurationBetween(100e6, 600e9, 'must be a Go duration from 100ms to 10m (Consul caps waits at 10m), e.g. "60s"').optional(),
    'stale-margin': goDurationBetween(100e6, 3600e9, 'must be a Go duration from 100ms to 1h, e.g. "5s"').optional(),
  }).optional(),
  routes: z.array(routeSchema).optional(),
  /** The HTTP/2 listener side (h2 on the TLS listener, h2c prior knowledge on the plain one) and its limits. */
  http2: z.strictObject({
    enabled: z.boolean().optional(),
    'max-concurrent-streams': z.number().int().min(1).max(10_000).optional(),
    'initial-window-size': z.number().int().min(65_535).max(2 ** 31 - 1).optional(),
    'max-session-memory': z.number().int().min(1).max(1024).optional(),
    'max-resets-per-second': z.number().int().min(1).optional(),
    'max-control-frames-per-second': z.number().int().min(1).optional(),
    'keepalive-time': goDurationBetween(100e6, 3600e9, 'must be a Go duration from 100ms to 1h, e.g. "5s"').optional(),
    'keepalive-timeout': goDurationBetween(100e6, 3600e9, 'must be a Go duration from 100ms to 1h, e.g. "10s"').optional(),
  }).optional(),
  tcp: z.array(z.strictObject({
    listen: hostPort, service: z.string().min(1), balance: strategy.optional(),
    /** Write a PROXY protocol header (v1 or v2) to the instance first, naming the client (HAProxy's send-proxy). */
    'send-proxy': z.enum(['v1', 'v2']).optional(),
  })).optional(),
  udp: z.array(z.strictObject({
    listen: hostPort, service: z.string().min(1), balance: strategy.optional(),
    /** A client's session (its socket to the instance) ends after this long without a datagram either way. */
    'idle-timeout': goDurationBetween(100e6, 3600e9, 'must be a Go duration from 100ms to 1h, e.g. "30s"').optional(),
    /** Sessions (one socket each) this route holds at most; datagrams from new clients beyond it are dropped. */
    'max-sessions': z.number().int().min(1).max(1_000_000).optional(),
  })).optional(),
  tls: z.strictObject({
    listen: hostPort,
    certs: z.array(z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })).min(1),
  }).optional(),
});

export type LbConfigInput = z.infer<typeof lbConfigSchema>;

export interface LbConfig {
  readonly listen: string;
  readonly registry: string;
  readonly token: string | undefined;
  readonly adminAddr: string | undefined;
  readonly adminAllowedHosts: readonly string[];
  readonly registerAs: string | undefined;
  readonly advertiseAddr: string | undefined;
  readonly workers: number;
  /** Connections each listener may accept per event-loop turn (src/cli/wiring/accept-batch.ts). */
  readonly acceptBatch: number;
  readonly stateFile: string | undefined;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly accessLog: boolean;
  readonly routes: readonly RouteSpec[];
  readonly defaultBalance: StrategyName;
  readonly defaultHashBy: HashBy | undefined;
  /** fast: our own HTTP/1.1 parser over raw sockets (src/proxy/fast/); node: Node's http server + undici. */
  readonly dataPlane: 'fast' | 'node';
  readonly timeouts: { connectMs: number; headerMs: number; idleMs: number; totalMs: number; clientHeaderMs: number; drainMs: number; tunnelMs: number; firstTableMs: number };
  readonly limits: { maxHeaderSize: number; maxHeaderCount: number; maxBody: number; maxConnsPerClient: number; maxConnsExempt: readonly string[] };
  readonly retries: RetrySettings;
  readonly passiveHealth: { maxFails: number; failTimeoutMs: number; consecutive5xx: number; baseEjectionMs: number; maxEjectionMs: number; panicThreshold: number };
  readonly tcp: readonly { listen: string; service: string; balance: StrategyName; sendProxy?: 'v1' | 'v2' }[];
  readonly udp: readonly { listen: string; service: string; balance: StrategyName; idleTimeoutMs: number; maxSessions: number }[];
  readonly tls: { listen: string; certs: readonly { cert: string; key: string }[] } | undefined;
  /** Client addresses allowed to ask for explanations (empty: nobody). */
  readonly explainFrom: readonly string[];
  /** Senders whose connections start with a PROXY protocol header (undefined: off). */
  readonly proxyProtocol: { readonly trusted: readonly string[] } | undefined;
  /** Mass-loss guard (maxDropPercent 100: off). */
  readonly guard: { readonly maxDropPercent: number; readonly holdMs: number };
  /** Registry watches: blocking wait and stale margin. */
  readonly watch: { readonly waitMs: number; readonly staleMarginMs: number };
  readonly http2: H2Settings;
}

/** The HTTP/2 listener side: on/off and its limits (see docs/http2.md). */
export interface H2Settings {
  readonly enabled: boolean;
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced to clients. */
  readonly maxConcurrentStreams: number;
  /** Receive window per stream and per connection (bytes). */
  readonly initialWindowSize: number;
  /** nghttp2's memory per session (MB); past it new streams are refused. */
  readonly maxSessionMemoryMb: number;
  /** Client resets of unanswered streams per second (over a 10 s window) before GOAWAY (rapid reset). */
  readonly maxResetsPerSecond: number;
  /** SETTINGS + PING frames from a client per second (over a 10 s window) before GOAWAY. */
  readonly maxControlFramesPerSecond: number;
  /** A connection without frames either way for this long is sent a PING (client and instance side). */
  readonly keepaliveTimeMs: number;
  /** A PING not acknowledged within this: the connection is destroyed. */
  readonly keepaliveTimeoutMs: number;
}

const ms = msFrom;

function toHashBy(h: z.infer<typeof hashBy> | undefined): HashBy | undefined {
  if (h === undefined) return undefined;
  if (h === 'ip') return { kind: 'ip' };
  if ('header' in h) return { kind: 'header', name: h.header.toLowerCase() };
  return { kind: 'cookie', name: h.cookie };
}

function toStickyCookie(c: { name: string; 'max-age'?: string | undefined; path?: string | undefined; secure?: boolean | undefined; 'http-only'?: boolean | undefined; 'same-site'?: 'lax' | 'strict' | 'none' | undefined }): StickyCookie {
  const sameSite = c['same-site'] ?? 'lax';
  const maxAge = c['max-age'] !== undefined ? `; Max-Age=${Math.floor(ms(c['max-age'], 0) / 1000)}` : '';
  return {
    name: c.name,
    // HttpOnly unless asked otherwise: scripts have no business with the balancer's choice.
    attributes: `; Path=${c.path ?? '/'}${maxAge}${c['http-only'] === false ? '' : '; HttpOnly'}; SameSite=${sameSite[0]!.toUpperCase()}${sameSite.slice(1)}`,
    secure: c.secure,
  };
}

function toLimits(l: z.infer<typeof limitsSchema>): RouteLimits {
  const rate = l.rate;
  return {
    maxConcurrent: l['max-concurrent'] ?? 0,
    ...(rate ? { rate: { perSecond: rate['per-second'], burst: rate.burst ?? Math.max(1, Math.ceil(rate['per-second'])), by: toHashBy(rate.by ?? 'ip') as HashBy } } : {}),
  };
}

/** Flags win over the file; defaults follow nginx/Envoy where they have one. */
export function resolveLbConfig(file: LbConfigInput, flags: LbConfigInput): LbConfig {
  const c = { ...file, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) } as LbConfigInput;
  const balance = c.balance ?? 'round_robin';
  const defaultHashBy = toHashBy(c['hash-by']);
  const t = c.timeouts ?? {};
  const timeouts = {
    connectMs: ms(t.connect, 2000), headerMs: ms(t.header, 60_000), idleMs: ms(t.idle, 60_000), totalMs: ms(t.total, 0),
    clientHeaderMs: ms(t['client-header'], 10_000), drainMs: ms(t.drain, 30_000),
    // HAProxy's documented `timeout tunnel`: long enough for any WebSocket that pings, short enough
    // that a peer gone without a FIN (a laptop closed, a NAT entry dropped) does not hold two sockets for good.
    tunnelMs: ms(t.tunnel, 3_600_000),
    // Envoy holds its listeners until the first discovery answers (initial_fetch_timeout, 15 s); a
    // registry on the same host answers in milliseconds, and one that is down should not keep the
    // balancer's port closed for long.
    firstTableMs: ms(t['first-table'], 5_000),
  };
  const retries = { attempts: c.retries?.attempts ?? 3, budgetPercent: c.retries?.['budget-percent'] ?? 20, minConcurrency: c.retries?.['min-concurrency'] ?? 10 };
  const routes: RouteSpec[] = (c.routes ?? []).map((r, i) => {
    const rt = r.timeouts;
    const hb = toHashBy(r['hash-by']) ?? defaultHashBy;
    return {
      origin: `config:routes[${i}]`,
      pathPrefix: r.path ?? '/',
      headers: Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
      service: r.service,
      tags: r.tags ?? [],
      balance: r.balance ?? balance,
      ...(r.host ? { host: r.host.toLowerCase() } : {}),
      ...(r['strip-prefix'] ? { stripPrefix: r['strip-prefix'] } : {}),
      ...(hb ? { hashBy: hb } : {}),
      ...(r.split ? { split: r.split.map((x) => ({ tags: x.tags ?? [], meta: Object.entries(x.meta ?? {}), weight: x.weight })) } : {}),
      ...(r.sticky ? { sticky: toHashBy(r.sticky) as HashBy } : {}),
      ...(r['slow-start'] ? { slowStartMs: ms(r['slow-start'], 0) } : {}),
      ...(r.mirror ? { mirror: { service: r.mirror.service, percent: r.mirror.percent } } : {}),
      ...(r.limits ? { limits: toLimits(r.limits) } : {}),
      ...(r.protocol ? { protocol: r.protocol } : {}),
      ...(r['tls-skip-verify'] ? { tlsSkipVerify: true } : {}),
      ...(r['tls-server-name'] ? { tlsServerName: r['tls-server-name'].toLowerCase() } : {}),
      ...(r['tls-ca'] ? { tlsCaFile: r['tls-ca'] } : {}),
      ...(r['tls-cert'] && r['tls-key'] ? { tlsClientCertificate: { certFile: r['tls-cert'], keyFile: r['tls-key'] } } : {}),
      ...(r['sticky-cookie'] ? { stickyCookie: toStickyCookie(r['sticky-cookie']) } : {}),
      ...(rt ? { timeouts: { headerMs: ms(rt.header, timeouts.headerMs), idleMs: ms(rt.idle, timeouts.idleMs), totalMs: ms(rt.total, timeouts.totalMs) } } : {}),
      ...(r.retries ? { retries: { ...retries, attempts: r.retries.attempts ?? retries.attempts } } : {}),
    };
  });
  if (c.service) {
    routes.push({ origin: '--service', pathPrefix: '/', headers: [], service: c.service, tags: [], balance, ...(defaultHashBy ? { hashBy: defaultHashBy } : {}) });
  }
  const ph = c['passive-health'] ?? {};
  return deepFreeze({
    listen: c.listen ?? '127.0.0.1:9080',
    registry: c.registry ?? 'http://127.0.0.1:8500',
    token: c.token,
    adminAddr: c['admin-addr'],
    adminAllowedHosts: c['admin-allowed-hosts'] ?? [],
    registerAs: c['register-as'],
    advertiseAddr: c['advertise-addr'],
    workers: c.workers ?? 1,
    // Enough for a burst of new connections to be taken in a few turns; idle, the extra descriptors cost nothing.
    acceptBatch: c['accept-batch'] ?? 16,
    stateFile: c['state-file'],
    logLevel: c['log-level'] ?? 'info',
    accessLog: c['access-log'] ?? false,
    routes,
    defaultBalance: balance,
    defaultHashBy,
    dataPlane: c['data-plane'] ?? 'fast',
    timeouts,
    limits: {
      maxHeaderSize: c.limits?.['max-header-size'] ?? 16 * 1024, maxHeaderCount: c.limits?.['max-header-count'] ?? 1000, maxBody: c.limits?.['max-body'] ?? 0,
      // Off by default: behind a CDN, another proxy or a NAT every client has the same address.
      maxConnsPerClient: c.limits?.['max-conns-per-client'] ?? 0, maxConnsExempt: c.limits?.['max-conns-exempt'] ?? [],
    },
    retries,
    passiveHealth: {
      maxFails: ph['max-fails'] ?? 3, failTimeoutMs: ms(ph['fail-timeout'], 10_000), consecutive5xx: ph['consecutive-5xx'] ?? 5,
      baseEjectionMs: ms(ph['base-ejection'], 10_000), maxEjectionMs: ms(ph['max-ejection'], 300_000), panicThreshold: ph['panic-threshold'] ?? 50,
    },
    tcp: (c.tcp ?? []).map((x) => ({ listen: x.listen, service: x.service, balance: x.balance ?? balance, ...(x['send-proxy'] ? { sendProxy: x['send-proxy'] } : {}) })),
    // Idle 30 s: longer than a DNS or syslog exchange, short enough that clients do not pile up sockets.
    udp: (c.udp ?? []).map((x) => ({
      listen: x.listen, service: x.service, balance: x.balance ?? balance, idleTimeoutMs: ms(x['idle-timeout'], 30_000), maxSessions: x['max-sessions'] ?? 1024,
    })),
    tls: c.tls,
    explainFrom: c.explain?.from ?? [],
    proxyProtocol: c['proxy-protocol'],
    guard: { maxDropPercent: c.guard?.['max-drop'] ?? 50, holdMs: ms(c.guard?.hold, 30_000) },
    watch: { waitMs: ms(c.watch?.wait, 60_000), staleMarginMs: ms(c.watch?.['stale-margin'], 5000) },
    http2: {
      enabled: c.http2?.enabled ?? true,
      maxConcurrentStreams: c.http2?.['max-concurrent-streams'] ?? 128,
      initialWindowSize: c.http2?.['initial-window-size'] ?? 1024 * 1024,
      maxSessionMemoryMb: c.http2?.['max-session-memory'] ?? 32,
      maxResetsPerSecond: c.http2?.['max-resets-per-second'] ?? 50,
      maxControlFramesPerSecond: c.http2?.['max-control-frames-per-second'] ?? 100,
      keepaliveTimeMs: ms(c.http2?.['keepalive-time'], 5000),
      keepaliveTimeoutMs: ms(c.http2?.['keepalive-timeout'], 10_000),
    },
  });
}

/** The shortest response-header and idle timeouts of the balancer's and its routes' (the planes' timers tick finer than it). */
export function shortestUpstreamTimeoutMs(t: LbConfig['timeouts'], routes: readonly RouteSpec[]): number {
  let m = Math.min(t.headerMs, t.idleMs);
  for (const r of routes) if (r.timeouts !== undefined) m = Math.min(m, r.timeouts.headerMs, r.timeouts.idleMs);
  return m;
}

/**
 * How often a plane's ticker walks its exchanges for timeouts: a quarter of the shortest of
 * `timeoutsMs` (so a timeout fires at most a quarter late), between 50 ms and 1 s.
 */
export function tickMsFor(...timeoutsMs: number[]): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(...timeoutsMs, 4000) / 4)));
}

/** The L4 routes (TCP and UDP): each has a group in the routing table (tcpGroupKey) and a service to follow. */
export function l4Routes(cfg: LbConfig): readonly { readonly service: string; readonly balance: StrategyName }[] {
  return [...cfg.tcp, ...cfg.udp];
}
