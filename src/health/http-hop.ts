/** The HTTP check's request chain as Go's Client builds it: the first request from the check definition, each next one from a redirect. */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { checkUrl, goQuote, redact, stripBrackets } from './http-go-errors.js';

export interface Header {
  name: string;
  values: string[];
}

/** One request of the (possibly redirected) chain. */
export interface Hop {
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

/** What the check definition says about the request. */
export interface RequestSpec {
  url: string;
  method: string;
  header?: Record<string, string[]> | undefined;
  body?: string | undefined;
}

const USER_AGENT = 'Consul Health Check';
const ACCEPT = 'text/plain, text/*, */*';
// Go's Client.CheckRedirect default refuses once `via` already holds this many requests.
const MAX_REDIRECTS = 10;
// RFC 7230 token: Go's http.NewRequest rejects any other method string.
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Go drops these on a redirect to a host that is not the original host or one of its subdomains.
const SENSITIVE_ON_REDIRECT = new Set(['authorization', 'www-authenticate', 'cookie', 'cookie2', 'proxy-authorization', 'proxy-authenticate']);

const findHeader = (headers: Header[], name: string): Header | undefined =>
  headers.find((h) => h.name.toLowerCase() === name.toLowerCase() && h.values.length > 0);

/** Go's transport asks for gzip (and decodes it) unless the caller chose an encoding or a range. */
const wantsGzip = (method: string, headers: Header[]): boolean =>
  method !== 'HEAD' && findHeader(headers, 'accept-encoding') === undefined && findHeader(headers, 'range') === undefined;

/** Whether Go would carry credentials from `initial` to `dest` (same host or a subdomain of it). */
function sameDomainOrSub(dest: URL, initial: URL): boolean {
  const d = dest.hostname.toLowerCase();
  const i = initial.hostname.toLowerCase();
  if (d === i) return true;
  if (isIP(stripBrackets(d)) !== 0) return false;
  return d.endsWith(`.${i}`);
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

/**
 * The first request, as http.NewRequest and Consul's check build it (Consul's User-Agent and Accept unless the
 * check sets them; Host from a Host header), or the critical output Go gives for a definition it cannot send.
 * `op` is Go's urlErrorOp of the method ("Get").
 */
export function firstHop(spec: RequestSpec, op: string): { hop: Hop } | { error: string } {
  if (!HTTP_TOKEN.test(spec.method)) return { error: `net/http: invalid method ${goQuote(spec.method)}` };
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    // Go parses a scheme-less target as a path and only the transport rejects it.
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(spec.url)) return { error: `${op} ${goQuote(spec.url)}: unsupported protocol scheme ""` };
    return { error: `parse ${goQuote(spec.url)}: invalid URL` };
  }
  const urlText = url.password === '' ? spec.url : redact(url);
  const badUrl = checkUrl(url, op, urlText);
  if (badUrl !== undefined) return { error: badUrl };

  const headers: Header[] = [];
  for (const [name, values] of Object.entries(spec.header ?? {})) {
    try {
      validateHeaderName(name);
    } catch {
      return { error: `${op} ${goQuote(urlText)}: net/http: invalid header field name ${goQuote(name)}` };
    }
    for (const v of values) {
      try {
        validateHeaderValue(name, v);
      } catch {
        return { error: `${op} ${goQuote(urlText)}: net/http: invalid header field value for ${goQuote(name)}` };
      }
    }
    headers.push({ name, values: [...values] });
  }
  // Go sends Host from req.Host, never from the header map.
  const hostHeader = findHeader(headers, 'host');
  const userHeaders = headers.filter((h) => h.name.toLowerCase() !== 'host');
  if (findHeader(userHeaders, 'user-agent') === undefined) userHeaders.push({ name: 'User-Agent', values: [USER_AGENT] });
  if (findHeader(userHeaders, 'accept') === undefined) userHeaders.push({ name: 'Accept', values: [ACCEPT] });
  return {
    hop: {
      url,
      urlText,
      method: spec.method,
      headers: userHeaders,
      host: hostHeader?.values[0],
      body: spec.body === undefined || spec.body === '' ? undefined : spec.body,
      gzip: wantsGzip(spec.method, userHeaders),
    },
  };
}

