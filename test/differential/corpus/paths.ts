/** Path tricks against a strip-prefix route (/api/ → api, /api stripped) and the catch-all: normalisation, encoded separators, segment boundaries. */
import type { Case, Step } from '../types.js';
import { api, get, refused, web } from './dsl.js';

// Policy (docs/security.md, paths): route and forward the normalised path — unreserved %XX decoded, dot segments
// removed, slashes merged; climbing above the root, or a segment whose decoded form has a "." or ".."
// piece between "/" or "\", is 400; other %2F stays encoded; prefixes match on segment boundaries;
// the query is forwarded unchanged.
const P: { id: string; target: string; sy: Step; about?: string }[] = [
  { id: 'api-dotdot', target: '/api/../admin', sy: web('GET', '/admin'), about: 'dot segments leave the api prefix: routed to the catch-all as /admin' },
  { id: 'api-enc-dotdot', target: '/api/%2e%2e/admin', sy: web('GET', '/admin') },
  { id: 'api-enc-dotdot-upper', target: '/api/%2E%2E/admin', sy: web('GET', '/admin') },
  { id: 'api-half-enc-dotdot', target: '/api/.%2e/admin', sy: web('GET', '/admin') },
  { id: 'api-enc-slash-dotdot', target: '/api%2F..%2Fadmin', sy: refused(400) },
  { id: 'api-dotdot-enc-slash', target: '/api/..%2Fadmin', sy: refused(400) },
  { id: 'api-enc-slash-before-dotdot', target: '/api/x%2F..', sy: refused(400) },
  { id: 'api-double-enc', target: '/api/%252e%252e/admin', sy: api('GET', '/%252e%252e/admin'), about: 'double encoding is decoded once at most (%25 is not unreserved): stays as sent' },
  { id: 'double-slash-api', target: '//api', sy: api('GET', '/') },
  { id: 'double-slash-api-x', target: '//api//x', sy: api('GET', '/x') },
  { id: 'apiadmin', target: '/apiadmin', sy: web('GET', '/apiadmin'), about: 'a prefix matches on segment boundaries only' },
  { id: 'api-bare', target: '/api', sy: api('GET', '/') },
  { id: 'api-slash', target: '/api/', sy: api('GET', '/') },
  { id: 'api-dot', target: '/api/./x', sy: api('GET', '/x') },
  { id: 'api-enc-dot', target: '/api/%2e/x', sy: api('GET', '/x') },
  { id: 'api-trailing-dotdot', target: '/api/x/..', sy: api('GET', '/') },
  { id: 'api-enc-letter', target: '/%61pi/x', sy: api('GET', '/x'), about: '%61 is "a": decoded, then routed' },
  { id: 'enc-upper-letter', target: '/%41pi/x', sy: web('GET', '/Api/x') },
  { id: 'api-case', target: '/API/x', sy: web('GET', '/API/x'), about: 'paths are case-sensitive' },
  { id: 'api-enc-slash-kept', target: '/api/x%2Fy', sy: api('GET', '/x%2Fy'), about: '%2F inside a segment is allowed and forwarded undecoded' },
  { id: 'api-enc-slash-prefix', target: '/api%2Fx', sy: web('GET', '/api%2Fx'), about: 'an encoded slash is not a segment boundary' },
  { id: 'enc-slash-leading', target: '/%2Fapi/x', sy: web('GET', '/%2Fapi/x') },
  { id: 'api-query-dotdot', target: '/api/x?y=/../z', sy: api('GET', '/x?y=/../z'), about: 'the query is forwarded unchanged' },
  { id: 'api-query-enc', target: '/api/x?a=%2e%2e&b=%2F', sy: api('GET', '/x?a=%2e%2e&b=%2F') },
  { id: 'climb-root', target: '/..', sy: refused(400) },
  { id: 'climb-api', target: '/api/../../etc/passwd', sy: refused(400) },
  { id: 'climb-enc', target: '/%2e%2e/x', sy: refused(400) },
  { id: 'backslash-dotdot', target: '/api\\..\\admin', sy: refused(400) },
  { id: 'backslash-enc-dotdot', target: '/api/%5c..%5cadmin', sy: refused(400) },
  { id: 'backslash-plain', target: '/api/x\\y', sy: api('GET', '/x\\y') },
  { id: 'dot-api', target: '/./api/x', sy: api('GET', '/x') },
  { id: 'catchall-dotdot', target: '/a/b/../c', sy: web('GET', '/a/c') },
  { id: 'catchall-double-slash', target: '/a//b', sy: web('GET', '/a/b') },
  { id: 'api-semicolon', target: '/api;x/y', sy: web('GET', '/api;x/y'), about: 'a path parameter makes a different segment' },
  { id: 'enc-tilde', target: '/api/%7Euser', sy: api('GET', '/~user'), about: '%7E is unreserved: decoded' },
  { id: 'enc-nul', target: '/api/x%00y', sy: refused(400), about: '%00 in a path: nginx refuses it (400), so the fast plane may not forward it' },
];

export const cases: Case[] = P.map((p) => ({ id: `path-${p.id}`, about: p.about ?? `path ${p.target}`, send: get(p.target), expect: { sy: [p.sy] } }));
