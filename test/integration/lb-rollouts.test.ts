// Safe rollouts through real processes (a `switchyard agent` and `switchyard lb` with a YAML config,
// backends registered over the Consul API): weighted splits by meta and by Fabio-style tag weights,
// sticky splits, slow start, per-route concurrency and rate limits, explanations, mirroring, and
// zero failed requests under churn with slow start and a split active.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { http, tempDir, waitFor } from '../helpers/agent.js';
import { startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

interface Lb {
  proc: Proc;
  url: string;
  admin: string;
}

const procs: Proc[] = [];
const backends: Backend[] = [];
let agentUrl = '';

async function startLbProcess(name: string, config: Record<string, unknown>): Promise<Lb> {
  const port = await freePort();
  const admin = await freePort();
  const file = join(tempDir('sy-rollout-'), `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${port}`, 'admin-addr': `127.0.0.1:${admin}`, registry: agentUrl, 'log-level': 'warn', ...config }));
  const proc = switchyard(['lb', '--config', file]);
  procs.push(proc);
  await waitHttpOk(`http://127.0.0.1:${admin}/health`, proc);
  return { proc, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${admin}` };
}

async function backend(name: string): Promise<Backend> {
  const b = await startBackend(name);
  backends.push(b);
  return b;
}

async function register(service: string, b: Backend, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await http(agentUrl, 'PUT', '/v1/agent/service/register', { Name: service, ID: `${service}-${b.name}`, Address: '127.0.0.1', Port: b.port, ...extra });
  assert.equal(r.status, 200, r.text);
}

async function deregister(service: string, b: Backend): Promise<void> {
  await http(agentUrl, 'PUT', `/v1/agent/service/deregister/${service}-${b.name}`);
}

/** Waits until the balancer's table lists exactly `n` instances of `service` (across its groups). */
async function waitInstances(lb: Lb, service: string, n: number): Promise<void> {
  await waitFor(async () => {
    const r = await http(lb.admin, 'GET', '/routes');
    const dump = r.json as { groups: { service: string; upstreams: { id: string }[] }[] };
    const ids = new Set(dump.groups.filter((g) => g.service === service).flatMap((g) => g.upstreams.map((u) => u.id)));
    return ids.size === n ? true : undefined;
  }, `${n} instances of ${service} in the table`);
}

/** `n` GETs over `concurrency` keep-alive connections; counts answers by body. */
async function hits(url: string, n: number, opts: { path?: string; headers?: (i: number) => Record<string, string>; concurrency?: number } = {}): Promise<{ byBody: Map<string, number>; failed: number; statuses: Map<number, number> }> {
  const pool = new Pool(url, { connections: opts.concurrency ?? 16 });
  const byBody = new Map<string, number>();
  const statuses = new Map<number, number>();
  let failed = 0;
  let next = 0;
  await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, async () => {
    while (next < n) {
      const i = next++;
      try {
        const r = await pool.request({ path: opts.path ?? '/', method: 'GET', headers: opts.headers?.(i) ?? {} });
        const body = await r.body.text();
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        if (r.statusCode === 200) byBody.set(body, (byBody.get(body) ?? 0) + 1);
        else failed++;
      } catch {
        failed++;
      }
    }
  }));
  await pool.close();
  return { byBody, failed, statuses };
}

const share = (m: Map<string, number>, prefix: string): number => {
  let a = 0;
  let all = 0;
  for (const [k, v] of m) {
    all += v;
    if (k.startsWith(prefix)) a += v;
  }
  return a / all;
};

before(async () => {
  const port = await freePort();
  const agent = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', tempDir('sy-rollout-agent-'), '--node', 'n1', '--log-level', 'warn', '--dns-addr', '127.0.0.1:0']);
  procs.push(agent);
  agentUrl = `http://127.0.0.1:${port}`;
  await waitHttpOk(`${agentUrl}/v1/status/leader`, agent);
});

after(async () => {
  await Promise.all(procs.map((p) => stop(p)));
  await Promise.all(backends.map((b) => b.close()));
});

