// Timeouts and retries per route (nginx's proxy_read_timeout and proxy_next_upstream_tries per location): a route's own
// values apply to its requests on every plane, the other routes keep the balancer's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { request } from 'undici';
import { startTestAgent } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { lbConfigSchema, resolveLbConfig } from '../../src/config/lb.js';

async function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  const r = await request(url);
  return { status: r.statusCode, body: await r.body.text(), ms: Date.now() - t0 };
}

async function h2get(base: string, path: string): Promise<{ status: number; ms: number }> {
  const s = h2connect(base);
  const t0 = Date.now();
  try {
    return await new Promise((resolve, reject) => {
      const st = s.request({ ':path': path });
      let status = 0;
      st.on('response', (h) => (status = Number(h[':status'])));
      st.on('data', () => undefined).on('end', () => resolve({ status, ms: Date.now() - t0 })).on('error', reject);
    });
  } finally {
    s.close();
  }
}

describe('lb: timeouts and retries per route', () => {
  let agent: TestAgent;
  let slow: Backend;
  let bad: Backend;
  let good: Backend;
  const lbs: TestLb[] = [];

  before(async () => {
    agent = await startTestAgent();
    slow = await startBackend('slow');
    slow.handler = (_req, res) => void setTimeout(() => res.end('late'), 1500);
    bad = await startBackend('bad');
    bad.handler = (_req, res) => res.writeHead(503).end('bad');
    good = await startBackend('good');
    await registerBackend(agent.url, 'slow', slow);
    await registerBackend(agent.url, 'flaky', bad);
    await registerBackend(agent.url, 'flaky', good);
  });
  after(async () => {
    for (const lb of lbs) await lb.close();
    await Promise.all([slow.close(), bad.close(), good.close()]);
    await agent.stop();
  });

  it('config: a route\'s values over the balancer\'s, the rest inherited; bad ones named', () => {
    const cfg = resolveLbConfig(lbConfigSchema.parse({
      timeouts: { idle: '20s', total: '90s' }, retries: { attempts: 4, 'budget-percent': 30 },
      routes: [{ path: '/a', service: 's', timeouts: { header: '300ms' }, retries: { attempts: 1 } }, { path: '/b', service: 's' }],
    }), {});
    assert.deepEqual(cfg.routes[0]?.timeouts, { headerMs: 300, idleMs: 20_000, totalMs: 90_000 });
    assert.deepEqual(cfg.routes[0]?.retries, { attempts: 1, budgetPercent: 30, minConcurrency: 10 });
    assert.equal(cfg.routes[1]?.timeouts, undefined);
    assert.equal(cfg.routes[1]?.retries, undefined);
    const bad = lbConfigSchema.safeParse({ routes: [{ service: 's', timeouts: { header: '3x' } }] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues[0]?.path, ['routes', 0, 'timeouts', 'header']);
    assert.equal(lbConfigSchema.safeParse({ routes: [{ service: 's', timeouts: { connect: '1s' } }] }).success, false, 'connect stays the balancer\'s (connections are shared per address)');
    assert.equal(lbConfigSchema.safeParse({ routes: [{ service: 's', retries: { attempts: 0 } }] }).success, false);
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: a route's header timeout and attempts apply to it alone`, async () => {
      const lb = await startTestLb(agent.url, {
        'data-plane': plane, balance: 'round_robin',
        // No ejection: every request below must meet both flaky instances.
        'passive-health': { 'max-fails': 0, 'consecutive-5xx': 0 },
        routes: [
          { path: '/quick', service: 'slow', timeouts: { header: '300ms' } },
          { path: '/patient', service: 'slow' },
          { path: '/once', service: 'flaky', retries: { attempts: 1 } },
          { path: '/again', service: 'flaky' },
        ] as never,
      });
      lbs.push(lb);
      await waitUpstreams(lb, 'slow', [slow.port]);
      await waitUpstreams(lb, 'flaky', [bad.port, good.port]);

      const quick = await get(`${lb.url}/quick/x`);
      assert.equal(quick.status, 504, quick.body);
      assert.ok(quick.ms < 1400, `cut by the route's 300 ms, not the instance's 1.5 s answer (${quick.ms} ms)`);
      const patient = await get(`${lb.url}/patient/x`);
      assert.deepEqual([patient.status, patient.body], [200, 'late'], 'the balancer\'s 60 s for the other route');
      // The HTTP/2 plane keeps the route's timeout too.
      const h2 = await h2get(lb.url, '/quick/h2');
      assert.equal(h2.status, 504);
      assert.ok(h2.ms < 1400, `${h2.ms} ms`);

      const once: number[] = [];
      const again: number[] = [];
      for (let i = 0; i < 6; i++) once.push((await get(`${lb.url}/once/${i}`)).status);
      for (let i = 0; i < 6; i++) again.push((await get(`${lb.url}/again/${i}`)).status);
      assert.ok(once.includes(503) && once.includes(200), `attempts: 1 passes the 503 on: ${once.join(',')}`);
      assert.deepEqual(again, [200, 200, 200, 200, 200, 200], 'the balancer\'s 3 attempts retry it');
    });
  }
});
