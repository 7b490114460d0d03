/** DNS name handling for the Consul interface: the domain, query-name parsing, `.addr` hex IPs and wire-safe names. */
import { isIPv4, isIPv6 } from 'node:net';

/** What a name inside the domain asks for, after Consul's right-to-left parse. */
export type ParsedName =
  | { readonly kind: 'service'; readonly service: string; readonly tag: string | undefined; readonly datacenter: string | undefined }
  | { readonly kind: 'node'; readonly node: string; readonly datacenter: string | undefined }
  | { readonly kind: 'addr'; readonly ip: ParsedIp; readonly datacenter: string | undefined }
  | { readonly kind: 'query'; readonly query: string; readonly datacenter: string | undefined }
  | { readonly kind: 'invalid' };

export interface ParsedIp {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly bytes: Uint8Array;
  /** Canonical text: dotted quad, or eight full hex groups (what the record encoder takes). */
  readonly text: string;
}

/** `consul.` / `Consul` → `consul`: lower case and no outer dots, the form every comparison uses. */
export function normalizeDomain(domain: string): string {
  const d = domain.trim().toLowerCase().replace(/^\.+|\.+$/g, '');
  if (d === '' || !isEncodableName(d)) throw new Error(`invalid DNS domain ${JSON.stringify(domain)}`);
  return d;
}

/**
 * The labels in front of `domain` (lower-cased, since Consul lower-cases the whole name before
 * parsing), `[]` for the domain itself, or undefined for a name outside it.
 */
export function relativeLabels(qname: string, domain: string): string[] | undefined {
  const name = qname.toLowerCase().replace(/\.+$/, '');
  if (name === domain) return [];
  if (!name.endsWith(`.${domain}`)) return undefined;
  const rest = name.slice(0, name.length - domain.length - 1);
  return rest === '' ? [] : rest.split('.');
}

const KINDS: ReadonlySet<string> = new Set(['service', 'node', 'addr', 'query', 'connect', 'ingress', 'virtual']);

/**
 * Consul's parse: the last label is a query kind, or else the datacenter (allowed once), then the
 * kind. For SRV questions a trailing `_proto` label implies the `service` kind (RFC 2782 names
 * without `.service`).
 */
export function parseQueryName(relative: readonly string[], srvQuestion: boolean, localDatacenter?: string): ParsedName {
  let labels = [...relative];
  let datacenter: string | undefined;
  // Consul's datacenter names have no dots, but ours may: strip a dotted local one whole so SRV targets resolve.
  const dcLabels = localDatacenter?.toLowerCase().split('.') ?? [];
  if (dcLabels.length > 1 && labels.length > dcLabels.length && dcLabels.every((l, i) => labels[labels.length - dcLabels.length + i] === l)) {
    datacenter = localDatacenter?.toLowerCase();
    labels = labels.slice(0, labels.length - dcLabels.length);
  }
  for (;;) {
    if (labels.length === 0) return { kind: 'invalid' };
    if (srvQuestion && (labels.at(-1) as string).startsWith('_')) labels = [...labels, 'service'];
    const kind = labels.at(-1) as string;
    if (KINDS.has(kind)) break;
    // Datacenter names cannot contain dots: only one label may sit between the kind and the domain.
    if (datacenter !== undefined) return { kind: 'invalid' };
    datacenter = kind;
    labels = labels.slice(0, -1);
  }
  const n = labels.length;
  const kind = labels[n - 1] as string;
  if (n === 1) return { kind: 'invalid' };
  switch (kind) {
    case 'service': {
      const first = labels[0] as string;
      const second = labels[1] as string;
      if (n === 3 && first.startsWith('_') && second.startsWith('_')) {
        const tag = second.slice(1);
        // `_tcp` is RFC 2782's protocol label, not a tag: it means "any instance" (as in Consul; `_udp` stays a tag).
        return { kind: 'service', service: first.slice(1), tag: tag === 'tcp' ? undefined : tag, datacenter };
      }
      // Tags may contain dots: everything in front of the service label is the tag.
      const tag = n >= 3 ? labels.slice(0, n - 2).join('.') : undefined;
      return { kind: 'service', service: labels[n - 2] as string, tag, datacenter };
    }
    case 'node':
      // Node names may contain dots too.
      return { kind: 'node', node: labels.slice(0, n - 1).join('.'), datacenter };
    case 'addr': {
      if (n !== 2) return { kind: 'invalid' };
      const ip = hexToIp(labels[0] as string);
      return ip ? { kind: 'addr', ip, datacenter } : { kind: 'invalid' };
    }
    case 'query':
      // A prepared query's ID or name; names (and template suffixes) may contain dots.
      return { kind: 'query', query: labels.slice(0, n - 1).join('.'), datacenter };
    default:
      // The service-mesh forms are out of scope: they resolve to nothing.
      return { kind: 'invalid' };
  }
}

