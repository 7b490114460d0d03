/** Small builders for corpus cases: raw requests from lines, and the expected steps. */
import type { Service } from '../recorder.js';
import type { Fwd, RespCheck, Step } from '../types.js';

/** A request from its lines (CRLF-joined, blank line added) and a body. */
export const msg = (lines: readonly string[], body = ''): string => `${lines.join('\r\n')}\r\n\r\n${body}`;

/** GET with a Host (and extra header lines). */
export const get = (target: string, extra: readonly string[] = [], host = 'a.test'): string => msg([`GET ${target} HTTP/1.1`, `Host: ${host}`, ...extra]);

/** POST with Content-Length. */
export const post = (target: string, body: string, extra: readonly string[] = []): string => msg([`POST ${target} HTTP/1.1`, 'Host: a.test', `Content-Length: ${body.length}`, ...extra], body);

/** A chunked body of these pieces (final zero chunk included). */
export const chunks = (...pieces: string[]): string => `${pieces.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`;

/** A request smuggled inside a body: what a confused backend would run. */
export const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n';

/** The proxy answers itself (nothing reaches a backend). */
export const refused = (status = 400): Step => ({ status });

/** Answered by the proxy with a check on the response. */
export const answered = (status: number, resp: RespCheck): Step => ({ status, resp });

/** Forwarded: the backend got exactly this; the client got `status` (default 200). */
export function fwd(to: Service, method: string, target: string, o: { host?: string | null; body?: string; status?: number; resp?: RespCheck } = {}): Step {
  const f: Fwd = { to, method, target, ...(o.host !== undefined ? { host: o.host } : {}), ...(o.body !== undefined ? { body: o.body } : {}) };
  return { fwd: f, ...(o.status !== undefined ? { status: o.status } : {}), ...(o.resp ? { resp: o.resp } : {}) };
}

export const web = (method: string, target: string, o: Parameters<typeof fwd>[3] = {}): Step => fwd('web', method, target, o);
export const api = (method: string, target: string, o: Parameters<typeof fwd>[3] = {}): Step => fwd('api', method, target, o);

export const GARBLED: Step = { garbled: true };
