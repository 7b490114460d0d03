/** The Consul HTTP check: one request (plus redirects) judged by status code, with Go-client-style output. */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { checkUrl, goQuote, transportErrorText, urlErrorOp } from './http-go-errors.js';
import { firstHop, RedirectChain, requestOptions } from './http-hop.js';
import type { Hop } from './http-hop.js';
import { decodeUtf8Prefix } from './output.js';
import { primaryError } from './tcp-check.js';
import { DEFAULT_OUTPUT_MAX_SIZE, effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

export interface HttpCheckDefinition {
  url: string;
  method?: string | undefined;
  header?: Record<string, string[]> | undefined;
  body?: string | undefined;
  tlsSkipVerify?: boolean | undefined;
  tlsServerName?: string | undefined;
  /** Bounds the whole check: connect, TLS, every redirect hop, headers and body. */
  timeoutMs: number;
  disableRedirects?: boolean | undefined;
  outputMaxSize?: number | undefined;
}

function statusOf(code: number): CheckResult['status'] {
  if (code >= 200 && code <= 299) return 'passing';
  if (code === 429) return 'warning';
  return 'critical';
}

/**
 * Runs one HTTP check with Consul's semantics: default GET with Consul's User-Agent and Accept,
 * no keep-alive, Go-client redirects, 2xx passing / 429 warning / else critical, and output
 * `HTTP <METHOD> <url>: <status> Output: <body prefix>`. Never rejects; always settles by `timeoutMs`.
 * Unlike Consul (whose circular buffer keeps the body's last bytes and reads it to the end), the
 * output holds the body's first `outputMaxSize` bytes and reading stops there.
 */
export function runHttpCheck(def: HttpCheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  // Consul's `if method == "" { method = "GET" }`.
  const method = def.method === undefined || def.method === '' ? 'GET' : def.method;
  const op = urlErrorOp(method);
  const first = firstHop({ url: def.url, method, header: def.header, body: def.body }, op);
  if ('error' in first) return Promise.resolve({ status: 'critical', output: first.error });
  const chain = new RedirectChain(first.hop, def.disableRedirects === true);
  return new Promise<CheckResult>((resolve) => {
    new HttpCheckRun(def, op, chain, resolve).start(signal);
  });
}

/** One run of a check: sends the chain of requests, reads the final body, and settles exactly once. */
class HttpCheckRun {
  readonly #def: HttpCheckDefinition;
  readonly #op: string;
  readonly #chain: RedirectChain;
  readonly #resolve: (r: CheckResult) => void;
  readonly #maxOutput: number;
  readonly #streams: Readable[] = [];
  #settled = false;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  #currentHop: Hop;
  #currentReq: ClientRequest | undefined;
  /** Set once response headers are in: an interrupted body still yields a status-code verdict, as in Consul. */
  #finishBody: (() => void) | undefined;

  constructor(def: HttpCheckDefinition, op: string, chain: RedirectChain, resolve: (r: CheckResult) => void) {
    this.#def = def;
    this.#op = op;
    this.#chain = chain;
    this.#resolve = resolve;
    this.#currentHop = chain.first;
    this.#maxOutput = def.outputMaxSize !== undefined && def.outputMaxSize > 0 ? Math.floor(def.outputMaxSize) : DEFAULT_OUTPUT_MAX_SIZE;
  }

  start(signal: AbortSignal | undefined): void {
    this.#timer = setTimeout(
      () => this.#interrupt('context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
      effectiveTimeoutMs(this.#def.timeoutMs),
    );
    if (signal?.aborted) {
      this.#onAbort();
      return;
    }
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#send(this.#chain.first);
  }

  readonly #onAbort = (): void => this.#interrupt('context canceled');

  #finish(result: CheckResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    for (const s of this.#streams) s.destroy();
    this.#currentReq?.destroy();
    this.#resolve(result);
  }

  #fail(urlText: string, text: string): void {
    this.#finish({ status: 'critical', output: `${this.#op} ${goQuote(urlText)}: ${text}` });
  }

  /** Timeout or abort: before response headers a client error, after them the verdict from the status code. */
  #interrupt(why: string): void {
    if (this.#finishBody !== undefined) this.#finishBody();
    else this.#fail(this.#currentHop.urlText, why);
  }

  #send(hop: Hop): void {
    this.#currentHop = hop;
    this.#chain.sending();
    const bad = checkUrl(hop.url, this.#op, hop.urlText);
    if (bad !== undefined) {
      this.#finish({ status: 'critical', output: bad });
      return;
    }
    const options = requestOptions(hop, { skipVerify: this.#def.tlsSkipVerify === true, serverName: this.#def.tlsServerName });
    let req: ClientRequest;
    try {
      req = (hop.url.protocol === 'https:' ? httpsRequest : httpRequest)(hop.url, options);
    } catch (err) {
      this.#fail(hop.urlText, primaryError(err).message ?? String(err));
      return;
    }
    this.#currentReq = req;
    req.on('error', (err) => {
      if (this.#currentReq !== req || this.#finishBody !== undefined) return;
      this.#fail(hop.urlText, transportErrorText(err, hop.url, req));
    });
    req.on('response', (res) => this.#onResponse(req, hop, res));
    if (hop.body !== undefined) req.end(hop.body);
    else req.end();
  }

  #onResponse(req: ClientRequest, hop: Hop, res: IncomingMessage): void {
    if (this.#settled || this.#currentReq !== req) {
      res.destroy();
      return;
    }
    this.#streams.push(res);
    const step = this.#chain.follow(hop, res.statusCode ?? 0, res.headers.location);
    if ('error' in step) {
      this.#fail(step.urlText, step.error);
      return;
    }
    if ('final' in step) {
      this.#readBody(hop, res);
      return;
    }
    // Late socket errors from the abandoned hop must not surface as unhandled 'error' events.
    res.on('error', () => undefined);
    res.destroy();
    req.destroy();
    this.#send(step.next);
  }

  /** Reads the final response's body up to the output cap, then settles with the status code's verdict (Consul prints the check's own method and URL). */
  #readBody(hop: Hop, res: IncomingMessage): void {
    const code = res.statusCode ?? 0;
    // Go's resp.Status is the status line after the protocol: "200 OK", or just "200" with no reason.
    const statusText = res.statusMessage ? `${code} ${res.statusMessage}` : String(code);
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      const text = decodeUtf8Prefix(Buffer.concat(chunks), this.#maxOutput);
      this.#finish({ status: statusOf(code), output: `HTTP ${this.#chain.first.method} ${this.#def.url}: ${statusText} Output: ${text}` });
    };
    this.#finishBody = done;
    let stream: Readable = res;
    if (hop.gzip && (res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
      const gunzip = createGunzip();
      this.#streams.push(gunzip);
      res.pipe(gunzip);
      stream = gunzip;
    }
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      // Everything past the cap would be discarded anyway; stopping here frees the server and the socket.
      if (size >= this.#maxOutput) done();
    });
    stream.on('end', done);
    // Go's body read errors are only logged; the verdict still comes from the status code.
    stream.on('error', done);
    res.on('error', done);
    res.on('close', () => {
      if (!res.complete) done();
    });
  }
}
