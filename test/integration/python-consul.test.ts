// Acceptance with a client nobody on this project wrote: Debian's python-consul (0.7.1) driving
// sessions, locks (two contenders, one winner; released by destroy, TTL expiry and a critical
// check), behavior=delete, txn and events, and the Consul endpoints Switchyard does not implement.
// On etcd (SY_TEST_STORE=etcd) the two contenders talk to two different agents of one cluster.
// Session TTLs and lock-delays run on a hand-driven clock.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sleep, startTestAgent, tempDir, testStore, waitFor, writeBarrier } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { sharedEtcdStoreUrl } from '../helpers/etcd.js';
import { manualClock } from '../helpers/clock.js';
import type { ManualClock } from '../helpers/clock.js';

/** Debian's interpreter: python3-consul installs for it, not for a pyenv python3 on PATH. */
const PYTHON = process.env.SY_PYTHON_CONSUL ?? '/usr/bin/python3';
const BRIDGE = fileURLToPath(new URL('../fixtures/python_consul_bridge.py', import.meta.url));

function skipReason(): string | false {
  const probe = spawnSync(PYTHON, ['-c', 'import consul'], { encoding: 'utf8' });
  if (probe.status === 0) return false;
  const why = `${PYTHON} with python-consul is not available (${(probe.error?.message ?? probe.stderr).trim() || `exit ${probe.status}`}); apt-get install python3-consul`;
  if (process.env.CI === 'true') throw new Error(why);
  return why;
}

interface Answer<T> {
  ok?: T;
  error?: string;
  message?: string;
}

/** One python-consul client in a child process; calls are answered in order. */
class PyConsul {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: ((a: Answer<unknown>) => void)[] = [];
  #stderr = '';

  constructor(agent: TestAgent) {
    this.#child = spawn(PYTHON, ['-u', BRIDGE, '127.0.0.1', String(agent.address.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.setEncoding('utf8').on('data', (d: string) => (this.#stderr += d));
    createInterface({ input: this.#child.stdout }).on('line', (line) => this.#waiting.shift()?.(JSON.parse(line) as Answer<unknown>));
    this.#child.on('exit', (code) => {
      for (const w of this.#waiting.splice(0)) w({ error: 'BridgeExited', message: `python exited ${code}: ${this.#stderr}` });
    });
  }

  /** The raw answer: a result or the exception python-consul raised. */
  call<T>(call: string, kwargs: Record<string, unknown> = {}, args: unknown[] = []): Promise<Answer<T>> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve as (a: Answer<unknown>) => void);
      this.#child.stdin.write(`${JSON.stringify({ call, args, kwargs })}\n`);
    });
  }

  /** The result; a python exception fails the test with its class and message. */
  async ok<T>(call: string, kwargs: Record<string, unknown> = {}, args: unknown[] = []): Promise<T> {
    const a = await this.call<T>(call, kwargs, args);
    if (a.error !== undefined) throw new Error(`python-consul ${call}: ${a.error}: ${a.message}`);
    return a.ok as T;
  }

  txn<T>(ops: unknown[]): Promise<Answer<T>> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve as (a: Answer<unknown>) => void);
      this.#child.stdin.write(`${JSON.stringify({ call: 'txn', ops })}\n`);
    });
  }

  close(): void {
    this.#child.stdin.end();
    this.#child.kill();
  }
}

type Kv = { Key: string; Value: string | null; Session?: string; LockIndex: number; ModifyIndex: number } | null;
type Session = { ID: string; Name: string; Node: string; TTL: string; Behavior: string; NodeChecks: string[] | null } | null;

const onEtcd = testStore === 'etcd';
const skip = skipReason();

