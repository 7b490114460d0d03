/**
 * The Node data plane (`--data-plane node`): Node's http server parses, undici forwards (its
 * dispatch API, streaming both ways with backpressure). Routing, picking, retries, passive health
 * and the finish come from the request core it shares with the fast plane; the strictness the
 * fast plane's parser enforces is checked here on what Node's parser let through, so a request
 * means the same on either plane.
 */
import { ServerResponse } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import type { Duplex, Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Upstream } from '../../balancer/index.js';
import { forwardedPath, http2OnlyReason } from '../../routing/snapshot.js';
import { CONNECT_ERRORS, GONE_ERRORS, RESOURCE_ERRORS, ProxyRequest, mirrorTls } from '../core/request.js';
import type { RequestDeps } from '../core/request.js';
import { RETRY_STATUS } from '../core/retry-policy.js';
import { parseRequestTarget } from '../core/target.js';
import { isH2cUpgrade } from '../h2/preface.js';
import { clientResponseHeaders, strictnessProblem, upstreamRequestHeaders } from './headers.js';
import type { UpstreamPools } from './pools.js';
import { clientIp } from '../../core/client-peer.js';

export interface ProxyDeps extends RequestDeps {
  readonly pools: UpstreamPools;
}

/**
 * undici refusing the request itself (a shape it will not send): the client's request is at fault,
 * not the instance — answered 400, never retried, never a passive-health failure.
 */
const LOCAL_ERRORS: ReadonlySet<string> = new Set([
  'UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR', 'ERR_HTTP_INVALID_HEADER_VALUE',
]);

const RETRIED = new Error('retried on another instance');
const CLIENT_GONE = new Error('client closed the connection');
const TOTAL_TIMEOUT = new Error('total timeout');

export class HttpProxy {
  readonly d: ProxyDeps;
  /** Responses in progress per client socket: a parse error behind one must not cut it short. */
  readonly #pending = new WeakMap<Socket, ServerResponse>();
  /** Connections answered with a refusal: they close after it, and nothing behind it is served. */
  readonly #refused = new WeakSet<Socket>();
  /** Mirror copies in flight (bounded: beyond 64 a copy is dropped). */
  #mirrors = 0;

  /** X-Request-Id for requests that bring none. */
  readonly newId: () => string;

  constructor(deps: ProxyDeps) {
    this.d = deps;
    this.newId = () => deps.ids.next();
  }

