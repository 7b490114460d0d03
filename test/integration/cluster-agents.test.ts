// Agents sharing one etcd, in process: one catalog and one index sequence, blocking queries woken by
// another agent's write, liveness by lease, anti-entropy after a restart, and clear errors for bad flags.
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, tempDir, waitFor, writeBarrier } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { Resolver } from 'node:dns/promises';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';

const available = etcdAvailable();

describe('agents sharing one etcd', { skip: !available && 'etcd not installed' }, () => {
  let etcd: EtcdCluster;
  let seq = 0;
  const url = (): string => etcd.url(`agents-${process.pid}-${seq++}`);

  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    await etcd?.stop();
  });

  const pair = async (ttl = '2s'): Promise<[TestAgent, TestAgent, string]> => {
    const store = url();
    const a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': ttl });
    const b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': ttl });
    return [a, b, store];
  };

  it('serve one catalog with the same indexes; a blocking query on B wakes for a write at A', async () => {
    const [a, b] = await pair();
    try {
      const nodes = await http(b.url, 'GET', '/v1/catalog/nodes');
      assert.deepEqual((JSON.parse(nodes.text) as { Node: string }[]).map((n) => n.Node).sort(), ['node-a', 'node-b']);
      const first = await http(b.url, 'GET', '/v1/health/service/web');
      const index = Number(first.headers.get('x-consul-index'));
      const parked = http(b.url, 'GET', `/v1/health/service/web?index=${index}&wait=10s`);
      const t0 = Date.now();
      const reg = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1', Port: 8080 });
      assert.equal(reg.status, 200);
      const woke = await parked;
      const ms = Date.now() - t0;
      assert.equal(woke.status, 200);
      assert.ok(ms < 5000, `woke after ${ms} ms (by the change, not by the 10 s wait)`);
      const entries = JSON.parse(woke.text) as { Node: { Node: string }; Service: { ID: string; ModifyIndex: number } }[];
      assert.deepEqual(entries.map((e) => [e.Node.Node, e.Service.ID]), [['node-a', 'web-1']]);
      const fromA = await http(a.url, 'GET', '/v1/health/service/web');
      assert.equal(fromA.headers.get('x-consul-index'), woke.headers.get('x-consul-index'), 'both agents report the same index');
      assert.equal(fromA.text, woke.text);
      const metrics = (await http(a.url, 'GET', '/metrics')).text;
      assert.match(metrics, /^switchyard_store_watch_connected 1$/m);
      assert.match(metrics, /^switchyard_cluster_agents_alive 2$/m);
      // KV compare-and-set is one decision for the whole cluster.
      await http(a.url, 'PUT', '/v1/kv/leader', 'none');
      const kv = JSON.parse((await http(b.url, 'GET', '/v1/kv/leader')).text) as { ModifyIndex: number }[];
      const idx = kv[0]!.ModifyIndex;
      const [wa, wb] = await Promise.all([http(a.url, 'PUT', `/v1/kv/leader?cas=${idx}`, 'a'), http(b.url, 'PUT', `/v1/kv/leader?cas=${idx}`, 'b')]);
      assert.deepEqual([wa.text.trim(), wb.text.trim()].sort(), ['false', 'true'], 'exactly one CAS wins');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("an agent's checks run where it was registered; when it leaves its node goes critical; back, it re-asserts its services", async () => {
    const store = url();
    const dirA = tempDir();
    let a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, dirA);
    const b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': '2s' });
    try {
      assert.equal((await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'api', ID: 'api-1', Port: 9, Check: { TTL: '30s', Status: 'passing' } })).status, 200);
      assert.deepEqual(JSON.parse((await http(b.url, 'GET', '/v1/agent/services')).text), {}, "B's agent API lists only B's own services");
      await waitFor(async () => JSON.parse((await http(b.url, 'GET', '/v1/health/service/api?passing')).text).length === 1, 'api passing');
      // Every agent lists every member, as Consul's gossip pool does: 1 alive, 4 failed (Serf's codes).
      type Member = { Name: string; Addr: string; Status: number; Tags: { id: string } };
      const membersAt = async (url: string): Promise<[string, number][]> => ((await http(url, 'GET', '/v1/agent/members')).json as Member[]).map((m) => [m.Name, m.Status]);
      let seen: [string, number][] = [];
      const membersAre = async (url: string, want: [string, number][]): Promise<boolean> => JSON.stringify((seen = await membersAt(url))) === JSON.stringify(want);
      await waitFor(() => membersAre(b.url, [['node-a', 1], ['node-b', 1]]), () => `both alive at B: ${JSON.stringify(seen)}`);
      assert.deepEqual(await membersAt(a.url), [['node-a', 1], ['node-b', 1]]);
      const aAtB = ((await http(b.url, 'GET', '/v1/agent/members')).json as Member[]).find((m) => m.Name === 'node-a');
      assert.equal(aAtB?.Addr, '127.0.0.1');
      assert.match(aAtB?.Tags.id ?? '', /^[0-9a-f-]{36}$/);
      // A leaves gracefully (lease revoked): B marks node-a critical at once.
      await a.close();
      await waitFor(() => membersAre(b.url, [['node-a', 4], ['node-b', 1]]), () => `node-a failed at B: ${JSON.stringify(seen)}`, 5000);
      await waitFor(async () => {
        const checks = JSON.parse((await http(b.url, 'GET', '/v1/health/node/node-a')).text) as { CheckID: string; Status: string; Output: string }[];
        return checks.find((c) => c.CheckID === 'serfHealth')?.Status === 'critical';
      }, 'node-a critical', 5000);
      assert.deepEqual(JSON.parse((await http(b.url, 'GET', '/v1/health/service/api?passing')).text), []);
      // Meanwhile someone removes A's service through B's catalog API.
      assert.equal((await http(b.url, 'PUT', '/v1/catalog/deregister', { Node: 'node-a', ServiceID: 'api-1' })).status, 200);
      assert.deepEqual(JSON.parse((await http(b.url, 'GET', '/v1/catalog/service/api')).text), []);
      // A comes back (same node, same data dir): node passing again and its service re-asserted.
      a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, dirA);
      await waitFor(async () => {
        const svc = JSON.parse((await http(b.url, 'GET', '/v1/catalog/service/api')).text) as { ServiceID: string }[];
        const serf = (JSON.parse((await http(b.url, 'GET', '/v1/health/node/node-a')).text) as { CheckID: string; Status: string }[]).find((c) => c.CheckID === 'serfHealth');
        return svc.length === 1 && svc[0]!.ServiceID === 'api-1' && serf?.Status === 'passing';
      }, 'service re-asserted and node passing', 10_000);
      // A deregistration through A's own API is final: anti-entropy does not resurrect it.
      assert.equal((await http(a.url, 'PUT', '/v1/agent/service/deregister/api-1')).status, 200);
      await a.close();
      a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, dirA);
      // A's anti-entropy round starts its write as A announces itself, before startTestAgent returns:
      // after a barrier at A and one at B, B's catalog would show a resurrected service.
      await writeBarrier(a.url);
      await writeBarrier(b.url);
      assert.deepEqual(JSON.parse((await http(b.url, 'GET', '/v1/catalog/service/api')).text), []);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("an alias check at B follows a service on A's node through etcd: passing, failing, and critical once A is gone", async () => {
    const [a, b] = await pair();
    try {
      assert.equal((await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'api', ID: 'api-1', Port: 9, Check: { CheckID: 'api-ttl', Name: 'api alive', TTL: '30s', Status: 'passing' } })).status, 200);
      assert.equal((await http(b.url, 'PUT', '/v1/agent/service/register', {
        Name: 'api-proxy', Port: 10, Check: { CheckID: 'follows-api', AliasNode: 'node-a', AliasService: 'api-1' },
      })).status, 200);
      const alias = async (): Promise<string> => {
        const c = (JSON.parse((await http(b.url, 'GET', '/v1/agent/checks')).text) as Record<string, { Status: string; Output: string }>)['follows-api'];
        return `${c?.Status} ${c?.Output}`;
      };
      await waitFor(async () => (await alias()) === 'passing All checks passing.', 'alias passing', 5000);
      // A's TTL check fails at A; the alias at B follows the change that etcd brings it.
      assert.equal((await http(a.url, 'PUT', '/v1/agent/check/fail/api-ttl?note=down')).status, 200);
      await waitFor(async () => (await alias()) === 'critical Aliased check "api alive" failing: down', 'alias critical at B', 5000);
      assert.equal((await http(a.url, 'PUT', '/v1/agent/check/pass/api-ttl')).status, 200);
      await waitFor(async () => (await alias()) === 'passing All checks passing.', 'alias passing again', 5000);
      // A leaves: its node's serfHealth goes critical, and so does everything on it, the alias included.
      await a.close();
      await waitFor(async () => (await alias()).startsWith('critical Aliased check "Serf Health Status" failing: '), 'alias critical after A left', 10_000);
    } finally {
      await a.stop().catch(() => undefined);
      await b.stop();
    }
  });

  it('`up --store etcd://… --register-as` joins the cluster: its balancer is in DNS while it runs, gone after Ctrl-C', async () => {
    const store = url();
    const b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': '2s' });
    const [httpPort, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const up = switchyard(['up', '--store', store, '--node', 'node-up', '--http-addr', `127.0.0.1:${httpPort}`, '--listen', `127.0.0.1:${lbPort}`,
      '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', tempDir(), '--no-registrator', '--register-as', '--log-level', 'warn']);
    try {
      await waitHttpOk(`http://127.0.0.1:${httpPort}/v1/status/leader`, up, 30_000);
      const resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([`127.0.0.1:${dnsPort}`]);
      await waitFor(async () => {
        try {
          return (await resolver.resolveSrv('switchyard-lb.service.consul')).some((r) => r.port === lbPort);
        } catch {
          return false;
        }
      }, 'the balancer in DNS', 15_000, 100);
      // Another agent of the cluster sees it too, health-checked.
      const seen = JSON.parse((await http(b.url, 'GET', '/v1/health/service/switchyard-lb?passing')).text) as { Node: { Node: string }; Service: { Port: number } }[];
      assert.deepEqual(seen.map((e) => [e.Node.Node, e.Service.Port]), [['node-up', lbPort]]);
      const { code } = await stop(up, 'SIGINT');
      assert.equal(code, 0, up.stderr());
      assert.deepEqual(JSON.parse((await http(b.url, 'GET', '/v1/catalog/service/switchyard-lb')).text), [], 'deregistered on the way out');
    } finally {
      await stop(up, 'SIGKILL');
      await b.stop();
    }
  });

  it('refuses a second live agent with the same node name, but lets a restarted one (same data dir) take its name back', async () => {
    const store = url();
    const dir = tempDir();
    const a = await startTestAgent({ store, node: 'twin', 'lease-ttl': '10s' }, dir);
    try {
      await assert.rejects(startTestAgent({ store, node: 'twin', 'lease-ttl': '10s' }), (e: unknown) =>
        e instanceof Error && /node name "twin" is already in use by a live agent at http:\/\/127\.0\.0\.1:\d+/.test(e.message));
      // Same data dir = same node ID: the restarted agent takes its name back.
      const b = await startTestAgent({ store, node: 'other', 'lease-ttl': '10s' });
      try {
        await a.close();
        const again = await startTestAgent({ store, node: 'twin', 'lease-ttl': '10s' }, dir);
        await waitFor(async () => {
          const serf = (JSON.parse((await http(b.url, 'GET', '/v1/health/node/twin')).text) as { CheckID: string; Status: string }[]).find((c) => c.CheckID === 'serfHealth');
          return serf?.Status === 'passing';
        }, 'twin passing after the restart', 5000);
        await again.stop();
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
    }
  });

  it('rejects a bad --store URL and a too-short --lease-ttl with clear messages and exit code 2', async () => {
    for (const [flags, expect] of [
      [['--store', 'etcd://'], /--store|store/],
      [['--store', 'consul://127.0.0.1:8500'], /must be "embedded" or etcd:\/\//],
      [['--store', 'etcd://h:1', '--lease-ttl', '1s'], /lease-ttl.*between 2s and 1h/],
      [['--store', 'etcd://h:1', '--store-timeout', 'soon'], /store-timeout.*Go duration/],
    ] as [string[], RegExp][]) {
      const p = switchyard(['agent', '--http-addr', '127.0.0.1:0', '--data-dir', tempDir(), ...flags]);
      const { code } = await p.exited;
      assert.equal(code, 2, `${flags.join(' ')}: exit ${code}: ${p.stderr()}`);
      assert.match(p.stderr(), expect, flags.join(' '));
    }
  });

  it('with etcd unreachable at start, the agent exits with a clear message instead of hanging', async () => {
    const p = switchyard(['agent', '--http-addr', '127.0.0.1:0', '--data-dir', tempDir(), '--store', 'etcd://127.0.0.1:1', '--store-timeout', '1s', '--log-level', 'silent']);
    const { code } = await p.exited;
    assert.equal(code, 2, p.stderr());
    assert.match(p.stderr(), /SY_ERR_STORE_UNAVAILABLE|etcd 127\.0\.0\.1:1/);
  });
});
