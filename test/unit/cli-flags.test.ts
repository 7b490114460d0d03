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

  it('--register-as alone means the default name', () => {
    assert.equal(registerAsFlag(true), 'switchyard-lb');
    assert.equal(registerAsFlag('edge'), 'edge');
    assert.equal(registerAsFlag(undefined), undefined);
  });
});
