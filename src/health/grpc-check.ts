/**
 * The Consul gRPC check: grpc.health.v1.Health/Check over HTTP/2 (TLS with GRPCUseTLS), SERVING is
 * passing and anything else critical, with the output texts Consul (grpc-go) writes. The two
 * messages are one field each, encoded here by hand rather than with a gRPC library.
 */
import { constants } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http2';
import { dialH2 } from './h2-dial.js';
import { oneShot } from './one-shot.js';
import { dialErrorText, joinHostPort, splitHostPort } from './tcp-check.js';
import { effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

export interface GrpcCheckDefinition {
  /** Consul's `GRPC`: `host:port` or `host:port/service`. */
  target: string;
  useTls: boolean;
  tlsSkipVerify?: boolean | undefined;
  tlsServerName?: string | undefined;
  timeoutMs: number;
}

/** grpc-go's names of the status codes (codes.Code.String()). */
const CODE_NAMES = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
/** HealthCheckResponse.ServingStatus names. */
const SERVING_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

const codeName = (c: number): string => CODE_NAMES[c] ?? `Code(${c})`;
const rpcError = (code: number, desc: string): string => `rpc error: code = ${codeName(code)} desc = ${desc}`;

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A length-prefixed gRPC message holding HealthCheckRequest { string service = 1; }. */
export function encodeHealthRequest(service: string): Buffer {
  const s = Buffer.from(service, 'utf8');
  const msg = s.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...varint(s.length)]), s]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([prefix, msg]);
}

/** HealthCheckResponse.status from a length-prefixed message (0, UNKNOWN, when the field is absent); unknown fields are skipped. */
export function decodeHealthResponse(body: Buffer): number | { error: string } {
  if (body.length < 5) return { error: 'short message' };
  if (body[0] !== 0) return { error: 'compressed message' };
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return { error: 'truncated message' };
  const m = body.subarray(5, 5 + len);
  let i = 0;
  let status = 0;
  const readVarint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= m.length || shift > 49) throw new Error('bad varint');
      const c = m[i++] as number;
      v += (c & 0x7f) * 2 ** shift;
      if ((c & 0x80) === 0) return v;
      shift += 7;
    }
  };
  try {
    while (i < m.length) {
      const key = readVarint();
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) {
        const v = readVarint();
        if (field === 1) status = v;
      } else if (wire === 2) {
        const n = readVarint();
        i += n;
      }
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return { error: `unexpected wire type ${wire}` };
    }
  } catch (err) {
    return { error: (err as Error).message };
  }
  return status;
}

function grpcMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v[0] ?? '' : v ?? '';
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Runs one check; never rejects. */
export function runGrpcCheck(def: GrpcCheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const slash = def.target.indexOf('/');
  const server = slash < 0 ? def.target : def.target.slice(0, slash);
  const service = slash < 0 ? '' : def.target.slice(slash + 1);
  const parsed = splitHostPort(server);
  if ('error' in parsed) return Promise.resolve({ status: 'critical', output: rpcError(14, `connection error: desc = "transport: Error while dialing: dial tcp: ${parsed.error}"`) });
  const { host, port } = parsed;
  const addr = joinHostPort(host, port);
  let connected = false;
  const critical = (output: string): CheckResult => ({ status: 'critical', output });
  return oneShot({
    signal, timeoutMs: def.timeoutMs,
    expired: () => critical(rpcError(4, 'context deadline exceeded')),
    aborted: () => critical(rpcError(1, 'context canceled')),
  }, (settle, done) => {
    const session = dialH2(host, port, def);
    const fail = (output: string): void => settle(critical(output));
    session.once('connect', () => {
      connected = true;
    });
    const transportError = (e: Error): void => {
      // A stream queued on a session that failed to connect reports the session's error as its cause.
      const err = ((e as Error & { cause?: unknown }).cause as Error | undefined) ?? e;
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (connected) fail(rpcError(14, `connection error: ${err.message}`));
      else if (def.useTls && !/^E[A-Z]+$/.test(code)) fail(rpcError(14, `connection error: desc = "transport: authentication handshake failed: ${err.message}"`));
      else fail(rpcError(14, `connection error: desc = "transport: Error while dialing: ${dialErrorText(err, addr, host)}"`));
    };
    session.on('error', transportError);
    const req = session.request({
      ':method': 'POST', ':path': '/grpc.health.v1.Health/Check', ':authority': server,
      'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.max(1, Math.ceil(effectiveTimeoutMs(def.timeoutMs)))}m`,
      'user-agent': 'Consul Health Check',
    });
    let head: IncomingHttpHeaders | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (head = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', transportError);
    req.on('close', () => {
      if (done()) return;
      if (head === undefined) {
        fail(rpcError(14, req.rstCode === constants.NGHTTP2_REFUSED_STREAM ? 'the server refused the stream' : 'the connection closed before a response'));
        return;
      }
      const httpStatus = Number(head[':status']);
      const st = trailers ?? head;
      if (httpStatus !== 200 && st['grpc-status'] === undefined) {
        fail(rpcError(httpStatus === 404 ? 12 : 14, `unexpected HTTP status code received from server: ${httpStatus}`));
        return;
      }
      const gs = Number(st['grpc-status'] ?? NaN);
      if (!Number.isInteger(gs)) {
        fail(rpcError(13, 'server closed the stream without sending trailers'));
        return;
      }
      if (gs !== 0) {
        fail(rpcError(gs, grpcMessage(st['grpc-message'])));
        return;
      }
      const status = decodeHealthResponse(Buffer.concat(chunks));
      if (typeof status !== 'number') {
        fail(rpcError(13, `grpc: failed to unmarshal the received message: ${status.error}`));
        return;
      }
      if (status === 1) settle({ status: 'passing', output: `gRPC check ${def.target}: success` });
      else fail(`gRPC ${def.target} serving status: ${SERVING_NAMES[status] ?? String(status)}`);
    });
    req.end(encodeHealthRequest(service));
    return () => session.destroy();
  });
}
