/**
 * etcd's KV.Txn over plain HTTP/2, the one call on a registration's path: the request encoded and
 * the answer decoded here, on one session per member. Through etcd3 and grpc-js the same call
 * cost the agent about 330 µs of CPU (interceptors, resolving, load-balancing and retrying call
 * layers, protobufjs objects turned into plain ones), through this about 170 µs (`npm run
 * bench:etcd-txn`, docs/scale.md, "etcd store"). Everything else (ranges, the watch, leases) stays on etcd3.
 *
 * Failures are reported as grpc-js reports them, cast by etcd3's castGrpcError, so the store's
 * rules (neverSent, memberUnreachable, transient) read them unchanged: a call that found no
 * connection says "No connection established" (or, past its deadline, "Waiting for LB pick"), a
 * connection lost under a sent call is UNAVAILABLE without an etcdserver message, a member's own
 * refusal keeps its words. Members are taken in turn; one that fails three calls in a row for
 * being unreachable sits out for a second, as etcd3's circuit breakers were set to.
 */
import { constants } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { connectH2 } from '../../core/h2-connect.js';
import { castGrpcError } from 'etcd3';
import { BrokenCircuitError } from 'cockatiel';

/** One compare of a transaction, as the store builds it. */
export interface TxnCompare {
  readonly key: Buffer;
  /** etcd's CompareTarget: 1 create revision, 2 mod revision. */
  readonly target: number;
  /** etcd's CompareResult: 0 equal, 1 greater. */
  readonly result: number;
  readonly create_revision?: number;
  readonly mod_revision?: number;
}

export interface TxnOp {
  readonly request_put?: { readonly key: Buffer; readonly value: Buffer; readonly lease?: string };
  readonly request_delete_range?: { readonly key: Buffer; readonly range_end?: Buffer };
}

/** The parts of etcd's TxnResponse the store reads. */
export interface TxnAnswer {
  readonly header: { readonly revision: number };
  readonly succeeded: boolean;
  readonly responses: readonly { readonly response_delete_range?: { readonly deleted: number } }[];
}

const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** An error worded and typed as grpc-js's ServiceError after etcd3's cast. */
function grpcError(code: number, details: string): Error {
  return castGrpcError(Object.assign(new Error(`${code} ${STATUS_NAMES[code] ?? 'UNKNOWN'}: ${details}`), { code, details }));
}

/** grpc-message is percent-encoded; a malformed escape is kept as sent rather than thrown from a stream event. */
function percentDecoded(m: string): string {
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}

// ---- protobuf (proto3 wire format), only what Txn needs ----

/** Writes into one growing buffer: a Buffer per varint (and a concat at the end) cost more than the encoding. */
class Writer {
  #buf = Buffer.allocUnsafe(256);
  #pos = 0;

  #room(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n));
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  /** Any int64 (lease IDs may pass 2^53): as two's complement, ten bytes at most. */
  varint(n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n));
    this.#room(10);
    while (v > 127n) {
      this.#buf[this.#pos++] = Number(v & 127n) | 128;
      v >>= 7n;
    }
    this.#buf[this.#pos++] = Number(v);
    return this;
  }

  /** A non-negative integer below 2^53 (tags, lengths, revisions): no BigInt. */
  uint(n: number): this {
    this.#room(8);
    let v = n;
    while (v > 127) {
      this.#buf[this.#pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.#buf[this.#pos++] = v;
    return this;
  }

  tag(field: number, wire: 0 | 2): this {
    return this.uint(field * 8 + wire);
  }

  bytes(field: number, b: Buffer): this {
    this.tag(field, 2).uint(b.length);
    this.#room(b.length);
    b.copy(this.#buf, this.#pos);
    this.#pos += b.length;
    return this;
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.view());
  }

  /** The bytes written so far, without a copy (valid until the next write). */
  view(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }

  finish(): Buffer {
    return Buffer.from(this.view());
  }
}

function encodeOp(op: TxnOp): Writer {
  const w = new Writer();
  if (op.request_put !== undefined) {
    const p = new Writer().bytes(1, op.request_put.key).bytes(2, op.request_put.value);
    if (op.request_put.lease !== undefined && op.request_put.lease !== '0') p.tag(3, 0).varint(BigInt(op.request_put.lease));
    w.message(2, p);
  } else if (op.request_delete_range !== undefined) {
    const d = new Writer().bytes(1, op.request_delete_range.key);
    if (op.request_delete_range.range_end !== undefined) d.bytes(2, op.request_delete_range.range_end);
    w.message(3, d);
  }
  return w;
}

