// Cluster mode end to end (docs/cluster.md): 3 etcd members, 2 agents, 2 balancers, 4 backends, a DNS-resolving
// client under steady traffic and a registration stream; then member, agent, balancer and quorum failures.
import { strict as assert } from 'node:assert';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { http, sleep, waitFor } from '../helpers/agent.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { registerBackend, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard, waitHttpOk } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

const available = etcdAvailable();
const LEASE_TTL_S = 3;

interface AgentProc {
  name: string;
  url: string;
  httpPort: number;
  dnsPort: number;
  dataDir: string;
  proc: Proc;
}

interface LbProc {
  name: string;
  port: number;
  admin: number;
  proc: Proc;
}

/** A client that finds balancers through DNS SRV (as a resolver-aware client would) and fails over between them. */
class DnsClient {
  sent = 0;
  ok = 0;
  failed = 0;
  readonly failures: string[] = [];
  readonly byLb = new Map<number, number>();
  readonly byBackend = new Map<string, number>();
  #ports: number[] = [];
  #resolvedAt = 0;
  #stopped = false;
  readonly #resolver = new Resolver({ timeout: 500, tries: 1 });
  readonly #dispatcher = new Agent({ keepAliveTimeout: 2000, connections: 8 });
  readonly #loops: Promise<void>[] = [];

  constructor(dnsPort: number) {
    this.#resolver.setServers([`127.0.0.1:${dnsPort}`]);
  }

  setDns(dnsPort: number): void {
    this.#resolver.setServers([`127.0.0.1:${dnsPort}`]);
  }

  async balancers(): Promise<number[]> {
    const srv = await this.#resolver.resolveSrv('switchyard-lb.service.consul');
    return srv.map((r) => r.port).sort((a, b) => a - b);
  }

  /** For polling: no live balancer yet is NXDOMAIN, which reads as none. */
  async listed(): Promise<number[]> {
    try {
      return await this.balancers();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTFOUND') return [];
      throw err;
    }
  }

  async #targets(fresh: boolean): Promise<number[]> {
    // Resolve at most every 200 ms (the DNS TTL is 0; a real client would cache for its TTL), or at once
    // when every address of the cached answer failed: a client re-resolves before giving up.
    if (fresh || Date.now() - this.#resolvedAt > 200 || this.#ports.length === 0) {
      try {
        this.#ports = await this.balancers();
        this.#resolvedAt = Date.now();
      } catch {
        // keep the last answer while DNS is unreachable
      }
    }
    // Spread load: rotate the starting balancer per request.
    const p = [...this.#ports];
    const k = this.sent % Math.max(1, p.length);
    return [...p.slice(k), ...p.slice(0, k)];
  }

  async #one(): Promise<void> {
    this.sent++;
    let lastErr = 'no balancer in DNS';
    const tried = new Set<number>();
    // A GET is retried on the next balancer after a network error (a dead balancer), as curl does with several
    // addresses; when every cached address failed, once more on a fresh answer (the cache may predate a move).
    rounds: for (let round = 0; round < 2; round++) {
      const targets = (await this.#targets(round > 0)).filter((p) => !tried.has(p));
      for (const port of targets) {
        tried.add(port);
        try {
          const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: this.#dispatcher, headersTimeout: 5000, bodyTimeout: 5000 });
          const body = await res.body.text();
          if (res.statusCode === 200) {
            this.ok++;
            this.byLb.set(port, (this.byLb.get(port) ?? 0) + 1);
            this.byBackend.set(body, (this.byBackend.get(body) ?? 0) + 1);
            return;
          }
          lastErr = `HTTP ${res.statusCode} from balancer ${port}: ${body.slice(0, 200)}`;
          break rounds;
        } catch (err) {
          lastErr = `balancer ${port}: ${(err as Error).message}`;
        }
      }
    }
    this.failed++;
    if (this.failures.length < 20) this.failures.push(lastErr);
  }

  start(concurrency: number, maxRequests: number): void {
    for (let i = 0; i < concurrency; i++) {
      this.#loops.push((async () => {
        while (!this.#stopped && this.sent < maxRequests) {
          await this.#one();
          await sleep(2); // pacing: steady traffic, not a flood
        }
      })());
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#loops);
    await this.#dispatcher.close();
  }
}

