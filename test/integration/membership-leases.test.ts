// Cluster liveness leases against a real etcd and a real agent process: a re-announce releases the lease it
// replaces, and SIGTERM afterwards stops the process and revokes every lease (nothing is left renewing).
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
});
