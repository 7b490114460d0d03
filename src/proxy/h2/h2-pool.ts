/**
 * HTTP/2 connections to instances (h2c, h2, grpc, grpcs), pooled per address and multiplexed:
 * every request is a stream on the least busy live session, a new session opens only when every
 * session is at the instance's SETTINGS_MAX_CONCURRENT_STREAMS. Sessions that go idle are closed
 * after a while; an address that leaves the table drains like every plane's pools (no new streams,
 * in-flight ones finish, cut at the drain timeout). Each request on them was balanced on its own:
 * multiplexing happens after the pick, per instance, never instead of it.
 */
import { constants } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { connectH2 } from '../../core/h2-connect.js';
import type { UpstreamTls } from '../upstream-tls.js';
import { tlsConnectOptions } from '../upstream-tls.js';
import { monotonicClock } from '../../core/clock.js';
import type { Logger } from 'pino';
import type { Upstream } from '../../balancer/index.js';
import { AddressPools } from '../address-pools.js';
import { CONNECT_ERRORS } from '../core/request.js';
import type { CallSink, UpstreamCall } from './call.js';
import { h2ResponseFromH2 } from './headers.js';
import { watchLiveness } from './liveness.js';
import type { LivenessOptions } from './liveness.js';

export interface H2PoolOptions {
  connectTimeoutMs: number;
  drainTimeoutMs: number;
  logger: Logger;
  /** Sessions without streams for this long are closed. */
  idleTimeoutMs?: number;
  /** At most this many sessions per address and flavour (beyond: streams queue in the busiest-allowed session). */
  maxSessions?: number;
  /** Keep-alive PINGs to instances (see liveness.ts); default 5 s quiet, 10 s for the ack. */
  liveness?: LivenessOptions;
}

/** Until the instance's SETTINGS arrive, assume RFC 9113's recommended minimum of 100 concurrent streams. */
const DEFAULT_MAX_STREAMS = 100;
/** Receive window per session and stream: 64 KiB (HTTP/2's default) would cap a stream at one window per round trip. */
const WINDOW = 4 * 1024 * 1024;

class H2Conn {
  readonly session: ClientHttp2Session;
  readonly pool: H2Pool;
  readonly flavour: string;
  active = 0;
  maxStreams = DEFAULT_MAX_STREAMS;
  connected = false;
  /** No new streams: GOAWAY received, error, or the pool drains. */
  closing = false;
  idleSince: number;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(pool: H2Pool, flavour: string, tls: UpstreamTls | undefined) {
    this.pool = pool;
    this.flavour = flavour;
    this.idleSince = monotonicClock.now();
    this.session = connectH2(
      { host: pool.host, port: pool.port, noDelay: true, ...(tls !== undefined ? { tls: tlsConnectOptions(tls, pool.host, pool.port, ['h2']) } : {}) },
      { settings: { enablePush: false, initialWindowSize: WINDOW } },
    );
    const s = this.session;
    this.#connectTimer = setTimeout(() => {
      if (this.connected) return;
      const err: NodeJS.ErrnoException = new Error(`connect timeout after ${pool.connectTimeoutMs} ms`);
      err.code = 'UND_ERR_CONNECT_TIMEOUT';
      s.destroy(err);
    }, pool.connectTimeoutMs);
    s.once('connect', () => {
      this.connected = true;
      clearTimeout(this.#connectTimer);
      s.setLocalWindowSize(WINDOW);
    });
    s.on('remoteSettings', (st) => {
      if (st.maxConcurrentStreams !== undefined) this.maxStreams = Math.max(1, Math.min(st.maxConcurrentStreams, 10_000));
    });
    s.on('goaway', () => {
      this.closing = true;
    });
    s.on('error', (err: Error) => {
      this.closing = true;
      pool.logger.debug({ upstream: pool.key, err: err.message }, 'upstream HTTP/2 session failed');
    });
    s.on('close', () => {
      this.closing = true;
      clearTimeout(this.#connectTimer);
      pool.forget(this);
    });
    // An instance that broke the protocol mid-stream leaves a session that sends nothing more:
    // without this, every stream given to it waited out the response-header timeout, for good.
    watchLiveness(s, pool.liveness, {
      idle: () => false,
      dead: () => {
        this.closing = true;
        pool.logger.warn({ upstream: pool.key, streams: this.active }, 'upstream HTTP/2 session did not answer a PING; closed');
        s.destroy(new Error(`the instance did not answer a PING within ${pool.liveness.timeoutMs} ms`));
      },
    });
  }

  /** Takes new streams: not closing, and not closed under us (Node closes a session itself after a frame error). */
  get usable(): boolean {
    return !this.closing && !this.session.closed && !this.session.destroyed;
  }

  streamDone(): void {
    this.active--;
    if (this.active === 0) {
      this.idleSince = monotonicClock.now();
      if (this.closing || this.pool.draining) this.session.close();
    }
  }
}

