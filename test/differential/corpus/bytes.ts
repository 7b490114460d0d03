/** Bare CR, bare LF and NUL in every position of a request head, and line-ending tricks that hide or reveal a framing header. */
import type { Case, Step } from '../types.js';
import { msg, refused, web } from './dsl.js';

// The reference request: GET /x HTTP/1.1 CRLF Host: a.test CRLF X-A: b CRLF CRLF. Each position
// names where the byte goes (inserted, or replacing the separator it names).
const POSITIONS: { name: string; make: (b: string) => string }[] = [
  { name: 'before-method', make: (b) => `${b}GET /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'in-method', make: (b) => `G${b}ET /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'for-sp-after-method', make: (b) => `GET${b}/x HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'in-target', make: (b) => `GET /${b}x HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'for-sp-before-version', make: (b) => `GET /x${b}HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'in-version', make: (b) => `GET /x HT${b}TP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'after-version', make: (b) => `GET /x HTTP/1.1${b}\r\nHost: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'for-request-line-end', make: (b) => `GET /x HTTP/1.1${b}Host: a.test\r\nX-A: b\r\n\r\n` },
  { name: 'in-name', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-${b}A: b\r\n\r\n` },
  { name: 'before-colon', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-A${b}: b\r\n\r\n` },
  { name: 'value-start', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-A: ${b}b\r\n\r\n` },
  { name: 'in-value', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-A: b${b}c\r\n\r\n` },
  { name: 'value-end', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-A: b${b}\r\n\r\n` },
  { name: 'for-header-line-end', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test${b}X-A: b\r\n\r\n` },
  { name: 'for-head-end', make: (b) => `GET /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n${b}` },
  { name: 'in-host', make: (b) => `GET /x HTTP/1.1\r\nHost: a.${b}test\r\nX-A: b\r\n\r\n` },
];
const BYTES: { name: string; b: string }[] = [
  { name: 'cr', b: '\r' },
  { name: 'lf', b: '\n' },
  { name: 'nul', b: '\x00' },
];

// Where the Node plane (llhttp) reads a case differently from the fast plane, and safely.
const NODE: Record<string, Step[]> = {
  'byte-cr-before-method': [web('GET', '/x')],
  'byte-lf-before-method': [web('GET', '/x')],
};

function positionCases(): Case[] {
  const out: Case[] = [];
  for (const p of POSITIONS) {
    for (const { name, b } of BYTES) {
      const id = `byte-${name}-${p.name}`;
      out.push({ id, about: `a bare ${name.toUpperCase()} ${p.name.replace(/-/g, ' ')}`, send: p.make(b), expect: { fast: id === 'byte-cr-for-head-end' ? [] : [refused(400)], ...NODE[id] ? { node: NODE[id] } : { node: [refused(400)] } } });
    }
  }
  return out;
}

// Line endings that decide whether a framing header exists at all.
const tricks: Case[] = [
  { id: 'lf-hides-te', about: 'a bare LF makes "Transfer-Encoding" a header only for parsers that accept LF endings', send: `POST /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n0\r\n\r\nGET /s`, expect: { sy: [refused(400)] } },
  { id: 'cr-hides-te', about: 'a bare CR inside a value, followed by a framing header', send: `POST /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\rTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n0\r\n\r\nGET /s`, expect: { sy: [refused(400)] } },
  { id: 'lf-hides-cl', about: 'a bare LF before a Content-Length', send: `POST /x HTTP/1.1\r\nHost: a.test\r\nX-A: b\nContent-Length: 5\r\n\r\nhello`, expect: { sy: [refused(400)] } },
  { id: 'nul-in-te-name', about: 'a NUL inside the Transfer-Encoding name', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Transfer-\x00Encoding: chunked', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(400)] } },
  { id: 'lf-only-request', about: 'a request with LF line endings throughout', send: 'GET /x HTTP/1.1\nHost: a.test\n\n', expect: { sy: [refused(400)] } },
  { id: 'crlf-before-request', about: 'an empty line before the request line (RFC 9112 §2.2 allows ignoring it)', send: '\r\nGET /x HTTP/1.1\r\nHost: a.test\r\n\r\n', expect: { all: [web('GET', '/x')] } },
  { id: 'cr-cr-lf', about: 'CR CR LF as a line ending', send: 'GET /x HTTP/1.1\r\r\nHost: a.test\r\n\r\n', expect: { sy: [refused(400)] } },
  { id: 'del-in-value', about: 'DEL (0x7f) in a header value', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'X-A: b\x7fc']), expect: { sy: [refused(400)] } },
  { id: 'obs-text-value', about: 'obs-text (bytes ≥ 0x80) in a header value is allowed', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'X-A: caf\xe9']), expect: { all: [web('GET', '/x')] } },
];

export const cases: Case[] = [...positionCases(), ...tricks];
