/**
 * The request target as both planes route it: origin-form or absolute-form (routed on its
 * authority, RFC 9112 §3.2.2), split from its query, with the path normalised (routing/path.ts).
 * Asterisk-form and authority-form (CONNECT) are refused: this is a reverse proxy.
 */
import { normalizePath } from '../../routing/path.js';

export interface RequestTarget {
  /** The authority of an absolute-form target (it overrides Host); undefined for origin-form. */
  readonly authority: string | undefined;
  /** Normalised path, no query. */
  readonly path: string;
  /** "?…" or "". Forwarded exactly as received. */
  readonly query: string;
  /** The path as received differs from `path` (the forwarded first line must be rewritten). */
  readonly changed: boolean;
}

export interface TargetRefusal {
  readonly status: number;
  readonly error: string;
}

/** host[:port], a bracketed IPv6 literal, no userinfo. */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=-]+)(?::\d{0,5})?$/;

export function parseRequestTarget(raw: string): RequestTarget | TargetRefusal {
  let authority: string | undefined;
  let rest = raw;
  if (raw.charCodeAt(0) !== 0x2f) {
    if (raw === '*') return { status: 400, error: 'asterisk-form targets (OPTIONS *) are not served: this is a reverse proxy' };
    const m = /^(https?):\/\/([^/?#]*)/i.exec(raw);
    if (m === null) return { status: 400, error: 'the request target must be a path ("/…") or an absolute http(s) URL' };
    authority = (m[2] as string).toLowerCase();
    if (!AUTHORITY.test(authority)) return { status: 400, error: `invalid authority ${JSON.stringify(m[2])} in the request target` };
    rest = raw.slice(m[0].length);
    if (rest === '' || rest.charCodeAt(0) === 0x3f) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q);
  const path = normalizePath(rawPath);
  if (typeof path !== 'string') return { status: 400, error: path.error };
  return { authority, path, query, changed: authority !== undefined || path !== rawPath };
}
