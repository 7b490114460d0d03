/**
 * A strict HTTP/1.1 message-head parser over Buffers, for the fast data plane (chunked bodies: h1-chunked.ts).
 *
 * Strict on purpose: a proxy that parses differently from the server behind it is how requests
 * get smuggled, so anything ambiguous is refused rather than guessed at (bare LF, obs-fold,
 * whitespace before the colon, Content-Length with Transfer-Encoding, duplicate Content-Length,
 * transfer codings other than a lone "chunked", control characters anywhere in the head).
 *
 * The parser records offsets, not strings: the proxy copies header lines it keeps byte for byte,
 * so most headers are never turned into JS strings. Header names that matter to a proxy are
 * classified while scanning (HeaderKind) so nothing downstream lowercases names again.
 */
import { CLASS, COLON, CR, HOSTCHAR, HTAB, LF, METHOD, NEED_MORE, PARSE_ERROR, SP, TARGET, TCHAR, VALUE } from './h1-chars.js';

export { NEED_MORE, PARSE_ERROR } from './h1-chars.js';
export { ChunkedDecoder, C_DONE } from './h1-chunked.js';
export type { ChunkSink } from './h1-chunked.js';

/** Header names the proxy acts on; everything else is OTHER and copied through untouched. */
export const H_OTHER = 0;
export const H_HOST = 1;
export const H_CONTENT_LENGTH = 2;
export const H_TRANSFER_ENCODING = 3;
export const H_CONNECTION = 4;
export const H_KEEP_ALIVE = 5;
export const H_PROXY_CONNECTION = 6;
export const H_TE = 7;
export const H_TRAILER = 8;
export const H_UPGRADE = 9;
export const H_HTTP2_SETTINGS = 10;
export const H_X_FORWARDED_FOR = 11;
export const H_X_FORWARDED_PROTO = 12;
export const H_X_FORWARDED_HOST = 13;
export const H_X_REQUEST_ID = 14;
export const H_EXPECT = 15;
export const H_DATE = 16;

/** Hop-by-hop kinds (RFC 9110 §7.6.1 plus the usual suspects): never forwarded as received. */
export const HOP_BY_HOP_KIND = new Uint8Array(32);
for (const k of [H_CONNECTION, H_KEEP_ALIVE, H_PROXY_CONNECTION, H_TE, H_TRAILER, H_TRANSFER_ENCODING, H_UPGRADE, H_HTTP2_SETTINGS]) HOP_BY_HOP_KIND[k] = 1;

/** Case-insensitive compare of buf[s, s+name.length) with a lowercase ASCII name. */
function eqLower(buf: Buffer, s: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    // OR-ing 0x20 folds A-Z onto a-z; for token characters it maps nothing else onto a letter or '-'.
    if ((buf[s + i]! | 0x20) !== name.charCodeAt(i)) return false;
  }
  return true;
}

