// Sessions, KV locks, /v1/txn, events, Consul-shaped metrics and unknown endpoints through the HTTP
// API. On the embedded store both "agents" are one agent; in the etcd pass (SY_TEST_STORE=etcd) they
// are two agents on one etcd prefix, so a session made at A guards a lock taken or seen at B.
// Session TTLs and lock-delays run on a hand-driven clock: no test waits for them in real time.
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { http, sleep, startTestAgent, tempDir, testStore, waitFor, writeBarrier } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { sharedEtcdStoreUrl } from '../helpers/etcd.js';
import { manualClock } from '../helpers/clock.js';
import type { ManualClock } from '../helpers/clock.js';

interface Session {
  ID: string; Name: string; Node: string; LockDelay: number; Behavior: string; TTL: string;
  NodeChecks: string[] | null; ServiceChecks: { ID: string; Namespace: string }[] | null; Checks?: string[];
  CreateIndex: number; ModifyIndex: number;
}
interface KvEntry { Key: string; Value: string | null; LockIndex: number; Session?: string; Flags: number; CreateIndex: number; ModifyIndex: number }

const onEtcd = testStore === 'etcd';

interface Pair {
  readonly a: TestAgent;
  /** Another agent of the same cluster on etcd; `a` itself on the embedded store. */
  readonly b: TestAgent;
  readonly clock: ManualClock;
  stop(): Promise<void>;
}

async function pair(): Promise<Pair> {
  const clock = manualClock();
  if (!onEtcd) {
    const a = await startTestAgent({}, tempDir(), { clock });
    return { a, b: a, clock, stop: () => a.stop() };
  }
  const store = await sharedEtcdStoreUrl();
  const a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, tempDir(), { clock });
  const b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': '2s' }, tempDir(), { clock });
  return { a, b, clock, stop: async () => { await a.stop(); await b.stop(); } };
}

const json = <T>(r: { text: string }): T => JSON.parse(r.text) as T;

async function createSession(agent: TestAgent, body?: unknown): Promise<string> {
  const r = await http(agent.url, 'PUT', '/v1/session/create', body);
  assert.equal(r.status, 200, r.text);
  return json<{ ID: string }>(r).ID;
}

async function kv(agent: TestAgent, key: string): Promise<KvEntry | undefined> {
  const r = await http(agent.url, 'GET', `/v1/kv/${key}`);
  return r.status === 404 ? undefined : json<KvEntry[]>(r)[0];
}

async function put(agent: TestAgent, path: string, body?: string): Promise<boolean> {
  const r = await http(agent.url, 'PUT', path, body);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return json<boolean>(r);
}

/** Waits until agent `x` shows the key's holder as `session` (undefined: free); on etcd the other agent's mirror follows by watch. */
const holderIs = (x: TestAgent, key: string, session: string | undefined): Promise<unknown> =>
  waitFor(async () => (await kv(x, key))?.Session === session, `${key} held by ${session ?? 'nobody'} at ${x.url}`);

const sessionGone = (x: TestAgent, id: string): Promise<unknown> =>
  waitFor(async () => json<Session[]>(await http(x.url, 'GET', `/v1/session/info/${id}`)).length === 0, `session ${id} gone`);

