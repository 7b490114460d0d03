/** The registry's HTTP front: routing, 405s with Allow, ACL, size-limited bodies, Consul's JSON and error conventions. */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { aclAllows } from '../../../core/acl.js';
import { HttpError, SwitchyardError, errorMessage } from '../../../core/errors.js';
import { encodeJson } from './encode.js';
import type { Ctx, Reply, Route } from './context.js';
import type { Cancel } from '../catalog-reader.js';

const gzipAsync = promisify(gzip);

export interface ApiServerOptions {
  routes: readonly Route[];
  logger: Logger;
  /** When set, every request needs this token (X-Consul-Token, Authorization: Bearer, or ?token=). */
  aclToken?: string;
  /** Largest JSON request body accepted (KV has its own limit). */
  maxBodyBytes?: number;
  /** Handlers for paths outside /v1/ (the UI, /metrics); return undefined to fall through to 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => boolean;
  onRequest?: (route: string, method: string, status: number, seconds: number) => void;
  /** Seconds from the change that woke a blocking query to its response being handed to the kernel. */
  onWake?: (seconds: number) => void;
}

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

const defaultTooLarge = (size: number, max: number): string => `Request body(${size} bytes) too large, max size: ${max} bytes`;

function readBody(req: IncomingMessage, limit: number, tooLarge = defaultTooLarge): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new HttpError(413, tooLarge(declared, limit)));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        cleanup();
        reject(new HttpError(413, tooLarge(size, limit)));
        return;
      }
      chunks.push(c);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export function createApiServer(opts: ApiServerOptions): Server {
  const table = buildTable(opts.routes);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const log = opts.logger;

  const server = createServer({ requestTimeout: 0, headersTimeout: 30_000, keepAliveTimeout: 65_000 }, (req, res) => {
    void handle(req, res);
  });
  // Slow-header clients are cut by headersTimeout; an idle socket may park a blocking query up to 10m+.
  server.timeout = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const method = req.method ?? 'GET';
    let routeName = 'unmatched';
    let bodyConsumed = false;
    const finish = (status: number): void => {
      opts.onRequest?.(routeName, method, status, Number(process.hrtime.bigint() - started) / 1e9);
    };
    try {
      const rawUrl = req.url ?? '/';
      const qi = rawUrl.indexOf('?');
      const rawPath = qi >= 0 ? rawUrl.slice(0, qi) : rawUrl;
      const query = new URLSearchParams(qi >= 0 ? rawUrl.slice(qi + 1) : '');
      let path: string;
      try {
        path = decodeURIComponent(rawPath);
      } catch {
        throw new HttpError(400, `Invalid URL path: malformed percent-encoding in ${JSON.stringify(rawPath)}`);
      }
      if (path.includes('\n') || path.includes('\0')) throw new HttpError(400, 'Invalid URL path: contains a newline or NUL');

      if (!path.startsWith('/v1/') && path !== '/v1/kv') {
        if (opts.fallback?.(req, res)) return;
        if (path === '/') {
          void send(res, method, { text: 'Consul Agent' }, false, req);
          finish(200);
          return;
        }
        res.writeHead(404).end();
        finish(404);
        return;
      }
      const m = match(table, path);
      if (!m) {
        res.writeHead(404).end();
        finish(404);
        return;
      }
      routeName = m.route.path;
      const allow = `OPTIONS,${m.route.methods.join(',')}`;
      if (method === 'OPTIONS') {
        res.writeHead(200, { Allow: allow }).end();
        finish(200);
        return;
      }
      if (!m.route.methods.includes(method)) throw new HttpError(405, `method ${method} not allowed`, { headers: { Allow: allow } });
      if (!m.route.public && !aclAllows(opts.aclToken, req.headers, query)) throw new HttpError(403, 'Permission denied');
      const ctx: Ctx = {
        req, method, path, suffix: m.suffix, query, cancel: closeCancel(res),
        body: (limit = maxBody, tooLarge) => {
          bodyConsumed = true;
          return readBody(req, limit, tooLarge);
        },
      };
      const reply = await m.route.handler(ctx);
      if (res.destroyed) return;
      const sent = send(res, method, reply, query.has('pretty'), req);
      if (sent) await sent;
      if (reply.wokeAt !== undefined) opts.onWake?.((performance.now() - reply.wokeAt) / 1000);
      finish(reply.status ?? 200);
    } catch (err) {
      const he = err instanceof HttpError ? err
        : err instanceof SwitchyardError && (err.code === 'SY_ERR_STORE_UNAVAILABLE' || err.code === 'SY_ERR_CONFLICT') ? new HttpError(503, err.message, { code: err.code, headers: { 'Retry-After': '1' } })
          : undefined;
      const status = he?.status ?? 500;
      if (!he) log.error({ err, url: req.url, method }, 'registry API handler failed');
      if (!res.headersSent && !res.destroyed) {
        const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', ...(he?.headers ?? {}) };
        // An oversized or unread body cannot be drained cheaply: close the connection after answering.
        if (status === 413 || (!bodyConsumed && req.readable && !req.complete && method !== 'GET')) headers.Connection = 'close';
        res.writeHead(status, headers);
        res.end(he ? he.message : `Internal error: ${errorMessage(err)}`);
        if (headers.Connection === 'close') res.once('finish', () => req.socket.destroy());
      }
      finish(status);
    }
  }
  return server;
}

/** A Cancel that fires when the response closes before it finished (the client went away). */
function closeCancel(res: ServerResponse): Cancel {
  return {
    get cancelled() {
      return res.destroyed && !res.writableFinished;
    },
    onCancel(fn) {
      const h = (): void => {
        if (!res.writableFinished) fn();
      };
      res.once('close', h);
      return () => res.off('close', h);
    },
  };
}

/**
 * Writes a reply. Synchronous unless gzip is asked for: a fan-out wakes a thousand parked queries
 * at once and each extra promise hop or header object shows up in the tail.
 */
function send(res: ServerResponse, method: string, reply: Reply, pretty: boolean, req: IncomingMessage): void | Promise<void> {
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
  if (buf.length >= 1400 && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    const z = reply.shared ? (reply.shared.gzipped ??= gzipAsync(buf)) : gzipAsync(buf);
    return z.then((zbuf) => write(res, method, reply, zbuf, type, true));
  }
  write(res, method, reply, buf, type, false);
}

const EMPTY_BODY = Buffer.alloc(0);

/** Our extension beside X-Consul-Index: when the change at that index was applied (Unix ms); the balancer measures change latency from it. */
export const INDEX_TIME_HEADER = 'X-Switchyard-Index-Time';

function write(res: ServerResponse, method: string, reply: Reply, buf: Buffer, type: string | undefined, gzipped: boolean): void {
  if (res.destroyed) return;
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
  h.push('Content-Length', String(buf.length));
  res.writeHead(reply.status ?? 200, h);
  res.end(method === 'HEAD' ? undefined : buf);
}
