// The fast data plane's HTTP/1.1 parser: strictness is the point (what it refuses, it refuses so
// that no upstream can read a message differently), and incremental parsing must not care where
// reads split the bytes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONN_CLOSE, CONN_KEEP_ALIVE, CONN_OTHER, CONN_UPGRADE, ChunkedDecoder, H_CONTENT_LENGTH, H_HOST, H_OTHER, H_TRANSFER_ENCODING, H_X_FORWARDED_FOR,
  Head, NEED_MORE, PARSE_ERROR, keepAliveTimeoutMs, parseRequestHead, parseResponseHead,
} from '../../src/core/http1/h1.js';
import type { ChunkSink } from '../../src/core/http1/h1.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function req(s: string, max = 16 * 1024): { r: number; p: Head; buf: Buffer } {
  const p = new Head();
  const buf = b(s);
  return { r: parseRequestHead(buf, 0, buf.length, p, max), p, buf };
}

function rejects(s: string, status: number, reason: RegExp): void {
  const { r, p } = req(s);
  assert.equal(r, PARSE_ERROR, `${JSON.stringify(s)} must be refused`);
  assert.equal(p.errorStatus, status, `${JSON.stringify(s)}: ${p.errorReason}`);
  assert.match(p.errorReason, reason);
}

describe('request heads', () => {
  it('parses a request line and headers into offsets, kinds and framing facts', () => {
    const s = 'GET /a/b?c=1 HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 0\r\nX-Other:  spaced value  \r\n\r\nNEXT';
    const { r, p, buf } = req(s);
    assert.equal(r, s.indexOf('NEXT'));
    assert.equal(p.method, 'GET');
    assert.equal(buf.latin1Slice(p.targetStart, p.targetEnd), '/a/b?c=1');
    assert.equal(p.versionMinor, 1);
    assert.equal(p.count, 4);
    assert.deepEqual([...p.kind.subarray(0, 4)], [H_HOST, H_X_FORWARDED_FOR, H_CONTENT_LENGTH, H_OTHER]);
    assert.equal(p.value(buf, p.hostIndex), 'example.com');
    assert.equal(p.value(buf, 3), 'spaced value', 'optional whitespace around values is trimmed');
    assert.equal(p.contentLength, 0);
    assert.equal(p.xff, 1);
    assert.equal(p.get(buf, 'x-other'), 'spaced value');
    assert.equal(p.get(buf, 'missing'), undefined);
  });

  it('gives the same result wherever the bytes are split (NEED_MORE until complete)', () => {
    const s = 'POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n';
    for (let cut = 0; cut < s.length; cut++) {
      const p = new Head();
      const part = b(s.slice(0, cut));
      assert.equal(parseRequestHead(part, 0, part.length, p, 16384), NEED_MORE, `cut at ${cut}`);
    }
    const { r, p, buf } = req(s);
    assert.equal(r, s.length);
    assert.equal(p.chunked, true);
    assert.equal(p.kind[1], H_TRANSFER_ENCODING);
    assert.equal(p.get(buf, 'cookie'), 'a=1; b=2', 'cookies join as Node joins them');
  });

  it('skips a stray CRLF before the request line, and classifies Connection tokens', () => {
    const { r, p } = req('\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Upgrade, X-Secret\r\nconnection: close\r\n\r\n');
    assert.ok(r > 0);
    assert.equal(p.start, 2);
    assert.equal(p.connection, CONN_KEEP_ALIVE | CONN_UPGRADE | CONN_OTHER | CONN_CLOSE);
  });

  it('accepts HTTP/1.0 without Host; refuses raw bytes ≥ 0x80 in the target (llhttp and nginx refuse them too)', () => {
    assert.ok(req('GET / HTTP/1.0\r\n\r\n').r > 0);
    rejects('GET /caf\xe9 HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid character in request target/);
  });

  it('refuses request smuggling shapes with 400', () => {
    rejects('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /both Content-Length and Transfer-Encoding/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', 400, /both Content-Length and Transfer-Encoding/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400, /more than one Content-Length/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 400, /more than one Content-Length/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n', 400, /invalid Content-Length/);
    for (const v of ['-1', '+5', '0x10', '1 2', '', '1234567890123456']) rejects(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${v}\r\n\r\n`, 400, /invalid Content-Length/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 400, /must end with chunked/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /must end with chunked \(once\)/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n', 400, /must end with chunked/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n', 400, /must end with chunked/);
    rejects('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /HTTP\/1\.0/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501, /other than chunked/);
    rejects('GET / HTTP/1.1\r\nHost: h\r\n Folded: continuation\r\n\r\n', 400, /obsolete line folding/);
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n', 400, /obsolete line folding/);
    rejects('GET / HTTP/1.1\r\nHost : h\r\n\r\n', 400, /whitespace between header name and colon/);
    rejects('GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n', 400, /bare LF/);
    rejects('GET / HTTP/1.1\nHost: h\r\n\r\n', 400, /bare LF/);
    rejects('GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n', 400, /CR not followed by LF/);
    rejects('GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n', 400, /invalid character in header value/);
    rejects('GET / HTTP/1.1\r\nHo(st: h\r\n\r\n', 400, /invalid character in header name/);
    rejects('GET / HTTP/1.1\r\n: empty\r\n\r\n', 400, /empty header name/);
    rejects('GET / HTTP/1.1\r\nNoColon\r\n\r\n', 400, /without a colon/);
    rejects('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /more than one Host/);
    rejects('GET / HTTP/1.1\r\nX: y\r\n\r\n', 400, /missing Host/);
    rejects('GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid HTTP version/);
    rejects('GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid character in request target/);
    rejects('GET  / HTTP/1.1\r\nHost: h\r\n\r\n', 400, /missing request target/);
    rejects('G@T / HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid method/);
    // Methods are case-sensitive tokens: nginx and Node refuse `get`, so do we.
    rejects('get / HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid method/);
    rejects('Get / HTTP/1.1\r\nHost: h\r\n\r\n', 400, /invalid method/);
    // Connection may not turn framing or routing headers into hop-by-hop ones.
    rejects('POST / HTTP/1.1\r\nHost: h\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello', 400, /Connection names Content-Length/);
    rejects('POST / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, /Connection names/);
    rejects('GET / HTTP/1.1\r\nHost: h\r\nConnection: host\r\n\r\n', 400, /Connection names/);
    rejects('GET / HTTX/1.1\r\nHost: h\r\n\r\n', 400, /invalid HTTP version/);
    rejects('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, /HTTP\/1\.0 and HTTP\/1\.1/);
  });

  it('refuses oversized heads and too many fields with 431, complete or not', () => {
    const big = `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'x'.repeat(5000)}\r\n\r\n`;
    const { r, p } = req(big, 4096);
    assert.equal(r, PARSE_ERROR);
    assert.equal(p.errorStatus, 431);
    const partial = req(`GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'x'.repeat(5000)}`, 4096);
    assert.equal(partial.r, PARSE_ERROR);
    assert.equal(partial.p.errorStatus, 431);
    const longLine = req(`GET /${'a'.repeat(5000)}`, 4096);
    assert.equal(longLine.p.errorStatus, 431);
    let many = 'GET / HTTP/1.1\r\nHost: h\r\n';
    for (let i = 0; i < 200; i++) many += `X-${i}: v\r\n`;
    const m = req(`${many}\r\n`);
    assert.equal(m.r, PARSE_ERROR);
    assert.equal(m.p.errorStatus, 431);
    assert.match(m.p.errorReason, /more than 128 header fields/);
  });
});

describe('response heads', () => {
  const res = (s: string): { r: number; p: Head; buf: Buffer } => {
    const p = new Head();
    const buf = b(s);
    return { r: parseResponseHead(buf, 0, buf.length, p, 65536), p, buf };
  };

  it('parses status lines with and without a reason, and the framing headers', () => {
    const a = res('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=5, max=100\r\n\r\nabc');
    assert.equal(a.r, a.buf.length - 3);
    assert.equal(a.p.status, 200);
    assert.equal(a.p.contentLength, 3);
    assert.equal(keepAliveTimeoutMs(a.buf, a.p), 5000);
    const n = res('HTTP/1.0 204\r\nConnection: close\r\n\r\n');
    assert.ok(n.r > 0);
    assert.equal(n.p.status, 204);
    assert.equal(n.p.versionMinor, 0);
    assert.equal(n.p.connection, CONN_CLOSE);
    assert.equal(res('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n').p.status, 103);
  });

  it('refuses malformed or ambiguous responses as 502', () => {
    for (const s of [
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      'HTTP/1.1 2000 OK\r\n\r\n',
      'HTTP/1.1 099 Low\r\n\r\n',
      'HTTX/1.1 200 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    ]) {
      const { r, p } = res(s);
      assert.equal(r, PARSE_ERROR, JSON.stringify(s));
      assert.equal(p.errorStatus, 502, `${JSON.stringify(s)}: ${p.errorReason}`);
    }
  });
});

describe('chunked bodies', () => {
  class Collect implements ChunkSink {
    parts: string[] = [];
    chunkData(buf: Buffer, s: number, e: number): void {
      this.parts.push(buf.latin1Slice(s, e));
    }
  }

  it('decodes sizes, extensions and trailers, byte by byte as well as at once, and reports where the body ended', () => {
    const body = '5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n';
    const whole = b(`${body}NEXT`);
    const dec = new ChunkedDecoder();
    const sink = new Collect();
    assert.equal(dec.feed(whole, 0, whole.length, sink), body.length);
    assert.equal(sink.parts.join(''), 'hello0123456789');
    const slow = new ChunkedDecoder();
    const sink2 = new Collect();
    let end = NEED_MORE;
    for (let i = 0; i < whole.length && end === NEED_MORE; i++) end = slow.feed(whole, i, i + 1, sink2);
    assert.equal(end, body.length);
    assert.equal(sink2.parts.join(''), 'hello0123456789');
  });

  it('refuses bad chunk framing', () => {
    for (const [s, reason] of [
      ['zz\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
      ['0x5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
      [' 5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
      ['5 \r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
      ['-5\r\nhello\r\n0\r\n\r\n', /invalid chunk size/],
      ['5\nhello\r\n0\r\n\r\n', /bare LF/],
      ['5\r\nhello!\r\n0\r\n\r\n', /longer than its size/],
      ['5\r\nhello\n0\r\n\r\n', /longer than its size|CR not followed/],
      ['1000000000000\r\n', /chunk size too large/],
      ['5;ext\x00\r\nhello\r\n0\r\n\r\n', /chunk extension/],
      ['0\r\n folded: x\r\n\r\n', /obsolete line folding/],
      ['0\r\n\r\r', /CR not followed by LF/],
    ] as const) {
      const dec = new ChunkedDecoder();
      const buf = b(s);
      assert.equal(dec.feed(buf, 0, buf.length, null), PARSE_ERROR, JSON.stringify(s));
      assert.match(dec.error, reason, JSON.stringify(s));
    }
  });

  it('bounds the trailer section', () => {
    const dec = new ChunkedDecoder(64);
    const buf = b(`0\r\nX-Long: ${'y'.repeat(100)}\r\n\r\n`);
    assert.equal(dec.feed(buf, 0, buf.length, null), PARSE_ERROR);
    assert.match(dec.error, /trailer section too large/);
  });
});
