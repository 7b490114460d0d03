/** Field schemas shared by every static config: Go durations and host:port addresses. */
import { z } from 'zod';
import { parseRecursor } from '../core/ip-port.js';
import { parseGoDuration } from '../core/duration.js';

/** The longest duration a static config takes: every one ends up as a timer (see MAX_TIMER_MS). */
export const MAX_CONFIG_DURATION = '596h';
const MAX_CONFIG_DURATION_NS = parseGoDuration(MAX_CONFIG_DURATION);

export const goDuration = z.string().refine((s) => {
  try {
    return parseGoDuration(s) >= 0;
  } catch {
    return false;
  }
}, { message: 'must be a Go duration such as "10s", "1m30s" or "250ms"', abort: true })
  .refine((s) => parseGoDuration(s) <= MAX_CONFIG_DURATION_NS, {
    message: `must be at most ${MAX_CONFIG_DURATION} (a Node.js timer holds about 24.8 days; a longer one would fire at once)`,
    abort: true,
  });

export const hostPort = (example: string) => z.string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, { message: `must be host:port, e.g. ${example}` })
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, { message: 'port must be 0-65535' });

/** A Go duration within [minNs, maxNs]; a string that does not parse fails goDuration's check, never throws. */
export const goDurationBetween = (minNs: number, maxNs: number, message: string) => goDuration.refine((s) => {
  try {
    const ns = parseGoDuration(s);
    return ns >= minNs && ns <= maxNs;
  } catch {
    return false;
  }
}, { message, abort: true });

export const msFrom = (d: string | undefined, fallback: number): number => (d === undefined ? fallback : parseGoDuration(d) / 1e6);

/** host:port (an IPv6 host in brackets) split into its parts; the schemas have checked the form. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  let host = addr.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(addr.slice(i + 1)) };
}

/** Host names a loopback listener also answers under (core/host-guard.ts): `name`, `*.domain` by suffix, or `*` for any. */
export const allowedHostList = z.array(z.string().regex(/^(\*|(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?)$/, { message: 'must be a host name, *.domain, or *' }));

/** DNS recursors: IP addresses with an optional port (53), as Consul's `recursors`; names are refused (resolving them would need DNS). */
export const recursorList = z.array(z.string().refine((s) => parseRecursor(s) !== undefined, { message: 'must be an IP address with an optional port (1.1.1.1, 1.1.1.1:5353, [::1]:53)' }));