/** TxnRequest { repeated Compare compare = 1; repeated RequestOp success = 2; repeated RequestOp failure = 3; } */
export function encodeTxn(compare: readonly TxnCompare[], success: readonly TxnOp[], failure: readonly TxnOp[]): Buffer {
  const w = new Writer();
  for (const c of compare) {
    const m = new Writer();
    if (c.result !== 0) m.tag(1, 0).uint(c.result);
    if (c.target !== 0) m.tag(2, 0).uint(c.target);
    m.bytes(3, c.key);
    // The target_union oneof is sent even when 0: a oneof has presence.
    if (c.create_revision !== undefined) m.tag(5, 0).uint(c.create_revision);
    if (c.mod_revision !== undefined) m.tag(6, 0).uint(c.mod_revision);
    w.message(1, m);
  }
  for (const op of success) w.message(2, encodeOp(op));
  for (const op of failure) w.message(3, encodeOp(op));
  return w.finish();
}

class Reader {
  pos: number;
  readonly end: number;
  readonly b: Buffer;

  constructor(b: Buffer, start = 0, end = b.length) {
    this.b = b;
    this.pos = start;
    this.end = end;
  }

  varint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const x = this.b[this.pos++] as number;
      n += (x & 127) * mul;
      if (x < 128) return n;
      mul *= 128;
    }
    throw new Error('varint too long');
  }

  /** Skips a field of this wire type, or returns the [start, end) of a length-delimited one. */
  field(wire: number): [number, number] {
    switch (wire) {
      case 0: this.varint(); return [0, 0];
      case 1: this.pos += 8; return [0, 0];
      case 5: this.pos += 4; return [0, 0];
      case 2: {
        const len = this.varint();
        const start = this.pos;
        this.pos += len;
        if (this.pos > this.end) throw new Error('truncated field');
        return [start, this.pos];
      }
      default: throw new Error(`unknown wire type ${wire}`);
    }
  }
}

/** Reads `field`'s varint inside the message at [s, e), or 0. */
function varintField(b: Buffer, s: number, e: number, field: number): number {
  const r = new Reader(b, s, e);
  let v = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === field * 8) v = r.varint();
    else r.field(tag & 7);
  }
  return v;
}

/** TxnResponse { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; } */
export function decodeTxn(b: Buffer): TxnAnswer {
  const r = new Reader(b);
  let revision = 0;
  let succeeded = false;
  const responses: { response_delete_range?: { deleted: number } }[] = [];
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 2 && wire === 0) succeeded = r.varint() !== 0;
    else if (field === 1 && wire === 2) {
      const [s, e] = r.field(2);
      revision = varintField(b, s, e, 3);
    } else if (field === 3 && wire === 2) {
      const [s, e] = r.field(2);
      // ResponseOp { ... DeleteRangeResponse response_delete_range = 3; ... } with DeleteRangeResponse { ... int64 deleted = 2; }
      const op = new Reader(b, s, e);
      let entry: { response_delete_range?: { deleted: number } } = {};
      while (op.pos < op.end) {
        const t = op.varint();
        const [ds, de] = op.field(t & 7);
        if (t === 3 * 8 + 2) entry = { response_delete_range: { deleted: varintField(b, ds, de, 2) } };
      }
      responses.push(entry);
    } else r.field(wire);
  }
  return { header: { revision }, succeeded, responses };
}

// ---- the channel ----

interface Member {
  readonly url: string;
  session: ClientHttp2Session | undefined;
  connected: boolean;
  /** Consecutive calls that failed for the member being unreachable. */
  failures: number;
  /** Sits out until then (ms). */
  downUntil: number;
}

