// Every write acknowledged with 200 survives kill -9 and restart, with the same indexes; indexes never go backwards.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Pool } from 'undici';
import { http, tempDir } from '../helpers/agent.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';

const N = 300;

async function snapshot(url: string): Promise<{ services: unknown; kv: unknown; checks: unknown; index: number }> {
  const services: Record<string, unknown> = {};
  const names = Object.keys((await http(url, 'GET', '/v1/catalog/services')).json as object).sort();
  for (const n of names) services[n] = (await http(url, 'GET', `/v1/catalog/service/${n}`)).json;
  const kv = (await http(url, 'GET', '/v1/kv/?recurse')).json;
  const checks = (await http(url, 'GET', '/v1/health/state/any')).json;
  const index = Number((await http(url, 'GET', '/v1/catalog/services')).headers.get('x-consul-index'));
  return { services, kv, checks, index };
}

describe('durability', () => {
  const dir = tempDir('sy-durable-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every acknowledged registration, check status and KV pair across kill -9, with the same indexes', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = ['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dir, '--node', 'n1', '--log-level', 'warn'];
    const first = switchyard(args);
    await waitHttpOk(`${url}/v1/status/leader`, first);

    const pool = new Pool(url, { connections: 16 });
    let next = 0;
    const acked = new Set<number>();
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < N) {
        const i = next++;
        const r1 = await pool.request({ path: '/v1/agent/service/register', method: 'PUT', body: JSON.stringify({ Name: `svc-${i % 7}`, ID: `i-${i}`, Port: 1000 + i, Tags: [`t${i}`], Check: { TTL: '1h' } }) });
        await r1.body.dump();
        const r2 = await pool.request({ path: `/v1/kv/cfg/${i}`, method: 'PUT', body: `value-${i}` });
        await r2.body.dump();
        if (i % 3 === 0) {
          const r3 = await pool.request({ path: `/v1/agent/check/pass/service:i-${i}?note=ok-${i}`, method: 'PUT' });
          await r3.body.dump();
        }
        if (r1.statusCode === 200 && r2.statusCode === 200) acked.add(i);
      }
    }));
    await pool.close();
    assert.equal(acked.size, N);
    const before = await snapshot(url);

    // Writes in flight while the process dies must not corrupt what was acknowledged.
    const inflight = Array.from({ length: 50 }, (_, i) => http(url, 'PUT', `/v1/kv/late/${i}`, 'x').catch(() => undefined));
    const res = await stop(first, 'SIGKILL');
    assert.equal(res.signal, 'SIGKILL');
    await Promise.all(inflight);

    const second = switchyard(args);
    try {
      await waitHttpOk(`${url}/v1/status/leader`, second);
      const afterKill = await snapshot(url);
      assert.deepEqual(afterKill.services, before.services, 'services and their CreateIndex/ModifyIndex are unchanged');
      assert.deepEqual(afterKill.checks, before.checks, 'checks and their last status survived');
      // KV written after `before` (the in-flight batch) may or may not be there; what was there must be identical.
      const kvAfter = (afterKill.kv as { Key: string }[]).filter((e) => !e.Key.startsWith('late/'));
      assert.deepEqual(kvAfter, before.kv);
      assert.ok(afterKill.index >= before.index, `index never goes backwards (${before.index} → ${afterKill.index})`);
      const passing = (await http(url, 'GET', '/v1/health/service/svc-0?passing')).json as unknown[];
      assert.ok(passing.length > 0, 'check statuses survived: passing instances are still passing');
    } finally {
      await stop(second);
    }
  });
});
