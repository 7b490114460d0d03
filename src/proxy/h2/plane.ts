/**
 * The HTTP/2 data plane: client connections that negotiated `h2` (TLS ALPN) or opened with the
 * HTTP/2 preface on the plain listener (h2c prior knowledge, handed over by the fast plane), served
 * by Node's HTTP/2 sessions — http2.createServer() is used only as a session factory, fed sockets
 * by the listeners — with each stream an H2Exchange on the shared request core.
 *
 * Limits and abuse: streams per connection, header list size and pairs, flow-control windows and
 * session memory are set on every session; nghttp2 refuses streams over the limit and ends sessions
 * that keep sending invalid frames or refused streams. Beyond what it does by itself, each session
 * is watched here for the known HTTP/2 DoS shapes — streams reset by the client before their answer
 * (rapid reset, CVE-2023-44487), SETTINGS and PING floods — and ended with GOAWAY
 * ENHANCE_YOUR_CALM past a rate; a stream the client stops reading (zero window) is reset after the
 * idle timeout. Every refusal is counted by reason. One connection's abuse costs only that
 * connection: nothing here is shared between sessions but the counters.
 */
import { constants, createServer } from 'node:http2';
import type { Http2Server, Http2Session, IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { monotonicClock } from '../../core/clock.js';
import { clientIp } from '../../core/client-peer.js';
import type { Upstream } from '../../balancer/index.js';
import type { H2Settings, LbConfig } from '../../config/lb.js';
import { shortestUpstreamTimeoutMs, tickMsFor } from '../../config/lb.js';
import type { RouteSpec } from '../../config/route-spec.js';
import type { RequestDeps } from '../core/request.js';
import type { UpstreamPools } from '../node/pools.js';
import type { FastPools } from '../fast/pool.js';
import { Head } from '../../core/http1/h1.js';
import { H1Call } from './call.js';
import { FastH1Call } from './fast-call.js';
import type { CallSink, H1CallOptions, UpstreamCall } from './call.js';
import { H2Exchange } from './exchange.js';
import type { H2Pools } from './h2-pool.js';
import { h1UpstreamHeaders, h2UpstreamHeaders } from './headers.js';
import { watchLiveness } from './liveness.js';
import type { ForwardInfo } from './headers.js';
import type { UpstreamTls } from '../upstream-tls.js';

export interface H2PlaneDeps extends RequestDeps {
  /** HTTP/1.1 instances: the fast plane's pools when it runs (cheaper per request), else undici's. */
  readonly pools: UpstreamPools;
  readonly fastPools?: FastPools | undefined;
  /** HTTP/2 instances. */
  readonly h2Pools: H2Pools;
  readonly h2: H2Settings;
  /** A connection or stream refused for abuse or a limit, by reason. */
  readonly onRefused: (reason: string) => void;
}

/** Rates are counted in windows of this length. */
const WINDOW_MS = 10_000;
/** Idle client sessions (no frames) are closed after this, as the HTTP/1 listener's keep-alive. */
const SESSION_IDLE_MS = 65_000;

/**
 * Per-session accounting: resets of unanswered streams and control frames in the current window
 * (abuse), and the streams still open with the time one last opened or closed (idle and liveness).
 */
class SessionGuard {
  windowStart: number;
  resets = 0;
  control = 0;
  closed = false;
  open = 0;
  lastStreamAt: number;
  constructor(now: number) {
    this.windowStart = now;
    this.lastStreamAt = now;
  }
}

const kGuard = Symbol('switchyard.h2.guard');
type GuardedStream = ServerHttp2Stream & { [kGuard]?: SessionGuard };

/** Shared by every stream (no closure per stream): the session's open-stream count. */
function onGuardedStreamClose(this: GuardedStream): void {
  const g = this[kGuard];
  if (g === undefined) return;
  g.open--;
  g.lastStreamAt = monotonicClock.now();
}

/** RFC 9113 §6.5.2's size of a field list: each name and value plus 32 bytes. */
function headerListSize(h: IncomingHttpHeaders): number {
  let n = 0;
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) n += k.length + x.length + 32;
    else n += k.length + v.length + 32;
  }
  return n;
}

export class H2Plane {
  readonly d: H2PlaneDeps;
  readonly server: Http2Server;
  readonly sessions = new Set<ServerHttp2Session>();
  /** Exchanges in flight, walked by the ticker for the timeouts that need no timer of their own. */
  readonly active = new Set<H2Exchange>();
  readonly newId: () => string;
  /** Coarse time for timeouts, refreshed each tick. */
  now = monotonicClock.now();
  tickMs: number;
  #ticker: NodeJS.Timeout | undefined;
  /** Response heads of HTTP/1.1 instances, parsed synchronously one at a time: one parser for the plane. */
  readonly #res: Head;
  readonly #resetBudget: number;
  readonly #controlBudget: number;