describe(`sessions and locks (${onEtcd ? 'two agents on etcd' : 'embedded store'})`, () => {
  let p: Pair;
  before(async () => {
    p = await pair();
  });
  after(async () => {
    await p?.stop();
  });

  it("creates sessions with Consul's defaults and shapes, from Go-cased and python-consul's lower-case bodies", async () => {
    const { a, b } = p;
    const node = a.registry.node.name;
    const id = await createSession(a);
    const info = await http(b.url, 'GET', `/v1/session/info/${id}`);
    assert.equal(info.status, 200);
    assert.ok(Number(info.headers.get('x-consul-index')) >= 1);
    const [s] = json<Session[]>(info);
    assert.deepEqual(Object.keys(s!), ['ID', 'Name', 'Node', 'LockDelay', 'Behavior', 'TTL', 'NodeChecks', 'ServiceChecks', 'CreateIndex', 'ModifyIndex']);
    assert.deepEqual({ ...s, CreateIndex: 0, ModifyIndex: 0 }, {
      ID: id, Name: '', Node: node, LockDelay: 15e9, Behavior: 'release', TTL: '', NodeChecks: ['serfHealth'], ServiceChecks: null, CreateIndex: 0, ModifyIndex: 0,
    });
    assert.equal(s!.CreateIndex, s!.ModifyIndex);
    // python-consul: lower-case keys, "Ns" strings; LockDelay numbers below 1000 are seconds.
    const py = await createSession(a, { name: 'py', lockdelay: '5s', behavior: 'delete', ttl: '10s', checks: [] });
    const [ps] = json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${py}`));
    assert.deepEqual([ps!.Name, ps!.LockDelay, ps!.Behavior, ps!.TTL, ps!.NodeChecks], ['py', 5e9, 'delete', '10s', []]);
    const num = await createSession(a, { LockDelay: 7, Checks: ['serfHealth'] });
    assert.equal(json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${num}`))[0]!.LockDelay, 7e9);
    // Legacy Checks other than the default are kept and shown next to NodeChecks.
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'app', CheckID: 'app', TTL: '30s', Status: 'passing' });
    const legacy = await createSession(a, { Checks: ['serfHealth', 'app'] });
    const [ls] = json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${legacy}`));
    assert.deepEqual([ls!.NodeChecks, ls!.Checks], [['serfHealth'], ['serfHealth', 'app']]);
    const svc = await createSession(a, { NodeChecks: [], ServiceChecks: [{ ID: 'app' }] });
    assert.deepEqual(json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${svc}`))[0]!.ServiceChecks, [{ ID: 'app', Namespace: '' }]);
    // list and node list (ordered by ID), unknown session info is [].
    await waitFor(async () => json<Session[]>(await http(b.url, 'GET', '/v1/session/list')).length === 5, 'five sessions listed at b');
    const list = json<Session[]>(await http(b.url, 'GET', '/v1/session/list')).map((x) => x.ID);
    assert.deepEqual(list, [...list].sort());
    assert.deepEqual(json<Session[]>(await http(a.url, 'GET', `/v1/session/node/${node}`)).map((x) => x.ID).sort(), [id, py, num, legacy, svc].sort());
    assert.deepEqual(json<Session[]>(await http(a.url, 'GET', '/v1/session/info/00000000-0000-0000-0000-000000000000')), []);
    for (const x of [id, py, num, legacy, svc]) assert.equal(json<boolean>(await http(a.url, 'PUT', `/v1/session/destroy/${x}`)), true);
    await http(a.url, 'PUT', '/v1/agent/check/deregister/app');
  });

  it('refuses bad sessions with Consul\'s messages and creates nothing', async () => {
    const { a } = p;
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'down', CheckID: 'down', TTL: '30s', Status: 'critical' });
    const cases: [unknown, number, RegExp][] = [
      [{ Node: 'no-such-node' }, 400, /^Missing node registration$/],
      [{ Checks: ['nope'] }, 400, /^Missing check 'nope' registration$/],
      [{ Checks: ['serfHealth', 'down'] }, 400, /^Check 'down' is in critical state$/],
      [{ TTL: '5s' }, 400, /^Invalid Session TTL '5000000000', must be between \[10s=24h0m0s\]$/],
      [{ TTL: '25h' }, 400, /^Invalid Session TTL '90000000000000', must be between/],
      [{ TTL: 'soon' }, 400, /^Session TTL 'soon' invalid: /],
      [{ Behavior: 'explode' }, 400, /^Invalid Behavior setting 'explode'$/],
      [{ LockDelay: 'later' }, 400, /^Request decode failed: LockDelay: /],
      [{ Node: '' }, 400, /^Must provide Node$/],
      ['{', 400, /^Request decode failed: /],
    ];
    for (const [body, status, text] of cases) {
      const r = await http(a.url, 'PUT', '/v1/session/create', body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.text, text, JSON.stringify(body));
    }
    assert.deepEqual(json<Session[]>(await http(a.url, 'GET', '/v1/session/list')), []);
    const renew = await http(a.url, 'PUT', '/v1/session/renew/00000000-0000-0000-0000-000000000000');
    assert.deepEqual([renew.status, renew.text], [404, "Session id '00000000-0000-0000-0000-000000000000' not found"]);
    assert.deepEqual([(await http(a.url, 'PUT', '/v1/session/destroy/')).status, (await http(a.url, 'PUT', '/v1/session/destroy/')).text], [400, 'Missing session']);
    assert.equal((await http(a.url, 'GET', '/v1/session/create')).status, 405);
    // Locks with a session that does not exist, or none.
    const bad = await http(a.url, 'PUT', '/v1/kv/x?acquire=00000000-0000-0000-0000-000000000000', 'v');
    assert.deepEqual([bad.status, bad.text], [400, 'invalid session "00000000-0000-0000-0000-000000000000"']);
    assert.deepEqual([(await http(a.url, 'PUT', '/v1/kv/x?acquire=', 'v')).text, (await http(a.url, 'PUT', '/v1/kv/x?release=', 'v')).text], ['missing session', 'missing session']);
    assert.equal(await kv(a, 'x'), undefined);
    await http(a.url, 'PUT', '/v1/agent/check/deregister/down');
  });

  it('two contenders, one winner; LockIndex and Session on the entry; a blocking query wakes on release; plain writes keep the lock', async () => {
    const { a, b } = p;
    const sa = await createSession(a, { Name: 'a' });
    const sb = await createSession(b, { Name: 'b' });
    const [ra, rb] = await Promise.all([put(a, `/v1/kv/svc/leader?acquire=${sa}`, 'a'), put(b, `/v1/kv/svc/leader?acquire=${sb}`, 'b')]);
    assert.equal(Number(ra) + Number(rb), 1, 'exactly one contender wins');
    const [winner, loser, ws, ls] = ra ? [a, b, sa, sb] : [b, a, sb, sa];
    await holderIs(loser, 'svc/leader', ws);
    const held = (await kv(loser, 'svc/leader'))!;
    assert.equal(held.LockIndex, 1);
    assert.equal(Buffer.from(held.Value ?? '', 'base64').toString(), ra ? 'a' : 'b');
    // The loser keeps losing; re-acquiring by the holder keeps LockIndex; a plain write keeps the lock.
    assert.equal(await put(loser, `/v1/kv/svc/leader?acquire=${ls}`, 'x'), false);
    assert.equal(await put(winner, `/v1/kv/svc/leader?acquire=${ws}`, 'again'), true);
    assert.equal(await put(winner, '/v1/kv/svc/leader?flags=7', 'plain'), true);
    const kept = (await kv(winner, 'svc/leader'))!;
    assert.deepEqual([kept.Session, kept.LockIndex, kept.Flags], [ws, 1, 7]);
    // The loser parks a blocking query on the key; releasing wakes it with the lock gone.
    const index = Number((await http(loser.url, 'GET', '/v1/kv/svc/leader')).headers.get('x-consul-index'));
    const parked = http(loser.url, 'GET', `/v1/kv/svc/leader?index=${index}&wait=30s`);
    assert.equal(await put(loser, `/v1/kv/svc/leader?release=${ls}`, 'nope'), false, 'only the holder releases');
    assert.equal(await put(winner, `/v1/kv/svc/leader?release=${ws}`, 'bye'), true);
    const woke = await parked;
    const after = json<KvEntry[]>(woke)[0]!;
    assert.equal(after.Session, undefined);
    assert.equal(Buffer.from(after.Value ?? '', 'base64').toString(), 'bye');
    assert.ok(Number(woke.headers.get('x-consul-index')) > index);
    // An explicit release sets no lock-delay: the loser takes it at once, LockIndex moves on.
    assert.equal(await put(loser, `/v1/kv/svc/leader?acquire=${ls}`, 'mine'), true);
    assert.equal((await kv(loser, 'svc/leader'))!.LockIndex, 2);
    await http(a.url, 'PUT', `/v1/session/destroy/${sa}`);
    await http(b.url, 'PUT', `/v1/session/destroy/${sb}`);
  });

  it('a plain write racing an acquisition never drops the lock (it is re-planned on the entry the acquisition wrote)', async () => {
    const { a } = p;
    const sid = await createSession(a);
    for (let i = 0; i < 20; i++) {
      const key = `race/${i}`;
      // Started in the same tick: the write plans on the entry before the acquisition lands.
      const [acquired] = await Promise.all([
        a.sessions.acquire(key, sid, { flags: '0', value: null }),
        a.registry.kvPut(key, Buffer.from('plain'), { flags: '0' }),
      ]);
      assert.equal(acquired, true);
      const e = (await kv(a, key))!;
      assert.deepEqual([e.Session, e.LockIndex], [sid, 1], key);
    }
    await http(a.url, 'PUT', `/v1/session/destroy/${sid}`);
  });

  it('destroy releases the locks, with the lock-delay; behavior=delete deletes them', async () => {
    const { a, b, clock } = p;
    const holder = await createSession(a, { LockDelay: '10s' });
    const other = await createSession(b);
    assert.equal(await put(a, `/v1/kv/d/one?acquire=${holder}`, 'v'), true);
    assert.equal(await put(a, `/v1/kv/d/two?acquire=${holder}`, 'w'), true);
    await holderIs(b, 'd/two', holder);
    assert.equal(json<boolean>(await http(b.url, 'PUT', `/v1/session/destroy/${holder}`)), true);
    await holderIs(a, 'd/one', undefined);
    const released = (await kv(a, 'd/one'))!;
    assert.deepEqual([released.LockIndex, Buffer.from(released.Value ?? '', 'base64').toString()], [1, 'v']);
    // Within the lock-delay nobody gets the keys, from either agent; after it, they do.
    assert.equal(await put(b, `/v1/kv/d/one?acquire=${other}`, 'x'), false);
    assert.equal(await put(a, `/v1/kv/d/two?acquire=${other}`, 'x'), false);
    // Consul judges the lock-delay first: inside it even the destroyed session's acquisition is a plain
    // false, not an error; the same request is refused as an invalid session elsewhere.
    assert.equal(await put(a, `/v1/kv/d/one?acquire=${holder}`, 'x'), false);
    const elsewhere = await http(a.url, 'PUT', `/v1/kv/d/free?acquire=${holder}`, 'x');
    assert.deepEqual([elsewhere.status, elsewhere.text], [400, `invalid session "${holder}"`]);
    clock.advance(9_000);
    assert.equal(await put(b, `/v1/kv/d/one?acquire=${other}`, 'x'), false);
    clock.advance(1_001);
    assert.equal(await put(b, `/v1/kv/d/one?acquire=${other}`, 'x'), true);
    assert.equal((await kv(b, 'd/one'))!.LockIndex, 2);
    // behavior=delete: the held keys go with the session.
    const eph = await createSession(a, { Behavior: 'delete', LockDelay: 0 });
    assert.equal(await put(a, `/v1/kv/eph/me?acquire=${eph}`, 'here'), true);
    await http(a.url, 'PUT', `/v1/session/destroy/${eph}`);
    await waitFor(async () => (await kv(b, 'eph/me')) === undefined, 'ephemeral key deleted');
    // LockDelay 0: no delay after the invalidation.
    assert.equal(await put(a, `/v1/kv/eph/me?acquire=${other}`, 'next'), true);
    await http(a.url, 'PUT', `/v1/session/destroy/${other}`);
  });

  it('a TTL session dies 2×TTL after its last renewal, releasing its locks; renewals push it out', async () => {
    const { a, b, clock } = p;
    const id = await createSession(a, { TTL: '10s', LockDelay: '1s' });
    assert.equal(await put(a, `/v1/kv/ttl/lock?acquire=${id}`, 'v'), true);
    clock.advance(15_000);
    const renewed = await http(b.url, 'PUT', `/v1/session/renew/${id}`);
    assert.equal(renewed.status, 200, renewed.text);
    assert.deepEqual(json<Session[]>(renewed).map((s) => [s.ID, s.TTL]), [[id, '10s']]);
    clock.advance(15_000); // 30 s after creation, 15 s after the renewal: alive (the deadline is 2×TTL = 20 s).
    // An invalidation that a timer started during advance() would be committed and visible after these.
    await writeBarrier(a.url);
    await writeBarrier(b.url);
    assert.equal(json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${id}`)).length, 1);
    // A blocking query on the session list wakes when it expires.
    const index = Number((await http(b.url, 'GET', '/v1/session/list')).headers.get('x-consul-index'));
    const parked = http(b.url, 'GET', `/v1/session/list?index=${index}&wait=30s`);
    clock.advance(5_001);
    const woke = await parked;
    assert.equal(woke.status, 200);
    assert.ok(!json<Session[]>(woke).some((s) => s.ID === id), woke.text);
    await holderIs(b, 'ttl/lock', undefined);
    assert.equal((await http(a.url, 'PUT', `/v1/session/renew/${id}`)).status, 404);
  });

  it('a session dies when one of its checks goes critical or is deregistered', async () => {
    const { a, b } = p;
    for (const end of ['critical', 'deregistered'] as const) {
      await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'gate', CheckID: 'gate', TTL: '30s', Status: 'passing' });
      const id = await createSession(a, { Checks: ['serfHealth', 'gate'], LockDelay: 0 });
      assert.equal(await put(a, `/v1/kv/gated?acquire=${id}`, 'v'), true);
      await holderIs(b, 'gated', id);
      if (end === 'critical') await http(a.url, 'PUT', '/v1/agent/check/fail/gate?note=down');
      else await http(a.url, 'PUT', '/v1/agent/check/deregister/gate');
      await sessionGone(b, id);
      await holderIs(b, 'gated', undefined);
      if (end === 'critical') await http(a.url, 'PUT', '/v1/agent/check/deregister/gate');
    }
    // A session on a node that is deregistered from the catalog goes with it.
    await http(a.url, 'PUT', '/v1/catalog/register', { Node: 'ext-1', Address: '10.1.1.1' });
    const ext = await createSession(b, { Node: 'ext-1', Checks: [] });
    await http(b.url, 'PUT', '/v1/catalog/deregister', { Node: 'ext-1' });
    await sessionGone(a, ext);
  });

  it("txn: KV verbs apply atomically with Consul's result shapes; a failing operation answers 409 with Errors and writes nothing", async () => {
    const { a, b } = p;
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const ok = await http(a.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 'tx/a', Value: b64('1'), Flags: 3 } },
      { KV: { Verb: 'set', Key: 'tx/b', Value: b64('2') } },
      { KV: { Verb: 'get', Key: 'tx/a' } },
      { kv: { verb: 'get-tree', key: 'tx/' } },
    ]);
    assert.equal(ok.status, 200, ok.text);
    const res = json<{ Results: { KV: KvEntry }[]; Errors: null }>(ok);
    assert.equal(res.Errors, null);
    assert.deepEqual(res.Results.map((r) => [r.KV.Key, r.KV.Value, r.KV.Flags]), [['tx/a', null, 3], ['tx/b', null, 0], ['tx/a', b64('1'), 3], ['tx/a', b64('1'), 3], ['tx/b', b64('2'), 0]]);
    const rev = res.Results[0]!.KV.ModifyIndex;
    assert.ok(res.Results.every((r) => r.KV.ModifyIndex === rev), 'one transaction, one index');
    await waitFor(async () => (await kv(b, 'tx/b')) !== undefined, 'txn visible at b');
    // A stale cas fails: nothing of the transaction is applied, every failing op is reported.
    const bad = await http(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'set', Key: 'tx/c', Value: b64('3') } },
      { KV: { Verb: 'cas', Key: 'tx/a', Value: b64('x'), Index: rev + 100 } },
      { KV: { Verb: 'check-index', Key: 'tx/b', Index: 1 } },
      { KV: { Verb: 'get', Key: 'tx/none' } },
      { KV: { Verb: 'dance', Key: 'tx/a' } },
    ]);
    assert.equal(bad.status, 409);
    assert.deepEqual(json(bad), {
      Results: null,
      Errors: [
        { OpIndex: 1, What: 'failed to set key "tx/a", index is stale' },
        { OpIndex: 2, What: `failed index check for key "tx/b", current modify index ${rev} != 1` },
        { OpIndex: 3, What: 'key "tx/none" doesn\'t exist' },
        { OpIndex: 4, What: 'unknown KV verb "dance"' },
      ],
    });
    assert.equal(await kv(b, 'tx/c'), undefined);
    assert.equal(Buffer.from((await kv(b, 'tx/a'))!.Value ?? '', 'base64').toString(), '1');
    // cas, delete-cas, check-session, lock/unlock and delete-tree.
    const sid = await createSession(a);
    const locked = await http(b.url, 'PUT', '/v1/txn', [
      { KV: { Verb: 'cas', Key: 'tx/a', Value: b64('x'), Index: rev } },
      { KV: { Verb: 'lock', Key: 'tx/lock', Value: b64('L'), Session: sid } },
      { KV: { Verb: 'check-session', Key: 'tx/lock', Session: sid } },
      { KV: { Verb: 'delete-cas', Key: 'tx/b', Index: rev } },
    ]);
    assert.equal(locked.status, 200, locked.text);
    assert.equal(json<{ Results: { KV: KvEntry }[] }>(locked).Results[1]!.KV.Session, sid);
    const twice = await http(a.url, 'PUT', '/v1/txn', [{ KV: { Verb: 'lock', Key: 'tx/lock', Session: '00000000-0000-0000-0000-000000000000' } }, { KV: { Verb: 'unlock', Key: 'tx/a', Session: sid } }]);
    assert.deepEqual(json<{ Errors: { What: string }[] }>(twice).Errors.map((e) => e.What),
      ['invalid session "00000000-0000-0000-0000-000000000000"', 'failed to unlock key "tx/a", lock isn\'t held, or is held by another session']);
    const tree = await http(a.url, 'PUT', '/v1/txn', [{ KV: { Verb: 'unlock', Key: 'tx/lock', Session: sid } }, { KV: { Verb: 'delete-tree', Key: 'tx/' } }]);
    assert.equal(tree.status, 200, tree.text);
    await waitFor(async () => json<string[]>(await http(b.url, 'GET', '/v1/kv/?keys')).every((k) => !k.startsWith('tx/')), 'tree deleted at b');
    await http(a.url, 'PUT', `/v1/session/destroy/${sid}`);
    // Limits and undecodable bodies.
    const many = await http(a.url, 'PUT', '/v1/txn', Array.from({ length: 65 }, () => ({ KV: { Verb: 'get', Key: 'k' } })));
    assert.deepEqual([many.status, many.text], [413, 'Transaction contains too many operations (65 > 64)']);
    const notArray = await http(a.url, 'PUT', '/v1/txn', { KV: {} });
    assert.deepEqual([notArray.status, notArray.text], [400, 'Failed to parse body: expected a JSON array of operations']);
    const both = await http(a.url, 'PUT', '/v1/txn', [{ KV: { Verb: 'get', Key: 'k' }, Node: { Verb: 'get', Node: { Node: 'n' } } }]);
    assert.equal(both.status, 400);
    assert.match(both.text, /operation 0 must have exactly one of KV, Node, Service or Check/);
    const b64bad = await http(a.url, 'PUT', '/v1/txn', [{ KV: { Verb: 'set', Key: 'k', Value: 'not base64!' } }]);
    assert.deepEqual([b64bad.status, b64bad.text], [400, 'Failed to parse body: operation 0.KV.Value: failed to decode value: illegal base64 data']);
  });

  it('txn: Node, Service and Check operations', async () => {
    const { a, b } = p;
    const r = await http(a.url, 'PUT', '/v1/txn', [
      { Node: { Verb: 'set', Node: { Node: 'tx-node', Address: '10.2.2.2' } } },
      { Service: { Verb: 'set', Node: 'tx-node', Service: { Service: 'txdb', Port: 5432, Tags: ['primary'] } } },
      { Check: { Verb: 'set', Check: { Node: 'tx-node', CheckID: 'txdb-alive', ServiceID: 'txdb', Status: 'passing' } } },
    ]);
    assert.equal(r.status, 200, r.text);
    const results = json<{ Results: Record<string, { ModifyIndex: number }>[] }>(r).Results;
    assert.deepEqual(results.map((x) => Object.keys(x)), [['Node'], ['Service'], ['Check']]);
    await waitFor(async () => json<unknown[]>(await http(b.url, 'GET', '/v1/health/service/txdb?passing')).length === 1, 'txdb passing at b');
    const stale = await http(b.url, 'PUT', '/v1/txn', [{ Service: { Verb: 'cas', Node: 'tx-node', Service: { ID: 'txdb', Service: 'txdb', ModifyIndex: 1 } } }, { Check: { Verb: 'get', Check: { Node: 'tx-node', CheckID: 'nope' } } }]);
    assert.deepEqual(json<{ Errors: { What: string }[] }>(stale).Errors.map((e) => e.What),
      ['failed to set service "txdb" on node "tx-node", index is stale', 'check "nope" on node "tx-node" doesn\'t exist']);
    const gone = await http(b.url, 'PUT', '/v1/txn', [{ Node: { Verb: 'delete', Node: { Node: 'tx-node' } } }]);
    assert.equal(gone.status, 200, gone.text);
    await waitFor(async () => json<unknown[]>(await http(a.url, 'GET', '/v1/catalog/service/txdb')).length === 0, 'node, service and check deleted together');
    assert.equal(json<unknown[]>(await http(a.url, 'GET', '/v1/health/checks/txdb')).length, 0);
  });

  it('events: fired at A, listed at B with Consul\'s shapes; the list blocks on its UUID-derived index; filters and bad input', async () => {
    const { a, b } = p;
    const nodeOf = async (agent: TestAgent): Promise<string> => json<{ Config: { NodeName: string } }>(await http(agent.url, 'GET', '/v1/agent/self')).Config.NodeName;
    const fired = await http(a.url, 'PUT', '/v1/event/fire/deploy', 'v1.2.3');
    assert.equal(fired.status, 200, fired.text);
    const ev = json<Record<string, unknown>>(fired);
    assert.deepEqual(Object.keys(ev), ['ID', 'Name', 'Payload', 'NodeFilter', 'ServiceFilter', 'TagFilter', 'Version', 'LTime']);
    assert.deepEqual([ev.Name, ev.Payload, ev.Version, ev.LTime], ['deploy', Buffer.from('v1.2.3').toString('base64'), 1, 0]);
    // At the agent it was fired at, the list shows it as soon as the fire has answered; elsewhere once
    // that agent has followed the store (as gossip reaches a Consul agent a moment later).
    const atA = json<{ ID: string; LTime: number }[]>(await http(a.url, 'GET', '/v1/event/list?name=deploy'));
    assert.equal(atA.at(-1)?.ID, ev.ID);
    await waitFor(async () => json<{ ID: string }[]>(await http(b.url, 'GET', '/v1/event/list?name=deploy')).at(-1)?.ID === ev.ID, 'the event listed at B');
    const listed = await http(b.url, 'GET', '/v1/event/list?name=deploy');
    const events = json<{ ID: string; LTime: number; Payload: string | null }[]>(listed);
    assert.ok(events.at(-1)!.LTime >= 1);
    assert.equal(events.at(-1)!.LTime, atA.at(-1)!.LTime, 'one Lamport time for the event on every agent');
    const hex = (ev.ID as string).replace(/-/g, '');
    assert.equal(listed.headers.get('x-consul-index'), (BigInt(`0x${hex.slice(0, 16)}`) ^ BigInt(`0x${hex.slice(16)}`)).toString());
    // A blocking list at B wakes on the next event, fired at A.
    const parked = http(b.url, 'GET', `/v1/event/list?name=deploy&index=${listed.headers.get('x-consul-index')}&wait=30s`);
    // Not a wait for an outcome: the agent exposes no count of parked event lists (view.waiterCount()
    // covers catalog, health and KV watches only). If the fire came first, the list would answer at
    // once with the new event and the same assertions hold; the pause makes the woken path the usual one.
    await sleep(50);
    const second = json<{ ID: string }>(await http(a.url, 'PUT', '/v1/event/fire/deploy'));
    const woke = json<{ ID: string; Payload: string | null; LTime: number }[]>(await parked);
    assert.deepEqual(woke.at(-1), { ...woke.at(-1), ID: second.ID, Payload: null });
    assert.ok(woke.at(-1)!.LTime > events.at(-1)!.LTime, 'the clock moves forward');
    // The filters are applied by each agent to itself: an event for B's node only is kept by B, not by A
    // (on the embedded store A and B are one agent); one for no node is kept by nobody.
    const forB = json<{ ID: string }>(await http(a.url, 'PUT', `/v1/event/fire/deploy?node=^${await nodeOf(b)}$`));
    const elsewhere = json<{ ID: string }>(await http(a.url, 'PUT', '/v1/event/fire/deploy?node=^no-such-node$'));
    const marker = json<{ ID: string }>(await http(a.url, 'PUT', '/v1/event/fire/marker'));
    for (const agent of [a, b]) {
      await waitFor(async () => json<{ ID: string }[]>(await http(agent.url, 'GET', '/v1/event/list')).at(-1)?.ID === marker.ID, 'the marker event listed');
      const ids = json<{ ID: string }[]>(await http(agent.url, 'GET', '/v1/event/list')).map((e) => e.ID);
      assert.ok(!ids.includes(elsewhere.ID));
      assert.equal(ids.includes(forB.ID), agent === b, agent === b ? 'kept by B' : 'not kept by A');
    }
    assert.deepEqual(json(await http(a.url, 'GET', '/v1/event/list?name=never')), []);
    assert.equal((await http(a.url, 'GET', '/v1/event/list?name=never')).headers.get('x-consul-index'), '1');
    for (const [path, status, text] of [
      ['/v1/event/fire/x?tag=web', 400, 'Cannot provide tag filter without service filter'],
      ['/v1/event/fire/x?node=(', 400, /^Invalid node filter: /],
      ['/v1/event/fire/', 400, 'Missing name'],
    ] as [string, number, string | RegExp][]) {
      const r = await http(a.url, 'PUT', path);
      assert.equal(r.status, status, path);
      if (typeof text === 'string') assert.equal(r.text, text);
      else assert.match(r.text, text);
    }
    const big = await http(a.url, 'PUT', '/v1/event/fire/big', 'x'.repeat(600));
    assert.equal(big.status, 413);
    assert.equal((await http(a.url, 'GET', '/v1/event/list?index=abc')).status, 400);
    // None of the refused fires was written: the next event's clock follows the marker's.
    const markerLTime = json<{ ID: string; LTime: number }[]>(await http(a.url, 'GET', '/v1/event/list?name=marker')).at(-1)!.LTime;
    const next = json<{ ID: string }>(await http(a.url, 'PUT', '/v1/event/fire/next'));
    assert.deepEqual(json<{ ID: string; LTime: number }[]>(await http(a.url, 'GET', '/v1/event/list?name=next')).map((e) => [e.ID, e.LTime]), [[next.ID, markerLTime + 1]]);
  });

  it("/v1/agent/metrics answers Consul's JSON shape, Prometheus text with ?format=prometheus; /metrics is unchanged", async () => {
    const { a } = p;
    const r = await http(a.url, 'GET', '/v1/agent/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const m = json<{ Timestamp: string; Gauges: unknown[]; Points: unknown[]; Counters: unknown[]; Samples: unknown[] }>(r);
    assert.deepEqual(Object.keys(m), ['Timestamp', 'Gauges', 'Points', 'Counters', 'Samples']);
    assert.match(m.Timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    const gauge = m.Gauges.find((g) => (g as { Name: string }).Name === 'switchyard_registry_index') as Record<string, unknown>;
    assert.deepEqual(Object.keys(gauge), ['Name', 'Value', 'Labels']);
    // The first interval is still running: requests made so far are in it.
    const counter = m.Counters.find((c) => (c as { Name: string }).Name === 'switchyard_registry_http_requests_total') as Record<string, unknown>;
    assert.ok(counter, JSON.stringify(m.Counters).slice(0, 400));
    assert.deepEqual(Object.keys(counter), ['Name', 'Count', 'Rate', 'Sum', 'Min', 'Max', 'Mean', 'Stddev', 'Labels']);
    const sample = m.Samples.find((c) => (c as { Name: string }).Name === 'switchyard_registry_http_request_seconds') as Record<string, unknown>;
    assert.deepEqual(Object.keys(sample), ['Name', 'Count', 'Rate', 'Sum', 'Min', 'Max', 'Mean', 'Stddev', 'Labels']);
    const prom = await http(a.url, 'GET', '/v1/agent/metrics?format=prometheus');
    assert.match(prom.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(prom.text, /^switchyard_registry_index \d+$/m);
    assert.match((await http(a.url, 'GET', '/metrics')).text, /^# TYPE switchyard_registry_http_requests_total counter$/m);
  });

  it('/metrics times each write where it waits: the API route, and with the embedded store its group commits', async () => {
    const { a } = p;
    assert.equal((await http(a.url, 'PUT', '/v1/kv/metrics/probe', 'x')).status, 200);
    const text = (await http(a.url, 'GET', '/metrics')).text;
    const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
    // Fine enough to read a writer's 5 ms target: 2, 20 and 200 ms bounds.
    assert.ok(value(/^switchyard_registry_http_request_seconds_bucket\{le="0\.002",route="\/v1\/kv\/"\} (\d+)$/m) >= 0, text.slice(0, 600));
    assert.ok(value(/^switchyard_registry_http_request_seconds_count\{route="\/v1\/kv\/"\} (\d+)$/m) >= 1);
    // Requests are counted outside prom-client and handed over when scraped: every one shows, none twice.
    const puts = (t: string): number => Number(/^switchyard_registry_http_requests_total\{route="\/v1\/kv\/",method="PUT",status="200"\} (\d+)$/m.exec(t)?.[1] ?? NaN);
    const before = puts(text);
    assert.ok(before >= 1, text.slice(0, 600));
    for (let i = 0; i < 3; i++) assert.equal((await http(a.url, 'PUT', `/v1/kv/metrics/probe${i}`, 'x')).status, 200);
    const again = (await http(a.url, 'GET', '/metrics')).text;
    assert.equal(puts(again), before + 3);
    assert.equal(puts((await http(a.url, 'GET', '/metrics')).text), before + 3, 'a scrape with nothing new changes nothing');
    assert.match(again, /^switchyard_registry_blocking_wake_seconds_count \d+$/m);
    if (testStore === 'embedded') {
      const commits = value(/^switchyard_store_commit_seconds_count (\d+)$/m);
      const txns = value(/^switchyard_store_txn_seconds_count (\d+)$/m);
      assert.ok(commits >= 1 && txns >= commits, `every group commit holds at least one write: ${commits} commits, ${txns} writes`);
    } else {
      assert.doesNotMatch(text, /^switchyard_store_commit_seconds/m, 'the etcd store has no group commit of its own');
    }
  });

  it('/debug/runtime reports event-loop delay and GC pauses; ?reset=1 starts a new window', async () => {
    const { a } = p;
    type Report = { seconds: number; gc: Record<string, { count: number; maxMs: number }>; eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number }; heapUsedBytes: number; rssBytes: number };
    const r = await http(a.url, 'GET', '/debug/runtime?reset=1');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    const first = json<Report>(r);
    assert.ok(first.seconds > 0, JSON.stringify(first));
    assert.ok(first.eventLoopDelay.maxMs >= first.eventLoopDelay.p99Ms && first.eventLoopDelay.p99Ms >= first.eventLoopDelay.p50Ms, JSON.stringify(first.eventLoopDelay));
    assert.ok(first.heapUsedBytes > 0 && first.rssBytes >= first.heapUsedBytes, JSON.stringify(first));
    for (const [kind, s] of Object.entries(first.gc)) assert.ok(s.count > 0 && s.maxMs >= 0, kind);
    // The reset made a new window: it covers less time than the agent's whole life did.
    const second = json<Report>(await http(a.url, 'GET', '/debug/runtime'));
    assert.ok(second.seconds < first.seconds, `${second.seconds} < ${first.seconds}`);
  });

  it('a /v1/ path nothing serves answers 501 (Consul endpoint) or 404 (unknown), always with X-Consul-Index; ACL endpoints say ACLs are off, as Consul does', async () => {
    const { a } = p;
    for (const [method, path] of [['GET', '/v1/acl/tokens'], ['PUT', '/v1/acl/token'], ['GET', '/v1/acl/token/self']] as const) {
      const r = await http(a.url, method, path);
      assert.deepEqual([r.status, r.text], [401, 'ACL support disabled'], path);
      assert.ok(Number(r.headers.get('x-consul-index')) >= 1, `${path}: X-Consul-Index`);
    }
    for (const [method, path, status] of [['GET', '/v1/agent/token/x', 501], ['GET', '/v1/coordinate/nodes', 501], ['GET', '/v1/operator/raft/configuration', 501], ['GET', '/v1/nothing/here', 404]] as const) {
      const r = await http(a.url, method, path);
      assert.equal(r.status, status, path);
      assert.ok(Number(r.headers.get('x-consul-index')) >= 1, `${path}: X-Consul-Index`);
      assert.equal(r.headers.get('x-consul-knownleader'), 'true');
      if (status === 501) assert.match(r.text, new RegExp(`^${method} ${path.replace(/\//g, '\\/')} is a Consul API endpoint that Switchyard does not implement`));
      else assert.equal(r.text, 'Invalid URL path: not a recognized HTTP API endpoint');
    }
    // Routes without their trailing slash still reach their own handler, not the catch-all.
    assert.deepEqual([(await http(a.url, 'PUT', '/v1/session/destroy')).text, (await http(a.url, 'GET', '/v1/kv')).text], ['Missing session', 'Missing key name']);
  });
});

