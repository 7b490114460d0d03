// The DNS server end to end: real UDP and TCP sockets against a real agent, queried with dig (Debian dnsutils) and Node's resolver.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { decode, encode } from 'dns-packet';
import type { Packet } from 'dns-packet';
import { pino } from 'pino';
import { DnsServer } from '../../src/dns/server.js';
import { seededRandom } from '../../src/core/clock.js';
import type { DnsAddresses } from '../../src/dns/server.js';
import { startTestAgent, http, sleep, tempDir } from '../helpers/agent.js';
import { switchyard } from '../helpers/process.js';
import { dig, digSkip } from '../helpers/dig.js';
import type { Rr } from '../helpers/dig.js';
import type { TestAgent } from '../helpers/agent.js';

const HOST = '127.0.0.1';

const digIt = (name: string, fn: () => Promise<void>): void => {
  it(name, { skip: digSkip }, fn);
};

/** One datagram out; the reply, or undefined after `waitMs`. */
async function udpExchange(port: number, bytes: Buffer, waitMs = 1000): Promise<Buffer | undefined> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<Buffer | undefined>((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      sock.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      sock.once('error', reject);
      sock.send(bytes, port, HOST);
    });
  } finally {
    sock.close();
  }
}

/** Writes `bytes` raw over TCP, optionally half-closes, and collects framed replies until the server closes or `waitMs` passes. */
async function tcpExchange(port: number, bytes: Buffer, opts: { end?: boolean; waitMs?: number } = {}): Promise<{ replies: Buffer[]; closedByServer: boolean }> {
  const sock = connect(port, HOST);
  const chunks: Buffer[] = [];
  let closedByServer = false;
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  sock.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<void>((resolve) => sock.once('close', () => {
    closedByServer = true;
    resolve();
  }));
  sock.on('error', () => undefined);
  sock.write(bytes);
  if (opts.end) sock.end();
  await Promise.race([closed, sleep(opts.waitMs ?? 1000)]);
  sock.destroy();
  const all = Buffer.concat(chunks);
  const replies: Buffer[] = [];
  for (let off = 0; off + 2 <= all.length;) {
    const len = all.readUInt16BE(off);
    replies.push(all.subarray(off + 2, off + 2 + len));
    off += 2 + len;
  }
  return { replies, closedByServer };
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

function queryBytes(name: string, type: 'A' | 'SRV', id: number): Buffer {
  const p: Packet = { type: 'query', id, flags: 0x0100, questions: [{ name, type, class: 'IN' }] };
  return encode(p);
}

describe('DNS server (dig and the Node resolver against a real agent)', () => {
  let a: TestAgent;
  let server: DnsServer;
  let passingOnly: DnsServer;
  let addr: DnsAddresses;
  let port: number;
  let webPort: number;
  let passingPort: number;

  const register = async (body: unknown): Promise<void> => {
    const r = await http(a.url, 'PUT', '/v1/catalog/register', body);
    assert.equal(r.status, 200, r.text);
  };

  before(async () => {
    a = await startTestAgent();
    const logger = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });
    webPort = 8080;
    const web = (node: string, address: string, status: string, extra: Record<string, unknown> = {}) => register({
      Node: node, Address: address,
      Service: { ID: `web-${node}`, Service: 'web', Port: webPort, Tags: node === 'wa' ? ['v1'] : ['v2'], ...extra },
      Check: { CheckID: `chk-${node}`, Name: 'web', Status: status, ServiceID: `web-${node}` },
    });
    await web('wa', '10.0.0.1', 'passing', { Weights: { Passing: 10, Warning: 1 } });
    await web('wb', '10.0.0.2', 'warning', { Weights: { Passing: 10, Warning: 3 } });
    await web('wc', '10.0.0.3', 'critical');
    await register({ Node: 'sa', Address: '10.0.0.4', Service: { ID: 'api', Service: 'api', Port: 9000, Address: '192.168.7.4' } });
    for (let i = 0; i < 20; i++) await register({ Node: `m${i}`, Address: `10.1.0.${i}`, Service: { ID: 'many', Service: 'many', Port: 2000 + i } });
    server = new DnsServer({ view: a.view, logger, datacenter: 'dc1', nodeName: 'n1' });
    addr = await server.start(HOST, 0);
    port = addr.udp.port;
    passingOnly = new DnsServer({ view: a.view, logger, datacenter: 'dc1', onlyPassing: true, ttl: { service: { web: 15 } } });
    passingPort = (await passingOnly.start(HOST, 0)).udp.port;
  });

  after(async () => {
    await server?.close();
    await passingOnly?.close();
    await a?.stop();
  });

  it('binds UDP and TCP on one port; close is idempotent; a second server on the port fails', async () => {
    assert.equal(addr.udp.port, addr.tcp.port);
    assert.ok(port > 0);
    assert.equal(addr.udp.host, HOST);
    const clash = new DnsServer({ view: a.view, logger: pino({ level: 'silent' }), datacenter: 'dc1' });
    await assert.rejects(clash.start(HOST, port), /EADDRINUSE/);
    await clash.close();
    const once = new DnsServer({ view: a.view, logger: pino({ level: 'silent' }), datacenter: 'dc1' });
    await once.start(HOST, 0);
    await once.close();
    await once.close();
    await assert.rejects(once.start(HOST, 0), /cannot start/);
  });

  it('a TCP port taken after UDP bound fails the start and releases the UDP socket', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, HOST, r));
    const taken = (blocker.address() as AddressInfo).port;
    const s = new DnsServer({ view: a.view, logger: pino({ level: 'silent' }), datacenter: 'dc1' });
    try {
      await assert.rejects(s.start(HOST, taken), /EADDRINUSE/);
      await new Promise<void>((r) => blocker.close(() => r()));
      // Same server, same port: only possible if the failed attempt let go of its UDP socket.
      const got = await s.start(HOST, taken);
      assert.equal(got.udp.port, taken);
      assert.equal(got.tcp.port, taken);
    } finally {
      await s.close();
      blocker.close();
    }
  });

  describe('with dig', () => {
    digIt('A: passing and warning instances, TTL 0, authoritative', async () => {
      const r = await dig(port, 'web.service.consul', 'A');
      assert.equal(r.status, 'NOERROR');
      assert.ok(r.flags.includes('aa'), r.raw);
      assert.ok(!r.flags.includes('ra'), r.raw);
      assert.deepEqual(r.answer.map((x) => x.data).sort(), ['10.0.0.1', '10.0.0.2']);
      for (const rr of r.answer) {
        assert.equal(rr.name, 'web.service.consul.');
        assert.equal(rr.ttl, 0);
        assert.equal(rr.type, 'A');
      }
    });

    digIt('only_passing drops the warning instance; a configured service TTL applies', async () => {
      const r = await dig(passingPort, 'web.service.consul', 'A');
      assert.deepEqual(r.answer.map((x) => `${x.data}/${x.ttl}`), ['10.0.0.1/15']);
    });

    digIt('NXDOMAIN with the SOA in authority', async () => {
      const r = await dig(port, 'nope.service.consul', 'A');
      assert.equal(r.status, 'NXDOMAIN');
      assert.equal(r.answer.length, 0);
      assert.equal(r.authority.length, 1);
      const soa = r.authority[0] as Rr;
      assert.equal(soa.name, 'consul.');
      assert.equal(soa.type, 'SOA');
      const [mname, rname, serial, refresh, retry, expire, minimum] = soa.data.split(' ');
      assert.equal(mname, 'ns.consul.');
      assert.equal(rname, 'hostmaster.consul.');
      assert.ok(Math.abs(Number(serial) - Date.now() / 1000) < 60, `serial ${serial}`);
      assert.deepEqual([refresh, retry, expire, minimum], ['3600', '600', '86400', '0']);
    });

    digIt('SRV: node targets with weights by status and the node A in additional; an .addr. target for a service address', async () => {
      const r = await dig(port, 'web.service.consul', 'SRV');
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(r.answer.map((x) => x.data).sort(), [`1 10 ${webPort} wa.node.dc1.consul.`, `1 3 ${webPort} wb.node.dc1.consul.`]);
      assert.deepEqual(r.additional.map((x) => `${x.name} ${x.type} ${x.data}`).sort(), ['wa.node.dc1.consul. A 10.0.0.1', 'wb.node.dc1.consul. A 10.0.0.2']);
      const api = await dig(port, 'api.service.consul', 'SRV');
      assert.deepEqual(api.answer.map((x) => x.data), ['1 1 9000 c0a80704.addr.dc1.consul.']);
      assert.deepEqual(api.additional.map((x) => `${x.name} ${x.type} ${x.data}`), ['c0a80704.addr.dc1.consul. A 192.168.7.4']);
      const back = await dig(port, 'c0a80704.addr.dc1.consul', 'A', '+short');
      assert.equal(back.raw.trim(), '192.168.7.4');
    });

    digIt('_web._tcp.service.consul SRV ≡ web.service.consul SRV', async () => {
      const plain = await dig(port, 'web.service.consul', 'SRV', '+short');
      const rfc = await dig(port, '_web._tcp.service.consul', 'SRV', '+short');
      const lines = (s: string) => s.trim().split('\n').sort();
      assert.deepEqual(lines(rfc.raw), lines(plain.raw));
      assert.equal(lines(rfc.raw).length, 2);
    });

    digIt('a tag filters: v1.web.service.consul', async () => {
      const r = await dig(port, 'v1.web.service.consul', 'A', '+short');
      assert.equal(r.raw.trim(), '10.0.0.1');
      const srv = await dig(port, '_web._v2.service.consul', 'SRV', '+short');
      assert.equal(srv.raw.trim(), `1 3 ${webPort} wb.node.dc1.consul.`);
    });

    digIt('node lookup: n1.node.consul A is the agent node address', async () => {
      const r = await dig(port, 'n1.node.consul', 'A');
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(r.answer.map((x) => x.data), ['127.0.0.1']);
      const dc = await dig(port, 'wa.node.dc1.consul', 'A', '+short');
      assert.equal(dc.raw.trim(), '10.0.0.1');
    });

    digIt('AAAA for IPv4-only instances is NODATA with the SOA', async () => {
      const r = await dig(port, 'web.service.consul', 'AAAA');
      assert.equal(r.status, 'NOERROR');
      assert.equal(r.answer.length, 0);
      assert.equal(r.authority[0]?.type, 'SOA');
    });

    digIt('names outside the domain are REFUSED', async () => {
      const r = await dig(port, 'example.com', 'A');
      assert.equal(r.status, 'REFUSED');
      assert.ok(!r.flags.includes('aa'));
    });

    digIt('over TCP', async () => {
      const r = await dig(port, 'web.service.consul', 'SRV', '+tcp');
      assert.equal(r.server, 'TCP');
      assert.equal(r.answer.length, 2);
      assert.equal(r.additional.length, 2);
    });

    digIt('UDP without EDNS: 3 answers and TC; dig then retries over TCP and gets all 20', async () => {
      const cut = await dig(port, 'many.service.consul', 'A', '+noedns', '+ignore');
      assert.ok(cut.flags.includes('tc'), cut.raw);
      assert.equal(cut.answer.length, 3);
      assert.equal(cut.server, 'UDP');
      const retried = await dig(port, 'many.service.consul', 'A', '+noedns');
      assert.equal(retried.server, 'TCP', retried.raw);
      assert.equal(retried.answer.length, 20);
      assert.ok(!retried.flags.includes('tc'));
    });

    digIt('UDP with EDNS0: the advertised size decides', async () => {
      const big = await dig(port, 'many.service.consul', 'A', '+bufsize=4096', '+ignore');
      assert.equal(big.server, 'UDP');
      assert.equal(big.answer.length, 20);
      assert.ok(!big.flags.includes('tc'));
      assert.match(big.raw, /EDNS: version: 0/);
      const srv = await dig(port, 'many.service.consul', 'SRV', '+bufsize=1232', '+ignore');
      assert.ok(srv.flags.includes('tc'), srv.raw);
      assert.ok(srv.answer.length > 8 && srv.answer.length < 20, `${srv.answer.length} SRV`);
      // Each SRV that stayed has its glue, and no glue is left for one that went.
      assert.deepEqual(srv.additional.map((x) => x.name).sort(), srv.answer.map((x) => x.data.split(' ')[3]).sort());
      const bytes = Number(/MSG SIZE {2}rcvd: (\d+)/.exec(srv.raw)?.[1]);
      assert.ok(bytes <= 1232, `${bytes} bytes`);
    });

    digIt('UDP answers are capped at 1232 bytes even when the client advertises 4096 (TC set, dig retries over TCP)', async () => {
      const cut = await dig(port, 'many.service.consul', 'SRV', '+bufsize=4096', '+ignore');
      assert.equal(cut.server, 'UDP');
      assert.ok(cut.flags.includes('tc'), cut.raw);
      const bytes = Number(/MSG SIZE {2}rcvd: (\d+)/.exec(cut.raw)?.[1]);
      assert.ok(bytes <= 1232, `${bytes} bytes`);
      assert.match(cut.raw, /; EDNS: version: 0, flags:; udp: 1232/);
      const whole = await dig(port, 'many.service.consul', 'SRV', '+bufsize=4096');
      assert.equal(whole.server, 'TCP', whole.raw);
      assert.equal(whole.answer.length, 20);
    });

    digIt('a server with maxUdpSize 4096 sends the whole answer over UDP', async () => {
      const big = new DnsServer({ view: a.view, logger: pino({ level: 'silent' }), datacenter: 'dc1', maxUdpSize: 4096 });
      const bigPort = (await big.start(HOST, 0)).udp.port;
      try {
        const r = await dig(bigPort, 'many.service.consul', 'SRV', '+bufsize=4096', '+ignore');
        assert.equal(r.server, 'UDP');
        assert.ok(!r.flags.includes('tc'), r.raw);
        assert.equal(r.answer.length, 20);
        assert.ok(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(r.raw)?.[1]) > 1232, r.raw);
      } finally {
        await big.close();
      }
    });

    digIt('the agent\'s dns-udp-max-size sets the cap; a value under 512 is refused naming the flag', async () => {
      const agent = await startTestAgent({ 'dns-addr': '127.0.0.1:0', 'dns-udp-max-size': 600 });
      try {
        for (let i = 0; i < 20; i++) {
          const r = await http(agent.url, 'PUT', '/v1/catalog/register', { Node: `m${i}`, Address: `10.1.0.${i}`, Service: { ID: 'many', Service: 'many', Port: 2000 + i } });
          assert.equal(r.status, 200);
        }
        const r = await dig(agent.dns!.udp.port, 'many.service.consul', 'SRV', '+bufsize=4096', '+ignore');
        assert.ok(r.flags.includes('tc'), r.raw);
        assert.ok(Number(/MSG SIZE {2}rcvd: (\d+)/.exec(r.raw)?.[1]) <= 600, r.raw);
      } finally {
        await agent.stop();
      }
      const p = switchyard(['agent', '--http-addr', '127.0.0.1:0', '--data-dir', tempDir(), '--dns-udp-max-size', '100']);
      const { code } = await p.exited;
      assert.equal(code, 2, p.stderr());
      assert.match(p.stderr(), /--dns-udp-max-size/);
    });

    digIt('dig -x answers PTR for node and service addresses', async () => {
      const node = await dig(port, '-x', '10.0.0.1');
      assert.equal(node.status, 'NOERROR', node.raw);
      assert.ok(node.flags.includes('aa'));
      assert.deepEqual(node.answer.map((r) => [r.name, r.type, r.data]), [['1.0.0.10.in-addr.arpa.', 'PTR', 'wa.node.dc1.consul.']]);
      const self = await dig(port, '-x', '127.0.0.1', '+short');
      assert.equal(self.raw.trim(), 'n1.node.dc1.consul.');
      const svc = await dig(port, '-x', '192.168.7.4', '+short');
      assert.equal(svc.raw.trim(), 'api.service.consul.');
      const unknown = await dig(port, '-x', '203.0.113.9');
      assert.equal(unknown.status, 'REFUSED');
    });

    digIt('sees catalog changes at once', async () => {
      assert.equal((await dig(port, 'fresh.service.consul', 'A')).status, 'NXDOMAIN');
      await register({ Node: 'fresh-node', Address: '10.7.7.7', Service: { ID: 'fresh', Service: 'fresh', Port: 1 } });
      assert.equal((await dig(port, 'fresh.service.consul', 'A', '+short')).raw.trim(), '10.7.7.7');
    });
  });

  describe("with Node's resolver", () => {
    const resolver = (p: number) => {
      const r = new dnsPromises.Resolver({ timeout: 3000, tries: 1 });
      r.setServers([`${HOST}:${p}`]);
      return r;
    };

    it('resolve4 and resolveSrv', async () => {
      const r = resolver(port);
      assert.deepEqual((await r.resolve4('web.service.consul')).sort(), ['10.0.0.1', '10.0.0.2']);
      const srv = (await r.resolveSrv('_web._tcp.service.consul')).sort((x, y) => x.name.localeCompare(y.name));
      assert.deepEqual(srv, [
        { name: 'wa.node.dc1.consul', port: webPort, priority: 1, weight: 10 },
        { name: 'wb.node.dc1.consul', port: webPort, priority: 1, weight: 3 },
      ]);
      const withTtl = await r.resolve4('n1.node.consul', { ttl: true });
      assert.deepEqual(withTtl, [{ address: '127.0.0.1', ttl: 0 }]);
    });

    it('gets all 20 instances (EDNS0 or a TCP retry after TC)', async () => {
      assert.equal((await resolver(port).resolve4('many.service.consul')).length, 20);
    });

    it('ENOTFOUND for a missing service, the SOA at the apex, TXT node meta', async () => {
      const r = resolver(port);
      await assert.rejects(r.resolve4('nope.service.consul'), (err: NodeJS.ErrnoException) => err.code === 'ENOTFOUND');
      const soa = await r.resolveSoa('consul');
      assert.equal(soa.nsname, 'ns.consul');
      assert.equal(soa.hostmaster, 'hostmaster.consul');
      assert.deepEqual(await r.resolveTxt('n1.node.consul'), [['consul-network-segment=']]);
      await assert.rejects(r.resolve4('example.com'), (err: NodeJS.ErrnoException) => err.code === 'EREFUSED');
    });
  });

  describe('bad input never takes the server down', () => {
    it('UDP: garbage gets FORMERR with its ID, short datagrams get nothing', async () => {
      const before = server.stats().dropped;
      assert.equal(await udpExchange(port, Buffer.alloc(0), 300), undefined);
      assert.equal(await udpExchange(port, Buffer.from([1, 2, 3]), 300), undefined);
      const junk = Buffer.from('\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fthis label claims 63 bytes', 'latin1');
      const reply = await udpExchange(port, junk);
      assert.ok(reply, 'a reply');
      assert.equal(reply.readUInt16BE(0), 0x1234);
      assert.equal(reply.readUInt16BE(2) & 0xf, 1, 'FORMERR');
      const cut = queryBytes('web.service.consul', 'A', 0x4321).subarray(0, 25);
      const cutReply = await udpExchange(port, cut);
      assert.equal(cutReply?.readUInt16BE(0), 0x4321);
      assert.equal((cutReply?.readUInt16BE(2) ?? 0) & 0xf, 1);
      const rnd = seededRandom(7);
      for (let i = 0; i < 200; i++) {
        const n = Math.floor(rnd.next() * 100);
        const b = Buffer.alloc(n);
        for (let j = 0; j < n; j++) b[j] = Math.floor(rnd.next() * 256);
        if (n >= 3) b[2] = (b[2] as number) & 0x7f; // a query, so it gets an answer rather than dropped
        await udpExchange(port, b, 20);
      }
      assert.ok(server.stats().dropped >= before + 2);
      const ok = decode((await udpExchange(port, queryBytes('web.service.consul', 'A', 77))) as Buffer);
      assert.equal(ok.id, 77);
      assert.equal(ok.answers?.length, 2);
    });

    it('TCP: a huge length prefix, zero-length and garbage frames, pipelined queries', async () => {
      // Claims 65535 bytes, sends 10, half-closes: the server must just hang up.
      const huge = await tcpExchange(port, Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.alloc(10, 7)]), { end: true });
      assert.equal(huge.replies.length, 0);
      assert.ok(huge.closedByServer);
      // A full 65535-byte frame of junk with a query header: FORMERR, then the connection still serves.
      const junk = Buffer.alloc(65535, 0xaa);
      junk.writeUInt16BE(0x5555, 0);
      junk.writeUInt16BE(0x0100, 2);
      const mixed = Buffer.concat([
        frame(Buffer.alloc(0)),
        frame(junk),
        frame(queryBytes('web.service.consul', 'A', 1)),
        frame(queryBytes('many.service.consul', 'A', 2)),
        frame(queryBytes('_web._tcp.service.consul', 'SRV', 3)),
      ]);
      const res = await tcpExchange(port, mixed, { waitMs: 1500 });
      assert.deepEqual(res.replies.map((r) => r.readUInt16BE(0)), [0x5555, 1, 2, 3]);
      assert.equal((res.replies[0]?.readUInt16BE(2) ?? 0) & 0xf, 1);
      assert.equal(decode(res.replies[2] as Buffer).answers?.length, 20, 'TCP carries all 20');
      assert.equal(decode(res.replies[3] as Buffer).answers?.length, 2);
      // Byte-by-byte delivery still frames correctly.
      const q = frame(queryBytes('web.service.consul', 'A', 9));
      const sock = connect(port, HOST);
      await new Promise((r) => sock.once('connect', r));
      const got = new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        sock.on('data', (c: Buffer) => {
          parts.push(c);
          const all = Buffer.concat(parts);
          if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) resolve(all.subarray(2));
        });
      });
      for (const byte of q) {
        sock.write(Buffer.from([byte]));
        await sleep(1);
      }
      assert.equal(decode(await got).id, 9);
      sock.destroy();
    });

    it('counts queries by type and rcode', () => {
      const s = server.stats();
      assert.ok((s.queries.A ?? 0) > 0);
      assert.ok((s.queries.SRV ?? 0) > 0);
      assert.ok((s.rcodes.NOERROR ?? 0) > 0);
      assert.ok((s.rcodes.FORMERR ?? 0) > 0);
      assert.ok(s.udp > 0 && s.tcp > 0);
    });
  });
});