  constructor(d: H2PlaneDeps) {
    this.d = d;
    this.newId = () => d.ids.next();
    const l = d.config.limits;
    this.tickMs = tickFor(d.config.timeouts, d.config.routes);
    this.#res = new Head(l.maxHeaderCount);
    this.#resetBudget = d.h2.maxResetsPerSecond * (WINDOW_MS / 1000);
    this.#controlBudget = d.h2.maxControlFramesPerSecond * (WINDOW_MS / 1000);
    this.server = createServer({
      maxSessionMemory: d.h2.maxSessionMemoryMb,
      // Header fields per request: the same limit as on HTTP/1 (Node's default is 128 pairs).
      maxHeaderListPairs: l.maxHeaderCount,
      // nghttp2's own guards, made explicit: sessions sending junk or opening refused streams end.
      maxSessionInvalidFrames: 1000,
      maxSessionRejectedStreams: 100,
      maxOutstandingPings: 10,
      settings: {
        maxConcurrentStreams: d.h2.maxConcurrentStreams,
        maxHeaderListSize: l.maxHeaderSize,
        initialWindowSize: d.h2.initialWindowSize,
        enablePush: false,
      },
    });
    this.server.on('session', (s: ServerHttp2Session) => this.#session(s));
    this.server.on('sessionError', () => undefined);
  }

  /** New routes (a reload): the ticker follows their timeouts. */
  routesChanged(routes: readonly RouteSpec[]): void {
    const tick = tickFor(this.d.config.timeouts, routes);
    if (tick === this.tickMs) return;
    this.tickMs = tick;
    if (this.#ticker !== undefined) {
      this.stop();
      this.start();
    }
  }

  start(): void {
    if (this.#ticker !== undefined) return;
    this.#ticker = setInterval(() => this.tick(), this.tickMs);
    this.#ticker.unref();
  }

  /**
   * A client connection that speaks HTTP/2: a TLS socket that negotiated h2, or a plain one whose
   * first bytes (`already`, read by the fast plane) are the preface.
   */
  accept(socket: Socket, already?: Buffer): void {
    socket.setNoDelay(true);
    this.server.emit('connection', socket);
    // After the session exists: it reads what is buffered on the socket on its next tick, before
    // anything else arrives. (Unshifted before, the bytes would flow to no listener and be lost.)
    if (already !== undefined && already.length > 0) socket.unshift(already);
    // Not now: called from a 'data' handler inside a stream's flow loop (bytes that were put back on
    // the socket, after a PROXY protocol header), a resume here lets the loop go on and read those
    // bytes away from the session before its next tick.
    process.nextTick(() => {
      if (socket.isPaused()) socket.resume();
    });
  }

  #session(s: ServerHttp2Session): void {
    this.sessions.add(s);
    const g = new SessionGuard(this.now);
    const socket = s.socket as Socket | undefined;
    const proto: 'http' | 'https' = s.encrypted === true ? 'https' : 'http';
    const ip = socket ? clientIp(socket) : '';
    // One listener per session, shared by its streams.
    const onAborted = (): void => this.#count(s, g, 'resets');
    watchLiveness(s, { timeMs: this.d.h2.keepaliveTimeMs, timeoutMs: this.d.h2.keepaliveTimeoutMs }, {
      // Idle as long as an HTTP/1 keep-alive: closed (a client's own PINGs do not keep it).
      idle: () => {
        if (g.open > 0 || monotonicClock.now() - g.lastStreamAt < SESSION_IDLE_MS) return false;
        s.close();
        return true;
      },
      dead: () => {
        this.refused('unresponsive');
        this.d.logger.info({ client: ip, openStreams: g.open }, 'HTTP/2 connection did not answer a PING; closed');
        s.destroy();
      },
    });
    // The connection window too (SETTINGS only sets the streams'): one slow stream must not stall the others.
    s.once('localSettings', () => {
      if (!s.destroyed) s.setLocalWindowSize(this.d.h2.initialWindowSize);
    });
    s.on('close', () => this.sessions.delete(s));
    s.on('error', (err: NodeJS.ErrnoException) => {
      // Node ends floods of frames it must answer (SETTINGS, PING, RST_STREAM) by itself: counted too.
      if (/flood/i.test(err.message)) this.refused('flood');
      this.d.logger.debug({ client: ip, err: err.message, code: err.code }, 'HTTP/2 session error');
    });
    s.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number) => {
      stream.on('error', () => undefined);
      g.open++;
      g.lastStreamAt = this.now;
      (stream as GuardedStream)[kGuard] = g;
      // 'close' comes once; on() adds no wrapper as once() would.
      stream.on('close', onGuardedStreamClose);
      if (g.closed) {
        // Frames already read from a connection being closed for abuse start nothing.
        stream.close(constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      if (headerListSize(headers) > this.d.config.limits.maxHeaderSize) {
        // nghttp2 advertises SETTINGS_MAX_HEADER_LIST_SIZE but lets larger lists through: refused here, as on HTTP/1 (431).
        this.refused('oversized_headers');
        const body = `switchyard: header section larger than ${this.d.config.limits.maxHeaderSize} bytes\n`;
        stream.respond({ ':status': 431, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        stream.end(body);
        return;
      }
      // Reset by the client before its answer was complete: the rapid-reset shape when it repeats.
      stream.on('aborted', onAborted);
      new H2Exchange(this, stream, headers, flags, proto, ip).start();
    });
    s.on('remoteSettings', () => this.#count(s, g, 'control'));
    s.on('ping', () => this.#count(s, g, 'control'));
    s.on('goaway', () => undefined);
  }

  #count(s: Http2Session, g: SessionGuard, what: 'resets' | 'control'): void {
    if (g.closed) return;
    const now = monotonicClock.now();
    if (now - g.windowStart > WINDOW_MS) {
      g.windowStart = now;
      g.resets = 0;
      g.control = 0;
    }
    const n = ++g[what];
    const limit = what === 'resets' ? this.#resetBudget : this.#controlBudget;
    if (n <= limit) return;
    g.closed = true;
    const reason = what === 'resets' ? 'rapid_reset' : 'control_flood';
    this.refused(reason);
    this.d.logger.warn({ client: s.socket ? clientIp(s.socket as Socket) : undefined, reason, limitPerSecond: limit / (WINDOW_MS / 1000) }, 'HTTP/2 connection closed for abuse');
    // GOAWAY with ENHANCE_YOUR_CALM, then the connection goes: its streams are cancelled. Not from
    // inside this callback: nghttp2 is still reading the batch that raised it (destroying the
    // session there trips an assertion in Node's HTTP/2 memory accounting and aborts the process).
    setImmediate(() => {
      if (s.destroyed) return;
      s.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      setImmediate(() => s.destroy());
    });
  }

  refused(reason: string): void {
    this.d.onRefused(reason);
  }

  h1Headers(h: IncomingHttpHeaders, info: ForwardInfo): { headers: string[]; requestId: string } {
    return h1UpstreamHeaders(h, info);
  }

  h2Headers(h: IncomingHttpHeaders, method: string, path: string, scheme: 'http' | 'https', info: ForwardInfo): { headers: OutgoingHttpHeaders; requestId: string } {
    return h2UpstreamHeaders(h, method, path, scheme, info);
  }

  h1Call(up: Upstream, o: H1CallOptions, sink: CallSink): UpstreamCall {
    const fp = this.d.fastPools;
    if (fp !== undefined) return new FastH1Call(fp.get(up), o, this.#res, sink);
    return new H1Call(this.d.pools.get(up).for(o.tls), o, sink);
  }

  h2Call(up: Upstream, headers: OutgoingHttpHeaders, o: { endStream: boolean; tls: UpstreamTls | undefined; trailers: boolean }, sink: CallSink): UpstreamCall {
    return this.d.h2Pools.get(up).request(headers, o, sink);
  }

  tick(): void {
    const now = monotonicClock.now();
    this.now = now;
    for (const ex of this.active) ex.check(now, this.tickMs);
    this.d.h2Pools.sweep(now);
  }

  /** Shutdown, step one: every session gets GOAWAY; streams in flight finish. */
  closeIdle(): void {
    for (const s of this.sessions) s.close();
  }

  get size(): number {
    return this.sessions.size;
  }

  destroyAll(): void {
    for (const s of [...this.sessions]) s.destroy();
  }

  stop(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#ticker = undefined;
  }
}

/** Fine enough for the shortest response-header or idle timeout (the routes' own too), never busier than 20 ticks a second. */
function tickFor(t: LbConfig['timeouts'], routes: readonly RouteSpec[]): number {
  return tickMsFor(shortestUpstreamTimeoutMs(t, routes));
}
