// A minimal keep-alive HTTP/1.1 client over one TCP connection, for load that must cost the 2-core machine little:
// one request at a time, responses framed by Content-Length (the agent always sends it), headers read only as far as
// the benchmark needs (status, X-Consul-Index, X-Switchyard-Index-Time). No chunked bodies, no redirects, no TLS.
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface Reply {
  readonly status: number;
  /** X-Consul-Index, or -1 without one. */
  readonly index: number;
  /** X-Switchyard-Index-Time (Unix ms when the agent applied that index), or NaN without one. */
  readonly indexTime: number;
  readonly bodyBytes: number;
  /** The body, only when the request asked for it. */
  readonly body?: Buffer;
  /** performance.timeOrigin + performance.now() when the last byte arrived (Unix ms, sub-ms precision). */
  readonly at: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
export const nowMs = (): number => performance.timeOrigin + performance.now();

function headerNumber(head: string, lowerName: string): number {
  const i = head.indexOf(`\r\n${lowerName}:`);
  if (i < 0) return NaN;
  const start = i + lowerName.length + 3;
  const end = head.indexOf('\r\n', start);
  return Number(head.slice(start, end < 0 ? undefined : end).trim());
}

export class Http1Conn {
  readonly #socket: Socket;
  readonly #host: string;
  #buf: Buffer = Buffer.alloc(0);
  #pending: { resolve: (r: Reply) => void; reject: (e: Error) => void; keepBody: boolean } | undefined;
  #head: { status: number; index: number; indexTime: number; length: number; bodyStart: number } | undefined;
  #closed: Error | undefined;
  readonly ready: Promise<void>;

  constructor(port: number, opts: { host?: string; localAddress?: string } = {}) {
    const host = opts.host ?? '127.0.0.1';
    this.#host = `${host}:${port}`;
    this.#socket = connect({ port, host, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    this.#socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.#socket.once('connect', () => resolve());
      this.#socket.once('error', reject);
    });
    this.#socket.on('data', (d: Buffer) => this.#onData(d));
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#fail(new Error(`connection to ${this.#host} closed`)));
  }

  /** Sends one request; `body` (JSON) for PUT. Rejects if the connection fails or closes first. */
  request(method: string, path: string, body?: string, opts: { keepBody?: boolean; gzip?: boolean } = {}): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#pending) return Promise.reject(new Error('one request at a time'));
    const head = `${method} ${path} HTTP/1.1\r\nHost: ${this.#host}\r\n${opts.gzip ? 'Accept-Encoding: gzip\r\n' : ''}` +
      (body !== undefined ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}` : '\r\n');
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject, keepBody: opts.keepBody ?? false };
      this.#socket.write(head);
    });
  }

  close(): void {
    this.#closed ??= new Error('closed by the client');
    this.#socket.destroy();
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    for (;;) {
      if (!this.#head) {
        const end = this.#buf.indexOf(CRLFCRLF);
        if (end < 0) return;
        const head = this.#buf.toString('latin1', 0, end).toLowerCase();
        const status = Number(head.slice(9, 12));
        const length = headerNumber(head, 'content-length');
        this.#head = {
          status, index: headerNumber(head, 'x-consul-index'), indexTime: headerNumber(head, 'x-switchyard-index-time'),
          length: Number.isFinite(length) ? length : 0, bodyStart: end + 4,
        };
      }
      const h = this.#head;
      if (this.#buf.length < h.bodyStart + h.length) return;
      const p = this.#pending;
      const body = p?.keepBody ? Buffer.from(this.#buf.subarray(h.bodyStart, h.bodyStart + h.length)) : undefined;
      this.#buf = this.#buf.subarray(h.bodyStart + h.length);
      this.#head = undefined;
      this.#pending = undefined;
      p?.resolve({ status: h.status, index: Number.isFinite(h.index) ? h.index : -1, indexTime: h.indexTime, bodyBytes: h.length, at: nowMs(), ...(body ? { body } : {}) });
    }
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(err);
  }
}