/** After a response: stop here (it is the final one), go on with the next request, or fail with Go's error text for `urlText`. */
export type RedirectStep = { final: true } | { next: Hop } | { error: string; urlText: string };

/** Go's Client.do redirect loop: counts requests, strips credentials once the chain leaves the first host's domain. */
export class RedirectChain {
  readonly first: Hop;
  readonly #disabled: boolean;
  #sent = 0;
  #stripSensitive = false;

  constructor(first: Hop, disabled: boolean) {
    this.first = first;
    this.#disabled = disabled;
  }

  /** Counts a request about to be sent. */
  sending(): void {
    this.#sent++;
  }

  /** What follows a response with this status and Location to `hop`. */
  follow(hop: Hop, status: number, location: string | undefined): RedirectStep {
    const behavior = redirectBehavior(status, hop.method);
    // Go hands back a 3xx without Location as the final response.
    if (behavior === undefined || location === undefined || location === '') return { final: true };
    let url: URL;
    try {
      url = new URL(location, hop.url);
    } catch {
      return { error: `failed to parse Location header ${goQuote(location)}: invalid URL`, urlText: hop.urlText };
    }
    const first = this.first;
    // Go keeps a custom Host only across relative redirects (golang/go#22233).
    let host: string | undefined;
    if (first.host !== undefined && first.host !== first.url.host && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(location)) host = first.host;
    if (!sameDomainOrSub(url, first.url)) this.#stripSensitive = true;
    let headers = first.headers.filter((h) => !(this.#stripSensitive && SENSITIVE_ON_REDIRECT.has(h.name.toLowerCase())));
    // Go's refererForURL: nothing when stepping down from https to http, else the caller's own
    // Referer, else the previous URL without its credentials.
    const downgrade = hop.url.protocol === 'https:' && url.protocol === 'http:';
    if (downgrade) headers = headers.filter((h) => h.name.toLowerCase() !== 'referer');
    else if (findHeader(headers, 'referer') === undefined) {
      const ref = new URL(hop.url.href);
      ref.username = '';
      ref.password = '';
      headers.push({ name: 'Referer', values: [ref.href] });
    }
    if (this.#disabled) return { final: true };
    if (this.#sent >= MAX_REDIRECTS) return { error: `stopped after ${MAX_REDIRECTS} redirects`, urlText: location };
    return {
      next: {
        url,
        urlText: redact(url),
        method: behavior.method,
        headers,
        host,
        body: behavior.includeBody ? first.body : undefined,
        gzip: wantsGzip(behavior.method, headers),
      },
    };
  }
}

/** Node's request options for a hop: Go's headers and framing, no pooled socket, Go's TLS verification and SNI. */
export function requestOptions(hop: Hop, tls: { skipVerify: boolean; serverName: string | undefined }): RequestOptions {
  const outgoing: OutgoingHttpHeaders = {};
  for (const h of hop.headers) {
    // An empty value list is an absent header in Go's http.Header.
    if (h.values.length > 0) outgoing[h.name] = h.values.length === 1 ? h.values[0] : h.values;
  }
  if (hop.host !== undefined) outgoing.Host = hop.host;
  if (hop.gzip) outgoing['Accept-Encoding'] = 'gzip';
  // Node omits Content-Length for a GET body and would send it unframed; Go always frames it.
  if (hop.body !== undefined) outgoing['Content-Length'] = String(Buffer.byteLength(hop.body));
  const hostname = stripBrackets(hop.url.hostname);
  return {
    method: hop.method,
    headers: outgoing,
    // A fresh agent per request: no pooled socket survives the check, like Go's DisableKeepAlives.
    agent: false,
    ...(hop.url.protocol === 'https:'
      ? {
          rejectUnauthorized: !tls.skipVerify,
          // Go's SNI comes from the URL (never the Host header) and is omitted for IP literals.
          servername: tls.serverName !== undefined && tls.serverName !== '' ? tls.serverName : isIP(hostname) !== 0 ? '' : hostname,
        }
      : {}),
  };
}
