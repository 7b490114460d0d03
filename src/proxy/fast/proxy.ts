/**
 * The fast HTTP/1.1 data plane: raw client sockets parsed with h1.ts, forwarded over pooled
 * keep-alive upstream sockets (pool.ts), with the same routing, balancing, retries, passive
 * health, timeouts, limits, metrics and access log as the Node plane (../node/proxy.ts), through
 * the request core they share (../core/request.ts).
 *
 * Why: profiles of the Node plane put our own code under 2% of CPU; Node's http server and
 * undici (IncomingMessage/ServerResponse streams, header objects, validation regexes, per-request
 * listeners) took ~60%. Here a request is one Exchange object, a request head copied byte for
 * byte into one Buffer (kept header lines plus the X-Forwarded-* tail), and a response head
 * rewritten the same way, usually in the same write as the body.
 *
 * Timeouts run off one coarse ticker per proxy rather than a timer per request: each tick
 * stamps the context's clock and walks the connections.
 */
import type { Socket } from 'node:net';
import { shortestUpstreamTimeoutMs, tickMsFor } from '../../config/lb.js';
import type { RouteSpec } from '../../config/route-spec.js';
import { ClientConn } from './client-conn.js';
import type { ConnOwner } from './client-conn.js';
import { FastContext } from './context.js';
import type { FastProxyDeps } from './context.js';

export type { FastProxyDeps } from './context.js';

export class FastHttpProxy implements ConnOwner {
  readonly x: FastContext;
  readonly conns = new Set<ClientConn>();
  tickMs: number;
  closing = false;
  /** Where plain connections that open with the HTTP/2 preface go (h2c prior knowledge); unset: refused as HTTP/1. */
  h2c: ((socket: Socket, already: Buffer) => void) | undefined;
  #ticker: NodeJS.Timeout | undefined;

  constructor(deps: FastProxyDeps) {
    this.x = new FastContext(deps);
    this.tickMs = this.#tickFor(deps.config.routes);
  }

  /** Fine enough for the shortest timeout configured (the routes' own too), never busier than 20 ticks a second. */
  #tickFor(routes: readonly RouteSpec[]): number {
    const t = this.x.d.config.timeouts;
    return tickMsFor(t.clientHeaderMs, shortestUpstreamTimeoutMs(t, routes), t.tunnelMs > 0 ? t.tunnelMs : 4000);
  }

  /** New routes (a reload): the ticker follows their timeouts. */
  routesChanged(routes: readonly RouteSpec[]): void {
    const tick = this.#tickFor(routes);
    if (tick === this.tickMs) return;
    this.tickMs = tick;
    if (this.#ticker !== undefined) {
      this.stop();
      this.start();
    }
  }

  /** Starts the timeout ticker; connections come through accept(). */
  start(): void {
    if (this.#ticker !== undefined) return;
    this.#ticker = setInterval(() => this.tick(), this.tickMs);
    this.#ticker.unref();
  }

  /** A new client connection (plain TCP, or TLS already negotiated). */
  accept(socket: Socket, proto: 'http' | 'https' = 'http'): void {
    socket.setNoDelay(true);
    this.conns.add(new ClientConn(this, socket, proto));
  }

  forget(c: ClientConn): void {
    this.conns.delete(c);
  }

  tick(): void {
    const now = this.x.readClock();
    this.x.now = now;
    for (const c of this.conns) c.check(now);
    this.x.d.pools.sweep(now);
  }

  /** Shutdown, step one: idle connections close now, busy ones after their current exchange. */
  closeIdle(): void {
    this.closing = true;
    for (const c of [...this.conns]) c.closeWhenIdle();
  }

  /** Connections still open (busy, lingering or tunnelling). */
  get size(): number {
    return this.conns.size;
  }

  destroyAll(): void {
    for (const c of [...this.conns]) c.socket.destroy();
  }

  stop(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    this.#ticker = undefined;
  }
}