/** Parses an IPv4 or IPv6 literal; IPv4-mapped IPv6 counts as IPv4 (as Go's To4() does). Zone IDs are dropped. */
export function parseIp(s: string): ParsedIp | undefined {
  if (isIPv4(s)) return ipFromBytes(Uint8Array.from(s.split('.').map(Number)));
  const noZone = s.replace(/%.*$/, '');
  if (!isIPv6(noZone)) return undefined;
  const bytes = ipv6Bytes(noZone);
  if (!bytes) return undefined;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return ipFromBytes(mapped ? bytes.slice(12) : bytes);
}

function ipFromBytes(bytes: Uint8Array): ParsedIp {
  if (bytes.length === 4) return { family: 4, bytes, text: [...bytes].join('.') };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  return { family: 6, bytes, text: groups.join(':') };
}

function ipv6Bytes(s: string): Uint8Array | undefined {
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!isIPv4(last)) return undefined;
    tail.push(...last.split('.').map(Number));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string | undefined): number[] => (h === undefined || h === '' ? [] : h.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]);
  const rest = parse(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...new Array<number>(Math.max(0, fill)).fill(0), ...rest];
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/** The `.addr.` label: 8 hex digits for IPv4, 32 for IPv6. */
export function ipToHex(ip: ParsedIp): string {
  return Buffer.from(ip.bytes).toString('hex');
}

export function hexToIp(label: string): ParsedIp | undefined {
  if (!/^[0-9a-f]+$/i.test(label) || (label.length !== 8 && label.length !== 32)) return undefined;
  return ipFromBytes(Uint8Array.from(Buffer.from(label, 'hex')));
}

/**
 * Whether the encoder can put `name` on the wire unchanged: dns-packet writes a label's byte length
 * into one byte without checking, so a label over 63 bytes would corrupt the message.
 */
export function isEncodableName(name: string): boolean {
  const n = name.replace(/\.$/, '');
  if (n === '') return true;
  if (Buffer.byteLength(n) > 253) return false;
  return n.split('.').every((l) => l.length > 0 && Buffer.byteLength(l) <= 63);
}

/**
 * The address a reverse name asks about: `4.3.2.1.in-addr.arpa` → 1.2.3.4, 32 nibbles `….ip6.arpa`
 * → the IPv6 address; undefined for any other name (including partial reverse zones).
 */
export function parseReverseName(qname: string): ParsedIp | undefined {
  const name = qname.toLowerCase().replace(/\.+$/, '');
  if (name.endsWith('.in-addr.arpa')) {
    const labels = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length !== 4 || !labels.every((l) => /^(0|[1-9][0-9]{0,2})$/.test(l) && Number(l) <= 255)) return undefined;
    return parseIp(labels.reverse().join('.'));
  }
  if (name.endsWith('.ip6.arpa')) {
    const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || !nibbles.every((n) => /^[0-9a-f]$/.test(n))) return undefined;
    return hexToIp(nibbles.reverse().join(''));
  }
  return undefined;
}

/** Whether `qname` lies in the reverse-mapping zones (`in-addr.arpa`, `ip6.arpa`). */
export function isReverseName(qname: string): boolean {
  return /(^|\.)(in-addr|ip6)\.arpa\.?$/i.test(qname);
}
