/**
 * Message heads for the other side, built byte for byte from a parsed head: kept header lines are
 * copied in runs into one Buffer together with the rewritten first line, the added headers and,
 * when small, the first body bytes — one write per head.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { CONN_OTHER, H_CONTENT_LENGTH, H_EXPECT, H_HOST, H_TRANSFER_ENCODING, H_UPGRADE, H_X_FORWARDED_FOR, HOP_BY_HOP_KIND } from '../../core/http1/h1.js';
import type { Head } from '../../core/http1/h1.js';

/**
 * Copies src[s, e) to dst at o and returns the count. Short runs (header lines) are copied in a
 * loop: Node's Buffer#copy allocates a Uint8Array view for every sub-range it copies, and heads
 * are copied in several runs per request.
 */
export function copyBytes(src: Buffer, s: number, e: number, dst: Buffer, o: number): number {
  const n = e - s;
  if (n > 256) return src.copy(dst, o, s, e);
  for (let i = 0; i < n; i++) dst[o + i] = src[s + i]!;
  return n;
}

/** Names listed in Connection (beyond close/keep-alive/upgrade): more hop-by-hop headers to drop. */
export function connectionListed(buf: Buffer, p: Head): Set<string> | undefined {
  if ((p.connection & CONN_OTHER) === 0) return undefined;
  const out = new Set<string>();
  const v = p.get(buf, 'connection') ?? '';
  for (const t of v.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive' && n !== 'upgrade') out.add(n);
  }
  return out;
}

/** What to leave out of a head besides the hop-by-hop headers. */
export const KEEP_ALL = 0;
/** Requests: X-Forwarded-For is re-emitted with the client appended; Expect was answered here. */
export const DROP_FORWARDING = 1;
/** Absolute-form requests: the Host line is replaced by the authority that was routed on. */
export const DROP_HOST = 2;
/** Upgrade requests and 101 answers: the Upgrade header is the point, not a hop-by-hop leftover. */
export const KEEP_UPGRADE = 4;

function keepHeader(buf: Buffer, p: Head, h: number, drop: number, listed: Set<string> | undefined): boolean {
  const k = p.kind[h]!;
  if (HOP_BY_HOP_KIND[k] === 1) return k === H_UPGRADE && (drop & KEEP_UPGRADE) !== 0;
  if ((drop & DROP_FORWARDING) !== 0 && (k === H_X_FORWARDED_FOR || k === H_EXPECT)) return false;
  if ((drop & DROP_HOST) !== 0 && k === H_HOST) return false;
  // Framing and routing headers are never hop-by-hop, whatever Connection lists (a request that
  // lists them was refused by the parser; a response's list is ignored for them).
  if (listed === undefined || k === H_CONTENT_LENGTH || k === H_TRANSFER_ENCODING || k === H_HOST) return true;
  return !listed.has(p.name(buf, h));
}

/**
 * A head for the other side: `first` (a rewritten first line) or the original first line, the
 * header lines that survive `drop`, copied in runs, then `tail` (added headers and the blank
 * line), then optionally body bytes — all in one Buffer for one write.
 */
export function rewriteHead(buf: Buffer, p: Head, first: string | undefined, drop: number, listed: Set<string> | undefined, tail: string, body: Buffer | undefined, bs: number, be: number): Buffer {
  const firstFrom = p.start;
  let size = (first === undefined ? p.lineEnd - firstFrom : first.length) + tail.length + (be - bs);
  const n = p.count;
  for (let h = 0; h < n; h++) if (keepHeader(buf, p, h, drop, listed)) size += p.le[h]! - p.ns[h]!;
  const out = Buffer.allocUnsafe(size);
  let o = first === undefined ? copyBytes(buf, firstFrom, p.lineEnd, out, 0) : out.latin1Write(first, 0);
  let runStart = -1;
  let runEnd = -1;
  for (let h = 0; h < n; h++) {
    if (keepHeader(buf, p, h, drop, listed)) {
      if (runStart < 0) runStart = p.ns[h]!;
      runEnd = p.le[h]!;
    } else if (runStart >= 0) {
      o += copyBytes(buf, runStart, runEnd, out, o);
      runStart = -1;
    }
  }
  if (runStart >= 0) o += copyBytes(buf, runStart, runEnd, out, o);
  o += out.latin1Write(tail, o);
  if (body !== undefined && be > bs) copyBytes(body, bs, be, out, o);
  return out;
}

/** `hex CRLF data CRLF`: one chunk of a body we frame ourselves. */
export function encodeChunk(buf: Buffer, s: number, e: number): Buffer {
  const hex = (e - s).toString(16);
  const out = Buffer.allocUnsafe(hex.length + 4 + (e - s));
  out.latin1Write(hex, 0);
  out[hex.length] = 13;
  out[hex.length + 1] = 10;
  buf.copy(out, hex.length + 2, s, e);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** req.headers as Node would build it, for header-matching routes (rare: built only when a route needs it). */
export function headersObject(buf: Buffer, p: Head): IncomingHttpHeaders {
  const o: Record<string, string> = {};
  for (let h = 0; h < p.count; h++) {
    const n = p.name(buf, h);
    const v = p.value(buf, h);
    const prev = o[n];
    o[n] = prev === undefined ? v : `${prev}${n === 'cookie' ? '; ' : ', '}${v}`;
  }
  return o as IncomingHttpHeaders;
}

/** A complete plain-text answer of our own (errors, refusals). */
export function plainResponse(status: number, body: string, extra: string, close: boolean, date: string): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ndate: ${date}\r\n${extra}${close ? 'connection: close\r\n' : ''}\r\n${body}`;
}
