// The npm `consul` client (silas/node-consul v2) against a real agent: agent registration with
// HTTP and TTL checks, TTL pass, health/catalog reads, KV, and blocking watches (health with
// ?passing, and KV on a key that does not exist yet, which relies on X-Consul-Index on the 404).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Consul from 'consul';
import { startTestAgent, waitFor, waitParked } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

/** An HTTP check target whose answer can be flipped; remembers when it first answered 2xx after a flip. */
class Backend {
  readonly server: Server;
  port = 0;
  status: number;
  hits = 0;
  /** Date.now() of the first 2xx answer since the last `setStatus`. */
  firstOkAt: number | undefined;

  constructor(status: number) {
    this.status = status;
    this.server = createServer((_req, res) => {
      this.hits += 1;
      const status = this.status;
      if (status >= 200 && status < 300 && this.firstOkAt === undefined) this.firstOkAt = Date.now();
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'down');
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  setStatus(status: number): void {
    this.status = status;
    this.firstOkAt = undefined;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface HealthEntry {
  Service: { ID: string; Service: string; Port: number; Tags: string[] };
  Checks: { CheckID: string; Status: string }[];
}

interface Change {
  at: number;
  data: unknown;
  index: string | undefined;
}

/** Collects a watch's 'change' events (and errors, so an 'error' never goes unhandled). */
function record(watch: ReturnType<Consul['watch']>): { changes: Change[]; errors: unknown[] } {
  const changes: Change[] = [];
  const errors: unknown[] = [];
  watch.on('change', (data: unknown, res: { headers?: Record<string, string | undefined> } | undefined) => {
    changes.push({ at: Date.now(), data, index: res?.headers?.['x-consul-index'] });
  });
  watch.on('error', (err: unknown) => errors.push(err));
  return { changes, errors };
}

const ids = (entries: unknown): string[] => (entries as HealthEntry[]).map((e) => e.Service.ID).sort();

describe('npm consul client v2 against the agent', () => {
  let agent: TestAgent;
  let consul: Consul;
  let web1: Backend;
  let web2: Backend;
  const watches: { end(): void }[] = [];
  /**
   * A watch's last blocking query stays parked at the agent after watch.end() until its wait (5 s)
   * runs out: waits until none is left, so that the count that follows is this test's watch alone.
   */
  const noneParked = async (): Promise<number> => {
    await waitFor(() => agent.view.waiterCount() === 0, () => `blocking queries of earlier watches to end (${agent.view.waiterCount()} parked)`, 10_000, 20);
    return 0;
  };

  before(async () => {
    web1 = await new Backend(200).start();
    web2 = await new Backend(500).start();
    agent = await startTestAgent();
    consul = new Consul({ host: '127.0.0.1', port: agent.address.port });
  });

  after(async () => {
    for (const w of watches) w.end();
    consul?.destroy();
    await agent?.stop();
    await web1?.close();
    await web2?.close();
  });

  it('registers a service with an HTTP check and one with a TTL check (agent.service.register)', async () => {
    await consul.agent.service.register({
      name: 'web', id: 'web-1', address: '127.0.0.1', port: web1.port, tags: ['v1'],
      check: { name: 'web-1 http', http: `http://127.0.0.1:${web1.port}/health`, interval: '1s', timeout: '2s' },
    });
    await consul.agent.service.register({
      name: 'worker', id: 'worker-1', port: 7000, tags: ['jobs'],
      check: { name: 'worker ttl', ttl: '30s', timeout: '1s' },
    });

    const services = await consul.agent.service.list();
    assert.deepEqual(Object.keys(services).sort(), ['web-1', 'worker-1']);
    assert.equal(services['web-1'].Service, 'web');
    assert.equal(services['web-1'].Port, web1.port);
    assert.deepEqual(services['web-1'].Tags, ['v1']);
    assert.equal(services['worker-1'].Service, 'worker');

    const checks = await consul.agent.check.list();
    assert.equal(checks['service:web-1']?.Name, 'web-1 http');
    assert.equal(checks['service:web-1']?.ServiceID, 'web-1');
    assert.equal(checks['service:worker-1']?.Name, 'worker ttl');
    assert.equal(checks['service:worker-1']?.Status, 'critical', 'a new TTL check starts critical');
  });

  it('agent.check.pass turns the TTL check passing with the note as output', async () => {
    await consul.agent.check.pass({ id: 'service:worker-1', note: 'all good' });
    const checks = await consul.agent.check.list();
    assert.equal(checks['service:worker-1']?.Status, 'passing');
    assert.equal(checks['service:worker-1']?.Output, 'all good');
    // The HTTP check runs on its own (interval 1s) against the real backend.
    await waitFor(async () => (await consul.agent.check.list())['service:web-1']?.Status === 'passing', 'web-1 HTTP check to pass', 10_000, 50);
    assert.ok(web1.hits >= 1);
  });

  it('health.service with passing:true returns only the passing instance', async () => {
    await consul.agent.service.register({
      name: 'web', id: 'web-2', address: '127.0.0.1', port: web2.port, tags: ['v2'],
      check: { name: 'web-2 http', http: `http://127.0.0.1:${web2.port}/health`, interval: '1s', timeout: '2s' },
    });
    // Let web-2's check run at least once against its failing backend.
    await waitFor(() => web2.hits >= 1, 'web-2 check to run', 10_000, 50);
    await waitFor(async () => (await consul.agent.check.list())['service:web-2']?.Output.includes('500'), 'web-2 check output', 10_000, 50);

    const all = await consul.health.service('web');
    assert.deepEqual(ids(all), ['web-1', 'web-2']);
    const passing = await consul.health.service({ service: 'web', passing: true });
    assert.deepEqual(ids(passing), ['web-1']);
    const entry = (passing as HealthEntry[])[0];
    assert.ok(entry);
    assert.ok(entry.Checks.every((c) => c.Status === 'passing'), JSON.stringify(entry.Checks));
    assert.ok(entry.Checks.some((c) => c.CheckID === 'serfHealth'));
    assert.ok(entry.Checks.some((c) => c.CheckID === 'service:web-1'));
  });

  it('catalog.service.nodes and catalog.service.list', async () => {
    const nodes = (await consul.catalog.service.nodes('web')) as { ServiceID: string; ServiceName: string; ServicePort: number; Node: string }[];
    assert.deepEqual(nodes.map((n) => n.ServiceID).sort(), ['web-1', 'web-2']);
    for (const n of nodes) {
      assert.equal(n.ServiceName, 'web');
      assert.equal(n.Node, 'n1');
    }
    assert.equal(nodes.find((n) => n.ServiceID === 'web-1')?.ServicePort, web1.port);

    const list = await consul.catalog.service.list();
    assert.deepEqual([...(list.web ?? [])].sort(), ['v1', 'v2']);
    assert.deepEqual(list.worker, ['jobs']);
  });

  it('kv.set / kv.get / kv.keys / kv.del', async () => {
    assert.equal(await consul.kv.set('app/config', 'hello world'), true);
    assert.equal(await consul.kv.set('app/db/url', 'postgres://127.0.0.1/x'), true);
    const got = await consul.kv.get('app/config');
    assert.ok(got);
    assert.equal(got.Key, 'app/config');
    assert.equal(got.Value, 'hello world');
    assert.equal(got.Flags, 0);
    assert.ok(got.ModifyIndex >= 1);

    assert.deepEqual(await consul.kv.keys('app/'), ['app/config', 'app/db/url']);
    assert.deepEqual(await consul.kv.keys({ key: 'app/', separator: '/' }), ['app/config', 'app/db/']);

    assert.equal(await consul.kv.del('app/config'), true);
    assert.equal(await consul.kv.get('app/config'), undefined, 'a missing key reads as undefined');
    assert.deepEqual(await consul.kv.keys('app/'), ['app/db/url']);
  });

  it('watch(health.service, passing) emits change within 1 s of a second instance becoming passing', async (t) => {
    const parked = await noneParked();
    const watch = consul.watch({
      method: consul.health.service,
      // The client's own option types say Record<string, string>; node-consul sends `passing=true` for any truthy value.
      options: { service: 'web', passing: true, wait: '5s' } as unknown as Record<string, string>,
    });
    watches.push(watch);
    const { changes, errors } = record(watch);

    // The first answer (index=0, non-blocking) carries only web-1.
    await waitFor(() => changes.length >= 1, 'the first change event', 5_000, 10);
    assert.deepEqual(ids(changes[0]?.data), ['web-1']);
    assert.ok(Number(changes[0]?.index) >= 1);

    // Let the watch park on the index, then bring web-2's backend up.
    await waitParked(agent, parked, 'the health watch of web');
    web2.setStatus(200);
    const withBoth = await waitFor(() => changes.find((c) => ids(c.data).length === 2), 'a change with both instances passing', 10_000, 5);
    assert.ok(withBoth);
    const becamePassingAt = web2.firstOkAt;
    assert.ok(becamePassingAt !== undefined, 'web-2 backend answered 200');
    const latency = withBoth.at - becamePassingAt;
    t.diagnostic(`health watch: change ${latency} ms after web-2's check first got 200`);
    assert.deepEqual(ids(withBoth.data), ['web-1', 'web-2']);
    assert.ok(latency < 1000, `change arrived ${latency} ms after web-2's check first succeeded (limit 1000 ms)`);
    assert.ok(Number(withBoth.index) > Number(changes[0]?.index), 'the index moved forward');
    assert.deepEqual(errors, []);

    watch.end();
    assert.equal(watch.isRunning(), false);
  });

  it('watch(kv.get) on a not-yet-existing key fires when the key is set', async (t) => {
    const parked = await noneParked();
    const watch = consul.watch({ method: consul.kv.get, options: { key: 'feature/flag', wait: '5s' } });
    watches.push(watch);
    const { changes, errors } = record(watch);

    // The 404 for the missing key must carry X-Consul-Index, or node-consul ends the watch ("Watch not supported").
    await waitFor(() => changes.length >= 1 || errors.length > 0, 'the first kv watch event', 5_000, 10);
    assert.deepEqual(errors, [], 'no "Watch not supported" (X-Consul-Index on the 404)');
    assert.equal(changes[0]?.data, undefined);
    assert.ok(Number(changes[0]?.index) >= 1);
    assert.equal(watch.isRunning(), true);

    await waitParked(agent, parked, 'the kv watch of feature/flag');
    const setAt = Date.now();
    assert.equal(await consul.kv.set('feature/flag', 'on'), true);
    const fired = await waitFor(() => changes.find((c) => c.data !== undefined), 'a change carrying the new key', 5_000, 5);
    assert.ok(fired);
    const item = fired.data as { Key: string; Value: string };
    assert.equal(item.Key, 'feature/flag');
    assert.equal(item.Value, 'on');
    t.diagnostic(`kv watch: change ${fired.at - setAt} ms after kv.set was called`);
    assert.ok(fired.at - setAt < 1000, `kv watch fired ${fired.at - setAt} ms after the set`);
    assert.ok(Number(fired.index) > Number(changes[0]?.index));
    assert.deepEqual(errors, []);

    watch.end();
  });

  it('agent.service.deregister removes the service from health and catalog', async () => {
    await consul.agent.service.deregister('web-2');
    assert.deepEqual(ids(await consul.health.service('web')), ['web-1']);
    const checks = await consul.agent.check.list();
    assert.equal(checks['service:web-2'], undefined);
  });
});
