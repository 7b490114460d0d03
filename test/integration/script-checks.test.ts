// Script and Docker checks (--enable-script-checks): real commands on this host and real `docker exec`s,
// Consul's exit-code rule, output tail, timeouts that kill the whole process group, and the refusal
// (with Consul's message) on an agent without the flag, including for a check stored while it was on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { http, sleep, startTestAgent, tempDir, testStore, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { Containers, dockerAvailable, ensureTestImage } from '../helpers/docker.js';
import { alive } from '../helpers/process.js';

const DISABLED = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";
const inCI = process.env.CI === 'true';

type Check = { Status: string; Output: string; Type: string };

async function checkOf(a: TestAgent, id: string): Promise<Check | undefined> {
  return ((await http(a.url, 'GET', '/v1/agent/checks')).json as Record<string, Check>)[id];
}

async function waitCheck(a: TestAgent, id: string, pred: (c: Check) => boolean, what: string, ms = 8000): Promise<Check> {
  let last: Check | undefined;
  return (await waitFor(async () => {
    last = await checkOf(a, id);
    return last && pred(last) ? last : undefined;
  }, () => `${what} (last: ${JSON.stringify(last)})`, ms)) as Check;
}

describe('script checks on an agent without --enable-script-checks', () => {
  let a: TestAgent;
  before(async () => {
    a = await startTestAgent();
  });
  after(async () => {
    await a.stop();
  });

  it('refuses Args, Script and Docker checks with Consul\'s message and registers nothing', async () => {
    for (const check of [{ Args: ['/bin/true'], Interval: '1s' }, { ScriptArgs: ['/bin/true'], Interval: '1s' }, { Script: 'true', Interval: '1s' },
      { DockerContainerID: 'abc', Args: ['true'], Interval: '1s' }]) {
      const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'refused', Port: 1, Check: check });
      assert.equal(r.status, 400, JSON.stringify(check));
      assert.equal(r.text.trim(), DISABLED);
      const c = await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'refused-check', ...check });
      assert.equal(c.status, 400);
      assert.equal(c.text.trim(), DISABLED);
    }
    assert.deepEqual((await http(a.url, 'GET', '/v1/agent/services')).json, {});
    assert.equal(await checkOf(a, 'refused-check'), undefined);
  });
});

