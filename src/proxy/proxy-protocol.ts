/**
 * The PROXY protocol (HAProxy's, versions 1 and 2), received: the header a load balancer in front
 * (HAProxy `send-proxy`, AWS NLB, nginx `proxy_protocol on`) writes before a connection's own bytes
 * to say which client it carries. Read only from trusted senders, and required from them, as nginx's
 * `listen … proxy_protocol` and HAProxy's `accept-proxy` require it: a header from anyone else is
 * never read (to an HTTP parser it is a bad request), so nobody can choose the address they appear from.
 */
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { setClientPeer } from '../core/client-peer.js';
import { unmappedIp } from '../core/ip-list.js';
import type { ClientPeer } from '../core/client-peer.js';

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The v1 line's limit, CRLF included (the specification's 107). */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Address blocks and TLVs past this are refused: a v2 header has a 16-bit length, nobody sends that much. */
const V2_MAX_BODY = 4096;

export type ProxyHeader =
  | { readonly state: 'more' }
  /** `missing`: the bytes are not a PROXY header at all (a sender not configured to send one). */
  | { readonly state: 'bad'; readonly missing: boolean; readonly reason: string }
  /** `peer` is absent for v2 LOCAL and v1 UNKNOWN (the sender's own health checks): the connection speaks for itself. */
  | { readonly state: 'done'; readonly length: number; readonly version: 1 | 2; readonly peer?: ClientPeer };

const MORE: ProxyHeader = { state: 'more' };
const NOT_PROXY = 'no PROXY protocol header';
const bad = (reason: string): ProxyHeader => ({ state: 'bad', missing: reason === NOT_PROXY, reason });

/** Reads a header from the start of `buf`: done (with its length), more bytes needed, or bad. */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return MORE;
  if (buf[0] === 0x50) return parseV1(buf);
  if (buf[0] === 0x0d) return parseV2(buf);
  return bad(NOT_PROXY);
}

