/** Baseline cases: plain requests every front must forward as sent. */
import type { Case } from '../types.js';
import { SMUGGLED, api, chunks, get, msg, post, refused, web } from './dsl.js';

const DELETE = 'DELETE /admin/users/42 HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n';

export const cases: Case[] = [
  { id: 'base-get', about: 'a plain GET', send: get('/x'), expect: { all: [web('GET', '/x', { host: 'a.test' })] } },
  { id: 'base-post-cl', about: 'POST with Content-Length', send: post('/x', 'hello'), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'base-post-chunked', about: 'POST with a chunked body', send: msg(['POST /x HTTP/1.1', 'Host: a.test', 'Transfer-Encoding: chunked'], chunks('hel', 'lo')), expect: { all: [web('POST', '/x', { body: 'hello' })] } },
  { id: 'base-api-strip', about: 'the strip-prefix route', send: get('/api/users?x=1'), expect: { all: [api('GET', '/users?x=1')] } },
  { id: 'base-cl-smuggle-body', about: 'a body that looks like a request stays a body', send: post('/x', SMUGGLED), expect: { all: [web('POST', '/x', { body: SMUGGLED })] } },
  { id: 'conn-cl-delete-smuggle', about: 'the reported attack: Connection: Content-Length and a DELETE in the body', send: msg(['POST /public HTTP/1.1', 'Host: x', 'Connection: Content-Length', `Content-Length: ${DELETE.length}`], DELETE), expect: { sy: [refused(400)], nginx: [web('POST', '/public', { host: 'x', body: DELETE })] } },
];
