/** Property-based fuzzing of the fast plane's parser (src/core/http1/h1.ts) against llhttp: the checks and the generators, shared by the bounded CI test and bench/fuzz.ts. */
//
// The property: whenever h1.ts accepts a message (parseRequestHead / parseResponseHead, then the body by
// Content-Length or ChunkedDecoder), llhttp accepts it too and agrees on the method, the target (or the
// status), the framing, and the offsets where the head and the body end. h1.ts may refuse more (that is
// its strictness), never less. A second property: wherever the bytes are split, h1.ts parses the same.
import fc from 'fast-check';
import { ChunkedDecoder, Head, NEED_MORE, PARSE_ERROR, parseRequestHead, parseResponseHead } from '../../src/core/http1/h1.js';
import { RefParser } from './llhttp.js';

const MAX_HEAD = 16 * 1024;

export interface Finding {
  /** What kind of disagreement: findings of one kind are one bug (the long run keeps one example per kind). */
  readonly kind: string;
  readonly detail: string;
  readonly bytes: Buffer;
}

/** Methods policy allows (uppercase tokens with '_' and '-') that llhttp does not know: a documented difference, not a finding. */
const POLICY_METHOD = /^[A-Z_-]+$/;

type H1Body = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

interface H1Result {
  headEnd: number;
  end: number; // -1: the body needs more bytes; -2: the body was refused
  framing: H1Body;
  body: Buffer;
  error: string;
}

/** The body after a head h1.ts accepted, as the fast plane reads it. */
function h1Body(buf: Buffer, headEnd: number, framing: H1Body, maxTrailer: number): Pick<H1Result, 'end' | 'body' | 'error'> {
  if (framing.kind === 'none') return { end: headEnd, body: Buffer.alloc(0), error: '' };
  if (framing.kind === 'length') {
    const end = headEnd + framing.length;
    return end <= buf.length ? { end, body: buf.subarray(headEnd, end), error: '' } : { end: -1, body: Buffer.alloc(0), error: '' };
  }
  const parts: Buffer[] = [];
  const dec = new ChunkedDecoder(maxTrailer);
  const x = dec.feed(buf, headEnd, buf.length, { chunkData: (b, s, e) => parts.push(Buffer.from(b.subarray(s, e))) });
  if (x === PARSE_ERROR) return { end: -2, body: Buffer.alloc(0), error: dec.error };
  if (x === NEED_MORE) return { end: -1, body: Buffer.alloc(0), error: '' };
  return { end: x, body: Buffer.concat(parts), error: '' };
}

const show = (b: Buffer, from = 0, to = b.length): string => JSON.stringify(b.subarray(Math.max(0, from), Math.min(b.length, to)).toString('latin1'));

