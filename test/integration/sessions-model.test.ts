// Sessions and KV locks through random sequences of API calls (fast-check), against a model of Consul's
// rules: sessions created with checks, TTLs, lock-delays and both behaviours; acquisitions and releases
// over /v1/kv and /v1/txn; plain writes and deletes of held keys; checks passing, failing, registered and
// deregistered; time moving on a hand-driven clock (TTL expiries and lock-delays). After every call the
// agent's sessions and keys must be what the model says, so a lock is never held by a dead session, never
// lost by a live one, and no acquisition wins inside a lock-delay.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { http, startTestAgent, waitFor, writeBarrier } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { manualClock } from '../helpers/clock.js';
import type { ManualClock } from '../helpers/clock.js';

const RUNS = Number(process.env.SY_FC_RUNS ?? 100);
const KEYS = ['k0', 'k1', 'k2'];
const CHECKS = ['c1', 'c2'];
const DELAYS: Record<string, number> = { '0s': 0, '2s': 2000, '15s': 15_000 };
const TTLS: Record<string, number> = { '': 0, '10s': 10_000, '30s': 30_000 };

type Op =
  | { kind: 'create'; behavior: 'release' | 'delete'; delay: string; ttl: string; checks: string[] }
  | { kind: 'destroy' | 'renew'; s: number }
  /** Destroys whoever holds the key, then `s` tries to take it: inside the holder's lock-delay. */
  | { kind: 'steal'; key: string; s: number; value: string; flags: number }
  | { kind: 'acquire' | 'release' | 'txn-lock' | 'txn-unlock'; key: string; s: number; value: string; flags: number }
  | { kind: 'put'; key: string; value: string; flags: number }
  | { kind: 'delete'; key: string }
  | { kind: 'check'; check: string; to: 'pass' | 'fail' | 'register' | 'deregister' }
  | { kind: 'advance'; ms: number };

// `s` picks a session among those created so far in the run (dead ones included), or (9) an ID never created.
const pick = fc.nat({ max: 9 });
const value = fc.constantFrom('', 'a', 'b');
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('create' as const), behavior: fc.constantFrom('release' as const, 'delete' as const), delay: fc.constantFrom(...Object.keys(DELAYS)), ttl: fc.constantFrom(...Object.keys(TTLS)), checks: fc.oneof(fc.constant<string[]>([]), fc.subarray(CHECKS)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('destroy' as const, 'renew' as const), s: pick }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constantFrom('acquire' as const, 'acquire' as const, 'release' as const, 'txn-lock' as const, 'txn-unlock' as const), key: fc.constantFrom(...KEYS), s: pick, value, flags: fc.constantFrom(0, 7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('steal' as const), key: fc.constantFrom(...KEYS), s: pick, value, flags: fc.constantFrom(0, 7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.constantFrom(...KEYS), value, flags: fc.constantFrom(0, 3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('check' as const), check: fc.constantFrom(...CHECKS), to: fc.constantFrom('pass' as const, 'fail' as const, 'register' as const, 'deregister' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(1000, 1999, 4999, 10_001, 25_000) }) },
);

interface MSession { readonly id: string; readonly behavior: 'release' | 'delete'; readonly delayMs: number; readonly ttlMs: number; readonly checks: readonly string[]; deadline: number }
interface MKey { value: string | null; flags: number; lockIndex: number; session: string | undefined }

/** Consul's rules for what the agent must hold. */
class Model {
  now: number;
  readonly sessions = new Map<string, MSession>();
  readonly kv = new Map<string, MKey>();
  /** Key → the end of its lock-delay. */
  readonly delays = new Map<string, number>();
  readonly checks = new Map<string, 'passing' | 'critical'>();

  constructor(now: number) {
    this.now = now;
  }

  invalidate(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    for (const [k, e] of this.kv) {
      if (e.session !== id) continue;
      if (s.behavior === 'delete') this.kv.delete(k);
      else e.session = undefined;
      if (s.delayMs > 0) this.delays.set(k, this.now + s.delayMs);
    }
  }

  /** Sessions a check takes with it when it goes critical or away. */
  dependents(check: string): string[] {
    return [...this.sessions.values()].filter((s) => s.checks.includes(check)).map((s) => s.id);
  }

  /** The outcome of a lock attempt, in Consul's order: lock-delay, then the session, then the holder. */
  lock(key: string, id: string, v: string, flags: number): 'delayed' | 'invalid' | 'held' | 'locked' {
    if ((this.delays.get(key) ?? -Infinity) > this.now) return 'delayed';
    if (!this.sessions.has(id)) return 'invalid';
    const e = this.kv.get(key);
    if (e?.session !== undefined && e.session !== id) return 'held';
    const lockIndex = e?.session === id ? e.lockIndex : (e?.lockIndex ?? 0) + 1;
    this.kv.set(key, { value: v === '' ? null : v, flags, lockIndex, session: id });
    return 'locked';
  }

