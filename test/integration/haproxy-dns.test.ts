// HAProxy (Debian's haproxy) following one service through Switchyard's DNS with `server-template` and SRV records:
// 1 → 3 → 2 instances on one node, and HAProxy reaches exactly the registered ones every time. Its resolvers pair
// additional records with answers one to one, so each SRV answer needs its own A record (as Consul sends them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { http, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort } from '../helpers/process.js';

const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => spawnSync(p, ['-v'], { stdio: 'ignore' }).status === 0);
if (HAPROXY === undefined && process.env['CI'] === 'true') throw new Error('haproxy is required under CI=true (apt-get install haproxy)');

/** One command on HAProxy's admin socket, the whole answer. */
function adminCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString()));
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.write(`${command}\n`);
  });
}

describe('HAProxy server-template over Switchyard DNS', { skip: HAPROXY === undefined && 'haproxy not installed (apt-get install haproxy)' }, () => {
  let agent: TestAgent;
  let haproxy: ChildProcess | undefined;
  let log = '';
  const backends: Backend[] = [];
  const dir = tempDir('sy-haproxy-');
  const socket = join(dir, 'admin.sock');
  let port = 0;

  before(async () => {
    agent = await startTestAgent({ 'dns-addr': '127.0.0.1:0' });
    for (const name of ['b1', 'b2', 'b3']) backends.push(await startBackend(name));
    port = await freePort();
    const dns = agent.dns!.udp;
    writeFileSync(join(dir, 'haproxy.cfg'), [
      'global',
      `  stats socket ${socket} mode 600 level admin`,
      'resolvers switchyard',
      `  nameserver sy ${dns.host}:${dns.port}`,
      '  resolve_retries 3',
      '  timeout resolve 200ms',
      '  timeout retry 200ms',
      '  hold valid 500ms',
      '  hold obsolete 500ms',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 5s',
      '  timeout server 5s',
      'frontend in',
      `  bind 127.0.0.1:${port}`,
      '  default_backend web',
      'backend web',
      '  balance roundrobin',
      '  server-template web 5 _web._tcp.service.consul resolvers switchyard resolve-prefer ipv4 init-addr none',
      '',
    ].join('\n'));
    haproxy = spawn(HAPROXY as string, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
    haproxy.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    haproxy.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    await waitFor(async () => adminCommand(socket, 'show info').then((s) => s.includes('Name: HAProxy'), () => false), `haproxy up (${log})`, 15_000, 100);
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      const gone = new Promise((r) => haproxy!.once('exit', r));
      haproxy.kill('SIGKILL');
      await gone;
    }
    for (const b of backends) await b.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const register = async (b: Backend): Promise<void> => {
    // No Address: every instance is on the agent's own node, so all SRV answers target that node.
    const r = await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: `web-${b.name}`, Port: b.port });
    assert.equal(r.status, 200, r.text);
  };

  /** Which backends answer a round of requests through HAProxy (round robin over its servers that have an address). */
  const reached = async (): Promise<string[]> => {
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
        const body = await r.text();
        if (r.status === 200) seen.add(body);
      } catch {
        // no server resolved yet
      }
    }
    return [...seen].sort();
  };
  const servers = async (): Promise<string> => (await adminCommand(socket, 'show servers state web')).trim();

  const expectReached = async (names: string[]): Promise<void> => {
    await waitFor(async () => (await reached()).join() === names.join(), `HAProxy to reach exactly ${names.join(', ')} (state: ${await servers()})`, 20_000, 100);
  };

  it('follows 1 → 3 → 2 instances of one service on one node', { timeout: 90_000 }, async () => {
    const [b1, b2, b3] = backends as [Backend, Backend, Backend];
    await register(b1);
    await expectReached(['b1']);
    await register(b2);
    await register(b3);
    // Before: one A record for three SRV answers, and the third server stayed in "MAINT (resolution)".
    await expectReached(['b1', 'b2', 'b3']);
    assert.equal((await http(agent.url, 'PUT', `/v1/agent/service/deregister/web-${b2.name}`)).status, 200);
    await expectReached(['b1', 'b3']);
    // And it keeps reaching both (the round is no accident of timing).
    assert.deepEqual(await reached(), ['b1', 'b3']);
  });
});
