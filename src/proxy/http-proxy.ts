/**
 * The HTTP data plane: match a route on the captured snapshot, pick an upstream, forward with
 * undici's dispatch API (streaming both ways with backpressure), retry what is safe to retry,
 * and feed passive health. One Exchange object per request carries its state; no closures are
 * created per request on the common path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Duplex, Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { LbConfig } from '../config/lb.js';
import type { CompiledRoute } from '../routing/snapshot.js';
import type { SnapshotStore } from '../routing/snapshot-store.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import type { PassiveHealth } from './passive-health.js';
import { RETRY_STATUS, mayRetry } from './retry-policy.js';
import type { UpstreamPools } from './upstream-pools.js';

export interface ProxyMetrics {
  /** One finished exchange: status 0 means the client went away first. */
  request(route: CompiledRoute, upstream: Upstream | undefined, status: number, seconds: number): void;
  retry(route: CompiledRoute, reason: string): void;
}

export interface ProxyDeps {
  snapshots: SnapshotStore;
  pools: UpstreamPools;
  states: UpstreamStates;
  health: PassiveHealth;
  config: LbConfig;
  metrics: ProxyMetrics;
  logger: Logger;
  /** Access log sink (JSON lines); undefined when access logging is off. */
  accessLog?: Logger;
}

/** Errors raised before anything reached the upstream: safe to retry for any method. */
const CONNECT_ERRORS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

export class HttpProxy {
  readonly d: ProxyDeps;
  activeRequests = 0;
  activeRetries = 0;

  constructor(deps: ProxyDeps) {
    this.d = deps;
  }

