/**
 * One request through the fast plane: built from the freshly parsed head, it forwards the body as
 * it arrives, runs the attempts (a pooled upstream connection each), rewrites the response head,
 * streams the response with backpressure, and — for an accepted Upgrade — becomes the tunnel.
 * It is also the sink of its chunked request body and the user of its upstream connection.
 *
 * Over 600 lines on purpose: the whole request lifecycle is one object per connection whose fields
 * the hot path reads directly; cutting it into cooperating objects would add an allocation and an
 * indirection per request for what is one state machine (request body → attempts → response).
 */
import type { Upstream } from '../../balancer/index.js';
import { forwardedPath, http2OnlyReason } from '../../routing/snapshot.js';
import { GONE_ERRORS, HEADERS_TIMEOUT, RESOURCE_ERRORS, ProxyRequest } from '../core/request.js';
import { RETRY_STATUS } from '../core/retry-policy.js';
import { parseRequestTarget } from '../core/target.js';
import {
  CONN_CLOSE, CONN_KEEP_ALIVE, CONN_OTHER, CONN_UPGRADE, ChunkedDecoder, NEED_MORE, PARSE_ERROR, keepAliveTimeoutMs, parseResponseHead,
} from '../../core/http1/h1.js';
import type { ChunkSink, Head } from '../../core/http1/h1.js';
import type { ClientConn } from './client-conn.js';
import type { FastContext } from './context.js';
import { DROP_FORWARDING, DROP_HOST, KEEP_ALL, KEEP_UPGRADE, connectionListed, encodeChunk, headersObject, plainResponse, rewriteHead } from './head-rewrite.js';
import type { MirrorCopy } from './mirror.js';
import type { UpConn, UpstreamUser } from './pool.js';
import { isH2cUpgrade } from '../h2/preface.js';

/** Response heads larger than this are refused (502): the upstream is broken or hostile. */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Request-body bytes held while no upstream connection takes them, before the client is paused. */
export const PENDING_LIMIT = 64 * 1024;
/** Below this a response body is copied into the head's buffer (one write); above, written as is. */
const COPY_BODY_LIMIT = 16 * 1024;

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const EMPTY_HEADERS = Object.freeze({});

// Response states: reading the head, a body by length, chunked, until close; done; a tunnel after 101.
const R_HEAD = 0;
const R_LEN = 1;
const R_CHUNKED = 2;
const R_CLOSE = 3;
const R_DONE = 4;
export const R_TUNNEL = 5;

function onTotalTimeout(ex: Exchange): void {
  ex.totalTimeout();
}

/** Writes decoded chunk data of a response as is: for HTTP/1.0 clients, which cannot take chunked. */
class RawBodySink implements ChunkSink {
  readonly ex: Exchange;
  constructor(ex: Exchange) {
    this.ex = ex;
  }

  chunkData(buf: Buffer, s: number, e: number): void {
    this.ex.sendBody(buf.subarray(s, e));
  }
}

export class Exchange extends ProxyRequest implements UpstreamUser, ChunkSink {
  readonly c: ClientConn;
  readonly x: FastContext;
  upHead: Buffer | undefined;
  /** The client's HTTP minor version: 1.0 clients get no chunked framing and explicit keep-alive. */
  clientMinor = 1;
  /** Answer with Connection: close and close after this response. */
  closeClient = false;
  /** An accepted Upgrade request: a fresh upstream connection, and a tunnel on 101. */
  upgrade = false;
  // request body
  reqDone = true;
  reqRemaining = 0;
  reqDecoder: ChunkedDecoder | undefined;
  bodySeen = 0;
  /** Body bytes (already framed for the upstream) waiting for a connected upstream socket. */
  pending: Buffer[] | undefined;
  pendingBytes = 0;
  /** Some body bytes went to an upstream: the request can no longer be replayed elsewhere. */
  bodySent = false;
  /** The copy of this request going to the route's mirror, if it drew one. */
  mirror: MirrorCopy | undefined;
  lastClientActivity = 0;
  // attempts
  uc: UpConn | undefined;
  sentAt = 0;
  // response
  rs = R_HEAD;
  respRemaining = 0;
  respDecoder: ChunkedDecoder | undefined;
  rawSink: RawBodySink | undefined;
  respCarry: Buffer | undefined;
  responded = false;
  upstreamPaused = false;
  lastActivity = 0;
  totalTimer: NodeJS.Timeout | undefined;

