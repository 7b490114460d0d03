// IDs that can be registered can be addressed again: unusual but URL-addressable IDs round-trip through deregister and TTL updates.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { http, startTestAgent } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

describe('service and check IDs that are accepted stay addressable', () => {
  let agent: TestAgent;
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent?.stop();
  });

  const ids = ['with space', 'a/b/c', 'q?x=1#frag', '100%', 'tab-free ünïcödé 😀', `long-${'x'.repeat(2000)}`, 'é'.repeat(1300)];
  for (const id of ids) {
    it(`registers, passes and deregisters ${JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…` : id)}`, async () => {
      const reg = await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'odd', ID: id, Port: 1, Check: { CheckID: `chk-${id}`, TTL: '1h' } });
      assert.equal(reg.status, 200, reg.text);
      const pass = await http(agent.url, 'PUT', `/v1/agent/check/pass/${encodeURIComponent(`chk-${id}`)}`);
      assert.equal(pass.status, 200, pass.text);
      const svc = await http(agent.url, 'GET', `/v1/agent/service/${encodeURIComponent(id)}`);
      assert.equal(svc.status, 200, svc.text);
      assert.equal((svc.json as { ID: string }).ID, id);
      const dereg = await http(agent.url, 'PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
      assert.equal(dereg.status, 200, dereg.text);
      assert.deepEqual(await http(agent.url, 'GET', '/v1/agent/services').then((r) => Object.keys(r.json as object)), []);
    });
  }
});
