/** Header rewriting at the proxy edge: hop-by-hop removal and X-Forwarded-* / X-Request-Id. */
import { randomUUID } from 'node:crypto';

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

function connectionListed(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).length === 10 && (raw[i] as string).toLowerCase() === 'connection') {
      for (const t of (raw[i + 1] as string).split(',')) {
        const n = t.trim().toLowerCase();
        if (n && n !== 'close' && n !== 'keep-alive') (out ??= new Set()).add(n);
      }
    }
  }
  return out;
}

export interface ForwardInfo {
  readonly clientIp: string;
  readonly proto: 'http' | 'https';
}

/**
 * Request headers for the upstream, as a flat [name, value, ...] list: hop-by-hop headers and
 * those named in Connection removed, X-Forwarded-For appended, X-Forwarded-Proto/Host and
 * X-Request-Id added when absent. Returns the request id too, for logs and the response.
 */
export function upstreamRequestHeaders(raw: readonly string[], info: ForwardInfo): { headers: string[]; requestId: string } {
  const listed = connectionListed(raw);
  const out: string[] = [];
  let xff: string | undefined;
  let host: string | undefined;
  let requestId: string | undefined;
  let hasProto = false;
  let hasFwdHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower)) continue;
    // Node's server has already answered 100-continue, and undici refuses to forward Expect.
    if (lower === 'expect') continue;
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? value : `${xff}, ${value}`;
      continue;
    }
    if (lower === 'host') host = value;
    else if (lower === 'x-request-id') requestId = value;
    else if (lower === 'x-forwarded-proto') hasProto = true;
    else if (lower === 'x-forwarded-host') hasFwdHost = true;
    out.push(name, value);
  }
  out.push('x-forwarded-for', xff === undefined ? info.clientIp : `${xff}, ${info.clientIp}`);
  if (!hasProto) out.push('x-forwarded-proto', info.proto);
  if (!hasFwdHost && host !== undefined) out.push('x-forwarded-host', host);
  if (requestId === undefined) {
    requestId = randomUUID();
    out.push('x-request-id', requestId);
  }
  return { headers: out, requestId };
}

/** Response headers for the client from undici's raw Buffer list, hop-by-hop removed (one pass; a Connection token list is rare). */
export function clientResponseHeaders(raw: readonly Buffer[] | readonly string[]): string[] {
  const out: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as Buffer | string;
    const name = typeof n === 'string' ? n : n.toString('latin1');
    const v = raw[i + 1] as Buffer | string;
    const value = typeof v === 'string' ? v : v.toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') {
        for (const t of value.split(',')) {
          const x = t.trim().toLowerCase();
          if (x && x !== 'close' && x !== 'keep-alive') (listed ??= []).push(x);
        }
      }
      continue;
    }
    out.push(name, value);
  }
  if (listed === undefined) return out;
  const drop = new Set(listed);
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!drop.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
  return kept;
}
