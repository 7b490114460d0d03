// Blocking queries wake fast on their own data and sleep through everyone else's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startTestAgent, http, negativeWindow, waitFor, waitParked } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

describe('blocking queries', () => {
  let a: TestAgent;
  before(async () => {
    a = await startTestAgent();
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'A', ID: 'a1', Port: 1 });
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'B', ID: 'b1', Port: 2 });
  });
  after(async () => {
    await a.stop();
  });

  // Woken by the change, not by its 30 s wait running out. How fast it wakes is a performance
  // figure, measured by bench:registry (wake p50/p99 with 1,000 parked watchers), not asserted here:
  // a wall-clock bound in a test fails whenever the machine is busy.
  // The read cache shares one answer between requests that ask the same thing. Decoded parameters and
  // paths may hold '&', '=' and '?': keyed as joined text, a forged request cached its empty answer for
  // every other client asking `?tag=v1&x=1` (a balancer watching it would have dropped every instance).
  it('a request whose decoded parameters or path hold separators never answers for another (cache poisoning)', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'P', ID: 'p1', Port: 4, Tags: ['v1'] });
    // [forged, legit, instances each must answer]: under the old key each pair was one entry.
    const cases = [
      ['/v1/health/service/P?tag=v1%26x=1', 0, '/v1/health/service/P?tag=v1&x=1', 1],
      ['/v1/health/service/P?a=1%26tag%3Dv2', 1, '/v1/health/service/P?a=1&tag=v2', 0],
      ['/v1/health/service/P%3Ftag=v1', 0, '/v1/health/service/P?tag=v1', 1],
      ['/v1/catalog/service/P?tag=v1%26y=2', 0, '/v1/catalog/service/P?tag=v1&y=2', 1],
    ] as const;
    for (const [bad, badCount, good, goodCount] of cases) {
      const b = await http(a.url, 'GET', bad);
      assert.equal((b.json as unknown[]).length, badCount, `${bad}: ${b.text.slice(0, 200)}`);
      const g = await http(a.url, 'GET', good);
      assert.equal(g.status, 200);
      assert.equal((g.json as unknown[]).length, goodCount, `${good} after ${bad}: ${g.text.slice(0, 200)}`);
    }
  });

  // Records share their tag lists and meta maps, found by a key joined with NUL: a tag holding a NUL
  // registered first used to become the tags of every later registration whose tags joined the same.
  it('a registration whose tags or meta hold a NUL does not set the tags or meta of another', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'Q', ID: 'q-forged', Port: 5, Tags: ['v1\u0000canary'], Meta: { a: '1\u0000b\u00002' } });
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'Q', ID: 'q-real', Port: 6, Tags: ['v1', 'canary'], Meta: { a: '1', b: '2' } });
    const all = (await http(a.url, 'GET', '/v1/catalog/service/Q')).json as { ServiceID: string; ServiceTags: string[]; ServiceMeta: Record<string, string> }[];
    const real = all.find((s) => s.ServiceID === 'q-real');
    assert.deepEqual(real?.ServiceTags, ['v1', 'canary']);
    assert.deepEqual(real?.ServiceMeta, { a: '1', b: '2' });
    const v1 = (await http(a.url, 'GET', '/v1/health/service/Q?tag=v1')).json as { Service: { ID: string } }[];
    assert.deepEqual(v1.map((e) => e.Service.ID), ['q-real']);
  });

  it('a watcher of A wakes when A changes, long before its wait runs out', async () => {
    const idx = (await http(a.url, 'GET', '/v1/health/service/A')).headers.get('x-consul-index');
    const parked = a.view.waiterCount();
    const pending = http(a.url, 'GET', `/v1/health/service/A?index=${idx}&wait=30s`);
    await waitParked(a, parked, 'the watch of A');
    const t0 = performance.now();
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'A', ID: 'a2', Port: 3 });
    const r = await pending;
    const wake = performance.now() - t0;
    assert.ok(wake < 10_000, `woke after ${wake.toFixed(1)} ms`);
    assert.ok(Number(r.headers.get('x-consul-index')) > Number(idx), 'the answer carries a newer index');
    assert.equal((r.json as unknown[]).length, 2);
  });

  it('1,000 watchers of A do not wake when B changes, and all wake when A changes', async () => {
    const idx = (await http(a.url, 'GET', '/v1/health/service/A')).headers.get('x-consul-index');
    const dispatcher = new Agent({ connections: 1100 });
    let woke = 0;
    const watchers = Array.from({ length: 1000 }, async () => {
      const res = await request(`${a.url}/v1/health/service/A?index=${idx}&wait=30s`, { dispatcher });
      await res.body.text();
      woke++;
      return res.headers['x-consul-index'];
    });
    await waitFor(() => a.view.waiterCount() >= 1000, () => `every watcher parked (${a.view.waiterCount()} of 1000)`, 20_000, 20);
    assert.equal(a.view.waiterCount(), 1000);
    for (let i = 0; i < 20; i++) await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'B', ID: 'b1', Port: 100 + i });
    // The agent wakes watchers synchronously as it applies a change, so the count below already shows a
    // wrong wake-up; the window gives a woken watcher's answer the time to reach its client as well.
    await negativeWindow(200, 'an answer to a watcher of A');
    assert.equal(woke, 0, 'no watcher of A woke for changes to B');
    assert.equal(a.view.waiterCount(), 1000);
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'A', ID: 'a3', Port: 4 });
    const indexes = await Promise.all(watchers);
    assert.equal(woke, 1000);
    assert.ok(indexes.every((i) => Number(i) > Number(idx)));
    await dispatcher.close();
  });

  // A woken watcher's next request waits while the fan-out still answers others (raw-front.ts): nothing may
  // be lost by that. Each watcher re-parks at once with the index it got, five changes in a row.
  it('300 watchers re-parking after every answer see each of five changes of A, with writes to B in between', async () => {
    const n = 300;
    const dispatcher = new Agent({ connections: n + 10 });
    const start = Number((await http(a.url, 'GET', '/v1/health/service/A')).headers.get('x-consul-index'));
    const seen: number[][] = Array.from({ length: n }, () => []);
    let stop = false;
    const loops = seen.map(async (mine) => {
      let idx = start;
      while (!stop) {
        const res = await request(`${a.url}/v1/health/service/A?index=${idx}&wait=30s`, { dispatcher });
        await res.body.text();
        const next = Number(res.headers['x-consul-index']);
        if (next > idx) mine.push(next);
        idx = next;
      }
    });
    const parked = (): boolean => a.view.waiterCount() >= n;
    await waitFor(parked, () => `every watcher parked (${a.view.waiterCount()} of ${n})`, 20_000, 20);
    const changes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'A', ID: 'a-loop', Port: 5000 + i });
      assert.equal(r.status, 200);
      // A write elsewhere while the fan-out runs is answered, not held.
      assert.equal((await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'B', ID: 'b1', Port: 300 + i })).status, 200);
      changes.push(Number((await http(a.url, 'GET', '/v1/health/service/A')).headers.get('x-consul-index')));
      await waitFor(() => seen.every((m) => m.at(-1) === changes.at(-1)) && parked(), () => `change ${i + 1}: ${seen.filter((m) => m.at(-1) === changes.at(-1)).length} of ${n} watchers saw it, ${a.view.waiterCount()} parked`, 20_000, 20);
    }
    for (const m of seen) assert.deepEqual(m, changes);
    stop = true;
    await http(a.url, 'PUT', '/v1/agent/service/deregister/a-loop');
    await Promise.all(loops);
    await dispatcher.close();
  });

  it('a client that goes away releases its parked query', async () => {
    const idx = (await http(a.url, 'GET', '/v1/kv/nothing')).headers.get('x-consul-index');
    const ac = new AbortController();
    const p = fetch(`${a.url}/v1/kv/nothing?index=${idx}&wait=60s`, { signal: ac.signal }).catch(() => 'aborted');
    await waitParked(a, 0, 'the KV watch');
    assert.equal(a.view.waiterCount(), 1);
    ac.abort();
    assert.equal(await p, 'aborted');
    await waitFor(() => a.view.waiterCount() === 0, () => `the aborted query released (${a.view.waiterCount()} parked)`, 5000, 10);
  });

  it('a KV watcher on a missing key wakes when the key is created', async () => {
    const miss = await http(a.url, 'GET', '/v1/kv/later');
    assert.equal(miss.status, 404);
    const parked = a.view.waiterCount();
    const pending = http(a.url, 'GET', `/v1/kv/later?index=${miss.headers.get('x-consul-index')}&wait=10s`);
    await waitParked(a, parked, 'the watch of the missing key');
    // The write is awaited too: its answer can come after the woken read's, and the agent stops when the test ends.
    const write = http(a.url, 'PUT', '/v1/kv/later', 'now');
    const [r] = await Promise.all([pending, write]);
    assert.equal(r.status, 200);
    assert.equal((r.json as { Value: string }[])[0]!.Value, Buffer.from('now').toString('base64'));
  });
});
