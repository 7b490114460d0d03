/**
 * One HTTP/2 stream through the balancer: routed, admitted, picked and settled by the request core
 * every plane shares (ProxyRequest), forwarded to an HTTP/1.1 instance (undici) or an HTTP/2 one
 * (h2-pool.ts) per the route's upstream protocol, with backpressure both ways, trailers, and gRPC's
 * rules for gRPC calls: answers of our own in gRPC's shape, grpc-timeout as a deadline, a retry of
 * UNAVAILABLE while the whole request can still be replayed, passive health on grpc-status.
 */
import { constants } from 'node:http2';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Upstream } from '../../balancer/index.js';
import { MAX_TIMER_MS, monotonicClock } from '../../core/clock.js';
import { forwardedPath, upstreamProtocol } from '../../routing/snapshot.js';
import type { UpstreamProtocol } from '../../config/route-spec.js';
import { isTlsProtocol } from '../../config/route-spec.js';
import { GONE_ERRORS, HEADERS_TIMEOUT, RESOURCE_ERRORS, ProxyRequest } from '../core/request.js';
import { RETRY_STATUS } from '../core/retry-policy.js';
import { parseRequestTarget } from '../core/target.js';
import type { CallSink, UpstreamCall } from './call.js';
import { GRPC, formatGrpcTimeout, grpcStatusForHttp, healthStatusForGrpc, isGrpcContentType, parseGrpcTimeout, readGrpcStatus, trailersOnly, encodeGrpcMessage } from './grpc.js';
import type { H2Plane } from './plane.js';

/** Request body kept for a retry until the response starts; a longer body makes the request unrepeatable. */
const REPLAY_LIMIT = 64 * 1024;
const EMPTY: IncomingHttpHeaders = Object.freeze({}) as IncomingHttpHeaders;

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function onDeadline(ex: H2Exchange): void {
  ex.deadlineReached();
}

// Listeners shared by every stream, finding their exchange on it: no closures per request.
const kExchange = Symbol('switchyard.h2exchange');
type ExStream = ServerHttp2Stream & { [kExchange]?: H2Exchange };

function onStreamClose(this: ExStream): void {
  this[kExchange]?.clientGone();
}

function onStreamDrain(this: ExStream): void {
  this[kExchange]?.clientDrain();
}

function onWantTrailers(this: ExStream): void {
  this[kExchange]?.sendTrailers();
}

function onRequestData(this: ExStream, c: Buffer): void {
  this[kExchange]?.requestData(c);
}

function onRequestEnd(this: ExStream): void {
  this[kExchange]?.requestEnd();
}

function onRequestTrailers(this: ExStream, t: IncomingHttpHeaders): void {
  const ex = this[kExchange];
  if (ex !== undefined) ex.reqTrailers = { ...t };
}

export class H2Exchange extends ProxyRequest implements CallSink {
  readonly plane: H2Plane;
  readonly stream: ServerHttp2Stream;
  readonly h: IncomingHttpHeaders;
  readonly proto: 'http' | 'https';
  /** The request is a gRPC call: our own answers take gRPC's shape. */
  grpc = false;
  /** The forwarded path and query. */
  path = '/';
  authority: string | undefined;
  /** The request has a body (its HEADERS frame did not end the stream). */
  hasBody: boolean;
  /** Body bytes kept for a retry (undefined once the request cannot be replayed); set up when there is a body. */
  saved: Buffer[] | undefined;
  savedBytes = 0;
  bodySeen = 0;
  /** Some body went to an instance (replayable or not). */
  bodySent = false;
  reqEnded = false;
  reqTrailers: OutgoingHttpHeaders | undefined;
  call: UpstreamCall | undefined;
  callProtocol: UpstreamProtocol = 'http';
  /** The request's upstream fields, built on the first attempt (grpc-timeout refreshed per attempt). */
  upHeaders: OutgoingHttpHeaders | undefined;
  h1Headers: string[] | undefined;
  responded = false;
  /** The response was sent with waitForTrailers: the end goes out as a trailers frame. */
  waitTrailers = false;
  pendingTrailers: OutgoingHttpHeaders | undefined;
  clientPaused = false;
  upPaused = false;
  drainListening = false;
  /** Coarse time the response stopped being accepted by the client (flow control), 0 when flowing. */
  stalledSince = 0;
  /** Coarse time the current attempt was sent (for the response-header timeout). */
  sentAt = 0;
  lastActivity = 0;
  /** Absolute time (ms) the gRPC deadline runs out, 0 without one. */
  deadlineAt = 0;
  deadlineTimer: NodeJS.Timeout | undefined;

