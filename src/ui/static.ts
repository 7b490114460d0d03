/** Serves the shipped UI assets under /ui/: known content types only, no path traversal, history-API fallback to index.html. */
import { realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** src/ui/ under tsx and dist/ui/ once built are both two levels below the package root, where ui/ ships. */
export const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** First path segments that belong to the app's router (ui/js/router.js), never to files. */
const APP_ROUTES = new Set(['services', 'kv', 'lb']);

// The UI only ever talks to this origin; inline script and style are never needed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export interface StaticOptions {
  /** Defaults to the packaged ui/ directory. */
  dir?: string;
}

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers }).end(`${text}\n`);
}

export function createStaticHandler(opts: StaticOptions = {}): (req: IncomingMessage, res: ServerResponse, rawRelPath: string) => Promise<void> {
  const configured = resolve(opts.dir ?? UI_DIR);
  let root: string;
  try {
    root = realpathSync(configured);
  } catch {
    root = configured;
  }
  const rootWithSep = root.endsWith(sep) ? root : root + sep;

  /** The file for a URL path below /ui/, or undefined when it names something outside the UI or hidden. */
  const locate = (rawRelPath: string): { file: string; fallback: boolean } | 'bad' | undefined => {
    let rel: string;
    try {
      rel = decodeURIComponent(rawRelPath);
    } catch {
      return 'bad';
    }
    if (rel.includes('\0') || rel.includes('\\')) return 'bad';
    const segments = rel.split('/').filter((s) => s !== '');
    const shell = { file: resolve(root, 'index.html'), fallback: true };
    // Client-side routes get the app shell whatever follows: KV keys and service names may look like
    // file names (app.json, .env), and only the shell is ever read for them.
    if (segments.length === 0 || APP_ROUTES.has(segments[0] ?? '')) return shell;
    // Refuse dot segments outright rather than normalise them: no asset has one.
    if (segments.some((s) => s.startsWith('.'))) return undefined;
    if (extname(segments[segments.length - 1] ?? '') === '') return shell;
    const file = resolve(root, ...segments);
    if (!file.startsWith(rootWithSep)) return undefined;
    return { file, fallback: false };
  };

  return async (req, res, rawRelPath) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      plain(res, 405, `method ${method} not allowed`, { Allow: 'GET, HEAD' });
      return;
    }
    const found = locate(rawRelPath);
    if (found === 'bad') {
      plain(res, 400, 'bad path');
      return;
    }
    const type = found ? TYPES[extname(found.file).toLowerCase()] : undefined;
    if (!found || !type) {
      plain(res, 404, 'not found');
      return;
    }
    let body: Buffer;
    let etag: string;
    try {
      // A symlink inside ui/ must not lead out of it either.
      const real = await realpath(found.file);
      if (!real.startsWith(rootWithSep)) throw new Error('outside the UI directory');
      const st = await stat(real);
      if (!st.isFile()) throw new Error('not a file');
      etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' }).end();
        return;
      }
      body = await readFile(real);
    } catch {
      plain(res, 404, found.fallback ? 'the UI is not installed (ui/index.html is missing)' : 'not found');
      return;
    }
    const headers: Record<string, string> = {
      'Content-Type': type,
      'Content-Length': String(body.length),
      // Revalidate every time: assets change with the package, and the ETag makes it a 304.
      'Cache-Control': 'no-cache',
      ETag: etag,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    };
    if (type.startsWith('text/html')) {
      headers['Content-Security-Policy'] = CSP;
      headers['X-Frame-Options'] = 'DENY';
    }
    res.writeHead(200, headers).end(method === 'HEAD' ? undefined : body);
  };
}
