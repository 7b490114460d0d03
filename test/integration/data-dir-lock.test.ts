// One agent per data directory in every mode: a second agent on the same --data-dir is refused naming the holder's
// PID (exit 2), on the embedded store and on etcd; a lock left by a killed agent is taken over with a warning.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tempDir } from '../helpers/agent.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const available = etcdAvailable();

describe('one agent per data directory', () => {
  let etcd: EtcdCluster | undefined;
  const procs: Proc[] = [];
  const dirs: string[] = [];

  before(async () => {
    if (available) etcd = await startEtcd(1);
  });
  after(async () => {
    for (const p of procs) await stop(p, 'SIGKILL');
    await etcd?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const agent = async (dir: string, node: string, store: string[]): Promise<{ proc: Proc; url: string }> => {
    const port = await freePort();
    const proc = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dir, '--node', node, '--log-level', 'warn', ...store]);
    procs.push(proc);
    return { proc, url: `http://127.0.0.1:${port}` };
  };

  /** The second agent must exit by itself; if it comes up instead, that is the bug (and it is stopped). */
  const refused = async (second: { proc: Proc; url: string }): Promise<{ code: number | null; stderr: string }> => {
    const up = waitHttpOk(`${second.url}/v1/status/leader`, second.proc, 30_000).then(() => 'up' as const, () => 'exited' as const);
    const outcome = await Promise.race([second.proc.exited.then(() => 'exited' as const), up]);
    if (outcome === 'up') {
      await stop(second.proc, 'SIGKILL');
      assert.fail('a second agent started on a data directory already in use');
    }
    const { code } = await second.proc.exited;
    return { code, stderr: second.proc.stderr() };
  };

  const modes: [string, () => string[]][] = [
    ['embedded store', () => []],
    ['etcd store', () => ['--store', etcd!.url(`lock-${process.pid}-${dirs.length}`), '--lease-ttl', '2s']],
  ];
  for (const [mode, store] of modes) {
    it(`${mode}: a second agent on the same data dir (same or another --node) exits 2 naming the holder's PID; after a kill -9 the lock is taken over`,
      { skip: mode === 'etcd store' && !available && 'etcd not installed' }, async () => {
        const dir = tempDir('sy-lock-');
        dirs.push(dir);
        const flags = store();
        const first = await agent(dir, 'node-a', flags);
        await waitHttpOk(`${first.url}/v1/status/leader`, first.proc, 30_000);
        for (const node of ['node-b', 'node-a']) {
          const { code, stderr } = await refused(await agent(dir, node, flags));
          assert.equal(code, 2, stderr);
          assert.match(stderr, new RegExp(`data directory ${dir} is locked by process ${first.proc.pid} \\(.*agent.*\\) since .*--data-dir.*\\[SY_ERR_STORE_IO\\]`));
        }
        // The first one is still the one serving.
        assert.equal((await fetch(`${first.url}/v1/status/leader`)).status, 200);
        await stop(first.proc, 'SIGKILL');
        const next = await agent(dir, 'node-a', flags);
        await waitHttpOk(`${next.url}/v1/status/leader`, next.proc, 30_000);
        assert.match(next.proc.stderr(), new RegExp(`removing stale lock ${dir}/LOCK left by process ${first.proc.pid}, which is gone`));
        const { code } = await stop(next.proc);
        assert.equal(code, 0, next.proc.stderr());
      });
  }
});
