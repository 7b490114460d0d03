/**
 * UDP routes: a listen port forwards datagrams to instances of one service (DNS, syslog, QUIC-less
 * game or metrics traffic), as nginx's `stream` UDP proxy and Traefik's UDP routers do. UDP has no
 * connection, so a client (address and port) gets a session: one socket connected to the instance
 * picked for its first datagram, which carries every later datagram both ways until the session has
 * been idle for `idleTimeoutMs`. Table swaps leave sessions alone, as TCP connections.
 *
 * An instance that answers with ICMP port unreachable (its socket reports ECONNREFUSED) is charged
 * to passive health and the session ends, so the client's next datagram goes to another instance.
 * Sessions are bounded (`maxSessions`): each holds a socket, and source addresses cost an attacker
 * nothing to vary, so past the bound datagrams from new clients are dropped and counted.
 */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { Upstream, UpstreamStates } from '../balancer/index.js';
import type { SnapshotStore } from '../routing/snapshot-store.js';
import type { PassiveHealth } from './passive-health.js';

export interface UdpProxyOptions {
  /** Key of the upstream group in the routing snapshot (see tcpGroupKey: L4 routes share it). */
  groupKey: string;
  snapshots: SnapshotStore;
  states: UpstreamStates;
  health: PassiveHealth;
  logger: Logger;
  idleTimeoutMs: number;
  maxSessions: number;
  hashByClientIp: boolean;
  /** A session opened, or a new client's datagram dropped (no healthy instance, or the session bound). */
  onSession?: (outcome: 'opened' | 'no_instance' | 'too_many') => void;
  onDatagram?: (direction: 'in' | 'out', bytes: number) => void;
}

interface Session {
  readonly key: string;
  readonly client: RemoteInfo;
  readonly upstream: Upstream;
  readonly socket: UdpSocket;
  lastActive: number;
  /** Datagrams from the client sent before the session's socket was connected. */
  pending: Buffer[] | undefined;
}

export class UdpProxy {
  readonly socket: UdpSocket;
  readonly #o: UdpProxyOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #sweeper: NodeJS.Timeout;
  #tooManyLoggedAt = 0;

  constructor(family: 'udp4' | 'udp6', opts: UdpProxyOptions) {
    this.#o = opts;
    this.socket = createSocket({ type: family, reuseAddr: false });
    this.socket.on('message', (msg, rinfo) => this.#fromClient(msg, rinfo));
    // A send to a client that vanished must not take the listener down.
    this.socket.on('error', (err) => this.#o.logger.debug({ err: err.message }, 'udp listener error'));
    // Coarse: a session lives up to one sweep past its idle timeout.
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(100, Math.min(1000, opts.idleTimeoutMs / 4)));
    this.#sweeper.unref();
  }

  #fromClient(msg: Buffer, client: RemoteInfo): void {
    this.#o.onDatagram?.('in', msg.length);
    const key = `${client.address}|${client.port}`;
    const s = this.#sessions.get(key) ?? this.#open(key, client);
    if (s === undefined) return;
    s.lastActive = performance.now();
    if (s.pending !== undefined) s.pending.push(msg);
    else s.socket.send(msg);
  }

  #open(key: string, client: RemoteInfo): Session | undefined {
    if (this.#sessions.size >= this.#o.maxSessions) {
      this.#o.onSession?.('too_many');
      const now = Date.now();
      if (now - this.#tooManyLoggedAt >= 10_000) {
        this.#tooManyLoggedAt = now;
        this.#o.logger.warn({ sessions: this.#sessions.size }, 'udp datagram from a new client dropped: the route holds max-sessions sessions (warned at most every 10 s)');
      }
      return undefined;
    }
    const group = this.#o.snapshots.current?.groups.get(this.#o.groupKey);
    const up = group?.strategy.pick(this.#o.hashByClientIp ? { hashKey: client.address } : {});
    if (up === undefined) {
      this.#o.onSession?.('no_instance');
      return undefined;
    }
    const socket = createSocket(isIPv6(up.address) ? 'udp6' : 'udp4');
    const s: Session = { key, client, upstream: up, socket, lastActive: performance.now(), pending: [] };
    this.#sessions.set(key, s);
    this.#o.states.get(up.id).inFlight++;
    socket.on('message', (reply) => {
      s.lastActive = performance.now();
      this.#o.onDatagram?.('out', reply.length);
      this.socket.send(reply, client.port, client.address);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // ICMP port unreachable on the connected socket: nothing listens there now.
      if (err.code === 'ECONNREFUSED') this.#o.health.failure(up.id);
      this.#o.logger.debug({ upstream: `${up.address}:${up.port}`, err: err.code ?? err.message }, 'udp session to instance failed');
      this.#end(s);
    });
    socket.connect(up.port, up.address, (err?: Error) => {
      if (this.#sessions.get(key) !== s) return; // ended meanwhile (its socket is closed)
      // A failed connect leaves the socket unconnected, where a send without an address throws.
      if (err) {
        this.#o.logger.debug({ upstream: `${up.address}:${up.port}`, err: err.message }, 'udp session to instance could not connect');
        this.#end(s);
        return;
      }
      const queued = s.pending ?? [];
      s.pending = undefined;
      for (const m of queued) socket.send(m);
    });
    this.#o.onSession?.('opened');
    return s;
  }

  #end(s: Session): void {
    if (this.#sessions.get(s.key) !== s) return;
    this.#sessions.delete(s.key);
    this.#o.states.get(s.upstream.id).inFlight--;
    try {
      s.socket.close();
    } catch {
      // already closed
    }
  }

  #sweep(): void {
    // Monotonic: a wall clock stepped back would keep every session (up to max-sessions, then refusing
    // new clients) for that long.
    const cutoff = performance.now() - this.#o.idleTimeoutMs;
    for (const s of this.#sessions.values()) if (s.lastActive <= cutoff) this.#end(s);
  }

  /** Stops listening and ends every session. The socket is bound by the caller (wiring/listen.ts bindUdp). */
  close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const s of [...this.#sessions.values()]) this.#end(s);
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
