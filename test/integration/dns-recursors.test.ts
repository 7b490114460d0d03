// DNS recursors (Consul's `recursors`): names outside the domain go to real upstream resolvers (dnsmasq, Debian's
// dnsmasq-base), tried in order over the client's transport, queried with real dig; the agent's own names stay its
// own; none answering is SERVFAIL; bad addresses are refused at start, naming the flag.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { http, startTestAgent, tempDir } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { dig, digSkip } from '../helpers/dig.js';
import { freePort, switchyard } from '../helpers/process.js';

const DNSMASQ = ['/usr/sbin/dnsmasq', 'dnsmasq'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
const skip = digSkip || (DNSMASQ === undefined && process.env.CI !== 'true' ? 'dnsmasq not installed (apt-get install dnsmasq-base)' : false);

/** dnsmasq on 127.0.0.1:<port>, answering only what --address gives it (no upstream, no hosts file). */
async function dnsmasq(port: number, addresses: Record<string, string>): Promise<ChildProcess> {
  assert.ok(DNSMASQ, 'CI=true: dnsmasq must be installed; .ci/run installs dnsmasq-base');
  const args = ['--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--no-poll', '--bind-interfaces', '--listen-address=127.0.0.1',
    `--port=${port}`, '--user=', '--pid-file=', '--log-facility=-', ...Object.entries(addresses).map(([name, ip]) => `--address=/${name}/${ip}`)];
  const p = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  // Ready once it answers.
  for (let i = 0; i < 100; i++) {
    if (p.exitCode !== null) throw new Error(`dnsmasq exited ${p.exitCode}: ${err}`);
    try {
      if ((await dig(port, 'probe.invalid', 'A')).status !== '') return p;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`dnsmasq did not answer on ${port}: ${err}`);
}

describe('DNS recursors', { skip }, () => {
  let agent: TestAgent;
  const upstreams: ChildProcess[] = [];
  let dead: number;
  before(async () => {
    const [first, second] = [await freePort(), await freePort()];
    dead = await freePort();
    upstreams.push(await dnsmasq(first, { 'first.example': '192.0.2.1' }));
    upstreams.push(await dnsmasq(second, { 'second.example': '192.0.2.2' }));
    // The first recursor listed is nobody: it costs its timeout, then the next is asked.
    agent = await startTestAgent({ 'dns-addr': '127.0.0.1:0', 'dns-recursors': [`127.0.0.1:${dead}`, `127.0.0.1:${first}`, `127.0.0.1:${second}`], 'dns-recursor-timeout': '300ms' });
    await http(agent.url, 'PUT', '/v1/catalog/register', { Node: 'db-node', Address: '10.0.0.5', Service: { ID: 'db', Service: 'db', Port: 5432 } });
  });
  after(async () => {
    await agent?.stop();
    for (const p of upstreams) p.kill();
  });

  it('a name outside the domain gets the first recursor\'s answer (or NXDOMAIN) as it gave it, over UDP and TCP', async () => {
    const port = agent.dns!.udp.port;
    for (const transport of ['+notcp', '+tcp']) {
      const r = await dig(port, 'www.first.example', 'A', transport);
      assert.equal(r.status, 'NOERROR', r.raw);
      assert.deepEqual(r.answer.map((a) => [a.name, a.type, a.data]), [['www.first.example.', 'A', '192.0.2.1']]);
      assert.ok(r.flags.includes('ra'), `RA set: ${r.flags.join(' ')}`);
      assert.equal(r.server, transport === '+tcp' ? 'TCP' : 'UDP');
    }
    // The first upstream refuses second.example (it knows only first.example and has no upstream): the next one is asked.
    const second = await dig(port, 'x.second.example', 'A');
    assert.deepEqual(second.answer.map((a) => a.data), ['192.0.2.2'], second.raw);
    // Refused by both: SERVFAIL, as Consul answers when every recursor failed.
    const neither = await dig(port, 'x.third.example', 'A');
    assert.equal(neither.status, 'SERVFAIL', neither.raw);
  });

  it('the agent\'s own names are still its own, and say RA too', async () => {
    const r = await dig(agent.dns!.udp.port, 'db.service.consul', 'A');
    assert.equal(r.status, 'NOERROR', r.raw);
    assert.deepEqual(r.answer.map((a) => a.data), ['10.0.0.5']);
    assert.ok(r.flags.includes('aa') && r.flags.includes('ra'), r.flags.join(' '));
  });

  it('no recursor answering is SERVFAIL for the question asked', async () => {
    const lonely = await startTestAgent({ 'dns-addr': '127.0.0.1:0', 'dns-recursors': [`127.0.0.1:${dead}`], 'dns-recursor-timeout': '200ms' }, tempDir());
    try {
      const r = await dig(lonely.dns!.udp.port, 'www.first.example', 'A');
      assert.equal(r.status, 'SERVFAIL', r.raw);
      assert.match(r.raw, /;www\.first\.example\.\s+IN\s+A/);
      // Without recursors an unknown name is refused, as before.
      const plain = await startTestAgent({ 'dns-addr': '127.0.0.1:0' }, tempDir());
      try {
        const refused = await dig(plain.dns!.udp.port, 'www.first.example', 'A');
        assert.equal(refused.status, 'REFUSED');
        assert.ok(!refused.flags.includes('ra'));
      } finally {
        await plain.stop();
      }
    } finally {
      await lonely.stop();
    }
  });

  it('a recursor that is not an IP address is refused at start, naming the flag', async () => {
    const p = switchyard(['agent', '--http-addr', '127.0.0.1:0', '--data-dir', tempDir(), '--dns-addr', '127.0.0.1:0', '--dns-recursors', 'dns.example.com']);
    const { code } = await p.exited;
    assert.equal(code, 2, p.stderr());
    assert.match(p.stderr(), /dns-recursors.*must be an IP address with an optional port/s);
  });
});
