// Table-driven tests of answerQuery over a real agent's catalog view: names, health filtering, records, SOA, TTLs, shuffling, truncation.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RECURSION_DESIRED, decode, encode } from 'dns-packet';
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet';
import { answerQuery } from '../../src/dns/answer.js';
import type { AnswerOptions } from '../../src/dns/answer.js';
import { NameIndex } from '../../src/dns/name-index.js';
import { seededRandom } from '../../src/core/clock.js';
import { startTestAgent, http } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

const NOW = 1_700_000_000_000;
const BASE: AnswerOptions = {
  domain: 'consul', datacenter: 'dc1', onlyPassing: false, nodeTtl: 0, serviceTtl: {}, udpAnswerLimit: 3, enableTruncate: true, nodeName: 'n1',
};

interface Ask {
  name: string;
  type: string;
  options?: Partial<AnswerOptions>;
  transport?: 'udp' | 'tcp';
  /** EDNS0 UDP size to advertise; none when undefined. */
  edns?: number;
  seed?: number;
  opcode?: number;
}

interface Got {
  packet: DecodedPacket & { rcode?: string };
  rcode: string;
  answers: string[];
  authority: string[];
  additional: string[];
  truncated: boolean;
}

function rr(a: Answer): string {
  switch (a.type) {
    case 'SRV':
      return `SRV ${a.name} ${a.ttl ?? 0} ${a.data.priority ?? 0} ${a.data.weight ?? 0} ${a.data.port} ${a.data.target}`;
    case 'SOA':
      return `SOA ${a.name} ${a.ttl ?? 0} ${a.data.mname} ${a.data.rname} ${a.data.refresh} ${a.data.retry} ${a.data.expire} ${a.data.minimum}`;
    case 'TXT':
      return `TXT ${a.name} ${a.ttl ?? 0} ${(Array.isArray(a.data) ? a.data : [a.data]).map(String).join('|')}`;
    case 'OPT':
      return `OPT ${a.udpPayloadSize}`;
    default:
      return `${a.type} ${a.name} ${'ttl' in a ? (a.ttl ?? 0) : 0} ${String(a.data)}`;
  }
}

