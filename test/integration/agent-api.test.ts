// The Consul API behaviours real clients depend on (compat-spec §8), against a real agent on port 0.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAgent, http, waitParked } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

describe('agent API (Consul compatibility)', () => {
  let a: TestAgent;
  let u: string;
  before(async () => {
    a = await startTestAgent();
    u = a.url;
  });
  after(async () => {
    await a.stop();
  });

  it('registers a service and lists it with defaults filled in', async () => {
    const r = await http(u, 'PUT', '/v1/agent/service/register', { Name: 'web', Port: 8080, Tags: ['v1'] });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    const s = await http(u, 'GET', '/v1/agent/services');
    const web = (s.json as Record<string, Record<string, unknown>>).web;
    assert.ok(web);
    assert.equal(web.ID, 'web');
    assert.equal(web.Service, 'web');
    assert.deepEqual(web.Tags, ['v1']);
    assert.equal(web.Port, 8080);
    assert.equal(web.Address, '');
    assert.equal(web.EnableTagOverride, false);
    assert.deepEqual(web.Meta, {});
    assert.deepEqual(web.Weights, { Passing: 1, Warning: 1 });
    assert.equal(s.headers.get('content-type'), 'application/json');
    assert.ok(!s.text.endsWith('\n'), 'compact JSON has no trailing newline');
  });

  it('accepts lower-case keys (python-consul) and names embedded checks like Consul', async () => {
    const r = await http(u, 'PUT', '/v1/agent/service/register', { name: 'api', id: 'api-1', port: 9000, tags: ['a'], check: { ttl: '30s' } });
    assert.equal(r.status, 200, r.text);
    const checks = (await http(u, 'GET', '/v1/agent/checks')).json as Record<string, Record<string, unknown>>;
    const c = checks['service:api-1'];
    assert.ok(c, 'check service:api-1 exists');
    assert.equal(c.Name, "Service 'api' check");
    assert.equal(c.Status, 'critical');
    assert.equal(c.ServiceID, 'api-1');
    assert.equal(c.ServiceName, 'api');
    assert.deepEqual(c.ServiceTags, ['a']);
  });

  it('numbers several checks service:<id>:<n>', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'multi', Checks: [{ TTL: '30s' }, { TTL: '30s' }] });
    const checks = (await http(u, 'GET', '/v1/agent/checks')).json as Record<string, unknown>;
    assert.ok(checks['service:multi:1']);
    assert.ok(checks['service:multi:2']);
    await http(u, 'PUT', '/v1/agent/service/deregister/multi');
  });

  it('uses Consul\'s validation texts and method enforcement', async () => {
    const r = await http(u, 'PUT', '/v1/agent/service/register', { Port: 1 });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'Missing service name');
    const m = await http(u, 'GET', '/v1/agent/service/register');
    assert.equal(m.status, 405);
    assert.equal(m.text, 'method GET not allowed');
    assert.equal(m.headers.get('allow'), 'OPTIONS,PUT');
  });

  it('follows the TTL lifecycle and the ?passing filter', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'ttlweb', Check: { TTL: '10s' } });
    const all = (await http(u, 'GET', '/v1/health/service/ttlweb')).json as { Checks: { CheckID: string; Status: string }[] }[];
    assert.equal(all.length, 1);
    const ids = all[0]!.Checks.map((c) => `${c.CheckID}=${c.Status}`).sort();
    assert.deepEqual(ids, ['serfHealth=passing', 'service:ttlweb=critical']);
    assert.deepEqual((await http(u, 'GET', '/v1/health/service/ttlweb?passing=1')).json, []);
    assert.equal((await http(u, 'PUT', '/v1/agent/check/pass/service:ttlweb?note=ok')).status, 200);
    const pass = (await http(u, 'GET', '/v1/health/service/ttlweb?passing')).json as { Checks: { CheckID: string; Status: string; Output: string }[] }[];
    assert.equal(pass.length, 1);
    const svcCheck = pass[0]!.Checks.find((c) => c.CheckID === 'service:ttlweb');
    assert.equal(svcCheck?.Status, 'passing');
    assert.equal(svcCheck?.Output, 'ok');
    await http(u, 'PUT', '/v1/agent/check/fail/service:ttlweb');
    assert.equal(((await http(u, 'GET', '/v1/health/service/ttlweb?passing=false')).json as unknown[]).length, 1);
    const bad = await http(u, 'GET', '/v1/health/service/ttlweb?passing=maybe');
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'Invalid value for ?passing');
  });

  it('check/update sets status and output, truncating long output Consul-style', async () => {
    await http(u, 'PUT', '/v1/agent/check/register', { Name: 'upd', TTL: '30s' });
    const long = 'x'.repeat(5000);
    assert.equal((await http(u, 'PUT', '/v1/agent/check/update/upd', { Status: 'warning', Output: long })).status, 200);
    const c = ((await http(u, 'GET', '/v1/agent/checks')).json as Record<string, { Status: string; Output: string }>).upd!;
    assert.equal(c.Status, 'warning');
    assert.ok(c.Output.startsWith('x'.repeat(4096)));
    assert.match(c.Output, / \.\.\. \(captured 4096 of 5000 bytes\)$/);
    const bad = await http(u, 'PUT', '/v1/agent/check/update/upd', { Status: 'bogus' });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, "Invalid check status: 'bogus'");
    // A node-level check that is not passing would take every service on the node out of ?passing.
    await http(u, 'PUT', '/v1/agent/check/deregister/upd');
  });

  it('answers unknown TTL targets with 404 and non-TTL checks with Consul\'s 500 text', async () => {
    const r = await http(u, 'PUT', '/v1/agent/check/pass/nope');
    assert.equal(r.status, 404);
    await http(u, 'PUT', '/v1/agent/check/register', { Name: 'tcpc', TCP: '127.0.0.1:1', Interval: '30s' });
    const t = await http(u, 'PUT', '/v1/agent/check/pass/tcpc');
    assert.equal(t.status, 500);
    assert.equal(t.text, 'CheckID "tcpc" does not have associated TTL');
    await http(u, 'PUT', '/v1/agent/check/deregister/tcpc');
  });

  it('index 0 never blocks and every read carries index headers ≥ 1', async () => {
    const t0 = Date.now();
    const r = await http(u, 'GET', '/v1/health/service/web?index=0&wait=30s');
    assert.ok(Date.now() - t0 < 1000);
    assert.ok(Number(r.headers.get('x-consul-index')) >= 1);
    assert.equal(r.headers.get('x-consul-knownleader'), 'true');
    assert.equal(r.headers.get('x-consul-lastcontact'), '0');
    const unknown = await http(u, 'GET', '/v1/catalog/service/nope');
    assert.deepEqual(unknown.json, []);
    assert.ok(Number(unknown.headers.get('x-consul-index')) >= 1);
  });

  it('a blocking query that times out answers 200 with the same index, within wait + wait/16', async () => {
    const first = await http(u, 'GET', '/v1/health/service/web');
    const idx = first.headers.get('x-consul-index');
    const t0 = Date.now();
    const r = await http(u, 'GET', `/v1/health/service/web?index=${idx}&wait=1s`);
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-consul-index'), idx);
    assert.deepEqual(r.json, first.json);
    assert.ok(took >= 990 && took < 1300, `took ${took} ms`);
  });

  it('a blocking query wakes when its service changes', async () => {
    const first = await http(u, 'GET', '/v1/catalog/service/web');
    const idx = Number(first.headers.get('x-consul-index'));
    const parked = a.view.waiterCount();
    const t0 = Date.now();
    const pending = http(u, 'GET', `/v1/catalog/service/web?index=${idx}&wait=30s`);
    await waitParked(a, parked, 'the catalog watch of web');
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'web2', Port: 8081, Tags: ['v2'] });
    const r = await pending;
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(Number(r.headers.get('x-consul-index')) > idx);
    assert.equal((r.json as unknown[]).length, 2);
  });

  it('serves the catalog views with case-insensitive tag filters', async () => {
    const svcs = (await http(u, 'GET', '/v1/catalog/services')).json as Record<string, string[]>;
    assert.deepEqual([...(svcs.web ?? [])].sort(), ['v1', 'v2']);
    assert.ok('consul' in svcs);
    const v1 = (await http(u, 'GET', '/v1/catalog/service/web?tag=V1')).json as Record<string, unknown>[];
    assert.equal(v1.length, 1);
    const e = v1[0]!;
    assert.equal(e.ServiceID, 'web');
    assert.equal(e.ServiceName, 'web');
    assert.deepEqual(e.ServiceTags, ['v1']);
    assert.equal(e.ServicePort, 8080);
    assert.equal(e.ServiceAddress, '');
    assert.equal(e.Node, 'n1');
    assert.equal(e.Address, '127.0.0.1');
    assert.ok(Number(e.CreateIndex) > 0 && Number(e.ModifyIndex) >= Number(e.CreateIndex));
    assert.equal((await http(u, 'GET', '/v1/catalog/node/nope')).text, 'null');
    const node = (await http(u, 'GET', '/v1/catalog/node/n1')).json as { Node: { Node: string }; Services: Record<string, unknown> };
    assert.equal(node.Node.Node, 'n1');
    assert.ok(node.Services.web && node.Services.web2);
    const two = (await http(u, 'GET', '/v1/health/service/web?tag=v1&tag=v2')).json as unknown[];
    assert.equal(two.length, 0, 'repeated ?tag= means AND');
  });

  it('applies ?filter= to list endpoints', async () => {
    const r = (await http(u, 'GET', `/v1/health/service/web?filter=${encodeURIComponent('Service.Tags contains "v2"')}`)).json as { Service: { ID: string } }[];
    assert.deepEqual(r.map((e) => e.Service.ID), ['web2']);
    const agent = (await http(u, 'GET', `/v1/agent/services?filter=${encodeURIComponent('Port == 8081')}`)).json as Record<string, unknown>;
    assert.deepEqual(Object.keys(agent), ['web2']);
    // The service list filters instances (ServiceNode selectors), then lists names with the union of their tags.
    const v2 = (await http(u, 'GET', `/v1/catalog/services?filter=${encodeURIComponent('ServiceTags contains "v2"')}`)).json;
    assert.deepEqual(v2, { web: ['v2'] }, 'only the v2 instance is left, and only its tags');
    const onN1 = (await http(u, 'GET', `/v1/catalog/services?filter=${encodeURIComponent('Node == "n1" and ServiceName == "web"')}`)).json as Record<string, string[]>;
    assert.deepEqual(Object.keys(onN1), ['web']);
    assert.deepEqual([...(onN1.web ?? [])].sort(), ['v1', 'v2']);
    const bad = await http(u, 'GET', `/v1/catalog/service/web?filter=${encodeURIComponent('Service.Tags contains')}`);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /^Failed to create boolean expression evaluator: /);
  });

  it('deregisters a service with its checks; a second deregister is a 404', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'gone', Check: { TTL: '10s' } });
    assert.equal((await http(u, 'PUT', '/v1/agent/service/deregister/gone')).status, 200);
    assert.deepEqual((await http(u, 'GET', '/v1/health/service/gone')).json, []);
    assert.ok(!('service:gone' in ((await http(u, 'GET', '/v1/agent/checks')).json as object)));
    const again = await http(u, 'PUT', '/v1/agent/service/deregister/gone');
    assert.equal(again.status, 404);
    assert.equal(again.text, 'Unknown service ID "gone". Ensure that the service ID is passed, not the service name.');
  });

  it('service and node maintenance hide instances from ?passing', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'mnt', Check: { TTL: '30s', Status: 'passing' } });
    assert.equal(((await http(u, 'GET', '/v1/health/service/mnt?passing')).json as unknown[]).length, 1);
    assert.equal((await http(u, 'PUT', '/v1/agent/service/maintenance/mnt?enable=true&reason=deploy')).status, 200);
    const checks = (await http(u, 'GET', '/v1/health/checks/mnt')).json as Record<string, string>[];
    const m = checks.find((c) => c.CheckID === '_service_maintenance:mnt');
    assert.equal(m?.Name, 'Service Maintenance Mode');
    assert.equal(m?.Status, 'critical');
    assert.equal(m?.Notes, 'deploy');
    assert.deepEqual((await http(u, 'GET', '/v1/health/service/mnt?passing')).json, []);
    const agg = await http(u, 'GET', '/v1/agent/health/service/id/mnt?format=text');
    assert.equal(agg.status, 503);
    assert.equal(agg.text, 'maintenance');
    await http(u, 'PUT', '/v1/agent/service/maintenance/mnt?enable=false');
    assert.equal(((await http(u, 'GET', '/v1/health/service/mnt?passing')).json as unknown[]).length, 1);
    await http(u, 'PUT', '/v1/agent/maintenance?enable=true');
    assert.deepEqual((await http(u, 'GET', '/v1/health/service/mnt?passing')).json, []);
    await http(u, 'PUT', '/v1/agent/maintenance?enable=false');
    assert.equal(((await http(u, 'GET', '/v1/health/service/mnt?passing')).json as unknown[]).length, 1);
    const bad = await http(u, 'PUT', '/v1/agent/service/maintenance/mnt?enable=maybe');
    assert.equal(bad.text, 'Invalid value for enable: "maybe"');
    assert.equal((await http(u, 'PUT', '/v1/agent/service/maintenance/unknown?enable=true')).status, 404);
  });

  it('re-registering keeps the status of surviving checks (no flapping on resync)', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'resync', Check: { TTL: '30s' } });
    await http(u, 'PUT', '/v1/agent/check/pass/service:resync');
    const before = await http(u, 'GET', '/v1/health/service/resync');
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'resync', Check: { TTL: '30s' } });
    const afterR = await http(u, 'GET', '/v1/health/service/resync?passing');
    assert.equal((afterR.json as unknown[]).length, 1);
    assert.equal(afterR.headers.get('x-consul-index'), before.headers.get('x-consul-index'), 'identical re-registration writes nothing');
  });

  it('replace-existing-checks drops checks missing from the request', async () => {
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'rep', Checks: [{ CheckID: 'a', TTL: '30s' }, { CheckID: 'b', TTL: '30s' }] });
    await http(u, 'PUT', '/v1/agent/service/register', { Name: 'rep', Checks: [{ CheckID: 'a', TTL: '30s' }] });
    let ids = ((await http(u, 'GET', '/v1/health/checks/rep')).json as { CheckID: string }[]).map((c) => c.CheckID).sort();
    assert.deepEqual(ids, ['a', 'b']);
    await http(u, 'PUT', '/v1/agent/service/register?replace-existing-checks', { Name: 'rep', Checks: [{ CheckID: 'a', TTL: '30s' }] });
    ids = ((await http(u, 'GET', '/v1/health/checks/rep')).json as { CheckID: string }[]).map((c) => c.CheckID).sort();
    assert.deepEqual(ids, ['a']);
  });

  it('catalog register/deregister work for external nodes', async () => {
    const r = await http(u, 'PUT', '/v1/catalog/register', {
      Node: 'ext1', Address: '10.9.9.9', Service: { Service: 'db', Port: 5432, Tags: ['primary'] },
      Check: { CheckID: 'db-check', Name: 'db', Status: 'passing', ServiceID: 'db', Output: 'replica lag 0s' },
    });
    assert.equal(r.text, 'true');
    const h = (await http(u, 'GET', '/v1/health/service/db?passing')).json as { Node: { Node: string; Address: string }; Checks: { Output: string }[] }[];
    assert.equal(h.length, 1);
    assert.equal(h[0]!.Node.Address, '10.9.9.9');
    // An external monitor (consul-esm and the like) reports through the catalog: its output is kept.
    assert.equal(h[0]!.Checks[0]?.Output, 'replica lag 0s');
    const nodes = ((await http(u, 'GET', '/v1/catalog/nodes')).json as { Node: string }[]).map((n) => n.Node);
    assert.deepEqual(nodes, ['ext1', 'n1']);
    // Consul 1.7+'s list form, filterable and blocking like catalog/node; Consul's nulls for nothing.
    const ns = await http(u, 'GET', '/v1/catalog/node-services/ext1');
    const body = ns.json as { Node: { Node: string; Address: string }; Services: { ID: string; Service: string; Port: number; Tags: string[] }[] };
    assert.deepEqual([body.Node.Node, body.Node.Address], ['ext1', '10.9.9.9']);
    assert.deepEqual(body.Services.map((x) => [x.ID, x.Service, x.Port, x.Tags]), [['db', 'db', 5432, ['primary']]]);
    assert.equal(ns.headers.get('x-consul-index'), (await http(u, 'GET', '/v1/catalog/node/ext1')).headers.get('x-consul-index'));
    assert.deepEqual((await http(u, 'GET', `/v1/catalog/node-services/ext1?filter=${encodeURIComponent('Port == 1')}`)).json, { ...body, Services: [] });
    assert.deepEqual((await http(u, 'GET', '/v1/catalog/node-services/nope')).json, { Node: null, Services: null });
    assert.equal((await http(u, 'GET', '/v1/catalog/node-services/')).status, 400);
    assert.equal((await http(u, 'PUT', '/v1/catalog/deregister', { Node: 'ext1' })).text, 'true');
    assert.deepEqual((await http(u, 'GET', '/v1/health/service/db')).json, []);
    assert.equal((await http(u, 'GET', '/v1/catalog/node/ext1')).text, 'null');
  });

  it('names that Object.prototype has (__proto__, constructor) are listed like any other', async () => {
    // Consul accepts these names. Keyed by them, a plain JavaScript object would lose `__proto__`
    // (assigning it sets the prototype) and the service would vanish from every listing by name.
    const names = ['__proto__', 'constructor', 'hasOwnProperty'];
    for (const n of names) {
      assert.equal((await http(u, 'PUT', '/v1/agent/service/register', { Name: n, ID: n, Port: 80, Tags: [n] })).status, 200);
      assert.equal((await http(u, 'PUT', '/v1/agent/check/register', { Name: n, CheckID: n, TTL: '30s' })).status, 200);
      assert.equal((await http(u, 'PUT', '/v1/catalog/register', { Node: n, Address: '10.0.0.1', Service: { ID: n, Service: n, Port: 81 } })).status, 200);
    }
    const own = (o: unknown, k: string): boolean => typeof o === 'object' && o !== null && Object.hasOwn(o, k);
    const services = (await http(u, 'GET', '/v1/catalog/services')).json;
    const agentServices = (await http(u, 'GET', '/v1/agent/services')).json as Record<string, { ID: string }>;
    const agentChecks = (await http(u, 'GET', '/v1/agent/checks')).json as Record<string, { CheckID: string }>;
    const filtered = (await http(u, 'GET', `/v1/catalog/services?filter=${encodeURIComponent('ServiceTags contains "__proto__"')}`)).json;
    for (const n of names) {
      assert.ok(own(services, n), `catalog/services lists ${n}`);
      assert.deepEqual((services as Record<string, string[]>)[n], [n]);
      assert.ok(own(agentServices, n) && agentServices[n]?.ID === n, `agent/services lists ${n}`);
      assert.ok(own(agentChecks, n) && agentChecks[n]?.CheckID === n, `agent/checks lists ${n}`);
      const node = (await http(u, 'GET', `/v1/catalog/node/${encodeURIComponent(n)}`)).json as { Services: unknown };
      assert.ok(own(node.Services, n), `catalog/node/${n} lists its service`);
    }
    assert.deepEqual(Object.keys(filtered as object), ['__proto__']);
    for (const n of names) {
      await http(u, 'PUT', `/v1/agent/service/deregister/${encodeURIComponent(n)}`);
      await http(u, 'PUT', `/v1/agent/check/deregister/${encodeURIComponent(n)}`);
      await http(u, 'PUT', '/v1/catalog/deregister', { Node: n });
    }
  });

  it('KV: round trip, raw, URL-encoded keys, 404 with index headers', async () => {
    assert.equal((await http(u, 'PUT', '/v1/kv/app/cfg', 'hello')).text, 'true');
    const g = await http(u, 'GET', '/v1/kv/app/cfg');
    const e = (g.json as Record<string, unknown>[])[0]!;
    assert.equal(e.Key, 'app/cfg');
    assert.equal(e.Value, 'aGVsbG8=');
    assert.equal(e.Flags, 0);
    assert.equal(e.LockIndex, 0);
    assert.equal(e.CreateIndex, e.ModifyIndex);
    assert.equal(String(e.ModifyIndex), g.headers.get('x-consul-index'));
    const raw = await http(u, 'GET', '/v1/kv/app/cfg?raw');
    assert.equal(raw.text, 'hello');
    assert.equal(raw.headers.get('content-type'), 'text/plain');
    assert.deepEqual((await http(u, 'GET', '/v1/kv/app%2Fcfg')).json, g.json);
    const miss = await http(u, 'GET', '/v1/kv/missing');
    assert.equal(miss.status, 404);
    assert.equal(miss.text, '');
    assert.ok(Number(miss.headers.get('x-consul-index')) >= 1);
    await http(u, 'PUT', '/v1/kv/empty', '');
    assert.equal(((await http(u, 'GET', '/v1/kv/empty')).json as { Value: unknown }[])[0]!.Value, null);
  });

  it('KV: cas and flags', async () => {
    assert.equal((await http(u, 'PUT', '/v1/kv/k?cas=0', 'a')).text, 'true');
    assert.equal((await http(u, 'PUT', '/v1/kv/k?cas=0', 'b')).text, 'false');
    const mi = ((await http(u, 'GET', '/v1/kv/k')).json as { ModifyIndex: number }[])[0]!.ModifyIndex;
    assert.equal((await http(u, 'PUT', `/v1/kv/k?cas=${mi}&flags=42`, 'c')).text, 'true');
    const e = ((await http(u, 'GET', '/v1/kv/k')).json as { Flags: number; Value: string }[])[0]!;
    assert.equal(e.Flags, 42);
    assert.equal(Buffer.from(e.Value, 'base64').toString(), 'c');
    assert.equal((await http(u, 'DELETE', '/v1/kv/k?cas=1')).text, 'false');
    assert.equal((await http(u, 'DELETE', '/v1/kv/k')).text, 'true');
    const conflict = await http(u, 'PUT', '/v1/kv/k?cas=1&acquire=s');
    assert.equal(conflict.status, 400);
    assert.match(conflict.text, /^Conflicting flags: /);
    await http(u, 'PUT', '/v1/kv/big?flags=18446744073709551615', 'x');
    const big = await http(u, 'GET', '/v1/kv/big');
    assert.match(big.text, /"Flags":18446744073709551615[,}]/);
  });

  it('KV: keys, separator and recurse', async () => {
    for (const k of ['web/bar', 'web/foo', 'web/sub/x']) await http(u, 'PUT', `/v1/kv/${k}`, 'v');
    assert.deepEqual((await http(u, 'GET', '/v1/kv/web/?keys&separator=/')).json, ['web/bar', 'web/foo', 'web/sub/']);
    const rec = (await http(u, 'GET', '/v1/kv/web?recurse')).json as { Key: string }[];
    assert.deepEqual(rec.map((e) => e.Key), ['web/bar', 'web/foo', 'web/sub/x']);
    assert.equal((await http(u, 'DELETE', '/v1/kv/web?recurse')).text, 'true');
    assert.equal((await http(u, 'GET', '/v1/kv/web?recurse')).status, 404);
    assert.equal((await http(u, 'GET', '/v1/kv/nothing-here/?keys')).status, 404);
  });

  it('KV: a recurse watcher wakes on a delete under its prefix', async () => {
    await http(u, 'PUT', '/v1/kv/w/a', '1');
    const r0 = await http(u, 'GET', '/v1/kv/w/?recurse');
    const idx = Number(r0.headers.get('x-consul-index'));
    const parked = a.view.waiterCount();
    const pending = http(u, 'GET', `/v1/kv/w/?recurse&index=${idx}&wait=10s`);
    await waitParked(a, parked, 'the recurse watch of w/');
    await http(u, 'DELETE', '/v1/kv/w/a');
    const r = await pending;
    assert.equal(r.status, 404);
    assert.ok(Number(r.headers.get('x-consul-index')) > idx);
  });

  it('status, self, members and datacenters', async () => {
    assert.equal((await http(u, 'GET', '/v1/status/leader')).json, '127.0.0.1:8300');
    assert.deepEqual((await http(u, 'GET', '/v1/status/peers')).json, ['127.0.0.1:8300']);
    const self = (await http(u, 'GET', '/v1/agent/self')).json as { Config: { Datacenter: string; NodeName: string } };
    assert.equal(self.Config.Datacenter, 'dc1');
    assert.equal(self.Config.NodeName, 'n1');
    assert.equal(((await http(u, 'GET', '/v1/agent/members')).json as unknown[]).length, 1);
    assert.deepEqual((await http(u, 'GET', '/v1/catalog/datacenters')).json, ['dc1']);
    const pretty = await http(u, 'GET', '/v1/catalog/datacenters?pretty');
    assert.equal(pretty.text, '[\n    "dc1"\n]\n');
  });

  it('?near puts the near node\'s entries first (_agent: the agent\'s own) on catalog/nodes, catalog/service and health/service; without it the order is as before', async () => {
    for (const [node, id] of [['near-a', 'nr-a'], ['near-b', 'nr-b'], ['near-c', 'nr-c']] as const) {
      assert.equal((await http(u, 'PUT', '/v1/catalog/register', { Node: node, Address: `10.8.0.${node.charCodeAt(5) - 96}`, Service: { ID: id, Service: 'nearby', Port: 80 } })).status, 200);
    }
    assert.equal((await http(u, 'PUT', '/v1/agent/service/register', { Name: 'nearby', ID: 'nr-own', Port: 81 })).status, 200);
    const nodesOf = async (path: string): Promise<string[]> => ((await http(u, 'GET', path)).json as { Node: string | { Node: string } }[]).map((e) => (typeof e.Node === 'string' ? e.Node : e.Node.Node));
    const plain = await nodesOf('/v1/catalog/service/nearby');
    assert.deepEqual([...plain].sort(), ['n1', 'near-a', 'near-b', 'near-c']);
    const first = (n: string): string[] => [n, ...plain.filter((x) => x !== n)];
    assert.deepEqual(await nodesOf('/v1/catalog/service/nearby?near=near-c'), first('near-c'));
    assert.deepEqual(await nodesOf('/v1/health/service/nearby?near=_agent'), first('n1'));
    assert.deepEqual(await nodesOf('/v1/health/service/nearby?near=near-b&passing'), first('near-b'));
    assert.deepEqual(await nodesOf('/v1/health/service/nearby?near=nobody'), plain);
    const nodes = await nodesOf('/v1/catalog/nodes');
    assert.deepEqual(await nodesOf('/v1/catalog/nodes?near=near-b'), ['near-b', ...nodes.filter((n) => n !== 'near-b')]);
    // Answers are cached per query: the plain one is still the plain one.
    assert.deepEqual(await nodesOf('/v1/catalog/service/nearby'), plain);
    for (const n of ['near-a', 'near-b', 'near-c']) await http(u, 'PUT', '/v1/catalog/deregister', { Node: n });
    await http(u, 'PUT', '/v1/agent/service/deregister/nr-own');
  });

  it('gzips large responses when asked', async () => {
    const res = await fetch(`${u}/v1/health/service/web`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    const body = (await res.json()) as unknown[];
    assert.equal(body.length, 2);
  });
});

