/** Request-line forms: absolute-form, CONNECT, asterisk-form, authority-form; HTTP versions; methods. */
import type { Case } from '../types.js';
import { GARBLED, api, fwd, get, msg, refused, web } from './dsl.js';

const absolute: Case[] = [
  { id: 'abs-host-route', about: 'absolute-form routes on its authority and forwards Host = that authority', send: msg(['GET http://internal.test/x HTTP/1.1', 'Host: a.test']), expect: { sy: [fwd('internal', 'GET', '/x', { host: 'internal.test' })] } },
  { id: 'abs-same-host', about: 'absolute-form whose authority matches Host', send: msg(['GET http://a.test/x?q=1 HTTP/1.1', 'Host: a.test']), expect: { all: [web('GET', '/x?q=1', { host: 'a.test' })] } },
  { id: 'abs-https', about: 'https absolute-form', send: msg(['GET https://a.test/x HTTP/1.1', 'Host: a.test']), expect: { sy: [web('GET', '/x', { host: 'a.test' })] } },
  { id: 'abs-api-strip', about: 'absolute-form on the strip-prefix route', send: msg(['GET http://a.test/api/users HTTP/1.1', 'Host: a.test']), expect: { all: [api('GET', '/users', { host: 'a.test' })] } },
  { id: 'abs-no-path', about: 'absolute-form without a path', send: msg(['GET http://a.test HTTP/1.1', 'Host: a.test']), expect: { sy: [web('GET', '/', { host: 'a.test' })] } },
  { id: 'abs-port', about: 'absolute-form with a port routes on the name, Host keeps the port', send: msg(['GET http://internal.test:8080/x HTTP/1.1', 'Host: a.test']), expect: { sy: [fwd('internal', 'GET', '/x', { host: 'internal.test:8080' })] } },
  { id: 'abs-upper-scheme', about: 'the scheme is case-insensitive', send: msg(['GET HTTP://internal.test/x HTTP/1.1', 'Host: a.test']), expect: { sy: [fwd('internal', 'GET', '/x')] } },
  { id: 'abs-ftp', about: 'a scheme other than http/https', send: msg(['GET ftp://internal.test/x HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'abs-no-host-header', about: 'absolute-form without a Host header', send: msg(['GET http://internal.test/x HTTP/1.1']), expect: { sy: [refused(400)] } },
  { id: 'abs-userinfo', about: 'userinfo in the authority (RFC 9110 §4.2.4: must not be sent)', send: msg(['GET http://a.test@internal.test/x HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'abs-empty-authority', about: 'http:/// (empty authority)', send: msg(['GET http:///x HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'abs-dot-segments', about: 'absolute-form with dot segments climbing out of the api prefix', send: msg(['GET http://a.test/api/../admin HTTP/1.1', 'Host: a.test']), expect: { sy: [web('GET', '/admin')] } },
  { id: 'abs-post-body', about: 'absolute-form POST with a body', send: msg(['POST http://internal.test/x HTTP/1.1', 'Host: a.test', 'Content-Length: 5'], 'hello'), expect: { sy: [fwd('internal', 'POST', '/x', { host: 'internal.test', body: 'hello' })] } },
];

const other: Case[] = [
  { id: 'connect-authority', about: 'CONNECT to host:port', send: msg(['CONNECT internal.test:443 HTTP/1.1', 'Host: internal.test:443']), expect: { sy: [refused(400)] } },
  { id: 'connect-path', about: 'CONNECT with an origin-form target', send: msg(['CONNECT /x HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'connect-tunnel-bytes', about: 'CONNECT followed by what would be tunnelled bytes', send: msg(['CONNECT internal.test:80 HTTP/1.1', 'Host: internal.test:80']) + get('/tunnelled'), expect: { sy: [refused(400)] } },
  { id: 'asterisk-options', about: 'OPTIONS * (a client error the Node plane once charged to healthy instances, ejecting them)', send: msg(['OPTIONS * HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'asterisk-get', about: 'asterisk-form with GET', send: msg(['GET * HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'asterisk-then-get', about: 'OPTIONS * then a pipelined GET', send: msg(['OPTIONS * HTTP/1.1', 'Host: a.test']) + get('/next'), expect: { sy: [refused(400)] } },
  { id: 'authority-form-get', about: 'authority-form with GET', send: msg(['GET a.test:80 HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'target-query-only', about: 'a target that starts with "?"', send: msg(['GET ?x=1 HTTP/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'target-fragment', about: 'a fragment in the target (never sent by clients): passed on as it came', send: get('/x#frag'), expect: { all: [web('GET', '/x#frag')] } },
  { id: 'target-high-byte', about: 'a raw byte ≥ 0x80 in the target (llhttp and nginx refuse it)', send: get('/caf\xe9'), expect: { sy: [refused(400)] } },
  { id: 'target-double-space', about: 'two spaces between method and target', send: 'GET  /x HTTP/1.1\r\nHost: a.test\r\n\r\n', expect: { fast: [refused(400)], node: [web('GET', '/x')] } },
  { id: 'target-space-before-version', about: 'two spaces before the version', send: 'GET /x  HTTP/1.1\r\nHost: a.test\r\n\r\n', expect: { fast: [refused(400)], node: [web('GET', '/x')] } },
  { id: 'target-trailing-space', about: 'a space after the version', send: 'GET /x HTTP/1.1 \r\nHost: a.test\r\n\r\n', expect: { sy: [refused(400)] } },
  { id: 'target-long', about: 'a 20 000-byte target', send: get(`/${'a'.repeat(20000)}`), expect: { sy: [refused(431)] } },
];

const versions: Case[] = [
  { id: 'v10-no-host', about: 'HTTP/1.0 without Host', send: 'GET /x HTTP/1.0\r\n\r\n', expect: { all: [web('GET', '/x')] } },
  { id: 'v10-host', about: 'HTTP/1.0 with Host', send: msg(['GET /x HTTP/1.0', 'Host: internal.test']), expect: { all: [fwd('internal', 'GET', '/x', { host: 'internal.test' })] } },
  { id: 'v10-keepalive-pipeline', about: 'HTTP/1.0 keep-alive then a second request', send: msg(['GET /a HTTP/1.0', 'Host: a.test', 'Connection: keep-alive']) + msg(['GET /b HTTP/1.0', 'Host: a.test']), expect: { all: [web('GET', '/a'), web('GET', '/b')] } },
  { id: 'v09-bare', about: 'an HTTP/0.9 request line (no version)', send: 'GET /x\r\n\r\n', expect: { sy: [refused(400)] } },
  { id: 'v09-explicit', about: 'HTTP/0.9 named', send: msg(['GET /x HTTP/0.9', 'Host: a.test']), expect: { fast: [refused(505)], node: [refused(400)] } },
  { id: 'v20', about: 'HTTP/2.0 in an HTTP/1 request line', send: msg(['GET /x HTTP/2.0', 'Host: a.test']), expect: { fast: [refused(505)], node: [refused(400)] } },
  { id: 'v12', about: 'HTTP/1.2', send: msg(['GET /x HTTP/1.2', 'Host: a.test']), expect: { fast: [refused(505)], node: [refused(400)] } },
  { id: 'v30', about: 'HTTP/3.0', send: msg(['GET /x HTTP/3.0', 'Host: a.test']), expect: { fast: [refused(505)], node: [refused(400)] } },
  { id: 'v99', about: 'HTTP/9.9', send: msg(['GET /x HTTP/9.9', 'Host: a.test']), expect: { fast: [refused(505)], node: [refused(400)] } },
  { id: 'v-lowercase', about: 'http/1.1', send: msg(['GET /x http/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'v-leading-zero', about: 'HTTP/01.1', send: msg(['GET /x HTTP/01.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'v-two-digit-minor', about: 'HTTP/1.10', send: msg(['GET /x HTTP/1.10', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'v-no-minor', about: 'HTTP/1', send: msg(['GET /x HTTP/1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  { id: 'v-garbage', about: 'a version that is not one', send: msg(['GET /x FOO/1.1', 'Host: a.test']), expect: { sy: [refused(400)] } },
  // With HTTP/2 on (the default), the preface as a connection's first bytes is h2c with prior knowledge: the
  // HTTP/2 plane answers with its SETTINGS frame, which is no HTTP/1 response (lb-fast.test.ts covers the
  // preface refused 505 with http2 off, lb-h2.test.ts what the HTTP/2 plane does with the connection).
  { id: 'v-h2-preface', about: 'the HTTP/2 connection preface as the first bytes of a plain connection (h2c prior knowledge)', send: 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: { sy: [GARBLED] } },
  // Only a connection's first bytes are looked at: after an HTTP/1 request the preface is an HTTP/1 head with version 2.0.
  { id: 'v-h2-preface-after-h1', about: 'the HTTP/2 preface after an HTTP/1 request on the same connection is not a switch to HTTP/2', send: msg(['GET /x HTTP/1.1', 'Host: a.test']) + 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', expect: { sy: [web('GET', '/x', { host: 'a.test' }), refused(400)], fast: [web('GET', '/x', { host: 'a.test' }), refused(505)] } },
];

const METHODS: { id: string; m: string; ok: boolean }[] = [
  { id: 'lower', m: 'get', ok: false },
  { id: 'title', m: 'Get', ok: false },
  { id: 'mixed', m: 'gET', ok: false },
  { id: 'digit', m: 'GET1', ok: false },
  { id: 'at', m: 'G@T', ok: false },
  { id: 'dot', m: 'G.T', ok: false },
  { id: 'bang', m: 'G!T', ok: false },
  { id: 'm-search', m: 'M-SEARCH', ok: true },
  { id: 'purge', m: 'PURGE', ok: true },
  { id: 'propfind', m: 'PROPFIND', ok: true },
  { id: 'underscore', m: 'FOO_BAR', ok: true },
  { id: 'dash', m: 'X-CUSTOM', ok: true },
  { id: 'long', m: 'A'.repeat(100), ok: true },
];

const methods: Case[] = [
  ...METHODS.map((x): Case => ({
    id: `method-${x.id}`,
    about: `method ${JSON.stringify(x.m.length > 20 ? `${x.m.slice(0, 10)}… (${x.m.length})` : x.m)}`,
    send: msg([`${x.m} /x HTTP/1.1`, 'Host: a.test']),
    // llhttp (the recording backend, like any Node server) knows a fixed list of methods: a policy-valid
    // method outside it is forwarded and refused by the backend itself.
    expect: {
      fast: x.ok ? (['M-SEARCH', 'PURGE', 'PROPFIND'].includes(x.m) ? [web(x.m, '/x')] : [{ backendRefused: 400 }]) : [refused(400)],
      // The Node plane's llhttp front refuses what it does not know, as the backend does.
      node: ['M-SEARCH', 'PURGE', 'PROPFIND'].includes(x.m) ? [web(x.m, '/x')] : [refused(400)],
    },
  })),
  { id: 'method-empty', about: 'no method (the line starts with a space)', send: ' /x HTTP/1.1\r\nHost: a.test\r\n\r\n', expect: { sy: [refused(400)] } },
  { id: 'method-tab', about: 'a tab between method and target', send: 'GET\t/x HTTP/1.1\r\nHost: a.test\r\n\r\n', expect: { sy: [refused(400)] } },
  { id: 'method-trace', about: 'TRACE is a valid method (nginx refuses it as a matter of policy)', send: msg(['TRACE /x HTTP/1.1', 'Host: a.test']), expect: { sy: [web('TRACE', '/x')] }, nginxRefusalIsNotAmbiguity: 'nginx answers TRACE with 405 by policy (it never proxies TRACE); the request itself is unambiguous' },
  { id: 'method-lower-then-get', about: 'a lowercase method, then a pipelined GET that must not be served', send: msg(['get /x HTTP/1.1', 'Host: a.test']) + get('/next'), expect: { sy: [refused(400)] } },
];

export const cases: Case[] = [...absolute, ...other, ...versions, ...methods];