describe('script checks (--enable-script-checks)', () => {
  let a: TestAgent;
  const dir = tempDir('sy-script-');
  const exitFile = join(dir, 'exit');
  const script = join(dir, 'check.sh');
  before(async () => {
    a = await startTestAgent({ 'enable-script-checks': true, 'check-min-interval': '100ms' });
    // Its exit code comes from a file the test rewrites; it writes to both stdout and stderr.
    writeFileSync(script, `#!/bin/sh\necho "out $(cat ${exitFile})"\necho "err" >&2\nexit "$(cat ${exitFile})"\n`);
    chmodSync(script, 0o755);
    writeFileSync(exitFile, '0');
  });
  after(async () => {
    await a.stop();
  });

  it('exit 0 is passing, 1 warning, anything else critical; the output is stdout and stderr', async () => {
    const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'scripted', Port: 80, Check: { Args: [script], Interval: '200ms' } });
    assert.equal(r.status, 200, r.text);
    let c = await waitCheck(a, 'service:scripted', (x) => x.Status === 'passing', 'passing after exit 0');
    assert.equal(c.Type, 'script');
    assert.equal(c.Output, 'out 0\nerr\n');
    writeFileSync(exitFile, '1');
    c = await waitCheck(a, 'service:scripted', (x) => x.Status === 'warning', 'warning after exit 1');
    assert.equal(c.Output, 'out 1\nerr\n');
    writeFileSync(exitFile, '3');
    c = await waitCheck(a, 'service:scripted', (x) => x.Status === 'critical', 'critical after exit 3');
    assert.equal(c.Output, 'out 3\nerr\n');
    writeFileSync(exitFile, '0');
    await waitCheck(a, 'service:scripted', (x) => x.Status === 'passing', 'passing again');
    const health = (await http(a.url, 'GET', '/v1/health/service/scripted?passing')).json as unknown[];
    assert.equal(health.length, 1);
  });

  it('Script (the older string form, python-consul\'s Check.script) runs with sh -c; the lower-case keys work', async () => {
    const r = await http(a.url, 'PUT', '/v1/agent/check/register', { name: 'shell-form', script: 'echo "sum $((40 + 2))"; exit 1', interval: '200ms' });
    assert.equal(r.status, 200, r.text);
    const c = await waitCheck(a, 'shell-form', (x) => x.Status === 'warning', 'warning from the shell');
    assert.equal(c.Output, 'sum 42\n');
  });

  it('a command that cannot start is critical with Go\'s wording', async () => {
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'no-path', Args: ['/nonexistent/sy-check'], Interval: '200ms', Status: 'passing' });
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'no-cmd', Args: ['sy-no-such-command', 'x'], Interval: '200ms', Status: 'passing' });
    assert.equal((await waitCheck(a, 'no-path', (x) => x.Status === 'critical', 'no-path critical')).Output, 'fork/exec /nonexistent/sy-check: no such file or directory');
    assert.equal((await waitCheck(a, 'no-cmd', (x) => x.Status === 'critical', 'no-cmd critical')).Output, 'exec: "sy-no-such-command": executable file not found in $PATH');
  });

  it('a long output keeps its last OutputMaxSize bytes, with Consul\'s "Captured" line', async () => {
    // 1,000 bytes: 999 digits then a newline; the tail ends in the marker.
    await http(a.url, 'PUT', '/v1/agent/check/register', {
      Name: 'long', Args: ['/bin/sh', '-c', 'head -c 990 /dev/zero | tr "\\0" 7; echo "LAST-LINE"'], Interval: '200ms', OutputMaxSize: 100,
    });
    const c = await waitCheck(a, 'long', (x) => x.Status === 'passing', 'long passing');
    assert.equal(c.Output, `Captured 100 of 1000 bytes\n...\n${'7'.repeat(90)}LAST-LINE\n`);
  });

  it('a timeout is critical, shows what was written so far and kills the whole process group', async () => {
    const pids = join(dir, 'pids');
    // The shell starts a child (sleep) that would outlive a kill of the shell alone.
    await http(a.url, 'PUT', '/v1/agent/check/register', {
      Name: 'slow', Args: ['/bin/sh', '-c', `echo started; sleep 30 & echo "$$ $!" > ${pids}; wait`], Interval: '1s', Timeout: '300ms', Status: 'passing',
    });
    const c = await waitCheck(a, 'slow', (x) => x.Status === 'critical', 'slow critical');
    assert.equal(c.Output, 'Timed out (300ms) running check\n\nstarted\n');
    const [shell, sleeper] = readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
    await waitFor(() => !alive(shell) && !alive(sleeper), 'the shell and its sleep to be gone', 3000);
  });

  it('deregistering a check stops the command it is running', async () => {
    const pidFile = join(dir, 'running');
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'removed', Args: ['/bin/sh', '-c', `echo $$ > ${pidFile}; exec sleep 60`], Interval: '100ms', Timeout: '1m' });
    const pid = (await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined), 'the check to start', 5000)) as number;
    assert.ok(alive(pid));
    assert.equal((await http(a.url, 'PUT', '/v1/agent/check/deregister/removed')).status, 200);
    await waitFor(() => !alive(pid), 'the command to be killed', 3000);
  });

  it('refuses what cannot run, with the field named, and keeps the state', async () => {
    const cases: [unknown, RegExp][] = [
      [{ Name: 'x', Args: ['', 'a'], Interval: '1s' }, /Args: the first element \(the command\) is empty/],
      [{ Name: 'x', Args: ['/bin/true'] }, /Interval is required/],
      [{ Name: 'x', DockerContainerID: 'abc', Interval: '1s' }, /DockerContainerID needs Args \(or Script\)/],
      [{ Name: 'x', Args: ['/bin/true', 'a\u0000b'], Interval: '1s' }, /check\.Args\[1\] contains a NUL character/],
      [{ Name: 'x', Args: ['/bin/true'], HTTP: 'http://127.0.0.1:1/', Interval: '1s' }, /only one check type/],
    ];
    for (const [body, re] of cases) {
      const r = await http(a.url, 'PUT', '/v1/agent/check/register', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.text, re);
    }
    assert.equal(await checkOf(a, 'x'), undefined);
  });

  it('python-consul\'s Check.script registers a check that runs', { skip: spawnSync('/usr/bin/python3', ['-c', 'import consul']).status !== 0 && !inCI ? 'python3-consul missing' : false }, async () => {
    // Not spawnSync: the agent answering python runs in this process.
    const py = await promisify(execFile)('/usr/bin/python3', ['-c', [
      'import consul, sys',
      `c = consul.Consul(host="127.0.0.1", port=${a.address.port})`,
      'c.agent.service.register("py-scripted", port=81, check=consul.Check.script("echo from python; exit 0", "1s"))',
    ].join('\n')], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(py.stderr, '');
    const c = await waitCheck(a, 'service:py-scripted', (x) => x.Status === 'passing', 'python-registered script passing', 5000);
    assert.equal(c.Output, 'from python\n');
  });
});

