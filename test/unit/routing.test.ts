// The routing table on its own: path normalisation (tables and properties), segment-boundary
// prefixes, and snapshots built from route specs and a service set (specs in, dump() and match() out).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UpstreamStates } from '../../src/balancer/index.js';
import { seededRandom } from '../../src/core/clock.js';
import type { RouteSpec } from '../../src/config/route-spec.js';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';
import { normalizePath, prefixMatches, routePrefix, stripPrefix } from '../../src/routing/path.js';
import { buildSnapshot, forwardedPath } from '../../src/routing/snapshot.js';
import { RouteMatcher } from '../../src/routing/matcher.js';

describe('path normalisation', () => {
  const table: [string, string | RegExp][] = [
    ['/', '/'],
    ['/a/b', '/a/b'],
    ['/a/b/', '/a/b/'],
    ['/file.tar.gz', '/file.tar.gz'],
    ['/a/.hidden/..b', '/a/.hidden/..b'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/%2e%2E/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['//a///b', '/a/b'],
    ['/%41%7e%5F', '/A~_'],
    ['/a%2fb', '/a%2Fb'],
    ['/a%20b', '/a%20B'.replace('B', 'b')],
    ['/a%3fb', '/a%3Fb'],
    ['/..', /climbs above the root/],
    ['/a/../..', /climbs above the root/],
    ['/a/..%2Fb', /hides a dot segment/],
    ['/a/%2F..', /hides a dot segment/],
    ['/a/b\\..\\c', /hides a dot segment/],
    ['/a/%5C..%5Cc', /hides a dot segment/],
    ['/a/%2e%2e%2fb', /hides a dot segment/],
    ['/a/%zz', /invalid percent-encoding/],
    ['/a/%2', /invalid percent-encoding/],
    ['/x%00y', /encoded NUL/],
  ];
  for (const [input, want] of table) {
    it(`${JSON.stringify(input)} → ${String(want)}`, () => {
      const got = normalizePath(input);
      if (typeof want === 'string') assert.equal(got, want);
      else {
        assert.equal(typeof got, 'object', `expected a refusal, got ${String(got)}`);
        assert.match((got as { error: string }).error, want);
      }
    });
  }

  const segment = fc.oneof(
    fc.constantFrom('.', '..', '', '%2e', '%2E%2e', 'a', 'b.c', '%2F', '%41', '%zz', '\\', '..%2F', '~'),
    fc.stringMatching(/^[A-Za-z0-9._~%-]{0,6}$/),
  );
  const paths = fc.array(segment, { maxLength: 8 }).map((segs) => `/${segs.join('/')}`);

  it('is idempotent, and its output has no dot segments, empty segments or lower-case escapes', () => {
    fc.assert(fc.property(paths, (p) => {
      const n = normalizePath(p);
      if (typeof n !== 'string') return;
      assert.equal(normalizePath(n), n, `not idempotent for ${p}`);
      const inner = n.length > 1 && n.endsWith('/') ? n.slice(1, -1) : n.slice(1);
      if (inner !== '') for (const s of inner.split('/')) assert.ok(s !== '' && s !== '.' && s !== '..', `${p} → ${n}`);
      assert.doesNotMatch(n, /%[0-9A-F]?[a-f]/, `${p} → ${n}`);
    }), { numRuns: 2000 });
  });

  it('leaves no dot segment for a permissive backend to resolve (every escape decoded, "\\" read as "/")', () => {
    fc.assert(fc.property(fc.array(segment, { maxLength: 6 }), (segs) => {
      const p = `/api/${segs.join('/')}`;
      const n = normalizePath(p);
      if (typeof n !== 'string') return;
      const decoded = n.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/\\/g, '/');
      for (const s of decoded.split('/')) assert.ok(s !== '.' && s !== '..', `${p} → ${n} → ${decoded}`);
    }), { numRuns: 3000 });
  });
});

describe('segment-boundary prefixes', () => {
  it('matches the prefix itself and paths below it, never a longer name', () => {
    const api = routePrefix('/api/') as string;
    assert.equal(api, '/api');
    assert.equal(routePrefix('/api'), '/api');
    assert.equal(routePrefix('/'), '/');
    assert.ok(prefixMatches(api, '/api'));
    assert.ok(prefixMatches(api, '/api/'));
    assert.ok(prefixMatches(api, '/api/x/y'));
    assert.ok(!prefixMatches(api, '/apiadmin'));
    assert.ok(!prefixMatches(api, '/ap'));
    assert.ok(prefixMatches('/', '/anything'));
  });

  it('strips on the same boundary', () => {
    assert.equal(stripPrefix('/api/x', '/api'), '/x');
    assert.equal(stripPrefix('/api', '/api'), '/');
    assert.equal(stripPrefix('/api/', '/api'), '/');
    assert.equal(stripPrefix('/apiadmin', '/api'), '/apiadmin');
    assert.equal(stripPrefix('/x', '/'), '/x');
  });
});

