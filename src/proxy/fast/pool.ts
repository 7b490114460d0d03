/**
 * Keep-alive upstream connections for the fast data plane: net.Sockets (TLSSockets for https
 * instances), one pool per address, idle ones reused last-in first-out (the warmest socket),
 * draining like UpstreamPools: an address that leaves the table takes no new requests, in-flight
 * ones finish, and whatever is still busy when the drain timeout runs out is cut.
 *
 * Plain reads use net's `onread` with a buffer per connection that is reused across reads, so the
 * common response costs no read allocation at all. The owner of a read (UpstreamUser) says, via
 * `retained`, whether a pending write still references the bytes; only then does the next read
 * get a fresh buffer. A TLS socket hands out its own fresh buffers (net's onread does not apply).
 *
 * TLS connections are kept apart by flavour (UpstreamTls.key: how the certificate was checked),
 * and each flavour of an address keeps the last session ticket it was given, so a new connection
 * resumes instead of a full handshake (nginx's proxy_ssl_session_reuse).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { UpstreamTls } from '../upstream-tls.js';
import { tlsConnectOptions } from '../upstream-tls.js';
import type { Logger } from 'pino';
import type { Upstream } from '../../balancer/index.js';
import { AddressPools } from '../address-pools.js';

/** What a busy connection reports to (an exchange). */
export interface UpstreamUser {
  upstreamData(buf: Buffer, end: number): void;
  upstreamConnected(): void;
  upstreamEnd(): void;
  upstreamError(err: NodeJS.ErrnoException): void;
  upstreamDrain(): void;
}

export interface FastPoolOptions {
  connectTimeoutMs: number;
  drainTimeoutMs: number;
  logger: Logger;
  /** Idle connections are closed after this (below typical backend keep-alive timeouts). */
  keepAliveTimeoutMs?: number;
  /** Size of each connection's read buffer. */
  readBufferSize?: number;
}

const READ_BUFFER = 64 * 1024;

export class UpConn {
  readonly pool: FastPool;
  readonly socket: Socket;
  user: UpstreamUser | undefined;
  connected = false;
  /** False once anything makes the connection unfit for another request (close-delimited body, Connection: close, errors). */
  reusable = true;
  closed = false;
  idleSince = 0;
  /** Idle limit for this connection: the pool default, lowered by a Keep-Alive: timeout hint. */
  keepAliveMs: number;
  /** Set by the user when bytes of the last read are still referenced (queued write, kept head). */
  retained = false;
  /** The TLS flavour's key; '' for a plain connection. */
  readonly flavour: string;
  #buf: Buffer | undefined;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(pool: FastPool, tls?: UpstreamTls) {
    this.pool = pool;
    this.keepAliveMs = pool.keepAliveMs;
    this.flavour = tls?.key ?? '';
    if (tls === undefined) {
      this.#buf = Buffer.allocUnsafe(pool.readBufferSize);
      this.socket = connect({
        host: pool.host,
        port: pool.port,
        noDelay: true,
        onread: { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf as Buffer) },
      });
      this.socket.on('connect', () => this.#onConnect());
    } else {
      const session = pool.sessions.get(tls.key);
      const s = tlsConnect({ ...tlsConnectOptions(tls, pool.host, pool.port, ['http/1.1']), ...(session !== undefined ? { session } : {}) });
      this.socket = s;
      s.setNoDelay(true);
      // Connected means the handshake (and the certificate check) passed: a request written
      // before that is held by the TLS socket, so a failed handshake sent nothing.
      s.on('secureConnect', () => this.#onConnect());
      s.on('session', (t: Buffer) => pool.sessions.set(tls.key, t));
      s.on('data', (chunk: Buffer) => this.#onRead(chunk.length, chunk));
    }
    this.#connectTimer = setTimeout(onConnectTimeout, pool.connectTimeoutMs, this);
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    this.socket.on('end', () => this.#onEnd());
    this.socket.on('close', () => this.#onClose());
    this.socket.on('drain', () => this.user?.upstreamDrain());
  }

  #nextBuffer(): Buffer {
    if (this.retained || this.#buf === undefined) {
      this.retained = false;
      this.#buf = Buffer.allocUnsafe(this.pool.readBufferSize);
    }
    return this.#buf;
  }

  #onRead(n: number, buf: Buffer): boolean {
    const u = this.user;
    if (u === undefined) {
      // Bytes on an idle connection: the upstream is out of step with us; never reuse it.
      this.destroy();
      return false;
    }
    u.upstreamData(buf, n);
    return true;
  }

  #onConnect(): void {
    this.connected = true;
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    this.user?.upstreamConnected();
  }

  connectTimedOut(): void {
    this.#connectTimer = undefined;
    if (this.connected || this.closed) return;
    const err: NodeJS.ErrnoException = new Error(`connect timeout after ${this.pool.connectTimeoutMs} ms`);
    err.code = 'UND_ERR_CONNECT_TIMEOUT';
    this.socket.destroy(err);
  }

