/**
 * The request core both HTTP data planes share: what one proxied request is (route, method, target,
 * hash key, request id), how it picks and holds an instance, the retry bookkeeping, and how it ends
 * (in-flight release, counters, metrics, access log). Each plane's exchange extends it with its own
 * I/O, so the lifecycle exists once, not once per plane.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { hash32, stickyToken } from '../../balancer/index.js';
import type { PickContext, Upstream, UpstreamState, UpstreamStates } from '../../balancer/index.js';
import type { Random } from '../../core/clock.js';
import type { LbConfig } from '../../config/lb.js';
import type { HashBy, UpstreamTimeouts } from '../../config/route-spec.js';
import { upstreamProtocol } from '../../routing/snapshot.js';
import type { CompiledRoute, RouteSplit, UpstreamGroup } from '../../routing/snapshot.js';
import type { SnapshotStore } from '../../routing/snapshot-store.js';
import type { PassiveHealth } from '../passive-health.js';
import type { UpstreamTls, UpstreamTlsFlavours } from '../upstream-tls.js';
import { ExplainTrace } from './explain.js';
import type { RouteAdmission, Refusal } from './limits.js';
import { mayRetry } from './retry-policy.js';

export interface ProxyMetrics {
  /**
   * One finished exchange: status 0 means the client went away first. `protocol` is what the
   * client spoke (http/1.1 unless said), `grpcStatus` a gRPC call's final status.
   */
  request(route: CompiledRoute, upstream: Upstream | undefined, status: number, seconds: number, protocol?: ClientProtocol, grpcStatus?: number): void;
  retry(route: CompiledRoute, reason: string): void;
  /** A request refused by the route's limits (reason: concurrency or rate). */
  limited(route: CompiledRoute, reason: string): void;
  /** A copy sent to the route's mirror (outcome: sent, dropped, failed, skipped). */
  mirrored(route: CompiledRoute, outcome: string): void;
  /** An Upgrade tunnel closed after `timeouts.tunnel` without a byte either way. */
  tunnelIdle(route: CompiledRoute): void;
}

/** What a client spoke to the balancer. */
export type ClientProtocol = 'http/1.1' | 'h2';

/** Requests and retries in flight across every plane: the retry budget's base. */
export class RequestCounters {
  activeRequests = 0;
  activeRetries = 0;
  /** When the last "out of local resources" warning was logged (they are logged at most every 10 s). */
  resourceWarnedAt = 0;
}

/**
 * X-Request-Id values: UUID-shaped, a random per-process prefix and a counter from a random start.
 * Unique (not secret: nothing may rely on guessing them being hard), and cheaper than a random
 * UUID per request, which was a visible share of the fast plane's CPU.
 */
export class RequestIds {
  /** The current id as ASCII bytes; its last 12 hex digits count up in place. */
  readonly #id: Buffer;

  constructor() {
    const r = randomBytes(16).toString('hex');
    // Version 4 and variant bits, so the values still parse as UUIDs.
    const variant = ((parseInt(r[16] as string, 16) & 3) | 8).toString(16);
    this.#id = Buffer.from(`${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(13, 16)}-${variant}${r.slice(17, 20)}-${r.slice(20, 32)}`, 'latin1');
  }

  next(): string {
    const b = this.#id;
    // Increment the 12 hex digits (wrapping after 2^48 ids).
    for (let i = 35; i >= 24; i--) {
      const c = b[i]!;
      if (c === 0x39) {
        b[i] = 0x61;
        break;
      }
      if (c !== 0x66) {
        b[i] = c + 1;
        break;
      }
      b[i] = 0x30;
    }
    return b.latin1Slice(0, 36);
  }
}

