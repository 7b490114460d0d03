/** The recording backend of the differential harness: raw TCP listeners that keep every byte a proxy sends and the message boundaries llhttp finds in them. */
//
// Why raw TCP and not node:http: the point is to see what a backend would see, including what a
// real server would have refused or split differently. Each upstream connection's bytes go through a
// strict llhttp request parser (test/helpers/llhttp.ts, the parser node:http runs) fed byte by byte,
// so every message carries its exact offsets. Each complete request is answered at once with a
// response that names it (x-rec-id: front.service.connection.n) and echoes what was parsed, so the
// client side can tell which backend message each response it got belongs to. A query parameter
// `__resp=<variant>` picks an unusual response (framing-sensitive headers, 200 fields, 101...) for the
// response-side cases; see RESPONSES.
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { RefParser, headerValue } from '../helpers/llhttp.js';
import type { RefError, RefMessage } from '../helpers/llhttp.js';

export const SERVICES = ['web', 'api', 'internal'] as const;
export type Service = (typeof SERVICES)[number];

export interface RecMessage extends RefMessage {
  readonly id: string;
  readonly service: Service;
  readonly conn: number;
  /** The harness's case when the message arrived. */
  readonly caseTag: string;
  readonly variant: string;
}

export interface RecConn {
  readonly id: number;
  readonly service: Service;
  readonly parser: RefParser;
  readonly chunks: Buffer[];
  /** The case during which the connection was opened. */
  readonly openedIn: string;
  closed: boolean;
  /** The proxy sent bytes llhttp refuses (the backend answered 400 and closed). */
  error: RefError | undefined;
  /** After a 101 the connection is a tunnel: bytes are echoed, not parsed. */
  tunnel: boolean;
  socket: Socket;
}

/** Responses llhttp refuses (framing broken on purpose): a strict proxy does not pass them on, so their ids are not expected at the client. */
export const BAD_RESPONSES: ReadonlySet<string> = new Set(['cl-te', 'obs-fold', 'bare-lf', 'space-colon', 'cl-invalid', 'dup-cl-same', 'dup-cl-differ', 'te-identity-cl']);