describe('sessions are durable (embedded store: restart with the same data dir)', { skip: onEtcd && 'the etcd pass covers durability through etcd' }, () => {
  it('sessions and their locks survive a restart; a TTL session gets a fresh 2×TTL, as from a new Consul leader', async () => {
    const dir = tempDir();
    const clock = manualClock();
    let a = await startTestAgent({}, dir, { clock });
    try {
      const keep = await createSession(a, { Name: 'keep' });
      const ttl = await createSession(a, { TTL: '10s' });
      assert.equal(await put(a, `/v1/kv/dur?acquire=${keep}`, 'v'), true);
      await a.close();
      clock.advance(60_000); // the agent was down for longer than 2×TTL
      a = await startTestAgent({}, dir, { clock });
      const ids = json<Session[]>(await http(a.url, 'GET', '/v1/session/list')).map((s) => s.ID).sort();
      assert.deepEqual(ids, [keep, ttl].sort());
      assert.equal((await kv(a, 'dur'))!.Session, keep);
      clock.advance(19_000);
      // An expiry that a timer started during advance() would be committed and visible after this.
      await writeBarrier(a.url);
      assert.equal(json<Session[]>(await http(a.url, 'GET', `/v1/session/info/${ttl}`)).length, 1, 'alive within its fresh 2×TTL');
      clock.advance(1_001);
      await sessionGone(a, ttl);
    } finally {
      await a.stop();
    }
  });
});