describe('traffic splitting', () => {
  it('splits by service meta within ±2 points over 10,000 requests, and keeps sticky clients in their subset', async () => {
    const v1a = await backend('v1-a');
    const v1b = await backend('v1-b');
    const v2 = await backend('v2-a');
    await register('shop', v1a, { Meta: { version: 'v1' } });
    await register('shop', v1b, { Meta: { version: 'v1' } });
    await register('shop', v2, { Meta: { version: 'v2' } });
    const lb = await startLbProcess('split', {
      routes: [
        { path: '/', service: 'shop', split: [{ meta: { version: 'v1' }, weight: 90 }, { meta: { version: 'v2' }, weight: 10 }] },
        { path: '/sticky', service: 'shop', split: [{ meta: { version: 'v1' }, weight: 50 }, { meta: { version: 'v2' }, weight: 50 }], sticky: { cookie: 'sid' } },
      ],
    });
    await waitInstances(lb, 'shop', 3);
    const r = await hits(lb.url, 10_000);
    assert.equal(r.failed, 0);
    const v2share = share(r.byBody, 'v2');
    assert.ok(Math.abs(v2share - 0.1) <= 0.02, `v2 got ${(v2share * 100).toFixed(2)} % (want 10 ± 2)`);

    const routes = (await http(lb.admin, 'GET', '/routes')).json as { routes: { path: string; split?: { share: number }[] }[] };
    assert.deepEqual(routes.routes.find((x) => x.path === '/')?.split?.map((x) => x.share), [90, 10]);

    // Sticky: each cookie value always lands in the same subset.
    const seen = new Map<string, Set<string>>();
    for (let c = 0; c < 40; c++) {
      const s = await hits(lb.url, 6, { path: '/sticky', concurrency: 2, headers: () => ({ cookie: `theme=dark; sid=client-${c}` }) });
      seen.set(`client-${c}`, new Set([...s.byBody.keys()].map((b) => b.slice(0, 2))));
    }
    for (const [c, subsets] of seen) assert.equal(subsets.size, 1, `${c} moved between subsets: ${[...subsets].join(', ')}`);
    const inV2 = [...seen.values()].filter((s) => s.has('v2')).length;
    assert.ok(inV2 > 5 && inV2 < 35, `sticky clients spread over both subsets (${inV2} of 40 in v2)`);
  });

  it('merges tag routes of two services on one path Fabio-style: weight=0.2 gets a fifth', async () => {
    const blue = await backend('blue-a');
    const green = await backend('green-a');
    await register('checkout-blue', blue, { Tags: ['urlprefix-/checkout'] });
    await register('checkout-green', green, { Tags: ['urlprefix-/checkout weight=0.2'] });
    const lb = await startLbProcess('tags', {});
    await waitInstances(lb, 'checkout-green', 1);
    await waitInstances(lb, 'checkout-blue', 1);
    const r = await hits(lb.url, 10_000, { path: '/checkout/cart' });
    assert.equal(r.failed, 0);
    const g = share(r.byBody, 'green');
    assert.ok(Math.abs(g - 0.2) <= 0.02, `green got ${(g * 100).toFixed(2)} % (want 20 ± 2)`);
  });
});

describe('slow start', () => {
  it('gives a new instance a small share first and its full share after the window', async () => {
    const old = await backend('ss-old');
    await register('ramp', old);
    const lb = await startLbProcess('slow', { routes: [{ path: '/', service: 'ramp', 'slow-start': '4s' }] });
    await waitInstances(lb, 'ramp', 1);
    const fresh = await backend('ss-new');
    await register('ramp', fresh);
    await waitInstances(lb, 'ramp', 2);
    const early = await hits(lb.url, 400, { concurrency: 4 });
    const e = share(early.byBody, 'ss-new');
    // Whatever the box's speed, the ramp ends 4 s after the table took the instance in.
    await waitFor(async () => {
      const d = (await http(lb.admin, 'GET', '/routes')).json as { groups: { upstreams: { id: string; slowStart?: number }[] }[] };
      return d.groups.flatMap((g) => g.upstreams).every((u) => u.slowStart === undefined) ? true : undefined;
    }, 'the ramp to end', 15_000);
    const late = await hits(lb.url, 2000, { concurrency: 4 });
    const l = share(late.byBody, 'ss-new');
    assert.equal(early.failed + late.failed, 0);
    assert.ok(e < 0.35, `a fresh instance started with ${(e * 100).toFixed(1)} % of the traffic (want well under half)`);
    assert.ok(Math.abs(l - 0.5) < 0.05, `after the window it has ${(l * 100).toFixed(1)} % (want half)`);
  });

  it('churns under load with slow start and a split active: zero failed requests', async () => {
    const a = await backend('churn-a');
    const b = await backend('churn-b');
    const c = await backend('churn-c');
    await register('churn', a, { Meta: { track: 'stable' } });
    await register('churn', b, { Meta: { track: 'stable' } });
    await register('churn', c, { Meta: { track: 'canary' } });
    const lb = await startLbProcess('churn', {
      routes: [{ path: '/', service: 'churn', 'slow-start': '2s', split: [{ meta: { track: 'stable' }, weight: 80 }, { meta: { track: 'canary' }, weight: 20 }] }],
    });
    await waitInstances(lb, 'churn', 3);
    let stopLoad = false;
    let total = 0;
    const load = (async () => {
      let failed = 0;
      const statuses = new Map<number, number>();
      while (!stopLoad) {
        const r = await hits(lb.url, 200, { concurrency: 8 });
        failed += r.failed;
        for (const [s, n] of r.statuses) statuses.set(s, (statuses.get(s) ?? 0) + n);
        total += 200;
      }
      return { total, failed, statuses };
    })();
    // Every table in the churn serves a batch of requests: the load spans each change.
    const served = async (what: string): Promise<void> => {
      const from = total;
      await waitFor(() => total >= from + 200, `a batch of 200 requests served ${what}`, 30_000, 10);
    };
    // Stable instances leave and come back one at a time; the canary stays.
    for (let i = 0; i < 6; i++) {
      const x = i % 2 === 0 ? a : b;
      await deregister('churn', x);
      await waitInstances(lb, 'churn', 2);
      await served(`without ${x.name}`);
      await register('churn', x, { Meta: { track: 'stable' } });
      await waitInstances(lb, 'churn', 3);
      await served(`with ${x.name} back (slow start)`);
    }
    stopLoad = true;
    const r = await load;
    assert.ok(r.total >= 1000, `load ran (${r.total} requests)`);
    assert.equal(r.failed, 0, `failed requests: ${JSON.stringify([...r.statuses])}`);
  });
});

