// The two discovery sources (in-process catalog and remote blocking queries) see the same registry the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startTestAgent, http, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { LocalSource } from '../../src/discovery/local-source.js';
import { RemoteSource } from '../../src/discovery/remote-source.js';
import { followPredicate } from '../../src/discovery/follow.js';
import type { ServiceSet, Source } from '../../src/discovery/types.js';

const plain = (s: ServiceSet | undefined): unknown => (s ? { catalog: [...s.catalog], instances: [...s.instances] } : undefined);

describe('discovery sources', () => {
  let agent: TestAgent;
  const sources: Source[] = [];
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    for (const s of sources) await s.close();
    await agent.stop();
  });

  it('local and remote sources emit identical service sets, and follow changes', async () => {
    const reg = (body: unknown) => http(agent.url, 'PUT', '/v1/agent/service/register', body);
    await reg({ Name: 'web', ID: 'w1', Address: '10.0.0.1', Port: 80, Weights: { Passing: 3, Warning: 1 } });
    await reg({ Name: 'web', ID: 'w2', Port: 81, Check: { TTL: '1m', Status: 'warning' } });
    await reg({ Name: 'web', ID: 'w3', Port: 82, Check: { TTL: '1m', Status: 'critical' } });
    await reg({ Name: 'tagged', ID: 't1', Port: 90, Tags: ['urlprefix-/t'] });
    await reg({ Name: 'ignored', ID: 'i1', Port: 91 });
    const follow = followPredicate([{ origin: 'test', pathPrefix: '/', headers: [], service: 'web', tags: [], balance: 'round_robin' }]);
    let local: ServiceSet | undefined;
    let remote: ServiceSet | undefined;
    const l = new LocalSource(agent.view, follow);
    const r = new RemoteSource({ address: agent.url, follow, logger: pino({ level: 'silent' }), waitMs: 5000 });
    sources.push(l, r);
    l.start((s) => (local = s));
    r.start((s) => (remote = s));
    await waitFor(() => remote !== undefined && local !== undefined, 'both sources emitted', 5000);
    assert.deepEqual(plain(remote), plain(local));
    assert.deepEqual([...(local!.instances.keys())].sort(), ['tagged', 'web'], 'follows routed and urlprefix-tagged services only');
    const web = local!.instances.get('web')!;
    assert.deepEqual(web.map((i) => `${i.id}:${i.status}`), ['n1/w1:passing', 'n1/w2:warning'], 'critical instances are left out');
    assert.equal(web[1]!.address, '127.0.0.1', 'an empty service address falls back to the node address');
    await http(agent.url, 'PUT', '/v1/agent/check/pass/service:w3');
    await waitFor(() => local?.instances.get('web')?.length === 3 && remote?.instances.get('web')?.length === 3, 'w3 joins both', 5000);
    assert.deepEqual(plain(remote), plain(local));
    await http(agent.url, 'PUT', '/v1/agent/service/deregister/t1');
    await waitFor(() => !local?.instances.has('tagged') && !remote?.instances.has('tagged'), 'tagged leaves both', 5000);
    assert.deepEqual(plain(remote), plain(local));
  });
});
