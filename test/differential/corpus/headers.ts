/** Header lines: obs-fold, odd header names, Host, Connection naming framing or routing headers, Expect. */
import type { Case } from '../types.js';
import { SMUGGLED, api, chunks, fwd, get, msg, refused, web } from './dsl.js';

const obsFold: Case[] = [
  { id: 'fold-value', about: 'obs-fold continuation of a header value', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'X-A: a', ' b']), expect: { sy: [refused(400)] } },
  { id: 'fold-tab', about: 'obs-fold with a tab', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'X-A: a', '\tb']), expect: { sy: [refused(400)] } },
  { id: 'fold-host', about: 'a folded Host: which host did the route see?', send: msg(['GET /x HTTP/1.1', 'Host: a.test', ' internal.test']), expect: { sy: [refused(400)] } },
  { id: 'fold-cl', about: 'a folded Content-Length value', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Content-Length:', ' 5'], 'hello'), expect: { sy: [refused(400)] } },
  { id: 'fold-first-line', about: 'the first header line starts with whitespace', send: msg(['GET /x HTTP/1.1', ' Host: a.test']), expect: { sy: [refused(400)] } },
];

const NAMES: { name: string; line: string }[] = [
  { name: 'space-before-colon', line: 'X-A : b' },
  { name: 'tab-before-colon', line: 'X-A\t: b' },
  { name: 'space-inside', line: 'X A: b' },
  { name: 'parens', line: 'X(A): b' },
  { name: 'at', line: 'X@A: b' },
  { name: 'quote', line: '"X-A": b' },
  { name: 'slash', line: 'X/A: b' },
  { name: 'brackets', line: '[X-A]: b' },
  { name: 'del', line: 'X\x7fA: b' },
  { name: 'high-byte', line: 'X\xffA: b' },
  { name: 'empty', line: ': b' },
  { name: 'no-colon', line: 'X-A b' },
  { name: 'host-space-colon', line: 'Host : internal.test' },
];

const names: Case[] = [
  ...NAMES.map((n): Case => ({ id: `name-${n.name}`, about: `header line ${JSON.stringify(n.line)}`, send: msg(['GET /x HTTP/1.1', 'Host: a.test', n.line]), expect: { sy: [refused(400)] } })),
  { id: 'name-underscore', about: 'an underscore in a header name is a token character (nginx drops such headers by default)', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'X_A: b']), expect: { all: [web('GET', '/x')] } },
  { id: 'name-cl-underscore', about: 'Content_Length is not Content-Length: the body is not framed by it', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Content_Length: 9'], 'hello\r\n\r\n'), expect: { sy: [web('POST', '/x', { body: '' }), refused(400)] } },
];

