/**
 * The fast HTTP/1.1 data plane: raw client sockets parsed with h1.ts, forwarded over pooled
 * keep-alive upstream sockets (fast-pool.ts), with the same routing, balancing, retries, passive
 * health, timeouts, limits, metrics and access log as the Node plane (http-proxy.ts).
 *
 * Why: profiles of the Node plane put our own code under 2% of CPU; Node's http server and
 * undici (IncomingMessage/ServerResponse streams, header objects, validation regexes, per-request
 * listeners) took ~60%. Here a request is one Exchange object, a request head copied byte for
 * byte into one Buffer (kept header lines plus the X-Forwarded-* tail), and a response head
 * rewritten the same way, usually in the same write as the body.
 *
 * What this plane does not do itself it hands to Node's http server at a request boundary,
 * bytes and all: Upgrade/WebSocket, HTTP/1.0, absolute-form and CONNECT requests. The connection then belongs to the Node plane for good.
 *
 * Requests on a connection are served one at a time; pipelined requests wait, unread, until
 * the one before has been answered (responses can never be reordered or interleaved).
 *
 * Timeouts run off one coarse ticker per proxy rather than a timer per request: each tick
 * stamps `clock.now` and walks the connections.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Upstream, UpstreamState, UpstreamStates } from '../balancer/index.js';
import type { LbConfig } from '../config/lb.js';
import type { CompiledRoute, RoutingSnapshot } from '../routing/snapshot.js';
import type { SnapshotStore } from '../routing/snapshot-store.js';
import {
  CONN_CLOSE, CONN_KEEP_ALIVE, CONN_OTHER, ChunkedDecoder, H_EXPECT, H_X_FORWARDED_FOR, HOP_BY_HOP_KIND, Head, NEED_MORE, PARSE_ERROR,
  keepAliveTimeoutMs, parseRequestHead, parseResponseHead,
} from './h1.js';
import type { ChunkSink } from './h1.js';
import type { FastPools, UpConn, UpstreamUser } from './fast-pool.js';
import type { PassiveHealth } from './passive-health.js';
import { RETRY_STATUS, mayRetry } from './retry-policy.js';
import type { RetryCounters } from './retry-policy.js';
import type { ProxyMetrics } from './http-proxy.js';

export interface FastProxyDeps {
  snapshots: SnapshotStore;
  pools: FastPools;
  states: UpstreamStates;
  health: PassiveHealth;
  config: LbConfig;
  metrics: ProxyMetrics;
  logger: Logger;
  accessLog?: Logger;
  /** Requests and retries in flight, shared with the Node plane so both draw on one retry budget. */
  counters: RetryCounters;
}

/** Idle client connections (between requests) are closed after this, as the Node plane's keepAliveTimeout. */
const CLIENT_KEEP_ALIVE_MS = 65_000;
/** Response heads larger than this are refused (502): the upstream is broken or hostile. */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Request-body bytes held while no upstream connection takes them, before the client is paused. */
const PENDING_LIMIT = 64 * 1024;
/** Below this a response body is copied into the head's buffer (one write); above, written as is. */
const COPY_BODY_LIMIT = 16 * 1024;
/** How long a refused client's remaining input is drained before the socket is destroyed. */
const LINGER_MS = 2000;

/** Coarse time for timeouts, refreshed by every proxy's ticker (ms since the epoch). */
const clock = { now: Date.now() };

let dateSecond = -1;
let dateString = '';
/** The Date header value, recomputed at most once a second (on the coarse clock). */
function httpDate(): string {
  const s = Math.floor(clock.now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateString = new Date(s * 1000).toUTCString();
  }
  return dateString;
}

// One parser per direction: a head is parsed and used synchronously before any other parse runs.
const REQ = new Head();
const RES = new Head();

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const EMPTY_CTX = Object.freeze({});
const EMPTY_HEADERS: IncomingHttpHeaders = Object.freeze({}) as IncomingHttpHeaders;

