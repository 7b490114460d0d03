/**
 * What the registry API does with a request, whichever socket code read it: route lookup, ACL,
 * Consul's error conventions, and turning a Reply into a status, a header list and body bytes.
 * The Node http server (server.ts) and the raw-socket front (raw-front.ts) both answer through it,
 * so a request gets the same answer on either.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { aclAllows } from '../../../core/acl.js';
import type { HostCheck } from '../../../core/host-guard.js';
import { HttpError, SwitchyardError, errorMessage } from '../../../core/errors.js';
import { encodeJson } from './encode.js';
import type { Reply, Route } from './context.js';

const gzipAsync = promisify(gzip);

interface RouteTable {
  exact: Map<string, Route>;
  /** Longest prefix first. */
  prefixes: Route[];
}

function buildTable(routes: readonly Route[]): RouteTable {
  const exact = new Map<string, Route>();
  const prefixes: Route[] = [];
  for (const r of routes) {
    if (r.prefix) prefixes.push(r);
    else exact.set(r.path, r);
  }
  prefixes.sort((a, b) => b.path.length - a.path.length);
  return { exact, prefixes };
}

function match(table: RouteTable, path: string): { route: Route; suffix: string } | undefined {
  const r = table.exact.get(path);
  if (r) return { route: r, suffix: '' };
  // Longest prefix first; "/v1/kv" without the trailing slash is the empty key, as in Consul (and
  // wins over the shorter catch-all "/v1/").
  for (const p of table.prefixes) {
    if (path.startsWith(p.path)) return { route: p, suffix: path.slice(p.path.length) };
    if (path === p.path.slice(0, -1)) return { route: p, suffix: '' };
  }
  return undefined;
}

/** Where a request goes: outside the API (UI, /metrics: the Node server's fallback), an answer known now, or a route. */
export type Prepared =
  | { readonly kind: 'outside'; readonly path: string }
  /** Headers include Content-Length (0): an empty answer. */
  | { readonly kind: 'answer'; readonly status: number; readonly headers: readonly string[]; readonly routeName: string }
  | { readonly kind: 'route'; readonly route: Route; readonly path: string; readonly suffix: string; readonly query: URLSearchParams }
  | { readonly kind: 'refused'; readonly error: HttpError; readonly routeName: string };

/** A reply as bytes on the wire: status, a flat [name, value, …] header list and the body. */
export interface Wire {
  readonly status: number;
  readonly headers: string[];
  readonly body: Buffer;
}

/** Our extension beside X-Consul-Index: when the change at that index was applied (Unix ms); the balancer measures change latency from it. */
export const INDEX_TIME_HEADER = 'X-Switchyard-Index-Time';

const EMPTY_BODY = Buffer.alloc(0);

export class ApiDispatch {
  readonly #table: RouteTable;
  readonly #aclToken: string | undefined;
  readonly #hostCheck: HostCheck | undefined;
  readonly #log: Logger;

  constructor(routes: readonly Route[], log: Logger, aclToken?: string, hostCheck?: HostCheck) {
    this.#table = buildTable(routes);
    this.#aclToken = aclToken;
    this.#hostCheck = hostCheck;
    this.#log = log;
  }