const host: Case[] = [
  { id: 'host-dup-same', about: 'two identical Host headers', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'host-dup-differ', about: 'two different Host headers: which one routes?', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Host: internal.test']), expect: { sy: [refused(400)] } },
  { id: 'host-missing', about: 'HTTP/1.1 without Host', send: msg(['GET /x HTTP/1.1', 'X-A: b']), expect: { sy: [refused(400)] } },
  { id: 'host-empty', about: 'an empty Host (RFC 9112 §3.2: what a client sends for a target without authority)', send: msg(['GET /x HTTP/1.1', 'Host:']), expect: { sy: [web('GET', '/x', { host: '' })] }, nginxRefusalIsNotAmbiguity: 'nginx 1.22 refuses an empty Host (400), which RFC 9112 §3.2 allows; there is one Host and its value is unambiguous' },
  { id: 'host-route', about: 'a Host with its own route', send: get('/x', [], 'internal.test'), expect: { all: [fwd('internal', 'GET', '/x', { host: 'internal.test' })] } },
  { id: 'host-upper', about: 'host names route case-insensitively', send: get('/x', [], 'INTERNAL.test'), expect: { all: [fwd('internal', 'GET', '/x')] } },
  { id: 'host-port', about: 'a Host with a port routes on the name', send: get('/x', [], 'internal.test:8080'), expect: { all: [fwd('internal', 'GET', '/x')] } },
  { id: 'host-trailing-dot', about: 'a fully qualified Host (trailing dot)', send: get('/x', [], 'internal.test.'), expect: { sy: [fwd('internal', 'GET', '/x', { host: 'internal.test.' })] } },
  { id: 'host-space', about: 'a space inside Host (not a valid authority: which host is it?)', send: get('/x', [], 'internal.test x'), expect: { sy: [refused(400)] } },
  { id: 'host-userinfo', about: 'userinfo-looking Host', send: get('/x', [], 'a.test@internal.test'), expect: { sy: [refused(400)] } },
  { id: 'host-ipv6', about: 'an IPv6 literal Host', send: get('/x', [], '[::1]:80'), expect: { all: [web('GET', '/x')] } },
  { id: 'host-path', about: 'a Host with a path in it', send: get('/x', [], 'internal.test/../a'), expect: { sy: [refused(400)] } },
  { id: 'host-tab', about: 'a Host with a trailing tab (OWS for llhttp, part of the value for nginx)', send: get('/x', [], 'internal.test\t'), expect: { fast: [refused(400)], node: [fwd('internal', 'GET', '/x', { host: 'internal.test' })] } },
];

// Connection naming end-to-end framing or routing headers on a request: refused (docs/security.md, hop-by-hop headers).
const conn: Case[] = [
  { id: 'conn-cl-smuggle', about: 'Connection: Content-Length with a request in the body (the fast plane once dropped the length and forwarded the body as a request)', send: msg(['POST /public HTTP/1.1', 'Host: a.test', 'Connection: Content-Length', `Content-Length: ${SMUGGLED.length}`], SMUGGLED), expect: { sy: [refused(400)] } },
  { id: 'conn-cl-lower', about: 'Connection: content-length', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Connection: content-length', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(400)] } },
  { id: 'conn-cl-upper', about: 'Connection: CONTENT-LENGTH', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Connection: CONTENT-LENGTH', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(400)] } },
  { id: 'conn-te', about: 'Connection: Transfer-Encoding with a chunked body', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Connection: Transfer-Encoding', 'Transfer-Encoding: chunked'], chunks('hello')), expect: { sy: [refused(400)] } },
  { id: 'conn-host', about: 'Connection: Host (strips Host on a proxy that obeys it)', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: Host']), expect: { sy: [refused(400)] } },
  { id: 'conn-close-cl', about: 'Connection: close, Content-Length', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Connection: close, Content-Length', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(400)] } },
  { id: 'conn-keepalive-host', about: 'Connection: keep-alive, Host', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: keep-alive, Host']), expect: { sy: [refused(400)] } },
  { id: 'conn-second-field', about: 'Host named in a second Connection field', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: close', 'Connection: Host']), expect: { sy: [refused(400)] } },
  { id: 'conn-empty-elements', about: 'Connection: ,Host,', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: ,Host,']), expect: { sy: [refused(400)] } },
  { id: 'conn-no-cl-present', about: 'Connection names Content-Length on a request without a body', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: Content-Length']), expect: { sy: [refused(400)] } },
  { id: 'conn-other-name', about: 'Connection naming an ordinary header is fine (that header is dropped)', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: X-Foo', 'X-Foo: 1']), expect: { all: [web('GET', '/x', { host: 'a.test' })] } },
  { id: 'conn-te-header', about: 'Connection: TE (the TE request header is hop-by-hop anyway)', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Connection: TE', 'TE: trailers']), expect: { all: [web('GET', '/x')] } },
  { id: 'conn-proxy-connection', about: 'Proxy-Connection naming Content-Length is not Connection: ignored', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Proxy-Connection: Content-Length', 'Content-Length: 5'], 'hello'), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'conn-cl-then-get', about: 'Connection: Content-Length, then a pipelined request that must not be served', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Connection: Content-Length', 'Content-Length: 5'], 'hello') + get('/next'), expect: { sy: [refused(400)] } },
  { id: 'conn-host-api', about: 'Connection: Host on the strip-prefix route', send: msg(['GET /api/x HTTP/1.1', 'Host: a.test', 'Connection: Host']), expect: { sy: [refused(400)] } },
];

const expect100: Case[] = [
  { id: 'expect-100', about: 'Expect: 100-continue with a body', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect: 100-continue', 'Content-Length: 5'], 'hello'), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'expect-100-case', about: 'Expect: 100-Continue (case-insensitive)', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect: 100-Continue', 'Content-Length: 5'], 'hello'), expect: { sy: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'expect-100-chunked', about: 'Expect: 100-continue with a chunked body', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect: 100-continue', 'Transfer-Encoding: chunked'], chunks('hello')), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'expect-100-no-body', about: 'Expect: 100-continue on a GET without a body', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Expect: 100-continue']), expect: { all: [web('GET', '/x')] } },
  { id: 'expect-unknown', about: 'an expectation nobody can meet', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect: teapot', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(417)] } },
  { id: 'expect-list', about: 'Expect: 100-continue, foo', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect: 100-continue, foo', 'Content-Length: 5'], 'hello'), expect: { fast: [refused(417)], node: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'expect-empty', about: 'an empty Expect', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Expect:', 'Content-Length: 5'], 'hello'), expect: { sy: [refused(417)] } },
  { id: 'expect-http10', about: 'Expect on HTTP/1.0 (RFC 9110: ignore it)', send: msg(['POST /x HTTP/1.0', 'Host: a.test', 'Expect: 100-continue', 'Content-Length: 5'], 'hello'), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'expect-100-api', about: 'Expect: 100-continue on the strip-prefix route', send: msg(['POST /api/x HTTP/1.1', 'Host: a.test', 'Expect: 100-continue', 'Content-Length: 5'], 'hello'), expect: { all: [api('POST', '/x', { body: 'hello' })] } },
];

export const cases: Case[] = [...obsFold, ...names, ...host, ...conn, ...expect100];
