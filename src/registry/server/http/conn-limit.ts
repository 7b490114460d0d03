/**
 * Consul's `limits.http_max_conns_per_client`: how many connections one client address may hold
 * open to the HTTP API at once. A connection over the limit is answered as Consul answers it
 * (hashicorp/go-connlimit: a 429 with this text, then closed) before anything reads it. Without it,
 * one client holding blocking queries open could take every file descriptor the agent has, and
 * the balancers and registrators following it would be turned away.
 *
 * Unlike Consul, some addresses can be exempt, loopback by default: the agent's own host runs the
 * balancer, consul-template and registrator, which hold one connection per watched service (a
 * balancer following 5,000 services holds 5,000).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { ipMatcher } from '../../../core/ip-list.js';

const MESSAGE = 'Your IP is issuing too many concurrent connections, please rate limit your calls\n';
const TOO_MANY = Buffer.from(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: ${MESSAGE.length}\r\nConnection: close\r\n\r\n${MESSAGE}`, 'latin1');
/** A refused client that does not close its side is cut after this. */
const LINGER_MS = 1000;
/** At most one log line per this interval, however many connections are refused. */
const LOG_EVERY_MS = 10_000;

export class ClientConnLimit {
  readonly #max: number;
  readonly #exempt: (ip: string) => boolean;
  readonly #open = new Map<string, number>();
  readonly #logger: Logger;
  #refused = 0;
  #loggedAt = 0;

  constructor(max: number, exempt: readonly string[], logger: Logger) {
    this.#max = max;
    this.#exempt = ipMatcher(exempt);
    this.#logger = logger;
  }

  /** Counts the connection and returns true, or answers 429, closes it and returns false. */
  admit(socket: Socket): boolean {
    const ip = socket.remoteAddress ?? '';
    if (this.#exempt(ip)) return true;
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.#max) {
      this.#refuse(socket, ip);
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

  #refuse(socket: Socket, ip: string): void {
    this.#refused++;
    socket.on('error', () => undefined);
    // Read and drop what the client sent, so closing does not reset the connection under the answer.
    socket.resume();
    socket.end(TOO_MANY);
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
    const now = Date.now();
    if (now - this.#loggedAt >= LOG_EVERY_MS) {
      this.#loggedAt = now;
      this.#logger.warn({ client: ip, limit: this.#max, refusedSoFar: this.#refused }, 'connection refused: this client already holds http-max-conns-per-client connections');
    }
  }
}
