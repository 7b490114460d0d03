// `switchyard up`: agent and balancer in one process, reading the in-process catalog; clean shutdown; clear port errors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { request } from 'undici';
import { tempDir, http, waitFor } from '../helpers/agent.js';
import { startBackend } from '../helpers/lb.js';
import { REPO, freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import { Containers, dockerAvailable, ensureTestImage } from '../helpers/docker.js';
import { whoListens } from '../../src/cli/wiring/listen.js';

describe('switchyard up', () => {
  it('serves the registry and balances to registered instances, with every part\'s metrics on one endpoint', async () => {
    const [api, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir('sy-up-');
    const p = switchyard(['up', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator', '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', dir, '--service', 'web', '--log-level', 'warn']);
    const backends = await Promise.all(['u1', 'u2', 'u3'].map(startBackend));
    try {
      const agentUrl = `http://127.0.0.1:${api}`;
      await waitHttpOk(`${agentUrl}/v1/status/leader`, p);
      for (const b of backends) await http(agentUrl, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: b.name, Address: '127.0.0.1', Port: b.port });
      const seen = new Set<string>();
      await waitFor(async () => {
        const r = await request(`http://127.0.0.1:${lbPort}/`);
        const body = await r.body.text();
        if (r.statusCode === 200) seen.add(body);
        return seen.size === 3;
      }, 'all three instances answer through the balancer', 10_000);
      // Deregistration reaches the balancer without any HTTP watch in between.
      await http(agentUrl, 'PUT', '/v1/agent/service/deregister/u1');
      await waitFor(async () => {
        const bodies = new Set<string>();
        for (let i = 0; i < 6; i++) bodies.add(await (await request(`http://127.0.0.1:${lbPort}/`)).body.text());
        return !bodies.has('u1');
      }, 'u1 leaves the rotation', 5000);
      // The DNS interface answers from the same catalog.
      const resolver = new Resolver();
      resolver.setServers([`127.0.0.1:${dnsPort}`]);
      const srv = await resolver.resolveSrv('web.service.consul');
      assert.deepEqual(srv.map((r) => r.port).sort(), backends.slice(1).map((b) => b.port).sort());
      assert.deepEqual(await resolver.resolve4('web.service.consul'), ['127.0.0.1']);
      const metrics = await (await fetch(`${agentUrl}/metrics`)).text();
      assert.match(metrics, /^switchyard_registry_index \d+/m);
      assert.match(metrics, /^switchyard_lb_requests_total\{/m);
      assert.match(metrics, /^switchyard_lb_table_generation \d+/m);
      assert.match(metrics, /^switchyard_dns_queries_total\{/m);
    } finally {
      const r = await stop(p, 'SIGINT');
      assert.equal(r.code, 0, `Ctrl-C shuts down cleanly: ${p.stderr()}`);
      for (const b of backends) await b.close();
    }
  });

  it('`npm start` stopped with SIGTERM (a service manager, a container runtime) stops `up` too', async () => {
    // npm forwards the signal to the script's process. Through a shell that stayed in between, the shell died
    // and `up` ran on, orphaned, holding its ports.
    const [api, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const npm = spawn('npm', ['start', '--', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--no-registrator',
      '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', tempDir('sy-up-npm-'), '--log-level', 'warn'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((r) => npm.once('exit', r));
    const agentUrl = `http://127.0.0.1:${api}`;
    let upPid: number | undefined;
    try {
      await waitFor(async () => (await fetch(`${agentUrl}/v1/status/leader`).catch(() => undefined))?.ok === true, `npm start serves on ${api}: ${err}`, 60_000);
      // The process npm started (through whatever is in between), so that a failure here leaves nothing running.
      upPid = Number(/^pid (\d+)/.exec(whoListens(api) ?? '')?.[1]) || undefined;
      assert.ok(upPid !== undefined && upPid !== npm.pid, `found the process serving on ${api}`);
      npm.kill('SIGTERM');
      await exited;
      await waitFor(async () => (await fetch(`${agentUrl}/v1/status/leader`).then(() => 'up', () => 'down')) === 'down', 'the agent stops with npm', 10_000);
      // Its ports are free again.
      const probe = createServer().listen(api, '127.0.0.1');
      await new Promise((res, rej) => probe.once('listening', res).once('error', rej));
      probe.close();
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
      // Only while it still holds our port: once gone, its PID may belong to something else.
      if (upPid !== undefined && whoListens(api)?.startsWith(`pid ${upPid} `) === true) process.kill(upPid, 'SIGKILL');
    }
  });

  it('--check: validates every section and the files the balancer\'s part names, starts nothing', async () => {
    const dir = tempDir('sy-up-check-');
    const file = `${dir}/up.yaml`;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, `agent: { http-addr: 127.0.0.1:1 }\nlb:\n  listen: 127.0.0.1:2\n  routes:\n    - { path: /, service: web }\n`);
    const ok = switchyard(['up', '--check', '--config', file]);
    assert.equal((await ok.exited).code, 0, ok.stderr());
    assert.equal(ok.stdout(), 'configuration OK: registry 127.0.0.1:1, 1 route(s), listen 127.0.0.1:2\n');
    writeFileSync(file, `lb:\n  routes:\n    - { path: /, service: web, protocol: https, tls-ca: ${dir}/none.pem }\n`);
    const bad = switchyard(['up', '--check', '--config', file]);
    assert.equal((await bad.exited).code, 2, bad.stdout());
    assert.match(bad.stderr(), /routes\[0\]\.tls-ca: cannot read .*none\.pem: ENOENT/);
  });

  it('says which port is taken, by whom, and which flag changes it', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const taken = (blocker.address() as { port: number }).port;
    const api = await freePort();
    const p = switchyard(['up', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${taken}`, '--no-registrator', '--dns-addr', `127.0.0.1:${await freePort()}`, '--data-dir', tempDir('sy-up-'), '--log-level', 'warn']);
    const r = await p.exited;
    blocker.close();
    assert.equal(r.code, 3);
    assert.match(p.stderr(), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken}: address already in use by pid ${process.pid} .*--listen`));
    // The agent that had started was closed again: its port is free.
    const probe = createServer().listen(api, '127.0.0.1');
    await new Promise((res, rej) => probe.once('listening', res).once('error', rej));
    probe.close();
  });

  it('runs the registrator when a Docker engine answers: a started container takes traffic, a removed one leaves', async (t) => {
    if (!(await dockerAvailable())) {
      if (process.env.CI === 'true') assert.fail('CI=true: a Docker daemon must answer (.ci/run starts one)');
      t.skip('no Docker engine');
      return;
    }
    await ensureTestImage();
    const containers = new Containers();
    const [api, lbPort, dnsPort] = [await freePort(), await freePort(), await freePort()];
    const p = switchyard(['up', '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${lbPort}`, '--dns-addr', `127.0.0.1:${dnsPort}`,
      '--data-dir', tempDir('sy-up-'), '--service', 'upweb', '--log-level', 'info']);
    try {
      const agentUrl = `http://127.0.0.1:${api}`;
      await waitHttpOk(`${agentUrl}/v1/status/leader`, p);
      await waitFor(() => /registrator following Docker/.test(p.stderr()), 'registrator started', 10_000);
      const id = await containers.run({ name: `sy-up-${process.pid}-${Date.now()}`, env: ['SERVICE_NAME=upweb', 'SERVICE_CHECK_HTTP=/health', 'SERVICE_CHECK_INTERVAL=1s'] });
      const hostPort = await containers.hostPort(id);
      await waitFor(async () => ((await http(agentUrl, 'GET', '/v1/health/service/upweb?passing')).json as unknown[]).length === 1, 'container registered and passing', 20_000);
      const svc = ((await http(agentUrl, 'GET', '/v1/catalog/service/upweb')).json as { ServicePort: number; ServiceAddress: string }[])[0];
      assert.equal(svc?.ServicePort, hostPort);
      assert.equal(svc?.ServiceAddress, '127.0.0.1');
      await waitFor(async () => (await fetch(`http://127.0.0.1:${lbPort}/health`)).status === 200, 'traffic reaches the container through the balancer', 10_000);
      await containers.remove(id);
      await waitFor(async () => ((await http(agentUrl, 'GET', '/v1/catalog/service/upweb')).json as unknown[]).length === 0, 'container deregistered', 20_000);
    } finally {
      await containers.removeAll();
      await stop(p, 'SIGINT');
    }
  });
});
