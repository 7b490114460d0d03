// The web UI in real Chromium (playwright-core): live services, instance checks, KV editing, the balancer's live view; any console error fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { http, sleep, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import { REPO, freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const CHROMIUM = process.env.SY_CHROMIUM ?? '/usr/bin/chromium';
/** The README names this folder; test-output/ is git-ignored. */
const SHOTS = join(REPO, 'test-output', 'ui');
// CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

interface Backend {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  hits: number;
}

async function startBackend(name: string): Promise<Backend> {
  const server = createServer();
  const b = { name, port: 0, server, hits: 0 };
  server.on('request', (req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`ok from ${name}`);
      return;
    }
    b.hits++;
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.port = (server.address() as AddressInfo).port;
  return b;
}

function closeBackend(b: Backend): Promise<void> {
  return new Promise((r) => {
    b.server.closeAllConnections();
    b.server.close(() => r());
  });
}

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // The machine's network is closed: without these Chromium keeps dialling Google's hosts.
    // (launch() always starts from a fresh temporary profile; it refuses a --user-data-dir.)
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** Collects every console error and uncaught page error; the test fails if any appear. */
function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const until = <T>(fn: () => Promise<T>, what: string, ms = 15_000): Promise<T> => waitFor(fn, what, ms, 100);

