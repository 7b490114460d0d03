// Tests of the message layer on bad input: drops, FORMERR with the ID echoed, NOTIMP/BADVERS, and a fuzz run that must never throw.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from 'dns-packet';
import type { Packet } from 'dns-packet';
import { handleMessage } from '../../src/dns/message.js';
import type { Outcome } from '../../src/dns/message.js';
import type { AnswerContext } from '../../src/dns/answer.js';
import { seededRandom } from '../../src/core/clock.js';
import type { Random } from '../../src/core/clock.js';
import { startTestAgent, http } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';

function header(id: number, flags: number, counts: [number, number, number, number] = [0, 0, 0, 0]): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => b.writeUInt16BE(c, 4 + i * 2));
  return b;
}

function randomBytes(r: Random, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r.next() * 256);
  return b;
}

describe('DNS message handling', () => {
  let a: TestAgent;
  let ctx: AnswerContext;
  const valid = (name = 'web.service.consul', type: 'A' | 'SRV' = 'A', extra: Partial<Packet> = {}): Buffer =>
    encode({ type: 'query', id: 0xbeef, flags: 0x0100, questions: [{ name, type, class: 'IN' }], ...extra });
  const answered = (o: Outcome) => {
    assert.equal(o.kind, 'answered');
    return o.kind === 'answered' ? o : assert.fail('dropped');
  };

  before(async () => {
    a = await startTestAgent();
    for (let i = 0; i < 5; i++) {
      await http(a.url, 'PUT', '/v1/catalog/register', { Node: `w${i}`, Address: `10.0.0.${i}`, Service: { Service: 'web', Port: 80 } });
    }
    ctx = {
      view: a.view, random: seededRandom(1), now: Date.now(), transport: 'udp',
      options: { domain: 'consul', datacenter: 'dc1', onlyPassing: false, nodeTtl: 0, serviceTtl: {}, udpAnswerLimit: 3, enableTruncate: true },
    };
  });
  after(async () => {
    await a.stop();
  });

  it('answers a valid query', () => {
    const o = answered(handleMessage(valid(), ctx));
    const p = decode(o.reply);
    assert.equal(p.id, 0xbeef);
    assert.equal(p.answers?.length, 3);
    assert.equal(o.qtype, 'A');
    assert.equal(o.rcode, 'NOERROR');
    assert.equal(o.truncated, true);
  });

  it('drops what has no whole header: empty, 1 byte, 11 bytes', () => {
    for (const n of [0, 1, 11]) assert.deepEqual(handleMessage(Buffer.alloc(n, 0x41), ctx), { kind: 'dropped', reason: 'short' });
  });

  it('drops responses, so servers cannot bounce errors at each other', () => {
    assert.deepEqual(handleMessage(header(1, 0x8000, [1, 0, 0, 0]), ctx), { kind: 'dropped', reason: 'response' });
  });

  it('FORMERR with the ID, opcode and RD echoed when only the header parses', () => {
    const cases: [string, Buffer][] = [
      ['question count with no question', header(0x1234, 0x0100, [1, 0, 0, 0])],
      ['truncated in the question', valid().subarray(0, 20)],
      ['truncated in the type', valid().subarray(0, valid().length - 3)],
      ['answer count beyond the data', Buffer.concat([valid().subarray(0, 6), Buffer.from([0xff, 0xff]), valid().subarray(8)])],
      ['a forward compression pointer', Buffer.concat([header(0x1234, 0x0100, [1, 0, 0, 0]), Buffer.from([0xc0, 0x20, 0, 1, 0, 1])])],
      ['a reserved label type', Buffer.concat([header(0x1234, 0x0100, [1, 0, 0, 0]), Buffer.from([0x80, 0, 0, 1, 0, 1])])],
    ];
    for (const [what, bytes] of cases) {
      const o = answered(handleMessage(bytes, ctx));
      assert.equal(o.rcode, 'FORMERR', what);
      assert.equal(o.reply.length, 12, what);
      assert.equal(o.reply.readUInt16BE(0), bytes.readUInt16BE(0), what);
      const flags = o.reply.readUInt16BE(2);
      assert.equal(flags & 0x8000, 0x8000, `${what}: QR`);
      assert.equal(flags & 0x0100, 0x0100, `${what}: RD`);
      assert.equal(flags & 0xf, 1, `${what}: rcode`);
    }
  });

  it('FORMERR for zero or two questions, or two OPT records', () => {
    const none = answered(handleMessage(header(7, 0x0100), ctx));
    assert.equal(none.rcode, 'FORMERR');
    assert.equal(none.qtype, undefined);
    const two = encode({ type: 'query', id: 8, questions: [{ name: 'a.service.consul', type: 'A' }, { name: 'b.service.consul', type: 'A' }] });
    assert.equal(answered(handleMessage(two, ctx)).rcode, 'FORMERR');
    const opt = { name: '.', type: 'OPT' as const, udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
    assert.equal(answered(handleMessage(valid('web.service.consul', 'A', { additionals: [opt, opt] }), ctx)).rcode, 'FORMERR');
  });

  it('FORMERR for a label the encoder could not write back', () => {
    // 63 bytes of 0xff decode to 63 replacement characters of 3 bytes each.
    const q = Buffer.concat([header(9, 0, [1, 0, 0, 0]), Buffer.from([63]), Buffer.alloc(63, 0xff), Buffer.from([0, 0, 1, 0, 1])]);
    const o = answered(handleMessage(q, ctx));
    assert.equal(o.rcode, 'FORMERR');
    assert.equal(decode(o.reply).questions?.length, 0);
  });

  it('NOTIMP for other opcodes, BADVERS for EDNS versions above 0', () => {
    const notify = valid('web.service.consul', 'A', { flags: 4 << 11 });
    assert.equal(answered(handleMessage(notify, ctx)).rcode, 'NOTIMP');
    const opt = { name: '.', type: 'OPT' as const, udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] };
    const o = answered(handleMessage(valid('web.service.consul', 'A', { additionals: [opt] }), ctx));
    assert.equal(o.rcode, 'BADVERS');
    const p = decode(o.reply);
    const back = p.additionals?.find((x) => x.type === 'OPT');
    assert.ok(back && back.type === 'OPT');
    assert.equal(back.extendedRcode, 1, 'BADVERS is 16: 1 in the OPT, 0 in the header');
    assert.equal(p.flags ? p.flags & 0xf : 0, 0);
  });

  it('unknown types and classes are answered, not crashed on', () => {
    const raw = valid();
    raw.writeUInt16BE(65, raw.length - 4); // HTTPS
    const o = answered(handleMessage(raw, ctx));
    assert.equal(o.rcode, 'NOERROR');
    assert.equal(o.qtype, 'UNKNOWN_65');
    assert.equal(decode(o.reply).answers?.length, 0);
    const chaos = valid();
    chaos.writeUInt16BE(3, chaos.length - 2);
    assert.equal(answered(handleMessage(chaos, ctx)).rcode, 'REFUSED');
  });

  it('fuzz: random bytes and mutated queries never throw, and every reply carries the request ID', () => {
    const r = seededRandom(20240601);
    const seeds = [valid(), valid('_web._tcp.service.consul', 'SRV'), valid('w1.node.consul'), valid('nope.service.consul'),
      valid('web.service.consul', 'A', { additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] })];
    let replies = 0;
    for (let i = 0; i < 5000; i++) {
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = randomBytes(r, Math.floor(r.next() * 80));
      } else {
        const seed = seeds[i % seeds.length] as Buffer;
        bytes = Buffer.from(seed);
        const flips = 1 + Math.floor(r.next() * 4);
        for (let f = 0; f < flips; f++) bytes[Math.floor(r.next() * bytes.length)] = Math.floor(r.next() * 256);
        if (r.next() < 0.3) bytes = bytes.subarray(0, Math.floor(r.next() * bytes.length));
      }
      const o = handleMessage(bytes, { ...ctx, transport: i % 3 === 0 ? 'tcp' : 'udp' });
      if (o.kind === 'dropped') continue;
      replies++;
      assert.equal(o.reply.readUInt16BE(0), bytes.readUInt16BE(0));
      assert.equal(o.reply.readUInt16BE(2) & 0x8000, 0x8000);
      assert.ok(o.reply.length <= 4096);
      decode(o.reply);
    }
    assert.ok(replies > 1000, `${replies} replies`);
  });
});
