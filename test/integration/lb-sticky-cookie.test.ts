// Sticky sessions by a cookie the balancer sets (nginx's `sticky cookie`, Traefik's sticky.cookie): the first answer
// names its instance in a cookie, a client that sends it back stays on that instance while it is in the healthy pool,
// and is moved (with a new cookie) once it is not. Both HTTP/1 planes, the HTTP/2 plane and the TLS listener.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { request } from 'undici';
import { startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { deregisterBackend, registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { selfSigned } from '../helpers/tls.js';
import { lbConfigSchema, resolveLbConfig } from '../../src/config/lb.js';
import { stickyToken } from '../../src/balancer/index.js';

interface Answer {
  body: string;
  cookies: string[];
}

async function get(url: string, cookie?: string): Promise<Answer> {
  const r = await request(url, { headers: cookie !== undefined ? { cookie } : {} });
  const sc = r.headers['set-cookie'];
  return { body: await r.body.text(), cookies: sc === undefined ? [] : Array.isArray(sc) ? sc : [sc] };
}

const ours = (a: Answer): string | undefined => a.cookies.find((c) => c.startsWith('sy_web='));
const value = (setCookie: string): string => setCookie.slice(setCookie.indexOf('=') + 1, setCookie.indexOf(';'));

describe('lb: sticky sessions by cookie', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  const lbs: TestLb[] = [];

  before(async () => {
    agent = await startTestAgent();
    for (const name of ['s1', 's2', 's3']) {
      const b = await startBackend(name);
      // The application's own cookie rides along with the balancer's.
      b.handler = (_req, res) => res.writeHead(200, { 'set-cookie': 'app=1; Path=/' }).end(name);
      backends.push(b);
      await registerBackend(agent.url, 'web', b);
    }
  });
  after(async () => {
    for (const lb of lbs) await lb.close();
    for (const b of backends) await b.close();
    await agent.stop();
  });

  it('config: attributes as written, defaults, and refusals named', () => {
    const cfg = resolveLbConfig(lbConfigSchema.parse({
      routes: [
        { service: 'web', 'sticky-cookie': { name: 'sy_web', 'max-age': '1h' } },
        { service: 'web', path: '/b', 'sticky-cookie': { name: 'b', path: '/b', secure: true, 'http-only': false, 'same-site': 'none' } },
      ],
    }), {});
    assert.deepEqual(cfg.routes[0]?.stickyCookie, { name: 'sy_web', attributes: '; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax', secure: undefined });
    assert.deepEqual(cfg.routes[1]?.stickyCookie, { name: 'b', attributes: '; Path=/b; SameSite=None', secure: true });
    const none = lbConfigSchema.safeParse({ routes: [{ service: 'web', 'sticky-cookie': { name: 'x', 'same-site': 'none' } }] });
    assert.equal(none.success, false);
    assert.match(none.error?.issues[0]?.message ?? '', /same-site: none needs secure: true/);
    assert.equal(lbConfigSchema.safeParse({ routes: [{ service: 'web', 'sticky-cookie': { name: 'a b' } }] }).success, false);
    assert.equal(lbConfigSchema.safeParse({ routes: [{ service: 'web', 'sticky-cookie': { name: 'a', path: '/x;Domain=evil' } }] }).success, false);
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: the first answer sets the cookie, the client stays, and moves when its instance leaves`, async () => {
      const cert = selfSigned(tempDir('sy-sticky-'), 'lb', ['localhost']);
      const lb = await startTestLb(agent.url, {
        'data-plane': plane, balance: 'round_robin', tls: { listen: '127.0.0.1:0', certs: [cert] },
        routes: [{ path: '/', service: 'web', 'sticky-cookie': { name: 'sy_web', 'max-age': '1h' } }, { path: '/plain', service: 'web' }] as never,
      });
      lbs.push(lb);
      await waitUpstreams(lb, 'web', backends.map((b) => b.port));

      const first = await get(`${lb.url}/x`);
      const set = ours(first);
      assert.ok(set !== undefined, `a cookie naming the instance: ${JSON.stringify(first.cookies)}`);
      assert.match(set, /^sy_web=[0-9a-f]{8}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/, 'no Secure over plain HTTP');
      assert.ok(first.cookies.includes('app=1; Path=/'), 'the application\'s cookie is kept');
      const home = first.body;
      const cookie = `app=1; sy_web=${value(set)}`;
      // Round robin would spread these over three instances; the cookie keeps them on one, and is not set again.
      for (let i = 0; i < 9; i++) {
        const r = await get(`${lb.url}/x${i}`, cookie);
        assert.equal(r.body, home);
        assert.equal(ours(r), undefined);
      }
      // Without the cookie (and on a route without stickiness) requests still spread.
      const spread = new Set<string>();
      for (let i = 0; i < 6; i++) spread.add((await get(`${lb.url}/plain/${i}`, cookie)).body);
      assert.equal(spread.size, 3, 'a route without sticky-cookie ignores it');
      // A cookie naming no instance (forged, or from an instance long gone): a normal pick and a new cookie.
      const forged = await get(`${lb.url}/y`, 'sy_web=ffffffff');
      assert.match(ours(forged) ?? '', /^sy_web=[0-9a-f]{8};/);
      assert.notEqual(value(ours(forged) ?? ''), 'ffffffff');

      // An HTTP/2 client gets the same cookie and honours it.
      const s = h2connect(lb.url);
      try {
        const h2 = await new Promise<{ body: string; cookies: string[] }>((resolve, reject) => {
          const st = s.request({ ':path': '/h2', cookie });
          let body = '';
          let cookies: string[] = [];
          st.on('response', (h) => (cookies = (h['set-cookie'] as string[] | undefined) ?? []));
          st.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ body, cookies })).on('error', reject);
          st.end();
        });
        assert.equal(h2.body, home);
        assert.deepEqual(h2.cookies, ['app=1; Path=/']);
        const fresh = await new Promise<string[]>((resolve, reject) => {
          const st = s.request({ ':path': '/h2' });
          st.on('response', (h) => resolve((h['set-cookie'] as string[] | undefined) ?? []));
          st.on('error', reject);
          st.resume();
          st.end();
        });
        assert.ok(fresh.some((c) => /^sy_web=[0-9a-f]{8}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Lax$/.test(c)), JSON.stringify(fresh));
      } finally {
        s.close();
      }

      // Over the TLS listener the cookie is Secure.
      const tlsCookies = await new Promise<string[]>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: lb.tlsAddress!.port, path: '/t', rejectUnauthorized: false, servername: 'localhost' }, (res) => {
          res.resume();
          resolve(res.headers['set-cookie'] ?? []);
        });
        req.on('error', reject);
        req.end();
      });
      assert.ok(tlsCookies.some((c) => c.startsWith('sy_web=') && c.endsWith('; Secure')), JSON.stringify(tlsCookies));

      // The client's instance leaves: it goes to another, which the new cookie names from then on.
      const leaving = backends.find((b) => b.name === home) as Backend;
      await deregisterBackend(agent.url, 'web', leaving);
      await waitUpstreams(lb, 'web', backends.filter((b) => b !== leaving).map((b) => b.port));
      const moved = await get(`${lb.url}/z`, cookie);
      assert.notEqual(moved.body, home);
      const next = ours(moved);
      assert.ok(next !== undefined && value(next) !== value(set), 'a new cookie for the new instance');
      assert.equal(value(next), stickyToken(`${(await nodeName())}/web-${moved.body}`));
      for (let i = 0; i < 4; i++) assert.equal((await get(`${lb.url}/z${i}`, `sy_web=${value(next)}`)).body, moved.body);
      // And back in the pool, it gets its old clients again.
      await registerBackend(agent.url, 'web', leaving);
      await waitUpstreams(lb, 'web', backends.map((b) => b.port));
      await waitFor(async () => (await get(`${lb.url}/back`, cookie)).body === home, 'the returning instance takes its cookie\'s clients');
    });
  }

  async function nodeName(): Promise<string> {
    const r = await request(`${agent.url}/v1/agent/self`);
    const self = await r.body.json() as { Config: { NodeName: string } };
    return self.Config.NodeName;
  }
});
