/**
 * An HTTP/2 client's request at an HTTP/1.1 instance over the fast plane's keep-alive sockets
 * (fast/pool.ts) and its strict parser (h1.ts): the request head built as bytes, the response head
 * parsed in place, the body de-framed (length, chunked, until close) into DATA for the client.
 *
 * Why not undici (call.ts, which the Node plane's balancers use): bench:h2 measured undici's
 * per-request work as the largest cost of an HTTP/2 request to an HTTP/1.1 instance after Node's
 * HTTP/2 session itself. One difference: trailers of a chunked HTTP/1.1 response are not passed on
 * (the fast plane's chunk decoder checks and skips them); gRPC never runs over HTTP/1.1.
 */
import { monotonicClock } from '../../core/clock.js';
import { CONN_CLOSE, CONN_KEEP_ALIVE, CONN_OTHER, ChunkedDecoder, HOP_BY_HOP_KIND, NEED_MORE, PARSE_ERROR, keepAliveTimeoutMs, parseResponseHead } from '../../core/http1/h1.js';
import type { ChunkSink, Head } from '../../core/http1/h1.js';
import { connectionListed, encodeChunk } from '../fast/head-rewrite.js';
import type { FastPool, UpConn, UpstreamUser } from '../fast/pool.js';
import type { CallSink, UpstreamCall } from './call.js';
import { fieldMap } from './headers.js';
import type { UpstreamTls } from '../upstream-tls.js';

const MAX_RESPONSE_HEAD = 64 * 1024;
/** Body pieces up to this size are copied out of the connection's reused read buffer; larger ones keep it (a fresh buffer for the next read). */
const COPY_LIMIT = 16 * 1024;
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

const S_HEAD = 0;
const S_LEN = 1;
const S_CHUNKED = 2;
const S_CLOSE = 3;
const S_DONE = 4;

export interface FastCallOptions {
  readonly method: string;
  readonly path: string;
  /** Request fields as undici's flat list (Host first), from h1UpstreamHeaders. */
  readonly headers: readonly string[];
  readonly hasBody: boolean;
  /** The client declared a length: the body goes as is; otherwise it is chunked. */
  readonly hasLength: boolean;
  readonly tls: UpstreamTls | undefined;
}

export class FastH1Call implements UpstreamCall, UpstreamUser, ChunkSink {
  /** The call keeps no timers: the exchange's ticker times the response head and idle gaps. */
  readonly ownTimeouts = false;
  readonly #sink: CallSink;
  readonly #res: Head;
  readonly #isHead: boolean;
  readonly #chunkedBody: boolean;
  #uc: UpConn | undefined;
  #state = S_HEAD;
  #carry: Buffer | undefined;
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;
  #reqDone: boolean;
  #done = false;
  #responded = false;

  constructor(pool: FastPool, o: FastCallOptions, res: Head, sink: CallSink) {
    this.#sink = sink;
    this.#res = res;
    this.#isHead = o.method === 'HEAD';
    this.#chunkedBody = o.hasBody && !o.hasLength;
    this.#reqDone = !o.hasBody;
    let head = `${o.method} ${o.path} HTTP/1.1\r\n`;
    const h = o.headers;
    for (let i = 0; i < h.length; i += 2) head += `${h[i]!}: ${h[i + 1]!}\r\n`;
    head += this.#chunkedBody ? 'transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n' : 'connection: keep-alive\r\n\r\n';
    const uc = pool.acquire(this, o.tls);
    this.#uc = uc;
    // A connecting socket queues this until connected; if the connect fails nothing was sent.
    uc.socket.write(head, 'latin1');
  }