  /**
   * Looks a request up: refused for a Host a loopback listener does not answer (403, before anything
   * else: the UI and /metrics too), a bad path (400), a wrong method (405) or a missing token (403).
   */
  prepare(method: string, rawUrl: string, headers: IncomingHttpHeaders): Prepared {
    const badHost = this.#hostCheck?.(headers.host);
    if (badHost !== undefined) return refused(new HttpError(403, badHost), 'unmatched');
    const qi = rawUrl.indexOf('?');
    const rawPath = qi >= 0 ? rawUrl.slice(0, qi) : rawUrl;
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return refused(new HttpError(400, `Invalid URL path: malformed percent-encoding in ${JSON.stringify(rawPath)}`), 'unmatched');
    }
    if (path.includes('\n') || path.includes('\0')) return refused(new HttpError(400, 'Invalid URL path: contains a newline or NUL'), 'unmatched');
    if (!path.startsWith('/v1/') && path !== '/v1/kv') return { kind: 'outside', path };
    const m = match(this.#table, path);
    if (!m) return { kind: 'answer', status: 404, headers: ['Content-Length', '0'], routeName: 'unmatched' };
    const allow = `OPTIONS,${m.route.methods.join(',')}`;
    if (method === 'OPTIONS') return { kind: 'answer', status: 200, headers: ['Allow', allow, 'Content-Length', '0'], routeName: m.route.path };
    if (!m.route.methods.includes(method)) return refused(new HttpError(405, `method ${method} not allowed`, { headers: { Allow: allow } }), m.route.path);
    const query = new URLSearchParams(qi >= 0 ? rawUrl.slice(qi + 1) : '');
    if (!m.route.public && !aclAllows(this.#aclToken, headers, query)) return refused(new HttpError(403, 'Permission denied'), m.route.path);
    return { kind: 'route', route: m.route, path, suffix: m.suffix, query };
  }

  /**
   * The answer to a failed request: Consul's plain-text error, 503 + Retry-After when the store is
   * unavailable or a read-decide-write kept losing, 500 (logged) for anything unexpected.
   */
  failure(err: unknown, method: string, url: string): HttpError {
    if (err instanceof HttpError) return err;
    if (err instanceof SwitchyardError && (err.code === 'SY_ERR_STORE_UNAVAILABLE' || err.code === 'SY_ERR_CONFLICT')) {
      return new HttpError(503, err.message, { code: err.code, headers: { 'Retry-After': '1' } });
    }
    this.#log.error({ err, url, method }, 'registry API handler failed');
    return new HttpError(500, `Internal error: ${errorMessage(err)}`, { code: 'SY_ERR_INTERNAL' });
  }

  /**
   * A reply's bytes and headers. Synchronous unless gzip is asked for: a fan-out wakes a thousand
   * parked queries at once and each extra promise hop or header object shows up in the tail.
   */
  wire(reply: Reply, pretty: boolean, acceptEncoding: string | undefined): Wire | Promise<Wire> {
    let buf: Buffer;
    let type: string | undefined;
    if (reply.raw !== undefined) buf = reply.raw;
    else if (reply.text !== undefined) {
      buf = Buffer.from(reply.text);
      type = 'text/plain; charset=utf-8';
    } else if (reply.json !== undefined) {
      buf = Buffer.from(encodeJson(reply.json, pretty));
      type = 'application/json';
    } else buf = EMPTY_BODY;
    // Consul gzips when asked (gziphandler's 1400-byte minimum); a shared answer is gzipped once for all.
    if (reply.encoded !== true && buf.length >= 1400 && acceptEncoding !== undefined && /\bgzip\b/.test(acceptEncoding)) {
      const z = reply.shared ? (reply.shared.gzipped ??= gzipAsync(buf)) : gzipAsync(buf);
      return z.then((zbuf) => wireOf(reply, zbuf, type, true));
    }
    return wireOf(reply, buf, type, false);
  }
}

const refused = (error: HttpError, routeName: string): Prepared => ({ kind: 'refused', error, routeName });

function wireOf(reply: Reply, body: Buffer, type: string | undefined, gzipped: boolean): Wire {
  // A flat [name, value, ...] list skips building and merging header objects.
  const h: string[] = [];
  if (reply.index !== undefined) h.push('X-Consul-Index', String(Math.max(1, reply.index)), 'X-Consul-KnownLeader', 'true', 'X-Consul-LastContact', '0');
  if (reply.indexTime !== undefined) h.push(INDEX_TIME_HEADER, String(reply.indexTime));
  let hasType = false;
  if (reply.headers) {
    for (const k in reply.headers) {
      h.push(k, reply.headers[k] as string);
      if (k.toLowerCase() === 'content-type') hasType = true;
    }
  }
  if (type !== undefined && !hasType) h.push('Content-Type', type);
  if (gzipped) h.push('Content-Encoding', 'gzip', 'Vary', 'Accept-Encoding');
  h.push('Content-Length', String(body.length));
  return { status: reply.status ?? 200, headers: h, body };
}

/** The plain-text answer to a failure, as a Wire. */
export function failureWire(he: HttpError): Wire {
  const body = Buffer.from(he.message);
  const h: string[] = ['Content-Type', 'text/plain; charset=utf-8'];
  for (const k in he.headers) h.push(k, he.headers[k] as string);
  h.push('Content-Length', String(body.length));
  return { status: he.status, headers: h, body };
}
