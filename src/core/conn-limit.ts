/**
 * How many connections one client address may hold open at once, for a listener that would
 * otherwise let one client take every file descriptor (the agent's HTTP API: Consul's
 * `limits.http_max_conns_per_client`; the balancer's listeners: nginx's `limit_conn` on
 * `$binary_remote_addr`, Traefik's `inFlightConn`). A connection over the limit is refused before
 * anything reads it: answered with the listener's refusal when it has one (an HTTP response),
 * closed without a word otherwise (TLS before its handshake, raw TCP).
 *
 * Some addresses can be exempt: the hosts that legitimately hold many connections (the agent's
 * own host runs the balancer, which holds one per watched service; a balancer behind another
 * proxy sees every client as that proxy's address).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { clientIp } from './client-peer.js';
import { ipMatcher, unmappedIp } from './ip-list.js';

/** A refused client that does not close its side is cut after this. */
const LINGER_MS = 1000;
/** At most one log line per this interval, however many connections are refused. */
const LOG_EVERY_MS = 10_000;

export interface ConnLimitOptions {
  readonly max: number;
  readonly exempt: readonly string[];
  readonly logger: Logger;
  /** The setting's name, for the warning. */
  readonly setting: string;
}

export class ClientConnLimit {
  readonly #o: ConnLimitOptions;
  readonly #exempt: (ip: string) => boolean;
  readonly #open = new Map<string, number>();
  #refused = 0;
  #loggedAt = 0;

  constructor(o: ConnLimitOptions) {
    this.#o = o;
    this.#exempt = ipMatcher(o.exempt);
  }

  /** Counts the connection and returns true, or refuses it (writing `answer` first, if any) and returns false. */
  admit(socket: Socket, answer?: Buffer): boolean {
    // One client, one count, whether a listener sees it as a.b.c.d or ::ffff:a.b.c.d.
    const ip = unmappedIp(clientIp(socket));
    if (this.#exempt(ip)) return true;
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.#o.max) {
      this.#refuse(socket, ip, answer);
      return false;
    }
    this.#open.set(ip, n + 1);
    socket.once('close', () => {
      const left = (this.#open.get(ip) ?? 1) - 1;
      if (left === 0) this.#open.delete(ip);
      else this.#open.set(ip, left);
    });
    return true;
  }

  #refuse(socket: Socket, ip: string, answer: Buffer | undefined): void {
    this.#refused++;
    socket.on('error', () => undefined);
    if (answer === undefined) socket.destroy();
    else {
      // Read and drop what the client sent, so closing does not reset the connection under the answer.
      socket.resume();
      socket.end(answer);
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    }
    const now = Date.now();
    if (now - this.#loggedAt >= LOG_EVERY_MS) {
      this.#loggedAt = now;
      this.#o.logger.warn({ client: ip, limit: this.#o.max, refusedSoFar: this.#refused }, `connection refused: this client already holds ${this.#o.setting} connections`);
    }
  }
}
