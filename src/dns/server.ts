/** The DNS interface's listeners: UDP and TCP sockets on one port, their lifecycle, and per-query counters. */
import { createSocket } from 'node:dgram';
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6 } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import { systemRandom } from '../core/clock.js';
import type { Random } from '../core/clock.js';
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { DEFAULT_MAX_UDP_SIZE, DEFAULT_UDP_SIZE, MAX_UDP_DATAGRAM, RCODES } from './answer.js';
import type { AnswerOptions, RcodeName } from './answer.js';
import { handleMessage } from './message.js';
import type { Outcome } from './message.js';
import { NameIndex } from './name-index.js';
import type { Recursors } from './recursor.js';
import type { PreparedLookup } from '../registry/server/prepared/execute.js';
import { normalizeDomain } from './names.js';

export interface DnsServerOptions {
  readonly view: CatalogReader;
  /** Answers `<query>.query.<domain>` (absent: those names do not exist). */
  readonly preparedQuery?: PreparedLookup | undefined;
  readonly logger: Logger;
  /** Default `consul.`; matched case-insensitively. */
  readonly domain?: string | undefined;
  readonly datacenter: string;
  /** This agent's node: named in NS answers when no healthy `consul` service instance exists. */
  readonly nodeName?: string | undefined;
  /** Consul's dns_config.only_passing: also hide instances in warning. Default false. */
  readonly onlyPassing?: boolean | undefined;
  /** Seconds. `service` keys are a name, `prefix*` or `*` (exact wins, then the longest prefix). Default 0. */
  readonly ttl?: { readonly node?: number | undefined; readonly service?: Readonly<Record<string, number>> | undefined } | undefined;
  /** Answers in a 512-byte UDP response, at most 8 (Consul's udp_answer_limit). Default 3. */
  readonly udpAnswerLimit?: number | undefined;
  /** Set TC when records were left out of a UDP response. Default true (Consul's enable_truncate defaults to false). */
  readonly enableTruncate?: boolean | undefined;
  /** Largest UDP answer in bytes, whatever the client's EDNS0 size says: 512 … 65,507, default 1232. */
  readonly maxUdpSize?: number | undefined;
  /** Shuffles instances; inject a seeded one for reproducible tests. */
  readonly random?: Random | undefined;
  /** Called after every answered query (metrics). Exceptions are logged and ignored. */
  readonly onQuery?: ((event: DnsQueryEvent) => void) | undefined;
  /** A TCP connection idle this long is closed. Default 10 s. */
  readonly tcpIdleTimeoutMs?: number | undefined;
  /** Concurrent TCP connections; further ones are refused. Default 512. */
  readonly maxTcpConnections?: number | undefined;
  /** Epoch milliseconds, for the SOA serial. */
  readonly now?: (() => number) | undefined;
  /** Where queries outside the domain go (Consul's recursors); absent: they are refused. */
  readonly recursors?: Recursors | undefined;
}

export interface DnsQueryEvent {
  readonly transport: 'udp' | 'tcp';
  /** Question type (`A`, `SRV`, `UNKNOWN_65`…); undefined when the message had no single decodable question. */
  readonly qtype: string | undefined;
  readonly rcode: RcodeName;
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface DnsStats {
  /** Answered queries by question type; `none` when there was no single decodable question. */
  readonly queries: Readonly<Record<string, number>>;
  /** Responses by rcode name. */
  readonly rcodes: Readonly<Record<string, number>>;
  readonly udp: number;
  readonly tcp: number;
  /** Responses that left records out (TC set over UDP when enableTruncate). */
  readonly truncated: number;
  /** Messages that got no reply: shorter than a header, or themselves responses. */
  readonly dropped: number;
  readonly tcpConnections: number;
}

export interface DnsAddresses {
  readonly udp: { readonly host: string; readonly port: number };
  readonly tcp: { readonly host: string; readonly port: number };
}

const PORT_ATTEMPTS = 5;

export class DnsServer {
  readonly #view: CatalogReader;
  readonly #preparedQuery: PreparedLookup | undefined;
  readonly #log: Logger;
  readonly #options: AnswerOptions;
  readonly #random: Random;
  readonly #now: () => number;
  readonly #onQuery: ((event: DnsQueryEvent) => void) | undefined;
  readonly #idleMs: number;
  readonly #maxConnections: number;
  readonly #recursors: Recursors | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #counters = { queries: new Map<string, number>(), rcodes: new Map<string, number>(), udp: 0, tcp: 0, truncated: 0, dropped: 0 };
  #names: NameIndex | undefined;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #state: 'idle' | 'starting' | 'running' | 'closed' = 'idle';
  #starting: Promise<unknown> | undefined;

