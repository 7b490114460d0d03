/** Pipelining: several requests in one write, and what happens to the ones after an error or a close. */
import type { Case } from '../types.js';
import { chunks, get, msg, post, refused, web } from './dsl.js';

export const cases: Case[] = [
  { id: 'pipe-three', about: 'three pipelined GETs', send: get('/a') + get('/b') + get('/c'), expect: { all: [web('GET', '/a'), web('GET', '/b'), web('GET', '/c')] } },
  { id: 'pipe-ten', about: 'ten pipelined GETs', send: Array.from({ length: 10 }, (_, i) => get(`/p${i}`)).join(''), expect: { all: Array.from({ length: 10 }, (_, i) => web('GET', `/p${i}`)) } },
  { id: 'pipe-post-get', about: 'POST with a body, then GET', send: post('/a', 'hello') + get('/b'), expect: { all: [web('POST', '/a', { body: 'hello' }), web('GET', '/b')] } },
  { id: 'pipe-chunked-get', about: 'chunked POST, then GET', send: msg(['POST /a HTTP/1.1', 'Host: a.test', 'Transfer-Encoding: chunked'], chunks('hello')) + get('/b'), expect: { all: [web('POST', '/a', { body: 'hello' }), web('GET', '/b')] } },
  { id: 'pipe-bad-host-middle', about: 'GET, a request with two Host headers, GET: nothing after the error is served', send: get('/a') + msg(['GET /b HTTP/1.1', 'Host: a.test', 'Host: b.test']) + get('/c'), expect: { sy: [web('GET', '/a'), refused(400)] } },
  { id: 'pipe-bad-cl-middle', about: 'GET, Content-Length: +5, GET', send: get('/a') + msg(['POST /b HTTP/1.1', 'Host: a.test', 'Content-Length: +5'], 'hello') + get('/c'), expect: { sy: [web('GET', '/a'), refused(400)] } },
  { id: 'pipe-bad-chunk', about: 'a bad chunk size, then a GET hidden after it', send: msg(['POST /a HTTP/1.1', 'Host: a.test', 'Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n') + get('/b'), expect: { sy: [refused(400)] } },
  { id: 'pipe-bare-lf-then-get', about: 'a bare-LF request, then a valid one', send: 'GET /a HTTP/1.1\nHost: a.test\n\n' + get('/b'), expect: { sy: [refused(400)] } },
  { id: 'pipe-after-close', about: 'bytes after a Connection: close request are ignored (the Node plane once answered them with a bare 400 that replaced the real answer)', send: get('/a', ['Connection: close']) + get('/b'), expect: { all: [web('GET', '/a')] } },
  { id: 'pipe-head-get', about: 'HEAD then GET: the HEAD answer has no body', send: msg(['HEAD /a HTTP/1.1', 'Host: a.test']) + get('/b'), expect: { all: [web('HEAD', '/a'), web('GET', '/b')] } },
  { id: 'pipe-error-then-smuggle', about: 'a refused request whose "body" is a request: it must not be served', send: msg(['POST /a HTTP/1.1', 'Host: a.test', 'Content-Length: 5', 'Content-Length: 48'], get('/smuggled')), expect: { sy: [refused(400)] } },
  { id: 'pipe-split-head', about: 'a request head split across writes', send: ['GET /a HTTP/1.1\r\nHo', 'st: a.test\r\n', '\r\n'], expect: { all: [web('GET', '/a')] } },
  { id: 'pipe-split-chunked', about: 'a chunked body split inside the chunk-size line', send: ['POST /a HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5', '\r\nhel', 'lo\r\n0\r', '\n\r\n'], expect: { all: [web('POST', '/a', { body: 'hello' })] } },
];