  constructor(c: ClientConn) {
    super(c.x.d);
    this.c = c;
    this.x = c.x;
    this.clientIp = c.ip;
  }

  /** Ready for the connection's next request: every field back to its initial value (decoders kept for reuse). */
  reset(): void {
    this.resetCore();
    this.upHead = undefined;
    this.clientMinor = 1;
    this.closeClient = false;
    this.upgrade = false;
    this.reqDone = true;
    this.reqRemaining = 0;
    this.reqDecoder = undefined;
    this.bodySeen = 0;
    this.pending = undefined;
    this.pendingBytes = 0;
    this.bodySent = false;
    this.mirror = undefined;
    this.lastClientActivity = 0;
    this.uc = undefined;
    this.sentAt = 0;
    this.rs = R_HEAD;
    this.respRemaining = 0;
    this.respCarry = undefined;
    this.responded = false;
    this.upstreamPaused = false;
    this.lastActivity = 0;
    this.totalTimer = undefined;
  }

  /** Nothing can call into this request any more: no upstream connection, timer or tunnel holds it. */
  reusable(): boolean {
    return this.finished && this.uc === undefined && this.totalTimer === undefined && this.rs !== R_TUNNEL;
  }

  /** Runs synchronously on the freshly parsed head; returns the offset after the body bytes it took from buf. */
  start(buf: Buffer, headEnd: number, end: number): number {
    const x = this.x;
    const P = x.req;
    const d = x.d;
    this.method = P.method;
    this.clientMinor = P.versionMinor;
    this.url = buf.latin1Slice(P.targetStart, P.targetEnd);
    this.host = P.hostIndex >= 0 ? P.value(buf, P.hostIndex) : undefined;
    // HTTP/1.0 keeps a connection only when asked to; 1.1 unless asked not to.
    this.closeClient = P.versionMinor === 0 ? (P.connection & CONN_KEEP_ALIVE) === 0 : (P.connection & CONN_CLOSE) !== 0;
    if (this.c.closeAfter) this.closeClient = true;
    if (P.chunked) {
      this.reqDone = false;
      this.reqDecoder = new ChunkedDecoder(d.config.limits.maxHeaderSize);
    } else if (P.contentLength > 0) {
      this.reqDone = false;
      this.reqRemaining = P.contentLength;
    }
    if (P.method === 'CONNECT') return this.early(headEnd, end, 400, 'switchyard: CONNECT is not served: this is a reverse proxy, not a forward proxy\n', '');
    const target = parseRequestTarget(this.url);
    if ('error' in target) return this.early(headEnd, end, target.status, `switchyard: ${target.error}\n`, '');
    // Absolute-form: the authority is what the request is for (RFC 9112 §3.2.2), whatever Host says.
    if (target.authority !== undefined) this.host = target.authority;
    const snap = d.snapshots.current;
    if (snap === undefined) return this.early(headEnd, end, 503, 'switchyard: no routing table yet (waiting for the registry)\n', 'retry-after: 1\r\n');
    const path = target.path;
    const route = snap.only ?? snap.match(this.host, path, snap.needsHeaders ? headersObject(buf, P) : EMPTY_HEADERS);
    if (route === undefined) return this.early(headEnd, end, 404, `switchyard: no route for ${this.host ?? ''}${path}\n`, '');
    this.route = route;
    const h2only = http2OnlyReason(route);
    if (h2only !== undefined) return this.early(headEnd, end, 505, `switchyard: ${h2only}\n`, '');
    if (snap.routedAt === 0) snap.markRouted();
    if (this.needsKeys()) this.readKeys((n) => P.get(buf, n));
    if (d.explainFrom !== undefined) this.startExplain(P.get(buf, 'x-switchyard-explain'), snap.version);
    const refusal = this.admit();
    if (refusal !== undefined) return this.early(headEnd, end, refusal.status, `switchyard: ${refusal.message}\n`, `retry-after: ${refusal.retryAfterS}\r\n`);
    const max = d.config.limits.maxBody;
    if (max > 0 && P.contentLength > max) {
      this.closeClient = true;
      return this.early(headEnd, end, 413, `switchyard: request body larger than ${max} bytes\n`, '');
    }
    if (P.expect) {
      // Answered here, as nginx and Node's server do: the upstream gets the body without the ritual.
      if ((P.get(buf, 'expect') ?? '').trim().toLowerCase() !== '100-continue') {
        this.closeClient = true;
        return this.early(headEnd, end, 417, 'switchyard: only "Expect: 100-continue" is supported\n', '');
      }
      if (!this.reqDone && P.versionMinor === 1) this.c.socket.write(CONTINUE);
    }
    // An Upgrade counts only with "upgrade" in Connection, and only from HTTP/1.1 (RFC 9110 §7.8).
    // `Upgrade: h2c` (deprecated by RFC 9113 §3.1) is ignored: the request is served over HTTP/1.1,
    // never tunnelled, so an instance that would switch cannot pin the connection to itself.
    this.upgrade = P.upgrade && (P.connection & CONN_UPGRADE) !== 0 && P.versionMinor === 1 && !isH2cUpgrade(P.get(buf, 'upgrade'));
    this.upHead = this.buildUpstreamHead(buf, P, target.authority, path, target.query, target.changed);
    if (route.mirror !== undefined && !this.upgrade && this.drawMirror()) {
      this.mirror = x.mirrors.start(route, this.upHead, this.method, this.reqDone);
    }

    this.begin();
    const total = this.timeouts().totalMs;
    if (total > 0 && !this.upgrade) this.totalTimer = setTimeout(onTotalTimeout, total, this);
    this.lastClientActivity = x.now;
    let pos = headEnd;
    if (!this.reqDone) pos = this.requestBody(buf, headEnd, end);
    if (!this.finished) this.attempt();
    return pos;
  }