describe('web UI', { skip }, () => {
  let browser: Browser;
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });

  it('shows services, checks, KV and the balancer updating live as instances come and go', async () => {
    const [api, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const p: Proc = switchyard(['up', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator', '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', tempDir('sy-ui-'), '--service', 'web', '--log-level', 'warn']);
    const backends = await Promise.all(['u1', 'u2', 'u3'].map(startBackend));
    const agent = `http://127.0.0.1:${api}`;
    let context: BrowserContext | undefined;
    let traffic = true;
    let load: Promise<void> | undefined;
    const register = async (b: Backend): Promise<void> => {
      const r = await http(agent, 'PUT', '/v1/agent/service/register', {
        Name: 'web', ID: `web-${b.name}`, Address: '127.0.0.1', Port: b.port, Tags: ['v1'],
        Check: { Name: `HTTP on ${b.name}`, HTTP: `http://127.0.0.1:${b.port}/health`, Interval: '1s' },
      });
      assert.equal(r.status, 200, r.text);
    };
    try {
      await waitHttpOk(`${agent}/v1/status/leader`, p);
      context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
      const page = await context.newPage();
      const problems = watchConsole(page);

      // `/` sends a browser to the UI, as Consul does with its UI enabled.
      await page.goto(`${agent}/`);
      assert.equal(new URL(page.url()).pathname, '/ui/services');
      await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
      assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Services' }).getAttribute('aria-current'), 'page');
      assert.equal(await page.locator('#announcer').getAttribute('aria-live'), 'polite');

      // Two instances, then a third: the page follows without a reload.
      const row = page.locator('#services-table tr[data-service="web"]');
      const instances = row.locator('[data-col="instances"]');
      const health = row.locator('[data-col="health"]');
      await register(backends[0]!);
      await register(backends[1]!);
      await until(async () => (await instances.textContent()) === '2' && /2 passing/.test((await health.textContent()) ?? ''), 'web shows 2 passing instances');
      await shot(page, '01-services-two-instances');
      await register(backends[2]!);
      await until(async () => (await instances.textContent()) === '3' && /3 passing/.test((await health.textContent()) ?? ''), 'web shows 3 passing instances');
      await until(async () => /web: 3 instances/.test((await page.locator('#announcer').textContent()) ?? ''), 'the change is announced to screen readers');
      await shot(page, '02-services-three-instances');

      // Keyboard only, from a fresh load: the first Tab stop is the skip link; Tab on to the service
      // link, Enter; focus lands on the new page's heading. (String expressions: tsconfig has no DOM lib.)
      await page.reload();
      await until(async () => (await instances.textContent()) === '3', 'the reloaded page lists web');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate<string>('document.activeElement.textContent'), 'Skip to content');
      let onLink = false;
      for (let i = 0; i < 20 && !onLink; i++) {
        await page.keyboard.press('Tab');
        onLink = await page.evaluate<boolean>("document.activeElement.tagName === 'A' && document.activeElement.textContent === 'web'");
      }
      assert.ok(onLink, 'the web service link is reachable with Tab');
      assert.equal(await page.evaluate<string>('getComputedStyle(document.activeElement).outlineStyle'), 'solid', 'the focused link shows a focus ring');
      await page.keyboard.press('Enter');
      await page.waitForURL(/\/ui\/services\/web$/);
      await page.getByRole('heading', { level: 1, name: 'web' }).waitFor();
      assert.equal(await page.evaluate<string>('document.activeElement.tagName'), 'H1', 'focus moves to the new page\'s heading');
      await until(async () => (await page.locator('#instances-table tbody tr').count()) === 3, 'three instance rows');

      // The instance page shows its check and the check's output.
      await page.getByRole('link', { name: 'web-u1', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'web-u1' }).waitFor();
      await page.getByRole('heading', { level: 2, name: /^Health checks \(\d+\)$/ }).waitFor();
      await page.getByRole('heading', { level: 3, name: 'HTTP on u1' }).waitFor();
      const output = page.locator('article[data-check="service:web-u1"] pre');
      await until(async () => /200 OK Output: ok from u1/.test((await output.textContent()) ?? ''), 'the check output is shown');
      assert.match((await page.locator('article[data-check="service:web-u1"]').textContent()) ?? '', /Passing/);
      await shot(page, '03-instance-checks');

      // KV: create through the form, browse into the folders, edit, see a change made elsewhere, delete with confirmation.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Key/Value' }).click();
      await page.getByRole('heading', { level: 1, name: 'Key/Value' }).waitFor();
      await page.getByRole('textbox', { name: 'Key name' }).fill('app/config/greeting');
      await page.getByRole('textbox', { name: 'Value' }).fill('hello');
      await page.getByRole('button', { name: 'Create key' }).click();
      await until(async () => (await http(agent, 'GET', '/v1/kv/app/config/greeting?raw')).text === 'hello', 'the key is stored');
      await page.getByRole('link', { name: 'app/' }).click();
      await page.getByRole('link', { name: 'config/' }).click();
      await page.getByRole('heading', { level: 1, name: 'app/config/' }).waitFor();
      // Creating an existing key is refused with a clear message, not a silent overwrite.
      await page.getByRole('textbox', { name: 'Key name' }).fill('greeting');
      await page.getByRole('button', { name: 'Create key' }).click();
      await page.getByRole('alert').filter({ hasText: 'already exists' }).waitFor();
      await shot(page, '04-kv-folder');
      await page.getByRole('link', { name: 'greeting' }).first().click();
      await page.waitForURL(/\/ui\/kv\/app\/config\/greeting$/);
      const value = page.getByRole('textbox', { name: 'Value' });
      await until(async () => (await value.inputValue()) === 'hello', 'the value is loaded');
      await value.fill('hello, world');
      await page.getByRole('button', { name: 'Save' }).click();
      await until(async () => (await http(agent, 'GET', '/v1/kv/app/config/greeting?raw')).text === 'hello, world', 'the edit is saved');
      await page.getByText(/^Saved at/).waitFor();
      // The page has caught up with the save once its live watch shows the saved entry's modify index.
      const saved = ((await http(agent, 'GET', '/v1/kv/app/config/greeting')).json as { ModifyIndex: number }[])[0]!.ModifyIndex;
      const shownIndex = page.locator('div:has(> dt:text-is("Modify index")) > dd');
      await until(async () => (await shownIndex.textContent({ timeout: 1000 }).catch(() => null)) === String(saved), `the page showing modify index ${saved} (the save) from its watch`);
      await http(agent, 'PUT', '/v1/kv/app/config/greeting', 'changed elsewhere');
      await until(async () => (await value.inputValue()) === 'changed elsewhere', 'a change made elsewhere shows up live');
      await shot(page, '05-kv-key');
      await page.getByRole('button', { name: 'Delete', exact: true }).click();
      const dialog = page.getByRole('dialog', { name: 'Delete this key?' });
      await dialog.waitFor();
      await shot(page, '06-kv-delete-confirm');
      await dialog.getByRole('button', { name: 'Delete key' }).click();
      await page.waitForURL(/\/ui\/kv\/app\/config\/$/);
      assert.equal((await http(agent, 'GET', '/v1/kv/app/config/greeting')).status, 404);
      await page.getByText('app/config/ is empty.').waitFor();

      // Traffic through the balancer shows up per instance; a deregistered instance leaves the view.
      load = (async () => {
        while (traffic) {
          await Promise.all(Array.from({ length: 4 }, async () => {
            const r = await fetch(`http://127.0.0.1:${lbPort}/`).catch(() => undefined);
            await r?.arrayBuffer();
          }));
          await sleep(20); // pacing: steady, light traffic for the live view
        }
      })();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Load balancer' }).click();
      await page.getByRole('heading', { level: 1, name: 'Load balancer' }).waitFor();
      const rps = (b: Backend) => page.locator(`tr[data-upstream="127.0.0.1:${b.port}"] [data-col="rps"]`);
      const rate = async (b: Backend): Promise<number> => Number((await rps(b).textContent().catch(() => '0'))?.replace(/,/g, '') ?? 0);
      await until(async () => (await Promise.all(backends.map(rate))).every((v) => v > 0), 'every instance shows a non-zero req/s', 20_000);
      await until(async () => /\d/.test((await page.locator('[data-stat="p99"] .stat-value').textContent()) ?? ''), 'a p99 latency is shown');
      assert.equal(await page.locator('[data-stat="serving"] .stat-value').textContent(), '3 of 3');
      await page.getByRole('table', { name: 'Routes, most specific first' }).waitFor();
      await page.getByRole('table', { name: 'Instances of web in the balancer' }).waitFor();
      // A few seconds of history (one point a second) for the sparkline in the screenshot.
      const sparkPoints = async (): Promise<number> => ((await page.locator('[data-stat="rps"] polyline.spark-line').getAttribute('points', { timeout: 500 }).catch(() => null)) ?? '').split(' ').filter(Boolean).length;
      await until(async () => (await sparkPoints()) >= 3, 'three points in the requests/s sparkline');
      await shot(page, '07-lb-live');

      // The page updates each second without rebuilding what did not change: a user who selected an
      // instance's address to copy it keeps the selection, and the row stays the same element while its
      // req/s moves. (A rebuilt table dropped the selection within a second.)
      /** Selects the address (the row header's text) of the row `rowExpr` finds, keeps the row as window[name]; '' without one. */
      const selectAddress = (rowExpr: string, name: string): Promise<string> => page.evaluate<string>(`(() => {
        const row = ${rowExpr};
        if (!row) return '';
        const range = document.createRange();
        range.selectNodeContents(row.querySelector('th').firstChild);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        window.${name} = row;
        return row.dataset.upstream;
      })()`);
      const u1 = `127.0.0.1:${backends[0]!.port}`;
      assert.equal(await selectAddress(`document.querySelector('tr[data-upstream="${u1}"]')`, '__u1Row'), u1);
      await page.evaluate(`(() => {
        window.__rpsSeen = new Set([document.querySelector('[data-stat="rps"] .stat-value').textContent]);
        new MutationObserver(() => window.__rpsSeen.add(document.querySelector('[data-stat="rps"] .stat-value')?.textContent)).observe(document.body, { subtree: true, childList: true, characterData: true });
      })()`);
      await until(async () => ((await page.evaluate<number>('window.__rpsSeen.size')) >= 3 ? true : undefined), 'two updates of the requests/s figure');
      assert.equal(await page.evaluate<string>('getSelection().toString()'), u1, 'the selected address survives the live updates');
      assert.equal(await page.evaluate<boolean>(`window.__u1Row.isConnected && window.__u1Row === document.querySelector('tr[data-upstream="${u1}"]')`), true, 'the row is updated in place');

      // The row after u2's (rows follow the table's order), with its address selected: when u2 leaves, it
      // must keep its node and the selection, not be moved up (a moved node loses both).
      const u2 = `127.0.0.1:${backends[1]!.port}`;
      const afterU2 = await selectAddress(`document.querySelector('tr[data-upstream="${u2}"]')?.nextElementSibling`, '__afterU2');
      assert.notEqual(afterU2, '', 'u2 is not the last row (instances are listed by ID)');
      await http(agent, 'PUT', '/v1/agent/service/deregister/web-u2');
      await until(async () => (await rps(backends[1]!).count()) === 0, 'u2 leaves the live view');
      assert.equal(await page.evaluate<string>('getSelection().toString()'), afterU2, 'the selection in the row after the one that left survives');
      assert.equal(await page.evaluate<boolean>(`window.__afterU2.isConnected && window.__afterU2 === document.querySelector('tr[data-upstream="${afterU2}"]')`), true);
      assert.equal(await page.locator('[data-stat="serving"] .stat-value').textContent(), '2 of 2');
      await until(async () => (await rate(backends[0]!)) > 0 && (await rate(backends[2]!)) > 0, 'u1 and u3 keep taking traffic');
      assert.equal(await page.evaluate<boolean>(`window.__u1Row.isConnected && window.__u1Row === document.querySelector('tr[data-upstream="${u1}"]')`), true, 'another row leaving leaves u1\'s row in place');
      const left = `127.0.0.1:${backends[1]!.port} left`;
      await until(async () => ((await page.locator('#announcer').textContent()) ?? '').includes(left), 'the departure is announced');
      await shot(page, '08-lb-after-deregister');

      traffic = false;
      await load;
      assert.deepEqual(problems, [], 'no console or page errors');
    } catch (err) {
      // The page as it was when the test gave up says more than a timeout message.
      const page = context?.pages()[0];
      if (page) await shot(page, 'failure').catch(() => undefined);
      throw err;
    } finally {
      traffic = false;
      await load?.catch(() => undefined);
      await context?.close();
      const r = await stop(p, 'SIGINT');
      assert.equal(r.code, 0, `switchyard up shuts down cleanly: ${p.stderr()}`);
      await Promise.all(backends.map(closeBackend));
    }
  });

  it('says so when the agent runs without a balancer, and serves the UI safely', async () => {
    const port = await freePort();
    const p = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', tempDir('sy-ui-agent-'), '--log-level', 'warn']);
    const agent = `http://127.0.0.1:${port}`;
    let context: BrowserContext | undefined;
    try {
      await waitHttpOk(`${agent}/v1/status/leader`, p);
      const root = await fetch(`${agent}/`, { redirect: 'manual' });
      assert.equal(root.status, 301);
      assert.equal(root.headers.get('location'), '/ui/');
      const js = await fetch(`${agent}/ui/app.js`);
      assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
      const html = await fetch(`${agent}/ui/kv/app/config.json`);
      assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8', 'client-side routes get the app shell, whatever their last segment');
      assert.match(html.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      for (const bad of ['/ui/%2e%2e/package.json', '/ui/js/%2e%2e/%2e%2e/package.json', '/ui/..%2fpackage.json', '/ui/.hidden.js']) {
        const r = await fetch(`${agent}${bad}`);
        assert.ok(r.status === 404 || r.status === 400, `${bad} → ${r.status}`);
        assert.doesNotMatch(await r.text(), /"name": "switchyard"/);
      }
      assert.match(await (await fetch(`${agent}/metrics`)).text(), /^switchyard_registry_index \d+/m);
      assert.deepEqual(await (await fetch(`${agent}/ui/api/lb`)).json(), {
        attached: false, reason: 'This agent runs without a load balancer. Run `switchyard up` to see the live balancer view here.',
      });

      context = await browser.newContext({ viewport: { width: 1280, height: 600 }, colorScheme: 'dark' });
      const page = await context.newPage();
      const problems = watchConsole(page);
      await page.goto(`${agent}/ui/lb`);
      await page.getByText('This agent runs without a load balancer').waitFor();
      await shot(page, '09-lb-absent-dark');

      // The live pages' update (dom.js patch) against a rebuild, on random trees: whatever it keeps, moves
      // or replaces, the result must be exactly the new tree; an identical tree keeps every node.
      type Tree = string | { tag: string; attrs: Record<string, string>; width?: number | undefined; children: Tree[] };
      const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
        node: fc.oneof({ depthSize: 'small', withCrossShrink: true },
          fc.constantFrom('', 'a', 'b', '1.2 ms', 'é'),
          fc.record({
            tag: fc.constantFrom('div', 'div', 'span', 'td', 'button', 'svg'),
            attrs: fc.dictionary(fc.constantFrom('class', 'id', 'data-key', 'data-upstream', 'title', 'hidden'), fc.constantFrom('x', 'y'), { maxKeys: 2 }),
            width: fc.option(fc.integer({ min: 0, max: 100 }), { nil: undefined }),
            children: fc.array(tie('node'), { maxLength: 4 }),
          })),
      })).node;
      const pairs = fc.sample(fc.tuple(fc.array(tree, { maxLength: 5 }), fc.array(tree, { maxLength: 5 })), { numRuns: 1500, seed: 20261207 });
      const failures = await page.evaluate<string[]>(`(async (pairs) => {
        const { h, patch } = await import('/ui/js/dom.js');
        const SVG = 'http://www.w3.org/2000/svg';
        const build = (t) => {
          if (typeof t === 'string') return t;
          const el = t.tag === 'svg' ? document.createElementNS(SVG, 'svg') : h(t.tag, t.attrs);
          if (t.tag === 'svg') for (const [k, v] of Object.entries(t.attrs)) el.setAttribute(k, v);
          if (t.width !== undefined) el.style.width = t.width + '%';
          for (const c of t.children) el.append(typeof c === 'string' ? document.createTextNode(c) : build(c));
          return el;
        };
        // Attribute order is not part of the result (innerHTML would list them in the order they were set).
        const canon = (n) => n.nodeType === 3 ? JSON.stringify(n.nodeValue)
          : n.nodeName + '[' + [...n.attributes].map((x) => x.name + '=' + x.value).sort().join(' ') + '](' + [...n.childNodes].map(canon).join(',') + ')';
        const failures = [];
        for (const [a, b] of pairs) {
          const box = document.createElement('div');
          patch(box, ...a.map(build));
          const expected = document.createElement('div');
          expected.append(...b.map(build).map((n) => typeof n === 'string' ? document.createTextNode(n) : n));
          patch(box, ...b.map(build));
          if (canon(box) !== canon(expected)) failures.push(JSON.stringify({ a, b, got: canon(box), want: canon(expected) }));
          const before = [...box.querySelectorAll('*')];
          patch(box, ...b.map(build));
          const kept = [...box.querySelectorAll('*')];
          if (canon(box) !== canon(expected)) failures.push(JSON.stringify({ again: b, got: canon(box) }));
          else {
            // Buttons (form controls) are always replaced, with what they hold; everything else stays.
            const rebuilt = before.find((n, i) => n !== kept[i] && !n.closest('button'));
            if (rebuilt) failures.push(JSON.stringify({ same: b, rebuilt: rebuilt.outerHTML }));
          }
        }
        return failures;
      })(${JSON.stringify(pairs)})`);
      assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of ${pairs.length} updates differ from a rebuild`);
      assert.deepEqual(problems, []);
    } finally {
      await context?.close();
      const r = await stop(p, 'SIGINT');
      assert.equal(r.code, 0, p.stderr());
    }
  });

  it('while `up` has not attached its balancer yet, the page says it is starting and keeps asking', async () => {
    // An agent as `up` starts it, before the balancer is attached (which never happens here).
    const agent = await startTestAgent({}, tempDir('sy-ui-starting-'), { lbStarting: true });
    let context: BrowserContext | undefined;
    try {
      assert.deepEqual(await (await fetch(`${agent.url}/ui/api/lb`)).json(), { attached: false, reason: 'The load balancer is starting.', starting: true });
      const sse = await (await fetch(`${agent.url}/ui/api/lb/events`)).text();
      assert.match(sse, /^retry: 1000\n/, 'browsers come back within a second, not a minute');
      context = await browser.newContext({ viewport: { width: 1280, height: 600 } });
      const page = await context.newPage();
      const problems = watchConsole(page);
      let asked = 0;
      page.on('request', (r) => void (new URL(r.url()).pathname === '/ui/api/lb' && asked++));
      await page.goto(`${agent.url}/ui/lb`);
      await page.getByText('The load balancer is starting.').waitFor();
      await until(async () => asked >= 3 || undefined, 'the page asking again while the balancer starts');
      assert.deepEqual(problems, []);
    } finally {
      await context?.close();
      await agent.stop();
    }
  });
});