  #onError(err: NodeJS.ErrnoException): void {
    this.reusable = false;
    const u = this.user;
    this.user = undefined;
    u?.upstreamError(err);
  }

  #onEnd(): void {
    this.reusable = false;
    const u = this.user;
    if (u === undefined) {
      this.destroy();
      return;
    }
    u.upstreamEnd();
  }

  #onClose(): void {
    this.closed = true;
    this.reusable = false;
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.pool.forget(this);
    const u = this.user;
    this.user = undefined;
    if (u !== undefined) {
      const err: NodeJS.ErrnoException = new Error('upstream connection closed');
      err.code = 'UPSTREAM_CLOSED';
      u.upstreamError(err);
    }
  }

  /** Closes the connection; its user (if any) is told nothing: callers detach first or want that. */
  destroy(): void {
    this.reusable = false;
    this.user = undefined;
    if (!this.closed) this.socket.destroy();
  }
}

function onConnectTimeout(c: UpConn): void {
  c.connectTimedOut();
}

function sweepStack(stack: UpConn[], now: number): void {
  for (let i = stack.length - 1; i >= 0; i--) {
    const c = stack[i]!;
    if (now - c.idleSince > c.keepAliveMs) c.destroy();
  }
}

export class FastPool {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly readBufferSize: number;
  /** Idle plain connections; TLS ones wait in #tlsIdle by flavour. */
  readonly idle: UpConn[] = [];
  readonly #tlsIdle = new Map<string, UpConn[]>();
  /** The last TLS session ticket per flavour, offered by the next connection. */
  readonly sessions = new Map<string, Buffer>();
  readonly all = new Set<UpConn>();
  draining = false;
  readonly #onEmpty: (() => void)[] = [];

  constructor(key: string, u: Upstream, o: FastPoolOptions) {
    this.key = key;
    this.host = u.address;
    this.port = u.port;
    this.connectTimeoutMs = o.connectTimeoutMs;
    this.keepAliveMs = o.keepAliveTimeoutMs ?? 4000;
    this.readBufferSize = o.readBufferSize ?? READ_BUFFER;
  }

  /** A connection for `user` (over TLS of flavour `tls` if given): the most recently released idle one, else a new one. */
  acquire(user: UpstreamUser, tls?: UpstreamTls): UpConn {
    const stack = tls === undefined ? this.idle : this.#tlsIdle.get(tls.key);
    let c = stack?.pop();
    while (c !== undefined && (c.closed || !c.reusable)) {
      c.destroy();
      c = stack?.pop();
    }
    if (c === undefined) {
      c = new UpConn(this, tls);
      this.all.add(c);
    }
    c.user = user;
    return c;
  }

  /** A new connection that never returns to the pool (a tunnel's). */
  acquireFresh(user: UpstreamUser, tls?: UpstreamTls): UpConn {
    const c = new UpConn(this, tls);
    this.all.add(c);
    c.reusable = false;
    c.user = user;
    return c;
  }

  /** Takes a connection back after a complete exchange; closes it if it cannot serve another. */
  release(c: UpConn, now: number): void {
    c.user = undefined;
    if (this.draining || !c.reusable || c.closed) {
      c.destroy();
      return;
    }
    c.idleSince = now;
    if (c.flavour === '') this.idle.push(c);
    else {
      let stack = this.#tlsIdle.get(c.flavour);
      if (stack === undefined) this.#tlsIdle.set(c.flavour, stack = []);
      stack.push(c);
    }
  }

  forget(c: UpConn): void {
    this.all.delete(c);
    const stack = c.flavour === '' ? this.idle : this.#tlsIdle.get(c.flavour);
    const i = stack === undefined ? -1 : stack.indexOf(c);
    if (i >= 0) stack!.splice(i, 1);
    if (this.all.size === 0 && this.draining) for (const f of this.#onEmpty.splice(0)) f();
  }

  /** Whether any connection waits idle (the sweep's cheap test). */
  hasIdle(): boolean {
    return this.idle.length > 0 || this.#tlsIdle.size > 0;
  }

  /** Closes idle connections past their keep-alive time. */
  sweep(now: number): void {
    sweepStack(this.idle, now);
    for (const [key, stack] of this.#tlsIdle) {
      sweepStack(stack, now);
      if (stack.length === 0) this.#tlsIdle.delete(key);
    }
  }

  /** Stops reuse: idle connections close now, busy ones when their exchange ends. */
  drain(onEmpty: () => void): void {
    this.draining = true;
    this.#onEmpty.push(onEmpty);
    for (const c of this.idle.splice(0)) c.destroy();
    for (const stack of this.#tlsIdle.values()) for (const c of stack.splice(0)) c.destroy();
    this.#tlsIdle.clear();
    if (this.all.size === 0) for (const f of this.#onEmpty.splice(0)) f();
  }

  destroyAll(): void {
    for (const c of [...this.all]) c.socket.destroy();
  }
}

/** The fast plane's pools: our own keep-alive sockets per address, with an idle sweep. */
export class FastPools extends AddressPools<FastPool> {
  constructor(opts: FastPoolOptions) {
    super({
      create: (key, u) => new FastPool(key, u, opts),
      drain: (p, done) => p.drain(done),
      destroy: (p) => p.destroyAll(),
    }, opts);
  }

  sweep(now: number): void {
    for (const p of this.live()) if (p.hasIdle()) p.sweep(now);
  }
}