/** What every plane's requests share: instance state, passive health, config, metrics and logs. */
export interface RequestDeps {
  /** The live routing table: a retry picks from its current group, not the one the request started on. */
  readonly snapshots: SnapshotStore;
  readonly states: UpstreamStates;
  readonly health: PassiveHealth;
  readonly config: LbConfig;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  /** Access log sink (JSON lines); undefined when access logging is off. */
  readonly accessLog?: Logger | undefined;
  readonly counters: RequestCounters;
  readonly ids: RequestIds;
  /** Split draws without a sticky key, and mirror draws. */
  readonly random: Random;
  readonly admission: RouteAdmission;
  /** Whether a client address may ask for X-Switchyard-Explain (undefined: nobody may). */
  readonly explainFrom?: ((ip: string) => boolean) | undefined;
  /** How each route checks its TLS instances' certificates. */
  readonly upstreamTls: UpstreamTlsFlavours;
}

const EMPTY_CTX: PickContext = Object.freeze({});

/** The TLS flavour for a mirrored copy to `up`: TLS when the mirror service's instance says it speaks https (meta protocol). */
export function mirrorTls(d: RequestDeps, route: CompiledRoute, up: Upstream): UpstreamTls | undefined {
  return up.protocol === 'https' ? d.upstreamTls.for(route.spec) : undefined;
}

/** A handshake or certificate failure (Node's ERR_TLS_/ERR_SSL_ codes, OpenSSL's verify codes): worth its message in a 502. */
export function isTlsErrorCode(code: string): boolean {
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|ISSUER|LEAF_SIGNATURE|HOSTNAME_MISMATCH/.test(code);
}

/** Errors raised before anything reached the upstream: safe to retry for any method. */
export const CONNECT_ERRORS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** A connection reset or closed before any response byte: the instance's process went away. */
export const GONE_ERRORS: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UPSTREAM_CLOSED', 'UND_ERR_SOCKET']);

/**
 * The balancer's own resources ran out (file descriptors, socket buffers, memory) while opening or
 * using an upstream connection. No instance is at fault: counting these as instance failures let
 * anyone who opens enough client connections get every healthy instance ejected, and a retry on
 * another instance meets the same limit.
 */
export const RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

/** The response-header timeout's error code (both planes report it under undici's name). */
export const HEADERS_TIMEOUT = 'UND_ERR_HEADERS_TIMEOUT';

export abstract class ProxyRequest {
  readonly core: RequestDeps;
  started = performance.now();
  route!: CompiledRoute;
  method = '';
  /** The request target as the client sent it (for the access log). */
  url = '';
  host: string | undefined;
  clientIp = '';
  hashKey: string | undefined;
  requestId = '';
  /** The instance of the current (or last) attempt. */
  up: Upstream | undefined;
  /** The state whose in-flight count this request holds (released once per attempt). */
  held: UpstreamState | undefined;
  /** The group this request picks from: the route's, or the subset its split drew. */
  group: UpstreamGroup | undefined;
  /** The sticky split key and the rate-limit key, when the route has either. */
  splitKey: string | undefined;
  rateKey: string | undefined;
  /** The instance token of the route's sticky cookie, when the client sent one. */
  stickyToken: string | undefined;
  /** Counted in its route's admission (released by settle()). */
  admitted = false;
  /** Set when the client asked for an explanation and may have one. */
  explain: ExplainTrace | undefined;
  /** What the last retried attempt failed with: the answer when no instance is left to try. */
  lastFailure: { status: number; body: string } | undefined;
  attempts = 0;
  /** Instances already tried, excluded from the next pick. */
  tried: Set<string> | undefined;
  isRetry = false;
  /** The last attempt failed because its instance was not there (see RetryAttempt.uncharged). */
  upstreamGone = false;
  finished = false;
  status = 0;
  /** What the client speaks (fixed per plane). */
  clientProtocol: ClientProtocol = 'http/1.1';
  /** A gRPC call's final grpc-status, once known. */
  grpcStatus: number | undefined;

  constructor(core: RequestDeps) {
    this.core = core;
  }

