/**
 * Keep-alive upstream connections for the fast data plane: plain net.Sockets, one pool per
 * address, idle ones reused last-in first-out (the warmest socket), draining like UpstreamPools:
 * an address that leaves the table takes no new requests, in-flight ones finish, and whatever is
 * still busy when the drain timeout runs out is cut.
 *
 * Reads use net's `onread` with a buffer per connection that is reused across reads, so the
 * common response costs no read allocation at all. The owner of a read (UpstreamUser) says, via
 * `retained`, whether a pending write still references the bytes; only then does the next read
 * get a fresh buffer.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
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
  #buf: Buffer;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(pool: FastPool) {
    this.pool = pool;
    this.keepAliveMs = pool.keepAliveMs;
    this.#buf = Buffer.allocUnsafe(pool.readBufferSize);
    this.socket = connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf as Buffer) },
    });
    this.#connectTimer = setTimeout(onConnectTimeout, pool.connectTimeoutMs, this);
    this.socket.on('connect', () => this.#onConnect());
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    this.socket.on('end', () => this.#onEnd());
    this.socket.on('close', () => this.#onClose());
    this.socket.on('drain', () => this.user?.upstreamDrain());
  }

  #nextBuffer(): Buffer {
    if (this.retained) {
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

export class FastPool {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly readBufferSize: number;
  readonly idle: UpConn[] = [];
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

  /** A connection for `user`: the most recently released idle one, else a new one. */
  acquire(user: UpstreamUser): UpConn {
    let c = this.idle.pop();
    while (c !== undefined && (c.closed || !c.reusable)) {
      c.destroy();
      c = this.idle.pop();
    }
    if (c === undefined) {
      c = new UpConn(this);
      this.all.add(c);
    }
    c.user = user;
    return c;
  }

  /** A new connection that never returns to the pool (a tunnel's). */
  acquireFresh(user: UpstreamUser): UpConn {
    const c = new UpConn(this);
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
    this.idle.push(c);
  }

  forget(c: UpConn): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.all.size === 0 && this.draining) for (const f of this.#onEmpty.splice(0)) f();
  }

  /** Closes idle connections past their keep-alive time. */
  sweep(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (now - c.idleSince > c.keepAliveMs) c.destroy();
    }
  }

  /** Stops reuse: idle connections close now, busy ones when their exchange ends. */
  drain(onEmpty: () => void): void {
    this.draining = true;
    this.#onEmpty.push(onEmpty);
    for (const c of this.idle.splice(0)) c.destroy();
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
    for (const p of this.live()) if (p.idle.length > 0) p.sweep(now);
  }
}
