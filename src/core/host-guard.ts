/**
 * A defence against DNS rebinding for an HTTP service that listens on loopback only. A web page on
 * evil.example can make its own name resolve to 127.0.0.1; the browser then treats the agent's API
 * as the page's own origin, so the page reads every KV value and writes whatever it likes, with no
 * CORS check in the way. Such a request names the attacker's domain in Host. A request meant for a
 * loopback listener names localhost, an IP address or a single-label name (a container or host name),
 * which no public DNS name can be; anything else is refused unless the operator lists it.
 */
import { isIP } from 'node:net';

/** Returns why a request's Host is refused, or undefined when it is allowed. */
export type HostCheck = (host: string | undefined) => string | undefined;

/** 127.0.0.0/8, ::1 and localhost: a listener only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/** The host name of a Host header: brackets and port removed, lower case, no trailing dot. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') < 0 ? undefined : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return (colon < 0 ? h : h.slice(0, colon)).replace(/\.$/, '');
}

/**
 * The check for a listener on `listenHost`, or undefined when there is nothing to check (a listener
 * reachable from other machines is protected by --acl-token, not by names). `allowed`: further
 * names, exact (`consul.example.com`), by suffix (`*.example.com`), or `*` for any.
 */
export function loopbackHostGuard(listenHost: string, allowed: readonly string[], setting = '--allowed-hosts'): HostCheck | undefined {
  if (!isLoopbackHost(listenHost) || allowed.includes('*')) return undefined;
  const exact = new Set(allowed.filter((a) => !a.startsWith('*.')).map((a) => a.toLowerCase().replace(/\.$/, '')));
  const suffixes = allowed.filter((a) => a.startsWith('*.')).map((a) => a.slice(1).toLowerCase());
  return (header) => {
    if (header === undefined || header === '') return undefined;
    const name = hostName(header);
    if (!name.includes('.') || isIP(name) !== 0 || name.endsWith('.localhost') || exact.has(name) || suffixes.some((s) => name.endsWith(s))) return undefined;
    return `Host ${JSON.stringify(header)} is not allowed: this server listens on loopback only and answers requests addressed to localhost, an IP address or a single-label name, so that a web page whose own name was made to resolve to 127.0.0.1 (DNS rebinding) cannot use it; to reach it under this name, add it with ${setting}`;
  };
}
