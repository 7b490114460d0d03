// The agent's DNS options beyond the address (Consul's -domain and dns_config: node_ttl, service_ttl, only_passing,
// udp_answer_limit), from flags and from its config file, checked with dig; `switchyard up` refuses them in its agent:
// section (they would be ignored there: its DNS is configured in dns:).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { http, tempDir, waitFor } from '../helpers/agent.js';
import { dig, digSkip } from '../helpers/dig.js';
import { freePort, stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

describe('agent: DNS domain, TTLs, only-passing, answer limit', { skip: digSkip }, () => {
  const procs: Proc[] = [];
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await stop(p);
  });

  it('flags and config file keys shape the answers', async () => {
    const dir = tempDir('sy-dns-opts-');
    const [api, dns] = [await freePort(), await freePort()];
    const file = join(dir, 'agent.json');
    // Consul's dns_config takes durations; a bare number is seconds.
    writeFileSync(file, JSON.stringify({ 'dns-service-ttl': { web: '30s', '*': 5 }, 'dns-udp-answer-limit': 2 }));
    const p = switchyard(['agent', '--config', file, '--http-addr', `127.0.0.1:${api}`, '--data-dir', join(dir, 'data'), '--node', 'n1',
      '--dns-addr', `127.0.0.1:${dns}`, '--dns-domain', 'sy.example', '--dns-node-ttl', '7', '--dns-only-passing', '--log-level', 'warn']);
    procs.push(p);
    const url = `http://127.0.0.1:${api}`;
    await waitFor(async () => (await http(url, 'GET', '/v1/status/leader').catch(() => ({ status: 0 }))).status === 200, () => `the agent; stderr: ${p.stderr()}`, 20_000, 100);
    const reg = async (node: string, address: string, service: string, status: string): Promise<void> => {
      const r = await http(url, 'PUT', '/v1/catalog/register', {
        Node: node, Address: address, Service: { ID: `${service}-${node}`, Service: service, Port: 80 },
        Check: { CheckID: `c-${service}-${node}`, Name: 'c', Status: status, ServiceID: `${service}-${node}` },
      });
      assert.equal(r.status, 200, r.text);
    };
    for (let i = 1; i <= 4; i++) await reg(`w${i}`, `10.0.0.${i}`, 'web', 'passing');
    await reg('w5', '10.0.0.5', 'web', 'warning');
    await reg('a1', '10.0.1.1', 'api', 'passing');

    // Without EDNS (Consul applies udp_answer_limit to plain 512-byte UDP queries only), TC set, not retried.
    const web = await dig(dns, 'web.service.sy.example', 'A', '+noedns', '+ignore');
    assert.equal(web.status, 'NOERROR');
    assert.ok(web.flags.includes('aa') && web.flags.includes('tc'), web.raw);
    assert.equal(web.answer.length, 2, 'dns-udp-answer-limit: 2 over plain UDP');
    assert.ok(web.answer.every((r) => r.ttl === 30 && r.data !== '10.0.0.5'), JSON.stringify(web.answer));
    const tcp = await dig(dns, 'web.service.sy.example', 'A', '+tcp');
    assert.deepEqual(tcp.answer.map((r) => r.data).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], 'over TCP all, and --dns-only-passing leaves out the warning one');
    assert.deepEqual((await dig(dns, 'api.service.sy.example', 'A')).answer.map((r) => r.ttl), [5], 'the "*" service TTL');
    assert.deepEqual((await dig(dns, 'w1.node.sy.example', 'A')).answer.map((r) => [r.data, r.ttl]), [['10.0.0.1', 7]]);
    // The default domain is not answered any more (no recursors: refused).
    assert.equal((await dig(dns, 'web.service.consul', 'A')).status, 'REFUSED');
    process.kill(p.pid, 'SIGTERM');
    assert.equal((await p.exited).code, 0, p.stderr());
  });

  it('bad values are named; up refuses the agent\'s dns-* keys and points to dns:', async () => {
    const dir = tempDir('sy-dns-opts-bad-');
    const bad = switchyard(['agent', '--data-dir', join(dir, 'a'), '--dns-addr', '127.0.0.1:0', '--dns-node-ttl=-1']);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /dns-node-ttl/);
    const file = join(dir, 'up.json');
    writeFileSync(file, JSON.stringify({ agent: { 'dns-recursors': ['127.0.0.1:53'] } }));
    const up = switchyard(['up', '--config', file, '--data-dir', join(dir, 'u'), '--no-registrator']);
    const exit = await up.exited;
    assert.equal(exit.code, 2, up.stderr());
    assert.match(up.stderr(), /agent: unknown key "?dns-recursors"?|agent\.dns-recursors|dns-recursors: unknown key/);
  });
});