  /** The request head for the upstream, built once and sent by every attempt. */
  buildUpstreamHead(buf: Buffer, P: Head, authority: string | undefined, path: string, query: string, changed: boolean): Buffer {
    let requestId: string | undefined;
    if (P.requestIdIndex >= 0) requestId = P.value(buf, P.requestIdIndex);
    let tail = '';
    if (P.chunked) tail += 'transfer-encoding: chunked\r\n';
    if (authority !== undefined) tail += `host: ${authority}\r\n`;
    // HTTP/1.0 may come without Host; the upstream speaks 1.1, which needs one: the address the client reached.
    else if (P.hostIndex < 0) tail += `host: ${this.c.localAuthority()}\r\n`;
    // The forwarding headers of a plain request on a keep-alive connection repeat from one request
    // to the next (same client, same Host): built once per connection.
    const c = this.c;
    const plain = P.xff === 0 && !P.forwardedProto && !P.forwardedHost;
    if (plain && c.fwdHost === this.host && c.fwdTail !== '') tail += c.fwdTail;
    else {
      let xff = this.clientIp;
      if (P.xff > 0) {
        const prior = P.get(buf, 'x-forwarded-for');
        if (prior !== undefined) xff = `${prior}, ${xff}`;
      }
      let fwd = `x-forwarded-for: ${xff}\r\n`;
      if (!P.forwardedProto) fwd += `x-forwarded-proto: ${c.proto}\r\n`;
      if (!P.forwardedHost && this.host !== undefined) fwd += `x-forwarded-host: ${this.host}\r\n`;
      if (plain) {
        c.fwdHost = this.host;
        c.fwdTail = fwd;
      }
      tail += fwd;
    }
    if (requestId === undefined) {
      requestId = this.core.ids.next();
      tail += `x-request-id: ${requestId}\r\n`;
    }
    tail += this.upgrade ? 'connection: upgrade\r\n\r\n' : 'connection: keep-alive\r\n\r\n';
    this.requestId = requestId;
    const fwd = forwardedPath(this.route, path);
    const first = changed || fwd !== path || P.versionMinor === 0 ? `${this.method} ${fwd}${query} HTTP/1.1\r\n` : undefined;
    const drop = DROP_FORWARDING | (authority !== undefined ? DROP_HOST : KEEP_ALL) | (this.upgrade ? KEEP_UPGRADE : KEEP_ALL);
    return rewriteHead(buf, P, first, drop, connectionListed(buf, P), tail, undefined, 0, 0);
  }