  constructor(plane: H2Plane, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, proto: 'http' | 'https', clientIp: string) {
    super(plane.d);
    this.clientProtocol = 'h2';
    this.plane = plane;
    this.stream = stream;
    this.h = headers;
    this.proto = proto;
    this.clientIp = clientIp;
    this.hasBody = (flags & constants.NGHTTP2_FLAG_END_STREAM) === 0;
  }

  start(): void {
    const h = this.h;
    const d = this.plane.d;
    this.method = first(h[':method']) ?? '';
    this.url = first(h[':path']) ?? '';
    this.authority = first(h[':authority']) ?? first(h.host);
    this.host = this.authority;
    this.grpc = isGrpcContentType(h['content-type']);
    (this.stream as ExStream)[kExchange] = this;
    this.stream.on('close', onStreamClose);
    if (this.method === 'CONNECT') {
      this.early(400, 'CONNECT is not served: this is a reverse proxy, not a forward proxy');
      return;
    }
    if (this.url.charCodeAt(0) !== 0x2f) {
      this.early(400, this.url === '*' ? 'asterisk-form targets (OPTIONS *) are not served: this is a reverse proxy' : 'the :path must be an origin-form path ("/…")');
      return;
    }
    const target = parseRequestTarget(this.url);
    if ('error' in target) {
      this.early(target.status, target.error);
      return;
    }
    const snap = d.snapshots.current;
    if (snap === undefined) {
      this.early(503, 'no routing table yet (waiting for the registry)', { 'retry-after': '1' });
      return;
    }
    const route = snap.only ?? snap.match(this.host, target.path, snap.needsHeaders ? h : EMPTY);
    if (route === undefined) {
      this.early(404, `no route for ${this.host ?? ''}${target.path}`);
      return;
    }
    this.route = route;
    if (snap.routedAt === 0) snap.markRouted();
    if (this.needsKeys()) this.readKeys((n) => first(h[n]));
    if (d.explainFrom !== undefined) this.startExplain(first(h['x-switchyard-explain']), snap.version);
    const refusal = this.admit();
    if (refusal !== undefined) {
      this.early(refusal.status, refusal.message, { 'retry-after': String(refusal.retryAfterS) });
      return;
    }
    const max = d.config.limits.maxBody;
    if (max > 0 && Number(first(h['content-length']) ?? 0) > max) {
      this.early(413, `request body larger than ${max} bytes`);
      return;
    }
    if (this.grpc) {
      const t = parseGrpcTimeout(h['grpc-timeout']);
      if (t !== undefined && typeof t !== 'number') {
        this.early(400, t.error);
        return;
      }
      if (t !== undefined) this.deadlineAt = monotonicClock.now() + t;
    }
    this.path = `${forwardedPath(route, target.path)}${target.query}`;
    this.begin();
    const total = this.timeouts().totalMs;
    const deadline = this.deadlineAt > 0 ? this.deadlineAt - monotonicClock.now() : Infinity;
    const limit = Math.min(deadline, total > 0 ? total : Infinity);
    // A deadline past one Node timer (24.8 days; grpc-timeout takes up to 8 digits of hours) would fire at
    // once: that far out it is left to the instance and the client, which both have it.
    if (limit <= MAX_TIMER_MS) this.deadlineTimer = setTimeout(onDeadline, Math.max(0, limit), this);
    this.lastActivity = this.plane.now;
    this.plane.active.add(this);
    if (this.hasBody) {
      this.saved = [];
      const s = this.stream;
      s.on('data', onRequestData);
      s.on('end', onRequestEnd);
      s.on('trailers', onRequestTrailers);
    } else this.reqEnded = true;
    this.attempt();
  }

  // ---- the request body ----

  requestData(c: Buffer): void {
    if (this.finished) return;
    this.bodySeen += c.length;
    const max = this.core.config.limits.maxBody;
    if (max > 0 && this.bodySeen > max) {
      this.fail(413, `request body larger than ${max} bytes`);
      return;
    }
    if (this.saved !== undefined) {
      if (this.savedBytes + c.length <= REPLAY_LIMIT) {
        this.saved.push(c);
        this.savedBytes += c.length;
      } else this.saved = undefined;
    }
    const call = this.call;
    if (call === undefined) return;
    this.bodySent = true;
    if (!call.write(c) && !this.clientPaused) {
      this.clientPaused = true;
      this.stream.pause();
    }
  }

