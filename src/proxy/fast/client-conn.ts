/**
 * One client connection of the fast plane: parses request heads, runs one Exchange at a time,
 * queues what comes after (pipelining), refuses bad input with a reason, enforces the client-side
 * timeouts, and carries a tunnel once an Upgrade is accepted.
 *
 * Every request on the connection is parsed here, by the same strict parser: nothing is handed to
 * a laxer one mid-connection (HTTP/1.0, absolute-form and Upgrade requests are served here too).
 * Requests are served one at a time; pipelined requests wait, unread, until the one before has
 * been answered (responses can never be reordered or interleaved).
 */
import type { Socket } from 'node:net';
import { NEED_MORE, PARSE_ERROR, parseRequestHead } from '../../core/http1/h1.js';
import type { FastContext } from './context.js';
import { Exchange, PENDING_LIMIT } from './exchange.js';
import { plainResponse } from './head-rewrite.js';
import { prefaceState } from '../h2/preface.js';
import { readIntoUserBuffer } from './user-buffer.js';
import { clientIp } from '../../core/client-peer.js';

/** Idle client connections (between requests) are closed after this, as the Node plane's keepAliveTimeout. */
const CLIENT_KEEP_ALIVE_MS = 65_000;
/** How long a refused client's remaining input is drained before the socket is destroyed. */
const LINGER_MS = 2000;
/**
 * Each connection's read buffer: a request head usually fits; bigger heads and bodies take more
 * reads. Kept small because idle keep-alive connections hold theirs (10,000 connections: 80 MiB).
 */
const READ_BUFFER = 8 * 1024;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- socket listeners of every event are kept in one list
type Listener = (...args: any[]) => void;

function destroySocket(s: Socket): void {
  s.destroy();
}

/** What a connection needs from the proxy that owns it. */
export interface ConnOwner {
  readonly x: FastContext;
  readonly closing: boolean;
  readonly tickMs: number;
  forget(c: ClientConn): void;
  /**
   * Takes a plain connection whose first bytes (`already`) are the HTTP/2 preface: h2c with prior
   * knowledge. Undefined: HTTP/2 is off, and the parser refuses the preface like any other bad head.
   */
  readonly h2c?: ((socket: Socket, already: Buffer) => void) | undefined;
}

/** Everything in a paused socket's read buffer, as one Buffer. */
function takeBuffered(socket: Socket): Buffer {
  const pieces: Buffer[] = [];
  for (let b = socket.read() as Buffer | null; b !== null; b = socket.read() as Buffer | null) pieces.push(b);
  return pieces.length === 1 ? pieces[0] as Buffer : Buffer.concat(pieces);
}

export class ClientConn {
  readonly owner: ConnOwner;
  readonly x: FastContext;
  readonly socket: Socket;
  readonly ip: string;
  /** The scheme the client used: TLS listeners say https. */
  readonly proto: 'http' | 'https';
  ex: Exchange | undefined;
  /** The exchange whose Upgrade was accepted: client bytes go to its upstream untouched. */
  tunnel: Exchange | undefined;
  /** A request head that spans reads, accumulated until complete. */
  carry: Buffer | undefined;
  carryLen = 0;
  /** Bytes that arrived after the current request (pipelining), parsed once it is answered. */
  queued: Buffer | undefined;
  /** Coarse time the current, still incomplete head started (0: none). */
  headSince = 0;
  idleSince: number;
  served = 0;
  /** Close once the current exchange is over (client asked, shutdown, unread request body). */
  closeAfter = false;
  closed = false;
  lingering = false;
  readPaused = false;
  /**
   * Set when bytes of the current read are still referenced after it was handled (queued, or a
   * write that did not complete): the next read then gets a fresh buffer instead of overwriting.
   */
  retained = false;
  /** The forwarding headers built for the last plain request, and the Host they were built for. */
  fwdHost: string | undefined;
  fwdTail = '';
  #inProcess = false;
  #buf: Buffer | undefined;
  /** The last finished exchange, reused for the next request. */
  #spare: Exchange | undefined;