  /** An answer before any upstream is involved; the body (if any) is skipped when it is all here, else the connection closes. */
  early(headEnd: number, end: number, status: number, body: string, extra: string): number {
    let pos = headEnd;
    if (!this.reqDone && this.reqDecoder === undefined && end - headEnd >= this.reqRemaining) {
      pos = headEnd + this.reqRemaining;
      this.reqDone = true;
    }
    if (!this.reqDone || status === 400) this.closeClient = true;
    this.status = status;
    this.c.socket.write(plainResponse(status, body, extra, this.closeClient, this.x.httpDate()));
    this.finished = true;
    this.c.exchangeDone(this);
    return this.reqDone ? pos : end;
  }

  // ---- request body ----

  /** Takes body bytes from buf[pos..end); returns where the body ended (or end). */
  requestBody(buf: Buffer, pos: number, end: number): number {
    this.lastClientActivity = this.x.now;
    if (this.reqDecoder === undefined) {
      const n = Math.min(this.reqRemaining, end - pos);
      this.reqRemaining -= n;
      if (this.reqRemaining === 0) this.requestEnded();
      if (n > 0) this.bodyPiece(buf.subarray(pos, pos + n));
      return pos + n;
    }
    const r = this.reqDecoder.feed(buf, pos, end, this);
    if (r === PARSE_ERROR) {
      this.badRequestBody(this.reqDecoder.error);
      return end;
    }
    if (r === NEED_MORE) return end;
    this.requestEnded();
    this.bodyPiece(LAST_CHUNK);
    return r;
  }

  /** The client's request body is complete (the mirror copy may reuse its connection once answered). */
  requestEnded(): void {
    this.reqDone = true;
    this.mirror?.requestEnd();
  }

  chunkData(buf: Buffer, s: number, e: number): void {
    if (this.finished) return;
    this.bodySeen += e - s;
    const max = this.core.config.limits.maxBody;
    if (max > 0 && this.bodySeen > max) {
      this.abortUpstream();
      this.c.closeAfter = true;
      this.fail(413, `switchyard: request body larger than ${max} bytes\n`, '');
      return;
    }
    this.bodyPiece(encodeChunk(buf, s, e));
  }

  badRequestBody(reason: string): void {
    this.abortUpstream();
    this.c.closeAfter = true;
    if (!this.responded) this.fail(400, `switchyard: bad request body: ${reason}\n`, '');
    else {
      this.c.socket.destroy();
      this.finish(this.status);
    }
  }

  bodyPiece(piece: Buffer): void {
    if (this.finished || this.rs === R_DONE) return;
    this.mirror?.body(piece);
    const uc = this.uc;
    if (uc !== undefined && uc.connected && this.pending === undefined) {
      this.bodySent = true;
      if (!uc.socket.write(piece)) this.c.pauseReading();
      // A write not yet flushed still points into the client's read buffer.
      if (uc.socket.writableLength > 0) this.c.retained = true;
      return;
    }
    this.c.retained = true;
    (this.pending ??= []).push(piece);
    this.pendingBytes += piece.length;
    if (this.pendingBytes > PENDING_LIMIT) this.c.pauseReading();
  }

  flushBody(): void {
    const uc = this.uc;
    const pending = this.pending;
    if (uc === undefined || pending === undefined) return;
    this.pending = undefined;
    this.pendingBytes = 0;
    this.bodySent = true;
    let ok = true;
    for (const b of pending) ok = uc.socket.write(b);
    if (ok && !this.reqDone) this.c.resumeReading();
    else if (!ok) this.c.pauseReading();
  }

  // ---- attempts ----

  attempt(): void {
    const up = this.pick();
    if (up === undefined) {
      const a = this.noInstanceAnswer();
      this.fail(a.status, a.body, a.retryAfter ? 'retry-after: 1\r\n' : '');
      return;
    }
    this.rs = R_HEAD;
    this.respCarry = undefined;
    this.sentAt = this.x.now;
    const pool = this.x.d.pools.get(up);
    // A tunnel owns its connection for good: never one that goes back to the pool.
    const tls = this.h1Tls(up);
    const uc = this.upgrade ? pool.acquireFresh(this, tls) : pool.acquire(this, tls);
    this.uc = uc;
    // A connecting socket queues this until connected; if the connect fails nothing was sent.
    uc.socket.write(this.upHead as Buffer);
    if (uc.connected && this.pending !== undefined) this.flushBody();
  }