/** Checks one request stream's first message. */
export function checkRequest(bytes: Buffer): Finding | undefined {
  const head = new Head();
  const r = parseRequestHead(bytes, 0, bytes.length, head, MAX_HEAD);
  if (r < 0) return undefined; // refused or incomplete: strictness is allowed
  const framing: H1Body = head.chunked ? { kind: 'chunked' } : head.contentLength >= 0 ? { kind: 'length', length: head.contentLength } : { kind: 'none' };
  const body = h1Body(bytes, r, framing, MAX_HEAD);
  const ref = new RefParser('request');
  ref.feed(bytes);
  const m = ref.messages[0] ?? ref.current;
  const target = bytes.latin1Slice(head.targetStart, head.targetEnd);
  const f = (kind: string, detail: string): Finding => ({ kind, detail, bytes });
  try {
    if (m === undefined) {
      const e = ref.error;
      if (e && e.code === 'HPE_INVALID_METHOD' && POLICY_METHOD.test(head.method)) return undefined;
      return f(`request head accepted by h1, refused by llhttp (${e?.code ?? 'incomplete'})`, `h1 accepted a ${head.method} head ending at ${r}; llhttp: ${e ? `${e.code} (${e.reason}) at byte ${e.at}, near ${show(bytes, e.at - 20, e.at + 20)}` : 'needs more bytes'}`);
    }
    // llhttp may refuse a head only once it is complete (Transfer-Encoding rules run at its end).
    if (ref.error !== undefined && ref.error.at < m.headEnd) {
      return f(`request head accepted by h1, refused by llhttp (${ref.error.code})`, `h1 accepted a ${head.method} head ending at ${r}; llhttp: ${ref.error.code} (${ref.error.reason}) at byte ${ref.error.at}, near ${show(bytes, ref.error.at - 20, ref.error.at + 20)}`);
    }
    if (m.headEnd !== r) return f('head end differs', `h1 ends the head at ${r}, llhttp at ${m.headEnd}`);
    if (m.method !== head.method) return f('method differs', `h1 ${JSON.stringify(head.method)}, llhttp ${JSON.stringify(m.method)}`);
    if (m.url !== target) return f('target differs', `h1 ${JSON.stringify(target)}, llhttp ${JSON.stringify(m.url)}`);
    if (m.versionMajor !== 1 || m.versionMinor !== head.versionMinor) return f('version differs', `h1 1.${head.versionMinor}, llhttp ${m.versionMajor}.${m.versionMinor}`);
    const rf = m.framing;
    if (rf.kind !== framing.kind || (rf.kind === 'length' && framing.kind === 'length' && rf.length !== framing.length)) {
      return f('framing differs', `h1 ${JSON.stringify(framing)}, llhttp ${JSON.stringify(rf)}`);
    }
    if (body.end === -2) return undefined; // h1 refused the body
    if (ref.error !== undefined && (body.end === -1 || ref.error.at < body.end)) {
      if (body.end === -1) return undefined; // llhttp refused bytes h1 has not judged yet
      return f(`body accepted by h1, refused by llhttp (${ref.error.code})`, `h1 ends the ${framing.kind} body at ${body.end}; llhttp: ${ref.error.code} (${ref.error.reason}) at byte ${ref.error.at}, near ${show(bytes, ref.error.at - 20, ref.error.at + 20)}`);
    }
    if (body.end === -1) {
      if (m.end >= 0) return f('body end differs', `h1 needs more bytes for the ${framing.kind} body, llhttp ended the message at ${m.end}`);
      return undefined;
    }
    if (m.end !== body.end) return f('body end differs', `h1 ends the ${framing.kind} body at ${body.end}, llhttp ${m.end < 0 ? 'needs more bytes' : `at ${m.end}`}`);
    if (!m.body.equals(body.body)) return f('body bytes differ', `h1 ${show(body.body, 0, 80)}, llhttp ${show(m.body, 0, 80)}`);
    return undefined;
  } finally {
    ref.close();
  }
}

