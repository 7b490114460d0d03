// Commander's flags to config-schema input: one mapping for every subcommand.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { flagsToConfig, registerAsFlag } from '../../src/cli/flags.js';
import { agentConfigSchema, resolveAgentConfig } from '../../src/config/agent.js';
import { lbConfigSchema } from '../../src/config/lb.js';

describe('flagsToConfig', () => {
  it('maps camelCase flags to kebab-case keys, numbers to numbers, and leaves out what was not given', () => {
    const c = flagsToConfig(agentConfigSchema, { httpAddr: '127.0.0.1:1', dnsUdpMaxSize: '4096', sessionTtlMin: '30s', dataDir: undefined });
    assert.deepEqual(c, { 'http-addr': '127.0.0.1:1', 'dns-udp-max-size': 4096, 'session-ttl-min': '30s' });
    assert.deepEqual(flagsToConfig(lbConfigSchema, { workers: '2', dataPlane: 'node', accessLog: true }), { workers: 2, 'data-plane': 'node', 'access-log': true });
  });

  it('takes only the keys asked for (up splits one flag set between two schemas)', () => {
    const flags = { listen: '127.0.0.1:9080', httpAddr: '127.0.0.1:8500', advertiseAddr: '10.0.0.1' };
    assert.deepEqual(flagsToConfig(lbConfigSchema, flags, ['listen', 'advertise-addr']), { listen: '127.0.0.1:9080', 'advertise-addr': '10.0.0.1' });
    assert.deepEqual(flagsToConfig(agentConfigSchema, flags, ['http-addr']), { 'http-addr': '127.0.0.1:8500' });
  });

  it('refuses a bad flag through the schema, naming the key', () => {
    assert.throws(() => flagsToConfig(lbConfigSchema, { workers: 'many' }), (e: Error) => /workers/.test(JSON.stringify(e)));
    assert.deepEqual(flagsToConfig(lbConfigSchema, { acceptBatch: '4' }), { 'accept-batch': 4 });
    for (const bad of ['0', '257', '1.5', 'lots']) {
      assert.throws(() => flagsToConfig(lbConfigSchema, { acceptBatch: bad }), (e: Error) => /accept-batch/.test(JSON.stringify(e)), `--accept-batch ${bad}`);
    }
    assert.throws(() => flagsToConfig(agentConfigSchema, { dnsUdpMaxSize: '100' }), (e: Error) => /dns-udp-max-size/.test(JSON.stringify(e)));
  });

  it('--heap-growth takes a whole percent from 0 to 400, default 30', () => {
    assert.equal(resolveAgentConfig({}, flagsToConfig(agentConfigSchema, { heapGrowth: '25' })).heapGrowthPercent, 25);
    assert.equal(resolveAgentConfig({}, {}).heapGrowthPercent, 30);
    assert.equal(resolveAgentConfig({ 'heap-growth': 0 }, {}).heapGrowthPercent, 0);
    for (const bad of ['-1', '401', '2.5', 'lots']) {
      assert.throws(() => flagsToConfig(agentConfigSchema, { heapGrowth: bad }), (e: Error) => /heap-growth/.test(JSON.stringify(e)), bad);
    }
  });

  it('--http-max-conns-per-client: default 200, 0 for none, loopback exempt unless the config file lists other addresses', () => {
    assert.equal(resolveAgentConfig({}, {}).httpMaxConnsPerClient, 200);
    assert.deepEqual(resolveAgentConfig({}, {}).httpMaxConnsExempt, ['127.0.0.0/8', '::1']);
    assert.equal(resolveAgentConfig({}, flagsToConfig(agentConfigSchema, { httpMaxConnsPerClient: '0' })).httpMaxConnsPerClient, 0);
    assert.deepEqual(resolveAgentConfig({ 'http-max-conns-exempt': ['10.0.0.0/8'] }, {}).httpMaxConnsExempt, ['10.0.0.0/8']);
    for (const bad of ['-1', '2.5', 'many']) {
      assert.throws(() => flagsToConfig(agentConfigSchema, { httpMaxConnsPerClient: bad }), (e: Error) => /http-max-conns-per-client/.test(JSON.stringify(e)), bad);
    }
    const r = agentConfigSchema.safeParse({ 'http-max-conns-exempt': ['10.0.0.0/33'] });
    assert.equal(r.success, false);
    assert.match(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? '', /^http-max-conns-exempt\.0: must be an IP address or a CIDR block/);
  });

  it('--register-as alone means the default name', () => {
    assert.equal(registerAsFlag(true), 'switchyard-lb');
    assert.equal(registerAsFlag('edge'), 'edge');
    assert.equal(registerAsFlag(undefined), undefined);
  });
});
