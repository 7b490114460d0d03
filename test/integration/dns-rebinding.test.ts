// DNS rebinding: a web page whose own name was made to resolve to 127.0.0.1 is, to the browser, the
// same origin as an agent listening there, and could read and write the whole registry. An agent on
// loopback answers only requests addressed to localhost, an IP address, a single-label name or a name
// its operator listed (src/core/host-guard.ts), on both of its HTTP paths (the raw front and Node's
// server), for the API, the UI and /metrics alike. Checked with raw requests and with real Chromium.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { http, startTestAgent } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { raw, statusLines } from '../helpers/raw-http.js';
import { loopbackHostGuard } from '../../src/core/host-guard.js';
import { startStaticLb } from '../helpers/lb.js';

const CHROMIUM = process.env.SY_CHROMIUM ?? '/usr/bin/chromium';
const noChromium = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

/** One request on its own connection; its status line's code and the body. */
async function ask(port: number, req: string): Promise<{ status: string; text: string }> {
  const got = await raw(port, [req], { until: (s) => statusLines(s).length >= 1 && /\r\n\r\n/.test(s) });
  return { status: statusLines(got)[0] ?? '', text: got };
}

describe('DNS rebinding: an agent on loopback answers only the names it is reached by', () => {
  let a: TestAgent;
  let listed: TestAgent;
  before(async () => {
    a = await startTestAgent();
    listed = await startTestAgent({ 'allowed-hosts': ['consul.example.com', '*.corp.example'] });
    await http(a.url, 'PUT', '/v1/kv/secret', 'the-db-password');
  });
  after(async () => {
    await a.stop();
    await listed.stop();
  });

  it('refuses a foreign name on every path, on the raw front and on Node\'s server, and changes nothing', async () => {
    const port = a.address.port;
    const before = (await http(a.url, 'GET', '/v1/kv/?recurse')).text;
    for (const [what, req] of [
      ['a KV read', 'GET /v1/kv/secret?raw HTTP/1.1\r\nHost: evil.example:8500\r\n\r\n'],
      ['a KV write', 'PUT /v1/kv/secret HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 5\r\n\r\nowned'],
      ['a registration', 'PUT /v1/agent/service/register HTTP/1.1\r\nHost: rebind.attacker.test.\r\nContent-Length: 13\r\n\r\n{"Name":"x"} '],
      ['the UI', 'GET /ui/ HTTP/1.1\r\nHost: evil.example\r\n\r\n'],
      ['/metrics', 'GET /metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n'],
      // HTTP/1.0 and chunked bodies are served by Node's server, not the raw front.
      ['HTTP/1.0', 'GET /v1/kv/secret?raw HTTP/1.0\r\nHost: evil.example\r\n\r\n'],
      ['a chunked write', 'PUT /v1/kv/secret HTTP/1.1\r\nHost: evil.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nowned\r\n0\r\n\r\n'],
      ['a name with a trailing dot', 'GET /v1/kv/secret?raw HTTP/1.1\r\nHost: EVIL.example.:80\r\n\r\n'],
    ] as const) {
      const r = await ask(port, req);
      assert.equal(r.status, '403', `${what}: ${r.text.slice(0, 200)}`);
      assert.match(r.text, /is not allowed: this server listens on loopback only.*DNS rebinding.*add it with --allowed-hosts/, what);
      assert.doesNotMatch(r.text, /the-db-password/, what);
    }
    assert.equal((await http(a.url, 'GET', '/v1/kv/?recurse')).text, before, 'nothing was written');
    assert.equal((await http(a.url, 'GET', '/v1/agent/service/x')).status, 404);
  });

  it('answers the names a loopback listener is really reached by, and the ones its operator lists', async () => {
    const port = a.address.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '10.1.2.3', 'consul:8500', 'agent.localhost']) {
      const r = await ask(port, `GET /v1/kv/secret?raw HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.equal(r.status, '200', `Host ${JSON.stringify(host)}: ${r.text.slice(0, 160)}`);
    }
    // An HTTP/1.0 client may send no Host at all (no browser does).
    assert.equal((await ask(port, 'GET /v1/kv/secret?raw HTTP/1.0\r\n\r\n')).status, '200');
    const lp = listed.address.port;
    await http(listed.url, 'PUT', '/v1/kv/k', 'v');
    for (const [host, status] of [['consul.example.com', '200'], ['Consul.Example.Com:443', '200'], ['a.b.corp.example', '200'], ['corp.example', '403'], ['example.com', '403']] as const) {
      assert.equal((await ask(lp, `GET /v1/kv/k?raw HTTP/1.1\r\nHost: ${host}\r\n\r\n`)).status, status, host);
    }
  });

  it('the balancer\'s admin address on loopback answers the same names, and admin-allowed-hosts', async () => {
    const listedAdmin = ['lb-admin.example.com'];
    for (const [allowed, host, status] of [
      [[], 'evil.example', '403'], [[], '127.0.0.1', '200'], [[], 'localhost:9081', '200'],
      [listedAdmin, 'lb-admin.example.com', '200'], [listedAdmin, 'evil.example', '403'],
    ] as [string[], string, string][]) {
      const lb = await startStaticLb({ service: 'web', 'admin-allowed-hosts': allowed }, { web: [] });
      try {
        const port = Number(new URL(lb.adminUrl).port);
        for (const path of ['/routes', '/metrics', '/health']) {
          const r = await ask(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
          if (status === '403') {
            assert.equal(r.status, '403', `${path} Host ${host}: ${r.text.slice(0, 200)}`);
            assert.match(r.text, /DNS rebinding.*admin-allowed-hosts in the config file/);
          } else if (path === '/health') assert.match(r.status, /^(200|503)$/, `${path} Host ${host}: ${r.text.slice(0, 200)}`);
          else assert.equal(r.status, '200', `${path} Host ${host}: ${r.text.slice(0, 200)}`);
        }
      } finally {
        await lb.close();
      }
    }
  });

  it('a listener other machines can reach has no name check (--acl-token protects it); * turns the check off', () => {
    assert.equal(loopbackHostGuard('0.0.0.0', []), undefined);
    assert.equal(loopbackHostGuard('192.168.1.10', []), undefined);
    assert.equal(loopbackHostGuard('127.0.0.1', ['*']), undefined);
    const check = loopbackHostGuard('::1', []);
    assert.ok(check);
    assert.equal(check('[::1]:8500'), undefined);
    assert.match(check('evil.example') ?? '', /^Host "evil\.example" is not allowed/);
  });

  it('Chromium: a page whose name resolves to 127.0.0.1 cannot read the KV store; localhost still can', { skip: noChromium }, async () => {
    const port = a.address.port;
    // --host-resolver-rules makes evil.example resolve to 127.0.0.1: where a rebinding attack ends up.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP evil.example 127.0.0.1'],
    });
    try {
      const page = await browser.newPage();
      const res = await page.goto(`http://evil.example:${port}/ui/`);
      assert.equal(res?.status(), 403, 'the UI is not served under the attacker\'s name');
      // The page's own origin is evil.example:<port>: same-origin to the agent, no CORS in the way.
      const stolen = await page.evaluate(async () => {
        const r = await fetch('/v1/kv/secret?raw');
        const w = await fetch('/v1/kv/secret', { method: 'PUT', body: 'owned' });
        return { read: r.status, body: await r.text(), write: w.status };
      });
      assert.equal(stolen.read, 403);
      assert.doesNotMatch(stolen.body, /the-db-password/);
      assert.equal(stolen.write, 403);
      const ok = await page.goto(`http://localhost:${port}/v1/kv/secret?raw`);
      assert.equal(ok?.status(), 200);
      assert.equal(await ok?.text(), 'the-db-password');
    } finally {
      await browser.close();
    }
    assert.equal((await http(a.url, 'GET', '/v1/kv/secret?raw')).text, 'the-db-password');
  });
});