/** Checks one response stream's first final response (to a GET). */
export function checkResponse(bytes: Buffer): Finding | undefined {
  const head = new Head(512);
  let start = 0;
  let r: number;
  // 1xx heads are skipped as the fast plane does, to the final response.
  for (;;) {
    r = parseResponseHead(bytes, start, bytes.length, head, MAX_HEAD);
    if (r < 0) return undefined;
    if (head.status >= 200 || head.status === 101) break;
    start = r;
  }
  if (head.status === 101) return undefined;
  const bodiless = head.status === 204 || head.status === 304;
  const framing: H1Body = bodiless ? { kind: 'none' } : head.chunked ? { kind: 'chunked' } : head.contentLength >= 0 ? { kind: 'length', length: head.contentLength } : { kind: 'none' };
  const closeDelimited = !bodiless && !head.chunked && head.contentLength < 0;
  const ref = new RefParser('response', ['GET']);
  ref.feed(bytes);
  const f = (kind: string, detail: string): Finding => ({ kind, detail, bytes });
  try {
    const m = ref.messages.find((x) => x.status >= 200) ?? (ref.current && ref.current.status >= 200 ? ref.current : undefined);
    if (m === undefined) {
      const e = ref.error;
      return f(`response head accepted by h1, refused by llhttp (${e?.code ?? 'incomplete'})`, `h1 accepted a ${head.status} head ending at ${r}; llhttp: ${e ? `${e.code} (${e.reason}) at byte ${e.at}, near ${show(bytes, e.at - 20, e.at + 20)}` : 'needs more bytes'}`);
    }
    if (ref.error !== undefined && ref.error.at < m.headEnd) {
      return f(`response head accepted by h1, refused by llhttp (${ref.error.code})`, `h1 accepted a ${head.status} head ending at ${r}; llhttp: ${ref.error.code} (${ref.error.reason}) at byte ${ref.error.at}`);
    }
    if (m.headEnd !== r) return f('response head end differs', `h1 ends the head at ${r}, llhttp at ${m.headEnd}`);
    if (m.status !== head.status) return f('status differs', `h1 ${head.status}, llhttp ${m.status}`);
    if (closeDelimited) return m.framing.kind === 'eof' ? undefined : f('response framing differs', `h1 reads to the close, llhttp ${JSON.stringify(m.framing)}`);
    const rf = m.framing;
    if (rf.kind !== framing.kind || (rf.kind === 'length' && framing.kind === 'length' && rf.length !== framing.length)) {
      return f('response framing differs', `h1 ${JSON.stringify(framing)}, llhttp ${JSON.stringify(rf)}`);
    }
    const body = h1Body(bytes, r, framing, 64 * 1024);
    if (body.end < 0) return undefined;
    if (ref.error !== undefined && ref.error.at < body.end) return f(`response body accepted by h1, refused by llhttp (${ref.error.code})`, `h1 ends the body at ${body.end}; llhttp: ${ref.error.code} (${ref.error.reason}) at byte ${ref.error.at}`);
    if (m.end !== body.end) return f('response body end differs', `h1 ends the body at ${body.end}, llhttp ${m.end < 0 ? 'needs more bytes' : `at ${m.end}`}`);
    return undefined;
  } finally {
    ref.close();
  }
}

/**
 * Split invariance, as the fast plane reads: the head is re-parsed from its start on every read until it
 * is complete (each shorter prefix must be NEED_MORE, never a different answer), and the chunked body is
 * fed piece by piece (the same end and the same data as in one piece).
 */
export function checkSplits(bytes: Buffer, cuts: number[]): Finding | undefined {
  const whole = new Head();
  const r = parseRequestHead(bytes, 0, bytes.length, whole, MAX_HEAD);
  const f = (kind: string, detail: string): Finding => ({ kind, detail, bytes });
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const p = new Head();
  for (const c of points) {
    const x = parseRequestHead(bytes.subarray(0, c), 0, c, p, MAX_HEAD);
    const complete = r >= 0 && c >= r;
    if (complete && x !== r) return f('split: head result differs', `whole: ${r}; prefix of ${c} bytes: ${x}`);
    if (!complete && r >= 0 && x !== NEED_MORE) return f('split: prefix not NEED_MORE', `whole head ends at ${r}; prefix of ${c} bytes gives ${x} (${p.errorReason})`);
    if (r === PARSE_ERROR && x >= 0) return f('split: prefix accepted, whole refused', `whole: refused (${whole.errorReason}); prefix of ${c} bytes accepted at ${x}`);
  }
  if (r < 0 || !whole.chunked) return undefined;
  const one = h1Body(bytes, r, { kind: 'chunked' }, MAX_HEAD);
  const dec = new ChunkedDecoder(MAX_HEAD);
  const parts: Buffer[] = [];
  const sink = { chunkData: (b: Buffer, s: number, e: number) => parts.push(Buffer.from(b.subarray(s, e))) };
  let pos = r;
  let end = -1;
  for (const c of [...points.filter((x) => x > r), bytes.length]) {
    // Each piece is its own Buffer, as reads are.
    const piece = Buffer.from(bytes.subarray(pos, c));
    const x = dec.feed(piece, 0, piece.length, sink);
    if (x === PARSE_ERROR) {
      end = -2;
      break;
    }
    if (x >= 0) {
      end = pos + x;
      break;
    }
    pos = c;
  }
  if (end !== one.end) return f('split: chunked body end differs', `in one piece: ${one.end}; in pieces at ${points.join(',')}: ${end}`);
  if (end >= 0 && !Buffer.concat(parts).equals(one.body)) return f('split: chunked body data differs', `${show(one.body, 0, 60)} vs ${show(Buffer.concat(parts), 0, 60)}`);
  return undefined;
}