describe('limits, explanations and mirroring', () => {
  it('refuses beyond max-concurrent with 503 and beyond the rate with 429, both with Retry-After, and counts them', async () => {
    const slow = await backend('slow-a');
    slow.handler = (_req, res) => void setTimeout(() => res.end('slow'), 400);
    await register('guarded', slow);
    const quick = await backend('quick-a');
    await register('rated', quick);
    const lb = await startLbProcess('limits', {
      routes: [
        { path: '/guarded', service: 'guarded', limits: { 'max-concurrent': 2 } },
        { path: '/rated', service: 'rated', limits: { rate: { 'per-second': 2, burst: 3 } } },
      ],
    });
    await waitInstances(lb, 'guarded', 1);
    await waitInstances(lb, 'rated', 1);
    const g = await Promise.all(Array.from({ length: 5 }, () => fetch(`${lb.url}/guarded`).then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'), body: await r.text() }))));
    assert.deepEqual(g.map((x) => x.status).sort(), [200, 200, 503, 503, 503]);
    for (const x of g.filter((y) => y.status === 503)) {
      assert.equal(x.retry, '1');
      assert.match(x.body, /at its limit of 2 requests in flight/);
    }
    const rated: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${lb.url}/rated`);
      await r.text();
      rated.push(r.status);
      if (r.status === 429) assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    assert.deepEqual(rated.slice(0, 3), [200, 200, 200], 'the burst passes');
    assert.ok(rated.slice(3).includes(429), `then the rate limit: ${rated.join(' ')}`);
    const m = (await http(lb.admin, 'GET', '/metrics')).text;
    assert.match(m, /switchyard_lb_limited_total\{route="config:routes\[0\]",reason="concurrency"\} 3/);
    assert.match(m, /switchyard_lb_limited_total\{route="config:routes\[1\]",reason="rate"\} [1-9]/);
  });

  it('explains a request from an allowed address, and only then', async () => {
    const e1 = await backend('ex-a');
    const e2 = await backend('ex-b');
    await register('explained', e1);
    await register('explained', e2);
    const lb = await startLbProcess('explain', { routes: [{ path: '/', service: 'explained' }], explain: { from: ['127.0.0.1', '::1'] } });
    const closed = await startLbProcess('explain-closed', { routes: [{ path: '/', service: 'explained' }], explain: { from: ['10.0.0.0/8'] } });
    await waitInstances(lb, 'explained', 2);
    await waitInstances(closed, 'explained', 2);
    const r = await fetch(lb.url, { headers: { 'x-switchyard-explain': '1' } });
    await r.text();
    const why = r.headers.get('x-switchyard-explain') ?? '';
    assert.match(why, /route=config:routes\[0\]; table=\d+; strategy=round_robin; candidates=127\.0\.0\.1:\d+\(healthy w=1 inflight=\d\),127\.0\.0\.1:\d+\(healthy w=1 inflight=\d\); attempts=127\.0\.0\.1:\d+:200/);
    const plain = await fetch(lb.url);
    await plain.text();
    assert.equal(plain.headers.get('x-switchyard-explain'), null, 'not asked: not given');
    const refused = await fetch(closed.url, { headers: { 'x-switchyard-explain': '1' } });
    await refused.text();
    assert.equal(refused.headers.get('x-switchyard-explain'), null, 'asked from an address outside explain.from');
  });

  it('mirrors a share of the requests with their bodies, and a mirror that hangs changes nothing for the client', async () => {
    const primary = await backend('mirror-primary');
    primary.handler = (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => res.end(`primary ${req.method} ${req.url} ${body}`));
    };
    const copies: string[] = [];
    const shadowSockets = new Set<unknown>();
    const shadow = await backend('mirror-shadow');
    let answer = 0;
    shadow.handler = (req, res) => {
      shadowSockets.add(req.socket);
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        copies.push(`${req.method} ${req.url} ${body}`);
        // Every framing the copy's reader must see through to reuse the connection: length, chunked, no body.
        const kind = answer++ % 3;
        if (kind === 0) res.end('shadow');
        else if (kind === 1) {
          res.write('sha');
          res.end('dow');
        } else {
          res.statusCode = 204;
          res.end();
        }
      });
    };
    const hang = await backend('mirror-hang');
    hang.handler = () => undefined;
    await register('orders', primary);
    await register('orders-shadow', shadow);
    await register('orders-hang', hang);
    const lb = await startLbProcess('mirror', {
      routes: [
        { path: '/orders', service: 'orders', mirror: { service: 'orders-shadow', percent: 100 } },
        { path: '/half', service: 'orders', mirror: { service: 'orders-shadow', percent: 50 } },
        { path: '/hang', service: 'orders', mirror: { service: 'orders-hang', percent: 100 } },
      ],
    });
    await waitInstances(lb, 'orders-shadow', 1);
    await waitInstances(lb, 'orders-hang', 1);
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${lb.url}/orders/${i}`, { method: 'POST', body: `item=${i}` });
      assert.equal(await r.text(), `primary POST /orders/${i} item=${i}`);
    }
    await waitFor(() => (copies.length >= 5 ? true : undefined), 'five copies at the shadow');
    assert.deepEqual(copies.sort(), [0, 1, 2, 3, 4].map((i) => `POST /orders/${i} item=${i}`));
    copies.length = 0;
    const half = await hits(lb.url, 400, { path: '/half', concurrency: 4 });
    assert.equal(half.failed, 0);
    // Copies start when a request's head arrives, so all of them left before the last answer above;
    // they are counted once the shadow has them all and the balancer has seen each one through.
    const mirrored = async (): Promise<number> => {
      const m = (await http(lb.admin, 'GET', '/metrics')).text;
      return [...m.matchAll(/^switchyard_lb_mirrored_total\{route="config:routes\[1\]",service="orders-shadow",outcome="(?:sent|failed)"\} (\d+)/gm)].reduce((n, x) => n + Number(x[1]), 0);
    };
    await waitFor(async () => copies.length > 120 && (await mirrored()) === copies.length, () => `the /half copies at the shadow (${copies.length} so far) and all of them seen through by the balancer`);
    assert.ok(copies.length > 120 && copies.length < 280, `about half mirrored: ${copies.length} of 400`);
    // Copies ride keep-alive connections like the primary's (a connection per copy cost the primary path CPU).
    assert.ok(shadowSockets.size <= 16, `${copies.length} copies over ${shadowSockets.size} connections`);
    copies.length = 0;
    const big = 'x'.repeat(100 * 1024);
    const r = await fetch(`${lb.url}/orders/big`, { method: 'POST', body: big });
    assert.equal(await r.text(), `primary POST /orders/big ${big}`, 'a body beyond the mirror bound still reaches the primary whole');
    const chunked = await fetch(`${lb.url}/orders/chunked`, { method: 'POST', body: new Blob(['a=1&', 'b=2']).stream(), duplex: 'half' } as RequestInit);
    assert.equal(await chunked.text(), 'primary POST /orders/chunked a=1&b=2');
    await waitFor(() => (copies.includes('POST /orders/chunked a=1&b=2') ? true : undefined), () => `the chunked copy at the shadow (copies: ${copies.map((c) => c.slice(0, 40)).join(' | ')})`);
    const h = await hits(lb.url, 50, { path: '/hang', concurrency: 4 });
    assert.equal(h.failed, 0, 'a hanging mirror does not hold the primary');
    const m = (await http(lb.admin, 'GET', '/metrics')).text;
    assert.match(m, /switchyard_lb_mirrored_total\{route="config:routes\[0\]",service="orders-shadow",outcome="sent"\} 6/);
    assert.match(m, /switchyard_lb_mirrored_total\{route="config:routes\[0\]",service="orders-shadow",outcome="skipped"\} 1/);
  });
});
