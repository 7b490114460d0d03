// Routes reloaded on SIGHUP (nginx -s reload's job): the config file's routes change without a restart, a route to
// a service not followed before starts following it, open connections stay and take the new table, and a reload
// that would change anything else (or does not load) changes nothing and says why. One process and two workers.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { registerBackend, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

interface Answer {
  status: number;
  body: string;
  socket: number;
}

let socketIds = 0;
const ids = new WeakMap<object, number>();

function get(port: number, path: string, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        const s = req.socket as object;
        if (!ids.has(s)) ids.set(s, ++socketIds);
        resolve({ status: res.statusCode ?? 0, body, socket: ids.get(s) as number });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('lb: routes reloaded on SIGHUP', () => {
  let agent: TestAgent;
  let shop: Backend;
  let blog: Backend;
  const procs: Proc[] = [];
  before(async () => {
    agent = await startTestAgent();
    shop = await startBackend('shop');
    blog = await startBackend('blog');
    await registerBackend(agent.url, 'shop', shop);
    await registerBackend(agent.url, 'blog', blog);
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await stop(p);
    await shop.close();
    await blog.close();
    await agent.stop();
  });

  for (const workers of [1, 2]) {
    it(`--workers ${workers}: new routes go live, open connections stay and use them; other changes and broken files change nothing`, async () => {
      const dir = tempDir('sy-route-reload-');
      const [port, admin] = [await freePort(), await freePort()];
      const file = join(dir, 'lb.yaml');
      const base = { listen: `127.0.0.1:${port}`, 'admin-addr': `127.0.0.1:${admin}`, registry: agent.url, 'log-level': 'info', workers };
      const write = (extra: Record<string, unknown>): void => writeFileSync(file, JSON.stringify({ ...base, ...extra }));
      write({ routes: [{ path: '/', service: 'shop' }] });
      const p = switchyard(['lb', '--config', file]);
      procs.push(p);
      const bodies = async (path: string): Promise<string[]> => [...new Set(await Promise.all(Array.from({ length: 8 }, async () => (await get(port, path, false)).body)))].sort();
      await waitFor(async () => {
        try {
          return (await get(port, '/', false)).body === 'shop';
        } catch {
          return false;
        }
      }, () => `the balancer serving; stderr: ${p.stderr()}`, 30_000, 100);
      const serving = (): number => (p.stderr().match(/"msg":"load balancer listening"/g) ?? []).length;
      await waitFor(() => serving() >= (workers > 1 ? workers + 1 : 1), () => `every worker listening; stderr: ${p.stderr()}`, 30_000, 50);
      assert.deepEqual(await bodies('/blog/post'), ['shop'], 'before: everything goes to shop');

      const keep = new Agent({ keepAlive: true, maxSockets: 1 });
      const opened = await get(port, '/blog/post', keep);
      assert.equal(opened.body, 'shop');
      // A client keeps requesting through the reload: not one request may fail.
      let errors = 0;
      let sent = 0;
      let loop = true;
      const load = (async () => {
        const a = new Agent({ keepAlive: true, maxSockets: 4 });
        const until = Date.now() + 20_000;
        while (loop && Date.now() < until && sent < 20_000) {
          sent++;
          try {
            const r = await get(port, '/blog/post', a);
            if (r.status !== 200) errors++;
          } catch {
            errors++;
          }
        }
        a.destroy();
      })();

      await waitFor(() => sent >= 5, 'the client under way', 10_000, 10);
      const marks: number[] = [];
      // A route to blog, a service the balancer did not follow: it follows it now.
      write({ routes: [{ path: '/blog', service: 'blog' }, { path: '/', service: 'shop' }] });
      marks.push(sent);
      process.kill(p.pid, 'SIGHUP');
      await waitFor(async () => (await bodies('/blog/post')).join() === 'blog', () => `/blog on blog everywhere; stderr: ${p.stderr()}`, 10_000, 100);
      assert.deepEqual(await bodies('/other'), ['shop']);
      const reused = await get(port, '/blog/post', keep);
      assert.deepEqual([reused.body, reused.socket], ['blog', opened.socket], 'the connection opened before the reload stays, routed by the new table');
      assert.match(p.stderr(), /SIGHUP: routes reloaded/);

      // Routes and another setting at once: refused whole, naming the setting.
      write({ routes: [{ path: '/', service: 'shop' }], 'access-log': true });
      process.kill(p.pid, 'SIGHUP');
      await waitFor(() => /routes not reloaded; the running ones stay/.test(p.stderr()), () => `the refused reload; stderr: ${p.stderr()}`, 10_000, 50);
      assert.match(p.stderr(), /access-log changed, which takes a restart \(only routes reload\)/);
      assert.deepEqual(await bodies('/blog/post'), ['blog'], 'nothing changed');

      // A file that does not load: the reason, and nothing changes.
      writeFileSync(file, 'routes: [unclosed');
      process.kill(p.pid, 'SIGHUP');
      await waitFor(() => /the configuration does not load/.test(p.stderr()), () => `the unreadable file; stderr: ${p.stderr()}`, 10_000, 50);
      assert.deepEqual(await bodies('/blog/post'), ['blog'], 'still nothing changed');

      // The blog route removed again: /blog goes back to the catch-all.
      write({ routes: [{ path: '/', service: 'shop' }] });
      process.kill(p.pid, 'SIGHUP');
      marks.push(sent);
      await waitFor(async () => (await bodies('/blog/post')).join() === 'shop', () => `/blog back on shop; stderr: ${p.stderr()}`, 10_000, 100);
      // The client was requesting across both reloads that changed routes.
      await waitFor(() => sent > (marks[1] as number) + 5, 'the client requesting after the last reload', 10_000, 10);

      loop = false;
      await load;
      keep.destroy();
      assert.ok((marks[1] as number) > (marks[0] as number), `the client requested between the reloads (${marks.join(', ')})`);
      assert.equal(errors, 0, `${errors} of ${sent} requests failed across the reloads`);
      assert.equal(p.child.exitCode, null, 'SIGHUP does not end the balancer');
      process.kill(p.pid, 'SIGTERM');
      assert.equal((await p.exited).code, 0, p.stderr());
    });
  }
  it('switchyard up: routes of the lb section reload on SIGHUP, through the in-process catalog; other sections take a restart', async () => {
    const dir = tempDir('sy-up-route-reload-');
    const [api, port, dns] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'up.json');
    const write = (lb: Record<string, unknown>, dnsSection: Record<string, unknown> = {}): void => writeFileSync(file, JSON.stringify({ lb, dns: dnsSection }));
    write({ routes: [{ path: '/', service: 'shop' }] });
    const p = switchyard(['up', '--config', file, '--http-addr', `127.0.0.1:${api}`, '--listen', `127.0.0.1:${port}`, '--dns-addr', `127.0.0.1:${dns}`,
      '--no-registrator', '--data-dir', join(dir, 'data'), '--log-level', 'info']);
    procs.push(p);
    const own = `http://127.0.0.1:${api}`;
    await waitFor(async () => {
      try {
        const r = await fetch(`${own}/v1/status/leader`);
        return r.status === 200;
      } catch {
        return false;
      }
    }, () => `up's agent; stderr: ${p.stderr()}`, 30_000, 100);
    await registerBackend(own, 'shop', shop);
    await registerBackend(own, 'blog', blog);
    const bodies = async (path: string): Promise<string[]> => [...new Set(await Promise.all(Array.from({ length: 6 }, async () => (await get(port, path, false)).body)))].sort();
    await waitFor(async () => {
      try {
        return (await get(port, '/blog/post', false)).body === 'shop';
      } catch {
        return false;
      }
    }, () => `up's balancer serving; stderr: ${p.stderr()}`, 30_000, 100);

    write({ routes: [{ path: '/blog', service: 'blog' }, { path: '/', service: 'shop' }] });
    process.kill(p.pid, 'SIGHUP');
    await waitFor(async () => (await bodies('/blog/post')).join() === 'blog', () => `/blog on blog; stderr: ${p.stderr()}`, 10_000, 100);
    assert.deepEqual(await bodies('/other'), ['shop']);
    assert.match(p.stderr(), /SIGHUP: routes reloaded/);

    // Another section changed too: refused whole, naming it.
    write({ routes: [{ path: '/', service: 'shop' }] }, { 'udp-max-size': 4096 });
    process.kill(p.pid, 'SIGHUP');
    await waitFor(() => /dns changed, which takes a restart/.test(p.stderr()), () => `the refused reload; stderr: ${p.stderr()}`, 10_000, 50);
    // So is a change to another key of the lb section, named as in the file.
    write({ routes: [{ path: '/', service: 'shop' }], 'access-log': true });
    process.kill(p.pid, 'SIGHUP');
    await waitFor(() => /lb\.access-log changed, which takes a restart/.test(p.stderr()), () => `the refused reload; stderr: ${p.stderr()}`, 10_000, 50);
    assert.deepEqual(await bodies('/blog/post'), ['blog'], 'nothing changed');

    write({ routes: [{ path: '/', service: 'shop' }] });
    process.kill(p.pid, 'SIGHUP');
    await waitFor(async () => (await bodies('/blog/post')).join() === 'shop', () => `/blog back on shop; stderr: ${p.stderr()}`, 10_000, 100);
    assert.equal(p.child.exitCode, null, 'SIGHUP does not end up');
    process.kill(p.pid, 'SIGTERM');
    assert.equal((await p.exited).code, 0, p.stderr());
  });
});
