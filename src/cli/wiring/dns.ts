/** Starts the DNS interface over a catalog view, with its Prometheus counters. */
import type { Logger } from 'pino';
import { Counter, Registry as PromRegistry } from 'prom-client';
import { msFrom, splitHostPort } from '../../config/fields.js';
import { Recursors, parseRecursor } from '../../dns/recursor.js';
import type { Recursor } from '../../dns/recursor.js';
import type { DnsConfigInput } from '../../config/dns.js';
import { DnsServer } from '../../dns/server.js';
import type { CatalogReader } from '../../registry/server/catalog-reader.js';
import type { PreparedLookup } from '../../registry/server/prepared/execute.js';
import { SwitchyardError } from '../../core/errors.js';
import { whoListens } from './listen.js';

export interface RunningDns {
  readonly udp: { host: string; port: number };
  readonly tcp: { host: string; port: number };
  readonly metrics: PromRegistry;
  close(): Promise<void>;
}

export async function startDns(cfg: DnsConfigInput, view: CatalogReader, node: { name: string; datacenter: string }, logger: Logger, preparedQuery?: PreparedLookup): Promise<RunningDns> {
  const metrics = new PromRegistry();
  const queries = new Counter({ name: 'switchyard_dns_queries_total', help: 'DNS queries by transport, type and response code', labelNames: ['transport', 'qtype', 'rcode'], registers: [metrics] });
  const server = new DnsServer({
    view, preparedQuery, logger, datacenter: node.datacenter, nodeName: node.name,
    domain: cfg.domain, onlyPassing: cfg['only-passing'], udpAnswerLimit: cfg['udp-answer-limit'], maxUdpSize: cfg['udp-max-size'],
    ttl: { node: cfg['node-ttl'], service: cfg['service-ttl'] },
    onQuery: (e) => queries.inc({ transport: e.transport, qtype: e.qtype ?? 'none', rcode: e.rcode }),
    recursors: new Recursors((cfg.recursors ?? []).map((r) => parseRecursor(r) as Recursor), msFrom(cfg['recursor-timeout'], 2000)),
  });
  const at = splitHostPort(cfg.addr ?? '127.0.0.1:8600');
  let addrs;
  try {
    addrs = await server.start(at.host, at.port);
  } catch (err) {
    // Same clear message as the HTTP listeners: which address, who holds it, which flag changes it.
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const who = whoListens(at.port);
      throw new SwitchyardError('SY_ERR_ADDR_IN_USE',
        `cannot listen on ${at.host}:${at.port} (DNS, UDP and TCP): address already in use${who ? ` by ${who}` : ''}; stop that process or choose another address with --dns-addr`);
    }
    throw err;
  }
  logger.info({ udp: `${addrs.udp.host}:${addrs.udp.port}`, tcp: `${addrs.tcp.host}:${addrs.tcp.port}`, recursors: cfg.recursors ?? [] }, 'DNS interface listening');
  return { ...addrs, metrics, close: () => server.close() };
}