  handle(req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https'): void {
    // After a refusal the connection is over: requests Node still parses behind it are not served.
    if (this.#refused.has(req.socket)) return;
    const problem = strictnessProblem(req, this.d.config.limits.maxHeaderCount);
    if (problem !== undefined) {
      this.#refuse(req, res, problem.status, problem.error);
      return;
    }
    const target = parseRequestTarget(req.url ?? '/');
    if ('error' in target) {
      this.#refuse(req, res, target.status, target.error);
      return;
    }
    const snap = this.d.snapshots.current;
    if (snap === undefined) {
      plain(res, 503, 'switchyard: no routing table yet (waiting for the registry)\n', { 'Retry-After': '1' });
      return;
    }
    const host = target.authority ?? req.headers.host;
    const route = snap.match(host, target.path, req.headers);
    if (route === undefined) {
      plain(res, 404, `switchyard: no route for ${host ?? ''}${target.path}\n`);
      return;
    }
    const h2only = http2OnlyReason(route);
    if (h2only !== undefined) {
      plain(res, 505, `switchyard: ${h2only}\n`);
      return;
    }
    if (snap.routedAt === 0) snap.markRouted();
    const max = this.d.config.limits.maxBody;
    if (max > 0 && Number(req.headers['content-length'] ?? 0) > max) {
      plain(res, 413, `switchyard: request body larger than ${max} bytes\n`, { Connection: 'close' });
      return;
    }
    const socket = req.socket;
    this.#pending.set(socket, res);
    res.once('finish', () => {
      if (this.#pending.get(socket) === res) this.#pending.delete(socket);
    });
    const ex = new Exchange(this, req, res, proto);
    ex.route = route;
    ex.host = host;
    ex.path = `${forwardedPath(route, target.path)}${target.query}`;
    ex.authority = target.authority;
    if (ex.needsKeys()) ex.readKeys((n) => headerValue(req, n));
    if (this.d.explainFrom !== undefined) ex.startExplain(headerValue(req, 'x-switchyard-explain'), snap.version);
    const refusal = ex.admit();
    if (refusal !== undefined) {
      plain(res, refusal.status, `switchyard: ${refusal.message}\n`, { 'Retry-After': String(refusal.retryAfterS) });
      return;
    }
    if (route.mirror !== undefined && ex.drawMirror()) this.#mirror(ex, req);
    ex.start();
  }

  /**
   * A fire-and-forget copy for the route's mirror. This plane copies requests without a body only
   * (the body is a stream the primary consumes); others are counted as skipped.
   */
  #mirror(ex: Exchange, req: IncomingMessage): void {
    const route = ex.route;
    const group = route.mirror;
    const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (group === undefined || hasBody) {
      this.d.metrics.mirrored(route, 'skipped');
      return;
    }
    const up = this.#mirrors < 64 ? group.strategy.pick({}) : undefined;
    if (up === undefined) {
      this.d.metrics.mirrored(route, 'dropped');
      return;
    }
    this.#mirrors++;
    const { headers } = upstreamRequestHeaders(req.rawHeaders, { clientIp: ex.clientIp, proto: ex.proto, host: ex.authority, newId: this.newId });
    void this.d.pools.get(up).for(mirrorTls(this.d, route, up)).request({ path: ex.path, method: ex.method as Dispatcher.HttpMethod, headers, headersTimeout: 30_000, bodyTimeout: 30_000 })
      .then((r) => r.body.dump())
      .then(() => 'sent', () => 'failed')
      .then((outcome) => {
        this.#mirrors--;
        this.d.metrics.mirrored(route, outcome);
      });
  }

  /** A refusal for the request's own shape: answered with the reason, and the connection closes after it. */
  #refuse(req: IncomingMessage, res: ServerResponse, status: number, reason: string): void {
    // req.socket, not res.socket: a pipelined response has no socket until the ones before it are done.
    this.#refused.add(req.socket);
    plain(res, status, `switchyard: ${reason}\n`, { Connection: 'close' });
  }

