// The balancer page's rollout panels in real Chromium (playwright-core): a `switchyard up` with a
// split route under slow start and the mass-loss guard shows the split's subsets and shares, an
// instance ramping up, a deregistration burst held, the change-latency histogram; and a balancer
// following a real agent that stops answering (SIGSTOP) shows its watch going stale and back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { http, tempDir, waitFor } from '../helpers/agent.js';
import { startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { REPO, freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { resolveLbConfig } from '../../src/config/lb.js';
import { RemoteSource } from '../../src/discovery/remote-source.js';
import { followPredicate } from '../../src/discovery/follow.js';
import { startLb } from '../../src/cli/wiring/lb.js';
import type { RunningLb } from '../../src/cli/wiring/lb.js';
import { createUiHandler } from '../../src/ui/handler.js';

const CHROMIUM = process.env.SY_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO, 'test-output', 'ui');
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install -y chromium)` : false;

const until = <T>(fn: () => Promise<T>, what: string, ms = 15_000): Promise<T> => waitFor(fn, what, ms, 100);

function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  return problems;
}

const text = async (page: Page, selector: string): Promise<string> => ((await page.locator(selector).allTextContents()).join(' | '));

describe('web UI: rollouts on the balancer page', { skip }, () => {
  let browser: Browser;
  const backends: Backend[] = [];
  const procs: Proc[] = [];
  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    for (const p of procs) await stop(p);
    await Promise.all(backends.map((b) => b.close()));
  });

  const backend = async (name: string): Promise<Backend> => {
    const b = await startBackend(name);
    backends.push(b);
    return b;
  };

  it('shows splits, slow-start ramps, held changes and the change-latency histogram', async () => {
    const [api, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(tempDir('sy-ui-rollouts-'), 'up.yaml');
    writeFileSync(file, JSON.stringify({
      lb: {
        routes: [
          { path: '/', service: 'shop', split: [{ meta: { version: 'v1' }, weight: 80 }, { meta: { version: 'v2' }, weight: 20 }], sticky: { cookie: 'sid' }, 'slow-start': '10m' },
          { path: '/burst', service: 'burst' },
        ],
        guard: { 'max-drop': 50, hold: '10m' },
      },
    }));
    const p = switchyard(['up', '--config', file, '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator', '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', tempDir('sy-ui-rollouts-data-'), '--log-level', 'warn']);
    procs.push(p);
    const agent = `http://127.0.0.1:${api}`;
    const lbUrl = `http://127.0.0.1:${lbPort}`;
    await waitHttpOk(`${agent}/v1/status/leader`, p);
    const register = async (service: string, b: Backend, meta: Record<string, string> = {}): Promise<void> => {
      const r = await http(agent, 'PUT', '/v1/agent/service/register', { Name: service, ID: `${service}-${b.name}`, Address: '127.0.0.1', Port: b.port, Meta: meta });
      assert.equal(r.status, 200, r.text);
    };
    // `up` starts its agent (which answers at once) before the balancer it then attaches: until then the view
    // says `attached: false` and has no groups.
    const view = async (): Promise<{ groups?: { service: string; upstreams: unknown[] }[]; rollouts: { held: unknown[]; slowStart: { address: string }[] } }> =>
      (await http(agent, 'GET', '/ui/api/lb')).json as never;
    const count = (v: Awaited<ReturnType<typeof view>>, service: string): number => (v.groups ?? []).filter((g) => g.service === service).reduce((n, g) => n + g.upstreams.length, 0);

    for (const n of ['v1-a', 'v1-b']) await register('shop', await backend(n), { version: 'v1' });
    await register('shop', await backend('v2-a'), { version: 'v2' });
    for (const n of ['burst-a', 'burst-b', 'burst-c']) await register('burst', await backend(n));
    await until(async () => (count(await view(), 'shop') === 3 && count(await view(), 'burst') === 3 ? true : undefined), 'the first tables');
    // A new canary instance: it ramps up over the route's ten minutes of slow start.
    const fresh = await backend('v2-b');
    await register('shop', fresh, { version: 'v2' });
    await until(async () => ((await view()).rollouts.slowStart.some((u) => u.address === `127.0.0.1:${fresh.port}`) ? true : undefined), 'the new instance ramping');
    // A deregistration burst: held for the guard's ten minutes.
    for (const n of ['burst-a', 'burst-b', 'burst-c']) await http(agent, 'PUT', `/v1/agent/service/deregister/burst-${n}`);
    await until(async () => ((await view()).rollouts.held.length === 3 ? true : undefined), 'three held instances');
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${lbUrl}/burst`)).status, 200, 'the held instances serve');
    assert.equal((await fetch(lbUrl)).status, 200);

    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, colorScheme: 'light' });
    try {
      const page = await context.newPage();
      const problems = watchConsole(page);
      await page.goto(`${agent}/ui/lb`);
      await page.getByRole('heading', { level: 2, name: 'Rollouts' }).waitFor();
      // Splits: both subsets with their shares, and the sticky key.
      const splits = page.locator('#splits-table');
      await until(async () => ((await splits.locator('tbody tr').count()) === 2 ? true : undefined), 'two subsets');
      assert.match(await text(page, '#splits-table tr[data-subset^="shop||version=v1"] [data-col="share"]'), /80 %/);
      assert.match(await text(page, '#splits-table tr[data-subset^="shop||version=v2"] [data-col="share"]'), /20 %/);
      assert.match(await text(page, '#splits-table tbody'), /sticky by cookie sid/);
      assert.equal(await text(page, '#splits-table [data-col="subset"]'), 'version=v1 | version=v2');
      // Slow start: the new instance, below full weight.
      const ramp = await text(page, `#slow-start-table tr[data-ramp="127.0.0.1:${fresh.port}"] [data-col="ramp"]`);
      const pct = Number(/(\d+) % of full/.exec(ramp)?.[1]);
      assert.ok(pct >= 10 && pct < 100, `ramping: ${ramp}`);
      // Held changes: the burst, with when each goes.
      await until(async () => ((await page.locator('#held-table tbody tr').count()) === 3 ? true : undefined), 'three held rows');
      assert.match(await text(page, '[data-guard="holding"]'), /Holding 3 instances that left the registry/);
      assert.match(await text(page, '[data-guard="holding"]'), /more than 50 % of a service's instances leave within 10 min/);
      // The watch (in-process inside `up`) and the change-latency histogram.
      assert.match(await text(page, '[data-watch]'), /in-process/);
      const caption = await until(async () => {
        const c = await text(page, '#change-latency-table caption');
        return /table swap \(([1-9]\d*)/.test(c) && /first request it routed \(([1-9]\d*)/.test(c) ? c : undefined;
      }, 'swap and first-request counts in the histogram') as string;
      assert.match(caption, /Change latency: from the registry's commit/);
      assert.match(await text(page, '[data-last-change]'), /swap .*ms.*first request/);
      const rows = await page.locator('#change-latency-table tbody tr').count();
      assert.ok(rows >= 1);
      await page.locator('#registry-changes').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, '10-lb-rollouts.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('shows a balancer\'s registry watch going stale when the agent stops answering, and back', async () => {
    const port = await freePort();
    const agentProc = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', tempDir('sy-ui-stale-'), '--node', 'n1', '--log-level', 'warn', '--dns-addr', '127.0.0.1:0']);
    procs.push(agentProc);
    const agent = `http://127.0.0.1:${port}`;
    await waitHttpOk(`${agent}/v1/status/leader`, agentProc);
    const b = await backend('stale-a');
    assert.equal((await http(agent, 'PUT', '/v1/agent/service/register', { Name: 'quiet', ID: 'quiet-a', Address: '127.0.0.1', Port: b.port })).status, 200);
    // A balancer following that agent over HTTP, shown by a UI in this process (as `up` shows its own).
    const cfg = resolveLbConfig({ routes: [{ service: 'quiet' }] }, { listen: '127.0.0.1:0', registry: agent, 'log-level': 'silent' });
    const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
    const source = new RemoteSource({ address: agent, follow: followPredicate(cfg.routes), logger, waitMs: 1000, staleMarginMs: 500 });
    let lb: RunningLb | undefined;
    const ui = createUiHandler({ logger, pushEveryMs: 250 });
    // The page also reads the agent's own API (/v1/agent/self): pass those through to the agent.
    const server: Server = createServer((req, res) => {
      if (ui.handle(req, res)) return;
      const up = request(`${agent}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
    let stopped = false;
    try {
      lb = await startLb(cfg, logger, { source, processMetrics: false });
      ui.attachLb(lb, source);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const page = await context.newPage();
      const problems = watchConsole(page);
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ui/lb`);
      await page.locator('[data-watch="fresh"]').waitFor();
      process.kill(agentProc.pid, 'SIGSTOP');
      stopped = true;
      // The service list's watch may go stale a moment before the service's own: wait for the latter to be named.
      const alert = page.locator('[data-watch="stale"]', { hasText: 'health/service/quiet' });
      await alert.waitFor({ timeout: 20_000 });
      assert.match(await alert.textContent() ?? '', /Registry watch stale.*health\/service\/quiet/s);
      assert.equal(await alert.getAttribute('role'), 'alert');
      await page.screenshot({ path: join(SHOTS, '11-lb-watch-stale-dark.png'), fullPage: true });
      process.kill(agentProc.pid, 'SIGCONT');
      stopped = false;
      await page.locator('[data-watch="fresh"]').waitFor({ timeout: 20_000 });
      assert.deepEqual(problems, []);
    } finally {
      if (stopped) process.kill(agentProc.pid, 'SIGCONT');
      await context.close();
      ui.close();
      await new Promise((r) => server.close(r));
      await lb?.close();
    }
  });
});
