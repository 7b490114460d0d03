// `switchyard registrator` against a REAL Docker engine and a real agent: containers come and go,
// the registrator is killed and restarted, the registry goes away and comes back, and each time the
// agent ends with exactly the right services. Skipped only outside CI when no Docker daemon answers.
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { hostname } from 'node:os';
import { http, negativeWindow, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { Containers, dockerAvailable, ensureTestImage, TEST_IMAGE } from '../helpers/docker.js';
import { stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const inCI = process.env.CI === 'true';
const available = await dockerAvailable();
const skip = !available && !inCI ? 'no Docker daemon (set DOCKER_HOST or start dockerd; required when CI=true)' : false;

interface AgentService {
  ID: string;
  Service: string;
  Tags: string[] | null;
  Meta: Record<string, string> | null;
  Port: number;
  Address: string;
}

describe('switchyard registrator with a real Docker engine', { skip }, () => {
  const run = `sy-reg-${process.pid.toString(36)}${Date.now().toString(36)}`;
  const host = hostname();
  const containers = new Containers();
  let agent: TestAgent;
  let port: number;
  let reg: Proc | undefined;
  const procs: Proc[] = [];

  const name = (n: string): string => `${run}-${n}`;
  const sid = (n: string): string => `${host}:${name(n)}:80`;

  /** This run's services in the agent (other containers on the daemon are not ours to judge). */
  const services = async (): Promise<Record<string, AgentService>> => {
    const all = (await http(agent.url, 'GET', '/v1/agent/services')).json as Record<string, AgentService>;
    return Object.fromEntries(Object.entries(all).filter(([id]) => id.includes(run)));
  };
  const ids = async (): Promise<string[]> => Object.keys(await services()).sort();
  const expectIds = async (want: string[], what: string, timeoutMs = 20_000): Promise<void> => {
    const sorted = [...want].sort();
    let last: string[] = [];
    try {
      await waitFor(async () => {
        last = await ids();
        return JSON.stringify(last) === JSON.stringify(sorted);
      }, what, timeoutMs, 100);
    } catch (err) {
      assert.fail(`${(err as Error).message}\n  want ${JSON.stringify(sorted)}\n  got  ${JSON.stringify(last)}\n  registrator stderr:\n${reg?.stderr().slice(-4000) ?? ''}`);
    }
  };

  const startRegistrator = (extra: string[] = []): Proc => {
    const p = switchyard(['registrator', '-ip', '127.0.0.1', ...extra, `consul://127.0.0.1:${port}`]);
    procs.push(p);
    reg = p;
    return p;
  };

  before(async () => {
    assert.ok(available, 'CI=true: a Docker daemon must answer (DOCKER_HOST or /var/run/docker.sock); .ci/run starts one');
    await ensureTestImage();
    agent = await startTestAgent({ 'check-min-interval': '100ms' });
    port = Number(new URL(agent.url).port);
  });

  after(async () => {
    for (const p of procs) await stop(p, 'SIGKILL');
    await containers.removeAll();
    await agent?.stop();
  });

  it('registers at start, follows start/die, honours SERVICE_*, survives restarts and registry outages', async () => {
    // A container that is already running when the registrator starts.
    const pre = await containers.run({ name: name('pre'), env: ['SERVICE_NAME=web'] });
    startRegistrator();
    await expectIds([sid('pre')], 'the running container registered at start');

    // 1 container → 1 service with the mapped name, tags, address, published port, Meta and an HTTP check that passes.
    const w1 = await containers.run({
      name: name('w1'),
      env: ['SERVICE_NAME=web', 'SERVICE_TAGS=blue,v2', 'SERVICE_80_CHECK_HTTP=/health', 'SERVICE_80_CHECK_INTERVAL=1s'],
    });
    await expectIds([sid('pre'), sid('w1')], 'w1 registered on its start event');
    const s1 = (await services())[sid('w1')];
    assert.ok(s1);
    assert.equal(s1.Service, 'web');
    assert.equal(s1.Address, '127.0.0.1');
    assert.equal(s1.Port, await containers.hostPort(w1));
    assert.deepEqual(s1.Tags, ['v2', 'blue'], 'registrator master splits SERVICE_TAGS in reverse order');
    assert.deepEqual(s1.Meta, { check_http: '/health', check_interval: '1s' });
    await waitFor(async () => {
      const h = (await http(agent.url, 'GET', '/v1/health/service/web?passing')).json as { Service: { ID: string } }[];
      return h.some((e) => e.Service.ID === sid('w1'));
    }, 'the HTTP check of w1 passing (the agent reaches the container through its 127.0.0.1 port)', 15_000, 100);

    // Scale to 3; plus one ignored container and one without SERVICE_NAME (named after the image).
    const w2 = await containers.run({ name: name('w2'), env: ['SERVICE_NAME=web'] });
    const w3 = await containers.run({ name: name('w3'), env: ['SERVICE_NAME=web'] });
    await containers.run({ name: name('ignored'), env: ['SERVICE_IGNORE=true', 'SERVICE_NAME=web'] });
    await containers.run({ name: name('anon'), labels: { SERVICE_TAGS: 'from-label' } });
    await expectIds([sid('pre'), sid('w1'), sid('w2'), sid('w3'), sid('anon')], 'scaled to 3 web + anon');
    const anon = (await services())[sid('anon')];
    assert.equal(anon?.Service, TEST_IMAGE.split(':')[0]);
    assert.deepEqual(anon?.Tags, ['from-label']);

    // Stop one → deregistered on its die event.
    await containers.stop(w2);
    await expectIds([sid('pre'), sid('w1'), sid('w3'), sid('anon')], 'w2 deregistered on die');

    // Kill the registrator; change containers behind its back; restart it (with -cleanup for the stale one).
    const first = reg as Proc;
    await stop(first, 'SIGKILL');
    await containers.stop(w3);
    await containers.remove(pre);
    await containers.run({ name: name('w4'), env: ['SERVICE_NAME=web'] });
    assert.deepEqual(await ids(), [sid('anon'), sid('pre'), sid('w1'), sid('w3')], 'nothing changes while the registrator is down');
    startRegistrator(['-cleanup']);
    await expectIds([sid('w1'), sid('w4'), sid('anon')], 'restart: w4 added, stopped w3 and removed pre cleaned up');

    // The registry goes away; containers change; it comes back empty on the same port → the registrator heals it.
    const failedSyncs = (): number => (reg as Proc).stderr().split('sync failed: will retry').length - 1;
    const failedBefore = failedSyncs();
    await agent.stop();
    await containers.stop(w1);
    await containers.run({ name: name('w5'), env: ['SERVICE_NAME=web'] });
    // It tries to apply those changes, fails, and says it will retry (twice: a retry after the first failure failed too).
    await waitFor(() => failedSyncs() >= failedBefore + 2, () => `two failed syncs during the outage: ${(reg as Proc).stderr().slice(-2000)}`, 30_000, 50);
    assert.equal((reg as Proc).child.exitCode, null, 'the registrator keeps running through the outage');
    agent = await startTestAgent({ 'http-addr': `127.0.0.1:${port}`, 'check-min-interval': '100ms' }, tempDir());
    await expectIds([sid('w4'), sid('w5'), sid('anon')], 'after the outage: every running container, nothing else', 30_000);
    assert.match((reg as Proc).stderr(), /sync failed: will retry/);

    // SIGTERM stops it cleanly and leaves the registrations in place (as registrator does).
    const res = await stop(reg as Proc, 'SIGTERM');
    assert.equal(res.code, 0, (reg as Proc).stderr().slice(-2000));
    assert.deepEqual(await ids(), [sid('anon'), sid('w4'), sid('w5')]);
  });

  it('consulkv://: each service is a KV entry "ip:port" under the path, gone when its container dies; the catalog stays as it was', async () => {
    const prefix = `${run}-kv`;
    // An entry left by a container of this host that is gone: -cleanup removes it (registrator's adapter lists nothing, so never could).
    const stale = `/v1/kv/${prefix}/kvweb/${encodeURIComponent(sid('gone'))}`;
    assert.equal((await http(agent.url, 'PUT', stale, '127.0.0.1:1')).status, 200);
    const kv = switchyard(['registrator', '-ip', '127.0.0.1', '-cleanup', `consulkv://127.0.0.1:${port}/${prefix}`]);
    procs.push(kv);
    const catalogBefore = await ids();
    const k1 = await containers.run({ name: name('kv1'), env: ['SERVICE_NAME=kvweb'] });
    const key = `/v1/kv/${prefix}/kvweb/${encodeURIComponent(sid('kv1'))}`;
    await waitFor(async () => (await http(agent.url, 'GET', `${key}?raw`)).status === 200, () => `the KV entry of kv1; stderr: ${kv.stderr().slice(-2000)}`, 20_000, 100);
    assert.equal((await http(agent.url, 'GET', `${key}?raw`)).text, `127.0.0.1:${await containers.hostPort(k1)}`);
    assert.deepEqual(await ids(), catalogBefore, 'nothing registered in the catalog');
    await waitFor(async () => (await http(agent.url, 'GET', `${stale}?raw`)).status === 404, 'the stale entry cleaned up', 20_000, 100);
    await containers.stop(k1);
    await waitFor(async () => (await http(agent.url, 'GET', `${key}?raw`)).status === 404, 'the KV entry removed on die', 20_000, 100);
    const res = await stop(kv, 'SIGTERM');
    assert.equal(res.code, 0, kv.stderr().slice(-2000));
  });

  it('-healthcheck: the Docker HEALTHCHECK status becomes a TTL check, updated on health_status events', async () => {
    const checksOf = async (serviceId: string): Promise<{ CheckID: string; Status: string; Output: string; Name: string }[]> =>
      ((await http(agent.url, 'GET', `/v1/health/checks/hc-${run}`)).json as { CheckID: string; Status: string; Output: string; Name: string; ServiceID: string }[])
        .filter((c) => c.ServiceID === serviceId);
    const hcId = `service:${sid('hc')}:docker-health`;
    const status = async (want: string, what: string): Promise<{ Status: string; Output: string }> => {
      let last: unknown;
      try {
        return await waitFor(async () => {
          const c = (await checksOf(sid('hc'))).find((x) => x.CheckID === hcId);
          last = c;
          return c?.Status === want ? c : undefined;
        }, what, 20_000, 100) as { Status: string; Output: string };
      } catch (err) {
        return assert.fail(`${(err as Error).message}\n  last: ${JSON.stringify(last)}\n  registrator stderr:\n${reg?.stderr().slice(-3000) ?? ''}`);
      }
    };
    startRegistrator(['-healthcheck']);
    const hc = await containers.run({
      name: name('hc'), env: [`SERVICE_NAME=hc-${run}`, 'SERVICE_CHECK_TCP=true', 'SERVICE_CHECK_INTERVAL=1s'],
      healthcheck: { Test: ['CMD-SHELL', 'test -f /www/health'], Interval: 1e9, Timeout: 1e9, Retries: 1 },
    });
    await containers.run({ name: name('plain'), env: [`SERVICE_NAME=hc-${run}`] });
    const passing = await status('passing', 'the healthy container\'s Docker check passing');
    assert.match(passing.Output, /^Docker health: healthy; last probe exited 0/);
    const checks = await checksOf(sid('hc'));
    assert.deepEqual(checks.map((c) => c.CheckID).sort(), [`service:${sid('hc')}`, hcId].sort(), 'the SERVICE_CHECK_* check keeps its ID beside the Docker one');
    assert.equal(checks.find((c) => c.CheckID === hcId)?.Name, 'Docker HEALTHCHECK');
    assert.deepEqual((await checksOf(sid('plain'))).filter((c) => c.CheckID.endsWith(':docker-health')), [], 'no HEALTHCHECK, no Docker check');

    // The container turns unhealthy (its probe file goes), then healthy again.
    assert.equal(await containers.exec(hc, ['busybox', 'rm', '/www/health']), 0);
    const failing = await status('critical', 'the Docker check critical once the container is unhealthy');
    assert.match(failing.Output, /^Docker health: unhealthy/);
    const healthyIds = async (): Promise<string[]> => ((await http(agent.url, 'GET', `/v1/health/service/hc-${run}?passing`)).json as { Service: { ID: string } }[]).map((e) => e.Service.ID);
    assert.deepEqual(await healthyIds(), [sid('plain')], 'an unhealthy container is out of ?passing (and of the balancer)');
    assert.equal(await containers.exec(hc, ['sh', '-c', 'echo healthy > /www/health']), 0);
    await status('passing', 'the Docker check passing again');
    assert.match(reg?.stderr() ?? '', /docker health pushed/);
    await stop(reg as Proc, 'SIGKILL');
  });

  it('docker stop: the services go at the stop signal, while the container still serves; a reload signal or an ignored SIGTERM do not keep them out', async () => {
    // Earlier tests' containers still run (and their registrators were killed): this one looks at its own two.
    const mine = [sid('graceful'), sid('stubborn')];
    const expectMine = async (want: string[], what: string, timeoutMs: number): Promise<void> => {
      let last: string[] = [];
      try {
        await waitFor(async () => {
          last = (await ids()).filter((id) => mine.includes(id));
          return JSON.stringify(last) === JSON.stringify(want);
        }, what, timeoutMs, 50);
      } catch (err) {
        assert.fail(`${(err as Error).message}\n  want ${JSON.stringify(want)}\n  got  ${JSON.stringify(last)}\n  registrator stderr:\n${reg?.stderr().slice(-3000) ?? ''}`);
      }
    };
    startRegistrator(['-stop-grace', '4']);
    // Its shell takes 2 s to finish after SIGTERM (a graceful shutdown), serving all the while.
    const graceful = await containers.run({ name: name('graceful'), env: ['SERVICE_NAME=graceful'], cmd: ['sh', '-c', 'trap "sleep 2; exit 0" TERM; httpd -f -p 80 -h /www & wait'] });
    // PID 1 without a handler ignores SIGTERM and SIGHUP; docker waits 1 s before SIGKILL on a stop.
    const stubborn = await containers.run({ name: name('stubborn'), env: ['SERVICE_NAME=stubborn'], cmd: ['sh', '-c', 'httpd -f -p 80 -h /www & wait'], stopTimeout: 1 });
    await expectMine(mine, 'both registered', 20_000);

    const stopping = containers.stop(graceful);
    await expectMine([sid('stubborn')], 'graceful deregistered at its SIGTERM', 10_000);
    const info = await containers.docker.getContainer(graceful).inspect();
    assert.equal(info.State.Running, true, 'the container is still running (and serving) when its service is gone');
    assert.equal((await fetch(`http://127.0.0.1:${await containers.hostPort(graceful)}/`)).status, 200, 'it still answers its open port');
    await stopping;
    assert.match(reg?.stderr() ?? '', /container is stopping: deregistering its services before it exits/);

    // A reload signal is not a stop: nothing changes (a pass runs on the kill event; 1.5 s is three times what one takes here).
    await containers.kill(stubborn, 'SIGHUP');
    await negativeWindow(1500, 'a deregistration on SIGHUP');
    assert.deepEqual((await ids()).filter((id) => mine.includes(id)), [sid('stubborn')], 'SIGHUP leaves the service registered');

    // SIGTERM sent with docker kill (no SIGKILL follows) to a process that ignores it: out at once, back once its stop timeout (1 s) and -stop-grace (4 s) have passed.
    const sent = Date.now();
    await containers.kill(stubborn, 'SIGTERM');
    await expectMine([], 'stubborn deregistered at its SIGTERM', 10_000);
    await expectMine([sid('stubborn')], 'stubborn registered again: it ignored the signal', 20_000);
    assert.ok(Date.now() - sent >= 5000, `back after the stop timeout and the grace, not before (${Date.now() - sent} ms)`);
    assert.match(reg?.stderr() ?? '', /still running past its stop timeout/);
    await stop(reg as Proc, 'SIGKILL');
  });

  it('exits 2 naming the flag on bad usage, and 1 when the registry cannot be reached', async () => {
    const missing = switchyard(['registrator', '-ip', '127.0.0.1']);
    assert.equal((await missing.exited).code, 2);
    assert.match(missing.stderr(), /missing required argument for registry URI[\s\S]*Usage: switchyard registrator \[options\] <registry URI>/);
    const badFlag = switchyard(['registrator', '-deregister', 'sometimes', 'consul://127.0.0.1:1']);
    assert.equal((await badFlag.exited).code, 2);
    assert.match(badFlag.stderr(), /-deregister must be "always" or "on-success"/);
    const badInt = switchyard(['registrator', '-resync=soon', 'consul://127.0.0.1:1']);
    assert.equal((await badInt.exited).code, 2);
    assert.match(badInt.stderr(), /invalid value "soon" for flag -resync/);
    const unreachable = switchyard(['registrator', '-retry-attempts', '1', '-retry-interval', '100', 'consul://127.0.0.1:1']);
    assert.equal((await unreachable.exited).code, 1);
    assert.match(unreachable.stderr(), /cannot reach the registry at http:\/\/127\.0\.0\.1:1/);
  });
});
