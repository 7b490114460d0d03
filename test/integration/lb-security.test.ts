// Attacks on the balancer, on both data planes: request smuggling through Connection, client errors
// that would eject healthy instances, strictness that a special request could switch off, routing
// on raw paths, and the smaller differences an attacker's probe found (methods, response limits,
// absolute-form, Upgrade refusals, bytes after Connection: close). Each case names what it guards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import { request } from 'undici';
import { negativeWindow } from '../helpers/agent.js';
import { startStaticLb } from '../helpers/lb.js';
import { raw, statusLines as statuses } from '../helpers/raw-http.js';
import type { TestLb } from '../helpers/lb.js';

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  body: string;
  service: string;
}

/** A recording backend: every request it parses (Node's llhttp) is kept, and answered with its service name and what it saw. */
async function recorder(service: string, log: Seen[]): Promise<{ server: Server; port: number }> {
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('latin1')));
    req.on('end', () => {
      log.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host, body, service });
      res.end(`${service} ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A backend writing `respond(head)` verbatim for every request head it reads. */
async function rawBackend(respond: (head: string) => string): Promise<{ server: NetServer; port: number }> {
  const server = createNetServer((sock: Socket) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, i + 4);
        buf = buf.slice(i + 4);
        sock.write(respond(head));
      }
    });
    sock.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

for (const plane of ['fast', 'node'] as const) {
  describe(`balancer security (${plane} plane)`, () => {
    const seen: Seen[] = [];
    const servers: (Server | NetServer)[] = [];
    const lbs: TestLb[] = [];
    let api: { port: number };
    let web: { port: number };
    let web2: { port: number };
    let lb: TestLb;
    let special: { server: NetServer; port: number };

    before(async () => {
      const a = await recorder('api', seen);
      const w = await recorder('web', seen);
      const w2 = await recorder('web', seen);
      special = await rawBackend((head) => {
        const path = head.split(' ')[1] ?? '';
        if (path === '/conn-cl') return 'HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Secret\r\nX-Secret: s3cr3t\r\nContent-Length: 5\r\n\r\nhello';
        if (path === '/many') return `HTTP/1.1 200 OK\r\n${Array.from({ length: 200 }, (_, i) => `X-H${i}: v${i}\r\n`).join('')}Content-Length: 2\r\n\r\nok`;
        if (path === '/coded') return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
        if (path === '/upgrade') return 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nnot for you\r\n';
        return 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nspecial';
      });
      servers.push(a.server, w.server, w2.server, special.server);
      api = a;
      web = w;
      web2 = w2;
      lb = await startStaticLb({
        'data-plane': plane,
        routes: [
          { path: '/api/', 'strip-prefix': '/api', service: 'api' },
          { host: 'b.example', path: '/', service: 'api' },
          { path: '/special/', 'strip-prefix': '/special', service: 'special' },
          { path: '/', service: 'web' },
        ],
        'passive-health': { 'max-fails': 2, 'consecutive-5xx': 2 },
      }, { api: [{ port: api.port }], web: [{ port: web.port }, { port: web2.port }], special: [{ port: special.port }] });
      lbs.push(lb);
    });

    after(async () => {
      for (const l of lbs) await l.close();
      for (const s of servers) s.close();
    });

    async function route(path: string, init: { host?: string } = {}): Promise<{ status: number; body: string }> {
      const out = await raw(lb.address.port, [`GET ${path} HTTP/1.1\r\nHost: ${init.host ?? 'x'}\r\nConnection: close\r\n\r\n`]);
      const status = Number(statuses(out)[0] ?? 0);
      return { status, body: out.slice(out.indexOf('\r\n\r\n') + 4) };
    }

    it('answers 502 for a status outside 100-599 (RFC 9110: invalid), the same on both planes', async () => {
      const odd = await rawBackend((head) => (head.startsWith('GET /600') ? 'HTTP/1.1 600 Custom\r\nContent-Length: 2\r\n\r\nok' : 'HTTP/1.1 999 Beyond\r\nContent-Length: 2\r\n\r\nok'));
      servers.push(odd.server);
      const l = await startStaticLb({ 'data-plane': plane, service: 'odd', retries: { attempts: 1 } }, { odd: [{ port: odd.port }] });
      lbs.push(l);
      for (const path of ['/600', '/999']) {
        const out = await raw(l.address.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
        assert.deepEqual(statuses(out), ['502'], out);
        assert.match(out, /bad response \(invalid status code\)/, out);
      }
    });

    it('refuses Connection naming Content-Length, Transfer-Encoding or Host (the smuggled request never reaches a backend)', async () => {
      const before = seen.length;
      const smuggled = 'DELETE /admin/users/42 HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n';
      for (const conn of ['Content-Length', 'content-length, keep-alive', 'Host']) {
        const out = await raw(lb.address.port, [`POST /public HTTP/1.1\r\nHost: x\r\nConnection: ${conn}\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`]);
        assert.deepEqual(statuses(out), ['400'], out);
        assert.match(out, /Connection names/);
      }
      const te = await raw(lb.address.port, ['POST /public HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n']);
      assert.deepEqual(statuses(te), ['400'], te);
      // The balancer answered and closed each connection; a request it had forwarded anyway would be
      // on a backend's socket already, and this gives it the time to be parsed and recorded.
      await negativeWindow(100, 'a refused request reaching a backend');
      assert.deepEqual(seen.slice(before), [], 'no backend saw any of these requests');
    });

    it('keeps a response framed when it lists Content-Length in Connection (and still drops the other listed header)', async () => {
      const out = await raw(lb.address.port, ['GET /special/conn-cl HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /special/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { pauseMs: 150 });
      assert.deepEqual(statuses(out), ['200', '200'], out);
      const first = out.slice(0, out.indexOf('HTTP/1.1 200', 10));
      assert.match(first, /\r\ncontent-length: 5\r\n/i, first);
      assert.doesNotMatch(first, /x-secret/i, 'a header named in Connection is still hop-by-hop');
      assert.match(first, /\r\n\r\nhello$/, first);
      assert.match(out, /special$/);
    });

    it('answers requests refused for their own shape with 400, without ejecting or retrying any instance', async () => {
      const before = seen.length;
      for (let i = 0; i < 4; i++) {
        const o = await raw(lb.address.port, ['OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n']);
        assert.deepEqual(statuses(o), ['400'], o);
      }
      // HTTP/1.0 keep-alive first, then a request with two Host headers on the same connection.
      const two = await raw(lb.address.port, ['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'], { pauseMs: 150 });
      assert.deepEqual(statuses(two), ['200', '400'], two);
      const routes = await request(`${lb.adminUrl}/routes`);
      const dump = await routes.body.json() as { groups: { service: string; upstreams: { ejectedUntil: string | null }[] }[] };
      for (const g of dump.groups) for (const u of g.upstreams) assert.equal(u.ejectedUntil, null, `${g.service} instance ejected: ${JSON.stringify(dump.groups)}`);
      const metrics = await (await request(`${lb.adminUrl}/metrics`)).body.text();
      assert.doesNotMatch(metrics, /^switchyard_lb_ejections_total\{[^}]*\} [1-9]/m, 'no ejection counted');
      assert.doesNotMatch(metrics, /^switchyard_lb_retries_total\{[^}]*\} [1-9]/m, 'no retry counted');
      assert.deepEqual(seen.slice(before).map((s) => s.url), ['/a'], 'only the valid request reached a backend');
    });

    it('keeps the same strictness on a connection after HTTP/1.0, absolute-form and refused-Upgrade requests', async () => {
      const before = seen.length;
      const openers = [
        'GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
        'GET http://x/one HTTP/1.1\r\nHost: x\r\n\r\n',
        'GET /special/upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ];
      for (const opener of openers) {
        for (const bad of ['GET /dup HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 'POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n']) {
          const out = await raw(lb.address.port, [opener, bad], { pauseMs: 150 });
          const st = statuses(out);
          // The node plane closes a refused Upgrade's connection; then the second request never gets read.
          assert.ok(st.length >= 1 && st[0] !== '400', `${JSON.stringify(opener)} was served: ${out}`);
          if (st.length > 1) assert.match(st[1] as string, /^(400|501)$/, `after ${JSON.stringify(opener)}: ${out}`);
        }
      }
      // As above: time for a wrongly forwarded request to be parsed and recorded by a backend.
      await negativeWindow(100, 'a refused request reaching a backend');
      assert.deepEqual(seen.slice(before).filter((s) => s.url === '/dup' || s.url === '/te'), [], 'no backend saw the refused requests');
    });

    it('routes on the normalised path, on segment boundaries, and forwards the path it routed', async () => {
      const before = seen.length;
      const cases: [string, number, string | undefined][] = [
        ['/api/../internal', 200, 'web GET /internal'],
        ['/api/%2e%2e/internal', 200, 'web GET /internal'],
        ['/api/%2E%2E/%2e/internal', 200, 'web GET /internal'],
        ['/apiadmin', 200, 'web GET /apiadmin'],
        ['/api', 200, 'api GET /'],
        ['/api/x?q=/api/../y', 200, 'api GET /x?q=/api/../y'],
        ['//api//x', 200, 'api GET /x'],
        ['/api/./x/', 200, 'api GET /x/'],
        ['/api/%78', 200, 'api GET /x'],
        ['/api/group%2Fproject', 200, 'api GET /group%2Fproject'],
        ['/api/..%2Finternal', 400, undefined],
        ['/api/%2e%2e%2Finternal', 400, undefined],
        ['/api/a\\..\\internal', 400, undefined],
        ['/../internal', 400, undefined],
        ['/api/%zz', 400, undefined],
      ];
      for (const [path, status, body] of cases) {
        const r = await route(path);
        assert.equal(r.status, status, `${path}: ${r.body}`);
        if (body !== undefined) assert.equal(r.body, body, path);
      }
      const refused = new Set(cases.filter((c) => c[1] === 400).map((c) => c[0]));
      assert.equal(seen.slice(before).length, cases.length - refused.size, 'refused paths never reached a backend');
    });

    it('refuses lowercase and other invalid methods', async () => {
      // The raw backend answers any method: a 400 can only come from the balancer.
      for (const m of ['get', 'Get', 'G3T']) {
        const out = await raw(lb.address.port, [`${m} /special/x HTTP/1.1\r\nHost: x\r\n\r\n`]);
        assert.deepEqual(statuses(out), ['400'], `${m}: ${out}`);
        assert.doesNotMatch(out, /special$/, `${m} was forwarded`);
      }
    });

    it('passes on valid responses with 200 header fields and with Transfer-Encoding: gzip, chunked', async () => {
      const many = await raw(lb.address.port, ['GET /special/many HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      assert.deepEqual(statuses(many), ['200'], many.slice(0, 300));
      assert.match(many, /\r\nX-H199: v199\r\n/);
      assert.match(many, /\r\n\r\nok$/);
      const coded = await raw(lb.address.port, ['GET /special/coded HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      assert.deepEqual(statuses(coded), ['200'], coded);
      assert.match(coded, /\r\ntransfer-encoding: gzip, chunked\r\n/i, coded);
      assert.match(coded, /\r\n\r\n3\r\nabc\r\n0\r\n\r\n$/, coded);
    });

    it('routes an absolute-form request on its authority and forwards that authority as Host', async () => {
      const before = seen.length;
      const out = await raw(lb.address.port, ['GET http://B.example/path?x=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n']);
      assert.deepEqual(statuses(out), ['200'], out);
      assert.match(out, /api GET \/path\?x=1$/);
      assert.deepEqual(seen.slice(before).map((s) => s.host), ['b.example']);
      const other = await raw(lb.address.port, ['GET http://c.example/x HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n']);
      assert.match(other, /web GET \/x$/, 'the catch-all route serves an authority no host route names');
      const ftp = await raw(lb.address.port, ['GET ftp://b.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n']);
      assert.deepEqual(statuses(ftp), ['400'], ftp);
    });

    it('passes on a non-101 answer to an Upgrade with its status and body', async () => {
      const out = await raw(lb.address.port, ['GET /special/upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'], { until: (g) => g.includes('not for you') });
      assert.deepEqual(statuses(out), ['403'], out);
      assert.match(out, /not for you/);
    });

    it('answers a request in full when bytes follow it after Connection: close', async () => {
      const out = await raw(lb.address.port, ['GET /full HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGARBAGE \x01\r\n\r\n']);
      assert.deepEqual(statuses(out), ['200'], out);
      assert.match(out, /web GET \/full$/);
    });

    it('takes a request with as many header fields as the limit, and refuses one more (never drops fields silently)', async () => {
      const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
      // Host counts as a field: 999 more make 1000, the default limit.
      const ok = await raw(lb.address.port, [`GET /special/x HTTP/1.1\r\nHost: x\r\n${fields(999)}Connection: close\r\n\r\n`]);
      assert.deepEqual(statuses(ok), ['431'], 'with Connection that is 1001 fields');
      const fits = await raw(lb.address.port, [`GET /special/x HTTP/1.1\r\nHost: x\r\n${fields(999)}\r\n`], { until: (g) => g.includes('special') });
      assert.deepEqual(statuses(fits), ['200'], fits.slice(0, 200));
    });

    it('refuses CONNECT and HTTP/0.9', async () => {
      const c = await raw(lb.address.port, ['CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n']);
      assert.deepEqual(statuses(c), ['400'], c);
      const old = await raw(lb.address.port, ['GET /\r\n']);
      assert.ok(!/web GET/.test(old), `HTTP/0.9 was forwarded: ${old}`);
    });
  });
}
