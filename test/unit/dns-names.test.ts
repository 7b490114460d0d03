// Table-driven tests of the DNS name layer: Consul's query-name parse, `.addr.` hex IPs, TTL keys and RFC 1464 text.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hexToIp, ipToHex, isEncodableName, normalizeDomain, parseIp, parseQueryName, parseReverseName, relativeLabels } from '../../src/dns/names.js';
import { encodeRfc1464, serviceTtl } from '../../src/dns/answer.js';

describe('DNS names', () => {
  it('normalizes the domain and rejects unusable ones', () => {
    assert.equal(normalizeDomain('consul.'), 'consul');
    assert.equal(normalizeDomain('Sy.Example.'), 'sy.example');
    assert.throws(() => normalizeDomain('.'), /invalid DNS domain/);
    assert.throws(() => normalizeDomain(`${'x'.repeat(64)}.consul`), /invalid DNS domain/);
  });

  it('splits names relative to the domain, case-insensitively', () => {
    const rows: [string, string[] | undefined][] = [
      ['web.service.consul', ['web', 'service']],
      ['WEB.Service.CONSUL.', ['web', 'service']],
      ['consul', []],
      ['consul.', []],
      ['example.com', undefined],
      ['notconsul', undefined],
      ['web.service.consul.example', undefined],
    ];
    for (const [name, want] of rows) assert.deepEqual(relativeLabels(name, 'consul'), want, name);
  });

  it('parses the Consul name forms', () => {
    const svc = (service: string, tag?: string, datacenter?: string) => ({ kind: 'service', service, tag, datacenter });
    const rows: [string, boolean, unknown][] = [
      ['web.service', false, svc('web')],
      ['v1.web.service', false, svc('web', 'v1')],
      ['v1.5.web.service', false, svc('web', 'v1.5')],
      ['a.b.c.web.service', false, svc('web', 'a.b.c')],
      ['web.service.dc1', false, svc('web', undefined, 'dc1')],
      ['v1.web.service.dc1', false, svc('web', 'v1', 'dc1')],
      ['_web._tcp.service', true, svc('web')],
      ['_web._tcp.service', false, svc('web')],
      ['_web._v1.service', true, svc('web', 'v1')],
      ['_web._udp.service', true, svc('web', 'udp')],
      ['_web._tcp', true, svc('web')],
      ['_web._tcp.dc1', true, svc('web', undefined, 'dc1')],
      ['_web._tcp.service.dc1', true, svc('web', undefined, 'dc1')],
      ['n1.node', false, { kind: 'node', node: 'n1', datacenter: undefined }],
      ['host.example.node.dc1', false, { kind: 'node', node: 'host.example', datacenter: 'dc1' }],
      ['service', false, { kind: 'invalid' }],
      ['node', false, { kind: 'invalid' }],
      ['web', false, { kind: 'invalid' }],
      ['', false, { kind: 'invalid' }],
      ['web.service.dc1.extra', false, { kind: 'invalid' }],
      ['q.query', false, { kind: 'query', query: 'q', datacenter: undefined }],
      ['geo-db.eu.query.dc1', false, { kind: 'query', query: 'geo-db.eu', datacenter: 'dc1' }],
      ['query', false, { kind: 'invalid' }],
      ['web.connect', false, { kind: 'invalid' }],
      ['_web._tcp', false, { kind: 'invalid' }],
      ['zz.addr', false, { kind: 'invalid' }],
      ['a.7f000001.addr', false, { kind: 'invalid' }],
    ];
    for (const [rel, srv, want] of rows) {
      const labels = rel === '' ? [] : rel.split('.');
      assert.deepEqual(parseQueryName(labels, srv), want, `${rel} (srv=${srv})`);
    }
    const addr = parseQueryName(['7f000001', 'addr', 'dc1'], false);
    assert.equal(addr.kind, 'addr');
    assert.equal(addr.kind === 'addr' && addr.ip.text, '127.0.0.1');
    assert.equal(addr.kind === 'addr' && addr.datacenter, 'dc1');
  });

  it('strips a dotted local datacenter whole', () => {
    assert.deepEqual(parseQueryName(['web', 'service', 'eu', 'west'], false, 'eu.west'), { kind: 'service', service: 'web', tag: undefined, datacenter: 'eu.west' });
    assert.deepEqual(parseQueryName(['web', 'service', 'eu', 'west'], false, 'dc1'), { kind: 'invalid' });
  });

  it('parses IPs, maps IPv4-in-IPv6 to IPv4 and round-trips `.addr.` hex', () => {
    const rows: [string, 4 | 6 | undefined, string | undefined, string | undefined][] = [
      ['10.0.0.1', 4, '10.0.0.1', '0a000001'],
      ['::1', 6, '0:0:0:0:0:0:0:1', '00000000000000000000000000000001'],
      ['fd00::6', 6, 'fd00:0:0:0:0:0:0:6', 'fd000000000000000000000000000006'],
      ['2001:db8::1.2.3.4', 6, '2001:db8:0:0:0:0:102:304', '20010db8000000000000000001020304'],
      ['::ffff:192.168.1.4', 4, '192.168.1.4', 'c0a80104'],
      ['fe80::1%eth0', 6, 'fe80:0:0:0:0:0:0:1', 'fe800000000000000000000000000001'],
      ['db.example.com', undefined, undefined, undefined],
      ['', undefined, undefined, undefined],
      ['1.2.3', undefined, undefined, undefined],
    ];
    for (const [input, family, text, hex] of rows) {
      const ip = parseIp(input);
      assert.equal(ip?.family, family, input);
      assert.equal(ip?.text, text, input);
      if (ip && hex) {
        assert.equal(ipToHex(ip), hex, input);
        assert.equal(hexToIp(hex)?.text, text, input);
      }
    }
    assert.equal(hexToIp('C0A80104')?.text, '192.168.1.4');
    for (const bad of ['c0a8010', 'c0a801044', 'zzzzzzzz', '']) assert.equal(hexToIp(bad), undefined, bad);
  });

  it('knows which names the encoder can write', () => {
    assert.equal(isEncodableName('web.service.consul'), true);
    assert.equal(isEncodableName('web.service.consul.'), true);
    assert.equal(isEncodableName(''), true);
    assert.equal(isEncodableName(`${'a'.repeat(63)}.consul`), true);
    assert.equal(isEncodableName(`${'a'.repeat(64)}.consul`), false);
    assert.equal(isEncodableName('a..consul'), false);
    assert.equal(isEncodableName(Array.from({ length: 60 }, () => 'abcd').join('.')), false);
  });

  it('picks service TTLs: exact name, then the longest prefix*, then *, else 0', () => {
    const map = { web: 30, 'we*': 20, 'w*': 10, '*': 5, 'API': 7 };
    const rows: [string, number][] = [['web', 30], ['Web', 30], ['webby', 20], ['wall', 10], ['db', 5], ['api', 7]];
    for (const [name, want] of rows) assert.equal(serviceTtl(map, name), want, name);
    assert.equal(serviceTtl({}, 'web'), 0);
    assert.equal(serviceTtl({ 'db*': 9 }, 'web'), 0);
  });

  it('encodes node meta per RFC 1464 as Consul does', () => {
    const rows: [string, string, string][] = [
      ['rack', 'r1', 'rack=r1'],
      ['a=b', 'x', 'a`=b=x'],
      ['back`tick', 'v`v', 'back``tick=v``v'],
      ['  lead', 'v', '` ` lead=v'],
      ['trail ', 'v', 'trail` =v'],
      ['empty', '', 'empty='],
    ];
    for (const [k, v, want] of rows) assert.equal(encodeRfc1464(k, v), want, k);
  });
});

describe('parseReverseName', () => {
  const rows: [string, string | undefined][] = [
    ['1.0.0.127.in-addr.arpa', '127.0.0.1'],
    ['1.0.0.127.In-Addr.Arpa.', '127.0.0.1'],
    [`${'1000000000000000000000000000'.split('').join('.')}.0.0.d.f.ip6.arpa`, 'fd00:0:0:0:0:0:0:1'],
    ['0.0.127.in-addr.arpa', undefined],
    ['256.0.0.127.in-addr.arpa', undefined],
    ['01.0.0.127.in-addr.arpa', undefined],
    ['1.0.0.127.example.com', undefined],
    ['g.0.ip6.arpa', undefined],
  ];
  for (const [name, want] of rows) {
    it(`${name} → ${String(want)}`, () => assert.equal(parseReverseName(name)?.text, want));
  }
});