function inst(service: string, n: number, tags: string[] = []): Instance {
  return { id: `node/${service}-${n}`, service, node: 'node', address: '127.0.0.1', port: 8000 + n, tags, meta: {}, weights: { passing: 1, warning: 1 }, status: 'passing' };
}

function set(services: Record<string, Instance[]>): ServiceSet {
  return {
    catalog: new Map(Object.entries(services).map(([s, l]) => [s, [...new Set(l.flatMap((i) => i.tags))]])),
    instances: new Map(Object.entries(services)),
  };
}

function spec(p: Partial<RouteSpec> & { service: string }, i: number): RouteSpec {
  return { origin: `config:routes[${i}]`, pathPrefix: '/', headers: [], tags: [], balance: 'round_robin', ...p };
}

describe('routing snapshots: specs in, dump() and match() out', () => {
  const build = (specs: RouteSpec[], s: ServiceSet) => buildSnapshot({
    version: 7, specs, set: s, states: new UpstreamStates(), random: seededRandom(1), panicThreshold: 50, defaultBalance: 'round_robin',
  });

  const cases: {
    name: string;
    specs: Partial<RouteSpec>[];
    services: Record<string, Instance[]>;
    requests: [host: string | undefined, path: string, headers: Record<string, string>, want: string | undefined, forwarded?: string][];
    errors?: RegExp[];
  }[] = [
    {
      name: 'most specific first: exact host, wildcard, any host; longer prefix; more headers',
      specs: [
        { service: 'web' },
        { service: 'api', pathPrefix: '/api' },
        { service: 'v2', pathPrefix: '/api', headers: [['x-version', '2']] },
        { service: 'admin', host: 'admin.example', pathPrefix: '/' },
        { service: 'wild', host: '*.example', pathPrefix: '/' },
      ],
      services: { web: [inst('web', 1)], api: [inst('api', 2)], v2: [inst('v2', 3)], admin: [inst('admin', 4)], wild: [inst('wild', 5)] },
      requests: [
        ['x', '/', {}, 'web'],
        ['x', '/api/users', {}, 'api'],
        ['x', '/api/users', { 'x-version': '2' }, 'v2'],
        ['x', '/apiary', {}, 'web'],
        ['Admin.Example:8080', '/api', {}, 'admin'],
        ['shop.example.', '/', {}, 'wild'],
        ['example', '/', {}, 'web'],
      ],
    },
    {
      name: 'strip prefixes on segment boundaries',
      specs: [{ service: 'api', pathPrefix: '/api/', stripPrefix: '/api' }, { service: 'web', pathPrefix: '/static' }],
      services: { api: [inst('api', 1)], web: [inst('web', 2)] },
      requests: [
        [undefined, '/api', {}, 'api', '/'],
        [undefined, '/api/v1/x', {}, 'api', '/v1/x'],
        [undefined, '/apiv1', {}, undefined],
        [undefined, '/static/a.css', {}, 'web', '/static/a.css'],
      ],
    },
    {
      name: 'tag routes (urlprefix-), their instances, and the errors of bad ones',
      specs: [],
      services: {
        shop: [inst('shop', 1, ['urlprefix-/shop strip=/shop']), inst('shop', 2, [])],
        bad: [inst('bad', 3, ['urlprefix-nopath', 'urlprefix-/x balance=nope'])],
      },
      requests: [[undefined, '/shop/cart', {}, 'shop', '/cart'], [undefined, '/x', {}, undefined]],
      errors: [/expected urlprefix-\[host\]\/path/, /unknown balance=nope/],
    },
    {
      name: 'a route whose prefix is not a normal path is left out with its reason',
      specs: [{ service: 'web', pathPrefix: '/a/../..' }, { service: 'ok', pathPrefix: '/ok' }],
      services: { web: [inst('web', 1)], ok: [inst('ok', 2)] },
      requests: [[undefined, '/ok', {}, 'ok']],
      errors: [/config:routes\[0\]: path \/a\/\.\.\/\.\.: the path climbs above the root/],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const snap = build(c.specs.map((p, i) => spec(p as RouteSpec, i)), set(c.services));
      assert.equal(snap.version, 7);
      for (const [host, path, headers, want, forwarded] of c.requests) {
        const r = snap.match(host, path, headers);
        assert.equal(r?.spec.service, want, `${host ?? '*'}${path} ${JSON.stringify(headers)}`);
        if (r && forwarded !== undefined) assert.equal(forwardedPath(r, path), forwarded);
      }
      const dump = snap.dump() as { routes: { service: string }[]; groups: { service: string; upstreams: { id: string }[] }[]; errors: string[] };
      for (const g of dump.groups) {
        const tags = c.specs.find((s) => s.service === g.service)?.tags ?? [];
        const want = (c.services[g.service] ?? []).filter((i) => tags.every((t) => i.tags.includes(t)));
        // Tag routes are served by the instances carrying that tag only.
        if (g.service === 'shop') assert.deepEqual(g.upstreams.map((u) => u.id), ['node/shop-1']);
        else assert.deepEqual(g.upstreams.map((u) => u.id), want.map((i) => i.id));
      }
      for (const e of c.errors ?? []) assert.ok(dump.errors.some((x) => e.test(x)), `no error like ${e} in ${JSON.stringify(dump.errors)}`);
      if (!c.errors) assert.deepEqual(dump.errors, []);
    });
  }
});

