/** The texts Go's net/http client gives the HTTP check's failures (Consul prints them as the check output): quoting, URLs, TLS and transport errors. */
import type { ClientRequest } from 'node:http';
import { NOT_TLS, goTlsErrorText } from './go-tls-errors.js';
import { dialErrorText, isDialError, joinHostPort, primaryError } from './tcp-check.js';


/** Go's %q for the ASCII strings that show up in URLs and header names. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's urlErrorOp: "GET" becomes "Get", the prefix of every client error (methods are ASCII tokens by now). */
export function urlErrorOp(method: string): string {
  return method.slice(0, 1) + method.slice(1).toLowerCase();
}

/** Go prints a request URL with any password masked (url.URL.Redacted). */
export function redact(url: URL): string {
  if (url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.password = 'xxxxx';
  return copy.href;
}

export const stripBrackets = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

/** Undefined for a URL Go's client would request, else the error text it would produce for it. */
export function checkUrl(url: URL, op: string, urlText: string): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `${op} ${goQuote(urlText)}: unsupported protocol scheme ${goQuote(url.protocol.slice(0, -1))}`;
  }
  if (url.host === '') return `${op} ${goQuote(urlText)}: http: no Host in request URL`;
  return undefined;
}


/** The part of Go's client error after `Get "url": ` for a failure before response headers arrived. */
export function transportErrorText(err: unknown, url: URL, req: ClientRequest): string {
  const e = primaryError(err);
  const tls = goTlsErrorText(e);
  // Go's client says this instead when the reply it read starts like HTTP, as a plaintext server's does.
  if (tls === NOT_TLS) return 'http: server gave HTTP response to HTTPS client';
  if (tls !== undefined) return tls;
  const code = e.code ?? '';
  // Node's "socket hang up": the peer closed before a response, which Go's transport reports as EOF.
  if (code === 'ECONNRESET' && e.message === 'socket hang up') return 'EOF';
  if (code.startsWith('HPE_')) return 'net/http: HTTP/1.x transport connection broken: malformed HTTP response';
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  const hostname = stripBrackets(url.hostname);
  if (isDialError(e)) {
    return dialErrorText(err, joinHostPort(hostname, port), hostname);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    const s = req.socket;
    const ends = s?.localAddress !== undefined && s.remoteAddress !== undefined
      ? ` tcp ${joinHostPort(s.localAddress, s.localPort ?? 0)}->${joinHostPort(s.remoteAddress, s.remotePort ?? 0)}`
      : '';
    return code === 'EPIPE' ? `write${ends}: write: broken pipe` : `read${ends}: read: connection reset by peer`;
  }
  // OpenSSL messages end in a newline that would break the one-line check output.
  return (e.message ?? code).trim();
}
