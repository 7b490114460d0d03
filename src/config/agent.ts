/** The agent's static configuration: flags and the same keys in a YAML/JSON file, validated and frozen. */
import { deepFreeze } from '../core/freeze.js';
import { hostname } from 'node:os';
import { IP_OR_CIDR_MESSAGE, LOOPBACK, isIpOrCidr } from '../core/ip-list.js';
import { z } from 'zod';
import { allowedHostList, goDuration, goDurationBetween, hostPort as hostPort_, msFrom } from './fields.js';
import { agentDns, agentDnsKeys } from './dns.js';
import type { DnsConfigInput } from './dns.js';

const duration = goDuration;
const hostPort = hostPort_('127.0.0.1:8500');

export const agentConfigSchema = z.strictObject({
  'http-addr': hostPort.optional(),
  'data-dir': z.string().min(1).optional(),
  node: z.string().regex(/^[^/\s]+$/, { message: 'must be a non-empty name without "/" or spaces' }).optional(),
  datacenter: z.string().regex(/^[A-Za-z0-9_.-]+$/, { message: 'must contain only letters, digits, "_", "." or "-"' }).optional(),
  'acl-token': z.string().min(1).optional(),
  'advertise-addr': z.string().min(1).optional(),
  'log-level': z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).optional(),
  /** fsync every commit batch ("always") or only write() it ("none": survives kill -9, not power loss). */
  sync: z.enum(['always', 'none']).optional(),
  'check-min-interval': duration.optional(),
  'check-reap-interval': duration.optional(),
  'check-deregister-min': duration.optional(),
  'max-body-bytes': z.number().int().positive().optional(),
  /** Consul's limits.http_max_conns_per_client: connections one client address may hold (0: no limit). */
  'http-max-conns-per-client': z.number().int().min(0).optional(),
  /** Addresses and CIDR blocks that limit does not apply to (default: loopback, the agent's own host). */
  'http-max-conns-exempt': z.array(z.string().refine(isIpOrCidr, { message: IP_OR_CIDR_MESSAGE })).optional(),
  /**
   * Host names the API answers under when it listens on loopback only (besides localhost, IP
   * addresses and single-label names): a DNS-rebinding defence (core/host-guard.ts). `*.example.com`
   * matches by suffix; `*` turns the check off.
   */
  'allowed-hosts': allowedHostList.optional(),
  /** "embedded" (default) or etcd://host:port[,host:port...][/prefix] for cluster mode. */
  store: z.string().refine((s) => s === 'embedded' || /^etcd:\/\/[^/\s]+(\/\S*)?$/.test(s), { message: 'must be "embedded" or etcd://host:port[,host:port...][/prefix]' }).optional(),
  /** TLS to etcd (cluster mode): the CA that signed the members' certificates (PEM); with it, members are spoken to over TLS. */
  'etcd-cacert': z.string().min(1).optional(),
  /** This agent's client certificate and key for etcd (PEM; members started with --client-cert-auth ask for one). */
  'etcd-cert': z.string().min(1).optional(),
  'etcd-key': z.string().min(1).optional(),
  /** etcd lease TTL: how soon a dead agent's node goes critical (cluster mode). */
  'lease-ttl': goDurationBetween(2e9, 3600e9, 'must be between 2s and 1h').optional(),
  /** How long a write waits for etcd before failing with 503 (cluster mode). */
  'store-timeout': goDurationBetween(100e6, 3600e9, 'must be between 100ms and 1h').optional(),
  /** Shortest session TTL accepted (Consul's session_ttl_min). */
  'session-ttl-min': goDurationBetween(1e6, 24 * 3600e9, 'must be between 1ms and 24h').optional(),
  ...agentDnsKeys,
  /** Percent the JS heap may grow past what the last full collection kept (0: V8's own choice; default 30). */
  'heap-growth': z.number().int().min(0).max(400).optional(),
  /** Run script and Docker checks registered through the API (Consul's enable_script_checks; off by default). */
  'enable-script-checks': z.boolean().optional(),
});

export type AgentConfigInput = z.infer<typeof agentConfigSchema>;

export interface AgentConfig {
  readonly httpAddr: string;
  readonly dataDir: string;
  readonly node: string;
  readonly datacenter: string;
  readonly aclToken: string | undefined;
  readonly advertiseAddr: string | undefined;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';
  readonly sync: 'always' | 'none';
  readonly checkMinIntervalMs: number;
  readonly checkReapIntervalMs: number;
  readonly checkDeregisterMinMs: number;
  readonly maxBodyBytes: number;
  readonly httpMaxConnsPerClient: number;
  readonly httpMaxConnsExempt: readonly string[];
  readonly allowedHosts: readonly string[];
  readonly store: string;
  readonly leaseTtlSeconds: number;
  readonly storeTimeoutMs: number;
  /** Files for TLS to etcd; undefined: plain HTTP/2. */
  readonly etcdTls: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string } | undefined;
  /** The DNS interface; undefined: none (no dns-addr). */
  readonly dns: DnsConfigInput | undefined;
  readonly sessionTtlMinMs: number;
  readonly heapGrowthPercent: number;
  readonly enableScriptChecks: boolean;
}

const ms = msFrom;

/** Flags win over the file; defaults are Consul's where Consul has one. */
export function resolveAgentConfig(file: AgentConfigInput, flags: AgentConfigInput): AgentConfig {
  const c = { ...file, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) } as AgentConfigInput;
  return deepFreeze({
    httpAddr: c['http-addr'] ?? '127.0.0.1:8500',
    dataDir: c['data-dir'] ?? './switchyard-data',
    node: c.node ?? hostname(),
    datacenter: c.datacenter ?? 'dc1',
    aclToken: c['acl-token'],
    advertiseAddr: c['advertise-addr'],
    logLevel: c['log-level'] ?? 'info',
    sync: c.sync ?? 'always',
    checkMinIntervalMs: ms(c['check-min-interval'], 1000),
    checkReapIntervalMs: ms(c['check-reap-interval'], 30_000),
    checkDeregisterMinMs: ms(c['check-deregister-min'], 60_000),
    maxBodyBytes: c['max-body-bytes'] ?? 1024 * 1024,
    httpMaxConnsPerClient: c['http-max-conns-per-client'] ?? 200,
    httpMaxConnsExempt: c['http-max-conns-exempt'] ?? LOOPBACK,
    allowedHosts: c['allowed-hosts'] ?? [],
    store: c.store ?? 'embedded',
    leaseTtlSeconds: Math.round(ms(c['lease-ttl'], 10_000) / 1000),
    storeTimeoutMs: ms(c['store-timeout'], 5000),
    etcdTls: c['etcd-cacert'] === undefined && c['etcd-cert'] === undefined && c['etcd-key'] === undefined ? undefined : {
      ...(c['etcd-cacert'] !== undefined ? { caFile: c['etcd-cacert'] } : {}),
      ...(c['etcd-cert'] !== undefined ? { certFile: c['etcd-cert'] } : {}),
      ...(c['etcd-key'] !== undefined ? { keyFile: c['etcd-key'] } : {}),
    },
    dns: agentDns(c),
    sessionTtlMinMs: ms(c['session-ttl-min'], 10_000),
    heapGrowthPercent: c['heap-growth'] ?? 30,
    enableScriptChecks: c['enable-script-checks'] ?? false,
  });
}