const crlf = (lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

function chunked(body: Buffer, ext = ''): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += 16) {
    const piece = body.subarray(i, i + 16);
    parts.push(Buffer.from(`${piece.length.toString(16)}${ext}\r\n`, 'latin1'), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/**
 * The response variants. Each gets the echo body and the id header and returns the bytes to write,
 * and whether to close the connection after them.
 */
const RESPONSES: Record<string, (id: string, body: Buffer, head: boolean) => { bytes: Buffer; close?: boolean; upgrade?: boolean }> = {
  ok: (id, body, head) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'content-type: application/json', `content-length: ${body.length}`]), 'latin1'), head ? Buffer.alloc(0) : body]) }),
  // Connection naming framing headers on a response: the names must be ignored, the framing kept.
  'conn-cl': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Connection: Content-Length', `Content-Length: ${body.length}`]), 'latin1'), body]) }),
  'conn-te': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Connection: Transfer-Encoding', 'Transfer-Encoding: chunked']), 'latin1'), chunked(body)]) }),
  'conn-host-date': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Connection: Host, Date, X-Drop-Me', 'X-Drop-Me: 1', `Content-Length: ${body.length}`]), 'latin1'), body]) }),
  'conn-close-cl': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Connection: close, Content-Length', `Content-Length: ${body.length}`]), 'latin1'), body]), close: true }),
  // A valid response with 200 header fields in all.
  h200: (id, body) => {
    const lines = ['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `content-length: ${body.length}`];
    for (let i = 0; lines.length < 201; i++) lines.push(`x-h-${String(i).padStart(3, '0')}: v${i}`);
    return { bytes: Buffer.concat([Buffer.from(crlf(lines), 'latin1'), body]) };
  },
  'gzip-chunked': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Transfer-Encoding: gzip, chunked']), 'latin1'), chunked(gzipSync(body))]) }),
  chunked: (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Transfer-Encoding: chunked']), 'latin1'), chunked(body)]) }),
  'chunk-ext': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Transfer-Encoding: chunked']), 'latin1'), chunked(body, ';name=value')]) }),
  trailers: (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Transfer-Encoding: chunked', 'Trailer: X-Sum']), 'latin1'), chunked(body).subarray(0, -2), Buffer.from('X-Sum: 42\r\n\r\n')]) }),
  eof: (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Connection: close']), 'latin1'), body]), close: true }),
  'http10-eof': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.0 200 OK', `x-rec-id: ${id}`]), 'latin1'), body]), close: true }),
  continue: (id, body) => ({ bytes: Buffer.concat([Buffer.from('HTTP/1.1 100 Continue\r\n\r\n'), RESPONSES.ok!(id, body, false).bytes]) }),
  'early-hints': (id, body) => ({ bytes: Buffer.concat([Buffer.from('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'), RESPONSES.ok!(id, body, false).bytes]) }),
  '204': (id) => ({ bytes: Buffer.from(crlf(['HTTP/1.1 204 No Content', `x-rec-id: ${id}`])) }),
  '304-cl': (id) => ({ bytes: Buffer.from(crlf(['HTTP/1.1 304 Not Modified', `x-rec-id: ${id}`, 'Content-Length: 99'])) }),
  'dup-cl-same': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `Content-Length: ${body.length}`, `Content-Length: ${body.length}`]), 'latin1'), body]) }),
  // The non-101 answer to an Upgrade request: a real status, headers and a body.
  'refuse-upgrade': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 426 Upgrade Required', `x-rec-id: ${id}`, 'X-Why: no-such-protocol', `Content-Length: ${body.length}`]), 'latin1'), body]) }),
  '101': (id) => ({ bytes: Buffer.from(crlf(['HTTP/1.1 101 Switching Protocols', `x-rec-id: ${id}`, 'Upgrade: echo', 'Connection: Upgrade'])), upgrade: true }),
  // Broken on purpose (BAD_RESPONSES): a proxy must answer 502 and drop the connection.
  'cl-te': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `Content-Length: ${body.length + 5}`, 'Transfer-Encoding: chunked']), 'latin1'), chunked(body)]), close: true }),
  'obs-fold': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'X-Folded: a', ' b', `Content-Length: ${body.length}`]), 'latin1'), body]), close: true }),
  'bare-lf': (id, body) => ({ bytes: Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\nx-rec-id: ${id}\nContent-Length: ${body.length}\n\n`, 'latin1'), body]), close: true }),
  'space-colon': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `Content-Length : ${body.length}`]), 'latin1'), body]), close: true }),
  'cl-invalid': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `Content-Length: +${body.length}`]), 'latin1'), body]), close: true }),
  'dup-cl-differ': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, `Content-Length: ${body.length}`, `Content-Length: ${body.length + 1}`]), 'latin1'), body]), close: true }),
  'te-identity-cl': (id, body) => ({ bytes: Buffer.concat([Buffer.from(crlf(['HTTP/1.1 200 OK', `x-rec-id: ${id}`, 'Transfer-Encoding: identity', `Content-Length: ${body.length}`]), 'latin1'), body]), close: true }),
};

export const RESPONSE_VARIANTS: readonly string[] = Object.keys(RESPONSES);

/** The variant a request asks for: `__resp=<name>` anywhere in its target (the query survives every rewrite). */
export function variantOf(url: string): string {
  const m = /[?&]__resp=([A-Za-z0-9-]+)/.exec(url);
  return m && RESPONSES[m[1] as string] ? (m[1] as string) : 'ok';
}

/** One front's backends: a listener per service, all connections and messages in arrival order. */
export class Recorder {
  readonly front: string;
  readonly ports = new Map<Service, number>();
  readonly conns: RecConn[] = [];
  readonly messages: RecMessage[] = [];
  caseTag = '';
  readonly #servers: Server[] = [];

  constructor(front: string) {
    this.front = front;
  }

  async start(): Promise<void> {
    for (const service of SERVICES) {
      const server = createServer((s) => this.#accept(service, s));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      this.ports.set(service, (server.address() as AddressInfo).port);
      this.#servers.push(server);
    }
  }

  #accept(service: Service, socket: Socket): void {
    const c: RecConn = { id: this.conns.length + 1, service, parser: new RefParser('request'), chunks: [], openedIn: this.caseTag, closed: false, error: undefined, tunnel: false, socket };
    this.conns.push(c);
    socket.on('data', (d: Buffer) => this.#data(c, d));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      c.closed = true;
    });
  }

  #data(c: RecConn, d: Buffer): void {
    c.chunks.push(d);
    if (c.tunnel) {
      c.socket.write(Buffer.concat([Buffer.from('echo:'), d]));
      return;
    }
    if (c.error !== undefined) return;
    const before = c.parser.messages.length;
    const ok = c.parser.feed(d);
    const fresh = c.parser.messages.slice(before);
    for (const m of fresh) {
      const n = c.parser.messages.indexOf(m) + 1;
      const id = `${this.front}.${c.service}.${c.id}.${n}`;
      const variant = variantOf(m.url);
      const rec: RecMessage = { ...m, id, service: c.service, conn: c.id, caseTag: this.caseTag, variant };
      this.messages.push(rec);
      if (c.socket.destroyed) continue;
      const echo = Buffer.from(JSON.stringify({ id, service: c.service, method: m.method, url: m.url, host: headerValue(m, 'host') ?? null, bodyLength: m.body.length }), 'utf8');
      const r = (RESPONSES[variant] as (typeof RESPONSES)[string])(id, echo, m.method === 'HEAD');
      c.socket.write(r.bytes);
      if (r.close) c.socket.end();
      if (r.upgrade || m.upgrade) {
        // A 101 (or a request llhttp itself treats as switching protocols): the rest is a tunnel.
        c.tunnel = true;
        const rest = Buffer.concat(c.chunks).subarray(c.parser.upgradedAt >= 0 ? c.parser.upgradedAt : c.parser.offset);
        if (rest.length > 0) c.socket.write(Buffer.concat([Buffer.from('echo:'), rest]));
        return;
      }
    }
    if (!ok && c.parser.error !== undefined) {
      // What a strict server does with bytes it cannot parse: 400 and close (x-rec-refused tells the
      // client side that this 400 came from the backend, not from the proxy).
      c.error = c.parser.error;
      c.socket.end(`HTTP/1.1 400 Bad Request\r\nx-rec-refused: ${this.front}.${c.service}.${c.id}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
  }

  /** Total bytes received so far (all connections). */
  bytesSeen(): number {
    let n = 0;
    for (const c of this.conns) for (const ch of c.chunks) n += ch.length;
    return n;
  }

  /** Open connections holding part of a message (bytes a later request on the same connection would be glued to). */
  residue(): RecConn[] {
    return this.conns.filter((c) => !c.closed && !c.tunnel && c.error === undefined && c.parser.pending > 0);
  }

  /** Closes every open upstream connection (the next case starts on fresh ones). */
  dropAll(): void {
    for (const c of this.conns) if (!c.closed) c.socket.destroy();
  }

  async close(): Promise<void> {
    this.dropAll();
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
