// DNS TTLs in the agent's and up's configs: Consul's dns_config durations ("10s", "1m") and bare seconds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { agentDnsKeys, dnsConfigSchema } from '../../src/config/dns.js';

describe('DNS TTL settings', () => {
  it('take Go durations as Consul does, truncated to whole seconds, and bare seconds', () => {
    const parsed = dnsConfigSchema.parse({ 'node-ttl': '1m', 'service-ttl': { web: '30s', 'api*': '1500ms', db: 7, '*': '0' } });
    assert.equal(parsed['node-ttl'], 60);
    assert.deepEqual(parsed['service-ttl'], { web: 30, 'api*': 1, db: 7, '*': 0 });
    assert.equal(z.strictObject(agentDnsKeys).parse({ 'dns-node-ttl': '7' })['dns-node-ttl'], 7, 'the flag gives a string of digits');
    assert.equal(dnsConfigSchema.parse({ 'node-ttl': '1h30m' })['node-ttl'], 5400);
  });

  it('refuses what is not a TTL, naming the key', () => {
    for (const bad of [-1, 1.5, '-1s', '10x', '', 'ten', '1e3', 2 ** 31, `${2 ** 31}s`]) {
      const r = dnsConfigSchema.safeParse({ 'node-ttl': bad });
      assert.equal(r.success, false, `node-ttl ${JSON.stringify(bad)} was accepted`);
      assert.deepEqual(r.error?.issues[0]?.path, ['node-ttl']);
      assert.match(r.error?.issues[0]?.message ?? '', /duration such as "10s"/);
    }
    const r = dnsConfigSchema.safeParse({ 'service-ttl': { web: '5 s' } });
    assert.deepEqual(r.error?.issues[0]?.path, ['service-ttl', 'web']);
  });
});
