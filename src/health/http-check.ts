/** The Consul HTTP check: one request (plus redirects) judged by status code, with Go-client-style output. */
import { request as httpRequest, validateHeaderName, validateHeaderValue } from 'node:http';
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { decodeUtf8Prefix } from './output.js';
import { dialErrorText, joinHostPort, primaryError } from './tcp-check.js';
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

const USER_AGENT = 'Consul Health Check';
const ACCEPT = 'text/plain, text/*, */*';
// Go's Client.CheckRedirect default refuses once `via` already holds this many requests.
const MAX_REDIRECTS = 10;
// RFC 7230 token: Go's http.NewRequest rejects any other method string.
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Go drops these on a redirect to a host that is not the original host or one of its subdomains.
const SENSITIVE_ON_REDIRECT = new Set(['authorization', 'www-authenticate', 'cookie', 'cookie2', 'proxy-authorization', 'proxy-authenticate']);
const UNKNOWN_AUTHORITY = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);

/** One request of the (possibly redirected) chain, in the shape Go's Client.do builds it. */
interface Hop {
  url: URL;
  /** How Go's url.Error would print this hop's URL. */
  urlText: string;
  method: string;
  headers: Header[];
  /** Host override (Go's req.Host); undefined means the URL's host. */
  host: string | undefined;
  body: string | undefined;
  gzip: boolean;
}

interface Header {
  name: string;
  values: string[];
}

/** Go's %q for the ASCII strings that show up in URLs and header names. */
function goQuote(s: string): string {
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
function urlErrorOp(method: string): string {
  return method.slice(0, 1) + method.slice(1).toLowerCase();
}

/** Go prints a request URL with any password masked (url.URL.Redacted). */
function redact(url: URL): string {
  if (url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.password = 'xxxxx';
  return copy.href;
}

const findHeader = (headers: Header[], name: string): Header | undefined =>
  headers.find((h) => h.name.toLowerCase() === name.toLowerCase() && h.values.length > 0);

/** Whether Go would carry credentials from `initial` to `dest` (same host or a subdomain of it). */
function sameDomainOrSub(dest: URL, initial: URL): boolean {
  const d = dest.hostname.toLowerCase();
  const i = initial.hostname.toLowerCase();
  if (d === i) return true;
  if (isIP(stripBrackets(d)) !== 0) return false;
  return d.endsWith(`.${i}`);
}

const stripBrackets = (host: string): string => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

/** Either a request-able URL or the error text Go's client would produce for it. */
function checkUrl(url: URL, op: string, urlText: string): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `${op} ${goQuote(urlText)}: unsupported protocol scheme ${goQuote(url.protocol.slice(0, -1))}`;
  }
  if (url.host === '') return `${op} ${goQuote(urlText)}: http: no Host in request URL`;
  return undefined;
}

function tlsErrorText(e: ReturnType<typeof primaryError> & { host?: string; cert?: { subjectaltname?: string } }): string | undefined {
  const code = e.code ?? '';
  if (UNKNOWN_AUTHORITY.has(code)) return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const host = e.host ?? '';
    const sans = (e.cert?.subjectaltname ?? '').split(', ').filter((s) => s !== '');
    if (isIP(host) !== 0 && !sans.some((s) => s.startsWith('IP Address:'))) {
      return `tls: failed to verify certificate: x509: cannot validate certificate for ${host} because it doesn't contain any IP SANs`;
    }
    const names = sans.map((s) => s.replace(/^(DNS|IP Address):/, ''));
    return `tls: failed to verify certificate: x509: certificate is valid for ${names.join(', ')}, not ${host}`;
  }
  // OpenSSL's reading of a plaintext reply; Go recognises the same situation by the "HTTP/" prefix.
  const message = e.message ?? '';
  if (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    (code === 'EPROTO' && /wrong version number|packet length too long/.test(message))
  ) {
    return 'http: server gave HTTP response to HTTPS client';
  }
  return undefined;
}

