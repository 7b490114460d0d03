/**
 * The registry API's raw-socket front. A thousand watchers of one service are answered and
 * re-park within milliseconds of each other; through Node's http server each of those costs an
 * IncomingMessage, a ServerResponse, their streams and events. Here a request is parsed in place
 * with the balancer's strict HTTP/1.1 parser and answered with one write; so is a write whose
 * body has a Content-Length of at most RAW_BODY_MAX (a registration, a KV put, a txn), taken from
 * the same buffer once it is all there.
 *
 * Everything else is handed, with the bytes already read, to Node's http server for the rest of
 * the connection's life: chunked and larger bodies, HTTP/1.0, Upgrade, Expect, methods outside the
 * common ones, paths outside /v1/ (UI, /metrics), a body still incomplete when the head's deadline
 * passes (Node waits for bodies without a deadline), and any head our parser refuses (Node's parser
 * then gives its own answer, so the agent's edge cases stay exactly Node's).
 */
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import { CONN_CLOSE, Head, NEED_MORE, PARSE_ERROR, parseRequestHead } from '../../../core/http1/h1.js';
import type { Cancel } from '../catalog-reader.js';
import type { ApiDispatch, Prepared, Wire } from './dispatch.js';
import { failureWire } from './dispatch.js';
import type { Ctx, Reply } from './context.js';
import { tooLargeMessage } from './context.js';
import { HttpError } from '../../../core/errors.js';

/** Node's default --max-http-header-size, so a head too large for one path is too large for both. */
const MAX_HEAD = 16 * 1024;
/** Bytes read ahead (pipelined requests) while one is answered, before reading pauses. */
const MAX_PENDING = 64 * 1024;
/** Up to this size the head and body are copied into one buffer: one write instead of two. */
const COPY_BODY_MAX = 16 * 1024;
/**
 * Request bodies up to this size are read here, whole, before the handler runs. Registrations, KV
 * puts and txns are far smaller; a larger body goes to Node's server, which streams it against the
 * route's own limit.
 */
export const RAW_BODY_MAX = 64 * 1024;
/** The methods Node's parser knows that a bodiless API request uses; any other goes to Node (it refuses most). */
const RAW_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH']);
/** Node keeps the first of these when a request repeats them (IncomingMessage's matchKnownFields). */
const SINGLE_VALUED = new Set([
  'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
  'server', 'user-agent',
]);
/** What Node's writeHead refuses in a header value (its checkInvalidHeaderChar). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Connections whose held-back requests are served per turn of the event loop once a fan-out is over (~2 ms). */
const RESUME_SLICE = 64;
/** Held-back requests wait for one fan-out after another at most this long (fan-outs that never pause). */
const MAX_HOLD_MS = 1000;
const EMPTY = Buffer.alloc(0);
const TIMEOUT_408 = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';

export interface RawFrontOptions {
  readonly dispatch: ApiDispatch;
  /** The listening server: this front serves its connections first and hands it the ones it does not serve. */
  readonly node: HttpServer;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** ctx.body()'s limit when a route gives none (ApiServerOptions.maxBodyBytes). */
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  readonly onRequest?: (route: string, method: string, status: number, seconds: number) => void;
  readonly onWake?: (seconds: number) => void;
  readonly fanOut?: FanOutGate;
  /** Asked first for each new connection; false: it was answered and closed (conn-limit.ts). */
  readonly admit?: (socket: Socket) => boolean;
}

/**
 * The view's fan-out of woken blocking queries. While it runs, the next request of a connection whose
 * blocking query it just answered is held back: a watcher answered early re-parks after the last one
 * is answered instead of in between, so a thousand-way fan-out is not stretched by the re-parks of the
 * watchers it already answered. Writers and other clients are not held back. A held-back query misses
 * nothing: it carries the index it last saw, so a change in the meantime answers it at once.
 */
export interface FanOutGate {
  fanOutBusy(): boolean;
  whenFanOutIdle(fn: () => void): void;
}

