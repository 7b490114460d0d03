/** Addresses given as an IP with an optional port (DNS recursors). */
import { isIP } from 'node:net';

/** `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address (port 53 when not given); undefined when it is none of them. */
export function parseRecursor(s: string): { host: string; port: number } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s);
  const [host, port] = bracketed ? [bracketed[1] as string, bracketed[2]] : v4 ? [v4[1] as string, v4[2]] : [s, undefined];
  if (isIP(host) === 0) return undefined;
  const n = port === undefined ? 53 : Number(port);
  return n >= 1 && n <= 65535 ? { host, port: n } : undefined;
}