  requestEnd(): void {
    this.reqEnded = true;
    if (!this.finished) this.call?.end(this.reqTrailers);
  }

  callDrain(): void {
    if (this.clientPaused) {
      this.clientPaused = false;
      this.stream.resume();
    }
  }

  // ---- attempts ----

  attempt(): void {
    const up = this.pick();
    if (up === undefined) {
      // After retries, the last instance's failure; with nobody to try at all, 503.
      const a = this.noInstanceAnswer();
      this.fail(a.status, a.body.replace(/^switchyard: /, '').trim(), a.retryAfter ? { 'retry-after': '1' } : {});
      return;
    }
    const proto = upstreamProtocol(this.route, up);
    this.callProtocol = proto;
    this.sentAt = this.plane.now;
    const call = proto === 'http' || proto === 'https' ? this.#h1Call(up) : this.#h2Call(up, proto);
    this.call = call;
    const saved = this.saved;
    if (saved !== undefined) for (const c of saved) call.write(c);
    if (this.reqEnded) call.end(this.reqTrailers);
  }

  #info(): { clientIp: string; proto: 'http' | 'https'; authority: string | undefined; newId: () => string } {
    return { clientIp: this.clientIp, proto: this.proto, authority: this.authority, newId: this.plane.newId };
  }

  #h1Call(up: Upstream): UpstreamCall {
    if (this.h1Headers === undefined) {
      const r = this.plane.h1Headers(this.h, this.#info());
      this.h1Headers = r.headers;
      this.requestId = r.requestId;
    }
    const t = this.timeouts();
    return this.plane.h1Call(up, {
      method: this.method, path: this.path, headers: this.h1Headers, hasBody: this.hasBody, hasLength: this.h['content-length'] !== undefined,
      headersTimeoutMs: this.grpc ? 0 : t.headerMs, bodyTimeoutMs: this.grpc ? 0 : t.idleMs, tls: this.h1Tls(up),
    }, this);
  }

  #h2Call(up: Upstream, proto: UpstreamProtocol): UpstreamCall {
    const tls = isTlsProtocol(proto);
    if (this.upHeaders === undefined) {
      const r = this.plane.h2Headers(this.h, this.method, this.path, tls ? 'https' : 'http', this.#info());
      this.upHeaders = r.headers;
      this.requestId = r.requestId;
    }
    // The instance gets what is left of the deadline, so it can give up when we would.
    if (this.deadlineAt > 0) this.upHeaders['grpc-timeout'] = formatGrpcTimeout(this.deadlineAt - monotonicClock.now());
    const trailers = this.hasBody && this.h.trailer !== undefined;
    return this.plane.h2Call(up, this.upHeaders, { endStream: !this.hasBody, tls: tls ? this.core.upstreamTls.for(this.route.spec) : undefined, trailers }, this);
  }

  /** Whether the request could be sent again whole: all of its body is still here (or it has none). */
  replayable(): boolean {
    return !this.hasBody || this.saved !== undefined;
  }

  #retry(reason: string, failure: { status: number; body: string }): void {
    const call = this.call;
    this.call = undefined;
    call?.abort();
    this.releaseHeld();
    this.noteRetry(reason, failure);
    this.attempt();
  }

  // ---- the instance's answer ----

  callResponse(status: number, headers: OutgoingHttpHeaders, endStream: boolean): void {
    if (this.finished) return;
    const up = this.up as Upstream;
    const health = this.core.health;
    const gs = endStream && this.grpc ? readGrpcStatus(headers['grpc-status'] as string | undefined) : undefined;
    const unsent = !this.bodySent || this.replayable();
    if (RETRY_STATUS.has(status) && this.canRetry(false, !unsent)) {
      health.response(up.id, status);
      this.#retry(`status ${status}`, this.statusFailure(status));
      return;
    }
    // UNAVAILABLE means the call was not processed: retried for any method while it can be replayed.
    if (gs === GRPC.UNAVAILABLE && this.reqEnded && this.replayable() && this.canRetry(true, false)) {
      health.response(up.id, 503);
      this.#retry('grpc-status 14', this.statusFailure(503));
      return;
    }
    // A gRPC call's outcome is in its status, known at the end; anything else is judged by its head.
    if (!this.grpc || endStream) health.response(up.id, gs !== undefined ? healthStatusForGrpc(gs) : status);
    this.responded = true;
    this.status = status;
    this.saved = undefined;
    this.lastActivity = this.plane.now;
    headers['x-request-id'] = this.requestId;
    const sticky = this.stickySetCookie(this.proto === 'https');
    if (sticky !== undefined) {
      const had = headers['set-cookie'];
      headers['set-cookie'] = had === undefined ? [sticky] : [...(Array.isArray(had) ? had : [String(had)]), sticky];
    }
    if (this.explain !== undefined) {
      this.explain.outcome(String(status));
      headers['x-switchyard-explain'] = this.explain.header();
    }
    if (endStream) {
      if (this.grpc) this.grpcStatus = gs;
      this.#respond(headers, true);
      this.complete();
      return;
    }
    this.waitTrailers = this.grpc || this.callProtocol !== 'http' || headers.trailer !== undefined;
    if (this.waitTrailers) this.stream.on('wantTrailers', onWantTrailers);
    this.#respond(headers, false);
  }

  #respond(headers: OutgoingHttpHeaders, endStream: boolean): void {
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    try {
      s.respond(headers, endStream ? { endStream: true } : { waitForTrailers: this.waitTrailers });
    } catch (err) {
      // A field HTTP/2 cannot carry (the instance sent something connection-specific): a bad answer.
      this.core.logger.debug({ err: (err as Error).message }, 'response head not sendable over HTTP/2');
      this.responded = false;
      this.callFailed('BAD_RESPONSE', `bad response (${(err as Error).message})`, false);
    }
  }

  callData(chunk: Buffer): boolean {
    if (this.finished) return false;
    this.lastActivity = this.plane.now;
    if (this.stream.write(chunk)) return true;
    // Listened for from the first stall on: most responses never stall.
    if (!this.drainListening) {
      this.drainListening = true;
      this.stream.on('drain', onStreamDrain);
    }
    this.upPaused = true;
    if (this.stalledSince === 0) this.stalledSince = this.plane.now;
    return false;
  }

  clientDrain(): void {
    this.stalledSince = 0;
    this.lastActivity = this.plane.now;
    if (this.upPaused) {
      this.upPaused = false;
      this.call?.resume();
    }
  }

  callEnd(trailers: OutgoingHttpHeaders | undefined, last?: Buffer): void {
    if (this.finished) return;
    if (this.grpc) {
      const gs = readGrpcStatus(trailers?.['grpc-status'] as string | undefined);
      this.grpcStatus = gs;
      this.core.health.response((this.up as Upstream).id, gs !== undefined ? healthStatusForGrpc(gs) : this.status);
    }
    this.pendingTrailers = trailers;
    this.call = undefined;
    this.#endResponse(last);
    this.complete();
  }

  #endResponse(last?: Buffer): void {
    const s = this.stream;
    if (s.destroyed || s.closed || s.writableEnded) return;
    if (last !== undefined) s.end(last);
    else s.end();
  }

  sendTrailers(): void {
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    const t = this.pendingTrailers;
    if (t !== undefined && Object.keys(t).length > 0) s.sendTrailers(t);
    else if (this.grpc) s.sendTrailers({ 'grpc-status': String(GRPC.INTERNAL), 'grpc-message': 'the instance ended the call without a status' });
    else s.sendTrailers({});
  }

  callFailed(code: string, message: string, refused: boolean): void {
    if (this.finished) return;
    this.call = undefined;
    const up = this.up as Upstream;
    this.releaseHeld();
    const local = RESOURCE_ERRORS.has(code);
    if (!local) this.core.health.failure(up.id);
    if (this.responded) {
      this.core.logger.debug({ err: message, upstream: up.id }, 'upstream failed mid-response');
      if (this.grpc && this.waitTrailers) {
        // The client still gets a status: the call is over, and why.
        this.grpcStatus = GRPC.UNAVAILABLE;
        this.pendingTrailers = { 'grpc-status': String(GRPC.UNAVAILABLE), 'grpc-message': encodeGrpcMessage(`instance ${up.address}:${up.port} failed mid-call: ${code || message}`) };
        this.#endResponse();
      } else this.#reset(constants.NGHTTP2_INTERNAL_ERROR);
      this.finish(this.status);
      return;
    }
    if (local) {
      const l = this.resourceFailure(code);
      this.fail(l.status, l.body.replace(/^switchyard: /, '').trim(), { 'retry-after': '1' });
      return;
    }
    // Never seen by the instance, or the instance went away: a retry not charged to the budget.
    this.upstreamGone = refused || GONE_ERRORS.has(code);
    const a = this.failureAnswer(code, message);
    if (this.canRetry(refused, this.bodySent && !this.replayable())) {
      this.noteRetry(code || message, a);
      this.attempt();
      return;
    }
    this.fail(a.status, a.body.replace(/^switchyard: /, '').trim());
  }

  /** The response-header timeout of the current attempt (not for gRPC calls, whose deadline is their own). */
  check(now: number, slack: number): void {
    if (this.finished) return;
    const t = this.timeouts();
    if (this.stalledSince !== 0 && now - this.stalledSince > t.idleMs + slack) {
      // The client takes nothing (a zero window): the stream and its instance's slot are freed.
      this.plane.refused('stalled_stream');
      this.abortCall();
      this.#reset(constants.NGHTTP2_CANCEL);
      this.finish(this.status);
      return;
    }
    if (this.grpc) return;
    const call = this.call;
    if (call === undefined || call.ownTimeouts) return;
    if (!this.responded && now - this.sentAt > t.headerMs + slack) {
      // Calls without timers of their own (fast-plane and HTTP/2 connections) are timed here.
      this.abortCall();
      this.callFailed(HEADERS_TIMEOUT, 'response header timeout', false);
      return;
    }
    if (this.responded && now - this.lastActivity > t.idleMs + slack) {
      this.abortCall();
      this.#reset(constants.NGHTTP2_INTERNAL_ERROR);
      this.finish(this.status);
    }
  }

  /** The gRPC deadline (or the total timeout) ran out. */
  deadlineReached(): void {
    this.deadlineTimer = undefined;
    if (this.finished) return;
    this.abortCall();
    this.releaseHeld();
    const why = this.deadlineAt > 0 ? 'deadline exceeded (grpc-timeout) at the balancer' : 'upstream did not answer within the total timeout';
    if (!this.responded) {
      this.fail(504, why);
      return;
    }
    if (this.grpc && this.waitTrailers) {
      this.grpcStatus = GRPC.DEADLINE_EXCEEDED;
      this.pendingTrailers = { 'grpc-status': String(GRPC.DEADLINE_EXCEEDED), 'grpc-message': encodeGrpcMessage(why) };
      this.#endResponse();
    } else this.#reset(constants.NGHTTP2_CANCEL);
    this.finish(this.status);
  }

  abortCall(): void {
    const call = this.call;
    this.call = undefined;
    call?.abort();
  }

  #reset(code: number): void {
    const s = this.stream;
    if (!s.destroyed && !s.closed) s.close(code);
  }

  // ---- endings ----

  /** An answer of our own before anything was forwarded (nothing to settle: the request never began). */
  early(status: number, message: string, extra: OutgoingHttpHeaders = {}): void {
    this.status = status;
    this.finished = true;
    this.#answer(status, message, extra);
    // A request refused before routing has no route to count under; a routed one is counted.
    if (this.route !== undefined) {
      this.core.counters.activeRequests++;
      this.settle(status);
    }
  }

  #answer(status: number, message: string, extra: OutgoingHttpHeaders): void {
    const s = this.stream;
    if (s.destroyed || s.closed || s.headersSent) return;
    if (this.requestId === '' && this.route !== undefined) this.requestId = first(this.h['x-request-id']) ?? this.plane.newId();
    const why = this.explain === undefined ? extra : { ...extra, 'x-switchyard-explain': this.explain.header() };
    if (this.grpc) {
      this.grpcStatus = grpcStatusForHttp(status);
      s.respond(trailersOnly(this.grpcStatus, `switchyard: ${message}`, this.requestId ? { ...why, 'x-request-id': this.requestId } : why), { endStream: true });
      return;
    }
    const body = `switchyard: ${message}\n`;
    s.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...why, ...(this.requestId ? { 'x-request-id': this.requestId } : {}) });
    s.end(body);
  }

  fail(status: number, message: string, extra: OutgoingHttpHeaders = {}): void {
    if (this.finished) return;
    this.abortCall();
    this.status = status;
    if (this.responded) this.#reset(constants.NGHTTP2_INTERNAL_ERROR);
    else this.#answer(status, message, extra);
    this.finish(status);
  }

  complete(): void {
    this.call = undefined;
    this.releaseHeld();
    this.finish(this.status);
  }

  clientGone(): void {
    if (this.finished) return;
    // The client cancelled (RST_STREAM) or went away: the instance's stream is cancelled too.
    this.abortCall();
    this.finish(0);
  }

  finish(status: number): void {
    if (this.finished) return;
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.plane.active.delete(this);
    this.saved = undefined;
    this.settle(status);
  }
}
