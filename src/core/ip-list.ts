/** Lists of client addresses in config: IPs and CIDR blocks (`127.0.0.1`, `10.0.0.0/8`, `::1`). */
import { BlockList, isIP } from 'node:net';

/** An IP address or a CIDR block, as the lists below take them. */
export function isIpOrCidr(s: string): boolean {
  const [addr = '', bits, extra] = s.split('/');
  const family = isIP(addr);
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

/** The host itself. */
export const LOOPBACK: readonly string[] = ['127.0.0.0/8', '::1'];

export const IP_OR_CIDR_MESSAGE = 'must be an IP address or a CIDR block, e.g. 127.0.0.1 or 10.0.0.0/8';

/** An IPv4 client reached over IPv6 (`::ffff:10.0.0.1`, as a dual-stack listener sees it) as its IPv4 address. */
export function unmappedIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/**
 * Whether an address is in the list; an IPv4 client reached over IPv6 is matched as IPv4
 * (unmappedIp). Entries must have passed isIpOrCidr.
 */
export function ipMatcher(entries: readonly string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const [addr = '', bits] = entry.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return (ip) => {
    const v4 = unmappedIp(ip);
    const family = isIP(v4) === 6 ? 'ipv6' : 'ipv4';
    return isIP(v4) !== 0 && list.check(v4, family);
  };
}