interface SnapInfo {
  /** The single catch-all route (the seeds' setup): no matching needed. */
  only: CompiledRoute | undefined;
  /** Some route matches on headers: only then is a header object built for matching. */
  needsHeaders: boolean;
}
const snapInfos = new WeakMap<RoutingSnapshot, SnapInfo>();
function snapInfo(snap: RoutingSnapshot): SnapInfo {
  let i = snapInfos.get(snap);
  if (i === undefined) {
    const first = snap.routes[0];
    const only = snap.routes.length === 1 && first && first.spec.host === undefined && first.spec.pathPrefix === '/' && first.spec.headers.length === 0 ? first : undefined;
    i = { only, needsHeaders: snap.routes.some((r) => r.spec.headers.length > 0) };
    snapInfos.set(snap, i);
  }
  return i;
}

/** req.headers as Node would build it, for header-matching routes (rare: built only when a route needs it). */
function headersObject(buf: Buffer, p: Head): IncomingHttpHeaders {
  const o: Record<string, string> = {};
  for (let h = 0; h < p.count; h++) {
    const n = p.name(buf, h);
    const v = p.value(buf, h);
    const prev = o[n];
    o[n] = prev === undefined ? v : `${prev}${n === 'cookie' ? '; ' : ', '}${v}`;
  }
  return o as IncomingHttpHeaders;
}

/** Names listed in Connection (beyond close/keep-alive/upgrade): more hop-by-hop headers to drop. */
function connectionListed(buf: Buffer, p: Head): Set<string> | undefined {
  if ((p.connection & CONN_OTHER) === 0) return undefined;
  const out = new Set<string>();
  const v = p.get(buf, 'connection') ?? '';
  for (const t of v.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade') out.add(n);
  }
  return out;
}

/**
 * A head for the other side: `first` (a rewritten first line) or the original first line, the
 * header lines that survive `skip`, copied in runs, then `tail` (added headers and the blank
 * line), then optionally body bytes — all in one Buffer for one write.
 */
function rewriteHead(buf: Buffer, p: Head, first: string | undefined, firstFrom: number, request: boolean, listed: Set<string> | undefined, tail: string, body: Buffer | undefined, bs: number, be: number): Buffer {
  let size = (first === undefined ? p.lineEnd - firstFrom : first.length) + tail.length + (be - bs);
  const n = p.count;
  for (let h = 0; h < n; h++) if (keepHeader(buf, p, h, request, listed)) size += p.le[h]! - p.ns[h]!;
  const out = Buffer.allocUnsafe(size);
  let o = first === undefined ? buf.copy(out, 0, firstFrom, p.lineEnd) : out.latin1Write(first, 0);
  let runStart = -1;
  let runEnd = -1;
  for (let h = 0; h < n; h++) {
    if (keepHeader(buf, p, h, request, listed)) {
      if (runStart < 0) runStart = p.ns[h]!;
      runEnd = p.le[h]!;
    } else if (runStart >= 0) {
      o += buf.copy(out, o, runStart, runEnd);
      runStart = -1;
    }
  }
  if (runStart >= 0) o += buf.copy(out, o, runStart, runEnd);
  o += out.latin1Write(tail, o);
  if (body !== undefined && be > bs) body.copy(out, o, bs, be);
  return out;
}

function keepHeader(buf: Buffer, p: Head, h: number, request: boolean, listed: Set<string> | undefined): boolean {
  const k = p.kind[h]!;
  if (HOP_BY_HOP_KIND[k] === 1) return false;
  // Requests: X-Forwarded-For is re-emitted with the client appended; Expect was answered here.
  if (request && (k === H_X_FORWARDED_FOR || k === H_EXPECT)) return false;
  return listed === undefined || !listed.has(p.name(buf, h));
}