  upstreamConnected(): void {
    if (this.pending !== undefined) this.flushBody();
  }

  upstreamDrain(): void {
    this.lastClientActivity = this.x.now;
    if (this.rs === R_TUNNEL || (!this.reqDone && this.pending === undefined)) this.c.resumeReading();
  }

  scheduleRetry(reason: string, failure: { status: number; body: string }): void {
    this.noteRetry(reason, failure);
    this.attempt();
  }

  /** Detaches and closes the upstream connection of the current attempt (its response is abandoned). */
  abortUpstream(): void {
    const uc = this.uc;
    if (uc === undefined) return;
    this.uc = undefined;
    uc.destroy();
  }

  // ---- upstream events ----

  upstreamData(buf: Buffer, n: number): void {
    const uc = this.uc as UpConn;
    this.lastActivity = this.x.now;
    switch (this.rs) {
      case R_HEAD: this.responseHead(buf, 0, n); break;
      case R_LEN: this.bodyLen(buf, 0, n); break;
      case R_CHUNKED: this.bodyChunked(buf, 0, n); break;
      case R_CLOSE: this.sendBody(this.clientMinor === 0 ? buf.subarray(0, n) : encodeChunk(buf, 0, n)); break;
      case R_TUNNEL: this.sendBody(buf.subarray(0, n)); break;
      default: uc.reusable = false; break;
    }
    // A write that did not complete still references these bytes: the next read needs a fresh buffer.
    if (this.c.socket.writableLength > 0) uc.retained = true;
  }