describe('agent API with --acl-token', () => {
  let a: TestAgent;
  before(async () => {
    a = await startTestAgent({ 'acl-token': 's3cret' });
  });
  after(async () => {
    await a.stop();
  });

  it('requires the token on every request, from header, bearer or query', async () => {
    // With a token required, "ACL support disabled" would be untrue: the ACL endpoints are simply not implemented.
    assert.equal((await http(a.url, 'GET', '/v1/acl/tokens')).status, 403);
    const acl = await http(a.url, 'GET', '/v1/acl/tokens', undefined, { 'X-Consul-Token': 's3cret' });
    assert.equal(acl.status, 501);
    assert.match(acl.text, /^GET \/v1\/acl\/tokens is a Consul API endpoint that Switchyard does not implement/);
    const denied = await http(a.url, 'GET', '/v1/agent/services');
    assert.equal(denied.status, 403);
    assert.equal(denied.text, 'Permission denied');
    assert.equal((await http(a.url, 'GET', '/v1/agent/services', undefined, { 'X-Consul-Token': 'wrong' })).status, 403);
    assert.equal((await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'x' })).status, 403);
    assert.deepEqual((await http(a.url, 'GET', '/v1/agent/services')).status, 403);
    assert.equal((await http(a.url, 'GET', '/v1/agent/services', undefined, { 'X-Consul-Token': 's3cret' })).status, 200);
    assert.equal((await http(a.url, 'GET', '/v1/agent/services', undefined, { Authorization: 'Bearer s3cret' })).status, 200);
    assert.equal((await http(a.url, 'GET', '/v1/agent/services?token=s3cret')).status, 200);
    const r = await http(a.url, 'PUT', '/v1/kv/x', 'y');
    assert.equal(r.status, 403);
    assert.equal((await http(a.url, 'GET', '/v1/kv/x?token=s3cret')).status, 404, 'the denied write changed nothing');
  });

  it('refuses a wrong token of the right length in every form, on the API and on the UI\'s live endpoint alike', async () => {
    for (const path of ['/v1/agent/services', '/ui/api/lb']) {
      for (const [headers, query] of [[{ 'X-Consul-Token': 's3creX' }, ''], [{ Authorization: 'Bearer s3creX' }, ''], [{}, '?token=s3creX']] as const) {
        const r = await http(a.url, 'GET', `${path}${query}`, undefined, { ...headers });
        assert.equal(r.status, 403, `${path}${query} ${JSON.stringify(headers)}`);
        assert.equal(r.text, 'Permission denied');
      }
      for (const [headers, query] of [[{ 'X-Consul-Token': 's3cret' }, ''], [{ Authorization: 'Bearer s3cret' }, ''], [{}, '?token=s3cret']] as const) {
        assert.equal((await http(a.url, 'GET', `${path}${query}`, undefined, { ...headers })).status, 200, `${path}${query} ${JSON.stringify(headers)}`);
      }
    }
  });
});
