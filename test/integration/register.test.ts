// `switchyard register` against a real agent: one-shot, retrying until the agent answers, and supervising a real child.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAgent, http, negativeWindow, waitFor, tempDir } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { freePort, stop, switchyard } from '../helpers/process.js';

const CHILD = `
const http = require('node:http');
const port = Number(process.argv[1]);
const s = http.createServer((q, r) => r.end('child ' + process.pid)).listen(port, '127.0.0.1');
process.on('SIGTERM', () => { s.close(); process.exit(Number(process.env.EXIT_ON_TERM || 0)); });
if (process.env.EXIT_AFTER) setTimeout(() => process.exit(Number(process.env.EXIT_CODE || 0)), Number(process.env.EXIT_AFTER));
`;

describe('switchyard register', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent({ 'check-min-interval': '100ms' });
  });
  after(async () => {
    await agent.stop();
  });

  const services = async (): Promise<Record<string, { Service: string; Port: number; Tags: string[]; Meta: Record<string, string> }>> =>
    (await http(agent.url, 'GET', '/v1/agent/services')).json as Record<string, { Service: string; Port: number; Tags: string[]; Meta: Record<string, string> }>;

  it('registers once with an HTTP check and exits 0', async () => {
    const backend = createServer((_q, r) => r.end('ok')).listen(0, '127.0.0.1');
    await new Promise((r) => backend.once('listening', r));
    const port = (backend.address() as AddressInfo).port;
    const p = switchyard(['register', '-consul-addr', agent.url, '--name', 'api', '--port', String(port), '--tag', 'flask', '--tag', 'v1',
      '--meta', 'team=core', '--check-http', `http://127.0.0.1:${port}/hostname`, '--interval', '200ms', '--log-level', 'warn']);
    assert.equal((await p.exited).code, 0, p.stderr());
    const s = (await services()).api;
    assert.ok(s);
    assert.deepEqual(s.Tags, ['flask', 'v1']);
    assert.deepEqual(s.Meta, { team: 'core' });
    await waitFor(async () => ((await http(agent.url, 'GET', '/v1/health/service/api?passing')).json as unknown[]).length === 1, 'api passing', 5000);
    backend.close();
    await http(agent.url, 'PUT', '/v1/agent/service/deregister/api');
  });

  it('keeps retrying until the agent answers, and says so', async () => {
    const port = await freePort();
    const p = switchyard(['register', '--consul-addr', `127.0.0.1:${port}`, '--name', 'late', '--port', '1234']);
    let late: TestAgent | undefined;
    try {
      // Two failed attempts prove it retries rather than giving up (startup under tsx may take a while).
      await waitFor(() => (p.stderr().match(/agent not reachable yet: will keep trying/g) ?? []).length >= 2, 'two retry messages', 15_000);
      assert.equal(p.child.exitCode, null, 'still trying');
      late = await startTestAgent({ 'http-addr': `127.0.0.1:${port}` }, tempDir());
      assert.equal((await p.exited).code, 0, p.stderr());
      assert.ok('late' in ((await http(late.url, 'GET', '/v1/agent/services')).json as object));
    } finally {
      // A failed assertion must not leave the registrar retrying forever.
      await stop(p);
      await late?.stop();
    }
  });

  it('supervises a child: registers once it listens, heartbeats TTL, deregisters and passes the exit code on', async () => {
    const port = await freePort();
    const p = switchyard(['register', '--consul-addr', agent.url, '--name', 'kid', '--port', String(port), '--check-ttl', '1s', '--',
      process.execPath, '-e', CHILD, String(port)], { EXIT_ON_TERM: '7' });
    await waitFor(async () => 'kid' in (await services()), 'kid registered', 10_000);
    const r = await fetch(`http://127.0.0.1:${port}/`);
    assert.match(await r.text(), /^child \d+$/);
    // Longer than the TTL: the heartbeats keep it passing. The elapsed time is the point (2.5 TTLs
    // without a heartbeat would have expired the check), so this is a window, not a wait.
    await negativeWindow(2500, 'the TTL check expiring');
    assert.equal(((await http(agent.url, 'GET', '/v1/health/service/kid?passing')).json as unknown[]).length, 1);
    const res = await stop(p, 'SIGTERM');
    assert.equal(res.code, 7, `the child's exit code is passed on: ${p.stderr()}`);
    assert.ok(!('kid' in (await services())), 'deregistered on exit');
  });

  it('deregisters when the child exits by itself', async () => {
    const port = await freePort();
    const p = switchyard(['register', '--consul-addr', agent.url, '--name', 'short', '--port', String(port), '--',
      process.execPath, '-e', CHILD, String(port)], { EXIT_AFTER: '1500', EXIT_CODE: '3' });
    await waitFor(async () => 'short' in (await services()), 'short registered', 10_000);
    const res = await p.exited;
    assert.equal(res.code, 3, p.stderr());
    assert.ok(!('short' in (await services())));
  });

  it('rejects bad flags before contacting the agent, and reports an agent refusal', async () => {
    const cases: [string[], RegExp][] = [
      [['--name', 'x', '--port', 'abc'], /--port abc: must be an integer between 0 and 65535/],
      [['--name', 'x', '--port', '70000'], /--port 70000/],
      [['--name', 'x', '--port', '1', '--check-http', 'not a url'], /--check-http "not a url": not a URL/],
      [['--name', 'x', '--port', '1', '--check-http', 'http://a/', '--check-tcp', 'a:1'], /only one check may be given/],
      [['--name', 'x', '--port', '1', '--check-ttl', '5x'], /--check-ttl "5x": not a duration/],
      [['--name', 'x', '--port', '1', '--meta', 'novalue'], /--meta "novalue": expected key=value/],
      [['--port', '1'], /required option '--name <name>' not specified/],
    ];
    for (const [args, re] of cases) {
      const p = switchyard(['register', '--consul-addr', agent.url, ...args]);
      const r = await p.exited;
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(p.stderr(), re, args.join(' '));
    }
    const refused = switchyard(['register', '--consul-addr', agent.url, '--name', 'x', '--port', '1', '--meta', 'bad key=1']);
    assert.notEqual((await refused.exited).code, 0);
    assert.match(refused.stderr(), /Invalid Service Meta/);
  });
});
