// `switchyard lock` as consul lock: real processes against a real agent. Children append
// "start|end <id> <ns>" lines to a file; the test reads the intervals back. Mutual exclusion,
// a semaphore of two, hand-over after the holder is killed (session TTL, then lock-delay),
// the child stopped when the lock is lost or on SIGTERM, and the refusals.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

interface Interval {
  id: string;
  start: number;
  end: number;
}

/** Parses the children's log into intervals (ms); a run without an end is still running (end = Infinity). */
function intervals(file: string): Interval[] {
  if (!existsSync(file)) return [];
  const byId = new Map<string, Interval>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kind, id, ns] = line.trim().split(' ');
    if (!id || !ns) continue;
    const t = Number(BigInt(ns) / 1_000_000n);
    const iv = byId.get(id) ?? { id, start: NaN, end: Infinity };
    if (kind === 'start') iv.start = t;
    else if (kind === 'end') iv.end = t;
    byId.set(id, iv);
  }
  return [...byId.values()].sort((a, b) => a.start - b.start);
}

/** Most intervals open at one instant. */
function maxConcurrent(list: readonly Interval[]): number {
  const edges = list.flatMap((i) => [[i.start, 1], [i.end, -1]] as [number, number][]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (open += d));
  return max;
}

describe('switchyard lock', () => {
  let agent: TestAgent;
  const procs: Proc[] = [];
  const orphans: number[] = [];

  before(async () => {
    agent = await startTestAgent({ 'session-ttl-min': '1s' });
  });
  after(async () => {
    for (const p of procs) await stop(p, 'SIGKILL');
    for (const pid of orphans) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await agent?.stop();
  });

  const lock = (args: string[], env: Record<string, string> = {}): Proc => {
    const p = switchyard(['lock', '-http-addr', agent.url, ...args], env);
    procs.push(p);
    return p;
  };
  /** A child that logs its interval; `$$` is unique per run. */
  const logged = (file: string, body: string): string => `echo "start $$ $(date +%s%N)" >> ${file}; ${body}; echo "end $$ $(date +%s%N)" >> ${file}`;

  it('two concurrent runs never overlap, and each child sees CONSUL_LOCK_HELD=true', async () => {
    const file = join(tempDir(), 'runs.log');
    const env = join(tempDir(), 'env.log');
    const runs = [0, 1].map(() => lock(['app', '--', logged(file, `echo "$CONSUL_LOCK_HELD" >> ${env}; sleep 2`)]));
    const codes = await Promise.all(runs.map((p) => p.exited));
    assert.deepEqual(codes.map((c) => c.code), [0, 0], runs.map((p) => p.stderr()).join('\n'));
    const list = intervals(file);
    assert.equal(list.length, 2, readFileSync(file, 'utf8'));
    assert.ok(list.every((i) => Number.isFinite(i.end)));
    assert.equal(maxConcurrent(list), 1, `overlap: ${JSON.stringify(list)}`);
    assert.ok(list[1]!.start >= list[0]!.end);
    assert.deepEqual(readFileSync(env, 'utf8').trim().split('\n'), ['true', 'true']);
    // Released and cleaned up: no lock key, no session left behind.
    assert.equal((await http(agent.url, 'GET', '/v1/kv/app/.lock')).status, 404);
    assert.deepEqual(JSON.parse((await http(agent.url, 'GET', '/v1/session/list')).text), []);
  });

  it('-n 2 lets two run at once and never three, with consul\'s semaphore layout under the prefix', async () => {
    const file = join(tempDir(), 'sem.log');
    // Each child waits (up to 20 s) to see another holder start before finishing: proof of concurrency, not timing.
    const child = logged(file, `for i in $(seq 200); do [ "$(grep -c ^start ${file})" -ge 2 ] && break; sleep 0.1; done; sleep 1`);
    const runs = [0, 1, 2].map(() => lock(['-n', '2', 'pool', '--', child]));
    // While they run, the layout is Consul's: <prefix>/.lock with Limit/Holders, one contender key per session.
    await waitFor(() => intervals(file).length >= 2, 'two holders running', 30_000);
    const entries = JSON.parse((await http(agent.url, 'GET', '/v1/kv/pool/?recurse')).text) as { Key: string; Value: string | null; Session?: string }[];
    const sem = entries.find((e) => e.Key === 'pool/.lock');
    assert.ok(sem, JSON.stringify(entries));
    const state = JSON.parse(Buffer.from(sem.Value ?? '', 'base64').toString()) as { Limit: number; Holders: Record<string, boolean> };
    assert.equal(state.Limit, 2);
    assert.equal(Object.keys(state.Holders).length, 2);
    for (const h of Object.keys(state.Holders)) assert.ok(entries.some((e) => e.Key === `pool/${h}` && e.Session === h), `contender entry for ${h}`);
    const codes = await Promise.all(runs.map((p) => p.exited));
    assert.deepEqual(codes.map((c) => c.code), [0, 0, 0], runs.map((p) => p.stderr()).join('\n'));
    const list = intervals(file);
    assert.equal(list.length, 3);
    assert.equal(maxConcurrent(list), 2, JSON.stringify(list));
    assert.equal((await http(agent.url, 'GET', '/v1/kv/pool/?recurse')).status, 404, 'semaphore cleaned up');
  });

  it('killing the holder (kill -9) hands the lock over once its session has expired and the lock-delay has passed', async () => {
    const file = join(tempDir(), 'handover.log');
    const holder = lock(['-session-ttl', '1s', '-lock-delay', '1s', 'handover', '--', `echo "start $$ $(date +%s%N)" >> ${file}; exec sleep 300`]);
    await waitFor(() => intervals(file).length === 1, 'the holder runs', 30_000);
    orphans.push(Number(intervals(file)[0]!.id));
    const key = JSON.parse((await http(agent.url, 'GET', '/v1/kv/handover/.lock')).text) as { Session: string }[];
    const sid = key[0]!.Session;
    const next = lock(['-session-ttl', '1s', 'handover', '--', `echo "start $$ $(date +%s%N)" >> ${file}`]);
    await waitFor(async () => JSON.parse((await http(agent.url, 'GET', '/v1/session/list')).text).length === 2, 'the contender waits with its own session', 30_000);
    holder.child.kill('SIGKILL');
    await holder.exited;
    // The killed holder's session dies by TTL (2×1 s after its last renewal): watch for it with a blocking query.
    let index = 0;
    for (;;) {
      const r = await http(agent.url, 'GET', `/v1/session/info/${sid}?index=${index}&wait=10s`);
      if ((JSON.parse(r.text) as unknown[]).length === 0) break;
      index = Number(r.headers.get('x-consul-index'));
    }
    const invalidatedAt = Date.now();
    assert.equal((await next.exited).code, 0, next.stderr());
    const list = intervals(file);
    assert.equal(list.length, 2);
    assert.ok(list[1]!.start - invalidatedAt >= 1000 - 100, `handed over ${list[1]!.start - invalidatedAt} ms after the invalidation: the lock-delay is 1 s`);
  });

  it('stops the child when the lock is lost, and on SIGTERM; releases and exits 0', async () => {
    const file = join(tempDir(), 'lost.log');
    const run = lock(['lost', '--', `echo "start $$ $(date +%s%N)" >> ${file}; exec sleep 300`]);
    await waitFor(() => intervals(file).length === 1, 'child running', 30_000);
    orphans.push(Number(intervals(file)[0]!.id));
    const sid = (JSON.parse((await http(agent.url, 'GET', '/v1/kv/lost/.lock')).text) as { Session: string }[])[0]!.Session;
    await http(agent.url, 'PUT', `/v1/session/destroy/${sid}`);
    assert.equal((await run.exited).code, 0, run.stderr());
    assert.ok(!existsSync(`/proc/${intervals(file)[0]!.id}`), 'the child was stopped');
    const file2 = join(tempDir(), 'term.log');
    const run2 = lock(['term', '--', `echo "start $$ $(date +%s%N)" >> ${file2}; trap 'echo "end $$ $(date +%s%N)" >> ${file2}; exit 0' TERM; while true; do sleep 0.1; done`]);
    await waitFor(() => intervals(file2).length === 1, 'child running', 30_000);
    assert.equal((await stop(run2, 'SIGTERM')).code, 0, run2.stderr());
    assert.ok(Number.isFinite(intervals(file2)[0]!.end), 'the child got SIGTERM and finished');
    await waitFor(async () => (await http(agent.url, 'GET', '/v1/kv/term/.lock')).status === 404, 'released and cleaned up');
  });

  it('exit codes and refusals: -child-exit-code, -timeout, a key that is not a lock, a -n disagreement', async () => {
    const fail = lock(['-child-exit-code', 'codes', '--', 'exit 3']);
    assert.equal((await fail.exited).code, 2, fail.stderr());
    const plain = lock(['codes', '--', 'exit 3']);
    assert.equal((await plain.exited).code, 0, plain.stderr());
    // Held by someone else: -timeout gives up.
    const flag = join(tempDir(), 'held.log');
    const holder = lock(['busy', '--', `echo "start $$ $(date +%s%N)" >> ${flag}; exec sleep 300`]);
    await waitFor(() => intervals(flag).length === 1, 'holder running', 30_000);
    orphans.push(Number(intervals(flag)[0]!.id));
    const timeout = lock(['-timeout=1s', 'busy', '--', 'true']);
    assert.equal((await timeout.exited).code, 1);
    assert.match(timeout.stderr(), /Shutdown triggered or timeout during lock acquisition/);
    // A -timeout longer than one Node.js timer holds (about 24.8 days) waits: it used to give up at once.
    const sessions = async (): Promise<number> => ((await http(agent.url, 'GET', '/v1/session/list')).json as unknown[]).length;
    const before = await sessions();
    const long = lock(['-timeout=800h', 'busy', '--', 'true']);
    // Its session exists once it contends; the read that follows used to time out within a millisecond.
    await waitFor(async () => (await sessions()) > before || (await Promise.race([long.exited.then(() => true), Promise.resolve(false)])), 'the -timeout=800h run contending', 30_000);
    const gaveUp = await Promise.race([long.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
    assert.equal(gaveUp, false, `-timeout=800h gave up at once: ${long.stderr()}`);
    assert.doesNotMatch(long.stderr(), /TimeoutOverflowWarning/);
    await stop(long, 'SIGTERM');
    const sem = lock(['-n', '3', 'busy', '--', 'true']);
    assert.equal((await sem.exited).code, 1);
    assert.match(sem.stderr(), /Lock acquisition failed: Existing key does not match semaphore use/);
    await stop(holder, 'SIGTERM');
    // A plain key where the lock goes.
    await http(agent.url, 'PUT', '/v1/kv/taken/.lock', 'not a lock');
    const conflict = lock(['taken', '--', 'true']);
    assert.equal((await conflict.exited).code, 1);
    assert.match(conflict.stderr(), /Lock acquisition failed: Existing key does not match lock use/);
    const bad = lock(['-n', '0', 'x', '--', 'true']);
    assert.equal((await bad.exited).code, 1);
    assert.match(bad.stderr(), /Lock holder limit must be positive/);
  });
});