function parseV1(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, n, 0, n) !== 0) return bad(NOT_PROXY);
  const lf = buf.indexOf(0x0a, 0);
  if (lf < 0 || lf >= V1_MAX) return buf.length >= V1_MAX ? bad('v1 line longer than 107 bytes') : MORE;
  if (buf[lf - 1] !== 0x0d) return bad('v1 line does not end in CRLF');
  const line = buf.toString('latin1', V1_PREFIX.length, lf - 1);
  const length = lf + 1;
  const parts = line.split(' ');
  if (parts[0] === 'UNKNOWN') return { state: 'done', length, version: 1 };
  if (parts.length !== 5 || (parts[0] !== 'TCP4' && parts[0] !== 'TCP6')) return bad('v1 line is not "PROXY TCP4|TCP6 src dst sport dport"');
  const [proto, src = '', dst = '', sport = '', dport = ''] = parts;
  const isFamily = proto === 'TCP4' ? isIPv4 : isIPv6;
  if (!isFamily(src) || !isFamily(dst)) return bad(`v1 addresses are not ${proto === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  const port = (p: string): number => (/^(0|[1-9][0-9]{0,4})$/.test(p) && Number(p) <= 65535 ? Number(p) : -1);
  const sp = port(sport);
  if (sp < 0 || port(dport) < 0) return bad('v1 ports are not numbers from 0 to 65535');
  return { state: 'done', length, version: 1, peer: { address: proto === 'TCP4' ? src : canonicalIPv6(src), port: sp } };
}

function parseV2(buf: Buffer): ProxyHeader {
  const n = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.compare(V2_SIGNATURE, 0, n, 0, n) !== 0) return bad(NOT_PROXY);
  if (buf.length < 16) return MORE;
  const verCmd = buf[12] as number;
  if (verCmd >> 4 !== 2) return bad(`v2 version ${verCmd >> 4} (only 2 exists)`);
  const command = verCmd & 0x0f;
  if (command > 1) return bad(`v2 command ${command} (0 LOCAL or 1 PROXY)`);
  const len = buf.readUInt16BE(14);
  if (len > V2_MAX_BODY) return bad(`v2 header of ${16 + len} bytes (at most ${16 + V2_MAX_BODY} here)`);
  if (buf.length < 16 + len) return MORE;
  const length = 16 + len;
  if (command === 0) return { state: 'done', length, version: 2 };
  const family = (buf[13] as number) >> 4;
  const transport = (buf[13] as number) & 0x0f;
  // UNSPEC, UNIX sockets and datagrams say nothing usable about a TCP client: the connection speaks for itself.
  if (transport !== 1 || (family !== 1 && family !== 2)) return { state: 'done', length, version: 2 };
  if (family === 1) {
    if (len < 12) return bad('v2 IPv4 address block shorter than 12 bytes');
    return { state: 'done', length, version: 2, peer: { address: `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`, port: buf.readUInt16BE(24) } };
  }
  if (len < 36) return bad('v2 IPv6 address block shorter than 36 bytes');
  const groups: string[] = [];
  for (let i = 16; i < 32; i += 2) groups.push(buf.readUInt16BE(i).toString(16));
  return { state: 'done', length, version: 2, peer: { address: canonicalIPv6(groups.join(':')), port: buf.readUInt16BE(48) } };
}

/** One spelling per address (inet_ntop's: lower case, zero runs compressed), so one client counts once. */
function canonicalIPv6(text: string): string {
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
}

const V2_PROXY_TCP = 0x21;

/**
 * The header a sender writes for a TCP connection from `src` to `dst` (HAProxy's `send-proxy`,
 * `send-proxy-v2`). Both ends must be of one family; an IPv4 client on a dual-stack socket
 * (::ffff:a.b.c.d) is written as IPv4, and a pair of mixed families as v1 UNKNOWN / v2 LOCAL.
 */
export function encodeProxyHeader(version: 'v1' | 'v2', src: ClientPeer, dst: ClientPeer): Buffer {
  const s = unmappedIp(src.address);
  const d = unmappedIp(dst.address);
  const family = isIPv4(s) && isIPv4(d) ? 4 : isIPv6(s) && isIPv6(d) ? 6 : 0;
  if (version === 'v1') {
    if (family === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    return Buffer.from(`PROXY TCP${family} ${s} ${d} ${src.port} ${dst.port}\r\n`, 'latin1');
  }
  const body = family === 4 ? Buffer.alloc(12) : family === 6 ? Buffer.alloc(36) : Buffer.alloc(0);
  if (family === 4) {
    body.set(s.split('.').map(Number), 0);
    body.set(d.split('.').map(Number), 4);
    body.writeUInt16BE(src.port, 8);
    body.writeUInt16BE(dst.port, 10);
  } else if (family === 6) {
    ipv6Bytes(s).copy(body, 0);
    ipv6Bytes(d).copy(body, 16);
    body.writeUInt16BE(src.port, 32);
    body.writeUInt16BE(dst.port, 34);
  }
  const head = Buffer.from([family === 0 ? 0x20 : V2_PROXY_TCP, family === 4 ? 0x11 : family === 6 ? 0x21 : 0x00, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

/** The 16 bytes of an IPv6 address in text (any valid spelling, an embedded IPv4 tail included). */
function ipv6Bytes(text: string): Buffer {
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4 !== null) {
    const [a, b, c, d] = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    t = `${t.slice(0, -(v4[1] as string).length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = t.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * Reads the header from an accepted socket that has not been read yet, then pauses it, puts back
 * whatever followed the header (it belongs to the connection's own protocol, and is read first by
 * whoever reads the socket next), sets the client address on it (client-peer.ts) and calls `done`;
 * or calls `fail` with why the connection is refused. The caller closes the socket on failure;
 * nothing of the connection's own protocol has been answered by then.
 */
export type ProxyRefusal = 'missing' | 'malformed' | 'timeout' | 'closed';

export function readProxyHeader(
  socket: Socket, timeoutMs: number, done: () => void, fail: (kind: ProxyRefusal, reason: string) => void,
): void {
  let got: Buffer = Buffer.alloc(0);
  let settled = false;
  const finish = (): void => {
    settled = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
  };
  const refuse = (kind: ProxyRefusal, reason: string): void => {
    if (settled) return;
    finish();
    fail(kind, reason);
  };
  const onData = (d: Buffer): void => {
    got = got.length === 0 ? d : Buffer.concat([got, d]);
    const h = parseProxyHeader(got);
    if (h.state === 'more') return;
    if (h.state === 'bad') {
      refuse(h.missing ? 'missing' : 'malformed', h.reason);
      return;
    }
    finish();
    socket.pause();
    // In front of anything the socket buffered meanwhile, which came after it.
    if (got.length > h.length) socket.unshift(got.subarray(h.length));
    if (h.peer) setClientPeer(socket, h.peer);
    done();
  };
  function onEnd(): void {
    refuse('closed', 'closed before a complete PROXY protocol header');
  }
  // A reset while the header is read: without a listener the error would take the process down.
  function onError(err: Error): void {
    refuse('closed', `connection error before a complete PROXY protocol header: ${err.message}`);
  }
  const timer = setTimeout(() => refuse('timeout', `no complete PROXY protocol header within ${timeoutMs} ms`), timeoutMs);
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
  socket.resume();
}
