// Prepared queries (/v1/query and `<query>.query.consul`) on a real agent: Consul's shapes and words, filters,
// templates, blocking list reads, a query bound to a session going with it, bad definitions refused with the state
// untouched, a name claimed once under concurrent creates, a hostile template regexp that cannot stall the agent,
// and the clients nobody here wrote: Debian's python-consul (its Query API) and dig.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, testStore } from '../helpers/agent.js';
import { sharedEtcdStoreUrl } from '../helpers/etcd.js';
import type { TestAgent } from '../helpers/agent.js';
import { digSkip } from '../helpers/dig.js';

const run = promisify(execFile);
const PYTHON = process.env.SY_PYTHON_CONSUL ?? '/usr/bin/python3';

interface Execute {
  Service: string;
  Nodes: { Node: { Node: string }; Service: { ID: string; Tags: string[] }; Checks: { CheckID: string; Status: string }[] }[];
  DNS: { TTL: string };
  Datacenter: string;
  Failovers: number;
}

describe('prepared queries', () => {
  let agent: TestAgent;
  let base: string;
  let dnsPort = 0;
  /** On etcd, one store prefix for the agent and the agent restarted on it. */
  let store: { store?: string } = {};
  const call = (method: string, path: string, body?: unknown) => http(base, method, path, body);
  const ids = (e: Execute): string[] => e.Nodes.map((n) => n.Service.ID).sort();
  const create = async (def: unknown): Promise<string> => {
    const r = await call('POST', '/v1/query', def);
    assert.equal(r.status, 200, r.text);
    return (r.json as { ID: string }).ID;
  };
  const execute = async (name: string, q = ''): Promise<Execute> => {
    const r = await call('GET', `/v1/query/${encodeURIComponent(name)}/execute${q}`);
    assert.equal(r.status, 200, r.text);
    return r.json as Execute;
  };

  before(async () => {
    store = testStore === 'etcd' ? { store: await sharedEtcdStoreUrl() } : {};
    agent = await startTestAgent({ 'dns-addr': '127.0.0.1:0', ...store });
    base = agent.url;
    dnsPort = agent.dns?.udp.port ?? 0;
    const reg = async (id: string, tags: string[], addr: string, meta: Record<string, string> = {}, check?: unknown): Promise<void> => {
      const r = await call('PUT', '/v1/agent/service/register', { ID: id, Name: 'redis', Tags: tags, Address: addr, Port: 6379, Meta: meta, ...(check ? { Check: check } : {}) });
      assert.equal(r.status, 200, r.text);
    };
    await reg('r1', ['primary', 'v1'], '10.1.0.1', { zone: 'a' });
    await reg('r2', ['replica', 'v1'], '10.1.0.2', { zone: 'b' });
    await reg('r3', ['replica', 'v2', 'experimental'], '10.1.0.3', { zone: 'b' });
    // Warning: kept by default, dropped with OnlyPassing. Critical: always dropped unless its check is ignored.
    await reg('r4', ['replica', 'v1'], '10.1.0.4', {}, { CheckID: 'r4-ttl', TTL: '600s', Status: 'warning' });
    await reg('r5', ['replica', 'v1'], '10.1.0.5', {}, { CheckID: 'r5-ttl', TTL: '600s', Status: 'critical' });
  });
  after(async () => {
    await agent?.stop();
  });

  it('creates, reads, lists, executes, explains, updates and deletes with Consul\'s shapes', async () => {
    const id = await create({ Name: 'redis-replicas', Service: { Service: 'redis', Tags: ['replica', '!experimental'] }, DNS: { TTL: '7s' } });
    assert.match(id, /^[0-9a-f-]{36}$/);
    const got = await call('GET', `/v1/query/${id}`);
    assert.equal(got.status, 200);
    const [q] = got.json as Record<string, unknown>[];
    assert.deepEqual(Object.keys(q ?? {}), ['ID', 'Name', 'Session', 'Token', 'Template', 'Service', 'DNS', 'CreateIndex', 'ModifyIndex']);
    assert.equal(q?.Name, 'redis-replicas');
    assert.equal(Number(got.headers.get('x-consul-index')), q?.ModifyIndex);

    // By ID and by name; r3 is experimental, r5 critical; r4 in warning stays (OnlyPassing is off).
    for (const key of [id, 'redis-replicas']) {
      const e = await execute(key);
      assert.deepEqual(ids(e), ['r2', 'r4']);
      assert.equal(e.Service, 'redis');
      assert.deepEqual(e.DNS, { TTL: '7s' });
      assert.equal(e.Datacenter, 'dc1');
      assert.equal(e.Failovers, 0);
    }
    assert.deepEqual((await execute('redis-replicas', '?limit=1')).Nodes.length, 1);

    const explained = await call('GET', '/v1/query/redis-replicas/explain');
    assert.equal((explained.json as { Query: { ID: string } }).Query.ID, id);

    const upd = await call('PUT', `/v1/query/${id}`, { Name: 'redis-replicas', Service: { Service: 'redis', Tags: ['replica'], OnlyPassing: true, IgnoreCheckIDs: ['r5-ttl'] } });
    assert.equal(upd.status, 200, upd.text);
    // OnlyPassing drops r4 (warning); ignoring r5's check brings r5 back.
    assert.deepEqual(ids(await execute(id)), ['r2', 'r3', 'r5']);
    const after1 = ((await call('GET', `/v1/query/${id}`)).json as { CreateIndex: number; ModifyIndex: number }[])[0];
    assert.ok((after1?.ModifyIndex ?? 0) > (after1?.CreateIndex ?? 0), 'an update moves ModifyIndex only');

    assert.equal((await call('DELETE', `/v1/query/${id}`)).status, 200);
    const gone = await call('GET', `/v1/query/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.text, 'Query not found');
    assert.equal((await call('GET', '/v1/query/redis-replicas/execute')).status, 404);
    // The name is free again.
    await call('DELETE', `/v1/query/${await create({ Name: 'redis-replicas', Service: { Service: 'redis' } })}`);
  });

  it('filters by node and service metadata and puts the near node first', async () => {
    const id = await create({ Service: { Service: 'redis', ServiceMeta: { zone: 'b' } } });
    assert.deepEqual(ids(await execute(id)), ['r2', 'r3']);
    await call('DELETE', `/v1/query/${id}`);
    const nodeMeta = await create({ Service: { Service: 'redis', NodeMeta: { rack: 'nowhere' } } });
    assert.deepEqual(ids(await execute(nodeMeta)), [], 'no node carries that meta');
    await call('DELETE', `/v1/query/${nodeMeta}`);
    // Every instance is on this agent's node: `_agent` keeps them all, and a near node with none changes nothing.
    const near = await create({ Service: { Service: 'redis', Near: '_agent' } });
    assert.deepEqual(ids(await execute(near)), ['r1', 'r2', 'r3', 'r4']);
    assert.deepEqual(ids(await execute(near, '?near=other-node')), ['r1', 'r2', 'r3', 'r4']);
    await call('DELETE', `/v1/query/${near}`);
  });

  it('templates render for the name asked: longest prefix wins, ${match(N)} from the regexp, a catch-all once', async () => {
    const geo = await create({
      Name: 'geo-', Template: { Type: 'name_prefix_match', Regexp: '^geo-([a-z]+)-([a-z0-9]*)$', RemoveEmptyTags: true },
      Service: { Service: '${match(1)}', Tags: ['${match(2)}'] },
    });
    const any = await create({ Name: '', Template: { Type: 'name_prefix_match' }, Service: { Service: '${name.full}' } });
    const twice = await call('POST', '/v1/query', { Name: '', Template: { Type: 'name_prefix_match' }, Service: { Service: 'x' } });
    assert.equal(twice.status, 400);
    assert.equal(twice.text, 'a query template with an empty name already exists');
    assert.deepEqual(ids(await execute('geo-redis-v2')), ['r3']);
    // An empty capture makes an empty tag, which RemoveEmptyTags drops: every healthy instance.
    assert.deepEqual(ids(await execute('geo-redis-')), ['r1', 'r2', 'r3', 'r4']);
    const ex = (await call('GET', '/v1/query/geo-redis-v1/explain')).json as { Query: { ID: string; Service: { Service: string; Tags: string[] } } };
    assert.deepEqual([ex.Query.ID, ex.Query.Service.Service, ex.Query.Service.Tags], [geo, 'redis', ['v1']]);
    // The catch-all takes any other name: ${name.full} is the name asked.
    assert.deepEqual(ids(await execute('redis')), ['r1', 'r2', 'r3', 'r4']);
    assert.equal((await execute('nosuchservice')).Nodes.length, 0);
    await call('DELETE', `/v1/query/${geo}`);
    await call('DELETE', `/v1/query/${any}`);
    assert.equal((await call('GET', '/v1/query/redis/execute')).status, 404, 'no catch-all left');
  });

  it('refuses bad definitions with Consul\'s words, and leaves every query as it was', async () => {
    const keep = await create({ Name: 'keep', Service: { Service: 'redis' } });
    const before = await call('GET', '/v1/query');
    const cases: [unknown, number, RegExp][] = [
      [{ Service: { Service: '' } }, 400, /^Must provide a Service name to query$/],
      [{ Name: 'keep', Service: { Service: 'redis' } }, 400, /^name 'keep' aliases an existing query name$/],
      [{ Name: keep, Service: { Service: 'redis' } }, 400, new RegExp(`^name '${keep}' aliases an existing query ID$`)],
      [{ Service: { Service: 'redis', Failover: { NearestN: -1 } } }, 400, /^Bad NearestN '-1', must be >= 0$/],
      [{ Service: { Service: 'redis' }, DNS: { TTL: 'soon' } }, 400, /^Bad DNS TTL 'soon': /],
      [{ Service: { Service: 'redis' }, DNS: { TTL: '-5s' } }, 400, /^DNS TTL '-5000000000', must be >=0$/],
      [{ Template: { Type: 'regex' }, Service: { Service: 'redis' } }, 400, /^Bad Template.Type 'regex'$/],
      [{ Template: { Type: 'name_prefix_match', Regexp: '(' }, Service: { Service: 'redis' } }, 400, /^Bad Regexp: .*missing closing \)/],
      [{ Template: { Type: 'name_prefix_match' }, Service: { Service: '${env.HOME}' } }, 400, /^Failed compiling template: Service.Service: unknown variable or function "\$\{env.HOME\}"/],
      [{ Template: { Type: 'name_prefix_match' }, Service: { Service: 'a', Tags: ['${name.full'] } }, 400, /^Failed compiling template: Service.Tags\[0\]: "\$\{" is not closed/],
      [{ Session: 'a7f5e2b1-0000-4000-8000-000000000000', Service: { Service: 'redis' } }, 400, /^invalid session "a7f5e2b1-/],
      [{ Service: { Service: 'redis', Tags: 'primary' } }, 400, /^Request decode failed: Service.Tags: expected array, got string$/],
      ['{"Service": ', 400, /^Request decode failed: /],
      [{ Service: { Service: 'redis', Connect: true } }, 400, /Connect/],
    ];
    for (const [body, status, text] of cases) {
      const r = await call('POST', '/v1/query', body);
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.status} ${r.text}`);
      assert.match(r.text, text, JSON.stringify(body));
    }
    const missing = await call('PUT', '/v1/query/a7f5e2b1-0000-4000-8000-000000000000', { Service: { Service: 'redis' } });
    assert.deepEqual([missing.status, missing.text], [404, 'Cannot modify non-existent prepared query: \'a7f5e2b1-0000-4000-8000-000000000000\'']);
    const missingDel = await call('DELETE', '/v1/query/a7f5e2b1-0000-4000-8000-000000000000');
    assert.equal(missingDel.status, 404);
    assert.equal((await call('GET', '/v1/query/keep/execute?limit=-1')).status, 400);
    assert.equal((await call('GET', '/v1/query/keep/bogus')).status, 404);
    const afterAll = await call('GET', '/v1/query');
    assert.equal(afterAll.text, before.text, 'no query changed');
    assert.equal(afterAll.headers.get('x-consul-index'), before.headers.get('x-consul-index'), 'the index did not move');
    await call('DELETE', `/v1/query/${keep}`);
  });

  it('claims a name once under concurrent creates', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, () => call('POST', '/v1/query', { Name: 'race', Service: { Service: 'redis' } })));
    const won = results.filter((r) => r.status === 200);
    assert.equal(won.length, 1, results.map((r) => `${r.status} ${r.text}`).join('; '));
    assert.ok(results.filter((r) => r.status !== 200).every((r) => r.status === 400 && r.text === 'name \'race\' aliases an existing query name'));
    const list = (await call('GET', '/v1/query')).json as { Name: string; ID: string }[];
    assert.deepEqual(list.filter((q) => q.Name === 'race').map((q) => q.ID), [(won[0]?.json as { ID: string }).ID]);
    await call('DELETE', `/v1/query/${(won[0]?.json as { ID: string }).ID}`);
  });

  it('a hostile template regexp runs in linear time (RE2), not for minutes', async () => {
    // (a+)+$ backtracks exponentially in a backtracking engine: 2^40 steps on this name.
    const evil = await create({ Name: 'evil-', Template: { Type: 'name_prefix_match', Regexp: '^evil-(a+)+$' }, Service: { Service: '${match(1)}' } });
    const started = performance.now();
    const r = await call('GET', `/v1/query/evil-${'a'.repeat(40)}b/execute`);
    const ms = performance.now() - started;
    assert.equal(r.status, 200, r.text);
    assert.equal((r.json as Execute).Service, '', 'no match: ${match(1)} is empty');
    assert.ok(ms < 2000, `took ${ms.toFixed(0)} ms`);
    await call('DELETE', `/v1/query/${evil}`);
  });

  it('a blocking list read wakes on a create; a query bound to a session goes when the session does', async () => {
    const first = await call('GET', '/v1/query');
    const index = Number(first.headers.get('x-consul-index'));
    const parked = call('GET', `/v1/query?index=${index}&wait=20s`);
    const sid = ((await call('PUT', '/v1/session/create', { Name: 'q', Checks: [] })).json as { ID: string }).ID;
    const id = await create({ Name: 'ephemeral', Session: sid, Service: { Service: 'redis' } });
    const woke = await parked;
    assert.ok(Number(woke.headers.get('x-consul-index')) > index);
    assert.ok((woke.json as { ID: string }[]).some((q) => q.ID === id));
    assert.equal((await call('PUT', `/v1/session/destroy/${sid}`)).status, 200);
    assert.equal((await call('GET', `/v1/query/${id}`)).status, 404, 'deleted with its session');
    assert.equal((await call('GET', '/v1/query/ephemeral/execute')).status, 404, 'and its name with it');
    await call('DELETE', `/v1/query/${await create({ Name: 'ephemeral', Service: { Service: 'redis' } })}`);
  });

  it('queries survive a restart of the agent on its data dir', async () => {
    const id = await create({ Name: 'durable', Service: { Service: 'redis', Tags: ['primary'] } });
    const dir = agent.dataDir;
    await agent.close();
    agent = { ...(await startTestAgent({ 'dns-addr': '127.0.0.1:0', ...store }, dir)), dataDir: dir };
    base = agent.url;
    dnsPort = agent.dns?.udp.port ?? 0;
    assert.deepEqual(ids(await execute('durable')), ['r1']);
    await call('DELETE', `/v1/query/${id}`);
  });

  it('answers <query>.query.consul through dig, with the query\'s TTL', { skip: digSkip }, async () => {
    const id = await create({ Name: 'primary-redis', Service: { Service: 'redis', Tags: ['primary'] }, DNS: { TTL: '42s' } });
    const dig = async (...args: string[]): Promise<string> => (await run('dig', ['@127.0.0.1', '-p', String(dnsPort), '+time=2', '+tries=1', ...args], { timeout: 15_000 })).stdout;
    const a = await dig('primary-redis.query.consul', 'A', '+noall', '+answer');
    assert.match(a, /^primary-redis\.query\.consul\.\s+42\s+IN\s+A\s+10\.1\.0\.1$/m);
    assert.match(await dig(`${id}.query.dc1.consul`, 'SRV', '+short'), /^1 1 6379 /m);
    assert.match(await dig('nothing-here.query.consul', 'A'), /status: NXDOMAIN/);
    await call('DELETE', `/v1/query/${id}`);
    assert.match(await dig('primary-redis.query.consul', 'A'), /status: NXDOMAIN/);

    // Near `_ip`: the node whose address asks (this agent's node, 127.0.0.1) answers first, every time.
    const svc = (id: string, addr: string): unknown => ({ ID: id, Service: 'edge', Address: addr, Port: 80 });
    for (const [node, sid, addr] of [['far-1', 'f1', '10.9.0.1'], ['far-2', 'f2', '10.9.0.2']] as const) {
      assert.equal((await call('PUT', '/v1/catalog/register', { Node: node, Address: `10.8.0.${sid.slice(1)}`, Service: svc(sid, addr) })).status, 200);
    }
    assert.equal((await call('PUT', '/v1/agent/service/register', { ID: 'e1', Name: 'edge', Address: '10.9.0.9', Port: 80 })).status, 200);
    const near = await create({ Name: 'edge-near', Service: { Service: 'edge', Near: '_ip' } });
    for (let i = 0; i < 6; i++) {
      const first = (await dig('edge-near.query.consul', 'A', '+short')).split('\n')[0];
      assert.equal(first, '10.9.0.9', `try ${i}: the asking node's instance first`);
    }
    await call('DELETE', `/v1/query/${near}`);
  });

  it('works with Debian\'s python-consul Query API', async (t) => {
    try {
      await run(PYTHON, ['-c', 'import consul']);
    } catch (err) {
      if (process.env.CI === 'true') throw err;
      t.skip('python3-consul not installed');
      return;
    }
    const script = `
import json, sys, consul
c = consul.Consul(host='127.0.0.1', port=int(sys.argv[1]))
out = {}
q = c.query.create('redis', name='py-redis', tags=['v1'], onlypassing=True, ttl='9s')
out['id'] = q['ID']
out['get'] = c.query.get(q['ID'])[0]['Service']['Tags']
out['list'] = [x['Name'] for x in c.query.list()]
r = c.query.execute('py-redis')
out['exec'] = sorted(n['Service']['ID'] for n in r['Nodes'])
out['ttl'] = r['DNS']['TTL']
out['update'] = c.query.update(q['ID'], 'redis', name='py-redis', tags=['primary'])
out['after'] = sorted(n['Service']['ID'] for n in c.query.execute(q['ID'])['Nodes'])
out['explain'] = c.query.explain('py-redis')['Query']['Service']['Tags']
out['delete'] = c.query.delete(q['ID'])
# python-consul answers a 404 here with (X-Consul-Index, None): a 404 without the index was a KeyError.
out['gone'] = c.query.get(q['ID'])
try:
    c.query.create('')
except consul.ConsulException as e:
    out['bad'] = str(e)
print(json.dumps(out))
`;
    const { stdout } = await run(PYTHON, ['-c', script, String(agent.address.port)], { timeout: 30_000 });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(out.get, ['v1']);
    assert.ok((out.list as string[]).includes('py-redis'));
    // OnlyPassing: r4 (warning) and r5 (critical) are left out.
    assert.deepEqual(out.exec, ['r1', 'r2']);
    assert.equal(out.ttl, '9s');
    assert.equal(out.update, true);
    assert.deepEqual(out.after, ['r1']);
    assert.deepEqual(out.explain, ['primary']);
    assert.equal(out.delete, true);
    const [goneIndex, goneValue] = out.gone as [string, unknown];
    assert.match(goneIndex, /^\d+$/);
    assert.equal(goneValue, null);
    assert.match(String(out.bad), /Must provide a Service name to query/);
  });
});