  responseHead(buf: Buffer, s: number, e: number): void {
    const RES = this.x.res;
    let b = buf;
    let start = s;
    let end = e;
    if (this.respCarry !== undefined) {
      b = Buffer.concat([this.respCarry, buf.subarray(s, e)]);
      start = 0;
      end = b.length;
      this.respCarry = undefined;
    }
    let r: number;
    for (;;) {
      r = parseResponseHead(b, start, end, RES, MAX_RESPONSE_HEAD);
      if (r === NEED_MORE) {
        if (end - start > MAX_RESPONSE_HEAD) {
          this.upstreamFailed('BAD_RESPONSE', 'response head too large');
          return;
        }
        // Copied: b may be the connection's read buffer, which the next read overwrites.
        this.respCarry = Buffer.from(b.subarray(start, end));
        return;
      }
      if (r === PARSE_ERROR) {
        this.upstreamFailed('BAD_RESPONSE', RES.errorReason);
        return;
      }
      if (RES.status >= 200) break;
      if (RES.status === 101) {
        if (this.upgrade) {
          this.tunnel(b, r, end);
          return;
        }
        this.upstreamFailed('BAD_RESPONSE', 'unexpected 101 Switching Protocols');
        return;
      }
      start = r; // 1xx informational: drop it and read the final response.
    }
    const status = RES.status;
    const uc = this.uc as UpConn;
    const d = this.core;
    d.health.response((this.up as Upstream).id, status);
    if (RETRY_STATUS.has(status) && this.canRetry(false, this.bodySent)) {
      this.abortUpstream();
      this.releaseHeld();
      this.scheduleRetry(`status ${status}`, this.statusFailure(status));
      return;
    }
    const isHead = this.method === 'HEAD';
    let kind: number;
    if (isHead || status === 204 || status === 304) kind = R_DONE;
    else if (RES.chunked) kind = R_CHUNKED;
    else if (RES.contentLength >= 0) kind = R_LEN;
    else kind = R_CLOSE;
    if ((RES.connection & CONN_CLOSE) !== 0 || kind === R_CLOSE || (RES.versionMinor === 0 && (RES.connection & CONN_KEEP_ALIVE) === 0)) uc.reusable = false;
    if (RES.keepAliveIndex >= 0) {
      const hint = keepAliveTimeoutMs(b, RES);
      // Like undici: leave a second of margin so we never reuse a socket the upstream is closing.
      if (hint > 0) uc.keepAliveMs = Math.min(uc.pool.keepAliveMs, Math.max(0, hint - 1000));
    }
    const old = this.clientMinor === 0;
    // An HTTP/1.0 client cannot take chunked: the body goes as is, delimited by closing.
    if (old && (kind === R_CHUNKED || kind === R_CLOSE)) {
      if (RES.codedChunked) {
        this.upstreamFailed('BAD_RESPONSE', 'a transfer-coded body (Transfer-Encoding other than chunked) cannot be sent to an HTTP/1.0 client');
        return;
      }
      this.closeClient = true;
    }
    this.status = status;
    this.responded = true;
    let tail = '';
    if (!old && (kind === R_CHUNKED || kind === R_CLOSE)) tail = RES.codedChunked ? `transfer-encoding: ${RES.get(b, 'transfer-encoding') ?? 'chunked'}\r\n` : 'transfer-encoding: chunked\r\n';
    if (!RES.hasDate) tail += `date: ${this.x.httpDate()}\r\n`;
    tail += `x-request-id: ${this.requestId}\r\n`;
    const sticky = this.stickySetCookie(this.c.proto === 'https');
    if (sticky !== undefined) tail += `set-cookie: ${sticky}\r\n`;
    if (this.explain !== undefined) {
      this.explain.outcome(String(status));
      tail += `x-switchyard-explain: ${this.explain.header()}\r\n`;
    }
    if (this.closeClient || this.c.closeAfter) {
      this.closeClient = true;
      tail += 'connection: close\r\n';
    } else if (old) tail += 'connection: keep-alive\r\n';
    tail += '\r\n';
    const listed = (RES.connection & CONN_OTHER) !== 0 ? connectionListed(b, RES) : undefined;
    // "HTTP/1.1" whatever the upstream spoke: the rest of its status line is copied as is.
    const first = RES.versionMinor === 1 ? undefined : `HTTP/1.1${b.latin1Slice(RES.start + 8, RES.lineEnd)}`;
    this.rs = kind;
    if (kind === R_DONE) {
      if (end > r) uc.reusable = false;
      this.c.socket.write(rewriteHead(b, RES, first, KEEP_ALL, listed, tail, undefined, 0, 0));
      this.complete();
      return;
    }
    let bodyEnd = end;
    let done = false;
    if (kind === R_LEN) {
      this.respRemaining = RES.contentLength;
      const n = Math.min(this.respRemaining, end - r);
      this.respRemaining -= n;
      bodyEnd = r + n;
      done = this.respRemaining === 0;
      if (end > bodyEnd) uc.reusable = false;
    } else if (kind === R_CHUNKED) {
      const dec = (this.respDecoder ??= new ChunkedDecoder(MAX_RESPONSE_HEAD));
      dec.reset();
      if (old) {
        this.c.socket.write(rewriteHead(b, RES, first, KEEP_ALL, listed, tail, undefined, 0, 0));
        this.bodyChunked(b, r, end);
        return;
      }
      const x = dec.feed(b, r, end, null);
      if (x === PARSE_ERROR) {
        this.upstreamFailed('BAD_RESPONSE', `bad chunked body: ${dec.error}`);
        return;
      }
      if (x >= 0) {
        bodyEnd = x;
        done = true;
        if (end > x) uc.reusable = false;
      }
    }
    if (kind === R_CLOSE) {
      this.sendBody(rewriteHead(b, RES, first, KEEP_ALL, listed, tail, undefined, 0, 0));
      if (end > r) this.sendBody(old ? b.subarray(r, end) : encodeChunk(b, r, end));
      return;
    }
    if (bodyEnd - r <= COPY_BODY_LIMIT) this.sendBody(rewriteHead(b, RES, first, KEEP_ALL, listed, tail, b, r, bodyEnd));
    else {
      this.sendBody(rewriteHead(b, RES, first, KEEP_ALL, listed, tail, undefined, 0, 0));
      this.sendBody(b.subarray(r, bodyEnd));
    }
    if (done) this.complete();
  }

