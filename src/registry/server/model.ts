/** The registry's stored record types (PascalCase, close to Consul's wire shapes) and the store key layout. */

export type HealthStatus = 'passing' | 'warning' | 'critical';

export interface Weights {
  Passing: number;
  Warning: number;
}

export interface NodeRecord {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
}

export interface ServiceRecord {
  Node: string;
  ID: string;
  Service: string;
  Tags: string[];
  Address: string;
  TaggedAddresses: Record<string, { Address: string; Port: number }>;
  Meta: Record<string, string>;
  Port: number;
  Weights: Weights;
  EnableTagOverride: boolean;
  Kind: string;
  /** Registered through this node's agent API (its checks run here), as opposed to catalog/register. */
  Local: boolean;
}

/** What a check runner needs; persisted so a restarted agent resumes its checks. */
export interface CheckDefinition {
  HTTP?: string;
  Header?: Record<string, string[]>;
  Method?: string;
  Body?: string;
  TLSSkipVerify?: boolean;
  TLSServerName?: string;
  DisableRedirects?: boolean;
  TCP?: string;
  TCPUseTLS?: boolean;
  UDP?: string;
  H2PING?: string;
  /** Stored as given or defaulted (true, as in Consul), so the rendered definition says what runs. */
  H2PingUseTLS?: boolean;
  TTL?: string;
  Interval?: string;
  Timeout?: string;
  DeregisterCriticalServiceAfter?: string;
  SuccessBeforePassing?: number;
  FailuresBeforeWarning?: number;
  FailuresBeforeCritical?: number;
  OutputMaxSize?: number;
  /** Script and Docker checks: the command, run without a shell. */
  ScriptArgs?: string[];
  /** Script and Docker checks: the older string form, run with `sh -c` (Docker: `Shell -c`). */
  Script?: string;
  DockerContainerID?: string;
  /** Docker checks with `Script`: the shell in the container (default /bin/sh). */
  Shell?: string;
  GRPC?: string;
  GRPCUseTLS?: boolean;
  AliasNode?: string;
  AliasService?: string;
}

export type CheckType = 'http' | 'tcp' | 'udp' | 'h2ping' | 'ttl' | 'script' | 'docker' | 'grpc' | 'alias' | 'maintenance' | 'serf' | '';

/** The checks an agent defines itself and lists under /v1/agent/checks: every type but serf's node check and untyped catalog checks. */
export const AGENT_CHECK_TYPES: ReadonlySet<string> = new Set<CheckType>(['http', 'tcp', 'udp', 'h2ping', 'ttl', 'script', 'docker', 'grpc', 'alias', 'maintenance']);

export interface CheckRecord {
  Node: string;
  CheckID: string;
  Name: string;
  Status: HealthStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: CheckType;
  Definition: CheckDefinition;
}

export interface KvRecord {
  /** Decimal string: Consul flags are uint64, beyond JavaScript's safe integers. */
  Flags: string;
  /** base64 of the raw bytes, or null for a key stored with an empty body. */
  Value: string | null;
  LockIndex: number;
  Session?: string;
}

export const NODE_CHECK_SERF = 'serfHealth';
export const NODE_MAINT_CHECK = '_node_maintenance';
export const SERVICE_MAINT_PREFIX = '_service_maintenance:';

/** Store keys. Node names never contain '/', so the first '/' after the prefix ends the node part. */
export const keys = {
  node: (node: string) => `n/${node}`,
  service: (node: string, id: string) => `s/${node}/${id}`,
  servicePrefix: (node: string) => `s/${node}/`,
  check: (node: string, id: string) => `c/${node}/${id}`,
  checkPrefix: (node: string) => `c/${node}/`,
  kv: (key: string) => `k/${key}`,
  KV_PREFIX: 'k/',
  /** Cluster membership (etcd mode, registry/cluster/membership.ts): `a/<node>` under the agent's lease, `m/<node>` without. */
  ALIVE_PREFIX: 'a/',
  MEMBER_PREFIX: 'm/',
} as const;

export function splitNodeKey(rest: string): [node: string, id: string] {
  const i = rest.indexOf('/');
  return [rest.slice(0, i), rest.slice(i + 1)];
}

/** Consul's aggregation: maintenance > critical > warning > passing (also for an empty list). */
export function aggregateStatus(checks: Iterable<{ CheckID: string; Status: string }>): HealthStatus | 'maintenance' {
  let worst: HealthStatus = 'passing';
  for (const c of checks) {
    if (c.CheckID === NODE_MAINT_CHECK || c.CheckID.startsWith(SERVICE_MAINT_PREFIX)) return 'maintenance';
    if (c.Status === 'critical') worst = 'critical';
    else if (c.Status === 'warning' && worst === 'passing') worst = 'warning';
  }
  return worst;
}