/** One client connection while this front serves it; it is also the Cancel of its request in flight. */
class Conn implements Cancel {
  /** Bytes read and not yet parsed. */
  buf: Buffer = EMPTY;
  /** A request is being answered: later bytes wait in `buf`. */
  busy = false;
  closed = false;
  /** Answered a `Connection: close` request: nothing more is read or served. */
  ending = false;
  /** performance.now() when the head being received started (0: none); monotonic, so a clock step cannot stretch the deadline. */
  headStartedAt = 0;
  /** The head is parsed and its body is still arriving (a timeout then hands the connection to Node). */
  bodyWait = false;
  /** Its last answer was a woken blocking query: its next request waits for the fan-out to end. */
  woken = false;
  #cancels: (() => void)[] = [];
  readonly onData: (d: Buffer) => void;
  readonly onTimeout: () => void;
  readonly onClose: () => void;
  readonly onEnd: () => void;

  constructor(readonly socket: Socket, front: RawFront) {
    this.onData = (d) => front.data(this, d);
    this.onTimeout = () => front.timeout(this);
    this.onClose = () => front.closed(this);
    this.onEnd = () => front.ended(this);
  }

  get cancelled(): boolean {
    return this.closed || this.ending;
  }

  onCancel(fn: () => void): () => void {
    this.#cancels.push(fn);
    return () => {
      const i = this.#cancels.indexOf(fn);
      if (i >= 0) this.#cancels.splice(i, 1);
    };
  }

  fireCancels(): void {
    const fns = this.#cancels;
    this.#cancels = [];
    for (const fn of fns) fn();
  }
}

export class RawFront {
  readonly #o: RawFrontOptions;
  /** Node's own connection handling, which this front takes the place of and hands connections to. */
  readonly #toNode: (socket: Socket) => void;
  readonly #conns = new Set<Conn>();
  /** Reused for every parse: parsing is synchronous and what is needed is taken before the next one. */
  readonly #head = new Head(128);
  #dateSecond = -1;
  #date = '';
  readonly #keepAlive: string;
  /** Woken watchers' connections with a request held back until the fan-out is over. */
  readonly #held = new Set<Conn>();
  #resumeQueued = false;
  /** performance.now() when the current batch of held-back requests began to wait. */
  #heldSince = 0;
  /** The bound on the current batch's wait; set while a batch is held. */
  #holdTimer: NodeJS.Timeout | undefined;

