/** Responses: framing-sensitive headers from the backend, 200 fields, transfer-coding lists, 1xx, bodiless statuses, and deliberately broken responses. */
import type { Case, RespCheck, Step } from '../types.js';
import { get, msg, refused, web } from './dsl.js';

const ECHO = '"service":"web"';
const r = (variant: string, about: string, expect: Case['expect']): Case => ({ id: `resp-${variant}`, about, send: get(`/r?__resp=${variant}`), expect });
const ok = (variant: string, resp: RespCheck = { bodyIncludes: ECHO }, status = 200): Step => web('GET', `/r?__resp=${variant}`, { status, resp });
// A response llhttp refuses fails the attempt; the GET is retried, and with the only instance already
// tried the client gets that failure: 502, as from nginx.
const bad = (variant: string): Step => web('GET', `/r?__resp=${variant}`, { status: 502 });

export const cases: Case[] = [
  r('ok', 'the plain response', { all: [ok('ok')] }),
  r('conn-cl', 'Connection: Content-Length on a response: ignored, the length still frames the body', { sy: [ok('conn-cl')] }),
  r('conn-te', 'Connection: Transfer-Encoding on a chunked response: ignored, still chunked', { sy: [ok('conn-te')] }),
  r('conn-host-date', 'Connection: Host, Date, X-Drop-Me: an ordinary hop-by-hop name is dropped', { sy: [ok('conn-host-date', { headers: { 'x-drop-me': null }, bodyIncludes: ECHO })] }),
  r('conn-close-cl', 'Connection: close, Content-Length', { sy: [ok('conn-close-cl')] }),
  r('h200', 'a valid response with 200 header fields is forwarded intact', { sy: [ok('h200', { minHeaderCount: 200, headers: { 'x-h-197': 'v197' }, bodyIncludes: ECHO })] }),
  r('gzip-chunked', 'Transfer-Encoding: gzip, chunked is passed through with that value and the chunked body', { sy: [ok('gzip-chunked', { headers: { 'transfer-encoding': 'gzip, chunked' }, chunked: true })] }),
  r('chunked', 'a chunked response', { all: [ok('chunked')] }),
  r('chunk-ext', 'chunk extensions in a response', { all: [ok('chunk-ext')] }),
  r('trailers', 'a chunked response with a trailer', { all: [ok('trailers')] }),
  r('eof', 'a close-delimited response', { all: [ok('eof')] }),
  r('http10-eof', 'an HTTP/1.0 close-delimited response', { all: [ok('http10-eof')] }),
  {
    ...r('continue', 'a 100 Continue before the final response (nginx 1.22 never answers the client)', { fast: [ok('continue')], node: [refused(502)] }),
    nodePlaneLimitation: 'undici refuses a 1xx the request did not ask for (UND_ERR_SOCKET "bad response"), so the node plane answers 502; the fast plane passes the final response on',
  },
  r('early-hints', 'a 103 Early Hints before the final response (nginx 1.22 never answers the client)', { sy: [ok('early-hints')] }),
  r('204', '204 No Content', { all: [ok('204', {}, 204)] }),
  r('304-cl', '304 with a Content-Length (no body follows)', { all: [ok('304-cl', {}, 304)] }),
  { id: 'resp-head-cl', about: 'HEAD: Content-Length without a body', send: msg(['HEAD /r HTTP/1.1', 'Host: a.test']) + get('/next'), expect: { all: [web('HEAD', '/r'), web('GET', '/next')] } },
  r('cl-te', 'both Content-Length and chunked in a response: refused', { sy: [bad('cl-te')] }),
  r('obs-fold', 'obs-fold in a response header', { sy: [bad('obs-fold')] }),
  r('bare-lf', 'a response with bare LF line endings', { sy: [bad('bare-lf')] }),
  r('space-colon', 'whitespace between a response header name and its colon', { sy: [bad('space-colon')] }),
  r('cl-invalid', 'Content-Length: +N on a response', { sy: [bad('cl-invalid')] }),
  r('dup-cl-same', 'two identical Content-Length fields on a response', { sy: [bad('dup-cl-same')] }),
  r('dup-cl-differ', 'two different Content-Length fields on a response', { sy: [bad('dup-cl-differ')] }),
  r('te-identity-cl', 'Transfer-Encoding: identity with a Content-Length', { sy: [bad('te-identity-cl')] }),
  { id: 'resp-conn-cl-then-get', about: 'after a response with Connection: Content-Length, the next request on the connection', send: get('/r?__resp=conn-cl') + get('/next'), expect: { sy: [ok('conn-cl'), web('GET', '/next')] } },
];
