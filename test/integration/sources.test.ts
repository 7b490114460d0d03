// The two discovery sources (in-process catalog and remote blocking queries) see the same registry the same way.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Writable } from 'node:stream';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestAgent, http, waitFor } from '../helpers/agent.js';
import { freePort } from '../helpers/process.js';
import type { TestAgent } from '../helpers/agent.js';
import { LocalSource } from '../../src/discovery/local-source.js';
import { RemoteSource } from '../../src/discovery/remote-source.js';
import { RegistryClient, watch } from '../../src/registry/api/client.js';
import { followPredicate } from '../../src/discovery/follow.js';
import type { ServiceSet, Source } from '../../src/discovery/types.js';

const plain = (s: ServiceSet | undefined): unknown => (s ? { catalog: [...s.catalog], instances: [...s.instances] } : undefined);

describe('discovery sources', () => {
  let agent: TestAgent;
  const sources: Source[] = [];
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    for (const s of sources) await s.close();
    await agent.stop();
  });

  it('local and remote sources emit identical service sets, and follow changes', async () => {
    const reg = (body: unknown) => http(agent.url, 'PUT', '/v1/agent/service/register', body);
    await reg({ Name: 'web', ID: 'w1', Address: '10.0.0.1', Port: 80, Weights: { Passing: 3, Warning: 1 } });
    await reg({ Name: 'web', ID: 'w2', Port: 81, Check: { TTL: '1m', Status: 'warning' } });
    await reg({ Name: 'web', ID: 'w3', Port: 82, Check: { TTL: '1m', Status: 'critical' } });
    await reg({ Name: 'tagged', ID: 't1', Port: 90, Tags: ['urlprefix-/t'] });
    await reg({ Name: 'ignored', ID: 'i1', Port: 91 });
    const follow = followPredicate([{ origin: 'test', pathPrefix: '/', headers: [], service: 'web', tags: [], balance: 'round_robin' }]);
    let local: ServiceSet | undefined;
    let remote: ServiceSet | undefined;
    const l = new LocalSource(agent.view, follow);
    const r = new RemoteSource({ address: agent.url, follow, logger: pino({ level: 'silent' }), waitMs: 5000 });
    sources.push(l, r);
    l.start((s) => (local = s));
    r.start((s) => (remote = s));
    await waitFor(() => remote !== undefined && local !== undefined, 'both sources emitted', 5000);
    assert.deepEqual(plain(remote), plain(local));
    assert.deepEqual([...(local!.instances.keys())].sort(), ['tagged', 'web'], 'follows routed and urlprefix-tagged services only');
    const web = local!.instances.get('web')!;
    assert.deepEqual(web.map((i) => `${i.id}:${i.status}`), ['n1/w1:passing', 'n1/w2:warning'], 'critical instances are left out');
    assert.equal(web[1]!.address, '127.0.0.1', 'an empty service address falls back to the node address');
    await http(agent.url, 'PUT', '/v1/agent/check/pass/service:w3');
    await waitFor(() => local?.instances.get('web')?.length === 3 && remote?.instances.get('web')?.length === 3, 'w3 joins both', 5000);
    assert.deepEqual(plain(remote), plain(local));
    await http(agent.url, 'PUT', '/v1/agent/service/deregister/t1');
    await waitFor(() => !local?.instances.has('tagged') && !remote?.instances.has('tagged'), 'tagged leaves both', 5000);
    assert.deepEqual(plain(remote), plain(local));
  });

  it('parks a blocking read at the agent for every followed service, past one client\'s 64 connections: a change to any of them arrives at once', async () => {
    const a = await startTestAgent({ store: 'embedded' });
    try {
      const n = 80;
      for (let i = 0; i < n; i++) await http(a.url, 'PUT', '/v1/agent/service/register', { Name: `s${i}`, ID: `s${i}`, Port: 1000 + i, Tags: [`urlprefix-/s${i}`] });
      let latest: ServiceSet | undefined;
      // Consul's default wait (60 s): a read queued in the client instead of parked at the agent would hold a change that long.
      const r = new RemoteSource({ address: a.url, follow: followPredicate([]), logger: pino({ level: 'silent' }) });
      sources.push(r);
      r.start((s) => (latest = s));
      await waitFor(() => latest?.instances.size === n, 'the first set has every service', 10_000);
      // The catalog read and one read per service, all parked (with 64 connections, 17 of them queued in the client).
      await waitFor(() => a.view.waiterCount() >= n + 1, `${n + 1} blocking reads parked at the agent`, 10_000);
      const last = `s${n - 1}`;
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: last, ID: last, Port: 2000, Tags: [`urlprefix-/${last}`] });
      await waitFor(() => latest?.instances.get(last)?.[0]?.port === 2000, 'the change to the last service reaches the source', 10_000);
      assert.deepEqual([...(latest?.changed ?? [])], [last], 'the set names the one service that changed');
    } finally {
      await a.stop();
    }
  });

  /** A pino logger whose lines land in `lines` (parsed), to check what a source says. */
  function capture(): { logger: Logger; lines: { msg: string }[] } {
    const lines: { msg: string }[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as { msg: string }); done(); } });
    return { logger: pino({ level: 'warn' }, sink) as Logger, lines };
  }
  const webOnly = followPredicate([{ origin: 'test', pathPrefix: '/', headers: [], service: 'web', tags: [], balance: 'round_robin' }]);
  const ids = (s: ServiceSet | undefined): string[] => (s?.instances.get('web') ?? []).map((i) => i.id);

  it('follows an agent that lost its data and came back on the same port: the next change arrives at once, not after the 60 s wait', async () => {
    // The embedded store whatever the pass: this is about one agent's index going backwards.
    let a = await startTestAgent({ store: 'embedded' });
    const port = new URL(a.url).port;
    const restart = async (): Promise<void> => {
      const before = Number((await http(a.url, 'GET', '/v1/health/service/web')).headers.get('x-consul-index'));
      await a.stop(); // closes it and deletes its data dir
      a = await startTestAgent({ store: 'embedded', 'http-addr': `127.0.0.1:${port}` });
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'after', Port: 81 });
      const after = Number((await http(a.url, 'GET', '/v1/health/service/web')).headers.get('x-consul-index'));
      assert.ok(after < before, `the restarted agent's index went backwards (${before} → ${after})`);
    };
    const history = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await http(a.url, 'PUT', `/v1/kv/history/${i}`, 'x');
    };
    try {
      await history();
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'before', Port: 80 });
      let latest: ServiceSet | undefined;
      // Consul's default wait (60 s): a blocking read parked on the old index would hold the change for that long.
      const r = new RemoteSource({ address: a.url, follow: webOnly, logger: pino({ level: 'silent' }) });
      sources.push(r);
      r.start((s) => (latest = s));
      await waitFor(() => ids(latest).join() === 'n1/before', 'the source follows the first agent', 5000);

      // Restart while both reads (catalog, health of web) are parked on the agent: they fail.
      await waitFor(() => a.view.waiterCount() >= 2, 'the source\'s blocking reads are parked', 5000);
      await restart();
      await waitFor(() => ids(latest).join() === 'n1/after', 'the registration after the first restart reaches the source', 10_000);

      // Restart right after a change woke the reads: the source may see no failure at all, only closed connections.
      await history();
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'web', ID: 'before', Port: 80 });
      await waitFor(() => ids(latest).join() === 'n1/after,n1/before', 'the source sees the second instance', 5000);
      await restart();
      await waitFor(() => ids(latest).join() === 'n1/after', 'the registration after the second restart reaches the source', 10_000);
    } finally {
      await a.stop();
    }
  });

  it('a balancer\'s source says what traffic gets while the registry is unreachable: no table yet, or the last known one', async () => {
    const none = capture();
    const r = new RemoteSource({ address: `127.0.0.1:${await freePort()}`, follow: webOnly, logger: none.logger });
    sources.push(r);
    r.start(() => undefined);
    await waitFor(() => none.lines.length > 0, 'the first warning', 5000);
    assert.deepEqual(none.lines.map((l) => l.msg), ['registry unreachable and no table from it yet: requests get 503 (unless a state file supplied a table) until it answers']);

    const a = await startTestAgent({ store: 'embedded' });
    const some = capture();
    const r2 = new RemoteSource({ address: a.url, follow: webOnly, logger: some.logger });
    sources.push(r2);
    let emitted = false;
    r2.start(() => (emitted = true));
    await waitFor(() => emitted, 'a first table', 5000);
    await a.stop();
    await waitFor(() => some.lines.length > 0, 'the warning after the agent went away', 5000);
    assert.equal(some.lines[0]?.msg, 'registry unreachable: serving the last known table');
  });

  it('until the registry first answers, a balancer\'s source retries at least every second (not the 10 s backoff of a watch that had answers)', async () => {
    // A registry that refuses every read, recording when each arrives.
    const asked: number[] = [];
    const refusing = createServer((req, res) => {
      if (req.url?.startsWith('/v1/catalog/services')) asked.push(Date.now());
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end('not yet');
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const r = new RemoteSource({ address: `127.0.0.1:${(refusing.address() as AddressInfo).port}`, follow: webOnly, logger: capture().logger });
    try {
      r.start(() => undefined);
      // Ten seconds: at most a second between reads makes at least 10 of them (about 19 on average); the
      // usual backoff (full jitter, doubling from 250 ms to 10 s) makes about 6.
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    } finally {
      await r.close();
      refusing.closeAllConnections();
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
    const gaps = asked.slice(1).map((t, i) => t - (asked[i] as number));
    assert.ok(asked.length >= 10, `reads in 10 s: ${asked.length} (gaps, ms: ${gaps.join(', ')})`);
    // A second of backoff at most, plus the request itself on a loaded machine.
    assert.ok(Math.max(...gaps) <= 2500, `gaps between reads, ms: ${gaps.join(', ')}`);
  });

  it('a watch aborted after its answer arrived hands nothing on, and asks nothing more', async () => {
    const ac = new AbortController();
    const changes: unknown[] = [];
    let answers = 0;
    // The abort lands between the answer's arrival and its hand-off, as a source's reconcile does when a
    // catalog answer stops a service's watch while that watch's own answer is coming in.
    await watch(new RegistryClient({ address: agent.url }), '/v1/catalog/services', (v) => changes.push(v), ac.signal, {
      waitMs: 5000,
      onAnswer: () => {
        answers++;
        ac.abort();
      },
    });
    assert.equal(answers, 1);
    assert.deepEqual(changes, [], 'onChange ran for an aborted watch');
  });

  it('a followed service the registry refuses to answer for does not hold back the table: the others still arrive', async () => {
    // Real Consul redirects /v1/health/service/.. (Go's path cleaning); here a proxy in front of the agent
    // refuses one service's health reads with 500 and passes everything else through.
    const proxy = createServer((req, res) => {
      if ((req.url ?? '').startsWith('/v1/health/service/refused')) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('refused by the test proxy\n');
        return;
      }
      void fetch(`${agent.url}${req.url ?? '/'}`, { method: req.method ?? 'GET' }).then(async (r) => {
        res.writeHead(r.status, Object.fromEntries([...r.headers].filter(([k]) => k !== 'content-encoding' && k !== 'content-length'))).end(Buffer.from(await r.arrayBuffer()));
      }, () => res.writeHead(502).end());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    let r: RemoteSource | undefined;
    try {
      const { port } = proxy.address() as AddressInfo;
      const reg = (body: unknown) => http(agent.url, 'PUT', '/v1/agent/service/register', body);
      await reg({ Name: 'refused', ID: 'refused-1', Port: 70, Tags: ['urlprefix-/refused'] });
      await reg({ Name: 'routed', ID: 'routed-1', Port: 71, Tags: ['urlprefix-/routed'] });
      const log = capture();
      let set: ServiceSet | undefined;
      r = new RemoteSource({ address: `127.0.0.1:${port}`, follow: webOnly, logger: log.logger, waitMs: 2000 });
      r.start((s) => (set = s));
      await waitFor(() => set?.instances.get('routed')?.length === 1, 'a first table with the services the registry answers for', 5000);
      assert.equal(set?.instances.has('refused'), false, 'no instances for the refused service');
      assert.ok(log.lines.some((l) => l.msg.startsWith('no first answer for a followed service')), JSON.stringify(log.lines));
      // Later changes still arrive while the refused watch keeps retrying.
      await reg({ Name: 'routed', ID: 'routed-2', Port: 72, Tags: ['urlprefix-/routed'] });
      await waitFor(() => set?.instances.get('routed')?.length === 2, 'the second instance of routed', 5000);
      assert.equal(r.status().connected, true, 'a registry that answers is connected, whatever it answers for one service');
    } finally {
      await r?.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('a source that starts and stops many watches over its life keeps no listener per watch it stopped', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const r = new RemoteSource({ address: agent.url, follow: webOnly, logger: pino({ level: 'silent' }), waitMs: 2000 });
    try {
      let set: ServiceSet | undefined;
      r.start((s) => (set = s));
      // A routed service that comes and goes: each arrival starts a watch, each departure stops it.
      for (let i = 0; i < 15; i++) {
        await http(agent.url, 'PUT', '/v1/agent/service/register', { Name: 'comes-and-goes', ID: 'cg-1', Port: 60, Tags: ['urlprefix-/cg'] });
        await waitFor(() => set?.instances.get('comes-and-goes')?.length === 1, `arrival ${i}`, 5000);
        await http(agent.url, 'PUT', '/v1/agent/service/deregister/cg-1');
        await waitFor(() => set !== undefined && !set.instances.has('comes-and-goes'), `departure ${i}`, 5000);
      }
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await r.close();
    }
  });
});