describe('a script check stored while enabled, after a restart without the flag', { skip: testStore === 'etcd' ? 'one agent restarted on its own data dir (the embedded store)' : false }, () => {
  it('is not run: it turns critical and says why', async () => {
    const dataDir = tempDir();
    const marker = join(dataDir, 'ran');
    const on = await startTestAgent({ 'enable-script-checks': true, 'check-min-interval': '100ms' }, dataDir);
    await http(on.url, 'PUT', '/v1/agent/check/register', { Name: 'stored', Args: ['/bin/sh', '-c', `date >> ${marker}`], Interval: '200ms' });
    await waitCheck(on, 'stored', (x) => x.Status === 'passing', 'passing while enabled');
    await on.close();
    const off = await startTestAgent({ 'check-min-interval': '100ms' }, dataDir);
    try {
      const runs = readFileSync(marker, 'utf8');
      const c = await waitCheck(off, 'stored', (x) => x.Status === 'critical', 'critical once the flag is off');
      assert.equal(c.Output, `${DISABLED} (this check was registered while they were enabled)`);
      await sleep(500);
      assert.equal(readFileSync(marker, 'utf8'), runs, 'the command did not run again');
    } finally {
      await off.stop();
    }
  });
});

const docker = await dockerAvailable();
describe('Docker checks (--enable-script-checks): docker exec in a running container', { skip: !docker && !inCI ? 'no Docker daemon (required when CI=true)' : false }, () => {
  let a: TestAgent;
  const containers = new Containers();
  let id = '';
  before(async () => {
    assert.ok(docker, 'CI=true: a Docker daemon must answer; .ci/run starts one');
    await ensureTestImage();
    id = await containers.run({ name: `sy-docker-check-${process.pid}` });
    a = await startTestAgent({ 'enable-script-checks': true, 'check-min-interval': '100ms' });
  });
  after(async () => {
    await a?.stop();
    await containers.removeAll();
  });

  it('Args run in the container: exit 1 is warning, with its output; the check follows a file inside it', async () => {
    await http(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'in-docker', Port: 80, Check: { DockerContainerID: id, Args: ['sh', '-c', 'echo "in $(hostname)"; test -f /tmp/ok || exit 1'], Interval: '300ms' },
    });
    let c = await waitCheck(a, 'service:in-docker', (x) => x.Status === 'warning', 'warning while /tmp/ok is missing', 15_000);
    assert.equal(c.Type, 'docker');
    assert.equal(c.Output, `in ${id.slice(0, 12)}\n`);
    assert.equal(await containers.exec(id, ['sh', '-c', 'echo > /tmp/ok']), 0);
    c = await waitCheck(a, 'service:in-docker', (x) => x.Status === 'passing', 'passing once /tmp/ok exists', 15_000);
  });

  it('Script runs with the given Shell (python-consul\'s Check.docker keys)', async () => {
    await http(a.url, 'PUT', '/v1/agent/check/register', { name: 'docker-shell', docker_container_id: id, shell: '/bin/sh', script: 'echo $((6 * 7)) >&2; exit 2', interval: '300ms', status: 'passing' });
    const c = await waitCheck(a, 'docker-shell', (x) => x.Status === 'critical', 'critical after exit 2', 15_000);
    assert.equal(c.Output, '42\n');
  });

  it('an unknown container is critical, named as Consul names it', async () => {
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'docker-gone', DockerContainerID: 'sy-no-such-container', Args: ['true'], Interval: '300ms', Status: 'passing' });
    const c = await waitCheck(a, 'docker-gone', (x) => x.Status === 'critical', 'critical for a missing container', 15_000);
    assert.equal(c.Output, 'create exec failed for unknown container sy-no-such-container');
  });

  it('a command that outlives the Timeout is critical with Consul\'s timeout text', async () => {
    await http(a.url, 'PUT', '/v1/agent/check/register', { Name: 'docker-slow', DockerContainerID: id, Args: ['sh', '-c', 'echo begun; sleep 5'], Interval: '2s', Timeout: '500ms', Status: 'passing' });
    const c = await waitCheck(a, 'docker-slow', (x) => x.Status === 'critical', 'critical after the timeout', 15_000);
    assert.equal(c.Output, 'Timed out (500ms) running check\n\nbegun\n');
  });
});