  /**
   * Makes a finished request new again, for a plane that keeps one object per connection (fewer
   * short-lived objects: fewer and shorter GC pauses). Every field above is reset here.
   */
  resetCore(): void {
    this.started = performance.now();
    this.method = '';
    this.url = '';
    this.host = undefined;
    this.hashKey = undefined;
    this.requestId = '';
    this.up = undefined;
    this.held = undefined;
    this.group = undefined;
    this.splitKey = undefined;
    this.rateKey = undefined;
    this.stickyToken = undefined;
    this.admitted = false;
    this.explain = undefined;
    this.lastFailure = undefined;
    this.attempts = 0;
    this.tried = undefined;
    this.isRetry = false;
    this.upstreamGone = false;
    this.finished = false;
    this.status = 0;
    this.grpcStatus = undefined;
  }

  /** Counts the request in flight; every begun request is ended by settle(). */
  begin(): void {
    this.core.counters.activeRequests++;
  }

  /**
   * Reads what the route keys on from the request: its hash key, sticky split key and rate-limit
   * key (`header` returns a header's value by lower-case name; "cookie" gives the Cookie header).
   * Planes call it only when the route needs one of them.
   */
  readKeys(header: (lowerName: string) => string | undefined): void {
    const r = this.route;
    if (r.spec.hashBy !== undefined) this.hashKey = hashKeyFor(r.spec.hashBy, this.clientIp, header);
    if (r.split?.sticky !== undefined) this.splitKey = hashKeyFor(r.split.sticky, this.clientIp, header);
    const rate = r.spec.limits?.rate;
    if (rate !== undefined) this.rateKey = hashKeyFor(rate.by, this.clientIp, header);
    if (r.spec.stickyCookie !== undefined) this.stickyToken = cookieValue(header('cookie'), r.spec.stickyCookie.name);
  }

  /** True when the route keys on something readKeys() reads. */
  needsKeys(): boolean {
    const r = this.route;
    return r.spec.hashBy !== undefined || r.split?.sticky !== undefined || r.spec.limits?.rate !== undefined || r.spec.stickyCookie !== undefined;
  }

  /** The route's limits: undefined when admitted (counted until settle()), else why not. */
  admit(): Refusal | undefined {
    const limits = this.route.spec.limits;
    if (limits === undefined) return undefined;
    const refusal = this.core.admission.admit(this.route.spec.origin, limits, this.rateKey);
    if (refusal !== undefined) this.core.metrics.limited(this.route, refusal.reason);
    else this.admitted = true;
    return refusal;
  }

  /** Starts an explanation when the client asked (`value` of X-Switchyard-Explain) and may. */
  startExplain(value: string | undefined, table: number): void {
    const allowed = this.core.explainFrom;
    if (value === undefined || allowed === undefined || value.trim() !== '1' || !allowed(this.clientIp)) return;
    this.explain = new ExplainTrace(this.route, table);
  }

  /** Whether this request is one of the route's mirrored share. */
  drawMirror(): boolean {
    const m = this.route.spec.mirror;
    return m !== undefined && this.route.mirror !== undefined && this.core.random.next() * 100 < m.percent;
  }

