// A real full disk under a real agent (a small tmpfs mounted for the test): writes answer 503 while it is full, the
// store's health check and metric say so, one log line per state change, and writes work again once space returns,
// without a restart. A restart attempt while still full leaves no empty side files behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, waitFor } from '../helpers/agent.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

/** Mounts a tmpfs of `size` at a fresh directory; undefined where mounting is not allowed (not root, no CAP_SYS_ADMIN). */
function mountTmpfs(size: string): string | undefined {
  const at = mkdtempSync(join(tmpdir(), 'sy-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at], { encoding: 'utf8' });
  if (r.status === 0) return at;
  rmSync(at, { recursive: true, force: true });
  if (process.env['CI'] === 'true') throw new Error(`a tmpfs is required under CI=true (mount -t tmpfs failed: ${r.stderr || r.error?.message})`);
  return undefined;
}

/** Writes zeros to `path` until the file system is full. */
async function fill(path: string): Promise<void> {
  const fh = await open(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
}

const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

describe('a full disk under the embedded store', () => {
  const mount = mountTmpfs('8m');
  const skip = mount === undefined && 'cannot mount a tmpfs here (needs root); under CI=true this fails instead';
  const dataDir = mount === undefined ? '' : join(mount, 'data');
  const filler = mount === undefined ? '' : join(mount, 'filler');
  const procs: Proc[] = [];
  let url = '';
  let port = 0;

  const start = async (): Promise<Proc> => {
    const p = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--node', 'n1', '--log-level', 'info']);
    procs.push(p);
    return p;
  };

  before(async () => {
    if (skip) return;
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    for (const p of procs) await stop(p, 'SIGKILL');
    if (mount !== undefined) {
      spawnSync('umount', [mount]);
      rmSync(mount, { recursive: true, force: true });
    }
  });

  it('writes answer 503 while the disk is full and work again, without a restart, once space returns', { skip, timeout: 120_000 }, async () => {
    const p = await start();
    await waitHttpOk(`${url}/v1/status/leader`, p, 30_000);
    assert.equal((await http(url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web-1', Port: 80 })).status, 200);
    assert.equal((await http(url, 'PUT', '/v1/kv/before', 'kept')).status, 200);
    const storeCheck = async (): Promise<{ Status: string; Output: string; ServiceID: string } | undefined> =>
      ((await http(url, 'GET', '/v1/health/node/n1')).json as { CheckID: string; Status: string; Output: string; ServiceID: string }[]).find((c) => c.CheckID === 'switchyard:store');
    assert.equal((await storeCheck())?.Status, 'passing');
    assert.match((await http(url, 'GET', '/metrics')).text, /^switchyard_store_writable 1$/m);

    await fill(filler);
    const refused = await http(url, 'PUT', '/v1/kv/during', 'x'.repeat(20_000));
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.text, /write-ahead log .* could not be written \(ENOSPC: no space left on device.*\): nothing was applied/);
    // Every write is refused while the disk stays full; reads go on.
    for (let i = 0; i < 20; i++) {
      const r = await http(url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: `late-${i}`, Port: 81 });
      assert.equal(r.status, 503, r.text);
    }
    assert.equal((await http(url, 'GET', '/v1/status/leader')).status, 200);
    assert.equal((await http(url, 'GET', '/v1/kv/before?raw')).text, 'kept');
    assert.match((await http(url, 'GET', '/metrics')).text, /^switchyard_store_writable 0$/m);
    const critical = await storeCheck();
    assert.equal(critical?.Status, 'critical');
    assert.equal(critical?.ServiceID, 'consul');
    assert.match(critical?.Output ?? '', /cannot be written since .*ENOSPC/);
    // The check is on the agent's `consul` service: other services on the node stay healthy.
    assert.deepEqual((await http(url, 'GET', '/v1/health/service/web?passing')).json instanceof Array, true);
    assert.equal(((await http(url, 'GET', '/v1/health/service/web?passing')).json as unknown[]).length, 1);
    assert.deepEqual((await http(url, 'GET', '/v1/health/service/consul?passing')).json, []);

    await unlink(filler);
    await waitFor(async () => (await http(url, 'PUT', '/v1/kv/after', 'back')).status === 200, 'a write to succeed once space is back', 30_000, 100);
    assert.equal((await storeCheck())?.Status, 'passing');
    assert.match((await http(url, 'GET', '/metrics')).text, /^switchyard_store_writable 1$/m);
    const log = p.stderr();
    assert.equal(count(log, /store unwritable/), 1, 'one line when it became unwritable');
    assert.equal(count(log, /store writable again/), 1, 'one line when it recovered');
    assert.equal(count(log, /"stack"/), 0, 'no stack traces');

    // Nothing refused was applied, everything acknowledged survives a kill -9.
    await stop(p, 'SIGKILL');
    const again = await start();
    await waitHttpOk(`${url}/v1/status/leader`, again, 30_000);
    assert.deepEqual(((await http(url, 'GET', '/v1/kv/?keys')).json as string[]).sort(), ['after', 'before']);
    assert.deepEqual(Object.keys((await http(url, 'GET', '/v1/agent/services')).json as object), ['web-1']);
    assert.equal((await stop(again)).code, 0, again.stderr());
  });

  it('a start on a still-full disk fails cleanly, without side files, and recovers the torn tail once there is room', { skip, timeout: 120_000 }, async () => {
    for (const p of procs.splice(0)) await stop(p, 'SIGKILL');
    await unlink(filler).catch(() => undefined);
    const first = await start();
    await waitHttpOk(`${url}/v1/status/leader`, first, 30_000);
    assert.equal((await http(url, 'PUT', '/v1/kv/durable', 'yes')).status, 200);
    assert.equal((await stop(first)).code, 0, first.stderr());
    // A torn record at the end of the log, as a kill during a write that hit ENOSPC leaves it.
    const wal = readdirSync(dataDir).filter((n) => /^wal-\d{16}\.log$/.test(n)).sort().at(-1) as string;
    const torn = Buffer.alloc(96 * 1024, 0x41);
    torn.writeUInt32LE(200 * 1024, 0); // a length beyond the end: a record that never finished
    appendFileSync(join(dataDir, wal), torn);
    // Full, except 16 KiB: room for the LOCK file, not for keeping the 96 KiB tail aside.
    writeFileSync(join(mount as string, 'spacer'), Buffer.alloc(16 * 1024));
    await fill(filler);
    await unlink(join(mount as string, 'spacer'));
    for (let attempt = 0; attempt < 2; attempt++) {
      const p = await start();
      const { code } = await p.exited;
      assert.equal(code, 2, p.stderr());
      assert.match(p.stderr(), /cannot recover store in .*: ENOSPC: no space left on device/);
      const names = readdirSync(dataDir);
      assert.deepEqual(names.filter((n) => n.includes('.corrupt-')), [], `no side files: ${names.join(', ')}`);
      assert.ok(!names.includes('LOCK'), 'no lock left behind');
    }
    await unlink(filler);
    const p = await start();
    await waitHttpOk(`${url}/v1/status/leader`, p, 30_000);
    const sides = readdirSync(dataDir).filter((n) => n.includes('.corrupt-'));
    assert.equal(sides.length, 1, sides.join(', '));
    assert.equal(statSync(join(dataDir, sides[0] as string)).size, torn.length);
    assert.ok(readFileSync(join(dataDir, sides[0] as string)).equals(torn));
    assert.equal((await http(url, 'GET', '/v1/kv/durable?raw')).text, 'yes');
    assert.equal((await stop(p)).code, 0, p.stderr());
  });
});