export class H2Pool {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  readonly logger: Logger;
  readonly liveness: LivenessOptions;
  readonly conns = new Set<H2Conn>();
  draining = false;
  readonly #onEmpty: (() => void)[] = [];

  constructor(key: string, u: Upstream, o: H2PoolOptions) {
    this.key = key;
    this.host = u.address;
    this.port = u.port;
    this.connectTimeoutMs = o.connectTimeoutMs;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 60_000;
    this.maxSessions = o.maxSessions ?? 8;
    this.logger = o.logger;
    this.liveness = o.liveness ?? { timeMs: 5000, timeoutMs: 10_000 };
  }

  /** The session for a new stream: the least busy one below its stream limit, else a new one (while allowed). */
  #session(tls: UpstreamTls | undefined): H2Conn {
    const flavour = tls === undefined ? 'c' : `s${tls.key}`;
    let best: H2Conn | undefined;
    let count = 0;
    for (const c of this.conns) {
      if (c.flavour !== flavour || !c.usable) continue;
      count++;
      if (best === undefined || c.active < best.active) best = c;
    }
    if (best !== undefined && (best.active < best.maxStreams || count >= this.maxSessions)) return best;
    const c = new H2Conn(this, flavour, tls);
    this.conns.add(c);
    return c;
  }

  /** Opens a stream to this instance for one attempt. */
  request(headers: OutgoingHttpHeaders, o: { endStream: boolean; tls: UpstreamTls | undefined; trailers: boolean }, sink: CallSink): UpstreamCall {
    const conn = this.#session(o.tls);
    try {
      return new H2Call(conn, headers, o.endStream, o.trailers, sink);
    } catch (err) {
      // Node refuses new streams on a session that is going away (ERR_HTTP2_GOAWAY_SESSION,
      // ERR_HTTP2_INVALID_SESSION) by throwing: never again this one, and once more on a new one.
      conn.closing = true;
      this.logger.debug({ upstream: this.key, err: (err as Error).message }, 'upstream HTTP/2 session refused a stream; opening another');
    }
    try {
      return new H2Call(this.#session(o.tls), headers, o.endStream, o.trailers, sink);
    } catch (err) {
      return new RefusedCall(sink, (err as NodeJS.ErrnoException).code ?? 'ERR_HTTP2_REQUEST', (err as Error).message);
    }
  }

  forget(c: H2Conn): void {
    this.conns.delete(c);
    if (this.conns.size === 0 && this.draining) for (const f of this.#onEmpty.splice(0)) f();
  }

  /** Closes sessions idle for longer than the idle timeout. */
  sweep(now: number): void {
    for (const c of this.conns) {
      if (c.active !== 0 || now - c.idleSince <= this.idleTimeoutMs) continue;
      c.closing = true;
      c.session.close();
    }
  }

  drain(onEmpty: () => void): void {
    this.draining = true;
    this.#onEmpty.push(onEmpty);
    for (const c of this.conns) {
      c.closing = true;
      if (c.active === 0) c.session.close();
    }
    if (this.conns.size === 0) for (const f of this.#onEmpty.splice(0)) f();
  }

  destroyAll(): void {
    for (const c of [...this.conns]) c.session.destroy();
  }
}

// Listeners shared by every upstream stream, finding their call on it: no closures per request.
const kCall = Symbol('switchyard.h2call');
type CallStream = ClientHttp2Stream & { [kCall]?: H2Call };

function onResponse(this: CallStream, h: IncomingHttpHeaders, flags: number): void {
  this[kCall]?.response(h, flags);
}

function onData(this: CallStream, chunk: Buffer): void {
  this[kCall]?.data(chunk);
}

function onTrailers(this: CallStream, t: IncomingHttpHeaders): void {
  this[kCall]?.trailers(t);
}

function onEnd(this: CallStream): void {
  this[kCall]?.ended();
}

function onDrain(this: CallStream): void {
  this[kCall]?.drained();
}

function onWantTrailers(this: CallStream): void {
  this[kCall]?.wantTrailers();
}

function onError(this: CallStream, err: NodeJS.ErrnoException): void {
  this[kCall]?.failed(err.code ?? '', err.message);
}

function onClose(this: CallStream): void {
  this[kCall]?.closed();
}

/** A stream Node would not open even on a fresh session: failed as not sent, after the caller has its call. */
class RefusedCall implements UpstreamCall {
  readonly ownTimeouts = true;
  #sink: CallSink | undefined;
  constructor(sink: CallSink, code: string, message: string) {
    this.#sink = sink;
    queueMicrotask(() => this.#sink?.callFailed(code, message, true));
  }
  write(): boolean {
    return true;
  }
  end(): void {}
  pause(): void {}
  resume(): void {}
  abort(): void {
    this.#sink = undefined;
  }
}

/** One stream to an instance. */
class H2Call implements UpstreamCall {
  readonly ownTimeouts = false;
  readonly #conn: H2Conn;
  readonly #req: CallStream;
  #sink: CallSink | undefined;
  #trailers: OutgoingHttpHeaders | undefined;
  #responseTrailers: OutgoingHttpHeaders | undefined;
  #responded = false;
  #released = false;

  constructor(conn: H2Conn, headers: OutgoingHttpHeaders, endStream: boolean, trailers: boolean, sink: CallSink) {
    this.#conn = conn;
    this.#sink = sink;
    const req: CallStream = conn.session.request(headers, { endStream, waitForTrailers: trailers });
    conn.active++;
    req[kCall] = this;
    this.#req = req;
    req.on('response', onResponse);
    req.on('data', onData);
    req.on('trailers', onTrailers);
    req.on('end', onEnd);
    req.on('drain', onDrain);
    if (trailers) req.on('wantTrailers', onWantTrailers);
    req.on('error', onError);
    req.on('close', onClose);
  }

  response(h: IncomingHttpHeaders, flags: number): void {
    // 1xx answers come as 'headers' events, never here: this is the final head.
    const status = Number(h[':status']);
    this.#responded = true;
    this.#sink?.callResponse(status, h2ResponseFromH2(h, status), (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  }

  data(chunk: Buffer): void {
    const s = this.#sink;
    if (s !== undefined && !s.callData(chunk)) this.#req.pause();
  }

  trailers(t: IncomingHttpHeaders): void {
    this.#responseTrailers = h2ResponseFromH2(t, undefined);
  }

  ended(): void {
    const s = this.#sink;
    this.#sink = undefined;
    s?.callEnd(this.#responseTrailers);
  }

  drained(): void {
    this.#sink?.callDrain();
  }

  wantTrailers(): void {
    if (this.#trailers !== undefined) this.#req.sendTrailers(this.#trailers);
    else this.#req.close();
  }

  closed(): void {
    this.#release();
    if (this.#sink !== undefined) {
      const rst = this.#req.rstCode ?? 0;
      this.failed(rst === 0 ? 'UPSTREAM_CLOSED' : `RST_STREAM ${rst}`, rst === 0 ? 'the instance closed the stream early' : `the instance reset the stream (code ${rst})`);
    }
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#conn.streamDone();
  }

  failed(code: string, message: string): void {
    const s = this.#sink;
    if (s === undefined) return;
    this.#sink = undefined;
    // REFUSED_STREAM (also what nghttp2 reports for streams above a GOAWAY's last stream id): never processed.
    const refused = !this.#responded && (CONNECT_ERRORS.has(code) || this.#req.rstCode === constants.NGHTTP2_REFUSED_STREAM || (!this.#conn.connected && code !== ''));
    s.callFailed(code, message, refused);
  }

  write(chunk: Buffer): boolean {
    return this.#req.write(chunk);
  }

  end(trailers?: OutgoingHttpHeaders): void {
    this.#trailers = trailers;
    this.#req.end();
  }

  pause(): void {
    this.#req.pause();
  }

  resume(): void {
    this.#req.resume();
  }

  abort(): void {
    this.#sink = undefined;
    if (!this.#req.closed) this.#req.close(constants.NGHTTP2_CANCEL);
  }
}

/** Every plane's HTTP/2 upstream pools: one H2Pool per instance address, drained like the others. */
export class H2Pools extends AddressPools<H2Pool> {
  constructor(opts: H2PoolOptions) {
    super({
      create: (key, u) => new H2Pool(key, u, opts),
      drain: (p, done) => p.drain(done),
      destroy: (p) => p.destroyAll(),
    }, opts);
  }

  sweep(now: number): void {
    for (const p of this.live()) if (p.conns.size > 0) p.sweep(now);
  }
}
