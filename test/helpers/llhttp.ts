/** Node's own llhttp (the parser behind node:http) as a reference parser with exact byte offsets, for the differential harness and the h1 fuzzer. */
//
// Reached through process.binding('http_parser'): deprecated (DEP0111) but present on Node 20, and it is
// exactly the parser node:http runs, strict flags included (kLenientNone, as a server without
// --insecure-http-parser). Running bytes through a real node:http server would add Node's own header
// handling on top and hide where a message ends; the binding gives every callback synchronously.
//
// Offsets: bytes are fed one at a time, so "the head ended" and "the message ended" are known to the byte
// (a callback fires while executing the byte that completes it). llhttp is incremental by design, so
// this parses exactly as one execute() over the whole buffer would; it costs about a microsecond a byte,
// fine for messages of a few hundred bytes.

interface Binding {
  methods: string[];
  HTTPParser: HTTPParserCtor;
}
interface HTTPParserCtor {
  new (): HTTPParserInstance;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}
interface HTTPParserInstance {
  [k: number]: unknown;
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | (Error & { code: string; reason: string; bytesParsed: number });
  finish(): undefined | (Error & { code: string; reason: string });
  close(): void;
}

function loadBinding(): Binding {
  // Silence exactly the one deprecation warning this access causes; leave every other warning alone.
  const emit = process.emitWarning;
  process.emitWarning = ((w: string | Error, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0111') return;
    (emit as (...a: unknown[]) => void).call(process, w, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (process as unknown as { binding(name: string): Binding }).binding('http_parser');
  } finally {
    process.emitWarning = emit;
  }
}

const B = loadBinding();
const P = B.HTTPParser;

export type Framing = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' } | { kind: 'eof' };

export interface RefMessage {
  /** Requests: the method and target as llhttp read them. */
  method: string;
  url: string;
  /** Responses: the status code and reason. */
  status: number;
  reason: string;
  versionMajor: number;
  versionMinor: number;
  /** Raw header pairs in order, names as sent. */
  headers: [string, string][];
  upgrade: boolean;
  keepAlive: boolean;
  /** The body after removing any chunked framing. */
  body: Buffer;
  framing: Framing;
  /** Offsets in the stream: first byte of the message, first byte after the head, first byte after the message (-1 until complete). */
  start: number;
  headEnd: number;
  end: number;
}

export interface RefError {
  code: string;
  reason: string;
  /** Offset in the stream of the byte llhttp refused. */
  at: number;
}

/** Header value by case-insensitive name; several fields are joined with ", " (undefined when absent). */
export function headerValue(m: { headers: [string, string][] }, name: string): string | undefined {
  const n = name.toLowerCase();
  const vs = m.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  return vs.length === 0 ? undefined : vs.join(', ');
}

function framingOf(m: RefMessage, isResponse: boolean, skipBody: boolean): Framing {
  if (skipBody) return { kind: 'none' };
  // Statuses that never have a body, whatever the headers say.
  if (isResponse && ((m.status >= 100 && m.status < 200) || m.status === 204 || m.status === 304)) return { kind: 'none' };
  const te = headerValue(m, 'transfer-encoding');
  // llhttp's rule: chunked only when "chunked" is the last coding (nothing after it, not even a comma).
  if (te !== undefined && /(?:^|,)[ \t]*chunked[ \t]*$/i.test(te)) return { kind: 'chunked' };
  if (te !== undefined) return isResponse ? { kind: 'eof' } : { kind: 'none' };
  const cl = headerValue(m, 'content-length');
  if (cl !== undefined) return { kind: 'length', length: Number(cl.trim()) };
  return isResponse ? { kind: 'eof' } : { kind: 'none' };
}

/**
 * An incremental reference parser over one byte stream (one connection, one direction).
 * Messages come out with offsets into the stream; after an error or an upgrade it stops.
 */
export class RefParser {
  readonly kind: 'request' | 'response';
  readonly messages: RefMessage[] = [];
  error: RefError | undefined;
  /** Set when a message switched protocols (101 response, CONNECT/Upgrade request): bytes from here on are not HTTP. */
  upgradedAt = -1;
  /** Bytes fed so far. */
  offset = 0;
  /** Stream offset after the last complete message (or where the current one began). */
  boundary = 0;
  /** For responses: which requests were HEAD or CONNECT, in order (a response's body depends on it). */
  readonly #requestMethods: string[];
  #responsesSeen = 0;
  #cur: RefMessage | undefined;
  #headers: string[] = [];
  #url = '';
  #parts: Buffer[] = [];
  #skipBody = false;
  readonly #parser: HTTPParserInstance;

  constructor(kind: 'request' | 'response', requestMethods: string[] = []) {
    this.kind = kind;
    this.#requestMethods = requestMethods;
    const p = new P();
    p.initialize(kind === 'request' ? P.REQUEST : P.RESPONSE, {}, 0, P.kLenientNone);
    p[P.kOnHeaders] = (headers: string[], url: string) => {
      this.#headers.push(...headers);
      this.#url += url;
    };
    p[P.kOnHeadersComplete] = (versionMajor: number, versionMinor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined, statusCode: number | undefined, statusMessage: string | undefined, upgrade: boolean, keepAlive: boolean) => {
      const all = headers === undefined ? this.#headers : [...this.#headers, ...headers];
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < all.length; i += 2) pairs.push([all[i] as string, all[i + 1] as string]);
      const m: RefMessage = {
        method: method === undefined ? '' : (B.methods[method] ?? `#${method}`), url: url === undefined ? this.#url : this.#url + url,
        status: statusCode ?? 0, reason: statusMessage ?? '', versionMajor, versionMinor, headers: pairs, upgrade, keepAlive,
        body: Buffer.alloc(0), framing: { kind: 'none' }, start: this.boundary, headEnd: this.offset + 1, end: -1,
      };
      this.#headers = [];
      this.#url = '';
      this.#cur = m;
      this.#skipBody = false;
      if (kind === 'response' && statusCode !== undefined && statusCode >= 200) {
        const reqMethod = this.#requestMethods[this.#responsesSeen];
        this.#responsesSeen++;
        if (reqMethod === 'HEAD') this.#skipBody = true;
        if (reqMethod === 'CONNECT' && statusCode < 300) {
          m.framing = { kind: 'none' };
          return 2; // a tunnel: no body, and the bytes after the head are not HTTP
        }
      }
      m.framing = framingOf(m, kind === 'response', this.#skipBody);
      return this.#skipBody ? 1 : 0;
    };
    p[P.kOnBody] = (b: Buffer) => {
      this.#parts.push(Buffer.from(b));
    };
    p[P.kOnMessageComplete] = () => {
      const m = this.#cur;
      if (m === undefined) return;
      m.body = Buffer.concat(this.#parts);
      this.#parts = [];
      m.end = this.offset + 1;
      this.messages.push(m);
      this.#cur = undefined;
      this.boundary = m.end;
      if (m.upgrade) this.upgradedAt = m.end;
    };
    this.#parser = p;
  }

  /** Feeds bytes; returns false once the parser has stopped (error or upgrade). */
  feed(chunk: Buffer): boolean {
    for (let i = 0; i < chunk.length; i++) {
      if (this.error !== undefined || this.upgradedAt >= 0) return false;
      const r = this.#parser.execute(chunk.subarray(i, i + 1));
      if (typeof r !== 'number') {
        this.error = { code: r.code, reason: r.reason, at: this.offset };
        return false;
      }
      this.offset++;
    }
    return this.error === undefined && this.upgradedAt < 0;
  }

  /** The stream ended: a close-delimited response completes; an incomplete message is an error. */
  end(): void {
    if (this.error !== undefined || this.upgradedAt >= 0) return;
    const r = this.#parser.finish();
    if (r !== undefined) this.error = { code: r.code, reason: r.reason, at: this.offset };
  }

  /** Bytes of an unfinished message (fed after the last boundary). */
  get pending(): number {
    return this.upgradedAt >= 0 ? 0 : this.offset - this.boundary;
  }

  /** The message llhttp is in the middle of (head parsed, body incomplete), if any. */
  get current(): RefMessage | undefined {
    return this.#cur;
  }

  close(): void {
    this.#parser.close();
  }
}

/** Parses a whole request stream (as a server would read one connection). */
export function parseRequests(bytes: Buffer): RefParser {
  const p = new RefParser('request');
  p.feed(bytes);
  p.close();
  return p;
}

/** Parses a whole response stream; `methods` are the requests' methods in order (HEAD and CONNECT change framing). */
export function parseResponses(bytes: Buffer, methods: string[], ended: boolean): RefParser {
  const p = new RefParser('response', methods);
  p.feed(bytes);
  if (ended) p.end();
  p.close();
  return p;
}