  /** 101 to an Upgrade: the response head goes to the client, then bytes flow both ways untouched. */
  tunnel(b: Buffer, headEnd: number, end: number): void {
    const RES = this.x.res;
    this.core.health.response((this.up as Upstream).id, 101);
    this.status = 101;
    this.responded = true;
    this.rs = R_TUNNEL;
    if (this.totalTimer !== undefined) {
      clearTimeout(this.totalTimer);
      this.totalTimer = undefined;
    }
    const first = RES.versionMinor === 1 ? undefined : `HTTP/1.1${b.latin1Slice(RES.start + 8, RES.lineEnd)}`;
    this.c.socket.write(rewriteHead(b, RES, first, KEEP_UPGRADE, undefined, 'connection: upgrade\r\n\r\n', undefined, 0, 0));
    if (end > headEnd) this.sendBody(b.subarray(headEnd, end));
    this.c.startTunnel(this);
  }

  /** Client bytes after the 101: straight to the upstream. */
  tunnelData(d: Buffer): void {
    const uc = this.uc;
    if (uc === undefined) return;
    this.lastClientActivity = this.x.now;
    if (!uc.socket.write(d)) this.c.pauseReading();
    if (uc.socket.writableLength > 0) this.c.retained = true;
  }

  /** Either side of a tunnel ended or failed: both close, and the request is over. */
  tunnelClosed(): void {
    if (this.finished) return;
    this.abortUpstream();
    this.c.socket.destroy();
    this.finish(101);
  }

  bodyLen(buf: Buffer, s: number, e: number): void {
    const n = Math.min(this.respRemaining, e - s);
    this.respRemaining -= n;
    if (e - s > n) (this.uc as UpConn).reusable = false;
    if (n > 0) this.sendBody(buf.subarray(s, s + n));
    if (this.respRemaining === 0) this.complete();
  }

  bodyChunked(buf: Buffer, s: number, e: number): void {
    const dec = this.respDecoder as ChunkedDecoder;
    const sink = this.clientMinor === 0 ? (this.rawSink ??= new RawBodySink(this)) : null;
    const x = dec.feed(buf, s, e, sink);
    if (x === PARSE_ERROR) {
      this.upstreamFailed('BAD_RESPONSE', `bad chunked body: ${dec.error}`);
      return;
    }
    const bodyEnd = x >= 0 ? x : e;
    if (sink === null && bodyEnd > s) this.sendBody(buf.subarray(s, bodyEnd));
    if (x >= 0) {
      if (e > x) (this.uc as UpConn).reusable = false;
      this.complete();
    }
  }

  sendBody(b: Buffer): void {
    if (!this.c.socket.write(b) && !this.upstreamPaused && this.uc !== undefined) {
      this.upstreamPaused = true;
      this.uc.socket.pause();
    }
  }