/** The part of Go's client error after `Get "url": ` for a failure before response headers arrived. */
function transportErrorText(err: unknown, hop: Hop, req: ClientRequest): string {
  const e = primaryError(err);
  const tls = tlsErrorText(e);
  if (tls !== undefined) return tls;
  const code = e.code ?? '';
  // Node's "socket hang up": the peer closed before a response, which Go's transport reports as EOF.
  if (code === 'ECONNRESET' && e.message === 'socket hang up') return 'EOF';
  if (code.startsWith('HPE_')) return 'net/http: HTTP/1.x transport connection broken: malformed HTTP response';
  const port = hop.url.port !== '' ? hop.url.port : hop.url.protocol === 'https:' ? '443' : '80';
  const hostname = stripBrackets(hop.url.hostname);
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || code.startsWith('EAI_') || code === 'ENOTFOUND') {
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

/** Go's redirectBehavior: which method the next hop uses and whether it re-sends the body. */
function redirectBehavior(status: number, method: string): { method: string; includeBody: boolean } | undefined {
  switch (status) {
    case 301:
    case 302:
    case 303:
      return { method: method === 'GET' || method === 'HEAD' ? method : 'GET', includeBody: false };
    case 307:
    case 308:
      return { method, includeBody: true };
    default:
      return undefined;
  }
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
  const critical = (output: string): Promise<CheckResult> => Promise.resolve({ status: 'critical', output });
  // Consul's `if method == "" { method = "GET" }`.
  const method = def.method === undefined || def.method === '' ? 'GET' : def.method;
  const op = urlErrorOp(method);
  if (!HTTP_TOKEN.test(method)) return critical(`net/http: invalid method ${goQuote(method)}`);
  let url: URL;
  try {
    url = new URL(def.url);
  } catch {
    // Go parses a scheme-less target as a path and only the transport rejects it.
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(def.url)) return critical(`${op} ${goQuote(def.url)}: unsupported protocol scheme ""`);
    return critical(`parse ${goQuote(def.url)}: invalid URL`);
  }
  const firstText = url.password === '' ? def.url : redact(url);
  const badUrl = checkUrl(url, op, firstText);
  if (badUrl !== undefined) return critical(badUrl);

  const headers: Header[] = [];
  for (const [name, values] of Object.entries(def.header ?? {})) {
    try {
      validateHeaderName(name);
    } catch {
      return critical(`${op} ${goQuote(firstText)}: net/http: invalid header field name ${goQuote(name)}`);
    }
    for (const v of values) {
      try {
        validateHeaderValue(name, v);
      } catch {
        return critical(`${op} ${goQuote(firstText)}: net/http: invalid header field value for ${goQuote(name)}`);
      }
    }
    headers.push({ name, values: [...values] });
  }
  // Go sends Host from req.Host, never from the header map.
  const hostHeader = findHeader(headers, 'host');
  const userHeaders = headers.filter((h) => h.name.toLowerCase() !== 'host');
  if (findHeader(userHeaders, 'user-agent') === undefined) userHeaders.push({ name: 'User-Agent', values: [USER_AGENT] });
  if (findHeader(userHeaders, 'accept') === undefined) userHeaders.push({ name: 'Accept', values: [ACCEPT] });
  const body = def.body === undefined || def.body === '' ? undefined : def.body;
  const maxOutput = def.outputMaxSize !== undefined && def.outputMaxSize > 0 ? Math.floor(def.outputMaxSize) : DEFAULT_OUTPUT_MAX_SIZE;

  const firstHop: Hop = {
    url,
    urlText: firstText,
    method,
    headers: userHeaders,
    host: hostHeader?.values[0],
    body,
    // Go's transport asks for gzip (and decodes it) unless the caller chose an encoding or a range.
    gzip: method !== 'HEAD' && findHeader(userHeaders, 'accept-encoding') === undefined && findHeader(userHeaders, 'range') === undefined,
  };

  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    let hops = 0;
    let stripSensitive = false;
    let currentReq: ClientRequest | undefined;
    const streams: Readable[] = [];
    // Set once response headers are in: an interrupted body still yields a status-code verdict, as in Consul.
    let finishBody: (() => void) | undefined;
    let currentHop = firstHop;

    const finish = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      for (const s of streams) s.destroy();
      currentReq?.destroy();
      resolve(result);
    };
    const fail = (hop: Hop, text: string): void => finish({ status: 'critical', output: `${op} ${goQuote(hop.urlText)}: ${text}` });
    const interrupt = (why: string): void => {
      if (finishBody !== undefined) finishBody();
      else fail(currentHop, why);
    };
    function onAbort(): void {
      interrupt('context canceled');
    }
    const timer = setTimeout(
      () => interrupt('context deadline exceeded (Client.Timeout exceeded while awaiting headers)'),
      effectiveTimeoutMs(def.timeoutMs),
    );
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });

    const readBody = (hop: Hop, res: IncomingMessage): void => {
      const code = res.statusCode ?? 0;
      // Go's resp.Status is the status line after the protocol: "200 OK", or just "200" with no reason.
      const statusText = res.statusMessage ? `${code} ${res.statusMessage}` : String(code);
      const chunks: Buffer[] = [];
      let size = 0;
      finishBody = () => {
        const text = decodeUtf8Prefix(Buffer.concat(chunks), maxOutput);
        finish({ status: statusOf(code), output: `HTTP ${method} ${def.url}: ${statusText} Output: ${text}` });
      };
      const done = finishBody;
      let stream: Readable = res;
      if (hop.gzip && (res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
        const gunzip = createGunzip();
        streams.push(gunzip);
        res.pipe(gunzip);
        stream = gunzip;
      }
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        // Everything past the cap would be discarded anyway; stopping here frees the server and the socket.
        if (size >= maxOutput) done();
      });
      stream.on('end', done);
      // Go's body read errors are only logged; the verdict still comes from the status code.
      stream.on('error', done);
      res.on('error', done);
      res.on('close', () => {
        if (!res.complete) done();
      });
    };

    const nextHop = (hop: Hop, res: IncomingMessage): Hop | undefined => {
      const behavior = redirectBehavior(res.statusCode ?? 0, hop.method);
      if (behavior === undefined) return undefined;
      const loc = res.headers.location;
      // Go hands back a 3xx without Location as the final response.
      if (loc === undefined || loc === '') return undefined;
      let url: URL;
      try {
        url = new URL(loc, hop.url);
      } catch {
        fail(hop, `failed to parse Location header ${goQuote(loc)}: invalid URL`);
        return undefined;
      }
      // Go keeps a custom Host only across relative redirects (golang/go#22233).
      let host: string | undefined;
      if (firstHop.host !== undefined && firstHop.host !== firstHop.url.host && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(loc)) {
        host = firstHop.host;
      }
      if (!sameDomainOrSub(url, firstHop.url)) stripSensitive = true;
      const headers = firstHop.headers.filter((h) => !(stripSensitive && SENSITIVE_ON_REDIRECT.has(h.name.toLowerCase())));
      // Go's refererForURL: nothing when stepping down from https to http, else the caller's own
      // Referer, else the previous URL without its credentials.
      const downgrade = hop.url.protocol === 'https:' && url.protocol === 'http:';
      const explicitReferer = findHeader(headers, 'referer') !== undefined;
      if (downgrade) {
        const kept = headers.filter((h) => h.name.toLowerCase() !== 'referer');
        headers.length = 0;
        headers.push(...kept);
      } else if (!explicitReferer) {
        const ref = new URL(hop.url.href);
        ref.username = '';
        ref.password = '';
        headers.push({ name: 'Referer', values: [ref.href] });
      }
      if (def.disableRedirects) return undefined;
      if (hops >= MAX_REDIRECTS) {
        fail({ ...hop, urlText: loc }, `stopped after ${MAX_REDIRECTS} redirects`);
        return undefined;
      }
      return {
        url,
        urlText: redact(url),
        method: behavior.method,
        headers,
        host,
        body: behavior.includeBody ? firstHop.body : undefined,
        gzip: behavior.method !== 'HEAD' && findHeader(headers, 'accept-encoding') === undefined && findHeader(headers, 'range') === undefined,
      };
    };

    const send = (hop: Hop): void => {
      currentHop = hop;
      hops++;
      const bad = checkUrl(hop.url, op, hop.urlText);
      if (bad !== undefined) {
        finish({ status: 'critical', output: bad });
        return;
      }
      const outgoing: OutgoingHttpHeaders = {};
      for (const h of hop.headers) {
        // An empty value list is an absent header in Go's http.Header.
        if (h.values.length > 0) outgoing[h.name] = h.values.length === 1 ? h.values[0] : h.values;
      }
      if (hop.host !== undefined) outgoing.Host = hop.host;
      if (hop.gzip) outgoing['Accept-Encoding'] = 'gzip';
      // Node omits Content-Length for a GET body and would send it unframed; Go always frames it.
      if (hop.body !== undefined) outgoing['Content-Length'] = String(Buffer.byteLength(hop.body));
      const https = hop.url.protocol === 'https:';
      const hostname = stripBrackets(hop.url.hostname);
      const options: RequestOptions = {
        method: hop.method,
        headers: outgoing,
        // A fresh agent per request: no pooled socket survives the check, like Go's DisableKeepAlives.
        agent: false,
        ...(https
          ? {
              rejectUnauthorized: def.tlsSkipVerify !== true,
              // Go's SNI comes from the URL (never the Host header) and is omitted for IP literals.
              servername: def.tlsServerName !== undefined && def.tlsServerName !== ''
                ? def.tlsServerName
                : isIP(hostname) !== 0 ? '' : hostname,
            }
          : {}),
      };
      let req: ClientRequest;
      try {
        req = (https ? httpsRequest : httpRequest)(hop.url, options);
      } catch (err) {
        fail(hop, primaryError(err).message ?? String(err));
        return;
      }
      currentReq = req;
      req.on('error', (err) => {
        if (currentReq !== req || finishBody !== undefined) return;
        fail(hop, transportErrorText(err, hop, req));
      });
      req.on('response', (res) => {
        if (settled || currentReq !== req) {
          res.destroy();
          return;
        }
        streams.push(res);
        const next = nextHop(hop, res);
        if (settled) return;
        if (next === undefined) {
          readBody(hop, res);
          return;
        }
        // Late socket errors from the abandoned hop must not surface as unhandled 'error' events.
        res.on('error', () => undefined);
        res.destroy();
        req.destroy();
        send(next);
      });
      if (hop.body !== undefined) req.end(hop.body);
      else req.end();
    };

    send(firstHop);
  });
}