  constructor(opts: DnsServerOptions) {
    if (opts.datacenter === '') throw new Error('DNS: datacenter must not be empty');
    const udpAnswerLimit = opts.udpAnswerLimit ?? 3;
    if (!Number.isInteger(udpAnswerLimit) || udpAnswerLimit < 1) throw new Error(`DNS: udpAnswerLimit must be a positive integer, got ${udpAnswerLimit}`);
    const maxUdpSize = opts.maxUdpSize ?? DEFAULT_MAX_UDP_SIZE;
    if (!Number.isInteger(maxUdpSize) || maxUdpSize < DEFAULT_UDP_SIZE || maxUdpSize > MAX_UDP_DATAGRAM) {
      throw new Error(`DNS: maxUdpSize must be an integer from ${DEFAULT_UDP_SIZE} to ${MAX_UDP_DATAGRAM} bytes, got ${maxUdpSize}`);
    }
    const service: Record<string, number> = {};
    for (const [k, v] of Object.entries(opts.ttl?.service ?? {})) service[k] = ttlSeconds(`ttl.service[${JSON.stringify(k)}]`, v);
    this.#view = opts.view;
    this.#preparedQuery = opts.preparedQuery;
    this.#log = opts.logger.child({ component: 'dns' });
    this.#options = {
      domain: normalizeDomain(opts.domain ?? 'consul.'),
      datacenter: opts.datacenter,
      nodeName: opts.nodeName,
      onlyPassing: opts.onlyPassing ?? false,
      nodeTtl: ttlSeconds('ttl.node', opts.ttl?.node ?? 0),
      serviceTtl: service,
      udpAnswerLimit,
      enableTruncate: opts.enableTruncate ?? true,
      maxUdpSize,
      recursionAvailable: (opts.recursors?.size ?? 0) > 0,
    };
    this.#recursors = opts.recursors !== undefined && opts.recursors.size > 0 ? opts.recursors : undefined;
    this.#random = opts.random ?? systemRandom;
    this.#now = opts.now ?? Date.now;
    this.#onQuery = opts.onQuery;
    this.#idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.#maxConnections = opts.maxTcpConnections ?? 512;
  }

