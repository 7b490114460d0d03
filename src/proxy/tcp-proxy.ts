/**
 * L4 routes: a listen port forwards raw TCP to instances of one service, with the same balancing,
 * passive health and connect retries as HTTP. Established connections are never touched by
 * routing-table swaps.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { SnapshotStore } from '../routing/snapshot-store.js';
import type { PassiveHealth } from './passive-health.js';
import { RESOURCE_ERRORS } from './core/request.js';
import { clientIp, clientPort } from '../core/client-peer.js';
import { encodeProxyHeader } from './proxy-protocol.js';

export interface TcpProxyOptions {
  /** Key of the upstream group in the routing snapshot (see tcpGroupKey). */
  groupKey: string;
  snapshots: SnapshotStore;
  states: UpstreamStates;
  health: PassiveHealth;
  logger: Logger;
  connectTimeoutMs: number;
  /** A connection with no byte either way for this long is closed (HAProxy's `timeout tunnel`); 0: never. */
  idleTimeoutMs: number;
  attempts: number;
  hashByClientIp: boolean;
  /** A PROXY protocol header to write to the instance before the client's bytes (HAProxy's send-proxy). */
  sendProxy?: 'v1' | 'v2' | undefined;
  onConnection?: (upstream: Upstream | undefined, ok: boolean) => void;
  onIdleClose?: () => void;
  /**
   * Runs first for each new (paused) connection: the PROXY protocol header and the per-client
   * limit. It calls `proceed` (bytes it read past its own are back on the socket), or closes the connection.
   */
  intake?: (client: Socket, proceed: () => void) => void;
}

export class TcpProxy {
  readonly server: Server;
  readonly #o: TcpProxyOptions;
  readonly #open = new Set<Socket>();
  /** When the last "out of local resources" warning was logged. */
  #resourceWarnedAt = 0;

  constructor(opts: TcpProxyOptions) {
    this.#o = opts;
    this.server = createServer({ pauseOnConnect: true }, (client) => this.#accept(client));
  }

  activeConnections(): number {
    return this.#open.size;
  }

  #accept(client: Socket): void {
    // From the start: a client may fail while intake still reads it, and its error must not go unhandled.
    client.on('error', () => client.destroy());
    if (this.#o.intake === undefined) this.#admitted(client);
    else this.#o.intake(client, () => this.#admitted(client));
  }

  #admitted(client: Socket): void {
    this.#open.add(client);
    client.on('close', () => this.#open.delete(client));
    this.#attempt(client, undefined, 0);
  }

  #attempt(client: Socket, tried: Set<string> | undefined, n: number): void {
    if (client.destroyed) return;
    const group = this.#o.snapshots.current?.groups.get(this.#o.groupKey);
    const key = this.#o.hashByClientIp ? clientIp(client) : undefined;
    const up = group?.strategy.pick({ ...(key ? { hashKey: key } : {}), ...(tried ? { exclude: tried } : {}) });
    if (!up) {
      this.#o.onConnection?.(undefined, false);
      client.destroy();
      return;
    }
    const state = this.#o.states.get(up.id);
    state.inFlight++;
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        state.inFlight--;
      }
    };
    const upstream = connect({ host: up.address, port: up.port });
    upstream.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), this.#o.connectTimeoutMs);
    upstream.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      this.#o.onConnection?.(up, true);
      if (this.#o.sendProxy !== undefined) {
        upstream.write(encodeProxyHeader(this.#o.sendProxy,
          { address: clientIp(client), port: clientPort(client) }, { address: client.localAddress ?? '', port: client.localPort ?? 0 }));
      }
      client.pipe(upstream).pipe(client);
      client.resume();
      const done = (): void => {
        release();
        upstream.destroy();
        client.destroy();
      };
      upstream.once('close', done);
      client.once('close', done);
      // The client socket's timer restarts on its reads and its writes: the two directions of the pipe.
      if (this.#o.idleTimeoutMs > 0) {
        client.setTimeout(this.#o.idleTimeoutMs, () => {
          this.#o.onIdleClose?.();
          done();
        });
      }
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (connected) return; // 'close' follows and tears both sides down.
      release();
      // Out of local descriptors or buffers: not the instance's fault, and no other instance would do better.
      if (RESOURCE_ERRORS.has(err.code ?? '')) {
        const now = Date.now();
        if (now - this.#resourceWarnedAt >= 10_000) {
          this.#resourceWarnedAt = now;
          this.#o.logger.warn({ upstream: `${up.address}:${up.port}`, err: err.code }, 'tcp connect failed: the balancer is out of local resources (warned at most every 10 s)');
        }
        this.#o.onConnection?.(up, false);
        client.destroy();
        return;
      }
      this.#o.health.failure(up.id);
      this.#o.logger.debug({ upstream: `${up.address}:${up.port}`, err: err.code ?? err.message }, 'tcp connect failed');
      // The client is still paused and nothing was exchanged: another instance may take it.
      if (n + 1 < this.#o.attempts && !client.destroyed) {
        this.#attempt(client, (tried ?? new Set<string>()).add(up.id), n + 1);
        return;
      }
      this.#o.onConnection?.(up, false);
      client.destroy();
    });
  }

  /** Stops accepting; open connections are ended after `graceMs`. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const t = setTimeout(() => {
      for (const s of this.#open) s.destroy();
    }, graceMs);
    t.unref();
    await closed;
    clearTimeout(t);
  }
}
