/**
 * Consul's `recursors`: a query for a name outside the agent's domain (or an address it does not know)
 * goes to upstream resolvers, tried in order until one gives an answer or NXDOMAIN within the timeout,
 * over the client's own transport. Each forward carries a fresh random ID, and only a response from that resolver with
 * that ID and the same question is taken (an off-path spoofer must guess both); the client gets it
 * back under its own ID. When none answers, the caller answers SERVFAIL.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
export { parseRecursor } from '../core/ip-port.js';

export interface Recursor {
  readonly host: string;
  readonly port: number;
}

/** Offset just past the question section of a message with one question, or -1 when it does not parse. */
function questionEnd(m: Buffer): number {
  if (m.length < 12 || m.readUInt16BE(4) !== 1) return -1;
  let i = 12;
  for (;;) {
    if (i >= m.length) return -1;
    const len = m[i] as number;
    if (len === 0) break;
    // A question name is never compressed.
    if ((len & 0xc0) !== 0) return -1;
    i += 1 + len;
  }
  i += 5;
  return i <= m.length ? i : -1;
}

/** Same question (name compared case-insensitively, as DNS names are). */
function sameQuestion(query: Buffer, response: Buffer): boolean {
  const qe = questionEnd(query);
  const re = questionEnd(response);
  if (qe < 0 || qe !== re) return false;
  return query.subarray(12, qe).toString('latin1').toLowerCase() === response.subarray(12, re).toString('latin1').toLowerCase();
}

function fits(query: Buffer, id: number, response: Buffer): boolean {
  // QR must be set: a resolver echoing the query back is not an answer.
  return response.length >= 12 && response.readUInt16BE(0) === id && (response[2]! & 0x80) !== 0 && sameQuestion(query, response);
}

/** One exchange with a recursor: `finish` settles it once (undefined after the timeout) and closes what `start` opened. */
function exchange(timeoutMs: number, start: (finish: (b: Buffer | undefined) => void) => () => void): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    // Assigned once, after start(): a const would be read in its dead zone by a finish that start() makes itself.
    // eslint-disable-next-line prefer-const
    let close: (() => void) | undefined;
    const finish = (b: Buffer | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      close?.();
      resolve(b);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    close = start(finish);
    // Failed while starting: close what was opened.
    if (done) close();
  });
}

function overUdp(r: Recursor, query: Buffer, id: number, timeoutMs: number): Promise<Buffer | undefined> {
  return exchange(timeoutMs, (finish) => {
    const sock = createSocket(isIPv6(r.host) ? 'udp6' : 'udp4');
    sock.on('error', () => finish(undefined));
    sock.on('message', (msg) => {
      if (fits(query, id, msg)) finish(msg);
    });
    // Connected: the kernel drops datagrams from any other address.
    sock.connect(r.port, r.host, () => sock.send(query, (err) => err && finish(undefined)));
    return () => sock.close();
  });
}

function overTcp(r: Recursor, query: Buffer, id: number, timeoutMs: number): Promise<Buffer | undefined> {
  return exchange(timeoutMs, (finish) => {
    const sock = connect({ host: r.host, port: r.port });
    let got = Buffer.alloc(0);
    sock.on('error', () => finish(undefined));
    sock.on('close', () => finish(undefined));
    sock.on('connect', () => {
      const frame = Buffer.allocUnsafe(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      sock.write(frame);
    });
    sock.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 2) return;
      const need = 2 + got.readUInt16BE(0);
      if (got.length < need) return;
      const msg = got.subarray(2, need);
      finish(fits(query, id, msg) ? Buffer.from(msg) : undefined);
    });
    return () => sock.destroy();
  });
}

export class Recursors {
  readonly #list: readonly Recursor[];
  readonly #timeoutMs: number;

  constructor(list: readonly Recursor[], timeoutMs: number) {
    this.#list = list;
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#list.length;
  }

  /** The first answer of a recursor, under the client's ID; undefined when none answered. */
  async forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (query.length < 12) return undefined;
    const clientId = query.readUInt16BE(0);
    for (const r of this.#list) {
      const id = randomInt(0, 0x10000);
      const out = Buffer.from(query);
      out.writeUInt16BE(id, 0);
      const answer = await (transport === 'tcp' ? overTcp : overUdp)(r, out, id, this.#timeoutMs);
      // As Consul: only an answer or a NXDOMAIN ends the search; a resolver's SERVFAIL or REFUSED sends it to the next.
      const rcode = answer === undefined ? -1 : answer[3]! & 0x0f;
      if (rcode !== 0 && rcode !== 3) continue;
      const back = Buffer.from(answer as Buffer);
      back.writeUInt16BE(clientId, 0);
      return back;
    }
    return undefined;
  }
}