  unlock(key: string, id: string, v: string, flags: number): boolean {
    const e = this.kv.get(key);
    if (!e || e.session !== id) return false;
    this.kv.set(key, { value: v === '' ? null : v, flags, lockIndex: e.lockIndex, session: undefined });
    return true;
  }
}

interface KvEntry { Key: string; Value: string | null; Flags: number; LockIndex: number; Session?: string }

describe(`sessions and locks through random API sequences (${RUNS} runs)`, () => {
  let agent: TestAgent;
  let clock: ManualClock;
  let run = 0;
  before(async () => {
    clock = manualClock();
    agent = await startTestAgent({}, undefined, { clock });
  });
  after(async () => {
    await agent?.stop();
  });

  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; text: string }> => {
    const r = await http(agent.url, method, path, body);
    return { status: r.status, text: r.text };
  };

  /** What the agent holds, in the model's terms. */
  const observed = async (prefix: string): Promise<string> => {
    const ids = (JSON.parse((await call('GET', '/v1/session/list')).text) as { ID: string }[]).map((s) => s.ID).sort();
    const kv: Record<string, unknown> = {};
    for (const k of KEYS) {
      const r = await call('GET', `/v1/kv/${prefix}${k}`);
      if (r.status === 404) continue;
      const e = (JSON.parse(r.text) as KvEntry[])[0] as KvEntry;
      kv[k] = { value: e.Value === null ? null : Buffer.from(e.Value, 'base64').toString(), flags: e.Flags, lockIndex: e.LockIndex, session: e.Session };
    }
    return JSON.stringify({ sessions: ids, kv });
  };
  const expected = (m: Model): string => {
    const kv: Record<string, unknown> = {};
    for (const k of KEYS) {
      const e = m.kv.get(k);
      if (e) kv[k] = { value: e.value, flags: e.flags, lockIndex: e.lockIndex, session: e.session };
    }
    return JSON.stringify({ sessions: [...m.sessions.keys()].sort(), kv });
  };

  it('the agent holds what the model says after every call', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
      // A fresh start: no session alive, neither check registered, keys of this run only.
      for (const s of JSON.parse((await call('GET', '/v1/session/list')).text) as { ID: string }[]) await call('PUT', `/v1/session/destroy/${s.ID}`);
      for (const c of CHECKS) await call('PUT', `/v1/agent/check/deregister/${c}`);
      await writeBarrier(agent.url);
      const prefix = `m${++run}/`;
      const m = new Model(clock.now());
      const created: string[] = [];
      const never = randomUUID();
      const sid = (i: number): string => (i === 9 || created.length === 0 ? never : created[i % created.length] as string);
      const log: string[] = [];
      const agree = async (what: string): Promise<void> => {
        // Invalidations by a check or a TTL run a moment after the write that caused them: wait for them.
        let last = '';
        try {
          await waitFor(async () => (last = await observed(prefix)) === expected(m), what, 5000, 10);
        } catch {
          assert.equal(last, expected(m), `after ${log.join(' → ')}`);
        }
      };

      for (const o of ops) {
        log.push(JSON.stringify(o));
        try {
          switch (o.kind) {
            case 'create': {
              const r = await call('PUT', '/v1/session/create', { Behavior: o.behavior, LockDelay: o.delay, ...(o.ttl ? { TTL: o.ttl } : {}), Checks: ['serfHealth', ...o.checks] });
              // Consul judges the listed checks in order; the first one missing or critical is the error.
              const bad = o.checks.find((c) => m.checks.get(c) !== 'passing');
              if (bad) assert.deepEqual([r.status, r.text], [400, m.checks.has(bad) ? `Check '${bad}' is in critical state` : `Missing check '${bad}' registration`]);
              else {
                assert.equal(r.status, 200, r.text);
                const id = (JSON.parse(r.text) as { ID: string }).ID;
                created.push(id);
                const ttlMs = TTLS[o.ttl] as number;
                m.sessions.set(id, { id, behavior: o.behavior, delayMs: DELAYS[o.delay] as number, ttlMs, checks: o.checks, deadline: ttlMs > 0 ? m.now + 2 * ttlMs : Infinity });
              }
              break;
            }
            case 'destroy': {
              const r = await call('PUT', `/v1/session/destroy/${sid(o.s)}`);
              assert.deepEqual([r.status, r.text.trim()], [200, 'true']);
              m.invalidate(sid(o.s));
              break;
            }
            case 'renew': {
              const r = await call('PUT', `/v1/session/renew/${sid(o.s)}`);
              const s = m.sessions.get(sid(o.s));
              assert.equal(r.status, s ? 200 : 404, r.text);
              if (s && s.ttlMs > 0) s.deadline = m.now + 2 * s.ttlMs;
              break;
            }
            case 'steal':
            case 'acquire': {
              const holder = o.kind === 'steal' ? m.kv.get(o.key)?.session : undefined;
              if (holder !== undefined) {
                assert.equal((await call('PUT', `/v1/session/destroy/${holder}`)).status, 200);
                m.invalidate(holder);
              }
              const r = await call('PUT', `/v1/kv/${prefix}${o.key}?acquire=${sid(o.s)}&flags=${o.flags}`, o.value);
              const outcome = m.lock(o.key, sid(o.s), o.value, o.flags);
              if (outcome === 'invalid') assert.deepEqual([r.status, r.text], [400, `invalid session "${sid(o.s)}"`]);
              else assert.deepEqual([r.status, r.text.trim()], [200, String(outcome === 'locked')], outcome);
              break;
            }
            case 'release': {
              const r = await call('PUT', `/v1/kv/${prefix}${o.key}?release=${sid(o.s)}&flags=${o.flags}`, o.value);
              assert.deepEqual([r.status, r.text.trim()], [200, String(m.unlock(o.key, sid(o.s), o.value, o.flags))]);
              break;
            }
            case 'txn-lock':
            case 'txn-unlock': {
              const verb = o.kind === 'txn-lock' ? 'lock' : 'unlock';
              const r = await call('PUT', '/v1/txn', [{ KV: { Verb: verb, Key: `${prefix}${o.key}`, Value: Buffer.from(o.value).toString('base64'), Flags: o.flags, Session: sid(o.s) } }]);
              const ok = o.kind === 'txn-lock' ? m.lock(o.key, sid(o.s), o.value, o.flags) === 'locked' : m.unlock(o.key, sid(o.s), o.value, o.flags);
              assert.equal(r.status, ok ? 200 : 409, r.text);
              break;
            }
            case 'put': {
              const r = await call('PUT', `/v1/kv/${prefix}${o.key}?flags=${o.flags}`, o.value);
              assert.deepEqual([r.status, r.text.trim()], [200, 'true']);
              const e = m.kv.get(o.key);
              m.kv.set(o.key, { value: o.value === '' ? null : o.value, flags: o.flags, lockIndex: e?.lockIndex ?? 0, session: e?.session });
              break;
            }
            case 'delete': {
              assert.equal((await call('DELETE', `/v1/kv/${prefix}${o.key}`)).status, 200);
              m.kv.delete(o.key);
              break;
            }
            case 'check': {
              const known = m.checks.has(o.check);
              if (o.to === 'register') {
                const r = await call('PUT', '/v1/agent/check/register', { Name: o.check, CheckID: o.check, TTL: '1000h', Status: 'passing' });
                assert.equal(r.status, 200, r.text);
                m.checks.set(o.check, 'passing');
              } else if (!known) {
                continue; // Nothing to update or remove.
              } else if (o.to === 'deregister') {
                assert.equal((await call('PUT', `/v1/agent/check/deregister/${o.check}`)).status, 200);
                m.checks.delete(o.check);
                for (const id of m.dependents(o.check)) m.invalidate(id);
              } else {
                assert.equal((await call('PUT', `/v1/agent/check/${o.to}/${o.check}`)).status, 200);
                m.checks.set(o.check, o.to === 'pass' ? 'passing' : 'critical');
                if (o.to === 'fail') for (const id of m.dependents(o.check)) m.invalidate(id);
              }
              break;
            }
            case 'advance': {
              // Through each TTL deadline on the way, one at a time: a session dies at its deadline, and
              // the lock-delays it leaves start there.
              const end = m.now + o.ms;
              for (;;) {
                const due = [...m.sessions.values()].filter((s) => s.deadline <= end).sort((a, b) => a.deadline - b.deadline)[0];
                if (!due) break;
                clock.advance(due.deadline - m.now);
                m.now = due.deadline;
                for (const s of [...m.sessions.values()]) if (s.deadline <= m.now) m.invalidate(s.id);
                await agree(`TTL expiry at +${due.deadline - clock.now()} ms`);
              }
              clock.advance(end - m.now);
              m.now = end;
              break;
            }
          }
          await agree(`state after ${o.kind}`);
        } catch (err) {
          // fast-check reports the sequence; this names the call that went wrong and what it saw.
          throw new Error(`${(err as Error).message}\n  in: ${log.join('\n  then: ')}`, { cause: err });
        }
      }
    }), { numRuns: RUNS, endOnFailure: true, includeErrorInReport: true, ...(process.env.SY_FC_SEED ? { seed: Number(process.env.SY_FC_SEED) } : {}) });
  });
});