function query(ask: Ask): Buffer {
  const p: Packet = {
    type: 'query', id: 4242, flags: RECURSION_DESIRED | ((ask.opcode ?? 0) << 11),
    questions: [{ name: ask.name, type: ask.type as RecordType, class: 'IN' }],
    additionals: ask.edns === undefined ? [] : [{ name: '.', type: 'OPT', udpPayloadSize: ask.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  };
  return encode(p);
}

describe('DNS answers over a real catalog', () => {
  let a: TestAgent;
  let names: NameIndex;

  const ask = (q: Ask): Got => {
    const request = decode(query(q));
    const res = answerQuery(request, {
      view: a.view, options: { ...BASE, ...q.options }, random: seededRandom(q.seed ?? 1), now: NOW, transport: q.transport ?? 'tcp', names,
    });
    // Through the wire format and back, so what is asserted is what a client would read.
    const wire = encode(res.response);
    const packet = decode(wire) as DecodedPacket & { rcode?: string };
    return {
      packet,
      rcode: packet.rcode ?? '?',
      answers: (packet.answers ?? []).map(rr).sort(),
      authority: (packet.authorities ?? []).map(rr).sort(),
      additional: (packet.additionals ?? []).filter((x) => x.type !== 'OPT').map(rr).sort(),
      truncated: res.truncated,
    };
  };

  const register = async (body: unknown): Promise<void> => {
    const r = await http(a.url, 'PUT', '/v1/catalog/register', body);
    assert.equal(r.status, 200, r.text);
  };
  const check = (id: string, status: string, serviceId: string) => ({ CheckID: id, Name: id, Status: status, ServiceID: serviceId });

  before(async () => {
    a = await startTestAgent();
    names = new NameIndex(a.view);
    await register({
      Node: 'node-a', Address: '10.0.0.1', NodeMeta: { rack: 'r1', 'rfc1035-raw': 'hello world', note: 'a`b' },
      Service: { ID: 'web-a', Service: 'web', Port: 8080, Tags: ['v1', 'primary'], Weights: { Passing: 10, Warning: 1 } },
      Check: check('web-a-check', 'passing', 'web-a'),
    });
    await register({
      Node: 'node-b', Address: '10.0.0.2',
      Service: { ID: 'web-b', Service: 'web', Port: 8080, Tags: ['v2'], Weights: { Passing: 5, Warning: 2 } },
      Check: check('web-b-check', 'warning', 'web-b'),
    });
    await register({ Node: 'node-c', Address: '10.0.0.3', Service: { ID: 'web-c', Service: 'web', Port: 8080, Tags: ['v1'] }, Check: check('web-c-check', 'critical', 'web-c') });
    await register({ Node: 'node-d', Address: '10.0.0.4', Service: { ID: 'web-d', Service: 'web', Port: 9090, Address: '192.168.1.4', Tags: ['v1.5'] } });
    // Node-level critical check hides every service on the node.
    await register({ Node: 'node-sick', Address: '10.0.0.9', Service: { ID: 'web-sick', Service: 'web', Port: 8080 }, Check: { CheckID: 'node-down', Name: 'node-down', Status: 'critical' } });
    await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: 'dup1', Service: 'dup', Port: 1000 } });
    await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: 'dup2', Service: 'dup', Port: 1001 } });
    await register({ Node: 'node-6', Address: 'fd00::6', Service: { ID: 'v6svc', Service: 'v6svc', Port: 80 } });
    await register({ Node: 'node-6', Address: 'fd00::6', Service: { ID: 'dual6', Service: 'dual', Port: 80 } });
    await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: 'dual4', Service: 'dual', Port: 80 } });
    await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: 'ext', Service: 'ext', Port: 5432, Address: 'db.example.com' } });
    await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: 'MixedCase', Service: 'MixedCase', Port: 1 } });
    for (let i = 0; i < 20; i++) await register({ Node: `m${i}`, Address: `10.1.0.${i}`, Service: { ID: 'many', Service: 'many', Port: 2000 + i } });
    for (let i = 0; i < 5; i++) await register({ Node: 'node-a', SkipNodeUpdate: true, Service: { ID: `crowd-${i}`, Service: 'crowd', Port: 3000 + i } });
    for (const svc of ['maint', 'maint2']) {
      const r = await http(a.url, 'PUT', '/v1/agent/service/register', { Name: svc, Port: 7000 });
      assert.equal(r.status, 200, r.text);
    }
    const m = await http(a.url, 'PUT', '/v1/agent/service/maintenance/maint?enable=true&reason=test');
    assert.equal(m.status, 200, m.text);
  });

  after(async () => {
    names.close();
    await a.stop();
  });

  const SOA = 'SOA consul 0 ns.consul hostmaster.consul 3600 600 86400 0';
  const webSrv = (name: string) => [
    `SRV ${name} 0 1 1 9090 c0a80104.addr.dc1.consul`,
    `SRV ${name} 0 1 10 8080 node-a.node.dc1.consul`,
    `SRV ${name} 0 1 2 8080 node-b.node.dc1.consul`,
  ];
  const webSrvExtra = ['A c0a80104.addr.dc1.consul 0 192.168.1.4', 'A node-a.node.dc1.consul 0 10.0.0.1', 'A node-b.node.dc1.consul 0 10.0.0.2'];

  const rows: { desc: string; ask: Ask; rcode: string; answers?: string[]; authority?: string[]; additional?: string[] }[] = [
    {
      desc: 'service A: passing and warning instances, not critical ones; the service address wins over the node address',
      ask: { name: 'web.service.consul', type: 'A' }, rcode: 'NOERROR',
      answers: ['A web.service.consul 0 10.0.0.1', 'A web.service.consul 0 10.0.0.2', 'A web.service.consul 0 192.168.1.4'], authority: [],
    },
    {
      desc: 'onlyPassing drops the warning instance',
      ask: { name: 'web.service.consul', type: 'A', options: { onlyPassing: true } }, rcode: 'NOERROR',
      answers: ['A web.service.consul 0 10.0.0.1', 'A web.service.consul 0 192.168.1.4'],
    },
    {
      desc: 'answers echo the question name as asked; matching ignores case',
      ask: { name: 'WEB.Service.CONSUL', type: 'A', options: { onlyPassing: true } }, rcode: 'NOERROR',
      answers: ['A WEB.Service.CONSUL 0 10.0.0.1', 'A WEB.Service.CONSUL 0 192.168.1.4'],
    },
    { desc: 'a service registered in mixed case', ask: { name: 'mixedcase.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A mixedcase.service.consul 0 10.0.0.1'] },
    {
      desc: 'SRV: weights by status, node targets with glue, an .addr. target for a service address',
      ask: { name: 'web.service.consul', type: 'SRV' }, rcode: 'NOERROR', answers: webSrv('web.service.consul'), additional: webSrvExtra,
    },
    { desc: 'RFC 2782 _web._tcp ≡ web', ask: { name: '_web._tcp.service.consul', type: 'SRV' }, rcode: 'NOERROR', answers: webSrv('_web._tcp.service.consul'), additional: webSrvExtra },
    { desc: 'RFC 2782 without the service label', ask: { name: '_web._tcp.consul', type: 'SRV' }, rcode: 'NOERROR', answers: webSrv('_web._tcp.consul'), additional: webSrvExtra },
    {
      desc: 'RFC 2782 with a tag',
      ask: { name: '_web._v1.service.consul', type: 'SRV' }, rcode: 'NOERROR',
      answers: ['SRV _web._v1.service.consul 0 1 10 8080 node-a.node.dc1.consul'], additional: ['A node-a.node.dc1.consul 0 10.0.0.1'],
    },
    { desc: 'tag lookup', ask: { name: 'v1.web.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A v1.web.service.consul 0 10.0.0.1'] },
    { desc: 'tag lookup, case-insensitive tag', ask: { name: 'PRIMARY.web.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A PRIMARY.web.service.consul 0 10.0.0.1'] },
    { desc: 'a tag containing a dot', ask: { name: 'v1.5.web.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A v1.5.web.service.consul 0 192.168.1.4'] },
    { desc: 'a tag nobody has', ask: { name: 'v9.web.service.consul', type: 'A' }, rcode: 'NXDOMAIN', answers: [], authority: [SOA] },
    { desc: 'the local datacenter label', ask: { name: 'v1.web.service.DC1.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A v1.web.service.DC1.consul 0 10.0.0.1'] },
    { desc: 'another datacenter is NXDOMAIN', ask: { name: 'web.service.dc2.consul', type: 'A' }, rcode: 'NXDOMAIN', answers: [], authority: [SOA] },
    { desc: 'two labels between kind and domain', ask: { name: 'web.service.dc1.x.consul', type: 'A' }, rcode: 'NXDOMAIN', authority: [SOA] },
    { desc: 'unknown service: NXDOMAIN with the SOA', ask: { name: 'nope.service.consul', type: 'A' }, rcode: 'NXDOMAIN', answers: [], authority: [SOA] },
    { desc: 'an instance with a critical node check is hidden', ask: { name: 'web.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A web.service.consul 0 10.0.0.1', 'A web.service.consul 0 10.0.0.2', 'A web.service.consul 0 192.168.1.4'] },
    { desc: 'maintenance hides a service', ask: { name: 'maint.service.consul', type: 'A' }, rcode: 'NXDOMAIN', authority: [SOA] },
    { desc: 'a service on the agent node', ask: { name: 'maint2.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A maint2.service.consul 0 127.0.0.1'] },
    { desc: 'AAAA for an IPv4-only service: NODATA', ask: { name: 'web.service.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: 'MX for a service: NODATA', ask: { name: 'web.service.consul', type: 'MX' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: 'AAAA for an IPv6 service', ask: { name: 'v6svc.service.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: ['AAAA v6svc.service.consul 0 fd00::6'], authority: [] },
    { desc: 'A for an IPv6 service: NODATA', ask: { name: 'v6svc.service.consul', type: 'A' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: 'ANY gives both families', ask: { name: 'dual.service.consul', type: 'ANY' }, rcode: 'NOERROR', answers: ['A dual.service.consul 0 10.0.0.1', 'AAAA dual.service.consul 0 fd00::6'] },
    {
      desc: 'SRV to an IPv6 node has an AAAA in additional',
      ask: { name: 'v6svc.service.consul', type: 'SRV' }, rcode: 'NOERROR',
      answers: ['SRV v6svc.service.consul 0 1 1 80 node-6.node.dc1.consul'], additional: ['AAAA node-6.node.dc1.consul 0 fd00::6'],
    },
    { desc: 'one A per distinct address', ask: { name: 'dup.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A dup.service.consul 0 10.0.0.1'] },
    {
      // As Consul: one address record per SRV answer, even for one node (HAProxy pairs them one to one).
      desc: 'one SRV per port, each with its own glue record',
      ask: { name: 'dup.service.consul', type: 'SRV' }, rcode: 'NOERROR',
      answers: ['SRV dup.service.consul 0 1 1 1000 node-a.node.dc1.consul', 'SRV dup.service.consul 0 1 1 1001 node-a.node.dc1.consul'],
      additional: ['A node-a.node.dc1.consul 0 10.0.0.1', 'A node-a.node.dc1.consul 0 10.0.0.1'],
    },
    { desc: 'a host-name service address is a CNAME', ask: { name: 'ext.service.consul', type: 'A' }, rcode: 'NOERROR', answers: ['CNAME ext.service.consul 0 db.example.com'] },
    {
      desc: 'SRV to a host-name service address targets the host',
      ask: { name: 'ext.service.consul', type: 'SRV' }, rcode: 'NOERROR', answers: ['SRV ext.service.consul 0 1 1 5432 db.example.com'], additional: [],
    },
    { desc: 'node A', ask: { name: 'node-a.node.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A node-a.node.consul 0 10.0.0.1'] },
    { desc: 'node A, another case and the datacenter', ask: { name: 'Node-A.node.dc1.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A Node-A.node.dc1.consul 0 10.0.0.1'] },
    { desc: 'node AAAA', ask: { name: 'node-6.node.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: ['AAAA node-6.node.consul 0 fd00::6'] },
    { desc: 'node AAAA for an IPv4 node: NODATA', ask: { name: 'node-a.node.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    {
      desc: 'node TXT: meta per RFC 1464, rfc1035- keys bare',
      ask: { name: 'node-a.node.consul', type: 'TXT' }, rcode: 'NOERROR',
      answers: ['TXT node-a.node.consul 0 note=a``b', 'TXT node-a.node.consul 0 hello world', 'TXT node-a.node.consul 0 rack=r1'],
    },
    {
      desc: 'node ANY: address and meta',
      ask: { name: 'node-a.node.consul', type: 'ANY' }, rcode: 'NOERROR',
      answers: ['A node-a.node.consul 0 10.0.0.1', 'TXT node-a.node.consul 0 note=a``b', 'TXT node-a.node.consul 0 hello world', 'TXT node-a.node.consul 0 rack=r1'],
    },
    { desc: 'unknown node', ask: { name: 'nope.node.consul', type: 'A' }, rcode: 'NXDOMAIN', answers: [], authority: [SOA] },
    { desc: '.addr. IPv4', ask: { name: 'c0a80104.addr.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A c0a80104.addr.consul 0 192.168.1.4'] },
    { desc: '.addr. IPv4 with datacenter', ask: { name: 'c0a80104.addr.dc1.consul', type: 'A' }, rcode: 'NOERROR', answers: ['A c0a80104.addr.dc1.consul 0 192.168.1.4'] },
    { desc: '.addr. IPv6', ask: { name: 'fd000000000000000000000000000006.addr.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: ['AAAA fd000000000000000000000000000006.addr.consul 0 fd00::6'] },
    { desc: '.addr. AAAA of an IPv4: NODATA', ask: { name: 'c0a80104.addr.consul', type: 'AAAA' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: '.addr. with bad hex', ask: { name: 'c0a8010z.addr.consul', type: 'A' }, rcode: 'NXDOMAIN', authority: [SOA] },
    { desc: 'a query name with no prepared query behind it (none served here) does not exist', ask: { name: 'q.query.consul', type: 'A' }, rcode: 'NXDOMAIN', authority: [SOA] },
    { desc: 'outside the domain: REFUSED, no records', ask: { name: 'example.com', type: 'A' }, rcode: 'REFUSED', answers: [], authority: [] },
    {
      desc: 'apex SOA, with the consul service nodes as NS',
      ask: { name: 'consul', type: 'SOA' }, rcode: 'NOERROR',
      answers: ['SOA consul 0 ns.consul hostmaster.consul 3600 600 86400 0'], authority: ['NS consul 0 n1.node.dc1.consul'], additional: ['A n1.node.dc1.consul 0 127.0.0.1'],
    },
    { desc: 'apex NS', ask: { name: 'Consul.', type: 'NS' }, rcode: 'NOERROR', answers: ['NS consul 0 n1.node.dc1.consul'], additional: ['A n1.node.dc1.consul 0 127.0.0.1'] },
    { desc: 'apex A: NODATA', ask: { name: 'consul', type: 'A' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: 'SOA below the apex is an ordinary lookup', ask: { name: 'web.service.consul', type: 'SOA' }, rcode: 'NOERROR', answers: [], authority: [SOA] },
    { desc: 'zone transfers are not implemented', ask: { name: 'consul', type: 'AXFR' }, rcode: 'NOTIMP', answers: [] },
    {
      desc: 'service TTL by exact name, node TTL for glue-free node lookups',
      ask: { name: 'v1.web.service.consul', type: 'SRV', options: { serviceTtl: { web: 30, 'we*': 20, '*': 5 }, nodeTtl: 60 } }, rcode: 'NOERROR',
      answers: ['SRV v1.web.service.consul 30 1 10 8080 node-a.node.dc1.consul'], additional: ['A node-a.node.dc1.consul 30 10.0.0.1'],
    },
    { desc: 'service TTL by prefix', ask: { name: 'dup.service.consul', type: 'A', options: { serviceTtl: { web: 30, 'd*': 20, '*': 5 } } }, rcode: 'NOERROR', answers: ['A dup.service.consul 20 10.0.0.1'] },
    { desc: 'service TTL by *', ask: { name: 'dup.service.consul', type: 'A', options: { serviceTtl: { web: 30, '*': 5 } } }, rcode: 'NOERROR', answers: ['A dup.service.consul 5 10.0.0.1'] },
    { desc: 'node TTL', ask: { name: 'node-a.node.consul', type: 'A', options: { nodeTtl: 60, serviceTtl: { '*': 5 } } }, rcode: 'NOERROR', answers: ['A node-a.node.consul 60 10.0.0.1'] },
    { desc: 'another domain', ask: { name: 'web.service.sy.example', type: 'A', options: { domain: 'sy.example', onlyPassing: true } }, rcode: 'NOERROR', answers: ['A web.service.sy.example 0 10.0.0.1', 'A web.service.sy.example 0 192.168.1.4'] },
    { desc: 'consul. is outside another domain', ask: { name: 'web.service.consul', type: 'A', options: { domain: 'sy.example' } }, rcode: 'REFUSED' },
    // Reverse DNS, as Consul: a node's address names the node, a service's own address the service.
    { desc: 'PTR for a node address', ask: { name: '1.0.0.10.in-addr.arpa', type: 'PTR' }, rcode: 'NOERROR', answers: ['PTR 1.0.0.10.in-addr.arpa 0 node-a.node.dc1.consul'] },
    { desc: 'PTR, case-insensitive, trailing dot', ask: { name: '2.0.0.10.IN-ADDR.ARPA.', type: 'PTR' }, rcode: 'NOERROR', answers: ['PTR 2.0.0.10.IN-ADDR.ARPA 0 node-b.node.dc1.consul'] },
    { desc: 'PTR for a service address', ask: { name: '4.1.168.192.in-addr.arpa', type: 'PTR' }, rcode: 'NOERROR', answers: ['PTR 4.1.168.192.in-addr.arpa 0 web.service.consul'] },
    {
      desc: 'PTR for an IPv6 node address',
      ask: { name: `${'6000000000000000000000000000'.split('').join('.')}.0.0.d.f.ip6.arpa`, type: 'PTR' }, rcode: 'NOERROR',
      answers: [`PTR ${'6000000000000000000000000000'.split('').join('.')}.0.0.d.f.ip6.arpa 0 node-6.node.dc1.consul`],
    },
    { desc: 'PTR in the domain of another name', ask: { name: '1.0.0.10.in-addr.arpa', type: 'PTR', options: { domain: 'sy.example' } }, rcode: 'NOERROR', answers: ['PTR 1.0.0.10.in-addr.arpa 0 node-a.node.dc1.sy.example'] },
    { desc: 'PTR for an address nobody has: REFUSED', ask: { name: '9.9.9.9.in-addr.arpa', type: 'PTR' }, rcode: 'REFUSED', answers: [] },
    { desc: 'a partial reverse name: REFUSED', ask: { name: '0.10.in-addr.arpa', type: 'PTR' }, rcode: 'REFUSED', answers: [] },
    { desc: 'A on a known reverse name: NODATA', ask: { name: '1.0.0.10.in-addr.arpa', type: 'A' }, rcode: 'NOERROR', answers: [] },
  ];

  for (const row of rows) {
    it(row.desc, () => {
      const got = ask(row.ask);
      assert.equal(got.rcode, row.rcode);
      if (row.answers) assert.deepEqual(got.answers, [...row.answers].sort());
      if (row.authority) assert.deepEqual(got.authority, [...row.authority].sort());
      if (row.additional) assert.deepEqual(got.additional, [...row.additional].sort());
      assert.equal(got.packet.id, 4242);
      assert.equal(got.packet.flag_qr, true);
      assert.equal(got.packet.flag_rd, true, 'RD is echoed');
      assert.equal(got.packet.flag_ra, false, 'no recursion offered');
      assert.equal(got.packet.flag_aa, row.rcode !== 'REFUSED', 'authoritative inside the domain only');
      assert.equal(got.packet.flag_tc, false);
    });
  }

  it('shuffles instances on every query, with every instance first now and then', () => {
    const firsts = new Set<string>();
    const orders = new Set<string>();
    for (let seed = 1; seed <= 300; seed++) {
      const got = ask({ name: 'many.service.consul', type: 'A', seed });
      const order = (got.packet.answers ?? []).map((x) => ('data' in x ? String(x.data) : ''));
      assert.equal(order.length, 20);
      firsts.add(order[0] ?? '');
      orders.add(order.join(','));
    }
    assert.equal(firsts.size, 20);
    assert.ok(orders.size > 290, `${orders.size} distinct orders of 300`);
    const again = (seed: number) => (ask({ name: 'many.service.consul', type: 'SRV', seed }).packet.answers ?? []).map(rr).join();
    assert.equal(again(7), again(7), 'the same random sequence gives the same order');
  });

  it('UDP without EDNS: at most udpAnswerLimit answers, TC set', () => {
    const got = ask({ name: 'many.service.consul', type: 'A', transport: 'udp' });
    assert.equal(got.answers.length, 3);
    assert.equal(got.packet.flag_tc, true);
    assert.equal(got.truncated, true);
    assert.equal((got.packet.additionals ?? []).length, 0, 'no OPT when the query had none');
  });

  it('UDP: udpAnswerLimit is capped at 8, then bytes decide', () => {
    const a20 = ask({ name: 'many.service.consul', type: 'A', transport: 'udp', options: { udpAnswerLimit: 20 } });
    assert.equal(a20.answers.length, 8);
    assert.equal(a20.packet.flag_tc, true);
    const srv = ask({ name: 'many.service.consul', type: 'SRV', transport: 'udp', options: { udpAnswerLimit: 8 } });
    const wire = encode(srv.packet);
    assert.ok(wire.length <= 512, `${wire.length} bytes`);
    assert.ok(srv.answers.length >= 1 && srv.answers.length < 8, `${srv.answers.length} SRV records`);
    assert.equal(srv.packet.flag_tc, true);
    // The additional section holds exactly the glue of the SRV records that stayed.
    const targets = (srv.packet.answers ?? []).map((x) => (x.type === 'SRV' ? x.data.target : '')).sort();
    const glue = (srv.packet.additionals ?? []).map((x) => x.name).sort();
    assert.deepEqual(glue, targets);
  });

  it('UDP with EDNS0: the advertised size is the limit, no count cap, OPT echoed', () => {
    const big = ask({ name: 'many.service.consul', type: 'A', transport: 'udp', edns: 4096 });
    assert.equal(big.answers.length, 20);
    assert.equal(big.packet.flag_tc, false);
    const opt = (big.packet.additionals ?? []).find((x) => x.type === 'OPT');
    assert.ok(opt && opt.type === 'OPT');
    assert.equal(opt.ednsVersion, 0);

    const srv = ask({ name: 'many.service.consul', type: 'SRV', transport: 'udp', edns: 1232 });
    assert.ok(encode(srv.packet).length <= 1232);
    assert.ok(srv.answers.length > 8 && srv.answers.length < 20, `${srv.answers.length} SRV records in 1232 bytes`);
    assert.equal(srv.packet.flag_tc, true);

    // A size under 512 is read as 512, where the count cap applies again.
    const small = ask({ name: 'many.service.consul', type: 'A', transport: 'udp', edns: 100 });
    assert.equal(small.answers.length, 3);
  });

  it('UDP answers stop at 1232 bytes by default, whatever the client advertises; TC set; OPT advertises 1232', () => {
    // 20 SRV records with their glue: ~1.9 KB, which a client advertising 4096 used to get in one datagram.
    const got = ask({ name: 'many.service.consul', type: 'SRV', transport: 'udp', edns: 4096 });
    const wire = encode(got.packet);
    assert.ok(wire.length <= 1232, `${wire.length} bytes`);
    assert.ok(got.answers.length > 8 && got.answers.length < 20, `${got.answers.length} SRV records`);
    assert.equal(got.packet.flag_tc, true);
    const opt = (got.packet.additionals ?? []).find((x) => x.type === 'OPT');
    assert.equal(opt?.type === 'OPT' ? opt.udpPayloadSize : undefined, 1232, 'the OPT record advertises 1232');
    // The same question over TCP is whole: the cut is the UDP limit's doing.
    const tcp = encode(ask({ name: 'many.service.consul', type: 'SRV', transport: 'tcp', edns: 4096 }).packet).length;
    assert.ok(tcp > 1232, `${tcp} bytes over TCP`);
  });

  it('maxUdpSize raises (or lowers) the UDP cap', () => {
    const all = ask({ name: 'many.service.consul', type: 'SRV', transport: 'udp', edns: 4096, options: { maxUdpSize: 4096 } });
    assert.equal(all.answers.length, 20);
    assert.equal(all.packet.flag_tc, false);
    assert.ok(encode(all.packet).length > 1232, `${encode(all.packet).length} bytes`);
    const opt = (all.packet.additionals ?? []).find((x) => x.type === 'OPT');
    assert.equal(opt?.type === 'OPT' ? opt.udpPayloadSize : 0, 4096);
    const small = ask({ name: 'many.service.consul', type: 'SRV', transport: 'udp', edns: 4096, options: { maxUdpSize: 600 } });
    assert.ok(encode(small.packet).length <= 600, `${encode(small.packet).length} bytes`);
    assert.equal(small.packet.flag_tc, true);
  });

  it('glue copies stay in an answer that fits, and are merged into one when the answer is trimmed (as Consul\'s syncExtra)', () => {
    const whole = ask({ name: 'crowd.service.consul', type: 'SRV', transport: 'udp', edns: 1232 });
    assert.equal(whole.answers.length, 5);
    assert.deepEqual(whole.additional, Array(5).fill('A node-a.node.dc1.consul 0 10.0.0.1'));
    assert.equal(whole.packet.flag_tc, false);
    const cut = ask({ name: 'crowd.service.consul', type: 'SRV', transport: 'udp' });
    assert.equal(cut.answers.length, 3);
    assert.deepEqual(cut.additional, ['A node-a.node.dc1.consul 0 10.0.0.1']);
    assert.equal(cut.packet.flag_tc, true);
  });

  it('enableTruncate=false gives the partial answer without TC (Consul default)', () => {
    const got = ask({ name: 'many.service.consul', type: 'A', transport: 'udp', options: { enableTruncate: false } });
    assert.equal(got.answers.length, 3);
    assert.equal(got.packet.flag_tc, false);
    assert.equal(got.truncated, true);
  });

  it('TCP carries everything and never sets TC', () => {
    const got = ask({ name: 'many.service.consul', type: 'SRV', transport: 'tcp' });
    assert.equal(got.answers.length, 20);
    assert.equal(got.additional.length, 20);
    assert.equal(got.packet.flag_tc, false);
  });

  it('SOA serial is the current unix time', () => {
    const got = ask({ name: 'nope.service.consul', type: 'A' });
    const soa = got.packet.authorities?.[0];
    assert.ok(soa && soa.type === 'SOA');
    assert.equal(soa.data.serial, NOW / 1000);
  });

  it('non-QUERY opcodes get NOTIMP', () => {
    const got = ask({ name: 'web.service.consul', type: 'A', opcode: 2 });
    assert.equal(got.rcode, 'NOTIMP');
    assert.equal((got.packet as unknown as { opcode: string }).opcode, 'STATUS');
  });

  it('follows catalog changes', async () => {
    assert.equal(ask({ name: 'late.service.consul', type: 'A' }).rcode, 'NXDOMAIN');
    await register({ Node: 'node-late', Address: '10.9.9.9', Service: { ID: 'late', Service: 'Late', Port: 1 } });
    assert.deepEqual(ask({ name: 'late.service.consul', type: 'A' }).answers, ['A late.service.consul 0 10.9.9.9']);
    await register({ Node: 'node-late', Address: '10.9.9.9', Check: check('late-check', 'critical', 'late') });
    assert.equal(ask({ name: 'late.service.consul', type: 'A' }).rcode, 'NXDOMAIN');
    await http(a.url, 'PUT', '/v1/catalog/deregister', { Node: 'node-late' });
    assert.equal(ask({ name: 'node-late.node.consul', type: 'A' }).rcode, 'NXDOMAIN');
  });
});