describe(`python-consul against ${onEtcd ? 'two agents on etcd' : 'the agent'}: sessions, locks, txn, events`, { skip }, () => {
  let a: TestAgent;
  let b: TestAgent;
  let clock: ManualClock;
  let py1: PyConsul;
  let py2: PyConsul;
  const extra: PyConsul[] = [];

  before(async () => {
    clock = manualClock();
    if (onEtcd) {
      const store = await sharedEtcdStoreUrl();
      a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, tempDir(), { clock });
      b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': '2s' }, tempDir(), { clock });
    } else {
      a = await startTestAgent({}, tempDir(), { clock });
      b = a;
    }
    py1 = new PyConsul(a);
    py2 = new PyConsul(b);
  });
  after(async () => {
    for (const p of [py1, py2, ...extra]) p?.close();
    await a?.stop();
    if (b !== a) await b?.stop();
  });

  /** Waits until the client at `p` sees `key` held by `session` (undefined: free). */
  const holder = (p: PyConsul, key: string, session: string | undefined): Promise<unknown> =>
    waitFor(async () => (await p.ok<[string, Kv]>('kv.get', { key }))[1]?.Session === session, `${key} held by ${session ?? 'nobody'}`);

  it('creates, reads, renews and destroys sessions', async () => {
    const sid = await py1.ok<string>('session.create', { name: 'py-session', ttl: 10 });
    assert.match(sid, /^[0-9a-f-]{36}$/);
    const [index, info] = await py2.ok<[string, Session]>('session.info', {}, [sid]);
    assert.ok(Number(index) >= 1);
    assert.deepEqual([info?.ID, info?.Name, info?.Node, info?.TTL, info?.Behavior, info?.NodeChecks], [sid, 'py-session', a.registry.node.name, '10s', 'release', ['serfHealth']]);
    const [, list] = await py2.ok<[string, NonNullable<Session>[]]>('session.list');
    assert.ok(list.some((s) => s.ID === sid));
    const [, mine] = await py1.ok<[string, NonNullable<Session>[]]>('session.node', {}, [a.registry.node.name]);
    assert.ok(mine.some((s) => s.ID === sid));
    assert.equal((await py2.ok<NonNullable<Session>>('session.renew', {}, [sid])).ID, sid);
    assert.equal(await py1.ok<boolean>('session.destroy', {}, [sid]), true);
    assert.equal((await py2.ok<[string, Session]>('session.info', {}, [sid]))[1], null);
    const gone = await py1.call('session.renew', {}, [sid]);
    assert.equal(gone.error, 'NotFound', JSON.stringify(gone));
    const bad = await py1.call('session.create', { checks: ['no-such-check'] });
    assert.deepEqual([bad.error, bad.message], ['BadRequest', "400 Missing check 'no-such-check' registration"]);
  });

  it('two contenders, one winner; the loser wakes on a blocking get when the session is destroyed and wins after the lock-delay', async () => {
    const s1 = await py1.ok<string>('session.create', { name: 'contender-1' });
    const s2 = await py2.ok<string>('session.create', { name: 'contender-2' });
    const [r1, r2] = await Promise.all([
      py1.ok<boolean>('kv.put', { key: 'py/leader', value: 'one', acquire: s1 }),
      py2.ok<boolean>('kv.put', { key: 'py/leader', value: 'two', acquire: s2 }),
    ]);
    assert.equal(Number(r1) + Number(r2), 1, 'exactly one winner');
    const [winner, loser, ws, ls] = r1 ? [py1, py2, s1, s2] : [py2, py1, s2, s1];
    await holder(loser, 'py/leader', ws);
    const [index, entry] = await loser.ok<[string, Kv]>('kv.get', { key: 'py/leader' });
    assert.deepEqual([entry?.Value, entry?.LockIndex], [r1 ? 'one' : 'two', 1]);
    assert.equal(await loser.ok<boolean>('kv.put', { key: 'py/leader', value: 'x', acquire: ls }), false);
    // The loser blocks on the key; the winner's session is destroyed (by its own client).
    const parked = loser.ok<[string, Kv]>('kv.get', { key: 'py/leader', index, wait: '30s' });
    assert.equal(await winner.ok<boolean>('session.destroy', {}, [ws]), true);
    const [later, released] = await parked;
    assert.ok(Number(later) > Number(index));
    assert.equal(released?.Session, undefined);
    // The lock-delay (15 s by default) keeps the loser out, then lets it in.
    assert.equal(await loser.ok<boolean>('kv.put', { key: 'py/leader', value: 'x', acquire: ls }), false);
    clock.advance(15_001);
    assert.equal(await loser.ok<boolean>('kv.put', { key: 'py/leader', value: 'x', acquire: ls }), true);
    assert.equal((await winner.ok<[string, Kv]>('kv.get', { key: 'py/leader' }))[1]?.LockIndex, 2);
    await loser.ok('session.destroy', {}, [ls]);
  });

  it('a lock is released when its TTL session is not renewed (2×TTL), not before', async () => {
    const sid = await py1.ok<string>('session.create', { ttl: 10, lock_delay: 0 });
    assert.equal(await py1.ok<boolean>('kv.put', { key: 'py/ttl', value: 'v', acquire: sid }), true);
    clock.advance(19_000);
    // A release that a timer started during advance() would be committed and visible after these.
    await writeBarrier(a.url);
    if (b !== a) await writeBarrier(b.url);
    assert.equal((await py2.ok<[string, Kv]>('kv.get', { key: 'py/ttl' }))[1]?.Session, sid, 'still held just before 2×TTL');
    clock.advance(1_001);
    await holder(py2, 'py/ttl', undefined);
    assert.equal((await py2.ok<[string, Session]>('session.info', {}, [sid]))[1], null);
    const other = await py2.ok<string>('session.create');
    assert.equal(await py2.ok<boolean>('kv.put', { key: 'py/ttl', value: 'w', acquire: other }), true, 'lock_delay=0: no delay');
    await py2.ok('session.destroy', {}, [other]);
  });

  it('a lock is released when a check of its session goes critical', async () => {
    // python-consul 0.7 sends agent/check/pass|fail with GET, which Consul 1.x (and Switchyard) refuse
    // with 405; the catalog endpoint (PUT) sets the check's status instead.
    const gate = (CheckID: string, Status: string): Promise<boolean> =>
      py1.ok<boolean>('catalog.register', { node: 'py-node', address: '10.9.9.9', check: { CheckID, Name: CheckID, Status } });
    // As in Consul 1.7+, `checks` fills the legacy Checks field and the default NodeChecks (serfHealth) stays.
    assert.equal(await gate('serfHealth', 'passing'), true);
    assert.equal(await gate('py-gate', 'passing'), true);
    const sid = await py1.ok<string>('session.create', { node: 'py-node', checks: ['py-gate'], lock_delay: 0 });
    assert.equal(await py1.ok<boolean>('kv.put', { key: 'py/gated', value: 'v', acquire: sid }), true);
    await holder(py2, 'py/gated', sid);
    assert.equal(await gate('py-gate', 'critical'), true);
    await holder(py2, 'py/gated', undefined);
    assert.equal((await py2.ok<[string, Session]>('session.info', {}, [sid]))[1], null);
    assert.equal(await py1.ok<boolean>('catalog.deregister', { node: 'py-node' }), true);
  });

  it('behavior=delete removes the held keys with the session', async () => {
    const sid = await py1.ok<string>('session.create', { behavior: 'delete', lock_delay: 0 });
    assert.equal(await py1.ok<boolean>('kv.put', { key: 'py/ephemeral', value: 'here', acquire: sid }), true);
    await holder(py2, 'py/ephemeral', sid);
    assert.equal(await py2.ok<boolean>('session.destroy', {}, [sid]), true);
    await waitFor(async () => (await py1.ok<[string, Kv]>('kv.get', { key: 'py/ephemeral' }))[1] === null, 'ephemeral key deleted');
  });

  it('txn: atomic success, and a 409 with Errors that changes nothing', async () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const done = await py1.txn<{ Results: { KV: { Key: string; ModifyIndex: number } }[]; Errors: null }>([
      { KV: { Verb: 'set', Key: 'py/tx/a', Value: b64('1') } },
      { KV: { Verb: 'set', Key: 'py/tx/b', Value: b64('2') } },
    ]);
    assert.equal(done.error, undefined, JSON.stringify(done));
    assert.deepEqual(done.ok?.Results.map((r) => r.KV.Key), ['py/tx/a', 'py/tx/b']);
    const index = done.ok!.Results[0]!.KV.ModifyIndex;
    await waitFor(async () => (await py2.ok<[string, Kv]>('kv.get', { key: 'py/tx/b' }))[1] !== null, 'txn seen through the other client');
    const failed = await py2.txn<{ Results: null; Errors: { OpIndex: number; What: string }[] }>([
      { KV: { Verb: 'set', Key: 'py/tx/c', Value: b64('3') } },
      { KV: { Verb: 'cas', Key: 'py/tx/a', Value: b64('changed'), Index: index + 1000 } },
    ]);
    assert.deepEqual(failed.ok, { Results: null, Errors: [{ OpIndex: 1, What: 'failed to set key "py/tx/a", index is stale' }] });
    assert.equal((await py1.ok<[string, Kv]>('kv.get', { key: 'py/tx/c' }))[1], null);
    assert.equal((await py1.ok<[string, Kv]>('kv.get', { key: 'py/tx/a' }))[1]?.Value, '1');
    const swapped = await py2.txn<{ Errors: null }>([{ KV: { Verb: 'cas', Key: 'py/tx/a', Value: b64('changed'), Index: index } }]);
    assert.equal(swapped.ok?.Errors, null);
  });

  it('events: fired at A, listed at B, and a blocking list at B woken by the next event fired at A', async () => {
    const fired = await py1.ok<{ ID: string; Name: string }>('event.fire', { name: 'py-deploy', body: 'v42' });
    assert.equal(fired.Name, 'py-deploy');
    const [, atA] = await py1.ok<[string, { ID: string; Payload: string }[]]>('event.list', { name: 'py-deploy' });
    assert.deepEqual(atA.map((e) => [e.ID, e.Payload]), [[fired.ID, 'v42']]);
    const [index, events] = (await waitFor(async () => {
      const r = await py2.ok<[string, { ID: string; Payload: string }[]]>('event.list', { name: 'py-deploy' });
      return r[1].length > 0 ? r : undefined;
    }, 'the event listed at B'))!;
    assert.deepEqual(events.map((e) => [e.ID, e.Payload]), [[fired.ID, 'v42']]);
    const watcher = new PyConsul(b);
    extra.push(watcher);
    const parked = watcher.ok<[string, { ID: string }[]]>('event.list', { name: 'py-deploy', index, wait: '30s' });
    // Not a wait for an outcome: the agent exposes no count of parked event lists (view.waiterCount()
    // covers catalog, health and KV watches only). If the fire came first, the list would answer at
    // once with the new event and the same assertions hold; the pause makes the woken path the usual one.
    await sleep(100);
    const next = await py1.ok<{ ID: string }>('event.fire', { name: 'py-deploy' });
    const [newIndex, after] = await parked;
    assert.notEqual(newIndex, index);
    assert.equal(after.at(-1)?.ID, next.ID);
  });

  it('Consul endpoints Switchyard lacks raise a ConsulException naming them, not a KeyError; ACL calls raise ACLDisabled, as against a Consul with ACLs off', async () => {
    for (const call of ['coordinate.datacenters']) {
      const r = await py1.call(call);
      assert.equal(r.error, 'ConsulException', `${call}: ${JSON.stringify(r)}`);
      assert.match(r.message ?? '', /^501 GET \/v1\/\S+ is a Consul API endpoint that Switchyard does not implement/);
    }
    for (const call of ['acl.list', 'acl.info']) {
      const r = await py1.call(call, {}, call === 'acl.info' ? ['some-id'] : []);
      assert.deepEqual([r.error, r.message], ['ACLDisabled', 'ACL support disabled'], `${call}: ${JSON.stringify(r)}`);
    }
  });
});