  constructor(owner: ConnOwner, socket: Socket, proto: 'http' | 'https') {
    this.owner = owner;
    this.x = owner.x;
    this.socket = socket;
    this.proto = proto;
    this.ip = clientIp(socket);
    this.idleSince = this.x.now;
    if (owner.closing) this.closeAfter = true;
    // Bytes another reader put back on the socket (after a PROXY protocol header) come first; taken
    // before the reads below begin. A fresh socket has none, and this costs it one property read.
    const buffered = socket.readableLength > 0 ? takeBuffered(socket) : undefined;
    if (!readIntoUserBuffer(socket, () => this.#nextBuffer(), (n, buf) => this.#onRead(n, buf))) {
      this.#on('data', (d: Buffer) => {
        this.onData(d, d.length);
        this.retained = false;
      });
    }
    this.#on('end', () => this.onEnd());
    this.#on('close', () => this.onClose());
    this.#on('error', () => void socket.destroy());
    this.#on('drain', () => this.ex?.clientDrain());
    if (buffered !== undefined && buffered.length > 0) this.onData(buffered, buffered.length);
    // Accepted paused (pauseOnConnect): reading starts once the reader is in place; unless those
    // bytes already handed the socket to the HTTP/2 plane, which starts its own reading.
    if (!this.#handedOver) socket.resume();
  }

  /** The socket went to the HTTP/2 plane (h2c prior knowledge). */
  #handedOver = false;

  /** Our listeners on the socket, removed if the connection is handed to the HTTP/2 plane. */
  readonly #listeners: [string, Listener][] = [];

