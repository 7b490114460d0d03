/**
 * Request mirroring for the fast plane: a copy of the request (head, and a body up to a bound) goes
 * to an instance of the route's mirror service, and whatever comes back is read and dropped.
 * Fire-and-forget: nothing the mirror does reaches the client, its latency, the primary's retries
 * or passive health. Copies in flight are bounded; beyond the bound a copy is dropped and counted.
 *
 * Copies travel on the plane's keep-alive pools, like primary requests: a connection per copy
 * (connect, close, TIME_WAIT) cost 1.7× the CPU of a proxied request at a 10 % share in bench:lb,
 * which is exactly the latency the primary path must not pay. The answer is framed (length,
 * chunked, HEAD/204/304) only to know when the connection is free again; anything odd closes it.
 */
import type { Upstream } from '../../balancer/index.js';
import type { ProxyMetrics } from '../core/request.js';
import type { CompiledRoute } from '../../routing/snapshot.js';
import { ChunkedDecoder, CONN_CLOSE, CONN_KEEP_ALIVE, NEED_MORE, PARSE_ERROR, parseResponseHead } from '../../core/http1/h1.js';
import type { Head } from '../../core/http1/h1.js';
import type { FastPools, UpConn, UpstreamUser } from './pool.js';
import type { UpstreamTls } from '../upstream-tls.js';

/** Copies in flight at once, per proxy. */
const MAX_IN_FLIGHT = 64;
/** A body longer than this is not mirrored (the copy is cut and counted as skipped). */
const MAX_BODY = 64 * 1024;
/** A mirror's response head larger than this ends the copy (its connection is closed). */
const MAX_HEAD = 64 * 1024;

const S_HEAD = 0;
const S_LEN = 1;
const S_CHUNKED = 2;
const S_CLOSE = 3;

export class MirrorCopy implements UpstreamUser {
  readonly #owner: Mirrors;
  readonly #route: CompiledRoute;
  readonly #uc: UpConn;
  readonly #head: boolean;
  readonly #timer: NodeJS.Timeout;
  #bytes = 0;
  #done = false;
  /** The whole request (head and body) has been written: only then may the connection be reused. */
  #requestDone: boolean;
  #state = S_HEAD;
  #carry: Buffer | undefined;
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;

  constructor(owner: Mirrors, route: CompiledRoute, up: Upstream, head: Buffer, method: string, requestDone: boolean) {
    this.#owner = owner;
    this.#route = route;
    this.#head = method === 'HEAD';
    this.#requestDone = requestDone;
    this.#uc = owner.pools.get(up).acquire(this, owner.tls(route, up));
    this.#timer = setTimeout(onMirrorTimeout, owner.timeoutMs, this);
    // Written before the connection is up, net queues it.
    this.#uc.socket.write(head);
  }

  /** A piece of the request body, as framed for the upstream; copied, since the caller's buffer is reused. */
  body(piece: Buffer): void {
    if (this.#done) return;
    this.#bytes += piece.length;
    if (this.#bytes > MAX_BODY) {
      this.#finish('skipped', false);
      return;
    }
    this.#uc.socket.write(Buffer.from(piece));
  }

  /** The request's last body byte has been handed over. */
  requestEnd(): void {
    this.#requestDone = true;
  }

  timedOut(): void {
    this.#finish('failed', false);
  }

  upstreamConnected(): void {}
  upstreamDrain(): void {}
  upstreamEnd(): void {
    this.#finish(this.#state === S_CLOSE ? 'sent' : 'failed', false);
  }
  upstreamError(): void {
    this.#finish('failed', false);
  }

  upstreamData(buf: Buffer, end: number): void {
    if (this.#done) return;
    let b = buf;
    let pos = 0;
    let stop = end;
    if (this.#state === S_HEAD) {
      if (this.#carry !== undefined) {
        b = Buffer.concat([this.#carry, buf.subarray(0, end)]);
        stop = b.length;
        this.#carry = undefined;
      }
      const R = this.#owner.res;
      for (;;) {
        const r = parseResponseHead(b, pos, stop, R, MAX_HEAD);
        if (r === NEED_MORE) {
          this.#carry = Buffer.from(b.subarray(pos, stop));
          return;
        }
        if (r === PARSE_ERROR || R.status === 101) {
          this.#finish('failed', false);
          return;
        }
        pos = r;
        if (R.status >= 200) break;
      }
      if ((R.connection & CONN_CLOSE) !== 0 || (R.versionMinor === 0 && (R.connection & CONN_KEEP_ALIVE) === 0)) this.#uc.reusable = false;
      if (this.#head || R.status === 204 || R.status === 304) {
        this.#finish('sent', pos === stop);
        return;
      }
      if (R.chunked) {
        this.#state = S_CHUNKED;
        (this.#decoder ??= new ChunkedDecoder(MAX_HEAD)).reset();
      } else if (R.contentLength >= 0) {
        this.#state = S_LEN;
        this.#remaining = R.contentLength;
      } else this.#state = S_CLOSE;
    }
    if (this.#state === S_LEN) {
      const n = Math.min(this.#remaining, stop - pos);
      this.#remaining -= n;
      if (this.#remaining === 0) this.#finish('sent', pos + n === stop);
    } else if (this.#state === S_CHUNKED) {
      const x = (this.#decoder as ChunkedDecoder).feed(b, pos, stop, null);
      if (x === PARSE_ERROR) this.#finish('failed', false);
      else if (x >= 0) this.#finish('sent', x === stop);
    }
    // S_CLOSE: the body ends with the connection (upstreamEnd).
  }

  #finish(outcome: string, reusable: boolean): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    const uc = this.#uc;
    if (reusable && this.#requestDone && uc.reusable && !uc.closed) uc.pool.release(uc, this.#owner.now());
    else uc.destroy();
    this.#owner.done(this.#route, outcome);
  }
}

function onMirrorTimeout(m: MirrorCopy): void {
  m.timedOut();
}

export class Mirrors {
  readonly pools: FastPools;
  readonly timeoutMs: number;
  readonly now: () => number;
  /** The plane's response-head parser (FastContext.res): a copy's head is parsed and used before any other parse runs. */
  readonly res: Head;
  readonly #metrics: ProxyMetrics;
  #inFlight = 0;

  /** The TLS flavour for a copy to `up` (undefined: plain HTTP). */
  readonly tls: (route: CompiledRoute, up: Upstream) => UpstreamTls | undefined;

  constructor(o: { metrics: ProxyMetrics; pools: FastPools; timeoutMs: number; res: Head; now: () => number; tls: (route: CompiledRoute, up: Upstream) => UpstreamTls | undefined }) {
    this.#metrics = o.metrics;
    this.tls = o.tls;
    this.pools = o.pools;
    this.timeoutMs = o.timeoutMs;
    this.now = o.now;
    this.res = o.res;
  }

  /**
   * Starts a copy of a request with this upstream head (keep-alive, like the primary's);
   * undefined when dropped. `requestDone`: the request has no body still to come.
   */
  start(route: CompiledRoute, head: Buffer, method: string, requestDone: boolean): MirrorCopy | undefined {
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
    return new MirrorCopy(this, route, up, head, method, requestDone);
  }

  done(route: CompiledRoute, outcome: string): void {
    this.#inFlight--;
    this.#metrics.mirrored(route, outcome);
  }
}