  /**
   * Node's parser refused bytes on a connection (its 'clientError'). Whatever was already taken
   * is answered first, then the connection closes, so one bad request never costs another's answer:
   * - after a refusal of ours: nothing more (the client was told why);
   * - in the body of the request being served: that request gets 400 and goes no further;
   * - behind a request being answered: that answer, then a 400 for the bad bytes (none after
   *   `Connection: close`, whose connection ends with its answer anyway);
   * - otherwise a 400 (431, 408) with the reason.
   */
  onClientError(err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
    const reason = err.code === 'HPE_HEADER_OVERFLOW' ? 'header section too large' : err.reason ?? err.message;
    const answer = (status: string): string => {
      const body = `switchyard: ${reason}\n`;
      return `HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
    };
    if (this.#refused.has(socket)) {
      if (!socket.writableEnded) socket.end();
      return;
    }
    this.#refused.add(socket);
    const res = this.#pending.get(socket);
    if (res !== undefined && !res.writableFinished) {
      const ex = (res as ExchangeRes)[kExchange];
      if (ex !== undefined && !ex.req.complete && !res.headersSent) {
        ex.badRequestBody(reason);
        return;
      }
      // Node ends a connection that does not stay open once the answer is out; one that stays open
      // gets the 400 for the bad bytes after its answer, then ends.
      if (res.shouldKeepAlive) res.once('finish', () => socket.end(answer('400 Bad Request')));
      return;
    }
    if (socket.writable && !socket.destroyed) {
      socket.end(answer(err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'));
    } else socket.destroy();
  }

  /** WebSocket and other Upgrade requests: tunnelled to an upstream picked like any request. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, proto: 'http' | 'https'): void {
    socket.on('error', () => socket.destroy());
    if (isH2cUpgrade(req.headers.upgrade) && (req.headers['content-length'] ?? '0') === '0' && req.headers['transfer-encoding'] === undefined) {
      // `Upgrade: h2c` is ignored, as on the fast plane: answered over HTTP/1.1, then the connection
      // closes (Node's parser has stopped reading it). Upgrade and HTTP2-Settings are hop-by-hop.
      const res = new ServerResponse(req);
      res.shouldKeepAlive = false;
      res.assignSocket(socket as Socket);
      res.on('finish', () => {
        res.detachSocket(socket as Socket);
        socket.end();
      });
      this.handle(req, res, proto);
      return;
    }
    const refuse = (status: string, reason: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
    };
    const problem = strictnessProblem(req, this.d.config.limits.maxHeaderCount);
    const target = parseRequestTarget(req.url ?? '/');
    if (problem !== undefined || 'error' in target) {
      refuse('400 Bad Request', `switchyard: ${problem?.error ?? (target as { error: string }).error}\n`);
      return;
    }
    // undici sends an upgrade's body only once switched; a refusal would lose it. The fast plane serves these.
    if ((req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
      refuse('400 Bad Request', 'switchyard: an Upgrade request with a body is not served by the node data plane (the fast plane serves it)\n');
      return;
    }
    const host = target.authority ?? req.headers.host;
    const route = this.d.snapshots.current?.match(host, target.path, req.headers);
    if (!route) {
      refuse('404 Not Found', `switchyard: no route for ${host ?? ''}${target.path}\n`);
      return;
    }
    const t = new Tunnel(this.d, req, socket, head);
    t.route = route;
    t.host = host;
    if (t.needsKeys()) t.readKeys((n) => headerValue(req, n));
    const refusal = t.admit();
    if (refusal !== undefined) {
      refuse(refusal.status === 429 ? '429 Too Many Requests' : '503 Service Unavailable', `switchyard: ${refusal.message}\n`);
      return;
    }
    const up = t.pick();
    if (!up) {
      refuse('503 Service Unavailable', t.noInstanceBody());
      return;
    }
    t.begin();
    // undici adds Connection/Upgrade itself for an upgrade dispatch and refuses them in the header list.
    const { headers, requestId } = upstreamRequestHeaders(req.rawHeaders, { clientIp: t.clientIp, proto, host: target.authority, newId: this.newId });
    t.requestId = requestId;
    this.d.pools.get(up).for(t.h1Tls(up)).dispatch({
      path: `${forwardedPath(route, target.path)}${target.query}`, method: req.method as Dispatcher.HttpMethod, headers, upgrade: req.headers.upgrade ?? 'websocket',
      headersTimeout: t.timeouts().headerMs,
    }, t as unknown as Dispatcher.DispatchHandler);
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function plain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

/** An Upgrade through undici: 101 becomes a raw tunnel; any other answer is passed on whole, then the connection closes. */
class Tunnel extends ProxyRequest {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;

  constructor(d: ProxyDeps, req: IncomingMessage, socket: Duplex, head: Buffer) {
    super(d);
    this.req = req;
    this.socket = socket;
    this.head = head;
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    this.clientIp = clientIp(req.socket);
  }

  onConnect(): void {
    // Nothing to keep: an upgrade is never retried or aborted from here.
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, upstream: Duplex): void {
    const lines = [`HTTP/1.1 ${statusCode} Switching Protocols`];
    const h = rawHeaders ?? [];
    for (let i = 0; i < h.length; i += 2) lines.push(`${String(h[i])}: ${String(h[i + 1])}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (this.head.length > 0) upstream.write(this.head);
    upstream.pipe(this.socket).pipe(upstream);
    this.status = statusCode;
    const done = (): void => {
      if (!this.finished) this.settle(statusCode);
      upstream.destroy();
      this.socket.destroy();
    };
    upstream.on('error', done).on('close', done);
    this.socket.on('close', done);
    // A socket's timeout restarts on every read and write, so the client socket alone sees both directions.
    const idleMs = this.core.config.timeouts.tunnelMs;
    if (idleMs > 0) {
      (this.socket as Socket).setTimeout(idleMs, () => {
        this.core.metrics.tunnelIdle(this.route);
        done();
      });
    }
  }

  onError(err: Error & { code?: string }): void {
    if (this.finished) return;
    const up = this.up as Upstream;
    if (!RESOURCE_ERRORS.has(err.code ?? '')) this.core.health.failure(up.id);
    this.core.logger.debug({ err: err.message, upstream: up.id }, 'upgrade to upstream failed');
    if (this.status === 0) this.socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else this.socket.destroy();
    this.settle(this.status || 502);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // The upstream answered the upgrade with an ordinary response: pass it on as it is, then close.
    this.core.health.response((this.up as Upstream).id, statusCode);
    this.socket.on('drain', resume);
    this.status = statusCode;
    const h = clientResponseHeaders(rawHeaders);
    let head = `HTTP/1.1 ${statusCode} ${statusText}\r\n`;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]}: ${h[i + 1]}\r\n`;
    // undici hands over the body decoded: without a length it is delimited by closing the connection.
    this.socket.write(`${head}connection: close\r\n\r\n`);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  onComplete(): void {
    this.socket.end();
    if (!this.finished) this.settle(this.status);
  }
}

/**
 * One client request through its attempts. Implements undici's (legacy, fastest) dispatch handler
 * interface directly, so an attempt allocates nothing but the dispatch options.
 */
class Exchange extends ProxyRequest {
  readonly p: HttpProxy;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly proto: 'http' | 'https';
  /** The forwarded path and query (normalised, strip prefix applied). */
  path = '/';
  authority: string | undefined;
  headers: string[] | undefined;
  hasBody = false;
  abortUpstream: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  drainListening = false;
  totalTimer: NodeJS.Timeout | undefined;
  responded = false;
  bodyTooLarge = false;

  constructor(p: HttpProxy, req: IncomingMessage, res: ServerResponse, proto: 'http' | 'https') {
    super(p.d);
    this.p = p;
    this.req = req;
    this.res = res;
    this.proto = proto;
    this.method = req.method ?? 'GET';
    this.url = req.url ?? '/';
    this.clientIp = clientIp(req.socket);
  }

  start(): void {
    this.begin();
    // Shared listener functions find the exchange on the response: no closures per request.
    (this.res as ExchangeRes)[kExchange] = this;
    this.res.on('close', onResClose);
    const total = this.timeouts().totalMs;
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
    const up = this.pick();
    if (up === undefined) {
      const a = this.noInstanceAnswer();
      this.fail(a.status, a.body, a.retryAfter ? { 'Retry-After': '1' } : undefined);
      return;
    }
    if (this.headers === undefined) {
      const h = upstreamRequestHeaders(this.req.rawHeaders, { clientIp: this.clientIp, proto: this.proto, host: this.authority, newId: this.p.newId });
      this.headers = h.headers;
      this.requestId = h.requestId;
    }
    const hasBody = this.req.headers['content-length'] !== undefined ? this.req.headers['content-length'] !== '0' : this.req.headers['transfer-encoding'] !== undefined;
    this.hasBody = hasBody;
    const t = this.timeouts();
    this.p.d.pools.get(up).for(this.h1Tls(up)).dispatch({
      path: this.path,
      method: this.method as Dispatcher.HttpMethod,
      headers: this.headers,
      body: hasBody ? this.body() : null,
      headersTimeout: t.headerMs,
      bodyTimeout: t.idleMs,
    }, this as unknown as Dispatcher.DispatchHandler);
  }

  /** The request body for undici; a chunked body is metered against the body limit as it streams. */
  body(): Readable {
    const max = this.core.config.limits.maxBody;
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

  // ---- undici dispatch handler (legacy interface) ----

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort(new Error('client closed the connection'));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode > 599) {
      // RFC 9110 §15: codes past 599 are invalid (some libraries use them for their own errors). Node's
      // server would pass them on; the fast plane's parser refuses them: both answer 502 the same way.
      this.abortUpstream?.(Object.assign(new Error('invalid status code'), { code: 'BAD_RESPONSE' }));
      return false;
    }
    if (statusCode < 200) return true; // 1xx informational: wait for the final response.
    const up = this.up as Upstream;
    this.core.health.response(up.id, statusCode);
    // A 5xx answer means the request reached an instance: retried for idempotent methods only.
    if (RETRY_STATUS.has(statusCode) && this.canRetry(false, this.bodySent())) {
      // Abort this attempt before starting the next: both use this handler, and the aborted one
      // reports RETRIED, which onError ignores.
      const abort = this.abortUpstream;
      this.abortUpstream = undefined;
      this.releaseHeld();
      abort?.(RETRIED);
      this.scheduleRetry(`status ${statusCode}`, this.statusFailure(statusCode));
      return false;
    }
    this.responded = true;
    this.status = statusCode;
    const h = clientResponseHeaders(rawHeaders);
    if (this.requestId) h.push('x-request-id', this.requestId);
    const sticky = this.stickySetCookie(this.proto === 'https');
    if (sticky !== undefined) h.push('set-cookie', sticky);
    if (this.explain !== undefined) {
      this.explain.outcome(String(statusCode));
      h.push('x-switchyard-explain', this.explain.header());
    }
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
    this.releaseHeld();
    this.res.end();
    this.finish(this.status);
  }

  onError(err: Error & { code?: string }): void {
    if (this.finished || err === RETRIED || err === CLIENT_GONE || err === TOTAL_TIMEOUT) return;
    this.releaseHeld();
    if (this.bodyTooLarge) {
      // The client's fault, not the upstream's: no passive-health penalty.
      this.fail(413, `switchyard: request body larger than ${this.core.config.limits.maxBody} bytes\n`, { Connection: 'close' });
      return;
    }
    const code = err.code ?? '';
    if (LOCAL_ERRORS.has(code)) {
      // Refused before it reached anyone, for its own shape: no instance is at fault, no retry.
      this.fail(400, `switchyard: the request cannot be forwarded: ${err.message}\n`, { Connection: 'close' });
      return;
    }
    if (this.req.destroyed && !this.req.complete) {
      // The client went away while its body was still coming: nothing an instance did.
      this.res.destroy();
      this.finish(0);
      return;
    }
    // undici wants the body a Content-Length announces even where HTTP says there is none (304,
    // 204, HEAD): the answer is complete, and the instance did nothing wrong.
    if (this.responded && code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && (this.status === 304 || this.status === 204 || this.method === 'HEAD')) {
      this.res.end();
      this.finish(this.status);
      return;
    }
    const up = this.up as Upstream;
    const local = RESOURCE_ERRORS.has(code);
    if (!local) this.core.health.failure(up.id);
    if (this.responded) {
      // Part of the response is already on its way: all we can do is cut the client connection.
      this.core.logger.debug({ err: err.message, upstream: up.id }, 'upstream failed mid-response');
      this.res.destroy();
      this.finish(this.status);
      return;
    }
    if (local) {
      const l = this.resourceFailure(code);
      this.fail(l.status, l.body, { 'Retry-After': '1' });
      return;
    }
    const beforeSend = CONNECT_ERRORS.has(code);
    this.upstreamGone = beforeSend || GONE_ERRORS.has(code);
    const a = this.failureAnswer(code, err.message);
    if (this.canRetry(beforeSend, this.bodySent())) {
      this.scheduleRetry(code || err.message, a);
      return;
    }
    this.fail(a.status, a.body);
  }

  /** Node's parser refused this request's body: it goes no further, the client learns why, the connection closes. */
  badRequestBody(reason: string): void {
    if (this.finished) return;
    const abort = this.abortUpstream;
    this.fail(400, `switchyard: bad request body: ${reason}\n`, { Connection: 'close' });
    // After fail(): the abort's onError finds the request finished and charges no instance.
    abort?.(CLIENT_GONE);
  }

  // ---- attempts ----

  bodySent(): boolean {
    return this.hasBody && this.req.readableDidRead;
  }

  scheduleRetry(reason: string, failure: { status: number; body: string }): void {
    this.noteRetry(reason, failure);
    this.abortUpstream = undefined;
    this.attempt();
  }

  fail(status: number, body: string, extra?: Record<string, string>): void {
    if (this.finished) return;
    this.status = status;
    plain(this.res, status, body, this.explain === undefined ? extra : { ...extra, 'x-switchyard-explain': this.explain.header() });
    this.finish(status);
  }

  finish(status: number): void {
    if (this.finished) return;
    if (this.totalTimer) clearTimeout(this.totalTimer);
    this.res.off('close', onResClose);
    if (this.drainListening) this.res.off('drain', onResDrain);
    this.settle(status);
  }
}

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
