/**
 * Headers at the Node plane's edge: the strictness the fast plane's parser enforces, checked on
 * what Node's parser accepted; hop-by-hop removal; X-Forwarded-* and X-Request-Id.
 */
import type { IncomingMessage } from 'node:http';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

/** End-to-end headers that carry framing or routing: never dropped because Connection names them. */
const PROTECTED: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

/** A Host value: RFC 3986 host[:port] bytes only, as the fast plane's parser checks them. */
const HOST_VALUE = /^[A-Za-z0-9\-._~!$&'()*+,;=:[\]%]*$/;

/** Methods as nginx takes them: upper-case letters, "_" and "-" (case-sensitive tokens). */
const METHOD = /^[A-Z_-]+$/;

export interface Refusal {
  readonly status: number;
  readonly error: string;
}

/**
 * What the fast plane's parser would refuse in a request Node's parser accepted, with the same
 * status and reason: one strictness whichever plane serves the request.
 */
export function strictnessProblem(req: IncomingMessage, maxHeaderCount: number): Refusal | undefined {
  // Node keeps the first maxHeadersCount fields and drops the rest without a word; the fast plane
  // refuses such a head, and so must this one (a dropped field is a field the backend never sees).
  if (req.rawHeaders.length > 2 * maxHeaderCount) return { status: 431, error: `more than ${maxHeaderCount} header fields` };
  if (req.httpVersionMajor !== 1) return { status: 400, error: 'only HTTP/1.0 and HTTP/1.1 are served on this listener' };
  if (!METHOD.test(req.method ?? '')) return { status: 400, error: 'invalid method (methods are case-sensitive: upper-case letters, "_" and "-")' };
  if (req.method === 'CONNECT') return { status: 400, error: 'CONNECT is not served: this is a reverse proxy, not a forward proxy' };
  const raw = req.rawHeaders;
  let hosts = 0;
  let lengths = 0;
  let codings: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (name === 'host') {
      hosts++;
      if (!HOST_VALUE.test(value)) return { status: 400, error: 'invalid character in Host (it must be host[:port])' };
    }
    else if (name === 'content-length') lengths++;
    else if (name === 'transfer-encoding') {
      for (const t of value.split(',')) {
        const c = t.trim().toLowerCase();
        if (c !== '') (codings ??= []).push(c);
      }
      codings ??= [];
    } else if (name === 'connection') {
      for (const t of value.split(',')) {
        if (PROTECTED.has(t.trim().toLowerCase())) return { status: 400, error: 'Connection names Content-Length, Transfer-Encoding or Host, which are end-to-end headers' };
      }
    }
  }
  if (hosts > 1) return { status: 400, error: 'more than one Host header' };
  if (lengths > 1) return { status: 400, error: 'more than one Content-Length header' };
  if (codings !== undefined) {
    if (lengths > 0) return { status: 400, error: 'both Content-Length and Transfer-Encoding' };
    if (req.httpVersionMinor === 0) return { status: 400, error: 'Transfer-Encoding in an HTTP/1.0 request' };
    const last = codings[codings.length - 1];
    if (last !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) return { status: 400, error: 'Transfer-Encoding must end with chunked (once)' };
    if (codings.length > 1) return { status: 501, error: 'transfer codings other than chunked are not supported' };
  }
  return undefined;
}

function connectionListed(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === 10 && (raw[i] as string).toLowerCase() === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const n = t.trim().toLowerCase();
        if (n && n !== 'close' && n !== 'keep-alive' && !PROTECTED.has(n)) (out ??= new Set()).add(n);
      }
    }
  }
  return out;
}

export interface ForwardInfo {
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
  /** The authority of an absolute-form target: it replaces Host (it is what was routed on). */
  readonly host?: string | undefined;
  /** Makes an X-Request-Id when the client sent none. */
  readonly newId: () => string;
}

/**
 * Request headers for the upstream, as a flat [name, value, ...] list: hop-by-hop headers and
 * those named in Connection removed, X-Forwarded-For appended, X-Forwarded-Proto/Host and
 * X-Request-Id added when absent. Returns the request id too, for logs and the response.
 */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardInfo): { headers: string[]; requestId: string } {
  const listed = connectionListed(raw);
  const out: string[] = [];
  let xff: string | undefined;
  let host: string | undefined = info.host;
  let requestId: string | undefined;
  let hasProto = false;
  let hasFwdHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    // Node's server has already answered 100-continue, and undici refuses to forward Expect.
    if (lower === 'expect') continue;
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? value : `${xff}, ${value}`;
      continue;
    }
    if (lower === 'host') {
      if (info.host !== undefined) continue;
      host = value;
    } else if (lower === 'x-request-id') requestId = value;
    else if (lower === 'x-forwarded-proto') hasProto = true;
    else if (lower === 'x-forwarded-host') hasFwdHost = true;
    out.push(name, value);
  }
  if (info.host !== undefined) out.push('host', info.host);
  out.push('x-forwarded-for', xff === undefined ? info.clientIp : `${xff}, ${info.clientIp}`);
  if (!hasProto) out.push('x-forwarded-proto', info.proto);
  if (!hasFwdHost && host !== undefined) out.push('x-forwarded-host', host);
  if (requestId === undefined) {
    requestId = info.newId();
    out.push('x-request-id', requestId);
  }
  return { headers: out, requestId };
}

/** Response headers for the client from undici's raw Buffer list, hop-by-hop removed (one pass; a Connection token list is rare). */
export function clientResponseHeaders(raw: readonly Buffer[] | readonly string[]): string[] {
  const out: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as Buffer | string;
    const name = typeof n === 'string' ? n : n.toString('latin1');
    const v = raw[i + 1] as Buffer | string;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        for (const t of value.split(',')) {
          const x = t.trim().toLowerCase();
          if (x && x !== 'close' && x !== 'keep-alive' && !PROTECTED.has(x)) (listed ??= []).push(x);
        }
      }
      // `gzip, chunked`: the codings before chunked are the client's to undo, so the field goes on as
      // sent (Node's response keeps the chunked framing it names); a lone chunked is re-framed by Node.
      if (lower === 'transfer-encoding' && value.trim().toLowerCase() !== 'chunked') out.push(name, value);
      continue;
    }
    out.push(name, value);
  }
  if (listed === undefined) return out;
  const drop = new Set(listed);
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!drop.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  return kept;
}
