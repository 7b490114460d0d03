// The PROXY protocol parser (src/proxy/proxy-protocol.ts): v1 and v2 vectors from the specification's
// examples and its limits, then properties over generated headers (any split point needs more bytes, never
// a wrong answer; whatever follows the header is left alone; random bytes never throw), and the sender's side
// (send-proxy on TCP routes) read back by the parser.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SocketAddress } from 'node:net';
import fc from 'fast-check';
import { encodeProxyHeader, parseProxyHeader } from '../../src/proxy/proxy-protocol.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 header, built the way the specification lays it out (tests' own encoder). */
function v2(opts: { command?: number; family?: number; transport?: number; body?: Buffer; version?: number }): Buffer {
  const body = opts.body ?? Buffer.alloc(0);
  const head = Buffer.alloc(4);
  head[0] = ((opts.version ?? 2) << 4) | (opts.command ?? 1);
  head[1] = ((opts.family ?? 1) << 4) | (opts.transport ?? 1);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, head, body]);
}

function inet4(src: number[], dst: number[], sport: number, dport: number, tlv = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(12);
  b.set(src, 0);
  b.set(dst, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return Buffer.concat([b, tlv]);
}

function inet6(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  src.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  dst.forEach((g, i) => b.writeUInt16BE(g, 16 + i * 2));
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

const parse = (s: string | Buffer) => parseProxyHeader(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

describe('PROXY protocol v1', () => {
  it('reads TCP4 and TCP6 lines; the header length stops at its CRLF', () => {
    const line = 'PROXY TCP4 192.0.2.9 198.51.100.1 56324 443\r\n';
    assert.deepEqual(parse(`${line}GET / HTTP/1.1\r\n`), { state: 'done', length: line.length, version: 1, peer: { address: '192.0.2.9', port: 56324 } });
    // One spelling per address: upper case and uncompressed zeros are canonicalised.
    assert.deepEqual(parse('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 80\r\n'),
      { state: 'done', length: 46, version: 1, peer: { address: '2001:db8::1', port: 65535 } });
  });

  it('UNKNOWN (a health check of the sender) names no client; what follows on the line is ignored', () => {
    assert.deepEqual(parse('PROXY UNKNOWN\r\n'), { state: 'done', length: 15, version: 1 });
    assert.deepEqual(parse('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), { state: 'done', length: 35, version: 1 });
  });

  it('refuses what the specification does not allow, saying what', () => {
    const refused = (s: string): string => {
      const r = parse(s);
      assert.equal(r.state, 'bad', s);
      return (r as { reason: string }).reason;
    };
    assert.equal(refused('GET / HTTP/1.1\r\n'), 'no PROXY protocol header');
    assert.equal(refused('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'v1 line does not end in CRLF');
    assert.match(refused('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), /not "PROXY TCP4\|TCP6/);
    assert.match(refused('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /not "PROXY TCP4\|TCP6/);
    assert.match(refused('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), /not "PROXY TCP4\|TCP6/);
    assert.equal(refused('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), 'v1 addresses are not IPv4');
    assert.equal(refused('PROXY TCP6 1.2.3.4 ::1 1 2\r\n'), 'v1 addresses are not IPv6');
    assert.equal(refused('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'v1 ports are not numbers from 0 to 65535');
    assert.equal(refused('PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n'), 'v1 ports are not numbers from 0 to 65535');
    assert.equal(refused('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), 'v1 ports are not numbers from 0 to 65535');
    assert.equal(refused(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`), 'v1 line longer than 107 bytes');
    assert.equal(refused('PROXYTCP4 1.2.3.4\r\n'), 'no PROXY protocol header');
  });

  it('a line without its CRLF yet needs more bytes, up to 107 and no further', () => {
    assert.deepEqual(parse('PROXY TCP4 1.2.3.4'), { state: 'more' });
    assert.deepEqual(parse('PROX'), { state: 'more' });
    assert.deepEqual(parse(`PROXY UNKNOWN ${'x'.repeat(92)}`), { state: 'more' });
    assert.equal(parse(`PROXY UNKNOWN ${'x'.repeat(93)}`).state, 'bad');
    // The longest line allowed, CRLF included.
    assert.deepEqual(parse(`PROXY UNKNOWN ${'x'.repeat(91)}\r\n`), { state: 'done', length: 107, version: 1 });
  });
});

describe('PROXY protocol v2', () => {
  it('reads PROXY over TCP/IPv4 with TLVs after the addresses, and over TCP/IPv6', () => {
    const tlv = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]); // PP2_TYPE_NOOP
    const h = v2({ body: inet4([203, 0, 113, 7], [10, 0, 0, 1], 40000, 443, tlv) });
    assert.deepEqual(parseProxyHeader(Buffer.concat([h, Buffer.from('rest')])),
      { state: 'done', length: 16 + 18, version: 2, peer: { address: '203.0.113.7', port: 40000 } });
    const h6 = v2({ family: 2, body: inet6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42], [0, 0, 0, 0, 0, 0, 0, 1], 1234, 80) });
    assert.deepEqual(parseProxyHeader(h6), { state: 'done', length: 52, version: 2, peer: { address: '2001:db8::42', port: 1234 } });
    const mapped = v2({ family: 2, body: inet6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001], [0, 0, 0, 0, 0, 0, 0, 1], 1, 2) });
    assert.deepEqual(parseProxyHeader(mapped), { state: 'done', length: 52, version: 2, peer: { address: '::ffff:10.0.0.1', port: 1 } });
  });

  it('LOCAL, UNSPEC, UNIX and datagram headers name no client', () => {
    for (const h of [v2({ command: 0, body: inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) }), v2({ family: 0, transport: 0 }),
      v2({ family: 3, body: Buffer.alloc(216) }), v2({ transport: 2, body: inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2) })]) {
      const r = parseProxyHeader(h);
      assert.equal(r.state, 'done');
      assert.equal((r as { peer?: unknown }).peer, undefined);
      assert.equal((r as { length: number }).length, h.length);
    }
  });

  it('refuses another version or command, short address blocks and oversized headers', () => {
    const reason = (b: Buffer): string => (parseProxyHeader(b) as { reason: string }).reason;
    assert.equal(reason(v2({ version: 1 })), 'v2 version 1 (only 2 exists)');
    assert.equal(reason(v2({ command: 2 })), 'v2 command 2 (0 LOCAL or 1 PROXY)');
    assert.equal(reason(v2({ body: Buffer.alloc(11) })), 'v2 IPv4 address block shorter than 12 bytes');
    assert.equal(reason(v2({ family: 2, body: Buffer.alloc(35) })), 'v2 IPv6 address block shorter than 36 bytes');
    const huge = v2({ body: Buffer.alloc(4097) });
    assert.equal(reason(huge.subarray(0, 16)), 'v2 header of 4113 bytes (at most 4112 here)');
    assert.equal(reason(Buffer.concat([SIG.subarray(0, 5), Buffer.from('x')])), 'no PROXY protocol header');
  });
});

describe('PROXY protocol properties', () => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  const port = fc.nat(65535);
  const v1Header = fc.tuple(ipv4, ipv4, port, port).map(([s, d, sp, dp]) => ({
    bytes: Buffer.from(`PROXY TCP4 ${s.join('.')} ${d.join('.')} ${sp} ${dp}\r\n`, 'latin1'), address: s.join('.'), port: sp,
  }));
  const v2Header = fc.tuple(ipv4, ipv4, port, port, fc.uint8Array({ maxLength: 64 })).map(([s, d, sp, dp, tlv]) => ({
    bytes: v2({ body: inet4(s, d, sp, dp, Buffer.from(tlv)) }), address: s.join('.'), port: sp,
  }));
  const header = fc.oneof(v1Header, v2Header);

  it('every proper prefix of a header needs more bytes; the whole reads back, and what follows is not consumed', () => {
    fc.assert(fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, tail) => {
      for (let i = 0; i < h.bytes.length; i++) assert.deepEqual(parseProxyHeader(h.bytes.subarray(0, i)), { state: 'more' });
      const r = parseProxyHeader(Buffer.concat([h.bytes, Buffer.from(tail)]));
      assert.equal(r.state, 'done');
      assert.equal((r as { length: number }).length, h.bytes.length);
      assert.deepEqual((r as { peer: unknown }).peer, { address: h.address, port: h.port });
    }), { numRuns: 300 });
  });

  it('random bytes, and headers with one byte changed, never throw and never claim more than they hold', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.tuple(header, fc.nat(), fc.nat(255)).map(([h, at, v]) => {
        const b = Buffer.from(h.bytes);
        b[at % b.length] = v;
        return b;
      })), (b) => {
      const r = parseProxyHeader(b);
      if (r.state === 'done') assert.ok(r.length <= b.length);
    }), { numRuns: 2000 });
  });
});

describe('PROXY protocol headers written (send-proxy)', () => {
  it('v1 and v2 for IPv4, IPv6 and IPv4-mapped clients read back as sent; mixed families say nothing', () => {
    const dst = { address: '10.0.0.1', port: 5432 };
    for (const v of ['v1', 'v2'] as const) {
      assert.deepEqual(parseProxyHeader(encodeProxyHeader(v, { address: '192.0.2.1', port: 40000 }, dst)),
        { state: 'done', length: v === 'v1' ? 42 : 28, version: v === 'v1' ? 1 : 2, peer: { address: '192.0.2.1', port: 40000 } });
      const six = parseProxyHeader(encodeProxyHeader(v, { address: '2001:db8::5', port: 1 }, { address: '::1', port: 2 }));
      assert.deepEqual((six as { peer: unknown }).peer, { address: '2001:db8::5', port: 1 });
      const mapped = parseProxyHeader(encodeProxyHeader(v, { address: '::ffff:192.0.2.9', port: 3 }, dst));
      assert.deepEqual((mapped as { peer: unknown }).peer, { address: '192.0.2.9', port: 3 });
      const mixed = parseProxyHeader(encodeProxyHeader(v, { address: '2001:db8::5', port: 3 }, dst));
      assert.equal(mixed.state, 'done');
      assert.equal((mixed as { peer?: unknown }).peer, undefined);
    }
    assert.equal(encodeProxyHeader('v1', { address: '192.0.2.1', port: 40000 }, dst).toString('latin1'), 'PROXY TCP4 192.0.2.1 10.0.0.1 40000 5432\r\n');
  });

  it('any IPv4 or IPv6 pair round-trips through both versions', () => {
    const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
    const v6 = fc.ipV6();
    fc.assert(fc.property(fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6)), fc.nat(65535), fc.nat(65535), fc.constantFrom('v1' as const, 'v2' as const),
      ([src, dst], sp, dp, v) => {
        const r = parseProxyHeader(encodeProxyHeader(v, { address: src, port: sp }, { address: dst, port: dp }));
        assert.equal(r.state, 'done');
        const want = src.includes(':') ? new SocketAddress({ address: src, family: 'ipv6' }).address : src;
        // An IPv4-mapped IPv6 client is written as IPv4.
        const peer = (r as { peer?: { address: string; port: number } }).peer;
        if (peer !== undefined) assert.deepEqual(peer, { address: want.startsWith('::ffff:') && !want.slice(7).includes(':') ? want.slice(7) : want, port: sp });
        else assert.ok(src.includes(':') !== dst.includes(':') || /^::ffff:[\d.]+$/i.test(want));
      }), { numRuns: 500 });
  });
});
