/** The ACL token rule shared by the registry API and the UI's live endpoints: where a request carries its token, and how it is compared. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** The token a request presents, in Consul's order: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`. */
export function requestToken(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined {
  const q = query.get('token');
  if (q) return q;
  const h = headers['x-consul-token'];
  if (typeof h === 'string' && h !== '') return h;
  const m = /^Bearer\s+(\S+)/.exec(headers.authorization ?? '');
  return m?.[1];
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Whether `given` is the expected token, in time that depends on neither where they differ nor their lengths:
 * timingSafeEqual needs equal lengths, so it compares fixed-size digests rather than the tokens themselves.
 */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/** Whether a request may pass: always when no token is configured, else when it presents the right one. */
export function aclAllows(expected: string | undefined, headers: IncomingHttpHeaders, query: URLSearchParams): boolean {
  return expected === undefined || tokenMatches(requestToken(headers, query), expected);
}