/** `hex CRLF data CRLF`: one chunk of a body we frame ourselves. */
function encodeChunk(buf: Buffer, s: number, e: number): Buffer {
  const hex = (e - s).toString(16);
  const out = Buffer.allocUnsafe(hex.length + 4 + (e - s));
  out.latin1Write(hex, 0);
  out[hex.length] = 13;
  out[hex.length + 1] = 10;
  buf.copy(out, hex.length + 2, s, e);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function rewritePath(url: string, strip: string | undefined): string | undefined {
  if (strip === undefined || !url.startsWith(strip)) return undefined;
  const rest = url.slice(strip.length);
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest[0] === '/' ? rest : `/${rest}`;
}

function plainResponse(status: number, body: string, extra: string, close: boolean): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ndate: ${httpDate()}\r\n${extra}${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}

export class FastHttpProxy {
  readonly d: FastProxyDeps;
  readonly conns = new Set<ClientConn>();
  readonly tickMs: number;
  closing = false;
  #server: Server | undefined;
  #nodeListener: ((socket: Socket) => void) | undefined;
  #ticker: NodeJS.Timeout | undefined;

  constructor(deps: FastProxyDeps) {
    this.d = deps;
    const t = deps.config.timeouts;
    // Fine enough for the shortest timeout configured, never busier than 20 ticks a second.
    this.tickMs = Math.max(50, Math.min(1000, Math.floor(Math.min(t.clientHeaderMs, t.headerMs, t.idleMs, 4000) / 4)));
  }

  /**
   * Takes over a Node http server's connections. Node's own connection listener is kept to hand
   * connections this plane does not serve to the server's request/upgrade handlers.
   */
  attach(server: Server): void {
    const own = server.listeners('connection') as ((socket: Socket) => void)[];
    if (own.length !== 1) throw new Error(`expected one connection listener on the http server, found ${own.length}`);
    this.#nodeListener = own[0];
    this.#server = server;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => this.accept(socket));
    this.#ticker = setInterval(() => this.tick(), this.tickMs);
    this.#ticker.unref();
  }

  accept(socket: Socket): void {
    const c = new ClientConn(this, socket);
    this.conns.add(c);
  }

  handOff(c: ClientConn, bytes: Buffer | undefined): void {
    c.detach();
    const s = c.socket;
    s.pause();
    if (bytes !== undefined && bytes.length > 0) s.unshift(bytes);
    (this.#nodeListener as (socket: Socket) => void).call(this.#server, s);
    s.resume();
  }

  tick(): void {
    const now = Date.now();
    clock.now = now;
    for (const c of this.conns) c.check(now);
    this.d.pools.sweep(now);
  }

  /** Shutdown, step one: idle connections close now, busy ones after their current exchange. */
  closeIdle(): void {
    this.closing = true;
    for (const c of [...this.conns]) c.closeWhenIdle();
  }

  destroyAll(): void {
    for (const c of [...this.conns]) c.socket.destroy();
  }

  stop(): void {
    if (this.#ticker) clearInterval(this.#ticker);
  }
}

const R_HEAD = 0;
const R_LEN = 1;
const R_CHUNKED = 2;
const R_CLOSE = 3;
const R_DONE = 4;

/** One client connection: parses heads, runs one Exchange at a time, queues what comes after. */
class ClientConn {
  readonly p: FastHttpProxy;
  readonly socket: Socket;
  readonly ip: string;
  ex: Exchange | undefined;
  /** A request head that spans reads, accumulated until complete. */
  carry: Buffer | undefined;
  carryLen = 0;
  /** Bytes that arrived after the current request (pipelining), parsed once it is answered. */
  queued: Buffer | undefined;
  /** Coarse time the current, still incomplete head started (0: none). */
  headSince = 0;
  idleSince = clock.now;
  served = 0;
  /** Close once the current exchange is over (client asked, shutdown, unread request body). */
  closeAfter = false;
  closed = false;
  lingering = false;
  handedOff = false;
  readPaused = false;
  #inProcess = false;
  readonly #onData = (d: Buffer): void => this.onData(d);
  readonly #onEnd = (): void => this.onEnd();
  readonly #onClose = (): void => this.onClose();
  readonly #onError = (): void => void this.socket.destroy();
  readonly #onDrain = (): void => this.ex?.clientDrain();

  constructor(p: FastHttpProxy, socket: Socket) {
    this.p = p;
    this.socket = socket;
    this.ip = socket.remoteAddress ?? '';
    if (p.closing) this.closeAfter = true;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    socket.on('drain', this.#onDrain);
  }

  detach(): void {
    this.handedOff = true;
    this.p.conns.delete(this);
    const s = this.socket;
    s.off('data', this.#onData);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    s.off('error', this.#onError);
    s.off('drain', this.#onDrain);
  }

  onData(d: Buffer): void {
    if (this.lingering) return;
    const ex = this.ex;
    if (ex !== undefined) {
      if (!ex.reqDone) {
        const used = ex.requestBody(d, 0, d.length);
        if (used < d.length && this.ex === ex) this.queue(d.subarray(used));
      } else this.queue(d);
      return;
    }
    if (this.carry !== undefined) {
      this.appendCarry(d);
      // Parse again only when a line may have ended: a head trickled byte by byte costs one
      // parse per line, not one per byte.
      if (d.indexOf(10) < 0) {
        if (this.carryLen > this.p.d.config.limits.maxHeaderSize) this.reject(431, 'header section too large');
        return;
      }
      const b = this.carry.subarray(0, this.carryLen);
      this.carry = undefined;
      this.carryLen = 0;
      this.process(b, 0);
      return;
    }
    this.process(d, 0);
  }

  appendCarry(d: Buffer): void {
    let c = this.carry as Buffer;
    if (this.carryLen + d.length > c.length) {
      const bigger = Buffer.allocUnsafe(Math.max(c.length * 2, this.carryLen + d.length));
      c.copy(bigger, 0, 0, this.carryLen);
      this.carry = c = bigger;
    }
    d.copy(c, this.carryLen);
    this.carryLen += d.length;
  }

  queue(d: Buffer): void {
    this.queued = this.queued === undefined ? d : Buffer.concat([this.queued, d]);
    // Pipelined requests wait unread; beyond a head's worth plus some, stop reading.
    if (this.queued.length > this.p.d.config.limits.maxHeaderSize + PENDING_LIMIT) this.pauseReading();
  }

  pauseReading(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  /** Parses and serves requests from buf[pos..] until one is in flight or the bytes run out. */
  process(buf: Buffer, pos: number): void {
    this.#inProcess = true;
    const end = buf.length;
    const max = this.p.d.config.limits.maxHeaderSize;
    while (pos < end && this.ex === undefined && !this.closed && !this.handedOff && !this.lingering) {
      const r = parseRequestHead(buf, pos, end, REQ, max);
      if (r === NEED_MORE) {
        if (end - pos > max) {
          this.reject(431, 'header section too large');
          break;
        }
        if (this.headSince === 0) this.headSince = clock.now;
        const c = Buffer.allocUnsafe(Math.max(4096, (end - pos) * 2));
        buf.copy(c, 0, pos, end);
        this.carry = c;
        this.carryLen = end - pos;
        break;
      }
      if (r === PARSE_ERROR) {
        this.reject(REQ.errorStatus, REQ.errorReason);
        break;
      }
      this.headSince = 0;
      // What the Node plane does better or at all: hand it over at this request boundary.
      if (REQ.versionMinor === 0 || REQ.upgrade || buf[REQ.targetStart] !== 0x2f || REQ.method === 'CONNECT') {
        this.p.handOff(this, buf.subarray(pos));
        break;
      }
      this.served++;
      const ex = new Exchange(this);
      this.ex = ex;
      pos = ex.start(buf, r, end);
    }
    this.#inProcess = false;
    if (pos < end && this.ex !== undefined && !this.closed && !this.lingering) this.queue(buf.subarray(pos));
  }

  /** The current exchange is over: close, or go on with whatever was queued behind it. */
  exchangeDone(ex: Exchange): void {
    if (this.ex !== ex) return;
    this.ex = undefined;
    this.idleSince = clock.now;
    if (this.closed || this.lingering) return;
    if (!ex.reqDone) {
      // The client is still sending a body nobody will read: the connection cannot be reused.
      this.linger();
      return;
    }
    if (this.closeAfter || ex.closeClient) {
      this.socket.end();
      this.closed = true;
      return;
    }
    this.resumeReading();
    const q = this.queued;
    if (q !== undefined && !this.#inProcess) {
      this.queued = undefined;
      this.process(q, 0);
    }
  }

  /** A bad request: answer with a clear reason, then close (after draining what the client still sends). */
  reject(status: number, reason: string): void {
    if (this.closed || this.lingering) return;
    this.socket.write(plainResponse(status, `switchyard: ${reason}\n`, '', true));
    this.linger();
  }

  /**
   * Ends our side but keeps reading (and dropping) for a moment: closing with unread input makes
   * the kernel send RST, which can destroy the response before the client reads it.
   */
  linger(): void {
    if (this.lingering) return;
    this.lingering = true;
    this.carry = undefined;
    this.queued = undefined;
    this.socket.end();
    this.resumeReading();
    setTimeout(destroySocket, LINGER_MS, this.socket).unref();
  }

  onEnd(): void {
    const ex = this.ex;
    if (ex === undefined) {
      if (!this.closed) {
        this.closed = true;
        this.socket.end();
      }
      return;
    }
    if (!ex.reqDone) {
      // The request was cut short: nothing complete to forward.
      ex.clientGone();
      this.socket.destroy();
      return;
    }
    this.closeAfter = true;
  }

  onClose(): void {
    this.closed = true;
    this.p.conns.delete(this);
    this.ex?.clientGone();
  }

  closeWhenIdle(): void {
    this.closeAfter = true;
    if (this.ex === undefined && this.carry === undefined) {
      this.closed = true;
      this.socket.end();
      setTimeout(destroySocket, LINGER_MS, this.socket).unref();
    }
  }

  check(now: number): void {
    if (this.closed || this.lingering) return;
    const ex = this.ex;
    const cfg = this.p.d.config.timeouts;
    const slack = this.p.tickMs;
    if (ex !== undefined) {
      ex.check(now, slack);
      return;
    }
    if (this.headSince !== 0) {
      if (now - this.headSince > cfg.clientHeaderMs + slack) this.reject(408, `request head not received within ${cfg.clientHeaderMs} ms`);
    } else if (now - this.idleSince > (this.served === 0 ? cfg.clientHeaderMs : CLIENT_KEEP_ALIVE_MS) + slack) {
      this.closed = true;
      this.socket.destroy();
    }
  }
}

function destroySocket(s: Socket): void {
  s.destroy();
}

function onTotalTimeout(ex: Exchange): void {
  ex.totalTimeout();
}

/** One request through its attempts; also the sink of its chunked body and the user of its upstream connection. */
class Exchange implements UpstreamUser, ChunkSink {
  readonly c: ClientConn;
  readonly p: FastHttpProxy;
  readonly started = performance.now();
  route!: CompiledRoute;
  method = '';
  url = '';
  host: string | undefined;
  hashKey: string | undefined;
  requestId = '';
  upHead: Buffer | undefined;
  /** Answer with Connection: close and close after this response. */
  closeClient = false;
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
  lastClientActivity = 0;
  // attempts
  up: Upstream | undefined;
  held: UpstreamState | undefined;
  uc: UpConn | undefined;
  attempts = 0;
  tried: Set<string> | undefined;
  isRetry = false;
  upstreamRefused = false;
  sentAt = 0;
  // response
  rs = R_HEAD;
  respRemaining = 0;
  respDecoder: ChunkedDecoder | undefined;
  respCarry: Buffer | undefined;
  responded = false;
  status = 0;
  upstreamPaused = false;
  lastActivity = 0;
  finished = false;
  totalTimer: NodeJS.Timeout | undefined;

  constructor(c: ClientConn) {
    this.c = c;
    this.p = c.p;
  }

  /** Runs synchronously on the freshly parsed REQ; returns the offset after the body bytes it took from buf. */
  start(buf: Buffer, headEnd: number, end: number): number {
    const P = REQ;
    const d = this.p.d;
    this.method = P.method;
    this.url = buf.latin1Slice(P.targetStart, P.targetEnd);
    this.host = P.hostIndex >= 0 ? P.value(buf, P.hostIndex) : undefined;
    this.closeClient = (P.connection & CONN_CLOSE) !== 0 || this.c.closeAfter;
    if (P.chunked) {
      this.reqDone = false;
      this.reqDecoder = new ChunkedDecoder(d.config.limits.maxHeaderSize);
    } else if (P.contentLength > 0) {
      this.reqDone = false;
      this.reqRemaining = P.contentLength;
    }
    const snap = d.snapshots.current;
    if (snap === undefined) return this.early(buf, headEnd, end, 503, 'switchyard: no routing table yet (waiting for the registry)\n', 'retry-after: 1\r\n');
    const info = snapInfo(snap);
    const q = this.url.indexOf('?');
    const path = q < 0 ? this.url : this.url.slice(0, q);
    const route = info.only ?? snap.match(this.host, path, info.needsHeaders ? headersObject(buf, P) : EMPTY_HEADERS);
    if (route === undefined) return this.early(buf, headEnd, end, 404, `switchyard: no route for ${this.host ?? ''}${path}\n`, '');
    this.route = route;
    const max = d.config.limits.maxBody;
    if (max > 0 && P.contentLength > max) {
      this.closeClient = true;
      return this.early(buf, headEnd, end, 413, `switchyard: request body larger than ${max} bytes\n`, '');
    }
    if (P.expect) {
      // Answered here, as nginx and Node's server do: the upstream gets the body without the ritual.
      if ((P.get(buf, 'expect') ?? '').trim().toLowerCase() !== '100-continue') {
        this.closeClient = true;
        return this.early(buf, headEnd, end, 417, 'switchyard: only "Expect: 100-continue" is supported\n', '');
      }
      if (!this.reqDone) this.c.socket.write(CONTINUE);
    }
    // Request id, forwarding headers and the upstream head: built once, reused by every attempt.
    let requestId: string | undefined;
    if (P.requestIdIndex >= 0) requestId = P.value(buf, P.requestIdIndex);
    const hb = route.spec.hashBy;
    if (hb !== undefined) {
      if (hb.kind === 'ip') this.hashKey = this.c.ip;
      else if (hb.kind === 'header') this.hashKey = P.get(buf, hb.name);
      else this.hashKey = cookieValue(P.get(buf, 'cookie'), hb.name);
    }
    let tail = '';
    if (P.chunked) tail += 'transfer-encoding: chunked\r\n';
    let xff = this.c.ip;
    if (P.xff > 0) {
      const prior = P.get(buf, 'x-forwarded-for');
      if (prior !== undefined) xff = `${prior}, ${xff}`;
    }
    tail += `x-forwarded-for: ${xff}\r\n`;
    if (!P.forwardedProto) tail += 'x-forwarded-proto: http\r\n';
    if (!P.forwardedHost && this.host !== undefined) tail += `x-forwarded-host: ${this.host}\r\n`;
    if (requestId === undefined) {
      requestId = randomUUID();
      tail += `x-request-id: ${requestId}\r\n`;
    }
    tail += 'connection: keep-alive\r\n\r\n';
    this.requestId = requestId;
    const rewritten = rewritePath(this.url, route.spec.stripPrefix);
    this.upHead = rewriteHead(buf, P, rewritten === undefined ? undefined : `${this.method} ${rewritten} HTTP/1.1\r\n`, P.start, true, connectionListed(buf, P), tail, undefined, 0, 0);

    d.counters.activeRequests++;
    const total = d.config.timeouts.totalMs;
    if (total > 0) this.totalTimer = setTimeout(onTotalTimeout, total, this);
    this.lastClientActivity = clock.now;
    let pos = headEnd;
    if (!this.reqDone) pos = this.requestBody(buf, headEnd, end);
    if (!this.finished) this.attempt();
    return pos;
  }

  /** An answer before any upstream is involved; the body (if any) is skipped when it is all here, else the connection closes. */
  early(_buf: Buffer, headEnd: number, end: number, status: number, body: string, extra: string): number {
    let pos = headEnd;
    if (!this.reqDone && this.reqDecoder === undefined && end - headEnd >= this.reqRemaining) {
      pos = headEnd + this.reqRemaining;
      this.reqDone = true;
    }
    if (!this.reqDone) this.closeClient = true;
    this.status = status;
    this.c.socket.write(plainResponse(status, body, extra, this.closeClient));
    this.finished = true;
    this.c.exchangeDone(this);
    return this.reqDone ? pos : end;
  }

  // ---- request body ----

  /** Takes body bytes from buf[pos..end); returns where the body ended (or end). */
  requestBody(buf: Buffer, pos: number, end: number): number {
    this.lastClientActivity = clock.now;
    if (this.reqDecoder === undefined) {
      const n = Math.min(this.reqRemaining, end - pos);
      this.reqRemaining -= n;
      if (this.reqRemaining === 0) this.reqDone = true;
      if (n > 0) this.bodyPiece(buf.subarray(pos, pos + n));
      return pos + n;
    }
    const r = this.reqDecoder.feed(buf, pos, end, this);
    if (r === PARSE_ERROR) {
      this.badRequestBody(this.reqDecoder.error);
      return end;
    }
    if (r === NEED_MORE) return end;
    this.reqDone = true;
    this.bodyPiece(LAST_CHUNK);
    return r;
  }

  chunkData(buf: Buffer, s: number, e: number): void {
    if (this.finished) return;
    this.bodySeen += e - s;
    const max = this.p.d.config.limits.maxBody;
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
    const uc = this.uc;
    if (uc !== undefined && uc.connected && this.pending === undefined) {
      this.bodySent = true;
      if (!uc.socket.write(piece)) this.c.pauseReading();
      return;
    }
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
    const tried = this.tried;
    const key = this.hashKey;
    const up = this.route.group.strategy.pick(key === undefined ? (tried ? { exclude: tried } : EMPTY_CTX) : (tried ? { hashKey: key, exclude: tried } : { hashKey: key }));
    if (up === undefined) {
      const any = this.route.group.upstreams.length > 0;
      this.fail(503, any
        ? `switchyard: no healthy instance of ${this.route.spec.service} left to try\n`
        : `switchyard: no healthy instance of ${this.route.spec.service}\n`, 'retry-after: 1\r\n');
      return;
    }
    this.up = up;
    const st = this.p.d.states.get(up.id);
    st.inFlight++;
    this.held = st;
    this.attempts++;
    this.rs = R_HEAD;
    this.respCarry = undefined;
    this.sentAt = clock.now;
    const uc = this.p.d.pools.get(up).acquire(this);
    this.uc = uc;
    // A connecting socket queues this until connected; if the connect fails nothing was sent.
    uc.socket.write(this.upHead as Buffer);
    if (uc.connected && this.pending !== undefined) this.flushBody();
  }

  upstreamConnected(): void {
    if (this.pending !== undefined) this.flushBody();
  }

  upstreamDrain(): void {
    this.lastClientActivity = clock.now;
    if (!this.reqDone && this.pending === undefined) this.c.resumeReading();
  }

  /** Retry when attempts and the budget allow, and the request can be replayed. */
  canRetry(safeForAnyMethod: boolean): boolean {
    return mayRetry({
      attempts: this.attempts, finished: this.finished, method: this.method, safeForAnyMethod,
      bodySent: this.bodySent, refused: this.upstreamRefused,
    }, this.p.d.config.retries, this.p.d.counters);
  }

  scheduleRetry(reason: string): void {
    (this.tried ??= new Set()).add((this.up as Upstream).id);
    this.p.d.metrics.retry(this.route, reason);
    if (!this.isRetry) {
      this.isRetry = true;
      this.p.d.counters.activeRetries++;
    }
    this.attempt();
  }

  releaseHeld(): void {
    const st = this.held;
    if (st === undefined) return;
    this.held = undefined;
    st.inFlight--;
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
    this.lastActivity = clock.now;
    switch (this.rs) {
      case R_HEAD: this.responseHead(buf, 0, n); break;
      case R_LEN: this.bodyLen(buf, 0, n); break;
      case R_CHUNKED: this.bodyChunked(buf, 0, n); break;
      case R_CLOSE: this.sendBody(encodeChunk(buf, 0, n)); break;
      default: uc.reusable = false; break;
    }
    // A write that did not complete still references these bytes: the next read needs a fresh buffer.
    if (this.c.socket.writableLength > 0) uc.retained = true;
  }

  responseHead(buf: Buffer, s: number, e: number): void {
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
        this.upstreamFailed('BAD_RESPONSE', 'unexpected 101 Switching Protocols');
        return;
      }
      start = r; // 1xx informational: drop it and read the final response.
    }
    const status = RES.status;
    const up = this.up as Upstream;
    const uc = this.uc as UpConn;
    const d = this.p.d;
    d.health.response(up.id, status);
    if (RETRY_STATUS.has(status) && this.canRetry(false)) {
      this.abortUpstream();
      this.releaseHeld();
      this.scheduleRetry(`status ${status}`);
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
    this.status = status;
    this.responded = true;
    let tail = kind === R_CHUNKED || kind === R_CLOSE ? 'transfer-encoding: chunked\r\n' : '';
    if (!RES.hasDate) tail += `date: ${httpDate()}\r\n`;
    tail += `x-request-id: ${this.requestId}\r\n`;
    if (this.closeClient || this.c.closeAfter) {
      this.closeClient = true;
      tail += 'connection: close\r\n';
    }
    tail += '\r\n';
    const listed = (RES.connection & CONN_OTHER) !== 0 ? connectionListed(b, RES) : undefined;
    // "HTTP/1.1" whatever the upstream spoke: the rest of its status line is copied as is.
    const first = RES.versionMinor === 1 ? undefined : `HTTP/1.1${b.latin1Slice(RES.start + 8, RES.lineEnd)}`;
    this.rs = kind;
    if (kind === R_DONE) {
      if (end > r) uc.reusable = false;
      this.c.socket.write(rewriteHead(b, RES, first, RES.start, false, listed, tail, undefined, 0, 0));
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
      this.sendBody(rewriteHead(b, RES, first, RES.start, false, listed, tail, undefined, 0, 0));
      if (end > r) this.sendBody(encodeChunk(b, r, end));
      return;
    }
    if (bodyEnd - r <= COPY_BODY_LIMIT) this.sendBody(rewriteHead(b, RES, first, RES.start, false, listed, tail, b, r, bodyEnd));
    else {
      this.sendBody(rewriteHead(b, RES, first, RES.start, false, listed, tail, undefined, 0, 0));
      this.sendBody(b.subarray(r, bodyEnd));
    }
    if (done) this.complete();
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
    const x = dec.feed(buf, s, e, null);
    if (x === PARSE_ERROR) {
      this.upstreamFailed('BAD_RESPONSE', `bad chunked body: ${dec.error}`);
      return;
    }
    const bodyEnd = x >= 0 ? x : e;
    if (bodyEnd > s) this.sendBody(buf.subarray(s, bodyEnd));
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
    this.lastActivity = clock.now;
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.uc?.socket.resume();
    }
  }

  upstreamEnd(): void {
    if (this.rs === R_CLOSE) {
      this.sendBody(LAST_CHUNK);
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
    const uc = this.uc;
    this.uc = undefined;
    const up = this.up as Upstream;
    // A connection that never connected sent nothing: safe to retry for any method.
    const beforeSend = beforeSendHint ?? (uc !== undefined && !uc.connected);
    this.releaseHeld();
    const d = this.p.d;
    d.health.failure(up.id);
    if (this.upstreamPaused) this.upstreamPaused = false;
    if (this.responded) {
      // Part of the response is already on its way: all we can do is cut the client connection.
      d.logger.debug({ err: err.message, upstream: up.id }, 'upstream failed mid-response');
      this.c.socket.destroy();
      this.finish(this.status);
      return;
    }
    const code = err.code ?? '';
    this.upstreamRefused = beforeSend;
    if (this.canRetry(beforeSend)) {
      this.scheduleRetry(code || err.message);
      return;
    }
    if (code === 'UND_ERR_HEADERS_TIMEOUT') this.fail(504, `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} did not answer in time\n`, '');
    else this.fail(502, `switchyard: ${this.route.spec.service} instance ${up.address}:${up.port} failed: ${code === 'BAD_RESPONSE' ? `bad response (${err.message})` : code || err.message}\n`, '');
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
      if (!this.reqDone || this.pending !== undefined) uc.reusable = false;
      uc.pool.release(uc, clock.now);
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
    const t = this.p.d.config.timeouts;
    const uc = this.uc;
    if (this.rs === R_HEAD && uc !== undefined && uc.connected && now - this.sentAt > t.headerMs + slack) {
      this.abortUpstream();
      this.upstreamError(Object.assign(new Error('response header timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), false);
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
      this.c.socket.write(plainResponse(status, body, extra, this.closeClient || this.c.closeAfter));
    }
    this.finish(status);
  }

  finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseHeld();
    if (this.totalTimer !== undefined) clearTimeout(this.totalTimer);
    const d = this.p.d;
    d.counters.activeRequests--;
    if (this.isRetry) d.counters.activeRetries--;
    const seconds = (performance.now() - this.started) / 1000;
    d.metrics.request(this.route, this.up, status, seconds);
    const log = d.accessLog;
    if (log) {
      log.info({
        method: this.method, url: this.url, host: this.host, status, ms: Math.round(seconds * 1e5) / 100,
        route: this.route.spec.origin, service: this.route.spec.service, upstream: this.up ? `${this.up.address}:${this.up.port}` : null,
        attempts: this.attempts, client: this.c.ip, requestId: this.requestId,
      });
    }
    this.c.exchangeDone(this);
  }
}

function cookieValue(cookie: string | undefined, name: string): string | undefined {
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