  #drawSubset(split: RouteSplit): UpstreamGroup {
    // A sticky key always lands in the same subset (while the weights stay); otherwise a weighted draw.
    const r = this.splitKey !== undefined ? hash32(this.splitKey) / 4294967296 : this.core.random.next();
    const c = split.cumulative;
    for (let i = 0; i < c.length; i++) if (r < c[i]!) return split.groups[i] as UpstreamGroup;
    return split.groups[split.groups.length - 1] as UpstreamGroup;
  }

  /**
   * A retry's group as the table has it now. The request kept the group it started on; when the
   * table swapped meanwhile (a scale-down: instances deregistered, then stopped), that group still
   * lists instances that are gone, and a retry drawn from it can spend every attempt on them.
   */
  #currentGroup(g: UpstreamGroup): UpstreamGroup {
    return this.core.snapshots.current?.groups.get(g.key) ?? g;
  }

  /** Picks the next instance (never one already tried) and holds its in-flight count; undefined: none left. */
  pick(): Upstream | undefined {
    const tried = this.tried;
    const key = this.hashKey;
    const route = this.route;
    const split = route.split;
    let g = this.group;
    if (g === undefined) g = this.group = split === undefined ? route.group : this.#drawSubset(split);
    else if (tried !== undefined) g = this.group = this.#currentGroup(g);
    const ctx = key === undefined ? (tried ? { exclude: tried } : EMPTY_CTX) : (tried ? { hashKey: key, exclude: tried } : { hashKey: key });
    this.explain?.sawGroup(g, this.core.states, split !== undefined);
    // The instance the client's sticky cookie names, while picks could return it; else a pick as usual.
    const token = this.stickyToken;
    let up = token !== undefined ? g.strategy.pickSticky?.(token, ctx) : undefined;
    up ??= g.strategy.pick(ctx);
    if (up === undefined && split !== undefined) {
      // The drawn subset has nobody left to try: serving the request beats keeping the split exact.
      for (const other of split.groups) {
        if (other === g) continue;
        up = other.strategy.pick(ctx);
        if (up !== undefined) {
          this.group = other;
          this.explain?.sawGroup(other, this.core.states, true);
          break;
        }
      }
    }
    if (up === undefined) return undefined;
    this.explain?.picked(up);
    this.up = up;
    const st = this.core.states.get(up.id);
    st.inFlight++;
    this.held = st;
    this.attempts++;
    return up;
  }

  releaseHeld(): void {
    const st = this.held;
    if (st === undefined) return;
    this.held = undefined;
    st.inFlight--;
  }

  /** Retry when attempts and the budget allow, and the request can be replayed. */
  canRetry(safeForAnyMethod: boolean, bodySent: boolean): boolean {
    return mayRetry({
      attempts: this.attempts, finished: this.finished, method: this.method, safeForAnyMethod, bodySent, uncharged: this.upstreamGone,
    }, this.route.spec.retries ?? this.core.config.retries, this.core.counters);
  }

  /**
   * Books a retry of the current attempt's instance (which failed with `failure`, the answer the
   * client gets if no instance is left to try); the plane then starts the next attempt.
   */
  noteRetry(reason: string, failure: { status: number; body: string }): void {
    this.lastFailure = failure;
    (this.tried ??= new Set()).add((this.up as Upstream).id);
    this.explain?.outcome(reason);
    this.core.metrics.retry(this.route, reason);
    if (!this.isRetry) {
      this.isRetry = true;
      this.core.counters.activeRetries++;
    }
  }

  /** The answer when pick() found nobody: the last attempt's failure after retries, else 503 (with Retry-After). */
  noInstanceAnswer(): { status: number; body: string; retryAfter: boolean } {
    const f = this.lastFailure;
    return f !== undefined ? { ...f, retryAfter: false } : { status: 503, body: this.noInstanceBody(), retryAfter: true };
  }

  /** The status answer after retries through the 5xx answers of every instance. */
  statusFailure(status: number): { status: number; body: string } {
    const up = this.up as Upstream;
    return { status, body: `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} answered ${status}, and no other instance was left to try\n` };
  }

  /** The 503 body when pick() found nobody. */
  noInstanceBody(): string {
    return this.route.group.upstreams.length > 0
      ? `switchyard: no healthy instance of ${this.route.spec.service} left to try\n`
      : `switchyard: no healthy instance of ${this.route.spec.service}\n`;
  }

  /**
   * The answer when the balancer itself ran out of a resource (RESOURCE_ERRORS): 503, never charged to
   * the instance, never retried; the operator hears of it in the log (at most every 10 s).
   */
  resourceFailure(code: string): { status: number; body: string } {
    const c = this.core;
    const now = Date.now();
    if (now - c.counters.resourceWarnedAt >= 10_000) {
      c.counters.resourceWarnedAt = now;
      c.logger.warn({ code, service: this.route.spec.service }, code === 'EMFILE' || code === 'ENFILE'
        ? 'out of file descriptors: requests are answered 503 until connections close; raise the limit (ulimit -n, systemd LimitNOFILE)'
        : 'out of memory or socket buffers: requests are answered 503');
    }
    return { status: 503, body: `switchyard: the balancer is out of local resources (${code}); try again\n` };
  }

  /** Status and body for an attempt that failed with `code` and no retry left. */
  failureAnswer(code: string, message: string): { status: number; body: string } {
    const up = this.up as Upstream;
    if (code === HEADERS_TIMEOUT) return { status: 504, body: `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} did not answer in time\n` };
    const why = code === 'BAD_RESPONSE' ? `bad response (${message})` : isTlsErrorCode(code) ? `TLS: ${message} (${code})` : code || message;
    return { status: 502, body: `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} failed: ${why}\n` };
  }

  /** The upstream timeouts of this request's route: its own, else the balancer's. */
  timeouts(): UpstreamTimeouts {
    return this.route.spec.timeouts ?? this.core.config.timeouts;
  }

  /**
   * The Set-Cookie value naming the instance that answered, when the route is sticky by cookie and
   * the client did not already send that one; `tls`: the client connection is TLS (Secure by default).
   */
  stickySetCookie(tls: boolean): string | undefined {
    const c = this.route.spec.stickyCookie;
    const up = this.up;
    if (c === undefined || up === undefined) return undefined;
    const token = stickyToken(up.id);
    if (token === this.stickyToken) return undefined;
    return `${c.name}=${token}${c.attributes}${(c.secure ?? tls) ? '; Secure' : ''}`;
  }

  /** The TLS flavour for an attempt on `up` over HTTP/1.1, or undefined when it speaks plain HTTP. */
  h1Tls(up: Upstream): UpstreamTls | undefined {
    return upstreamProtocol(this.route, up) === 'https' ? this.core.upstreamTls.for(this.route.spec) : undefined;
  }

  /** Ends the request's accounting, once: in-flight release, counters, metrics and the access log. */
  settle(status: number): void {
    this.finished = true;
    this.releaseHeld();
    const c = this.core;
    if (this.admitted) {
      this.admitted = false;
      c.admission.release(this.route.spec.origin);
    }
    c.counters.activeRequests--;
    if (this.isRetry) c.counters.activeRetries--;
    const seconds = (performance.now() - this.started) / 1000;
    c.metrics.request(this.route, this.up, status, seconds, this.clientProtocol, this.grpcStatus);
    const log = c.accessLog;
    if (log) {
      const up = this.up;
      log.info({
        method: this.method, url: this.url, host: this.host, status, ms: Math.round(seconds * 1e5) / 100,
        route: this.route.spec.origin, service: this.route.spec.service, upstream: up ? `${up.address}:${up.port}` : null,
        attempts: this.attempts, client: this.clientIp, requestId: this.requestId, protocol: this.clientProtocol,
        upstreamProtocol: up ? upstreamProtocol(this.route, up) : null, ...(this.grpcStatus !== undefined ? { grpcStatus: this.grpcStatus } : {}),
      });
      if (this.explain !== undefined) log.debug({ requestId: this.requestId, explain: this.explain.record() }, 'request explained');
    }
  }
}

/** A request's key by `hb`: the client IP, a header's value, or a cookie's. */
export function hashKeyFor(hb: HashBy, clientIp: string, header: (lowerName: string) => string | undefined): string | undefined {
  if (hb.kind === 'ip') return clientIp;
  if (hb.kind === 'header') return header(hb.name);
  return cookieValue(header('cookie'), hb.name);
}

function cookieValue(cookie: string | undefined, name: string): string | undefined {
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The path forwarded upstream: the route's strip prefix removed (query kept). */
export function rewritePath(url: string, strip: string | undefined): string | undefined {
  if (strip === undefined || !url.startsWith(strip)) return undefined;
  const rest = url.slice(strip.length);
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest[0] === '/' ? rest : `/${rest}`;
}