describe('a session at agent A guards a lock seen at agent B and dies with A\'s node', { skip: !onEtcd && 'needs two agents on etcd (the etcd pass)' }, () => {
  it('B cannot take the lock while A holds it; when A leaves, its node goes critical, the session dies, and B gets the lock after the lock-delay', async () => {
    const clock = manualClock();
    const store = await sharedEtcdStoreUrl();
    const a = await startTestAgent({ store, node: 'node-a', 'lease-ttl': '2s' }, tempDir(), { clock });
    const b = await startTestAgent({ store, node: 'node-b', 'lease-ttl': '2s' }, tempDir(), { clock });
    try {
      const sa = await createSession(a, { Name: 'leader-a' });
      const sb = await createSession(b, { Name: 'leader-b' });
      assert.equal(await put(a, `/v1/kv/service/leader?acquire=${sa}`, 'a'), true);
      await holderIs(b, 'service/leader', sa);
      assert.equal(await put(b, `/v1/kv/service/leader?acquire=${sb}`, 'b'), false);
      await a.close();
      await waitFor(async () => {
        const checks = json<{ CheckID: string; Status: string }[]>(await http(b.url, 'GET', '/v1/health/node/node-a'));
        return checks.find((c) => c.CheckID === 'serfHealth')?.Status === 'critical';
      }, 'node-a critical at b');
      await sessionGone(b, sa);
      await holderIs(b, 'service/leader', undefined);
      assert.equal(await put(b, `/v1/kv/service/leader?acquire=${sb}`, 'b'), false, 'lock-delay (15 s) after the invalidation');
      clock.advance(15_001);
      assert.equal(await put(b, `/v1/kv/service/leader?acquire=${sb}`, 'b'), true);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