function kindOf(buf: Buffer, s: number, len: number): number {
  switch (len) {
    case 2: return eqLower(buf, s, 'te') ? H_TE : H_OTHER;
    case 4: {
      const c = buf[s]! | 0x20;
      if (c === 0x68) return eqLower(buf, s, 'host') ? H_HOST : H_OTHER;
      if (c === 0x64) return eqLower(buf, s, 'date') ? H_DATE : H_OTHER;
      return H_OTHER;
    }
    case 6: return eqLower(buf, s, 'expect') ? H_EXPECT : H_OTHER;
    case 7: {
      const c = buf[s]! | 0x20;
      if (c === 0x75) return eqLower(buf, s, 'upgrade') ? H_UPGRADE : H_OTHER;
      if (c === 0x74) return eqLower(buf, s, 'trailer') ? H_TRAILER : H_OTHER;
      return H_OTHER;
    }
    case 10: {
      const c = buf[s]! | 0x20;
      if (c === 0x63) return eqLower(buf, s, 'connection') ? H_CONNECTION : H_OTHER;
      if (c === 0x6b) return eqLower(buf, s, 'keep-alive') ? H_KEEP_ALIVE : H_OTHER;
      return H_OTHER;
    }
    case 12: return eqLower(buf, s, 'x-request-id') ? H_X_REQUEST_ID : H_OTHER;
    case 14: {
      const c = buf[s]! | 0x20;
      if (c === 0x63) return eqLower(buf, s, 'content-length') ? H_CONTENT_LENGTH : H_OTHER;
      if (c === 0x68) return eqLower(buf, s, 'http2-settings') ? H_HTTP2_SETTINGS : H_OTHER;
      return H_OTHER;
    }
    case 15: return eqLower(buf, s, 'x-forwarded-for') ? H_X_FORWARDED_FOR : H_OTHER;
    case 16: {
      const c = buf[s]! | 0x20;
      if (c === 0x70) return eqLower(buf, s, 'proxy-connection') ? H_PROXY_CONNECTION : H_OTHER;
      if (c === 0x78) return eqLower(buf, s, 'x-forwarded-host') ? H_X_FORWARDED_HOST : H_OTHER;
      return H_OTHER;
    }
    case 17: {
      const c = buf[s]! | 0x20;
      if (c === 0x74) return eqLower(buf, s, 'transfer-encoding') ? H_TRANSFER_ENCODING : H_OTHER;
      if (c === 0x78) return eqLower(buf, s, 'x-forwarded-proto') ? H_X_FORWARDED_PROTO : H_OTHER;
      return H_OTHER;
    }
    default: return H_OTHER;
  }
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT'];

/** The method as a string; the common ones come back as shared constants (no allocation). */
function methodString(buf: Buffer, s: number, e: number): string {
  const len = e - s;
  for (const m of METHODS) {
    if (m.length !== len) continue;
    let ok = true;
    for (let i = 0; i < len; i++) {
      if (buf[s + i] !== m.charCodeAt(i)) {
        ok = false;
        break;
      }
    }
    if (ok) return m;
  }
  return buf.latin1Slice(s, e);
}

/**
 * Connection tokens: bit 1 close, 2 keep-alive, 4 upgrade, 8 anything else (names more hop-by-hop
 * headers), 16 a name that must never be hop-by-hop: Content-Length, Transfer-Encoding or Host.
 * Dropping those as "listed in Connection" would strip a message's framing while its body is still
 * forwarded — the body then reads as a second request (smuggling) — or its routing authority.
 */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;
export const CONN_OTHER = 8;
export const CONN_PROTECTED = 16;

function connectionTokens(buf: Buffer, s: number, e: number): number {
  let flags = 0;
  let i = s;
  while (i < e) {
    while (i < e && (buf[i] === SP || buf[i] === HTAB || buf[i] === 0x2c)) i++;
    const ts = i;
    while (i < e && buf[i] !== 0x2c) i++;
    let te = i;
    while (te > ts && (buf[te - 1] === SP || buf[te - 1] === HTAB)) te--;
    const len = te - ts;
    if (len === 0) continue;
    if (len === 5 && eqLower(buf, ts, 'close')) flags |= CONN_CLOSE;
    else if (len === 10 && eqLower(buf, ts, 'keep-alive')) flags |= CONN_KEEP_ALIVE;
    else if (len === 7 && eqLower(buf, ts, 'upgrade')) flags |= CONN_UPGRADE;
    else if ((len === 14 && eqLower(buf, ts, 'content-length')) || (len === 17 && eqLower(buf, ts, 'transfer-encoding')) || (len === 4 && eqLower(buf, ts, 'host'))) flags |= CONN_OTHER | CONN_PROTECTED;
    else flags |= CONN_OTHER;
  }
  return flags;
}

/**
 * Transfer-Encoding tokens across all TE fields: 1 = exactly one coding, "chunked"; 2 = "chunked"
 * last with other codings before it; 3 = not ending in "chunked"; 0 = empty; 4 = an empty list
 * element (`,chunked`, `chunked,`, an empty field beside others: parsers read those differently).
 */
function transferCodings(buf: Buffer, p: Head): number {
  let count = 0;
  let fields = 0;
  let empty = false;
  let lastChunked = false;
  let chunkedSeen = 0;
  for (let h = 0; h < p.count; h++) {
    if (p.kind[h] !== H_TRANSFER_ENCODING) continue;
    fields++;
    const e = p.ve[h]!;
    let i = p.vs[h]!;
    if (i === e) empty = true;
    while (i < e) {
      while (i < e && (buf[i] === SP || buf[i] === HTAB)) i++;
      const ts = i;
      while (i < e && buf[i] !== 0x2c && buf[i] !== 0x3b) i++;
      let te = i;
      while (te > ts && (buf[te - 1] === SP || buf[te - 1] === HTAB)) te--;
      if (buf[i] === 0x3b) return 3; // transfer-coding parameters: nothing we forward takes any.
      if (te === ts) return 4;
      if (buf[i] === 0x2c) {
        i++;
        if (i >= e) return 4; // a trailing comma
      }
      count++;
      lastChunked = te - ts === 7 && eqLower(buf, ts, 'chunked');
      if (lastChunked) chunkedSeen++;
    }
  }
  if (empty && fields > 1) return 4;
  if (count === 0) return 0;
  if (!lastChunked) return 3;
  return count === 1 ? 1 : 2 + (chunkedSeen > 1 ? 1 : 0);
}

/**
 * The result of parsing one message head: offsets into the buffer it was parsed from, plus the
 * framing facts. One instance is reused for every parse in a direction: callers take what they
 * need before the next parse.
 */
export class Head {
  readonly maxHeaders: number;
  /** Per header: name start/end, value start/end (trimmed), end of the line (after CRLF), kind. */
  readonly ns: Int32Array;
  readonly ne: Int32Array;
  readonly vs: Int32Array;
  readonly ve: Int32Array;
  readonly le: Int32Array;
  readonly kind: Uint8Array;
  count = 0;
  /** Start of the first line (after any leading CRLFs a request may carry) and end of that line. */
  start = 0;
  lineEnd = 0;
  end = 0;
  // request line
  method = '';
  targetStart = 0;
  targetEnd = 0;
  // status line
  status = 0;
  versionMinor = 1;
  // framing and the headers the proxy acts on
  contentLength = -1;
  chunked = false;
  /** Transfer-Encoding lists codings before the final chunked (responses only: passed through as sent). */
  codedChunked = false;
  connection = 0;
  hostIndex = -1;
  upgrade = false;
  expect = false;
  xff = 0;
  forwardedProto = false;
  forwardedHost = false;
  requestIdIndex = -1;
  keepAliveIndex = -1;
  hasDate = false;
  // error
  errorStatus = 0;
  errorReason = '';

  constructor(maxHeaders = 128) {
    this.maxHeaders = maxHeaders;
    this.ns = new Int32Array(maxHeaders);
    this.ne = new Int32Array(maxHeaders);
    this.vs = new Int32Array(maxHeaders);
    this.ve = new Int32Array(maxHeaders);
    this.le = new Int32Array(maxHeaders);
    this.kind = new Uint8Array(maxHeaders);
  }

  reset(): void {
    this.count = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.codedChunked = false;
    this.connection = 0;
    this.hostIndex = -1;
    this.upgrade = false;
    this.expect = false;
    this.xff = 0;
    this.forwardedProto = false;
    this.forwardedHost = false;
    this.requestIdIndex = -1;
    this.keepAliveIndex = -1;
    this.hasDate = false;
    this.status = 0;
    this.errorStatus = 0;
    this.errorReason = '';
  }

  fail(status: number, reason: string): number {
    this.errorStatus = status;
    this.errorReason = reason;
    return PARSE_ERROR;
  }

  /** The value of header h as a latin1 string (bytes round-trip unchanged). */
  value(buf: Buffer, h: number): string {
    return buf.latin1Slice(this.vs[h]!, this.ve[h]!);
  }

  /** Lowercase name of header h (allocates; for the rare paths). */
  name(buf: Buffer, h: number): string {
    return buf.latin1Slice(this.ns[h]!, this.ne[h]!).toLowerCase();
  }

  /**
   * All values of a header by lowercase name, joined as Node joins them for req.headers
   * ("; " for cookie, ", " otherwise); undefined when absent.
   */
  get(buf: Buffer, lowerName: string): string | undefined {
    let out: string | undefined;
    for (let h = 0; h < this.count; h++) {
      if (this.ne[h]! - this.ns[h]! !== lowerName.length || !eqLower(buf, this.ns[h]!, lowerName)) continue;
      const v = this.value(buf, h);
      out = out === undefined ? v : `${out}${lowerName === 'cookie' ? '; ' : ', '}${v}`;
    }
    return out;
  }
}

/**
 * Header lines from `pos` up to and including the empty line. Returns the offset after the head,
 * NEED_MORE, or PARSE_ERROR (p.errorStatus / p.errorReason say why).
 */
function parseHeaderLines(buf: Buffer, pos: number, end: number, p: Head, limit: number): number {
  for (;;) {
    if (pos >= end) return NEED_MORE;
    const first = buf[pos]!;
    if (first === CR) {
      if (pos + 1 >= end) return NEED_MORE;
      if (buf[pos + 1] !== LF) return p.fail(400, 'CR not followed by LF');
      return pos + 2;
    }
    if (first === LF) return p.fail(400, 'bare LF line ending (CRLF required)');
    if (first === SP || first === HTAB) return p.fail(400, 'obsolete line folding (header line starts with whitespace)');
    const ns = pos;
    while (pos < end && (CLASS[buf[pos]!]! & TCHAR) !== 0) pos++;
    if (pos >= end) return pos > limit ? p.fail(431, 'header section too large') : NEED_MORE;
    if (buf[pos] !== COLON) {
      const c = buf[pos]!;
      return p.fail(400, c === SP || c === HTAB ? 'whitespace between header name and colon' : c === CR || c === LF ? 'header line without a colon' : 'invalid character in header name');
    }
    const ne = pos;
    pos++;
    let tab = false;
    while (pos < end && (buf[pos] === SP || buf[pos] === HTAB)) {
      if (buf[pos] === HTAB) tab = true;
      pos++;
    }
    const vs = pos;
    while (pos < end && (CLASS[buf[pos]!]! & VALUE) !== 0) pos++;
    if (pos >= end) return pos > limit ? p.fail(431, 'header section too large') : NEED_MORE;
    if (buf[pos] !== CR) return p.fail(400, buf[pos] === LF ? 'bare LF line ending (CRLF required)' : 'invalid character in header value');
    if (pos + 1 >= end) return NEED_MORE;
    if (buf[pos + 1] !== LF) return p.fail(400, 'CR not followed by LF');
    let ve = pos;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) {
      if (buf[ve - 1] === HTAB) tab = true;
      ve--;
    }
    pos += 2;
    if (pos > limit) return p.fail(431, 'header section too large');
    const h = p.count;
    if (h >= p.maxHeaders) return p.fail(431, `more than ${p.maxHeaders} header fields`);
    if (ne === ns) return p.fail(400, 'empty header name');
    p.ns[h] = ns;
    p.ne[h] = ne;
    p.vs[h] = vs;
    p.ve[h] = ve;
    p.le[h] = pos;
    const kind = kindOf(buf, ns, ne - ns);
    p.kind[h] = kind;
    p.count = h + 1;
    // Around framing and routing values only a space is accepted: parsers disagree on whether a tab
    // is whitespace there (llhttp strips it, nginx keeps it as part of the value and refuses).
    if (tab && (kind === H_HOST || kind === H_CONTENT_LENGTH || kind === H_TRANSFER_ENCODING)) return p.fail(400, 'tab around the value of a framing or Host header');
    switch (kind) {
      case H_OTHER: break;
      case H_HOST:
        if (p.hostIndex >= 0) return p.fail(400, 'more than one Host header');
        for (let i = vs; i < ve; i++) if ((CLASS[buf[i]!]! & HOSTCHAR) === 0) return p.fail(400, 'invalid character in Host (it must be host[:port])');
        p.hostIndex = h;
        break;
      case H_CONTENT_LENGTH: {
        if (p.contentLength >= 0) return p.fail(400, 'more than one Content-Length header');
        const len = ve - vs;
        if (len === 0 || len > 15) return p.fail(400, 'invalid Content-Length');
        let n = 0;
        for (let i = vs; i < ve; i++) {
          const d = buf[i]! - 48;
          if (d < 0 || d > 9) return p.fail(400, 'invalid Content-Length');
          n = n * 10 + d;
        }
        p.contentLength = n;
        break;
      }
      case H_TRANSFER_ENCODING: p.chunked = true; break; // codings are checked once all lines are in
      case H_CONNECTION: p.connection |= connectionTokens(buf, vs, ve); break;
      case H_UPGRADE: p.upgrade = true; break;
      case H_EXPECT: p.expect = true; break;
      case H_X_FORWARDED_FOR: p.xff++; break;
      case H_X_FORWARDED_PROTO: p.forwardedProto = true; break;
      case H_X_FORWARDED_HOST: p.forwardedHost = true; break;
      case H_X_REQUEST_ID: p.requestIdIndex = h; break;
      case H_KEEP_ALIVE: p.keepAliveIndex = h; break;
      case H_DATE: p.hasDate = true; break;
      default: break;
    }
  }
}