/** Registers a new service instance every ~50 ms through whichever agent is up; remembers what was acknowledged. */
class Registrations {
  acked = new Set<string>();
  refused = 0;
  refusedStatuses = new Map<number, number>();
  maxRefusalMs = 0;
  /** Calls that got no HTTP answer at all. */
  unreachable = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #seq = 0;

  constructor(private readonly agents: () => AgentProc[]) {}

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        const live = this.agents();
        const a = live[this.#seq % Math.max(1, live.length)];
        const id = `reg-${this.#seq++}`;
        if (a) {
          const t0 = Date.now();
          try {
            const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'stream', ID: id, Port: 1000 + (this.#seq % 1000) });
            if (r.status === 200) this.acked.add(id);
            else {
              this.refused++;
              this.refusedStatuses.set(r.status, (this.refusedStatuses.get(r.status) ?? 0) + 1);
              this.maxRefusalMs = Math.max(this.maxRefusalMs, Date.now() - t0);
            }
          } catch {
            this.refused++;
            this.unreachable++;
          }
        }
        await sleep(50); // pacing: one registration every ~50 ms
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

describe('cluster mode on etcd: 3 members, 2 agents, 2 balancers', { skip: !available && 'etcd not installed' }, () => {
  let etcd: EtcdCluster;
  const agents: AgentProc[] = [];
  const lbs: LbProc[] = [];
  const backends: Backend[] = [];
  const killed = new Set<string>();

  const startAgentProc = async (name: string, prev?: AgentProc): Promise<AgentProc> => {
    const httpPort = prev?.httpPort ?? await freePort();
    const dnsPort = prev?.dnsPort ?? await freePort();
    const dataDir = prev?.dataDir ?? `/tmp/sy-cluster-${process.pid}-${name}`;
    const proc = switchyard(['agent', '--store', etcd.url(`cluster-${process.pid}`), '--node', name, '--http-addr', `127.0.0.1:${httpPort}`,
      '--dns-addr', `127.0.0.1:${dnsPort}`, '--data-dir', dataDir, '--lease-ttl', `${LEASE_TTL_S}s`, '--store-timeout', '2s', '--log-level', 'warn']);
    const url = `http://127.0.0.1:${httpPort}`;
    await waitHttpOk(`${url}/v1/status/leader`, proc, 30_000);
    return { name, url, httpPort, dnsPort, dataDir, proc };
  };

  const startLbProc = async (name: string, registries: AgentProc[]): Promise<LbProc> => {
    const port = await freePort();
    const admin = await freePort();
    const proc = switchyard(['lb', '--registry', registries.map((a) => a.url).join(','), '--service', 'web', '--listen', `127.0.0.1:${port}`,
      '--admin-addr', `127.0.0.1:${admin}`, '--register-as', '--log-level', 'warn']);
    await waitHttpOk(`http://127.0.0.1:${admin}/health`, proc, 30_000);
    return { name, port, admin, proc };
  };

  const liveAgents = (): AgentProc[] => agents.filter((a) => !killed.has(a.name));
  const passing = async (via: AgentProc, service: string): Promise<string[]> => {
    const r = await http(via.url, 'GET', `/v1/health/service/${service}?passing`);
    return (JSON.parse(r.text) as { Service: { ID: string } }[]).map((e) => e.Service.ID).sort();
  };

  before(async () => {
    etcd = await startEtcd(3);
    agents.push(await startAgentProc('agent-a'), await startAgentProc('agent-b'));
    for (const [i, owner] of [[0, 0], [1, 0], [2, 1], [3, 1]] as const) {
      const b = await startBackend(`web-${i}`);
      backends.push(b);
      // Each agent runs the checks of the backends registered through it.
      await registerBackend(agents[owner]!.url, 'web', b, { Check: { HTTP: `http://127.0.0.1:${b.port}/`, Interval: '1s' } });
    }
    await waitFor(async () => (await passing(agents[1]!, 'web')).length === 4, 'all 4 backends passing', 20_000);
    lbs.push(await startLbProc('lb-1', [agents[0]!, agents[1]!]), await startLbProc('lb-2', [agents[1]!, agents[0]!]));
  });

  after(async () => {
    for (const l of lbs) await stop(l.proc, 'SIGKILL');
    for (const a of agents) await stop(a.proc, 'SIGKILL');
    for (const b of backends) await b.close();
    await etcd?.stop();
  });

  it('survives a dead etcd member, a dead agent, a dead balancer and a quorum loss; nothing acknowledged is lost', async () => {
    const [a, b] = agents as [AgentProc, AgentProc];
    const client = new DnsClient(b.dnsPort);
    await waitFor(async () => (await client.listed()).length === 2, 'both balancers registered and in DNS', 20_000);
    const regs = new Registrations(liveAgents);
    client.start(4, 200_000);
    regs.start();
    const report: string[] = [];
    const step = (s: string): void => void report.push(`${new Date().toISOString().slice(11, 23)} ${s} (sent ${client.sent}, failed ${client.failed}, registrations acked ${regs.acked.size}, refused ${regs.refused})`);
    try {
      await waitFor(() => client.byBackend.size === 4 && client.byLb.size === 2, 'traffic reaches all 4 backends through both balancers', 15_000);
      step('steady traffic through both balancers to all 4 backends');

      // 1. One etcd member dies: nothing visible.
      await etcd.kill(2);
      const okBefore = client.ok;
      const ackedBefore = regs.acked.size;
      await waitFor(() => client.ok >= okBefore + 100 && regs.acked.size >= ackedBefore + 10, () => `100 more answers and 10 more registrations with 2 of 3 members (answers ${client.ok - okBefore}, registrations ${regs.acked.size - ackedBefore}, refused ${regs.refused})`, 20_000, 50);
      assert.ok(client.ok > okBefore && regs.acked.size > ackedBefore, 'traffic and registrations go on with 2 of 3 members');
      step('etcd member m2 killed');

      // 2. Agent A dies: its node goes critical within the lease TTL; A's backends leave passing and traffic shifts.
      const killedAt = Date.now();
      killed.add(a.name);
      await stop(a.proc, 'SIGKILL');
      await waitFor(async () => {
        const ids = await passing(b, 'web');
        return ids.length === 2 && ids.every((id) => id === 'web-web-2' || id === 'web-web-3');
      }, "agent A's backends leave passing", (LEASE_TTL_S + 5) * 1000, 100);
      const leftAfter = Date.now() - killedAt;
      step(`agent A killed; its backends left passing after ${leftAfter} ms (lease TTL ${LEASE_TTL_S} s)`);
      assert.ok(leftAfter <= (LEASE_TTL_S + 2) * 1000, `left passing after ${leftAfter} ms`);
      // Traffic shifts: once both balancers follow the change, A's backends get nothing more.
      const bPorts = [backends[2]!.port, backends[3]!.port].sort().join(',');
      for (const l of lbs) {
        await waitFor(async () => {
          const dump = (await http(`http://127.0.0.1:${l.admin}`, 'GET', '/routes')).json as { groups: { service: string; upstreams: { address: string }[] }[] };
          const ports = dump.groups.filter((g) => g.service === 'web').flatMap((g) => g.upstreams.map((u) => Number(u.address.split(':').pop())));
          return [...new Set(ports)].sort().join(',') === bPorts;
        }, `${l.name}'s table down to agent B's backends`, 20_000, 50);
      }
      const aHits = (): number => backends[0]!.hits + backends[1]!.hits;
      const before1 = aHits();
      const bHits = backends[2]!.hits + backends[3]!.hits;
      // Counted in requests, not time: 200 answers from agent B's backends, during which none reach A's.
      await waitFor(() => backends[2]!.hits + backends[3]!.hits >= bHits + 200, "200 more requests at agent B's backends", 20_000, 20);
      assert.equal(aHits(), before1, "no new requests reach agent A's backends");
      assert.ok(backends[2]!.hits + backends[3]!.hits > bHits, "agent B's backends take the traffic");
      // Both balancers are still listed: lb-1 moved its registration to agent B.
      await waitFor(async () => (await client.listed()).length === 2, 'both balancers back in DNS via agent B', 20_000, 200);
      step('traffic shifted to agent B\'s backends; both balancers listed');

      // 3. A balancer dies: DNS stops returning it; the DNS-resolving client keeps working.
      const lb2 = lbs[1]!;
      await stop(lb2.proc, 'SIGKILL');
      const lbKilledAt = Date.now();
      await waitFor(async () => {
        const ports = await client.listed();
        return ports.length === 1 && ports[0] === lbs[0]!.port;
      }, 'DNS stops returning the dead balancer', 15_000, 100);
      step(`balancer lb-2 killed; gone from DNS after ${Date.now() - lbKilledAt} ms`);
      const okAfterLb = client.ok;
      await waitFor(() => client.ok >= okAfterLb + 100, () => `100 more answers through the remaining balancer (${client.ok - okAfterLb}; failed ${client.failed})`, 20_000, 20);
      assert.ok(client.ok > okAfterLb, 'the client keeps getting answers');

      // 4. Quorum lost (1 of 3 members): balancers serve the last table; writes fail fast with a clear 5xx.
      await etcd.kill(1);
      step('etcd member m1 killed: no quorum');
      const t0 = Date.now();
      const w = await http(b.url, 'PUT', '/v1/kv/during-outage', 'x');
      const tookMs = Date.now() - t0;
      assert.equal(w.status, 503, `a write without quorum answers 503, got ${w.status} ${w.text}`);
      assert.match(w.text, /etcd .*(2000 ms|quorum|unavailable|timed out|deadline)/i);
      assert.ok(tookMs < 6000, `the write failed after ${tookMs} ms, not a hang`);
      const okDuring = client.ok;
      // The outage lasts at least 3 s (serving through it is the claim), and at least 50 answers come
      // in it however busy the machine is.
      await Promise.all([sleep(3000), waitFor(() => client.ok > okDuring + 50, () => `50 answers without quorum (${client.ok - okDuring}; failed ${client.failed})`, 20_000, 20)]);
      assert.ok(client.ok > okDuring + 50, 'traffic keeps flowing on the last table without quorum');
      step(`writes answer 503 in ${tookMs} ms; traffic still flowing`);

      // 5. Quorum back, agent A back: everything converges.
      await etcd.start(1);
      await etcd.start(2);
      await waitFor(async () => (await http(b.url, 'PUT', '/v1/kv/after-outage', 'y')).status === 200, 'writes work again', 30_000, 250);
      agents[0] = await startAgentProc('agent-a', a);
      killed.delete(a.name);
      await waitFor(async () => (await passing(agents[1]!, 'web')).length === 4, "agent A's backends passing again", 20_000, 100);
      const aHitsBack = backends[0]!.hits + backends[1]!.hits;
      await waitFor(() => backends[0]!.hits + backends[1]!.hits > aHitsBack + 10, "traffic reaches agent A's backends again", 15_000);
      step('quorum restored and agent A restarted; all 4 backends passing and used again');
    } finally {
      await regs.stop();
      await client.stop();
    }

    // Every acknowledged registration is in the catalog, seen identically from both agents.
    const [ra, rb] = await Promise.all(agents.map((x) => http(x.url, 'GET', '/v1/catalog/service/stream')));
    const inA = new Set((JSON.parse(ra!.text) as { ServiceID: string }[]).map((e) => e.ServiceID));
    const inB = new Set((JSON.parse(rb!.text) as { ServiceID: string }[]).map((e) => e.ServiceID));
    const lost = [...regs.acked].filter((id) => !inB.has(id));
    assert.deepEqual([...inA].sort(), [...inB].sort(), 'both agents list the same instances');
    report.push(`requests sent ${client.sent}, failed ${client.failed}; registrations acknowledged ${regs.acked.size}, refused ${regs.refused} (${[...regs.refusedStatuses].map(([s, n]) => `${n}× ${s}`).join(', ')}; no answer ${regs.unreachable}; slowest refusal ${regs.maxRefusalMs} ms), lost ${lost.length}`);
    console.log(`# cluster run:\n#   ${report.join('\n#   ')}`);
    assert.deepEqual(lost, [], 'no acknowledged registration is lost');
    // The agents' and balancers' warnings (leases lost, nodes marked critical, watch resyncs) say why traffic failed.
    const logs = (): string => [...agents, ...lbs].map((p) => `--- ${p.name}\n${p.proc.stderr().slice(-4000)}`).join('\n');
    assert.equal(client.failed, 0, `failed requests: ${client.failures.join(' | ')}\n${client.failed > 0 ? logs() : ''}`);
    assert.ok(regs.refused > 0, 'registrations were refused while quorum was lost (the test covered the outage)');
  });
});
