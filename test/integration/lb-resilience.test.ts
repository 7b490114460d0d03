// Retries, passive health, panic mode, streaming with backpressure, stickiness by cookie, body limits,
// the access log and cluster workers.
import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startTestAgent, http, negativeWindow, sleep, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend, startTestLb, waitUpstreams } from '../helpers/lb.js';
import type { Backend, TestLb } from '../helpers/lb.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';

describe('load balancer resilience', () => {
  let agent: TestAgent;
  const backends: Backend[] = [];
  const lbs: TestLb[] = [];
  const two = async (names: [string, string], service: string): Promise<Backend[]> => {
    const bs = await Promise.all(names.map(startBackend));
    backends.push(...bs);
    for (const b of bs) await registerBackend(agent.url, service, b);
    return bs;
  };
  const lbFor = async (cfg: Parameters<typeof startTestLb>[1], service: string, ports: number[]): Promise<TestLb> => {
    const lb = await startTestLb(agent.url, cfg);
    lbs.push(lb);
    await waitUpstreams(lb, service, ports);
    return lb;
  };
  before(async () => {
    agent = await startTestAgent();
  });
  afterEach(async () => {
    for (const lb of lbs.splice(0)) await lb.close();
    for (const b of backends.splice(0)) await b.close();
  });
  after(async () => {
    await agent.stop();
  });

  it('retries 502/503/504 on another instance for idempotent methods only', async () => {
    const [bad, good] = await two(['bad', 'good'], 'r503');
    bad!.handler = (_req, res) => res.writeHead(503).end('bad');
    const lb = await lbFor({ service: 'r503', 'passive-health': { 'consecutive-5xx': 0 } }, 'r503', [bad!.port, good!.port]);
    for (let i = 0; i < 10; i++) {
      const r = await request(lb.url);
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'good');
    }
    let posts503 = 0;
    for (let i = 0; i < 10; i++) {
      const r = await request(lb.url, { method: 'POST', body: 'x' });
      await r.body.dump();
      if (r.statusCode === 503) posts503++;
    }
    assert.ok(posts503 >= 4 && posts503 <= 6, `POSTs are not retried on a 503 (saw ${posts503} of 10)`);
  });

  for (const plane of ['fast', 'node'] as const) {
    it(`${plane} plane: an instance that dies with more requests in flight than the retry budget's minimum loses none of the idempotent ones`, async () => {
      const service = `crash-${plane}`;
      const good = await Promise.all(['g1', 'g2'].map(startBackend));
      backends.push(...good);
      for (const b of good) await registerBackend(agent.url, service, b);
      // The victim holds every request it gets, then its process "dies": every connection is reset.
      const victim = await startBackend('victim');
      backends.push(victim);
      const held: ServerResponse[] = [];
      let reached: () => void = () => undefined;
      const enough = new Promise<void>((r) => (reached = r));
      victim.handler = (_req, res) => {
        held.push(res);
        if (held.length >= 15) reached();
      };
      await registerBackend(agent.url, service, victim);
      const lb = await lbFor({ service, 'data-plane': plane, 'passive-health': { 'max-fails': 0, 'consecutive-5xx': 0 } }, service, [...good, victim].map((b) => b.port));
      const answers = Promise.all(Array.from({ length: 45 }, () => request(lb.url).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))));
      await enough;
      for (const res of held) res.socket?.resetAndDestroy();
      const got = await answers;
      const failed = got.filter((g) => g.status !== 200);
      assert.deepEqual(failed, [], `${failed.length} of 45 requests failed`);
      assert.ok(got.every((g) => g.body === 'g1' || g.body === 'g2'), 'every answer came from a live instance');
    });
  }

  it('ejects an instance after consecutive 5xx (outlier detection) and brings it back after the ejection time', async () => {
    const [flaky, good] = await two(['flaky', 'steady'], 'outlier');
    let failing = true;
    flaky!.handler = (_req, res) => (failing ? res.writeHead(500).end('err') : res.end('flaky'));
    const lb = await lbFor({ service: 'outlier', 'passive-health': { 'consecutive-5xx': 3, 'base-ejection': '500ms' } }, 'outlier', [flaky!.port, good!.port]);
    for (let i = 0; i < 12; i++) await (await request(lb.url, { method: 'POST', body: 'x' })).body.dump();
    // The state per instance, as a Prometheus alert would read it while the ejection lasts.
    const during = await (await fetch(`${lb.adminUrl}/metrics`)).text();
    assert.match(during, new RegExp(`^switchyard_lb_upstream_state\\{service="outlier",instance="127\\.0\\.0\\.1:${flaky!.port}",state="ejected"\\} 1$`, 'm'));
    assert.match(during, new RegExp(`^switchyard_lb_upstream_state\\{service="outlier",instance="127\\.0\\.0\\.1:${good!.port}",state="passing"\\} 1$`, 'm'));
    const hitsAtEjection = flaky!.hits;
    assert.ok(hitsAtEjection <= 4, `flaky saw ${hitsAtEjection} requests before ejection`);
    for (let i = 0; i < 10; i++) assert.equal(await (await request(lb.url)).body.text(), 'steady');
    assert.equal(flaky!.hits, hitsAtEjection, 'no traffic while ejected');
    failing = false;
    // Its ejection (500 ms) runs out; the admin view says so before any request is sent its way.
    await waitFor(async () => {
      const dump = (await (await fetch(`${lb.adminUrl}/routes`)).json()) as { groups: { upstreams: { address: string; ejectedUntil: string | null }[] }[] };
      const u = dump.groups.flatMap((g) => g.upstreams).find((x) => x.address.endsWith(`:${flaky!.port}`));
      return u !== undefined && u.ejectedUntil === null;
    }, 'the flaky instance\'s ejection to run out');
    const bodies = new Set<string>();
    for (let i = 0; i < 10; i++) bodies.add(await (await request(lb.url)).body.text());
    assert.ok(bodies.has('flaky'), 'the instance is back after its ejection time');
    const metrics = await (await fetch(`${lb.adminUrl}/metrics`)).text();
    assert.match(metrics, /switchyard_lb_ejections_total\{[^}]*reason="outlier"\} 1/);
    assert.match(metrics, new RegExp(`^switchyard_lb_upstream_state\\{service="outlier",instance="127\\.0\\.0\\.1:${flaky!.port}",state="passing"\\} 1$`, 'm'));
    assert.doesNotMatch(metrics, /state="ejected"/);
  });

  it('panic threshold: when every instance is ejected, traffic still goes to all of them', async () => {
    const [a, b] = await two(['pa', 'pb'], 'panic');
    let fail = true;
    for (const x of [a!, b!]) x.handler = (_req, res) => (fail ? res.writeHead(500).end() : res.end(x.name));
    const lb = await lbFor({ service: 'panic', 'passive-health': { 'consecutive-5xx': 2, 'base-ejection': '30s' } }, 'panic', [a!.port, b!.port]);
    for (let i = 0; i < 8; i++) await (await request(lb.url, { method: 'POST', body: 'x' })).body.dump();
    fail = false;
    // Both are ejected for 30s; without panic mode every request would be a 503.
    const statuses = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r = await request(lb.url);
      statuses.add(r.statusCode);
      await r.body.dump();
    }
    assert.deepEqual([...statuses], [200]);
  });

  it('streams large bodies both ways with backpressure (no buffering)', async () => {
    const [sink] = await two(['sink', 'sink2'], 'stream');
    const SIZE = 64 * 1024 * 1024;
    let produced = 0;
    for (const b of backends) {
      b.handler = (req, res) => {
        if (req.method === 'POST') {
          const h = createHash('sha256');
          let n = 0;
          req.on('data', (d: Buffer) => {
            n += d.length;
            h.update(d);
          });
          req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
        } else {
          // A slow-ish producer honouring backpressure.
          let sent = 0;
          const chunk = Buffer.alloc(64 * 1024, 7);
          const pump = (): void => {
            while (sent < SIZE) {
              sent += chunk.length;
              produced = sent;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
          pump();
        }
      };
    }
    void sink;
    const lb = await lbFor({ service: 'stream' }, 'stream', backends.map((b) => b.port));
    const up = Readable.from((function* () {
      for (let i = 0; i < SIZE / (64 * 1024); i++) yield Buffer.alloc(64 * 1024, i % 251);
    })());
    const expect = createHash('sha256');
    for (let i = 0; i < SIZE / (64 * 1024); i++) expect.update(Buffer.alloc(64 * 1024, i % 251));
    const r = await request(lb.url, { method: 'POST', body: up });
    assert.equal(await r.body.text(), `${SIZE} ${expect.digest('hex')}`);
    // Download, read slowly at first: the LB must not buffer the whole body.
    const d = await request(lb.url);
    let got = 0;
    let paused = false;
    let ahead = 0;
    for await (const c of d.body) {
      got += (c as Buffer).length;
      if (!paused && got > 1024 * 1024) {
        paused = true;
        // A window: the claim is that the backend cannot run ahead while the client reads nothing,
        // and an unbounded buffer in the proxy would let it send the rest within this time.
        await negativeWindow(300, 'the backend running ahead of a paused client');
        // While this client reads nothing, the backend may only be ahead by what socket buffers hold.
        ahead = produced - got;
      }
    }
    assert.equal(got, SIZE);
    assert.ok(ahead < 16 * 1024 * 1024, `the backend got ${(ahead / 1048576).toFixed(1)} MiB ahead of a paused client: the proxy buffered`);
  });

  it('sticky sessions by cookie', async () => {
    const bs = await two(['c1', 'c2'], 'cookie');
    const lb = await lbFor({ routes: [{ service: 'cookie', balance: 'hash', 'hash-by': { cookie: 'sid' } }] }, 'cookie', bs.map((b) => b.port));
    const owners = new Set<string>();
    for (let s = 0; s < 12; s++) {
      const first = await (await request(lb.url, { headers: { Cookie: `theme=dark; sid=session-${s}` } })).body.text();
      for (let i = 0; i < 4; i++) assert.equal(await (await request(lb.url, { headers: { Cookie: `sid=session-${s}` } })).body.text(), first);
      owners.add(first);
    }
    assert.equal(owners.size, 2);
  });

  it('enforces the body limit for declared and chunked bodies', async () => {
    const bs = await two(['l1', 'l2'], 'limit');
    for (const b of bs) b.handler = (req, res) => req.resume().on('end', () => res.end('ok'));
    const lb = await lbFor({ service: 'limit', limits: { 'max-body': 1000 } }, 'limit', bs.map((b) => b.port));
    const small = await request(lb.url, { method: 'POST', body: 'x'.repeat(500) });
    assert.equal(small.statusCode, 200);
    await small.body.dump();
    const declared = await request(lb.url, { method: 'POST', body: 'x'.repeat(2000) });
    assert.equal(declared.statusCode, 413);
    await declared.body.dump();
    const chunked = await request(lb.url, { method: 'POST', body: Readable.from([Buffer.alloc(600), Buffer.alloc(600)]) });
    assert.equal(chunked.statusCode, 413);
    await chunked.body.dump();
  });

  it('runs cluster workers sharing one registry watch, with aggregated metrics', async () => {
    const bs = await two(['w1', 'w2'], 'workers');
    const port = await freePort();
    const admin = await freePort();
    const p = switchyard(['lb', '--listen', `127.0.0.1:${port}`, '--admin-addr', `127.0.0.1:${admin}`, '--registry', agent.url, '--service', 'workers', '--workers', '2', '--log-level', 'warn']);
    try {
      await waitHttpOk(`http://127.0.0.1:${admin}/health`, p);
      const seen = new Set<string>();
      const deadline = Date.now() + 10_000;
      while (seen.size < 2 && Date.now() < deadline) {
        try {
          const r = await request(`http://127.0.0.1:${port}/`);
          if (r.statusCode === 200) seen.add(await r.body.text());
          else await r.body.dump();
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.deepEqual([...seen].sort(), bs.map((b) => b.name).sort());
      for (let i = 0; i < 20; i++) await (await request(`http://127.0.0.1:${port}/`)).body.dump();
      // A worker that does not answer the primary within 2 s is left out of that scrape (a loaded CI machine
      // once left one out): the next scrapes must count every worker's requests.
      let m = '';
      let total = 0;
      await waitFor(async () => {
        m = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
        total = [...m.matchAll(/^switchyard_lb_requests_total\{[^}]*status="200"\} (\d+)/gm)].reduce((s, x) => s + Number(x[1]), 0);
        return total >= 22;
      }, () => `an aggregated request count of at least 22 (last scrape: ${total})`, 15_000, 200).catch(() => undefined);
      assert.ok(total >= 22, `aggregated request count ${total}`);
      // One family per metric name (Prometheus refuses a second TYPE line for a name), with the primary's own facts once.
      const types = [...m.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]);
      assert.deepEqual(types.filter((t, i) => types.indexOf(t) !== i), [], 'no metric family listed twice');
      assert.match(m, /^switchyard_lb_registry_connected 1$/m, 'the registry watch (the primary\'s) counted once');
      const routes = (await (await fetch(`http://127.0.0.1:${admin}/routes`)).json()) as { version: number };
      assert.match(m, new RegExp(`^switchyard_lb_table_generation ${routes.version}$`, 'm'), 'the table in use, not a sum over processes');
      // One registry watch: the agent sees a single blocking query for the service at a time.
      assert.ok(agent.view.waiterCount() <= 3, `parked queries at the agent: ${agent.view.waiterCount()}`);
    } finally {
      const r = await stop(p);
      assert.equal(r.code, 0, p.stderr());
    }
  });

  /** Every answer (or refusal) on `url` until `stopWhen` says enough, polling every few ms. */
  const probe = async (url: string, stopWhen: (seen: string[]) => boolean, ms = 20_000): Promise<string[]> => {
    const seen: string[] = [];
    const deadline = Date.now() + ms;
    while (!stopWhen(seen) && Date.now() < deadline) {
      try {
        const r = await request(url, { headersTimeout: 5000, bodyTimeout: 5000 });
        seen.push(`${r.statusCode}${r.headers['retry-after'] ? ` retry-after ${String(r.headers['retry-after'])}` : ''}`);
        await r.body.dump();
      } catch (err) {
        seen.push((err as { code?: string }).code ?? String(err));
        await sleep(5);
      }
    }
    return seen;
  };

  for (const workers of [1, 2]) {
    it(`--workers ${workers}: started before its registry, the balancer refuses connections until its first table, then answers 200 from the first request (never a 503)`, async () => {
      const [agentPort, port] = [await freePort(), await freePort()];
      const file = join(tempDir('sy-lb-first-'), 'lb.yaml');
      // Long enough for a loaded machine to start the agent below; the default is 5 s.
      writeFileSync(file, JSON.stringify({ timeouts: { 'first-table': '60s' } }));
      const p = switchyard(['lb', '--config', file, '--listen', `127.0.0.1:${port}`, '--registry', `http://127.0.0.1:${agentPort}`, '--service', 'early', '--workers', String(workers), '--log-level', 'warn']);
      let late: TestAgent | undefined;
      const b = await startBackend('early-a');
      backends.push(b);
      try {
        // A second of connection attempts while no registry answers: each is refused, none is answered.
        const before = await probe(`http://127.0.0.1:${port}/`, () => false, 1000);
        assert.ok(before.length > 10, `attempts: ${before.length}`);
        assert.deepEqual([...new Set(before)], ['ECONNREFUSED'], 'while the balancer has no table its port is closed');
        late = await startTestAgent({ 'http-addr': `127.0.0.1:${agentPort}` });
        await registerBackend(late.url, 'early', b);
        const after = await probe(`http://127.0.0.1:${port}/`, (seen) => seen.filter((s) => s === '200').length >= 20);
        const answers = after.filter((s) => s !== 'ECONNREFUSED');
        assert.ok(answers.length >= 20, `answers: ${after.join(', ')}`);
        assert.deepEqual([...new Set(answers)], ['200'], 'the first answer and every one after it is 200');
      } finally {
        const r = await stop(p);
        assert.equal(r.code, 0, p.stderr());
        await late?.stop();
      }
    });
  }

  it('with its registry down, the balancer opens its port after timeouts.first-table and answers 503 with Retry-After', async () => {
    const [nobody, port] = [await freePort(), await freePort()];
    const file = join(tempDir('sy-lb-first-'), 'lb.yaml');
    writeFileSync(file, JSON.stringify({ timeouts: { 'first-table': '700ms' } }));
    const started = Date.now();
    const p = switchyard(['lb', '--config', file, '--listen', `127.0.0.1:${port}`, '--registry', `http://127.0.0.1:${nobody}`, '--service', 'nowhere', '--log-level', 'warn']);
    try {
      const seen = await probe(`http://127.0.0.1:${port}/`, (s) => s.some((x) => x !== 'ECONNREFUSED'));
      const opened = Date.now() - started;
      assert.equal(seen.at(-1), '503 retry-after 1');
      assert.ok(seen.length > 1 && seen.slice(0, -1).every((x) => x === 'ECONNREFUSED'), seen.join(', '));
      assert.ok(opened >= 700, `the port opened ${opened} ms after the start, before timeouts.first-table`);
      await waitFor(() => /no routing table yet: listening anyway/.test(p.stderr()), 'the warning in the log', 5000);
    } finally {
      const r = await stop(p);
      assert.equal(r.code, 0, `${String(r.signal)} ${p.stderr()}`);
    }
  });

  for (const workers of [1, 2]) {
    it(`--workers ${workers}: stopped while it waits for its first table, the balancer exits cleanly (0) without opening its port`, async () => {
      const [nobody, port] = [await freePort(), await freePort()];
      const file = join(tempDir('sy-lb-first-'), 'lb.yaml');
      // Far longer than the test may take: the stop, not the timeout, must end the wait.
      writeFileSync(file, JSON.stringify({ timeouts: { 'first-table': '10m' } }));
      const p = switchyard(['lb', '--config', file, '--listen', `127.0.0.1:${port}`, '--registry', `http://127.0.0.1:${nobody}`, '--service', 'nowhere', '--workers', String(workers), '--log-level', 'info']);
      await waitFor(() => /registry unreachable and no table from it yet/.test(p.stderr()), 'the balancer waiting for its registry', 15_000);
      // Let forked workers come up and wait as well.
      await sleep(1500);
      assert.deepEqual([...new Set(await probe(`http://127.0.0.1:${port}/`, () => false, 300))], ['ECONNREFUSED']);
      const r = await stop(p);
      assert.equal(r.code, 0, `${String(r.signal)} ${p.stderr()}`);
      assert.match(p.stderr(), /signal while starting: shutting down|"msg":"shutting down"/);
      assert.doesNotMatch(p.stderr(), new RegExp(`"listen":"127.0.0.1:${port}"`), 'it never opened its port');
      if (workers > 1) assert.doesNotMatch(p.stderr(), /worker died/);
    });
  }

  it('writes a JSON access log line per request', async () => {
    const bs = await two(['al1', 'al2'], 'alog');
    const port = await freePort();
    const p = switchyard(['lb', '--listen', `127.0.0.1:${port}`, '--registry', agent.url, '--service', 'alog', '--access-log', '--log-level', 'info']);
    try {
      const deadline = Date.now() + 10_000;
      let ok = false;
      while (!ok && Date.now() < deadline) {
        try {
          const r = await request(`http://127.0.0.1:${port}/path?q=1`);
          ok = r.statusCode === 200;
          await r.body.dump();
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.ok(ok);
      const accessLine = (): Record<string, unknown> | undefined => p.stderr().split('\n').map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return undefined;
        }
      }).find((o) => o?.log === 'access' && o.status === 200);
      const line = await waitFor(accessLine, () => `an access log line for the 200 on stderr: ${p.stderr().slice(-2000)}`, 5000);
      assert.ok(line, p.stderr());
      assert.equal(line.url, '/path?q=1');
      assert.equal(line.service, 'alog');
      assert.match(String(line.upstream), new RegExp(`127\\.0\\.0\\.1:(${bs.map((b) => b.port).join('|')})`));
      assert.match(String(line.requestId), /^[0-9a-f-]{36}$/);
    } finally {
      await stop(p);
    }
    void http;
  });
});