// ---- generators ----

const lat = (s: string): Buffer => Buffer.from(s, 'latin1');
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&\'*+-.^_`|~'.split(''));
const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const valueChar = fc.constantFrom(...' abcdefxyz0189-_.,;:=/"()\t\x80\xff'.split(''));
const value = fc.string({ unit: valueChar, maxLength: 20 });
const pathChar = fc.constantFrom(...'abcxyz019-._~%2F/?=&;:@!$\'()*+,'.split(''));
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'PURGE', 'M-SEARCH');
const teValue = fc.oneof(
  fc.constantFrom('chunked', 'Chunked', 'CHUNKED', ' chunked', 'chunked ', 'gzip, chunked', 'identity, chunked', 'chunked, identity', ',chunked', 'chunked,', 'chunked, chunked', '"chunked"', 'chunked;a=b', 'xchunked', ''),
  fc.string({ unit: fc.constantFrom(...'chunkedCHUNKED ,;\t'.split('')), maxLength: 12 }),
);
const clValue = fc.oneof(fc.nat({ max: 40 }).map(String), fc.string({ unit: fc.constantFrom(...'0123456789+- ,\t'.split('')), minLength: 1, maxLength: 6 }));

/** A chunked body: chunk sizes (hex, any case, optional leading zeros), optional extensions and trailers. */
const chunkedBody = fc.record({
  chunks: fc.array(fc.record({ data: fc.string({ unit: fc.constantFrom(...'abc\r\n0;'.split('')), minLength: 1, maxLength: 12 }), upper: fc.boolean(), zeros: fc.nat({ max: 2 }), ext: fc.option(fc.constantFrom(';a', ';a=b', ';a="q"', ';a=b;c'), { nil: undefined }) }), { maxLength: 3 }),
  trailers: fc.array(fc.tuple(token, value), { maxLength: 2 }),
}).map(({ chunks, trailers }) => {
  let s = '';
  for (const c of chunks) {
    const hex = c.data.length.toString(16);
    s += `${'0'.repeat(c.zeros)}${c.upper ? hex.toUpperCase() : hex}${c.ext ?? ''}\r\n${c.data}\r\n`;
  }
  return `${s}0\r\n${trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
});

/** Valid-looking requests: the shapes the mutations start from. */
export const validRequest: fc.Arbitrary<Buffer> = fc.record({
  method,
  target: fc.oneof(fc.string({ unit: pathChar, maxLength: 16 }).map((p) => `/${p}`), fc.constantFrom('*', 'http://a.test/x', 'a.test:443')),
  minor: fc.constantFrom(0, 1, 1, 1),
  headers: fc.array(fc.tuple(token, value), { maxLength: 4 }),
  framing: fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.string({ maxLength: 12 }).map((b) => ({ kind: 'length' as const, body: b })),
    fc.tuple(chunkedBody, teValue).map(([b, te]) => ({ kind: 'chunked' as const, body: b, te })),
    fc.tuple(clValue, fc.string({ maxLength: 8 })).map(([cl, b]) => ({ kind: 'rawcl' as const, cl, body: b })),
  ),
  hostFirst: fc.boolean(),
  trailing: fc.constantFrom('', 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'),
}).map((x) => {
  const lines = [`${x.method} ${x.target} HTTP/1.${x.minor}`];
  const hs = x.headers.map(([n, v]) => `${n}: ${v}`);
  if (x.hostFirst) lines.push('Host: a.test', ...hs);
  else lines.push(...hs, 'Host: a.test');
  let body = '';
  if (x.framing.kind === 'length') {
    lines.push(`Content-Length: ${x.framing.body.length}`);
    body = x.framing.body;
  } else if (x.framing.kind === 'chunked') {
    lines.push(`Transfer-Encoding: ${x.framing.te}`);
    body = x.framing.body;
  } else if (x.framing.kind === 'rawcl') {
    lines.push(`Content-Length: ${x.framing.cl}`);
    body = x.framing.body;
  }
  return lat(`${lines.join('\r\n')}\r\n\r\n${body}${x.trailing}`);
});

/** Bytes a mutation inserts or writes: the ones parsers disagree about. */
const hotByte = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(13, 10, 0, 32, 9, 58, 44, 59, 34, 92, 0x0b, 0x0c, 0x7f, 0x80, 0xff) },
  { weight: 3, arbitrary: fc.constantFrom(...'0123456789+-'.split('').map((c) => c.charCodeAt(0))) },
  { weight: 3, arbitrary: fc.constantFrom(...'chunkedCHUNKEDtransfer-encodingTRANSFER-ENCODINGcontent-lengthhost'.split('').map((c) => c.charCodeAt(0))) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
);
const mutation = fc.record({
  op: fc.constantFrom('insert', 'delete', 'replace'), at: fc.nat(), byte: hotByte, count: fc.integer({ min: 1, max: 3 }),
  // Half the mutations land inside a framing header's line (Content-Length digits, Transfer-Encoding letters, their colon and spaces).
  framing: fc.boolean(),
});

/** Where the Content-Length or Transfer-Encoding line of a message is (from the name to the line end), if any. */
function framingLine(b: Buffer, pick: number): [number, number] | undefined {
  const s = b.toString('latin1').toLowerCase();
  const spots = [s.indexOf('content-length'), s.indexOf('transfer-encoding')].filter((i) => i >= 0);
  if (spots.length === 0) return undefined;
  const start = spots[pick % spots.length] as number;
  const end = s.indexOf('\n', start);
  return [start, end < 0 ? s.length : end];
}

export function mutate(b: Buffer, ms: { op: string; at: number; byte: number; count: number; framing?: boolean }[]): Buffer {
  let out = b;
  for (const m of ms) {
    const line = m.framing ? framingLine(out, m.at) : undefined;
    const at = line ? line[0] + (m.at % (line[1] - line[0] + 1)) : out.length === 0 ? 0 : m.at % out.length;
    if (m.op === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.alloc(m.count, m.byte), out.subarray(at)]);
    else if (m.op === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
    else {
      out = Buffer.from(out);
      for (let i = 0; i < m.count && at + i < out.length; i++) out[at + i] = m.byte;
    }
  }
  return out;
}

export const mutatedRequest: fc.Arbitrary<Buffer> = fc.tuple(validRequest, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms));

/** Random bytes from an HTTP-ish alphabet (pure random bytes almost never form a head). */
export const randomRequest: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
  fc.array(fc.oneof(
    fc.constantFrom('GET ', 'POST ', '/', ' HTTP/1.1', ' HTTP/1.0', '\r\n', '\n', '\r', 'Host: a', 'Content-Length: ', 'Transfer-Encoding: ', 'chunked', '0', '5', ':', ' ', '\t', '\x00', ';', ',', 'hello', 'x'),
  ), { maxLength: 40 }).map((parts) => lat(parts.join(''))),
);

export const validResponse: fc.Arbitrary<Buffer> = fc.record({
  minor: fc.constantFrom(0, 1),
  status: fc.oneof(fc.constantFrom(200, 204, 304, 404, 500, 100, 103), fc.integer({ min: 100, max: 599 })),
  reason: fc.string({ unit: valueChar, maxLength: 10 }),
  headers: fc.array(fc.tuple(token, value), { maxLength: 4 }),
  framing: fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.string({ maxLength: 12 }).map((b) => ({ kind: 'length' as const, body: b })),
    fc.tuple(chunkedBody, teValue).map(([b, te]) => ({ kind: 'chunked' as const, body: b, te })),
  ),
}).map((x) => {
  const interim = x.status < 200 ? `HTTP/1.1 ${x.status} Info\r\n\r\n` : '';
  const status = x.status < 200 ? 200 : x.status;
  const lines = [`HTTP/1.${x.minor} ${status} ${x.reason}`, ...x.headers.map(([n, v]) => `${n}: ${v}`)];
  let body = '';
  if (x.framing.kind === 'length') {
    lines.push(`Content-Length: ${x.framing.body.length}`);
    body = x.framing.body;
  } else if (x.framing.kind === 'chunked') {
    lines.push(`Transfer-Encoding: ${x.framing.te}`);
    body = x.framing.body;
  }
  return lat(`${interim}${lines.join('\r\n')}\r\n\r\n${body}`);
});

export const mutatedResponse: fc.Arbitrary<Buffer> = fc.tuple(validResponse, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms));

/** A valid request and cut points for the split property. */
export const splitCase: fc.Arbitrary<[Buffer, number[]]> = fc.tuple(validRequest, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }));

/** A finding as a paste-able report entry. */
export function formatFinding(f: Finding): string {
  return `${f.kind}\n  ${f.detail}\n  bytes (${f.bytes.length}): ${JSON.stringify(f.bytes.toString('latin1'))}`;
}

/**
 * Runs a property until `runs` inputs are spent, collecting one shrunk counterexample per kind of
 * finding: after a failure the kind is known and the hunt goes on (with the next seed) for other kinds.
 */
export function hunt<T>(arb: fc.Arbitrary<T>, check: (x: T) => Finding | undefined, o: { runs: number; seed: number; maxKinds?: number; minimize?: (b: Buffer) => Finding | undefined }): { findings: Finding[]; runs: number } {
  const known = new Set<string>();
  const findings: Finding[] = [];
  let left = o.runs;
  let done = 0;
  for (let k = 0; left > 0 && findings.length < (o.maxKinds ?? 50); k++) {
    const r = fc.check(fc.property(arb, (x) => {
      const f = check(x);
      return f === undefined || known.has(f.kind);
    }), { numRuns: left, seed: o.seed + k });
    done += r.numRuns;
    if (!r.failed || r.counterexample === null) break;
    const f = check(r.counterexample[0]);
    if (f === undefined) break; // not reproducible: cannot happen with pure checks
    known.add(f.kind);
    findings.push(o.minimize ? minimize(f, o.minimize) : f);
    left -= Math.max(1, r.numRuns);
  }
  return { findings, runs: done };
}

/**
 * Greedy byte-level reduction after fast-check's shrinking (which works on the generators' inputs, not
 * on the bytes): drop runs of bytes, then single bytes, while the same kind of finding remains.
 */
export function minimize(f: Finding, check: (b: Buffer) => Finding | undefined): Finding {
  let best = f;
  for (let size = Math.max(1, best.bytes.length >> 1); size >= 1; size = size >> 1) {
    let changed = true;
    while (changed) {
      changed = false;
      for (let i = 0; i + size <= best.bytes.length; i++) {
        const b = Buffer.concat([best.bytes.subarray(0, i), best.bytes.subarray(i + size)]);
        const g = check(b);
        if (g !== undefined && g.kind === best.kind) {
          best = g;
          changed = true;
          i--;
        }
      }
    }
  }
  return best;
}
