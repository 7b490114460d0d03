/**
 * One attempt of an HTTP/2 client's request at an instance, whatever the instance speaks: the
 * interface the HTTP/2 exchange drives (UpstreamCall) and reports to (CallSink), and its HTTP/1.1
 * implementation over the Node plane's undici pools (an HTTP/2 client in front of the seeds'
 * HTTP/1.1 backends). The HTTP/2 implementation is in h2-pool.ts.
 */
import { PassThrough } from 'node:stream';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Dispatcher, Pool } from 'undici';
import { CONNECT_ERRORS } from '../core/request.js';
import { h2ResponseFromH1, trailersFromRaw } from './headers.js';
import type { UpstreamTls } from '../upstream-tls.js';

/** What an attempt reports, in order: a response head, data, the end (with trailers) — or a failure. */
export interface CallSink {
  /** `endStream`: nothing follows the head (a gRPC trailers-only answer, or an HTTP/2 HEADERS frame with END_STREAM). */
  callResponse(status: number, headers: OutgoingHttpHeaders, endStream: boolean): void;
  /** Response data; false asks the call to pause until resume(). */
  callData(chunk: Buffer): boolean;
  /** The response is complete; `last` is its final data, sent with the end of the stream (one DATA frame, not two). */
  callEnd(trailers: OutgoingHttpHeaders | undefined, last?: Buffer): void;
  /** `refused`: the instance never saw the request (connect refused or failed, REFUSED_STREAM, above a GOAWAY's last stream). */
  callFailed(code: string, message: string, refused: boolean): void;
  /** The request side can take more body. */
  callDrain(): void;
}

export interface UpstreamCall {
  /** The call times its own response head and idle gaps (undici does); otherwise the exchange's ticker does. */
  readonly ownTimeouts: boolean;
  /** Request body; false: wait for callDrain(). */
  write(chunk: Buffer): boolean;
  /** The request is complete (with trailers, when the client sent some). */
  end(trailers?: OutgoingHttpHeaders): void;
  /** Response flow control. */
  pause(): void;
  resume(): void;
  /** Gives up on the attempt: the instance's stream is cancelled and the sink hears nothing more. */
  abort(): void;
}

export interface H1CallOptions {
  readonly method: string;
  readonly path: string;
  readonly headers: string[];
  readonly hasBody: boolean;
  /** The client declared a Content-Length (else a body is sent chunked). */
  readonly hasLength: boolean;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** HTTP/1.1 over TLS of this flavour; undefined: plain. */
  readonly tls: UpstreamTls | undefined;
}

const ABORTED = new Error('attempt abandoned');

/** An attempt at an HTTP/1.1 instance through undici's dispatch API (its legacy handler interface, as the Node plane uses). */
export class H1Call implements UpstreamCall {
  readonly ownTimeouts = true;
  readonly #sink: CallSink;
  readonly #body: PassThrough | undefined;
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #paused = false;
  #done = false;
  #connected = false;

  constructor(pool: Pool, o: H1CallOptions, sink: CallSink) {
    this.#sink = sink;
    if (o.hasBody) {
      this.#body = new PassThrough({ highWaterMark: 64 * 1024 });
      this.#body.on('drain', () => {
        if (!this.#done) this.#sink.callDrain();
      });
    }
    pool.dispatch({
      path: o.path, method: o.method as Dispatcher.HttpMethod, headers: o.headers, body: this.#body ?? null,
      headersTimeout: o.headersTimeoutMs, bodyTimeout: o.bodyTimeoutMs,
    }, this as unknown as Dispatcher.DispatchHandler);
  }

  write(chunk: Buffer): boolean {
    return this.#body === undefined ? true : this.#body.write(chunk);
  }

  end(): void {
    this.#body?.end();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#abort?.(ABORTED);
    this.#body?.destroy();
  }

  // ---- undici's dispatch handler ----

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#done) abort(ABORTED);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.#done || statusCode < 200) return true;
    this.#connected = true;
    this.#resume = resume;
    this.#sink.callResponse(statusCode, h2ResponseFromH1(statusCode, rawHeaders), false);
    return !this.#paused;
  }

  onData(chunk: Buffer): boolean {
    if (this.#done) return false;
    if (!this.#sink.callData(chunk)) this.#paused = true;
    return !this.#paused;
  }

  onComplete(trailers: Buffer[] | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#sink.callEnd(trailersFromRaw(trailers));
  }

  onError(err: Error & { code?: string }): void {
    if (this.#done || err === ABORTED) return;
    this.#done = true;
    this.#body?.destroy();
    const code = err.code ?? '';
    this.#sink.callFailed(code, err.message, !this.#connected && CONNECT_ERRORS.has(code));
  }
}
