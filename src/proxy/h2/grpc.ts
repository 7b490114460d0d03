/**
 * gRPC's vocabulary at the balancer: status codes, the grpc-timeout header, the answers the balancer
 * gives in gRPC's shape (trailers-only: HTTP 200 with grpc-status in the only header block), and how
 * a call's status counts for passive health.
 */
import type { OutgoingHttpHeaders } from 'node:http2';

/** The codes this module names (grpc/doc/statuscodes.md). */
export const GRPC = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A request is a gRPC call when its content type is application/grpc (or application/grpc+proto, …). */
export function isGrpcContentType(ct: string | string[] | undefined): boolean {
  const v = Array.isArray(ct) ? ct[0] : ct;
  return v !== undefined && v.length >= 16 && v.slice(0, 16).toLowerCase() === 'application/grpc' && (v.length === 16 || v[16] === '+' || v[16] === ';');
}

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * grpc-timeout (`TimeoutValue TimeoutUnit`: at most 8 digits, then H, M, S, m, u or n) in ms;
 * undefined when absent, `{ error }` when malformed.
 */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined | { error: string } {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0] ?? '' : v;
  const m = /^(\d{1,8})([HMSmun])$/.exec(s);
  if (m === null) return { error: `invalid grpc-timeout ${JSON.stringify(s)} (expected up to 8 digits and a unit: H, M, S, m, u or n)` };
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

/**
 * The grpc-timeout value for `ms` left: from milliseconds up, the first unit whose value fits the 8 digits the header
 * allows (rounded up, never 0), as grpc-go encodes it. Milliseconds alone stop at 27.7 hours, and a
 * longer value is a header the instance refuses.
 */
export function formatGrpcTimeout(ms: number): string {
  const left = Math.max(1, Math.ceil(ms));
  for (const [unit, per] of [['m', 1], ['S', 1000], ['M', 60_000]] as const) {
    const v = Math.ceil(left / per);
    if (v <= 99_999_999) return `${v}${unit}`;
  }
  return `${Math.min(99_999_999, Math.ceil(left / 3_600_000))}H`;
}

/** The gRPC status for a balancer answer that would have had this HTTP status (gRPC's HTTP-to-gRPC mapping, refined). */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400: return GRPC.INTERNAL;
    case 401: return GRPC.UNAUTHENTICATED;
    case 403: return GRPC.PERMISSION_DENIED;
    case 404: return GRPC.UNIMPLEMENTED;
    case 408: return GRPC.DEADLINE_EXCEEDED;
    case 413: return GRPC.RESOURCE_EXHAUSTED;
    case 429: return GRPC.RESOURCE_EXHAUSTED;
    case 502: case 503: return GRPC.UNAVAILABLE;
    case 504: return GRPC.DEADLINE_EXCEEDED;
    default: return status >= 500 ? GRPC.UNAVAILABLE : GRPC.UNKNOWN;
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2: printable ASCII except %, as is). */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** A trailers-only answer: the call ends with this status and message, no messages. */
export function trailersOnly(status: number, message: string, extra: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  return { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message), ...extra };
}

/**
 * How a call's grpc-status counts for passive health, as an HTTP status: UNAVAILABLE (503),
 * DEADLINE_EXCEEDED (504) and INTERNAL, UNKNOWN, DATA_LOSS (500) speak of the instance; every other
 * status is the application's answer (NOT_FOUND, INVALID_ARGUMENT, …) and counts as a success.
 */
export function healthStatusForGrpc(grpcStatus: number): number {
  if (grpcStatus === GRPC.UNAVAILABLE) return 503;
  if (grpcStatus === GRPC.DEADLINE_EXCEEDED) return 504;
  if (grpcStatus === GRPC.INTERNAL || grpcStatus === GRPC.UNKNOWN || grpcStatus === GRPC.DATA_LOSS) return 500;
  return 200;
}

/** Reads a grpc-status header value; undefined when absent or not a number. */
export function readGrpcStatus(v: string | string[] | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