describe('route matcher', () => {
  /** The obvious reference: scan every route of the host class in specificity order. */
  function reference(routes: CompiledRouteLike[], host: string | undefined, path: string, headers: Record<string, string>): CompiledRouteLike | undefined {
    const ok = (r: CompiledRouteLike): boolean => prefixMatches(r.prefix, path) && r.spec.headers.every(([k, v]) => headers[k] === v);
    const bySpecificity = (list: CompiledRouteLike[]): CompiledRouteLike[] => [...list].sort((a, b) => b.prefix.split('/').filter(Boolean).length - a.prefix.split('/').filter(Boolean).length);
    if (host) {
      const exact = bySpecificity(routes.filter((r) => r.spec.host === host)).find(ok);
      if (exact) return exact;
      const wild = routes.filter((r) => r.spec.host?.startsWith('*.') && host.endsWith(r.spec.host.slice(1)) && host.length > r.spec.host.length - 1);
      const suffixes = [...new Set(wild.map((r) => r.spec.host as string))].sort((a, b) => b.length - a.length);
      for (const sfx of suffixes) {
        const r = bySpecificity(wild.filter((x) => x.spec.host === sfx)).find(ok);
        if (r) return r;
      }
    }
    return bySpecificity(routes.filter((r) => r.spec.host === undefined)).find(ok);
  }
  interface CompiledRouteLike { prefix: string; spec: { host?: string; headers: [string, string][] }; n: number }

  it('agrees with a linear scan over random tables and requests', () => {
    const seg = fc.constantFrom('a', 'b', 'api', 'v1', 'x');
    const prefix = fc.array(seg, { maxLength: 3 }).map((s) => (s.length === 0 ? '/' : `/${s.join('/')}`));
    const host = fc.constantFrom(undefined, 'a.example', 'b.example', '*.example', '*.a.example', 'x.a.example');
    const hdr = fc.constantFrom<[string, string][]>([], [['x-v', '2']]);
    const route = fc.record({ prefix, host, headers: hdr });
    fc.assert(fc.property(fc.array(route, { maxLength: 12 }), fc.array(seg, { maxLength: 4 }), fc.constantFrom(undefined, 'a.example', 'x.a.example', 'y.b.example', 'example'), fc.boolean(), (specs, pathSegs, reqHost, withHeader) => {
      // Specificity order as buildSnapshot sorts: more header conditions first among equals (stable).
      const routes: CompiledRouteLike[] = specs
        .map((s, n) => ({ prefix: s.prefix, spec: { ...(s.host ? { host: s.host } : {}), headers: s.headers }, n }))
        .sort((a, b) => b.spec.headers.length - a.spec.headers.length || a.n - b.n);
      const path = `/${pathSegs.join('/')}`;
      const headers = withHeader ? { 'x-v': '2' } : {};
      const m = new RouteMatcher(routes);
      assert.equal(m.match(reqHost, path, headers)?.n, reference(routes, reqHost, path, headers)?.n, `${reqHost ?? '*'} ${path}`);
    }), { numRuns: 3000 });
  });
});