  /**
   * Binds UDP, then TCP on the port UDP got, so port 0 yields one port for both; if TCP finds that
   * port taken, both are retried on a fresh one.
   */
  async start(host: string, port: number): Promise<DnsAddresses> {
    if (this.#state !== 'idle') throw new Error(`DnsServer cannot start: it is ${this.#state}`);
    this.#state = 'starting';
    const starting = this.#bind(host, port);
    this.#starting = starting;
    try {
      const addrs = await starting;
      this.#names = new NameIndex(this.#view);
      this.#state = 'running';
      this.#log.info({ udp: addrs.udp, tcp: addrs.tcp, domain: this.#options.domain }, 'DNS listening');
      return addrs;
    } catch (err) {
      this.#state = 'idle';
      throw err;
    } finally {
      this.#starting = undefined;
    }
  }

  async #bind(host: string, port: number): Promise<DnsAddresses> {
    for (let attempt = 1; ; attempt++) {
      const udp = await bindUdp(host, port, (sock, msg, rinfo) => this.#onDatagram(sock, msg, rinfo));
      udp.on('error', (err) => this.#log.warn({ err }, 'DNS UDP socket error'));
      const udpPort = udp.address().port;
      try {
        const tcp = await listenTcp(host, udpPort, (sock) => this.#onConnection(sock));
        tcp.maxConnections = this.#maxConnections;
        tcp.on('error', (err) => this.#log.warn({ err }, 'DNS TCP listener error'));
        this.#udp = udp;
        this.#tcp = tcp;
        return { udp: { host: udp.address().address, port: udpPort }, tcp: { host: udp.address().address, port: udpPort } };
      } catch (err) {
        await closeUdp(udp);
        if (port !== 0 || attempt >= PORT_ATTEMPTS || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  }

  /** Stops both listeners and drops open TCP connections. Safe to call more than once, or before start. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#starting) await this.#starting.catch(() => undefined);
    this.#state = 'closed';
    this.#names?.close();
    for (const s of this.#sockets) s.destroy();
    const tcp = this.#tcp;
    const udp = this.#udp;
    this.#tcp = undefined;
    this.#udp = undefined;
    await Promise.all([
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
      udp ? closeUdp(udp) : undefined,
    ]);
  }

  stats(): DnsStats {
    const c = this.#counters;
    return {
      queries: Object.fromEntries(c.queries), rcodes: Object.fromEntries(c.rcodes), udp: c.udp, tcp: c.tcp,
      truncated: c.truncated, dropped: c.dropped, tcpConnections: this.#sockets.size,
    };
  }

  #onDatagram(udp: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    const r = this.#process(msg, 'udp', rinfo.address);
    if (r instanceof Promise) void r.then((reply) => this.#sendDatagram(udp, reply, rinfo));
    else if (r) this.#sendDatagram(udp, r, rinfo);
  }

  #sendDatagram(udp: UdpSocket, reply: Buffer, rinfo: RemoteInfo): void {
    try {
      udp.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) this.#log.debug({ err, to: rinfo.address }, 'DNS UDP send failed');
      });
    } catch (err) {
      // send() throws synchronously once the socket is closed; a reply racing close() is not worth a crash.
      this.#log.debug({ err }, 'DNS UDP send failed');
    }
  }

  #onConnection(sock: Socket): void {
    this.#sockets.add(sock);
    sock.setNoDelay(true);
    sock.setTimeout(this.#idleMs, () => sock.destroy());
    sock.on('error', (err) => this.#log.debug({ err }, 'DNS TCP connection error'));
    sock.on('close', () => this.#sockets.delete(sock));
    // Chunks are joined only once a whole message is in, so a client trickling bytes costs no quadratic copying.
    let chunks: Buffer[] = [];
    let total = 0;
    sock.on('data', (chunk: Buffer) => {
      try {
        chunks.push(chunk);
        total += chunk.length;
        while (total >= 2) {
          let head = chunks[0] as Buffer;
          if (head.length < 2) chunks = [(head = Buffer.concat(chunks, total))];
          const need = 2 + head.readUInt16BE(0);
          if (total < need) break;
          const all = chunks.length === 1 ? head : Buffer.concat(chunks, total);
          const rest = all.subarray(need);
          chunks = rest.length > 0 ? [rest] : [];
          total = rest.length;
          const r = this.#process(Buffer.from(all.subarray(2, need)), 'tcp', sock.remoteAddress);
          // A forwarded query is answered when its recursor answers: over TCP, answers may come in any order (RFC 7766 §7).
          if (r instanceof Promise) void r.then((reply) => writeFrame(sock, reply));
          else if (r) writeFrame(sock, r);
        }
      } catch (err) {
        this.#log.warn({ err }, 'DNS TCP connection failed');
        sock.destroy();
      }
    });
  }

  /** The reply; a promise of it when the query goes to a recursor; undefined when the message gets none. */
  #process(bytes: Buffer, transport: 'udp' | 'tcp', client: string | undefined): Buffer | Promise<Buffer> | undefined {
    const started = performance.now();
    let outcome: Outcome;
    try {
      outcome = handleMessage(bytes, {
        view: this.#view, options: this.#options, random: this.#random, now: this.#now(), transport, names: this.#names, preparedQuery: this.#preparedQuery, client,
      });
    } catch (err) {
      this.#log.error({ err }, 'DNS message handling failed');
      outcome = { kind: 'dropped', reason: 'short' };
    }
    if (outcome.kind === 'dropped') {
      this.#counters.dropped++;
      return undefined;
    }
    // REFUSED is the answer for names outside the domain and addresses the catalog does not know: the recursors'.
    const recursors = this.#recursors;
    if (outcome.rcode === 'REFUSED' && recursors !== undefined) {
      return recursors.forward(bytes, transport).then((answer) => {
        // None answered: SERVFAIL, on the reply that would have refused (same ID, question and flags).
        const reply = answer ?? Buffer.from(outcome.reply);
        if (answer === undefined) reply[3] = (reply[3]! & 0xf0) | RCODES.SERVFAIL;
        const code = reply[3]! & 0x0f;
        const rcode = (Object.keys(RCODES) as RcodeName[]).find((k) => RCODES[k] === code) ?? 'SERVFAIL';
        this.#count(transport, outcome.qtype, rcode, (reply[2]! & 0x02) !== 0, started);
        return reply;
      });
    }
    this.#count(transport, outcome.qtype, outcome.rcode, outcome.truncated, started);
    return outcome.reply;
  }

  #count(transport: 'udp' | 'tcp', qtype: string | undefined, rcode: RcodeName, truncated: boolean, started: number): void {
    const c = this.#counters;
    c[transport]++;
    bump(c.queries, qtype ?? 'none');
    bump(c.rcodes, rcode);
    if (truncated) c.truncated++;
    if (this.#onQuery) {
      try {
        this.#onQuery({ transport, qtype, rcode, truncated, durationMs: performance.now() - started });
      } catch (err) {
        this.#log.warn({ err }, 'DNS onQuery hook threw');
      }
    }
  }
}

function writeFrame(sock: Socket, reply: Buffer): void {
  if (sock.destroyed) return;
  const frame = Buffer.allocUnsafe(2 + reply.length);
  frame.writeUInt16BE(reply.length, 0);
  reply.copy(frame, 2);
  // A client that sends without reading must not make us buffer without bound.
  if (!sock.write(frame)) {
    sock.pause();
    sock.once('drain', () => sock.resume());
  }
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/** RFC 2181 §8: a TTL is 0 … 2^31 − 1 seconds. */
function ttlSeconds(what: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v > 0x7fffffff) throw new Error(`DNS: ${what} must be 0 … 2147483647 seconds, got ${v}`);
  return Math.floor(v);
}

function bindUdp(host: string, port: number, onMessage: (sock: UdpSocket, msg: Buffer, rinfo: RemoteInfo) => void): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    const fail = (err: Error): void => {
      try {
        sock.close();
      } catch {
        // Already closed by the failed bind.
      }
      reject(err);
    };
    sock.once('error', fail);
    sock.on('message', (msg, rinfo) => onMessage(sock, msg, rinfo));
    sock.bind(port, host, () => {
      sock.off('error', fail);
      resolve(sock);
    });
  });
}

function listenTcp(host: string, port: number, onConnection: (sock: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeUdp(sock: UdpSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