  write(chunk: Buffer): boolean {
    const uc = this.#uc;
    if (uc === undefined || this.#done) return true;
    return uc.socket.write(this.#chunkedBody ? encodeChunk(chunk, 0, chunk.length) : chunk);
  }

  end(): void {
    this.#reqDone = true;
    const uc = this.#uc;
    if (uc !== undefined && !this.#done && this.#chunkedBody) uc.socket.write(LAST_CHUNK);
  }

  pause(): void {
    this.#uc?.socket.pause();
  }

  resume(): void {
    this.#uc?.socket.resume();
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    const uc = this.#uc;
    this.#uc = undefined;
    uc?.destroy();
  }

  // ---- the connection's events (UpstreamUser) ----

  upstreamConnected(): void {
    // Nothing to do: writes made while connecting are flushed by the socket.
  }

  upstreamDrain(): void {
    if (!this.#done) this.#sink.callDrain();
  }

  upstreamData(buf: Buffer, n: number): void {
    if (this.#done) return;
    switch (this.#state) {
      case S_HEAD: this.#head(buf, 0, n); break;
      case S_LEN: this.#bodyLen(buf, 0, n); break;
      case S_CHUNKED: this.#bodyChunked(buf, 0, n); break;
      case S_CLOSE: this.#data(buf, 0, n); break;
      default: if (this.#uc !== undefined) this.#uc.reusable = false;
    }
  }

  upstreamEnd(): void {
    if (this.#done) return;
    if (this.#state === S_CLOSE) {
      this.#complete();
      return;
    }
    this.#fail('UPSTREAM_CLOSED', 'upstream closed the connection early', false);
  }

  upstreamError(err: NodeJS.ErrnoException): void {
    if (this.#done) return;
    const uc = this.#uc;
    // A connection that never connected sent nothing: the instance never saw the request.
    this.#fail(err.code ?? '', err.message, uc !== undefined && !uc.connected && !this.#responded);
  }

  // ---- the response ----

  #head(buf: Buffer, s: number, e: number): void {
    const RES = this.#res;
    let b = buf;
    let start = s;
    let end = e;
    if (this.#carry !== undefined) {
      b = Buffer.concat([this.#carry, buf.subarray(s, e)]);
      start = 0;
      end = b.length;
      this.#carry = undefined;
    }
    let r: number;
    for (;;) {
      r = parseResponseHead(b, start, end, RES, MAX_RESPONSE_HEAD);
      if (r === NEED_MORE) {
        if (end - start > MAX_RESPONSE_HEAD) this.#fail('BAD_RESPONSE', 'response head too large', false);
        // Copied: b may be the connection's read buffer, which the next read overwrites.
        else this.#carry = Buffer.from(b.subarray(start, end));
        return;
      }
      if (r === PARSE_ERROR) {
        this.#fail('BAD_RESPONSE', RES.errorReason, false);
        return;
      }
      if (RES.status >= 200) break;
      if (RES.status === 101) {
        this.#fail('BAD_RESPONSE', 'unexpected 101 Switching Protocols', false);
        return;
      }
      start = r; // 1xx informational: dropped
    }
    const uc = this.#uc as UpConn;
    const status = RES.status;
    let state: number;
    if (this.#isHead || status === 204 || status === 304) state = S_DONE;
    else if (RES.chunked) state = S_CHUNKED;
    else if (RES.contentLength >= 0) state = S_LEN;
    else state = S_CLOSE;
    if ((RES.connection & CONN_CLOSE) !== 0 || state === S_CLOSE || (RES.versionMinor === 0 && (RES.connection & CONN_KEEP_ALIVE) === 0)) uc.reusable = false;
    if (RES.keepAliveIndex >= 0) {
      const hint = keepAliveTimeoutMs(b, RES);
      if (hint > 0) uc.keepAliveMs = Math.min(uc.pool.keepAliveMs, Math.max(0, hint - 1000));
    }
    const headers = fieldMap();
    headers[':status'] = status;
    const listed = (RES.connection & CONN_OTHER) !== 0 ? connectionListed(b, RES) : undefined;
    for (let h = 0; h < RES.count; h++) {
      if (HOP_BY_HOP_KIND[RES.kind[h]!] === 1) continue;
      const name = RES.name(b, h);
      if (listed !== undefined && listed.has(name) && name !== 'content-length') continue;
      const value = RES.value(b, h);
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (name === 'set-cookie') headers[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
      else headers[name] = `${String(prev)}, ${value}`;
    }
    this.#state = state;
    this.#responded = true;
    const empty = state === S_DONE || (state === S_LEN && RES.contentLength === 0);
    if (empty) {
      // No body: the head ends the stream (one HEADERS frame with END_STREAM).
      if (end > r) uc.reusable = false;
      this.#complete(true);
      this.#sink.callResponse(status, headers, true);
      return;
    }
    this.#sink.callResponse(status, headers, false);
    if (this.#done) return;
    if (state === S_LEN) {
      this.#remaining = RES.contentLength;
      if (end > r) this.#bodyLen(b, r, end);
    } else if (state === S_CHUNKED) {
      const dec = (this.#decoder ??= new ChunkedDecoder(MAX_RESPONSE_HEAD));
      dec.reset();
      if (end > r) this.#bodyChunked(b, r, end);
    } else if (end > r) this.#data(b, r, end);
  }

  #bodyLen(buf: Buffer, s: number, e: number): void {
    const n = Math.min(this.#remaining, e - s);
    this.#remaining -= n;
    if (e - s > n && this.#uc !== undefined) this.#uc.reusable = false;
    if (this.#remaining === 0) {
      // The last piece goes with the end of the stream.
      this.#complete(false, n > 0 ? this.#piece(buf, s, s + n) : undefined);
      return;
    }
    if (n > 0) this.#data(buf, s, s + n);
  }

  #bodyChunked(buf: Buffer, s: number, e: number): void {
    const dec = this.#decoder as ChunkedDecoder;
    const x = dec.feed(buf, s, e, this);
    if (this.#done) return;
    if (x === PARSE_ERROR) {
      this.#fail('BAD_RESPONSE', `bad chunked body: ${dec.error}`, false);
      return;
    }
    if (x >= 0) {
      if (e > x && this.#uc !== undefined) this.#uc.reusable = false;
      this.#complete();
    }
  }

  /** Decoded chunk data (ChunkSink). */
  chunkData(buf: Buffer, s: number, e: number): void {
    if (!this.#done) this.#data(buf, s, e);
  }

  /** Bytes of the connection's read buffer for the client: small pieces copied, large ones keep the buffer (the next read gets a fresh one). */
  #piece(buf: Buffer, s: number, e: number): Buffer {
    if (e - s <= COPY_LIMIT) return Buffer.from(buf.subarray(s, e));
    (this.#uc as UpConn).retained = true;
    return buf.subarray(s, e);
  }

  #data(buf: Buffer, s: number, e: number): void {
    if (!this.#sink.callData(this.#piece(buf, s, e))) this.#uc?.socket.pause();
  }

  /** The response is over: the connection goes back to its pool; `quiet` when the sink is told by the caller. */
  #complete(quiet = false, last?: Buffer): void {
    this.#state = S_DONE;
    this.#done = true;
    const uc = this.#uc;
    this.#uc = undefined;
    if (uc !== undefined) {
      uc.socket.resume();
      // An instance that answered before taking the whole body is left with a half-read request.
      if (!this.#reqDone) uc.reusable = false;
      uc.pool.release(uc, monotonicClock.now());
    }
    if (!quiet) this.#sink.callEnd(undefined, last);
  }

  #fail(code: string, message: string, refused: boolean): void {
    this.#done = true;
    const uc = this.#uc;
    this.#uc = undefined;
    uc?.destroy();
    this.#sink.callFailed(code, message, refused);
  }
}
