/**
 * The registry's HTTP front. API requests (every read, blocking queries included, and writes with a
 * body of up to RAW_BODY_MAX) are read and answered on the raw socket (raw-front.ts); the rest
 * (larger or chunked bodies, HTTP/1.0, Upgrade, the UI and /metrics) go to Node's http server below.
 * Both answer through ApiDispatch.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { HttpError } from '../../../core/errors.js';
import type { HostCheck } from '../../../core/host-guard.js';
import { ApiDispatch, failureWire } from './dispatch.js';
import type { Wire } from './dispatch.js';
import type { Ctx, Reply, Route } from './context.js';
import { tooLargeMessage } from './context.js';
import type { Cancel } from '../catalog-reader.js';
import { LOOPBACK } from '../../../core/ip-list.js';
import { ClientConnLimit } from '../../../core/conn-limit.js';
import { RawFront } from './raw-front.js';
import type { FanOutGate } from './raw-front.js';

/** Consul's answer to a connection over http_max_conns_per_client, byte for byte (hashicorp/go-connlimit). */
const CONSUL_TOO_MANY_TEXT = 'Your IP is issuing too many concurrent connections, please rate limit your calls\n';
const CONSUL_TOO_MANY = Buffer.from(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: ${CONSUL_TOO_MANY_TEXT.length}\r\nConnection: close\r\n\r\n${CONSUL_TOO_MANY_TEXT}`, 'latin1');

export { INDEX_TIME_HEADER } from './dispatch.js';

export interface ApiServerOptions {
  routes: readonly Route[];
  logger: Logger;
  /** When set, every request needs this token (X-Consul-Token, Authorization: Bearer, or ?token=). */
  aclToken?: string;
  /** Refuses requests by their Host (a loopback listener's DNS-rebinding defence, core/host-guard.ts). */
  hostCheck?: HostCheck;
  /** Largest JSON request body accepted (KV has its own limit). */
  maxBodyBytes?: number;
  /** Handlers for paths outside /v1/ (the UI, /metrics); return undefined to fall through to 404. */
  fallback?: (req: IncomingMessage, res: ServerResponse) => boolean;
  onRequest?: (route: string, method: string, status: number, seconds: number) => void;
  /** Seconds from the change that woke a blocking query to its response being handed to the kernel. */
  onWake?: (seconds: number) => void;
  /** The view's fan-out: while it answers woken queries, their next requests wait (raw-front.ts). */
  fanOut?: FanOutGate;
  /** A request head must arrive within this (Slowloris); default 30 s. */
  headersTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this; default 65 s. */
  keepAliveTimeoutMs?: number;
  /** Connections one client address may hold open; 0 or absent: no limit (conn-limit.ts). */
  maxConnsPerClient?: number;
  /** Addresses and CIDR blocks the limit does not apply to (default: loopback). */
  maxConnsExempt?: readonly string[];
}

export interface ApiServer {
  /** The server to listen with (Node's http server, the raw front in its connection handler). */
  readonly listener: Server;
  /** Stops accepting and ends every connection, parked blocking queries included. */
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, limit: number, tooLarge = tooLargeMessage): Promise<Buffer> {
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

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const dispatch = new ApiDispatch(opts.routes, opts.logger, opts.aclToken, opts.hostCheck);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const headersTimeout = opts.headersTimeoutMs ?? 30_000;
  const keepAliveTimeout = opts.keepAliveTimeoutMs ?? 65_000;

  const server: Server = createServer({ requestTimeout: 0, headersTimeout, keepAliveTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(100, headersTimeout / 2)) }, (req, res) => {
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
      const p = dispatch.prepare(method, rawUrl, req.headers);
      if (p.kind === 'outside') {
        if (opts.fallback?.(req, res)) return;
        if (p.path === '/') {
          const w = dispatch.wire({ text: 'Consul Agent' }, false, undefined) as Wire;
          write(res, method, w);
          finish(200);
          return;
        }
        res.writeHead(404).end();
        finish(404);
        return;
      }
      if (p.kind === 'refused') {
        routeName = p.routeName;
        throw p.error;
      }
      if (p.kind === 'answer') {
        routeName = p.routeName;
        res.writeHead(p.status, p.headers as string[]).end();
        finish(p.status);
        return;
      }
      routeName = p.route.path;
      const ctx: Ctx = {
        headers: req.headers, method, path: p.path, suffix: p.suffix, query: p.query, cancel: closeCancel(res),
        body: (limit = maxBody, tooLarge) => {
          bodyConsumed = true;
          return readBody(req, limit, tooLarge);
        },
      };
      const reply: Reply = await p.route.handler(ctx);
      if (res.destroyed) return;
      const w = dispatch.wire(reply, p.query.has('pretty'), req.headers['accept-encoding']);
      write(res, method, w instanceof Promise ? await w : w);
      if (reply.wokeAt !== undefined) opts.onWake?.((performance.now() - reply.wokeAt) / 1000);
      finish(reply.status ?? 200);
    } catch (err) {
      const he = dispatch.failure(err, method, req.url ?? '');
      if (!res.headersSent && !res.destroyed) {
        const w = failureWire(he);
        // An oversized or unread body cannot be drained cheaply: close the connection after answering.
        const close = he.status === 413 || (!bodyConsumed && hasBody(req) && req.readable && !req.complete);
        // Node then writes its own `Connection: close` (after Date, as the raw front does) and ends the socket.
        if (close) res.shouldKeepAlive = false;
        write(res, method, w);
        if (close) res.once('finish', () => req.socket.destroy());
      }
      finish(he.status);
    }
  }

  const limit = opts.maxConnsPerClient !== undefined && opts.maxConnsPerClient > 0
    ? new ClientConnLimit({ max: opts.maxConnsPerClient, exempt: opts.maxConnsExempt ?? LOOPBACK, logger: opts.logger, setting: 'http-max-conns-per-client' })
    : undefined;
  const front = new RawFront({
    dispatch, node: server, headersTimeoutMs: headersTimeout, keepAliveTimeoutMs: keepAliveTimeout, maxBodyBytes: maxBody, logger: opts.logger,
    ...(opts.onRequest ? { onRequest: opts.onRequest } : {}),
    ...(opts.onWake ? { onWake: opts.onWake } : {}),
    ...(opts.fanOut ? { fanOut: opts.fanOut } : {}),
    ...(limit ? { admit: (socket: Socket) => limit.admit(socket, CONSUL_TOO_MANY) } : {}),
  });
  return {
    listener: server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Parked blocking queries would hold close() for minutes: end them now.
      front.closeAll();
      server.closeAllConnections();
    }),
  };
}

/** Whether the request declares a body (one that may still be arriving). */
const hasBody = (req: IncomingMessage): boolean => Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;

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

function write(res: ServerResponse, method: string, w: Wire): void {
  if (res.destroyed) return;
  res.writeHead(w.status, w.headers);
  res.end(method === 'HEAD' ? undefined : w.body);
}
