/** The agent's non-API paths for the web UI: `/` → /ui/, the static app, and the balancer's live JSON and Server-Sent Events. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { aclAllows } from '../core/acl.js';
import { LbLive } from './lb-live.js';
import type { LbPayload, LbView, LiveLb, LiveSource } from './lb-live.js';
import { createStaticHandler } from './static.js';

export interface UiOptions {
  logger: Logger;
  /** With the agent's ACL token set, the live endpoints need it too (the static files stay public, as in Consul). */
  aclToken?: string;
  /** Where the assets live (tests); defaults to the packaged ui/. */
  dir?: string;
  /** How often SSE clients get a fresh view without a table swap. */
  pushEveryMs?: number;
  /**
   * A balancer will be attached (`switchyard up` starts its agent first): until then the view says it is
   * starting, not that there is none, and browsers come back within a second instead of a minute.
   */
  lbStarting?: boolean;
}

export interface UiHandler {
  /** The agent server's `fallback`: true when the request was taken (answered now or later). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Gives the live view a balancer to show (only `switchyard up` runs one in-process). */
  attachLb(lb: LiveLb, source?: LiveSource): void;
  close(): void;
}

const NO_LB: LbPayload = {
  attached: false,
  reason: 'This agent runs without a load balancer. Run `switchyard up` to see the live balancer view here.',
};
const LB_STARTING: LbPayload = { attached: false, reason: 'The load balancer is starting.', starting: true };

function json(res: ServerResponse, status: number, body: unknown, method: string): void {
  const buf = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': String(buf.length), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(method === 'HEAD' ? undefined : buf);
}

export function createUiHandler(opts: UiOptions): UiHandler {
  const serveStatic = createStaticHandler(opts.dir !== undefined ? { dir: opts.dir } : {});
  const log = opts.logger;
  // Without a balancer: what the view says, and when a browser's event stream should ask again (a
  // balancer on its way attaches within a second; with none coming nothing will change).
  const absent = opts.lbStarting === true ? { payload: LB_STARTING, retryMs: 1000 } : { payload: NO_LB, retryMs: 60_000 };
  let live: LbLive | undefined;
  let unsubscribe: (() => void) | undefined;
  const streams = new Set<ServerResponse>();
  let eventId = 0;

  const broadcast = (view: LbView): void => {
    if (streams.size === 0) return;
    const frame = `id: ${++eventId}\nevent: lb\ndata: ${JSON.stringify(view)}\n\n`;
    for (const res of streams) {
      // A client that cannot keep up skips frames: each one is the whole picture, so none is owed.
      if (res.writableNeedDrain) continue;
      res.write(frame);
    }
  };

  const events = (req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    if (!live) {
      res.end(`retry: ${absent.retryMs}\nevent: lb\ndata: ${JSON.stringify(absent.payload)}\n\n`);
      return;
    }
    res.write('retry: 2000\n\n');
    streams.add(res);
    // Views are built only while someone watches; the sampler keeps its window either way.
    if (streams.size === 1) unsubscribe = live.subscribe(broadcast);
    res.once('close', () => {
      streams.delete(res);
      if (streams.size === 0) {
        unsubscribe?.();
        unsubscribe = undefined;
      }
    });
    void live.view().then((v) => {
      if (!res.destroyed) res.write(`id: ${++eventId}\nevent: lb\ndata: ${JSON.stringify(v)}\n\n`);
    }, (err: unknown) => log.warn({ err }, 'ui: could not build the balancer view'));
  };

  const api = (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end(`method ${method} not allowed\n`);
      return;
    }
    if (!aclAllows(opts.aclToken, req.headers, query)) {
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Permission denied');
      return;
    }
    if (path === '/ui/api/lb') {
      if (!live) {
        json(res, 200, absent.payload, method);
        return;
      }
      live.view().then((v) => json(res, 200, v, method), (err: unknown) => {
        log.warn({ err }, 'ui: could not build the balancer view');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('could not build the balancer view\n');
      });
      return;
    }
    if (path === '/ui/api/lb/events') {
      events(req, res);
      return;
    }
    json(res, 404, { error: `no such UI endpoint: ${path} (try /ui/api/lb or /ui/api/lb/events)` }, method);
  };

  return {
    handle(req, res) {
      const raw = req.url ?? '/';
      const qi = raw.indexOf('?');
      const path = qi >= 0 ? raw.slice(0, qi) : raw;
      const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
      const method = req.method ?? 'GET';
      // Consul with its UI enabled sends `/` to the UI; other methods keep the plain API answer.
      if (path === '/' && (method === 'GET' || method === 'HEAD')) {
        res.writeHead(301, { Location: '/ui/', 'Content-Length': '0' }).end();
        return true;
      }
      if (path === '/ui') {
        res.writeHead(301, { Location: `/ui/${qi >= 0 ? raw.slice(qi) : ''}`, 'Content-Length': '0' }).end();
        return true;
      }
      if (!path.startsWith('/ui/')) return false;
      if (path === '/ui/api' || path.startsWith('/ui/api/')) {
        api(req, res, path, query);
        return true;
      }
      serveStatic(req, res, path.slice('/ui/'.length)).catch((err: unknown) => {
        log.error({ err, url: req.url }, 'ui: static file handler failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
      return true;
    },
    attachLb(lb, source) {
      unsubscribe?.();
      live?.close();
      unsubscribe = undefined;
      live = new LbLive(lb, source, {
        ...(opts.pushEveryMs !== undefined ? { sampleEveryMs: opts.pushEveryMs } : {}),
        onError: (err) => log.warn({ err }, 'ui: could not sample the balancer'),
      });
      if (streams.size > 0) unsubscribe = live.subscribe(broadcast);
    },
    close() {
      unsubscribe?.();
      live?.close();
      live = undefined;
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
