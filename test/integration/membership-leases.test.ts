// Cluster liveness leases against a real etcd and a real agent process: a re-announce releases the lease it
// replaces, and SIGTERM afterwards stops the process and revokes every lease (nothing is left renewing); an
// etcd outage longer than the client gives a lease does not turn the node critical once etcd is back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tempDir, waitFor } from '../helpers/agent.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const available = etcdAvailable();
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('membership leases', { skip: !available && 'etcd not installed' }, () => {
  let etcd: EtcdCluster;
  let agent: Proc | undefined;
  const dir = tempDir('sy-leases-');

  /** etcd's JSON gateway (v3 API over HTTP), so the test reads etcd without going through Switchyard. */
  const v3 = async <T>(path: string, body: unknown): Promise<T> => {
    const r = await fetch(`http://${etcd.endpoints[0]}/v3/${path}`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
    return (await r.json()) as T;
  };
  const leases = async (): Promise<string[]> => ((await v3<{ leases?: { ID: string }[] }>('lease/leases', {})).leases ?? []).map((l) => l.ID).sort();
  const aliveLease = async (key: string): Promise<string | undefined> => {
    const r = await v3<{ kvs?: { lease?: string }[] }>('kv/range', { key: b64(key) });
    return r.kvs?.[0]?.lease;
  };

  before(async () => {
    etcd = await startEtcd(1);
  });
  after(async () => {
    if (agent) await stop(agent, 'SIGKILL');
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a deleted alive key is re-announced on a new lease, the old lease is revoked, and SIGTERM then exits 0 leaving no lease', { timeout: 90_000 }, async () => {
    const prefix = `leases-${process.pid}/`;
    const port = await freePort();
    agent = switchyard(['agent', '--store', etcd.url(prefix.slice(0, -1)), '--node', 'lease-node', '--http-addr', `127.0.0.1:${port}`,
      '--data-dir', dir, '--lease-ttl', '3s', '--log-level', 'info']);
    await waitHttpOk(`http://127.0.0.1:${port}/v1/status/leader`, agent, 30_000);
    const aliveKey = `${prefix}a/lease-node`;
    const first = await aliveLease(aliveKey);
    assert.ok(first !== undefined && first !== '0', 'the alive key is on a lease');
    assert.deepEqual(await leases(), [first]);

    // What an operator (or a twin agent) does: the alive key disappears behind the agent's back.
    await v3('kv/deleterange', { key: b64(aliveKey) });
    const second = await waitFor(async () => {
      const l = await aliveLease(aliveKey);
      return l !== undefined && l !== first ? l : undefined;
    }, 'the alive key back on a new lease', 15_000, 50);
    // Before the fix the replaced lease stayed granted and kept renewing: two leases from now on.
    await waitFor(async () => (await leases()).join() === second, `only the new lease ${second} left (leases: ${(await leases()).join()})`, 10_000, 50);

    const exited = stop(agent, 'SIGTERM');
    const { code, signal } = await exited;
    assert.equal(signal, null, agent.stderr());
    assert.equal(code, 0, agent.stderr());
    assert.match(agent.stderr(), /agent stopped/);
    assert.deepEqual(await leases(), [], 'close() revoked every lease');
    agent = undefined;
  });

  it('etcd down for longer than 2 × TTL: the node is announced again before its old lease runs out, and never goes critical', { timeout: 120_000 }, async () => {
    const prefix = `outage-${process.pid}`;
    const port = await freePort();
    agent = switchyard(['agent', '--store', etcd.url(prefix), '--node', 'outage-node', '--http-addr', `127.0.0.1:${port}`,
      '--data-dir', tempDir('sy-leases-outage-'), '--lease-ttl', '3s', '--store-timeout', '1s', '--log-level', 'info']);
    const url = `http://127.0.0.1:${port}`;
    await waitHttpOk(`${url}/v1/status/leader`, agent, 30_000);
    const serf = async (): Promise<string> => {
      const r = await fetch(`${url}/v1/health/node/outage-node`);
      const checks = (await r.json()) as { CheckID: string; Status: string }[];
      return checks.find((c) => c.CheckID === 'serfHealth')?.Status ?? 'absent';
    };
    await waitFor(async () => (await serf()) === 'passing', 'serfHealth passing', 15_000, 50);
    // etcd keeps the lease through the outage (nobody can expire it) and gives it a full TTL once it is
    // back; etcd3 gives it up after 2 × TTL (6 s). The re-announce that follows used to back off up to
    // 5 s between attempts, so it could land after the old lease ran out and the node went critical.
    await etcd.kill(0);
    // Back right after a failed attempt deep into the backoff: the old code then slept 5 s before the next
    // one, past the old lease's new TTL (3 s plus an election timeout).
    await waitFor(() => /"attempt":5[,}].*announcing this agent failed; retrying/.test(agent?.stderr() ?? ''), 'five failed announce attempts', 60_000, 20);
    await etcd.start(0);
    const seen = new Set<string>();
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      seen.add(await serf());
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(agent.stderr(), /etcd lease lost: announcing this agent again/, 'the outage outlasted the client\'s lease');
    assert.deepEqual([...seen], ['passing'], `serfHealth seen after the outage: ${[...seen].join(', ')}\n${agent.stderr().slice(-3000)}`);
    const { code } = await stop(agent, 'SIGTERM');
    assert.equal(code, 0, agent.stderr());
    agent = undefined;
  });
});
