/** Reverse DNS (PTR) for the catalog's addresses: a node's address names the node, else a service address names the service, as Consul. */
import type { Answer, Question } from 'dns-packet';
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { isEncodableName, parseIp } from './names.js';
import type { ParsedIp } from './names.js';

/**
 * PTR records for `ip`: `<node>.node.<dc>.<domain>.` for the first node (by name) with that
 * address; failing that, `<service>.service.<domain>.` for the first service instance whose own
 * address it is. Empty when the catalog does not know the address. TTL 0, as Consul.
 */
export function reverseRecords(q: Question, ip: ParsedIp, view: CatalogReader, opts: { datacenter: string; domain: string }): Answer[] {
  const target = ptrTarget(ip, view, opts);
  return target !== undefined && isEncodableName(target) ? [{ name: q.name, type: 'PTR', class: 'IN', ttl: 0, data: target }] : [];
}

function ptrTarget(ip: ParsedIp, view: CatalogReader, opts: { datacenter: string; domain: string }): string | undefined {
  const same = (addr: string): boolean => parseIp(addr)?.text === ip.text;
  const nodes = [...view.nodes()].filter((n) => same(n.rec.Address)).map((n) => n.rec.Node).sort();
  if (nodes[0] !== undefined) return `${nodes[0]}.node.${opts.datacenter}.${opts.domain}`;
  const services = new Set<string>();
  for (const name of view.serviceNames()) {
    for (const s of view.instances(name)) {
      if (s.rec.Address !== '' && same(s.rec.Address)) services.add(name);
    }
  }
  const service = [...services].sort()[0];
  return service === undefined ? undefined : `${service}.service.${opts.domain}`;
}
