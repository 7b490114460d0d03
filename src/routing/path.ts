/**
 * What a request path means for routing: the normalised form every route is matched on and that is
 * forwarded, and prefix matching on segment boundaries.
 *
 * Why normalise: a backend that resolves `/api/../internal` serves `/internal`, which no route
 * allowed. So the path is decoded where decoding is harmless (unreserved characters: `%2e` is `.`),
 * dot segments are removed (RFC 3986 §5.2.4), repeated slashes merged (nginx's merge_slashes), and
 * the result is both what routes match and what the instance receives. What cannot be normalised
 * without guessing how the backend decodes — a dot segment hidden behind an encoded separator
 * (`..%2F`) or a backslash (`..\`) — is refused. `%2F` alone stays encoded and is allowed (GitLab's
 * `group%2Fproject` ids are real).
 */

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e) UNRESERVED[c] = 1;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

export interface PathError {
  readonly error: string;
}

/** True when `path` needs no work: no escapes, backslashes, empty or dot segments. The common case. */
function isPlain(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT || c === BACKSLASH) return false;
    if (c === SLASH && i + 1 < path.length) {
      const n = path.charCodeAt(i + 1);
      if (n === SLASH) return false;
      if (n === DOT) {
        const n2 = i + 2 < path.length ? path.charCodeAt(i + 2) : SLASH;
        if (n2 === SLASH || (n2 === DOT && (i + 3 >= path.length || path.charCodeAt(i + 3) === SLASH))) return false;
      }
    }
  }
  return true;
}

/** Decodes escapes of unreserved characters and upper-cases the hex of the others. */
function decodeUnreserved(path: string): string | PathError {
  let out = '';
  let from = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== PERCENT) continue;
    const h = i + 2 < path.length ? hexVal(path.charCodeAt(i + 1)) : -1;
    const l = h >= 0 ? hexVal(path.charCodeAt(i + 2)) : -1;
    if (l < 0) return { error: `invalid percent-encoding at offset ${i} of the path` };
    const v = h * 16 + l;
    // A NUL ends strings in C backends (nginx refuses it too): no path means the same everywhere with one.
    if (v === 0) return { error: 'an encoded NUL (%00) in the path' };
    out += path.slice(from, i) + (v < 128 && UNRESERVED[v] === 1 ? String.fromCharCode(v) : `%${path.slice(i + 1, i + 3).toUpperCase()}`);
    from = i + 3;
    i += 2;
  }
  return from === 0 ? path : out + path.slice(from);
}

/** A segment whose fully decoded form hides a `.` or `..` behind `%2F`, `%5C` or `\`. */
function hidesDotSegment(seg: string): boolean {
  let decoded = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c === PERCENT && i + 2 < seg.length) {
      const v = hexVal(seg.charCodeAt(i + 1)) * 16 + hexVal(seg.charCodeAt(i + 2));
      decoded += String.fromCharCode(v);
      i += 2;
    } else decoded += seg[i];
  }
  for (const piece of decoded.split(/[/\\]/)) if (piece === '.' || piece === '..') return true;
  return false;
}

/**
 * The normalised form of an origin-form path (it starts with "/"; no query), or why it is refused.
 * Idempotent: a normalised path comes back unchanged.
 */
export function normalizePath(path: string): string | PathError {
  if (isPlain(path)) return path;
  const d = decodeUnreserved(path);
  if (typeof d !== 'string') return d;
  const segs = d.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i] as string;
    const last = i === segs.length - 1;
    if (s === '' || s === '.') {
      if (last) trailing = true;
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return { error: 'the path climbs above the root ("..")' };
      out.pop();
      if (last) trailing = true;
      continue;
    }
    if ((s.includes('%') || s.includes('\\')) && hidesDotSegment(s)) {
      return { error: `path segment ${JSON.stringify(s)} hides a dot segment behind an encoded separator or a backslash` };
    }
    trailing = false;
    out.push(s);
  }
  if (out.length === 0) return '/';
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}

/** A route's path prefix in matching form: normalised, without a trailing slash (except the root). */
export function routePrefix(prefix: string): string | PathError {
  const n = normalizePath(prefix);
  if (typeof n !== 'string') return n;
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Segment-boundary prefix match: `/api` matches `/api` and `/api/…`, never `/apiadmin`. `prefix` is in routePrefix() form. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (prefix.length === 1) return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === SLASH;
}

/** The path with `strip` (routePrefix() form) removed on a segment boundary; unchanged when it does not start with it. */
export function stripPrefix(path: string, strip: string): string {
  if (strip.length === 1 || !prefixMatches(strip, path)) return path;
  return path.length === strip.length ? '/' : path.slice(strip.length);
}
