/** Upgrade requests to a backend that does not switch protocols, a real 101, and strictness kept on a connection after HTTP/1.0, absolute-form and Upgrade requests. */
import type { Case } from '../types.js';
import { chunks, get, msg, refused, web } from './dsl.js';

const upg = (target: string, proto = 'foo'): string => msg([`GET ${target} HTTP/1.1`, 'Host: a.test', `Upgrade: ${proto}`, 'Connection: Upgrade']);
const DUP_HOST = msg(['GET /b HTTP/1.1', 'Host: a.test', 'Host: internal.test']);
const TE_ID = msg(['POST /b HTTP/1.1', 'Host: a.test', 'Transfer-Encoding: identity, chunked'], chunks('hello'));
const REFUSE = '/u?__resp=refuse-upgrade';
const refusedUpgrade = web('GET', REFUSE, { status: 426, resp: { headers: { 'x-why': 'no-such-protocol' }, bodyIncludes: '"service":"web"' } });
const V10 = msg(['GET /a HTTP/1.0', 'Host: a.test', 'Connection: keep-alive']);
const ABS = msg(['GET http://a.test/a HTTP/1.1', 'Host: a.test']);

export const cases: Case[] = [
  { id: 'upg-non101', about: 'a non-101 answer to an Upgrade is forwarded with its real status, headers and body', send: upg(REFUSE), expect: { sy: [refusedUpgrade] } },
  { id: 'upg-websocket-plain-backend', about: 'a WebSocket upgrade to a backend that answers 200', send: msg(['GET /ws HTTP/1.1', 'Host: a.test', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']), expect: { all: [web('GET', '/ws')] } },
  { id: 'upg-without-connection', about: 'Upgrade without Connection: upgrade is an ordinary request', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Upgrade: foo']), expect: { all: [web('GET', '/x')] } },
  { id: 'upg-h2c', about: 'an h2c upgrade (HTTP2-Settings) to an HTTP/1.1-only backend', send: msg(['GET /x HTTP/1.1', 'Host: a.test', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'Connection: Upgrade, HTTP2-Settings']), expect: { all: [web('GET', '/x')] } },
  { id: 'upg-101', about: 'a backend that does switch protocols (then echoes)', send: [upg('/u?__resp=101', 'echo'), 'ping'], expect: { sy: [web('GET', '/u?__resp=101', { status: 101 })] } },
  { id: 'upg-post-body', about: 'an Upgrade request with a body, answered without switching', send: msg(['POST /u?__resp=refuse-upgrade HTTP/1.1', 'Host: a.test', 'Upgrade: foo', 'Connection: Upgrade', 'Content-Length: 5'], 'hello'), expect: { fast: [web('POST', REFUSE, { status: 426, body: 'hello' })], node: [refused(400)] } },
  { id: 'upg-api-strip', about: 'an Upgrade request on the strip-prefix route', send: upg('/api/u?__resp=refuse-upgrade'), expect: { sy: [{ fwd: { to: 'api', method: 'GET', target: REFUSE }, status: 426 }] } },
  // One strictness on a connection: what the fast plane refuses stays refused after HTTP/1.0, absolute-form and
  // Upgrade requests. The node plane closes the connection after answering a refused Upgrade (Node hands the socket
  // over for good), so nothing follows there.
  { id: 'upg-then-dup-host', about: 'after a refused Upgrade, a request with two Host headers', send: upg(REFUSE) + DUP_HOST, expect: { fast: [refusedUpgrade, refused(400)], node: [refusedUpgrade] } },
  { id: 'upg-then-te-identity', about: 'after a refused Upgrade, Transfer-Encoding: identity, chunked', send: upg(REFUSE) + TE_ID, expect: { fast: [refusedUpgrade, refused(501)], node: [refusedUpgrade] } },
  { id: 'upg-then-lower-method', about: 'after a refused Upgrade, a lowercase method', send: upg(REFUSE) + msg(['get /b HTTP/1.1', 'Host: a.test']), expect: { fast: [refusedUpgrade, refused(400)], node: [refusedUpgrade] } },
  { id: 'v10-then-dup-host', about: 'after an HTTP/1.0 keep-alive request, two Host headers', send: V10 + DUP_HOST, expect: { sy: [web('GET', '/a'), refused(400)] } },
  { id: 'v10-then-te-identity', about: 'after an HTTP/1.0 keep-alive request, Transfer-Encoding: identity, chunked', send: V10 + TE_ID, expect: { sy: [web('GET', '/a'), refused(501)] } },
  { id: 'v10-then-conn-cl', about: 'after an HTTP/1.0 keep-alive request, Connection: Content-Length', send: V10 + msg(['POST /b HTTP/1.1', 'Host: a.test', 'Connection: Content-Length', 'Content-Length: 5'], 'hello'), expect: { sy: [web('GET', '/a'), refused(400)] } },
  { id: 'abs-then-dup-host', about: 'after an absolute-form request, two Host headers', send: ABS + DUP_HOST, expect: { sy: [web('GET', '/a'), refused(400)] } },
  { id: 'abs-then-te-identity', about: 'after an absolute-form request, Transfer-Encoding: identity, chunked', send: ABS + TE_ID, expect: { sy: [web('GET', '/a'), refused(501)] } },
  { id: 'abs-then-get', about: 'after an absolute-form request, an ordinary one', send: ABS + get('/b'), expect: { all: [web('GET', '/a'), web('GET', '/b')] } },
];
