/**
 * Request mirroring for the fast plane: a copy of the request (head, and a body up to a bound) goes
 * to an instance of the route's mirror service over a connection of its own, and whatever comes
 * back is read and dropped. Fire-and-forget: nothing the mirror does reaches the client, its
 * latency, the primary's retries or passive health. Copies in flight are bounded; beyond the bound
 * a copy is dropped and counted.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { ProxyMetrics } from '../core/request.js';
import type { CompiledRoute } from '../../routing/snapshot.js';

/** Copies in flight at once, per proxy. */
const MAX_IN_FLIGHT = 64;
/** A body longer than this is not mirrored (the copy is cut and counted as skipped). */
const MAX_BODY = 64 * 1024;

export class MirrorCopy {
  readonly #socket: Socket;
  readonly #route: CompiledRoute;
  readonly #owner: Mirrors;
  #bytes = 0;
  #done = false;

  constructor(owner: Mirrors, route: CompiledRoute, host: string, port: number, head: Buffer, timeoutMs: number) {
    this.#owner = owner;
    this.#route = route;
    const s = connect({ host, port, noDelay: true });
    this.#socket = s;
    s.setTimeout(timeoutMs, () => this.#finish('failed'));
    s.on('error', () => this.#finish('failed'));
    s.on('data', () => undefined);
    s.on('end', () => this.#finish('sent'));
    s.on('close', () => this.#finish('sent'));
    s.write(head);
  }

  /** A piece of the request body, as framed for the upstream; copied, since the caller's buffer is reused. */
  body(piece: Buffer): void {
    if (this.#done) return;
    this.#bytes += piece.length;
    if (this.#bytes > MAX_BODY) {
      this.#finish('skipped');
      return;
    }
    this.#socket.write(Buffer.from(piece));
  }

  #finish(outcome: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#socket.destroy();
    this.#owner.done(this.#route, outcome);
  }
}

export class Mirrors {
  readonly #metrics: ProxyMetrics;
  readonly #timeoutMs: number;
  #inFlight = 0;

  constructor(metrics: ProxyMetrics, timeoutMs: number) {
    this.#metrics = metrics;
    this.#timeoutMs = timeoutMs;
  }

  /** Starts a copy of a request with this upstream head (`connection: close`); undefined when dropped. */
  start(route: CompiledRoute, head: Buffer): MirrorCopy | undefined {
    const group = route.mirror;
    if (group === undefined) return undefined;
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      this.#metrics.mirrored(route, 'dropped');
      return undefined;
    }
    const up = group.strategy.pick({});
    if (up === undefined) {
      this.#metrics.mirrored(route, 'dropped');
      return undefined;
    }
    this.#inFlight++;
    return new MirrorCopy(this, route, up.address, up.port, head, this.#timeoutMs);
  }

  done(route: CompiledRoute, outcome: string): void {
    this.#inFlight--;
    this.#metrics.mirrored(route, outcome);
  }
}