  handle(req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https'): void {
    const snap = this.d.snapshots.current;
    if (snap === undefined) {
      plain(res, 503, 'switchyard: no routing table yet (waiting for the registry)\n', { 'Retry-After': '1' });
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const route = snap.match(req.headers.host, path, req.headers);
    if (route === undefined) {
      plain(res, 404, `switchyard: no route for ${req.headers.host ?? ''}${path}\n`);
      return;
    }
    const max = this.d.config.limits.maxBody;
    if (max > 0 && Number(req.headers['content-length'] ?? 0) > max) {
      plain(res, 413, `switchyard: request body larger than ${max} bytes\n`, { Connection: 'close' });
      return;
    }
    new Exchange(this, req, res, route, url, proto).start();
  }

  /** WebSocket and other Upgrade requests: tunnelled to an upstream picked like any request. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, proto: 'http' | 'https'): void {
    const snap = this.d.snapshots.current;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const route = snap?.match(req.headers.host, q < 0 ? url : url.slice(0, q), req.headers);
    const hashKey = hashKeyOf(route, req);
    const up = route?.group.strategy.pick(hashKey === undefined ? EMPTY_CTX : { hashKey });
    if (!route || !up) {
      socket.end(`HTTP/1.1 ${route ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const state = this.d.states.get(up.id);
    state.inFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      state.inFlight--;
    };
    // undici adds Connection/Upgrade itself for an upgrade dispatch and refuses them in the header list.
    const { headers } = upstreamRequestHeaders(req.rawHeaders, { clientIp: req.socket.remoteAddress ?? '', proto });
    socket.on('error', () => socket.destroy());
    this.d.pools.get(up).dispatch({
      path: rewritePath(url, route), method: req.method as Dispatcher.HttpMethod, headers, upgrade: req.headers.upgrade ?? 'websocket',
      headersTimeout: this.d.config.timeouts.headerMs,
    }, {
      onConnect: () => undefined,
      onUpgrade: (statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex) => {
        const lines = [`HTTP/1.1 ${statusCode} Switching Protocols`];
        const h = rawHeaders ?? [];
        for (let i = 0; i < h.length; i += 2) lines.push(`${String(h[i])}: ${String(h[i + 1])}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket).pipe(upstream);
        const done = (): void => {
          release();
          upstream.destroy();
          socket.destroy();
        };
        upstream.on('error', done).on('close', done);
        socket.on('close', done);
      },
      onError: (err: Error) => {
        release();
        this.d.health.failure(up.id);
        this.d.logger.debug({ err: err.message, upstream: up.id }, 'upgrade to upstream failed');
        socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
      onHeaders: (statusCode: number) => {
        // The upstream refused the upgrade with a normal response; pass the status on and close.
        release();
        socket.end(`HTTP/1.1 ${statusCode} Upgrade Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return false;
      },
      onData: () => false,
      onComplete: () => undefined,
    } as unknown as Dispatcher.DispatchHandler);
  }
}

function hashKeyOf(route: CompiledRoute | undefined, req: IncomingMessage): string | undefined {
  const hb = route?.spec.hashBy;
  if (!hb) return undefined;
  if (hb.kind === 'ip') return req.socket.remoteAddress;
  if (hb.kind === 'header') {
    const v = req.headers[hb.name];
    return Array.isArray(v) ? v[0] : v;
  }
  const cookie = req.headers.cookie;
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === hb.name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function rewritePath(url: string, route: CompiledRoute): string {
  const strip = route.spec.stripPrefix;
  if (strip === undefined || !url.startsWith(strip)) return url;
  const rest = url.slice(strip.length);
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest[0] === '/' ? rest : `/${rest}`;
}

function plain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

/**
 * One client request through its attempts. Implements undici's (legacy, fastest) dispatch handler
 * interface directly, so an attempt allocates nothing but the dispatch options.
 */
class Exchange {
  readonly p: HttpProxy;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: CompiledRoute;
  readonly url: string;
  readonly proto: 'http' | 'https';
  readonly started = performance.now();
  headers: string[] | undefined;
  requestId = '';
  upstream: Upstream | undefined;
  /** The upstream whose in-flight count this exchange holds (released once per attempt). */
  held: Upstream | undefined;
  hasBody = false;
  /** The last attempt failed before anything was sent (connect error). */
  upstreamRefused = false;
  tried: Set<string> | undefined;
  attempts = 0;
  isRetry = false;
  responded = false;
  finished = false;
  abortUpstream: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  drainListening = false;
  totalTimer: NodeJS.Timeout | undefined;
  status = 0;

  constructor(p: HttpProxy, req: IncomingMessage, res: ServerResponse, route: CompiledRoute, url: string, proto: 'http' | 'https') {
    this.p = p;
    this.req = req;
    this.res = res;
    this.route = route;
    this.url = url;
    this.proto = proto;
  }

  start(): void {
    this.p.activeRequests++;
    // Shared listener functions find the exchange on the response: no closures per request.
    (this.res as ExchangeRes)[kExchange] = this;
    this.res.on('close', onResClose);
    const total = this.p.d.config.timeouts.totalMs;
    if (total > 0) this.totalTimer = setTimeout(onTotalTimeout, total, this);
    this.attempt();
  }

  clientClosed(): void {
    if (this.finished) return;
    // The client went away mid-exchange: stop the upstream side too. finish() first, so the
    // abort's onError is not taken for an upstream failure.
    const abort = this.abortUpstream;
    this.finish(0);
    abort?.(CLIENT_GONE);
  }

  totalTimeout(): void {
    if (this.finished) return;
    const abort = this.abortUpstream;
    if (!this.responded) this.fail(504, 'switchyard: upstream did not answer within the total timeout\n');
    else {
      this.res.destroy();
      this.finish(this.status);
    }
    abort?.(TOTAL_TIMEOUT);
  }

  attempt(): void {
    const ctxKey = hashKeyOf(this.route, this.req);
    const up = this.route.group.strategy.pick(
      ctxKey === undefined ? (this.tried ? { exclude: this.tried } : EMPTY_CTX) : (this.tried ? { hashKey: ctxKey, exclude: this.tried } : { hashKey: ctxKey }),
    );
    if (up === undefined) {
      const any = this.route.group.upstreams.length > 0;
      this.fail(503, any
        ? `switchyard: no healthy instance of ${this.route.spec.service} left to try\n`
        : `switchyard: no healthy instance of ${this.route.spec.service}\n`, { 'Retry-After': '1' });
      return;
    }
    this.upstream = up;
    this.held = up;
    this.attempts++;
    this.p.d.states.get(up.id).inFlight++;
    if (this.headers === undefined) {
      const h = upstreamRequestHeaders(this.req.rawHeaders, { clientIp: this.req.socket.remoteAddress ?? '', proto: this.proto });
      this.headers = h.headers;
      this.requestId = h.requestId;
    }
    const hasBody = this.req.headers['content-length'] !== undefined ? this.req.headers['content-length'] !== '0' : this.req.headers['transfer-encoding'] !== undefined;
    this.hasBody = hasBody;
    const t = this.p.d.config.timeouts;
    this.p.d.pools.get(up).dispatch({
      path: rewritePath(this.url, this.route),
      method: this.req.method as Dispatcher.HttpMethod,
      headers: this.headers,
      body: hasBody ? this.body() : null,
      headersTimeout: t.headerMs,
      bodyTimeout: t.idleMs,
    }, this as unknown as Dispatcher.DispatchHandler);
  }

  /** The request body for undici; a chunked body is metered against the body limit as it streams. */
  body(): Readable {
    const max = this.p.d.config.limits.maxBody;
    if (max <= 0 || this.req.headers['content-length'] !== undefined) return this.req;
    let seen = 0;
    const meter = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        seen += chunk.length;
        if (seen > max) {
          this.bodyTooLarge = true;
          cb(new Error(`request body larger than ${max} bytes`));
        } else cb(null, chunk);
      },
    });
    this.req.pipe(meter);
    return meter;
  }

  bodyTooLarge = false;

  // ---- undici dispatch handler (legacy interface) ----

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx informational: wait for the final response.
    const up = this.upstream as Upstream;
    this.p.d.health.response(up.id, statusCode);
    // A 5xx answer means the request reached an instance: retried for idempotent methods only.
    if (RETRY_STATUS.has(statusCode) && this.canRetry(false)) {
      // Abort this attempt before starting the next: both use this handler, and the aborted one
      // reports RETRIED, which onError ignores.
      const abort = this.abortUpstream;
      this.abortUpstream = undefined;
      this.releaseUpstream();
      abort?.(RETRIED);
      this.scheduleRetry(`status ${statusCode}`);
      return false;
    }
    this.responded = true;
    this.status = statusCode;
    const h = clientResponseHeaders(rawHeaders);
    if (this.requestId) h.push('x-request-id', this.requestId);
    this.res.writeHead(statusCode, statusText, h);
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return false;
    const ok = this.res.write(chunk);
    if (!ok && !this.drainListening) {
      // resume (from onHeaders) stays valid for the whole response: one listener serves every stall.
      this.drainListening = true;
      this.res.on('drain', onResDrain);
    }
    return ok;
  }

  onComplete(): void {
    if (this.finished) return;
    this.releaseUpstream();
    this.res.end();
    this.finish(this.status);
  }

  onError(err: Error & { code?: string }): void {
    if (this.finished || err === RETRIED || err === CLIENT_GONE || err === TOTAL_TIMEOUT) return;
    const up = this.upstream as Upstream;
    this.releaseUpstream();
    if (this.bodyTooLarge) {
      // The client's fault, not the upstream's: no passive-health penalty.
      this.fail(413, `switchyard: request body larger than ${this.p.d.config.limits.maxBody} bytes\n`, { Connection: 'close' });
      return;
    }
    this.p.d.health.failure(up.id);
    if (this.responded) {
      // Part of the response is already on its way: all we can do is cut the client connection.
      this.p.d.logger.debug({ err: err.message, upstream: up.id }, 'upstream failed mid-response');
      this.res.destroy();
      this.finish(this.status);
      return;
    }
    const code = err.code ?? '';
    const beforeSend = CONNECT_ERRORS.has(code);
    this.upstreamRefused = beforeSend;
    if (this.canRetry(beforeSend)) {
      this.scheduleRetry(code || err.message);
      return;
    }
    if (code === 'UND_ERR_HEADERS_TIMEOUT') this.fail(504, `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} did not answer in time\n`);
    else this.fail(502, `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} failed: ${code || err.message}\n`);
  }

  // ---- attempts ----

  /** Retry when attempts and the budget allow, and the request can be replayed. */
  canRetry(safeForAnyMethod: boolean): boolean {
    return mayRetry({
      attempts: this.attempts, finished: this.finished, method: this.req.method ?? 'GET', safeForAnyMethod,
      bodySent: this.hasBody && this.req.readableDidRead, refused: this.upstreamRefused,
    }, this.p.d.config.retries, this.p);
  }

  scheduleRetry(reason: string): void {
    (this.tried ??= new Set()).add((this.upstream as Upstream).id);
    this.p.d.metrics.retry(this.route, reason);
    if (!this.isRetry) {
      this.isRetry = true;
      this.p.activeRetries++;
    }
    this.abortUpstream = undefined;
    this.attempt();
  }

  releaseUpstream(): void {
    const up = this.held;
    if (up === undefined) return;
    this.held = undefined;
    this.p.d.states.get(up.id).inFlight--;
  }

  fail(status: number, body: string, extra?: Record<string, string>): void {
    if (this.finished) return;
    this.status = status;
    plain(this.res, status, body, extra);
    this.finish(status);
  }

  finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseUpstream();
    if (this.totalTimer) clearTimeout(this.totalTimer);
    this.res.off('close', onResClose);
    if (this.drainListening) this.res.off('drain', onResDrain);
    this.p.activeRequests--;
    if (this.isRetry) this.p.activeRetries--;
    const seconds = (performance.now() - this.started) / 1000;
    this.p.d.metrics.request(this.route, this.upstream, status, seconds);
    const log = this.p.d.accessLog;
    if (log) {
      log.info({
        method: this.req.method, url: this.url, host: this.req.headers.host, status, ms: Math.round(seconds * 1e5) / 100,
        route: this.route.spec.origin, service: this.route.spec.service, upstream: this.upstream ? `${this.upstream.address}:${this.upstream.port}` : null,
        attempts: this.attempts, client: this.req.socket.remoteAddress, requestId: this.requestId,
      });
    }
  }
}

const EMPTY_CTX = Object.freeze({});
const RETRIED = new Error('retried on another instance');
const CLIENT_GONE = new Error('client closed the connection');
const TOTAL_TIMEOUT = new Error('total timeout');

const kExchange = Symbol('switchyard.exchange');
type ExchangeRes = ServerResponse & { [kExchange]?: Exchange };

function onResClose(this: ExchangeRes): void {
  this[kExchange]?.clientClosed();
}

function onResDrain(this: ExchangeRes): void {
  this[kExchange]?.resume?.();
}

function onTotalTimeout(ex: Exchange): void {
  ex.totalTimeout();
}
