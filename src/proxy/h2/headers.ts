/**
 * Header fields across the HTTP/2 plane's edges: an HTTP/2 request's fields for an HTTP/2 or an
 * HTTP/1.1 instance (pseudo-headers, hop-by-hop removal, X-Forwarded-*, X-Request-Id), and an
 * instance's response fields for an HTTP/2 client (connection-specific fields dropped: HTTP/2
 * forbids them, RFC 9113 §8.2.2).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';

/** Never forwarded as received (the same list as the HTTP/1 planes', plus Host, carried as :authority). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'host',
]);

export interface ForwardInfo {
  readonly clientIp: string;
  /** The scheme the client used (https on the TLS listener). */
  readonly proto: 'http' | 'https';
  /** :authority (or Host) as the client sent it. */
  readonly authority: string | undefined;
  readonly newId: () => string;
}

/**
 * A field map whose names come off the wire. It has no prototype: on a plain object a field named
 * `constructor` reads as Object before it is set (the first value was sent as "function Object() {
 * [native code] }, x") and one named `__proto__` sets the prototype instead of a field.
 */
export function fieldMap(): OutgoingHttpHeaders {
  return Object.create(null) as OutgoingHttpHeaders;
}

/** The end-to-end fields of an HTTP/2 request plus the forwarding fields; returns the request id too. */
function forwardFields(h: IncomingHttpHeaders, info: ForwardInfo, add: (name: string, value: string | string[]) => void): string {
  let requestId: string | undefined;
  let hasProto = false;
  let hasHost = false;
  let xff: string | undefined;
  for (const name in h) {
    if (name.charCodeAt(0) === 0x3a) continue; // pseudo-headers are rebuilt for the upstream
    const v = h[name];
    if (v === undefined || HOP_BY_HOP.has(name)) continue;
    if (name === 'x-forwarded-for') {
      xff = Array.isArray(v) ? v.join(', ') : v;
      continue;
    }
    if (name === 'x-request-id') requestId = Array.isArray(v) ? v[0] : v;
    else if (name === 'x-forwarded-proto') hasProto = true;
    else if (name === 'x-forwarded-host') hasHost = true;
    add(name, v);
  }
  add('x-forwarded-for', xff === undefined ? info.clientIp : `${xff}, ${info.clientIp}`);
  if (!hasProto) add('x-forwarded-proto', info.proto);
  if (!hasHost && info.authority !== undefined) add('x-forwarded-host', info.authority);
  if (requestId === undefined) {
    requestId = info.newId();
    add('x-request-id', requestId);
  }
  return requestId;
}

/** Request fields for an HTTP/2 instance (h2c, h2, grpc). `te: trailers` is kept: gRPC servers require it. */
export function h2UpstreamHeaders(h: IncomingHttpHeaders, method: string, path: string, scheme: 'http' | 'https', info: ForwardInfo): { headers: OutgoingHttpHeaders; requestId: string } {
  const headers = fieldMap();
  headers[':method'] = method;
  headers[':path'] = path;
  headers[':scheme'] = scheme;
  if (info.authority !== undefined) headers[':authority'] = info.authority;
  const requestId = forwardFields(h, info, (n, v) => {
    headers[n] = v;
  });
  const te = first(h.te);
  if (te !== undefined && /(?:^|,)\s*trailers\s*(?:$|[,;])/i.test(te)) headers.te = 'trailers';
  return { headers, requestId };
}

/** Request fields for an HTTP/1.1 instance, as undici's flat list (Host from :authority). */
export function h1UpstreamHeaders(h: IncomingHttpHeaders, info: ForwardInfo): { headers: string[]; requestId: string } {
  const out: string[] = [];
  if (info.authority !== undefined) out.push('host', info.authority);
  const requestId = forwardFields(h, info, (n, v) => {
    if (Array.isArray(v)) for (const x of v) out.push(n, x);
    else out.push(n, v);
  });
  return { headers: out, requestId };
}

/** An HTTP/1.1 response's fields (undici's raw list) for an HTTP/2 client: hop-by-hop and Connection-listed fields dropped, repeats joined. */
export function h2ResponseFromH1(status: number, raw: readonly Buffer[] | readonly string[]): OutgoingHttpHeaders {
  const out = fieldMap();
  out[':status'] = status;
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase();
    const value = String(raw[i + 1]);
    if (name === 'connection') {
      for (const t of value.split(',')) {
        const n = t.trim().toLowerCase();
        if (n !== '' && n !== 'close' && n !== 'keep-alive' && n !== 'content-length') (listed ??= new Set()).add(n);
      }
      continue;
    }
    // Trailer names what the chunked body's trailers will be: still meaningful over HTTP/2.
    if (name !== 'trailer' && HOP_BY_HOP.has(name)) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (name === 'set-cookie') out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    else out[name] = `${String(prev)}, ${value}`;
  }
  if (listed !== undefined) for (const n of listed) delete out[n];
  return out;
}

/** An HTTP/2 instance's response or trailer fields for the client: pseudo-headers other than :status and connection-specific fields dropped. */
export function h2ResponseFromH2(h: IncomingHttpHeaders, status: number | undefined): OutgoingHttpHeaders {
  const out = fieldMap();
  if (status !== undefined) out[':status'] = status;
  for (const name in h) {
    if (name.charCodeAt(0) === 0x3a || HOP_BY_HOP.has(name)) continue;
    const v = h[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/** undici's trailer list (names and values alternating) as a header object. */
export function trailersFromRaw(raw: readonly (Buffer | string)[] | null | undefined): OutgoingHttpHeaders | undefined {
  if (raw == null || raw.length === 0) return undefined;
  const out = fieldMap();
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i]).toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    const prev = out[name];
    out[name] = prev === undefined ? String(raw[i + 1]) : `${String(prev)}, ${String(raw[i + 1])}`;
  }
  return out;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