/**
 * RFC 9112 §3.2's four forms: origin ("/…"), asterisk ("*"), absolute ("scheme://…") and, for
 * CONNECT only, authority. What fits none (`GET 3`, `GET c`) is refused here, as llhttp does.
 */
function targetForm(buf: Buffer, ts: number, te: number, connect: boolean): boolean {
  const c = buf[ts]!;
  if (c === 0x2f) return true;
  if (c === 0x2a) return te - ts === 1;
  if (connect) return true;
  if ((c | 0x20) < 0x61 || (c | 0x20) > 0x7a) return false;
  // The scheme in letters only: llhttp takes no digits or "+-." there (RFC 3986 would).
  let i = ts + 1;
  while (i < te && (buf[i]! | 0x20) >= 0x61 && (buf[i]! | 0x20) <= 0x7a) i++;
  if (!(te - i >= 3 && buf[i] === 0x3a && buf[i + 1] === 0x2f && buf[i + 2] === 0x2f)) return false;
  // The authority up to the path or query: host[:port] bytes (and userinfo's one "@", which the
  // exchange refuses later with a reason), as llhttp checks them: it refuses a second "@".
  let at = 0;
  for (i += 3; i < te && buf[i] !== 0x2f && buf[i] !== 0x3f; i++) {
    if (buf[i] === 0x40) {
      if (++at > 1) return false;
    } else if ((CLASS[buf[i]!]! & HOSTCHAR) === 0) return false;
  }
  return true;
}