  #on(event: string, fn: Listener): void {
    this.#listeners.push([event, fn]);
    this.socket.on(event, fn);
  }

  /**
   * The first bytes of the connection begin like the HTTP/2 preface: true when they were taken
   * (handed over, or kept until there are enough to tell), false to parse them as HTTP/1.
   */
  #h2Preface(d: Buffer, end: number, inCarry: boolean): boolean {
    const h2c = this.owner.h2c;
    if (h2c === undefined) return false;
    const state = prefaceState(d, 0, end);
    if (state === 'no') return false;
    if (state === 'more') {
      // Kept until there is enough to tell: "PRI * HTTP/2.0\r\n\r\n" alone parses as an HTTP/1 head.
      if (!inCarry) {
        this.carry = Buffer.allocUnsafe(64);
        d.copy(this.carry, 0, 0, end);
        this.carryLen = end;
        this.headSince = this.x.now;
      }
      return true;
    }
    this.closed = true;
    this.#handedOver = true;
    for (const [event, fn] of this.#listeners) this.socket.off(event, fn);
    this.owner.forget(this);
    h2c(this.socket, Buffer.from(d.subarray(0, end)));
    return true;
  }

  #nextBuffer(): Buffer {
    if (this.#buf === undefined || this.retained) {
      this.retained = false;
      this.#buf = Buffer.allocUnsafe(READ_BUFFER);
    }
    return this.#buf;
  }

  #onRead(n: number, buf: Buffer): boolean {
    this.onData(buf, n);
    return true;
  }

  /** host:port the client connected to, for requests that name no Host (HTTP/1.0). */
  localAuthority(): string {
    const a = this.socket.localAddress ?? '127.0.0.1';
    return `${a.includes(':') ? `[${a}]` : a}:${this.socket.localPort ?? 0}`;
  }

  /** Bytes d[0, end) arrived (d may be the connection's reused read buffer: anything kept must be copied or marked retained). */
  onData(d: Buffer, end: number): void {
    if (this.lingering) return;
    const tunnel = this.tunnel;
    if (tunnel !== undefined) {
      tunnel.tunnelData(d.subarray(0, end));
      return;
    }
    const ex = this.ex;
    if (ex !== undefined) {
      if (!ex.reqDone) {
        const used = ex.requestBody(d, 0, end);
        if (used < end && this.ex === ex) this.queue(d.subarray(used, end));
      } else this.queue(d.subarray(0, end));
      return;
    }
    if (this.served === 0 && this.carry === undefined && this.#h2Preface(d, end, false)) return;
    if (this.carry !== undefined) {
      const piece = d.subarray(0, end);
      this.appendCarry(piece);
      if (this.served === 0 && this.#h2Preface(this.carry, this.carryLen, true)) return;
      // Parse again only when a line may have ended: a head trickled byte by byte costs one
      // parse per line, not one per byte.
      if (piece.indexOf(10) < 0) {
        if (this.carryLen > this.x.d.config.limits.maxHeaderSize) this.reject(431, 'header section too large');
        return;
      }
      const b = this.carry.subarray(0, this.carryLen);
      this.carry = undefined;
      this.carryLen = 0;
      this.process(b, 0, b.length);
      return;
    }
    this.process(d, 0, end);
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
    this.retained = true;
    this.queued = this.queued === undefined ? d : Buffer.concat([this.queued, d]);
    // Pipelined requests wait unread; beyond a head's worth plus some, stop reading.
    if (this.queued.length > this.x.d.config.limits.maxHeaderSize + PENDING_LIMIT) this.pauseReading();
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
  process(buf: Buffer, pos: number, end: number): void {
    this.#inProcess = true;
    const max = this.x.d.config.limits.maxHeaderSize;
    const REQ = this.x.req;
    while (pos < end && this.ex === undefined && this.tunnel === undefined && !this.closed && !this.lingering) {
      const r = parseRequestHead(buf, pos, end, REQ, max);
      if (r === NEED_MORE) {
        if (end - pos > max) {
          this.reject(431, 'header section too large');
          break;
        }
        if (this.headSince === 0) this.headSince = this.x.now;
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
      this.served++;
      let ex = this.#spare;
      if (ex === undefined) ex = new Exchange(this);
      else {
        this.#spare = undefined;
        ex.reset();
      }
      this.ex = ex;
      pos = ex.start(buf, r, end);
    }
    this.#inProcess = false;
    if (pos < end && !this.closed && !this.lingering) {
      if (this.tunnel !== undefined) this.tunnel.tunnelData(buf.subarray(pos, end));
      else if (this.ex !== undefined) this.queue(buf.subarray(pos, end));
    }
  }

  /** The exchange's Upgrade was accepted: what the client sent after its head, and sends from now on, is tunnelled. */
  startTunnel(ex: Exchange): void {
    this.tunnel = ex;
    this.carry = undefined;
    const q = this.queued;
    this.queued = undefined;
    this.resumeReading();
    if (q !== undefined && q.length > 0) ex.tunnelData(q);
  }

  /** The current exchange is over: close, or go on with whatever was queued behind it. */
  exchangeDone(ex: Exchange): void {
    if (this.ex !== ex) return;
    this.ex = undefined;
    if (ex.reusable()) this.#spare = ex;
    this.idleSince = this.x.now;
    if (this.tunnel !== undefined) {
      this.tunnel = undefined;
      this.closed = true;
      return;
    }
    if (this.closed || this.lingering) return;
    if (!ex.reqDone) {
      // The client is still sending a body nobody will read: the connection cannot be reused.
      this.linger();
      return;
    }
    if (this.closeAfter || ex.closeClient) {
      // Whatever the client pipelined after a request that closes the connection is never read.
      this.queued = undefined;
      this.socket.end();
      this.closed = true;
      return;
    }
    this.resumeReading();
    const q = this.queued;
    if (q !== undefined && !this.#inProcess) {
      this.queued = undefined;
      this.process(q, 0, q.length);
    }
  }

  /** A bad request: answer with a clear reason, then close (after draining what the client still sends). */
  reject(status: number, reason: string): void {
    if (this.closed || this.lingering) return;
    this.socket.write(plainResponse(status, `switchyard: ${reason}\n`, '', true, this.x.httpDate()));
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
    if (this.tunnel !== undefined) {
      this.tunnel.tunnelClosed();
      return;
    }
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
    this.owner.forget(this);
    if (this.tunnel !== undefined) this.tunnel.tunnelClosed();
    else this.ex?.clientGone();
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
    const cfg = this.x.d.config.timeouts;
    const slack = this.owner.tickMs;
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
