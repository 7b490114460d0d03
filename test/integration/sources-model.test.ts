// Both discovery sources, long-lived as a balancer's are, through random sequences of what registrants do over
// the HTTP API (fast-check): services registered and renamed on the same ID, tags that start and stop a route
// (urlprefix-), TTL checks, maintenance of a service and of the node, other nodes registered and deregistered
// through the catalog. After each sequence the remote source (blocking queries over HTTP) must hold what the
// in-process one holds, and for both, applying only the services each set names as changed must give the set
// itself: the balancer's table is kept that way, so a change left unnamed is a route that keeps its old instances.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { http, startTestAgent, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { LocalSource } from '../../src/discovery/local-source.js';
import { RemoteSource } from '../../src/discovery/remote-source.js';
import { followPredicate } from '../../src/discovery/follow.js';
import type { ServiceSet } from '../../src/discovery/types.js';
import { Followed, plainSet } from '../helpers/followed.js';

const RUNS = Number(process.env.SY_FC_RUNS ?? 25);
const NAMES = ['web', 'api', 'db'];
const IDS = ['a', 'b', 'c', 'd'];
const EXT_NODES = ['ext1', 'ext2'];
const STATUSES = ['passing', 'warning', 'critical'] as const;

/** One thing a registrant does, as the HTTP request that does it. */
interface Act {
  readonly method: 'PUT';
  readonly path: string;
  readonly body?: unknown;
}

const service = fc.record({ id: fc.constantFrom(...IDS), name: fc.constantFrom(...NAMES), port: fc.constantFrom(1, 2), tags: fc.subarray(['urlprefix-/r', 'v1']) });
const act: fc.Arbitrary<Act> = fc.oneof(
  fc.record({ s: service, check: fc.option(fc.constantFrom(...STATUSES), { nil: undefined }) }).map(({ s, check }): Act => ({
    method: 'PUT', path: '/v1/agent/service/register',
    body: { ID: s.id, Name: s.name, Port: s.port, Tags: s.tags, ...(check ? { Check: { TTL: '10m', Status: check } } : {}) },
  })),
  fc.constantFrom(...IDS).map((id): Act => ({ method: 'PUT', path: `/v1/agent/service/deregister/${id}` })),
  fc.record({ id: fc.constantFrom(...IDS), to: fc.constantFrom('pass', 'warn', 'fail') }).map(({ id, to }): Act => ({ method: 'PUT', path: `/v1/agent/check/${to}/service:${id}` })),
  fc.record({ id: fc.constantFrom(...IDS), on: fc.boolean() }).map(({ id, on }): Act => ({ method: 'PUT', path: `/v1/agent/service/maintenance/${id}?enable=${String(on)}&reason=model` })),
  fc.boolean().map((on): Act => ({ method: 'PUT', path: `/v1/agent/maintenance?enable=${String(on)}` })),
  fc.record({ node: fc.constantFrom(...EXT_NODES), addr: fc.constantFrom('10.1.0.1', '10.1.0.2'), s: service, check: fc.option(fc.constantFrom(...STATUSES), { nil: undefined }), nodeCheck: fc.option(fc.constantFrom(...STATUSES), { nil: undefined }) })
    .map(({ node, addr, s, check, nodeCheck }): Act => ({
      method: 'PUT', path: '/v1/catalog/register',
      body: {
        Node: node, Address: addr, Service: { ID: s.id, Service: s.name, Port: s.port, Tags: s.tags },
        Checks: [
          ...(check ? [{ CheckID: `svc-${s.id}`, Name: 'svc', Status: check, ServiceID: s.id }] : []),
          ...(nodeCheck ? [{ CheckID: 'node-health', Name: 'node', Status: nodeCheck }] : []),
        ],
      },
    })),
  fc.constantFrom(...EXT_NODES).map((node): Act => ({ method: 'PUT', path: '/v1/catalog/deregister', body: { Node: node } })),
  fc.record({ node: fc.constantFrom(...EXT_NODES), id: fc.constantFrom(...IDS) }).map(({ node, id }): Act => ({ method: 'PUT', path: '/v1/catalog/deregister', body: { Node: node, ServiceID: id } })),
);

const plain = (s: ServiceSet | undefined): unknown => (s ? plainSet(s) : undefined);

describe('discovery sources through random registrations', () => {
  let agent: TestAgent;
  let local: Followed;
  let remote: Followed;
  before(async () => {
    agent = await startTestAgent();
    const follow = followPredicate([{ origin: 'test', pathPrefix: '/', headers: [], service: 'web', tags: [], balance: 'round_robin' }]);
    local = new Followed(new LocalSource(agent.view, follow));
    remote = new Followed(new RemoteSource({ address: agent.url, follow, logger: pino({ level: 'silent' }), waitMs: 5000 }));
    await waitFor(() => local.latest !== undefined && remote.latest !== undefined, 'both sources emitted', 5000);
  });
  after(async () => {
    await local.source.close();
    await remote.source.close();
    await agent.stop();
  });

  it('the remote source converges on what the in-process one holds, and both name every service that moved', async () => {
    const out = await fc.check(
      fc.asyncProperty(fc.array(act, { minLength: 1, maxLength: 12 }), async (acts) => {
        for (const a of acts) {
          const r = await http(agent.url, a.method, a.path, a.body);
          // A check or service that does not exist (yet) answers 404; anything else must be accepted.
          assert.ok(r.status === 200 || r.status === 404, `${a.method} ${a.path} ${JSON.stringify(a.body ?? '')} answered ${r.status}: ${JSON.stringify(r.json)}`);
        }
        const why = (): string => `after ${JSON.stringify(acts)}:\nremote ${JSON.stringify(plain(remote.latest))}\nlocal  ${JSON.stringify(plain(local.latest))}`;
        await waitFor(() => JSON.stringify(plain(remote.latest)) === JSON.stringify(plain(local.latest)), () => `the remote source to hold what the local one holds ${why()}`, 5000);
        assert.deepEqual(local.kept(), plain(local.latest), 'the in-process source left a moved service out of `changed`');
        assert.deepEqual(remote.kept(), plain(remote.latest), 'the remote source left a moved service out of `changed`');
      }),
      { numRuns: RUNS },
    );
    // fc.assert's report leaves out the failed assertion's message; this one says what broke and shows the shrunk case.
    if (out.failed) assert.fail(`${String(out.errorInstance instanceof Error ? out.errorInstance.message : out.errorInstance)}\n${fc.defaultReportMessage(out)}`);
  });
});