const PATH = '/etcdserverpb.KV/Txn';
const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE } = constants;
const HEADERS = { [HTTP2_HEADER_METHOD]: 'POST', [HTTP2_HEADER_PATH]: PATH, [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc', [HTTP2_HEADER_TE]: 'trailers' };

export class EtcdTxnChannel {
  readonly #members: Member[];
  readonly #unreachable: (err: unknown) => boolean;
  readonly #tls: ConnectionOptions;
  #next = 0;
  #closed = false;

  /**
   * `endpoints`: http:// or https://host:port of each member; `unreachable`: whether a failure counts
   * against its member; `tls`: the CA (the system's without it) and client certificate for https members.
   */
  constructor(endpoints: readonly string[], unreachable: (err: unknown) => boolean, tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer }) {
    this.#members = endpoints.map((url) => ({ url, session: undefined, connected: false, failures: 0, downUntil: 0 }));
    this.#unreachable = unreachable;
    this.#tls = tls === undefined ? {} : { ...(tls.ca ? { ca: tls.ca } : {}), ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) };
  }

  /** Sends one Txn to the next member that is not sitting out; rejects with a cast gRPC error. */
  async txn(body: Buffer, deadline: Date): Promise<TxnAnswer> {
    const m = this.#pick();
    try {
      const answer = await this.#call(m, body, deadline);
      m.failures = 0;
      return answer;
    } catch (err) {
      if (this.#unreachable(err) && ++m.failures >= 3) {
        m.failures = 0;
        m.downUntil = Date.now() + 1000;
      }
      throw err;
    }
  }

  close(): void {
    this.#closed = true;
    for (const m of this.#members) {
      m.session?.close();
      m.session = undefined;
    }
  }

  #pick(): Member {
    const now = Date.now();
    const n = this.#members.length;
    for (let i = 0; i < n; i++) {
      const m = this.#members[(this.#next + i) % n] as Member;
      if (m.downUntil <= now) {
        this.#next = (this.#next + i + 1) % n;
        return m;
      }
    }
    throw new BrokenCircuitError();
  }

  #session(m: Member): ClientHttp2Session {
    const s = m.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    // No SNI for a member named by its address (RFC 6066; connectH2 sends none): its certificate is checked against its IP SANs.
    const u = new URL(m.url);
    const https = u.protocol === 'https:';
    const fresh = connectH2({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || (https ? 443 : 80)), ...(https ? { tls: this.#tls } : {}) });
    m.session = fresh;
    m.connected = false;
    // Connected once the member has spoken HTTP/2 (its SETTINGS), not when TCP is up: a hung process's
    // kernel still completes the handshake, and a call stuck there was never read.
    fresh.once('remoteSettings', () => (m.connected = true));
    const drop = (): void => {
      if (m.session === fresh) m.session = undefined;
    };
    fresh.on('error', drop).on('close', drop).on('goaway', drop);
    // A session with no call open must not keep the agent's event loop alive.
    fresh.unref();
    return fresh;
  }

  #call(m: Member, body: Buffer, deadline: Date): Promise<TxnAnswer> {
    if (this.#closed) return Promise.reject(grpcError(1, 'channel closed'));
    const session = this.#session(m);
    return new Promise<TxnAnswer>((resolve, reject) => {
      let stream: ClientHttp2Stream | undefined;
      let settled = false;
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let message = '';
      const finish = (err: Error | undefined, answer?: TxnAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err !== undefined) reject(err);
        else resolve(answer as TxnAnswer);
      };
      const timer = setTimeout(() => {
        stream?.close(constants.NGHTTP2_CANCEL);
        finish(grpcError(4, m.connected ? 'Deadline exceeded' : 'Deadline exceeded: Waiting for LB pick (no connection to the member)'));
      }, Math.max(0, deadline.getTime() - Date.now()));
      try {
        stream = session.request(HEADERS);
      } catch (err) {
        finish(grpcError(14, `No connection established. Last error: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      const frame = Buffer.allocUnsafe(5 + body.length);
      frame[0] = 0;
      frame.writeUInt32BE(body.length, 1);
      body.copy(frame, 5);
      stream.end(frame);
      const st = stream;
      const takeStatus = (h: Record<string, unknown>): void => {
        if (h['grpc-status'] !== undefined) {
          status = Number(h['grpc-status']);
          message = h['grpc-message'] === undefined ? '' : percentDecoded(String(h['grpc-message']));
        }
      };
      stream.on('response', (h) => takeStatus(h as Record<string, unknown>));
      stream.on('trailers', (h) => takeStatus(h as Record<string, unknown>));
      stream.on('data', (d: Buffer) => chunks.push(d));
      // A session that fails takes its streams with it: before it connected nothing was sent, and the call may go to another member.
      stream.on('error', (err: Error) => {
        finish(m.connected ? grpcError(14, `Connection dropped: ${err.message}`) : grpcError(14, `No connection established. Last error: ${err.message}`));
      });
      stream.on('close', () => {
        if (settled) return;
        if (status === undefined) {
          finish(grpcError(14, `Connection dropped (stream closed with code ${st.rstCode ?? 0} before a status)`));
          return;
        }
        if (status !== 0) {
          finish(grpcError(status, message));
          return;
        }
        const all = chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks);
        if (all.length < 5 || all[0] !== 0 || all.readUInt32BE(1) !== all.length - 5) {
          finish(grpcError(13, `malformed Txn response (${all.length} bytes)`));
          return;
        }
        try {
          finish(undefined, decodeTxn(all.subarray(5)));
        } catch (err) {
          finish(grpcError(13, `malformed Txn response: ${err instanceof Error ? err.message : String(err)}`));
        }
      });
    });
  }
}