  constructor(o: RawFrontOptions) {
    this.#o = o;
    this.#keepAlive = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(o.keepAliveTimeoutMs / 1000)}\r\n\r\n`;
    // Node's server still listens, so its connection tracking (headers timeout, closeAllConnections)
    // covers every connection handed to it; only its 'connection' handler moves behind this front.
    const node = o.node;
    const handlers = node.listeners('connection') as ((socket: Socket) => void)[];
    node.removeAllListeners('connection');
    const admit = o.admit;
    node.on('connection', admit === undefined ? (socket: Socket) => this.#accept(socket) : (socket: Socket) => {
      if (admit(socket)) this.#accept(socket);
    });
    this.#toNode = (socket) => {
      for (const h of handlers) h.call(node, socket);
    };
  }

  /** Ends every connection this front still serves (Node's closeAllConnections ends the ones it was handed). */
  closeAll(): void {
    for (const c of this.#conns) c.socket.destroy();
  }

  #accept(socket: Socket): void {
    const c = new Conn(socket, this);
    this.#conns.add(c);
    socket.on('data', c.onData);
    socket.on('timeout', c.onTimeout);
    socket.on('close', c.onClose);
    socket.on('end', c.onEnd);
    // 'close' follows every error; nothing to add here.
    socket.on('error', noop);
    socket.setTimeout(this.#o.keepAliveTimeoutMs);
  }

  data(c: Conn, d: Buffer): void {
    if (c.ending) return;
    c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
    if (c.busy) {
      if (c.buf.length > MAX_PENDING) c.socket.pause();
      return;
    }
    this.#serve(c);
  }

  /** Serves what `c` has buffered, unless it is a woken watcher re-parking while the fan-out goes on. */
  #serve(c: Conn): void {
    const gate = this.#o.fanOut;
    if (c.woken && c.buf.length > 0) {
      if (gate?.fanOutBusy() === true) {
        if (c.buf.length > MAX_PENDING) c.socket.pause();
        this.#held.add(c);
        this.#armResume(gate);
        return;
      }
      c.woken = false;
    }
    this.#next(c);
  }

  #armResume(gate: FanOutGate): void {
    if (this.#holdTimer !== undefined) return;
    this.#heldSince = performance.now();
    // Called back at the end of the fan-out's last slice, before that slice's answers are written.
    gate.whenFanOutIdle(this.#resumeSoon);
    // Fan-outs that follow each other without a pause never call back: the bound does.
    this.#holdTimer = setTimeout(this.#resumeSoon, MAX_HOLD_MS).unref();
  }

  readonly #resumeSoon = (): void => {
    if (this.#resumeQueued) return;
    this.#resumeQueued = true;
    setImmediate(this.#resume);
  };

  /** Serves held-back connections a slice per turn, and waits again if another fan-out has started. */
  readonly #resume = (): void => {
    this.#resumeQueued = false;
    const gate = this.#o.fanOut;
    const waited = performance.now() - this.#heldSince;
    if (this.#held.size > 0 && gate?.fanOutBusy() === true && waited < MAX_HOLD_MS) {
      gate.whenFanOutIdle(this.#resumeSoon);
      // The bound's timer counts libuv's whole milliseconds and can fire a little before it by this clock:
      // it is armed again for what is left, or a busy gate that never calls back would hold for ever.
      clearTimeout(this.#holdTimer);
      this.#holdTimer = setTimeout(this.#resumeSoon, Math.ceil(MAX_HOLD_MS - waited) + 1).unref();
      return;
    }
    let n = 0;
    for (const c of this.#held) {
      if (n++ >= RESUME_SLICE) break;
      this.#held.delete(c);
      c.woken = false;
      // Nothing runs on a held connection, so it is not busy; #next skips one that closed meanwhile.
      if (c.socket.isPaused()) c.socket.resume();
      this.#next(c);
    }
    if (this.#held.size > 0) {
      this.#resumeSoon();
      return;
    }
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
  };

  timeout(c: Conn): void {
    if (c.busy || c.closed) return;
    if (c.bodyWait) {
      // Node's server waits for a body as long as its client sends it: so does the agent, there.
      this.#handOff(c);
      return;
    }
    // A head still arriving after the headers timeout is a Slowloris: answer as Node does.
    if (c.buf.length > 0) c.socket.end(TIMEOUT_408);
    c.socket.destroy();
  }

  /**
   * The client sent FIN. As Node's server does (allowHalfOpen off): what it asked is abandoned,
   * parked queries let go now, and our side ends too.
   */
  ended(c: Conn): void {
    c.ending = true;
    c.socket.end();
    c.fireCancels();
  }

  closed(c: Conn): void {
    c.closed = true;
    this.#conns.delete(c);
    this.#held.delete(c);
    c.fireCancels();
  }

  /** Serves the requests buffered on `c`, one at a time, until one is in flight or more bytes are needed. */
  #next(c: Conn): void {
    const o = this.#o;
    const head = this.#head;
    while (!c.busy && !c.closed && !c.ending) {
      const buf = c.buf;
      if (buf.length === 0) {
        c.headStartedAt = 0;
        c.socket.setTimeout(o.keepAliveTimeoutMs);
        return;
      }
      const now = performance.now();
      if (c.headStartedAt === 0) c.headStartedAt = now;
      const end = parseRequestHead(buf, 0, buf.length, head, MAX_HEAD);
      // A body still arriving is waited for within the head's deadline (the head is parsed again then: it is cheap).
      c.bodyWait = end >= 0 && head.contentLength > 0 && head.contentLength <= RAW_BODY_MAX && buf.length < end + head.contentLength;
      if (end === NEED_MORE || c.bodyWait) {
        const left = o.headersTimeoutMs - (now - c.headStartedAt);
        if (left <= 0) this.timeout(c);
        else c.socket.setTimeout(left);
        return;
      }
      if (end === PARSE_ERROR || head.versionMinor !== 1 || head.contentLength > RAW_BODY_MAX || head.chunked || head.upgrade || head.expect
        || buf[head.targetStart] !== 0x2f || !RAW_METHODS.has(head.method)) {
        this.#handOff(c);
        return;
      }
      const started = process.hrtime.bigint();
      const method = head.method;
      const rawUrl = buf.latin1Slice(head.targetStart, head.targetEnd);
      const headers = headersOf(buf, head);
      const close = (head.connection & CONN_CLOSE) !== 0;
      const p = o.dispatch.prepare(method, rawUrl, headers);
      if (p.kind === 'outside') {
        this.#handOff(c);
        return;
      }
      // The socket gives every read a buffer of its own, so the body can be a view of it.
      const body = head.contentLength > 0 ? buf.subarray(end, end + head.contentLength) : EMPTY;
      this.#consume(c, end + body.length);
      if (p.kind === 'refused') {
        this.#respond(c, method, failureWire(p.error), close);
        o.onRequest?.(p.routeName, method, p.error.status, seconds(started));
        continue;
      }
      if (p.kind === 'answer') {
        this.#respond(c, method, { status: p.status, headers: p.headers as string[], body: EMPTY }, close);
        o.onRequest?.(p.routeName, method, p.status, seconds(started));
        continue;
      }
      c.busy = true;
      c.socket.setTimeout(0);
      this.#run(c, p, method, rawUrl, headers, body, close, started).catch((err: unknown) => {
        // Only a failure to write the failure itself lands here: drop the connection, keep the agent.
        o.logger.error({ err, url: rawUrl, method }, 'registry API could not answer');
        c.socket.destroy();
      });
    }
  }

  async #run(c: Conn, p: Prepared & { kind: 'route' }, method: string, rawUrl: string, headers: IncomingHttpHeaders, body: Buffer, close: boolean, started: bigint): Promise<void> {
    const o = this.#o;
    let status: number;
    let reply: Reply | undefined;
    try {
      // Most requests (every re-parking watcher) have no body: they share one function, not a closure each.
      const ctx: Ctx = {
        headers, method, path: p.path, suffix: p.suffix, query: p.query, cancel: c,
        body: body.length === 0 ? emptyBody : (limit = o.maxBodyBytes, tooLarge = tooLargeMessage) => (body.length > limit
          ? Promise.reject(new HttpError(413, tooLarge(body.length, limit)))
          : Promise.resolve(body)),
      };
      const r = p.route.handler(ctx);
      reply = r instanceof Promise ? await r : r;
      if (c.cancelled) return;
      const ae = headers['accept-encoding'] as string | undefined;
      const shared = reply.shared;
      if (shared !== undefined && !close && method === 'GET') {
        // Every watcher woken by one change gets the same bytes: the whole response is made once
        // (per Date second) and written as is, with no per-watcher head or copy.
        this.#dateHeader();
        const key = `${reply.indexTime ?? ''}|${ae ?? ''}`;
        let cache = shared.wire;
        if (cache === undefined || cache.second !== this.#dateSecond || cache.bytes.size >= 8) shared.wire = cache = { second: this.#dateSecond, bytes: new Map() };
        let bytes = cache.bytes.get(key);
        if (bytes === undefined) {
          const wv = o.dispatch.wire(reply, p.query.has('pretty'), ae);
          const w = wv instanceof Promise ? await wv : wv;
          if (c.cancelled) return;
          bytes = this.#encode(w, method, false);
          // The gzip above may have crossed into the next second: only the current second's bytes are kept.
          if (cache.second === this.#dateSecond) cache.bytes.set(key, bytes);
        }
        c.socket.write(bytes);
        status = reply.status ?? 200;
      } else {
        const wv = o.dispatch.wire(reply, p.query.has('pretty'), ae);
        const w = wv instanceof Promise ? await wv : wv;
        if (c.cancelled) return;
        this.#respond(c, method, w, close);
        status = w.status;
      }
    } catch (err) {
      if (c.cancelled) return;
      reply = undefined;
      const he = o.dispatch.failure(err, method, rawUrl);
      // As through Node's server (server.ts): a body too large ends the connection after the answer.
      this.#respond(c, method, failureWire(he), close || he.status === 413);
      status = he.status;
    }
    if (reply?.wokeAt !== undefined) {
      o.onWake?.((performance.now() - reply.wokeAt) / 1000);
      c.woken = true;
    }
    o.onRequest?.(p.route.path, method, status, seconds(started));
    c.busy = false;
    if (c.cancelled) return;
    if (c.socket.isPaused()) c.socket.resume();
    // A client that pipelines without reading its answers waits until they drain.
    if (c.socket.writableNeedDrain) c.socket.once('drain', () => this.#serve(c));
    else this.#serve(c);
  }

  #consume(c: Conn, end: number): void {
    c.buf = end === c.buf.length ? EMPTY : c.buf.subarray(end);
    c.headStartedAt = 0;
  }

  /** Writes a whole response in one write (or one writev for a large body). */
  #respond(c: Conn, method: string, w: Wire, close: boolean): void {
    const s = c.socket;
    if (close) c.ending = true;
    const body = method === 'HEAD' ? EMPTY : w.body;
    if (body.length <= COPY_BODY_MAX) {
      const out = this.#encode(w, method, close);
      if (close) s.end(out);
      else s.write(out);
      return;
    }
    s.cork();
    s.write(this.#headOf(w, close), 'latin1');
    if (close) s.end(body);
    else s.write(body);
    s.uncork();
  }

  /** The response as one buffer: status line, headers, Date and connection headers, body. */
  #encode(w: Wire, method: string, close: boolean): Buffer {
    const head = this.#headOf(w, close);
    const body = method === 'HEAD' ? EMPTY : w.body;
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.latin1Write(head, 0);
    body.copy(out, head.length);
    return out;
  }

  #headOf(w: Wire, close: boolean): string {
    let head = `HTTP/1.1 ${w.status} ${STATUS_CODES[w.status] ?? 'unknown'}\r\n`;
    const h = w.headers;
    for (let i = 0; i < h.length; i += 2) {
      // Node's writeHead throws on these; stored data must never split a response.
      if (INVALID_VALUE.test(h[i + 1] as string)) throw new Error(`the reply's ${h[i] as string} header has an invalid character`);
      head += `${h[i] as string}: ${h[i + 1] as string}\r\n`;
    }
    return `${head}Date: ${this.#dateHeader()}\r\n${close ? 'Connection: close\r\n\r\n' : this.#keepAlive}`;
  }

  #dateHeader(): string {
    const now = Date.now();
    const sec = Math.floor(now / 1000);
    if (sec !== this.#dateSecond) {
      this.#dateSecond = sec;
      this.#date = new Date(sec * 1000).toUTCString();
    }
    return this.#date;
  }

  /** Gives the connection, with the bytes not yet served, to Node's http server for good. */
  #handOff(c: Conn): void {
    const s = c.socket;
    s.off('data', c.onData);
    s.off('timeout', c.onTimeout);
    s.off('close', c.onClose);
    s.off('end', c.onEnd);
    s.off('error', noop);
    s.setTimeout(0);
    s.pause();
    this.#conns.delete(c);
    if (c.buf.length > 0) s.unshift(c.buf);
    c.buf = EMPTY;
    this.#toNode(s);
    s.resume();
  }
}

function noop(): void {}

const emptyBody = (): Promise<Buffer> => Promise.resolve(EMPTY);

const seconds = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

/** The request's headers as Node's IncomingMessage.headers shows them: lowercase names, repeats joined or dropped alike. */
function headersOf(buf: Buffer, head: Head): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (let h = 0; h < head.count; h++) {
    const name = head.name(buf, h);
    const value = head.value(buf, h);
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else if (!SINGLE_VALUED.has(name)) out[name] = `${prev}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}