/** HTTP/1.x after `pos`: returns the minor version (0 or 1), or -1 / -2 for a bad or unsupported version. */
function version(buf: Buffer, pos: number): number {
  if (buf[pos] !== 0x48 || buf[pos + 1] !== 0x54 || buf[pos + 2] !== 0x54 || buf[pos + 3] !== 0x50 || buf[pos + 4] !== 0x2f || buf[pos + 6] !== 0x2e) return -1;
  const major = buf[pos + 5]! - 48;
  const minor = buf[pos + 7]! - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return -1;
  if (major !== 1 || minor > 1) return -2;
  return minor;
}

/**
 * Parses a request head starting at `start`. `maxSize` bounds request line plus headers (431
 * beyond it). Returns the offset just past the head, NEED_MORE or PARSE_ERROR.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, p: Head, maxSize: number): number {
  p.reset();
  let pos = start;
  // RFC 9112 §2.2: ignore at least one empty line before the request line (some clients send a
  // stray CRLF after a body). Bounded so a stream of CRLFs is not an endless free ride.
  for (let n = 0; n < 4 && pos < end && buf[pos] === CR; n++) {
    if (pos + 1 >= end) return NEED_MORE;
    if (buf[pos + 1] !== LF) return p.fail(400, 'CR not followed by LF');
    pos += 2;
  }
  p.start = pos;
  const limit = pos + maxSize;
  const ms = pos;
  while (pos < end && (CLASS[buf[pos]!]! & METHOD) !== 0) pos++;
  if (pos >= end) return pos > limit ? p.fail(431, 'request line too long') : NEED_MORE;
  if (buf[pos] !== SP || pos === ms) {
    if (pos === ms && (CLASS[buf[pos]!]! & TCHAR) === 0) return p.fail(400, 'missing method');
    return p.fail(400, 'invalid method (methods are case-sensitive: upper-case letters, "_" and "-")');
  }
  const me = pos;
  pos++;
  const ts = pos;
  while (pos < end && (CLASS[buf[pos]!]! & TARGET) !== 0) pos++;
  if (pos >= end) return pos > limit ? p.fail(431, 'request line too long') : NEED_MORE;
  if (buf[pos] !== SP || pos === ts) return p.fail(400, pos === ts ? 'missing request target' : 'invalid character in request target');
  const te = pos;
  pos++;
  if (end - pos < 10) return NEED_MORE;
  const minor = version(buf, pos);
  if (minor === -1) return p.fail(400, 'invalid HTTP version');
  if (minor === -2) return p.fail(505, 'only HTTP/1.0 and HTTP/1.1 are supported');
  pos += 8;
  if (buf[pos] !== CR || buf[pos + 1] !== LF) return p.fail(400, buf[pos] === LF ? 'bare LF line ending (CRLF required)' : 'invalid request line');
  pos += 2;
  p.method = methodString(buf, ms, me);
  if (!targetForm(buf, ts, te, p.method === 'CONNECT')) return p.fail(400, 'invalid request target (a path, "*", an absolute URL, or host:port for CONNECT)');
  p.targetStart = ts;
  p.targetEnd = te;
  p.versionMinor = minor;
  p.lineEnd = pos;
  const r = parseHeaderLines(buf, pos, end, p, limit);
  if (r < 0) return r;
  p.end = r;
  if (p.chunked) {
    // RFC 9112 §6.1: both framings at once is the classic smuggling vector; refuse, don't pick one.
    if (p.contentLength >= 0) return p.fail(400, 'both Content-Length and Transfer-Encoding');
    if (minor === 0) return p.fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    const t = transferCodings(buf, p);
    if (t === 2) return p.fail(501, 'transfer codings other than chunked are not supported');
    if (t === 4) return p.fail(400, 'empty element in Transfer-Encoding');
    if (t !== 1) return p.fail(400, 'Transfer-Encoding must end with chunked (once)');
  }
  if (minor === 1 && p.hostIndex < 0) return p.fail(400, 'missing Host header');
  if ((p.connection & CONN_PROTECTED) !== 0) return p.fail(400, 'Connection names Content-Length, Transfer-Encoding or Host, which are end-to-end headers');
  return r;
}

/** Parses a response head (status line and headers). */
export function parseResponseHead(buf: Buffer, start: number, end: number, p: Head, maxSize: number): number {
  p.reset();
  let pos = start;
  p.start = pos;
  const limit = pos + maxSize;
  if (end - pos < 13) return NEED_MORE;
  const minor = version(buf, pos);
  if (minor < 0) return p.fail(502, 'invalid status line');
  pos += 8;
  if (buf[pos] !== SP) return p.fail(502, 'invalid status line');
  const d0 = buf[pos + 1]! - 48;
  const d1 = buf[pos + 2]! - 48;
  const d2 = buf[pos + 3]! - 48;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return p.fail(502, 'invalid status code');
  pos += 4;
  if (buf[pos] === SP) {
    pos++;
    while (pos < end && (CLASS[buf[pos]!]! & VALUE) !== 0) pos++;
    if (pos >= end) return pos > limit ? p.fail(502, 'status line too long') : NEED_MORE;
  }
  if (buf[pos] !== CR) return p.fail(502, 'invalid status line');
  if (pos + 1 >= end) return NEED_MORE;
  if (buf[pos + 1] !== LF) return p.fail(502, 'invalid status line');
  pos += 2;
  p.status = d0 * 100 + d1 * 10 + d2;
  if (p.status < 200 && minor === 0) return p.fail(502, 'a 1xx response from an HTTP/1.0 server');
  p.versionMinor = minor;
  p.lineEnd = pos;
  const r = parseHeaderLines(buf, pos, end, p, limit);
  if (r < 0) {
    if (r === PARSE_ERROR) p.errorStatus = 502;
    return r;
  }
  p.end = r;
  if (p.chunked) {
    if (p.contentLength >= 0) return p.fail(502, 'both Content-Length and Transfer-Encoding');
    const t = transferCodings(buf, p);
    // `gzip, chunked`: the body is framed by the final chunked, which we parse; the codings before
    // it are the client's to undo, so the field goes through as sent.
    if (t === 2) p.codedChunked = true;
    else if (t === 4) return p.fail(502, 'empty element in Transfer-Encoding');
    else if (t !== 1) return p.fail(502, 'unsupported Transfer-Encoding (it must end with chunked, once)');
  }
  return r;
}

/** The `timeout=N` of a Keep-Alive header in ms, or -1. */
export function keepAliveTimeoutMs(buf: Buffer, p: Head): number {
  if (p.keepAliveIndex < 0) return -1;
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,6})/i.exec(p.value(buf, p.keepAliveIndex));
  return m ? Number(m[1]) * 1000 : -1;
}
