// ?filter against a real agent process: a catastrophic regex cannot freeze it (linear-time matching), and
// filters over a limit (length, nesting, regex size, evaluation budget) get a 400 naming the limit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DEFAULT_FILTER_LIMITS } from '../../src/registry/server/filter.js';
import { http, tempDir } from '../helpers/agent.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const q = (expr: string): string => encodeURIComponent(expr);

describe('?filter cannot stall the agent', () => {
  const dir = tempDir('sy-filter-');
  let agent: Proc;
  let url = '';
  // A backtracking engine needs ~2^48 steps for this tag against ^(a+)+$ (the issue's 33 characters took 26 s).
  const hostileTag = `${'a'.repeat(48)}!`;
  // SIGTERM to the test process (a runner timeout) skips 'exit' handlers: never leave a spinning agent behind.
  const onSignal = (): void => {
    agent?.child.kill('SIGKILL');
    process.exit(1);
  };

  before(async () => {
    process.once('SIGTERM', onSignal);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    agent = switchyard(['agent', '--http-addr', `127.0.0.1:${port}`, '--data-dir', dir, '--node', 'n1', '--log-level', 'warn', '--sync', 'none']);
    await waitHttpOk(`${url}/v1/status/leader`, agent);
    const reg = await http(url, 'PUT', '/v1/agent/service/register', { Name: 'redos', ID: 'redos-1', Port: 1, Tags: [hostileTag] });
    assert.equal(reg.status, 200, reg.text);
  });

  after(async () => {
    process.off('SIGTERM', onSignal);
    if (agent) await stop(agent, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /v1/status/leader while a catastrophic regex filter is in flight, and evaluates it (linear time)', { timeout: 60_000 }, async (t) => {
    // Before the fix the agent spun on this request for hours and answered nothing else, so the awaited
    // leader request below never completed (the test timeout is the only clock here).
    const hostile = fetch(`${url}/v1/catalog/service/redos?filter=${q('ServiceTags matches "^(a+)+$"')}`, { signal: t.signal });
    const leader = await fetch(`${url}/v1/status/leader`, { signal: t.signal });
    assert.equal(leader.status, 200);
    assert.match(await leader.text(), /^"127\.0\.0\.1:\d+"$/);
    const res = await hostile;
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), [], 'the tag does not match ^(a+)+$ (it ends with "!")');
    // The same engine still matches what it should, with Go's syntax.
    const hit = await http(url, 'GET', `/v1/catalog/service/redos?filter=${q('ServiceTags matches `^(a+)+!\\z`')}`);
    assert.equal(hit.status, 200, hit.text);
    assert.deepEqual((hit.json as { ServiceID: string }[]).map((e) => e.ServiceID), ['redos-1']);
  });

  it('refuses a filter longer than the limit with 400, naming the limit', async () => {
    const expr = `ServiceID == "${'x'.repeat(DEFAULT_FILTER_LIMITS.maxLength)}"`;
    const r = await http(url, 'GET', `/v1/catalog/service/redos?filter=${q(expr)}`);
    assert.equal(r.status, 400);
    assert.equal(r.text, `Failed to create boolean expression evaluator: filter too long: ${expr.length} characters, the limit is ${DEFAULT_FILTER_LIMITS.maxLength}`);
  });

  it('refuses nesting over the limit with 400 (thousands of "(" no longer reach the parser stack)', async () => {
    const r = await http(url, 'GET', `/v1/health/service/redos?filter=${q('('.repeat(3000))}`);
    assert.equal(r.status, 400);
    assert.match(r.text, new RegExp(`nested too deeply: more than ${DEFAULT_FILTER_LIMITS.maxDepth} levels`));
  });

  it('stops a filter that would cost more than the evaluation budget with 400, naming the budget; the agent keeps answering', async () => {
    // A 300 KB tag against a regex of ~1000 instructions: about 3·10^8 steps, far over the budget.
    const reg = await http(url, 'PUT', '/v1/agent/service/register', { Name: 'big', ID: 'big-1', Port: 2, Tags: ['b'.repeat(300_000)] });
    assert.equal(reg.status, 200, reg.text);
    const r = await http(url, 'GET', `/v1/agent/services?filter=${q('Tags matches "[a-z]{990}[0-9]"')}`);
    assert.equal(r.status, 400);
    assert.equal(r.text, `filter evaluation exceeded its budget of ${DEFAULT_FILTER_LIMITS.maxSteps} steps (a regex test costs (value length + 1) × the regex's compiled size): use a simpler expression or a narrower query`);
    const cheap = await http(url, 'GET', `/v1/agent/services?filter=${q('ID == "big-1"')}`);
    assert.equal(cheap.status, 200);
    assert.deepEqual(Object.keys(cheap.json as object), ['big-1']);
    assert.equal((await http(url, 'GET', '/v1/status/leader')).status, 200);
  });
});