  clientDrain(): void {
    // A slow reader is still a reader: its progress counts as activity for the idle timeout.
    this.lastActivity = this.x.now;
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.uc?.socket.resume();
    }
  }

  upstreamEnd(): void {
    if (this.rs === R_TUNNEL) {
      this.tunnelClosed();
      return;
    }
    if (this.rs === R_CLOSE) {
      if (this.clientMinor === 1) this.sendBody(LAST_CHUNK);
      this.complete();
      return;
    }
    // The upstream closed before the response was complete (or before it started).
    this.abortUpstream();
    this.upstreamError(Object.assign(new Error('upstream closed the connection early'), { code: 'UPSTREAM_CLOSED' }), false);
  }

  /** A malformed response: the connection is unusable, and the upstream counts as failed. */
  upstreamFailed(code: string, reason: string): void {
    this.abortUpstream();
    this.upstreamError(Object.assign(new Error(reason), { code }), false);
  }

  upstreamError(err: NodeJS.ErrnoException, beforeSendHint?: boolean): void {
    if (this.finished) return;
    if (this.rs === R_TUNNEL) {
      this.tunnelClosed();
      return;
    }
    const uc = this.uc;
    this.uc = undefined;
    const up = this.up as Upstream;
    // A connection that never connected sent nothing: safe to retry for any method.
    const beforeSend = beforeSendHint ?? (uc !== undefined && !uc.connected);
    this.releaseHeld();
    const d = this.core;
    const code = err.code ?? '';
    const local = RESOURCE_ERRORS.has(code);
    if (!local) d.health.failure(up.id);
    if (this.upstreamPaused) this.upstreamPaused = false;
    if (this.responded) {
      // Part of the response is already on its way: all we can do is cut the client connection.
      d.logger.debug({ err: err.message, upstream: up.id }, 'upstream failed mid-response');
      this.c.socket.destroy();
      this.finish(this.status);
      return;
    }
    if (local) {
      const l = this.resourceFailure(code);
      this.fail(l.status, l.body, 'retry-after: 1\r\n');
      return;
    }
    this.upstreamGone = beforeSend || GONE_ERRORS.has(code);
    const a = this.failureAnswer(code, err.message);
    if (this.canRetry(beforeSend, this.bodySent)) {
      this.scheduleRetry(code || err.message, a);
      return;
    }
    this.fail(a.status, a.body, '');
  }

  /** The response is complete: the upstream connection goes back to its pool. */
  complete(): void {
    this.rs = R_DONE;
    const uc = this.uc;
    this.uc = undefined;
    if (uc !== undefined) {
      if (this.upstreamPaused) {
        this.upstreamPaused = false;
        uc.socket.resume();
      }
      // An upstream that answered before taking the whole body is left with a half-read request.
      if (!this.reqDone || this.pending !== undefined || this.upgrade) uc.reusable = false;
      uc.pool.release(uc, this.x.now);
    }
    this.releaseHeld();
    this.finish(this.status);
  }

  // ---- the client side ----

  clientGone(): void {
    if (this.finished) return;
    this.abortUpstream();
    this.finish(0);
  }

  totalTimeout(): void {
    this.totalTimer = undefined;
    if (this.finished) return;
    this.abortUpstream();
    if (!this.responded) this.fail(504, 'switchyard: upstream did not answer within the total timeout\n', '');
    else {
      this.c.socket.destroy();
      this.finish(this.status);
    }
  }

  check(now: number, slack: number): void {
    if (this.finished) return;
    if (this.rs === R_TUNNEL) {
      const tunnelMs = this.core.config.timeouts.tunnelMs;
      // Either direction moving keeps a tunnel open; a slow reader's drains count as movement too.
      if (tunnelMs > 0 && now - Math.max(this.lastActivity, this.lastClientActivity) > tunnelMs + slack) {
        this.core.metrics.tunnelIdle(this.route);
        this.tunnelClosed();
      }
      return;
    }
    const t = this.timeouts();
    const uc = this.uc;
    if (this.rs === R_HEAD && uc !== undefined && uc.connected && now - this.sentAt > t.headerMs + slack) {
      this.abortUpstream();
      this.upstreamError(Object.assign(new Error('response header timeout'), { code: HEADERS_TIMEOUT }), false);
      return;
    }
    if (this.responded && this.rs !== R_DONE && now - this.lastActivity > t.idleMs + slack) {
      this.abortUpstream();
      this.releaseHeld();
      this.c.socket.destroy();
      this.finish(this.status);
      return;
    }
    if (!this.reqDone && now - this.lastClientActivity > t.idleMs + slack) {
      this.abortUpstream();
      this.releaseHeld();
      this.c.closeAfter = true;
      if (!this.responded) this.fail(408, 'switchyard: request body not received in time\n', '');
      else {
        this.c.socket.destroy();
        this.finish(this.status);
      }
    }
  }

  fail(status: number, body: string, extra: string): void {
    if (this.finished) return;
    this.abortUpstream();
    this.status = status;
    if (this.responded) this.c.socket.destroy();
    else {
      if (!this.reqDone) this.closeClient = true;
      const why = this.explain === undefined ? extra : `${extra}x-switchyard-explain: ${this.explain.header()}\r\n`;
      this.c.socket.write(plainResponse(status, body, why, this.closeClient || this.c.closeAfter, this.x.httpDate()));
    }
    this.finish(status);
  }

  finish(status: number): void {
    if (this.finished) return;
    if (this.totalTimer !== undefined) {
      clearTimeout(this.totalTimer);
      this.totalTimer = undefined;
    }
    this.settle(status);
    this.c.exchangeDone(this);
  }
}
