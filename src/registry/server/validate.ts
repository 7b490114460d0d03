/** Semantic validation of decoded registrations, with Consul's messages where Consul has one. */
import { parseGoDuration } from '../../core/duration.js';
import { badRequest } from '../../core/errors.js';
import type { CheckInput, ServiceInput } from './decode.js';
import { normalizeDuration } from './decode.js';
import type { CheckDefinition, CheckType, HealthStatus, Weights } from './model.js';

/** Consul's answer to a script or Docker check on an agent that does not run them. */
export const SCRIPTS_DISABLED = "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true";

const STATUSES: ReadonlySet<string> = new Set(['passing', 'warning', 'critical']);
export const isStatus = (s: string): s is HealthStatus => STATUSES.has(s);

const META_KEY = /^[A-Za-z0-9_-]+$/;

export function validateMeta(meta: Record<string, string> | null | undefined, what = 'Service'): Record<string, string> {
  const m = meta ?? {};
  const entries = Object.entries(m);
  if (entries.length > 64) throw badRequest(`Invalid ${what} Meta: Node metadata cannot contain more than 64 key/value pairs`);
  for (const [k, v] of entries) {
    if (k === '') throw badRequest(`Invalid ${what} Meta: Key cannot be blank`);
    if (!META_KEY.test(k)) throw badRequest(`Invalid ${what} Meta: Key contains invalid characters: ${JSON.stringify(k)}`);
    if (k.length > 128) throw badRequest(`Invalid ${what} Meta: Key is too long (limit: 128 characters): ${JSON.stringify(k)}`);
    if (k.startsWith('consul-') && k !== 'consul-network-segment') throw badRequest(`Invalid ${what} Meta: Key prefix 'consul-' is reserved for internal use`);
    if (v.length > 512) throw badRequest(`Invalid ${what} Meta: Value is too long (limit: 512 characters): key ${JSON.stringify(k)}`);
  }
  return { ...m };
}

export function validateWeights(w: ServiceInput['Weights']): Weights {
  if (w === undefined || w === null) return { Passing: 1, Warning: 1 };
  const passing = w.Passing ?? 1;
  const warning = w.Warning ?? 1;
  if (passing < 1) throw badRequest('Invalid Weights: Passing must be greater than 0');
  if (warning < 0) throw badRequest('Invalid Weights: Warning must be greater or equal than 0');
  if (passing > 65535 || warning > 65535) throw badRequest('Invalid Weights: Passing and Warning must be at most 65535');
  return { Passing: passing, Warning: warning };
}

const UNSPECIFIED = new Set(['0.0.0.0', '::', '[::]', '0:0:0:0:0:0:0:0']);
export function validateServiceAddress(addr: string | undefined): string {
  const a = addr ?? '';
  if (UNSPECIFIED.has(a)) throw badRequest('Invalid service address');
  return a;
}

/** Characters a command line cannot carry: the kernel ends an argument at NUL. */
function commandText(value: string, where: string): string {
  if (value.includes('\0')) throw badRequest(`Invalid check: ${where} contains a NUL character`);
  return value;
}

/**
 * Builds the stored definition and type of a check; rejects checks the agent cannot run. Script and
 * Docker checks run commands on this host or in its containers: only with `scripts` (the agent's
 * --enable-script-checks), as Consul's enable_script_checks.
 */
export function checkDefinition(c: CheckInput, field: string, scripts = false): { type: CheckType; def: CheckDefinition } {
  const def: CheckDefinition = {};
  const interval = normalizeDuration(`${field}.Interval`, c.Interval);
  const timeout = normalizeDuration(`${field}.Timeout`, c.Timeout);
  const ttl = normalizeDuration(`${field}.TTL`, c.TTL);
  const dereg = normalizeDuration(`${field}.DeregisterCriticalServiceAfter`, c.DeregisterCriticalServiceAfter);
  if (dereg) def.DeregisterCriticalServiceAfter = dereg;
  if (c.SuccessBeforePassing) def.SuccessBeforePassing = c.SuccessBeforePassing;
  if (c.FailuresBeforeCritical) def.FailuresBeforeCritical = c.FailuresBeforeCritical;
  if (c.FailuresBeforeWarning) def.FailuresBeforeWarning = c.FailuresBeforeWarning;
  if (c.OutputMaxSize) def.OutputMaxSize = c.OutputMaxSize;

  // A zero TTL or interval would expire or run at once; Consul refuses both ("must be > 0").
  const zero = (d: string | undefined): boolean => d !== undefined && parseGoDuration(d) === 0;
  const command = Boolean(c.ScriptArgs?.length || c.Script);
  // A Docker check is DockerContainerID plus the command to run in it: one kind, not two.
  const kinds = [c.HTTP && 'HTTP', c.TCP && 'TCP', ttl && !zero(ttl) && 'TTL', c.GRPC && 'GRPC', !c.DockerContainerID && command && 'ScriptArgs',
    c.DockerContainerID && 'DockerContainerID', c.H2PING && 'H2PING', c.UDP && 'UDP', c.OSService && 'OSService',
    (c.AliasService || c.AliasNode) && 'Alias'].filter(Boolean) as string[];
  if (kinds.length === 0) {
    if (zero(ttl)) throw badRequest(`Invalid check: ${field}: TTL must be greater than 0 for TTL checks`);
    throw badRequest(`Invalid check: ${field}: Must provide TTL or HTTP/TCP and Interval`);
  }
  if (kinds.length > 1) throw badRequest(`Invalid check: ${field}: only one check type may be set, got ${kinds.join(' and ')}`);
  const kind = kinds[0] as string;
  if (kind === 'TTL') {
    def.TTL = ttl as string;
    return { type: 'ttl', def };
  }
  if ((kind === 'ScriptArgs' || kind === 'DockerContainerID') && !scripts) throw badRequest(SCRIPTS_DISABLED);
  if (kind === 'Alias') {
    // No interval: an alias follows the aliased checks as they change (Consul: local state, or a
    // blocking query for another node).
    if (c.AliasNode) def.AliasNode = c.AliasNode;
    if (c.AliasService) def.AliasService = c.AliasService;
    return { type: 'alias', def };
  }
  if (kind === 'OSService') {
    throw badRequest(`Invalid check: ${field}: OSService checks are not supported by this agent (supported: HTTP, TCP, UDP, GRPC, H2PING, TTL, alias)`);
  }
  if (!interval) throw badRequest(`Invalid check: ${field}: Interval is required for ${kind} checks`);
  if (zero(interval)) throw badRequest(`Invalid check: ${field}: Interval must be greater than 0 for ${kind} checks`);
  def.Interval = interval;
  if (timeout) def.Timeout = timeout;
  if (kind === 'ScriptArgs' || kind === 'DockerContainerID') {
    if (!command) throw badRequest(`Invalid check: ${field}: DockerContainerID needs Args (or Script) to run in the container`);
    // Args win over Script when both are given, as in Consul; only what runs is kept.
    if (c.ScriptArgs?.length) {
      if (c.ScriptArgs[0] === '') throw badRequest(`Invalid check: ${field}.Args: the first element (the command) is empty`);
      def.ScriptArgs = c.ScriptArgs.map((a, i) => commandText(a, `${field}.Args[${i}]`));
    } else def.Script = commandText(c.Script as string, `${field}.Script`);
    if (kind === 'ScriptArgs') return { type: 'script', def };
    def.DockerContainerID = commandText(c.DockerContainerID as string, `${field}.DockerContainerID`);
    if (c.Shell) def.Shell = commandText(c.Shell, `${field}.Shell`);
    return { type: 'docker', def };
  }
  const tlsOptions = (): void => {
    if (c.TLSSkipVerify) def.TLSSkipVerify = true;
    if (c.TLSServerName) def.TLSServerName = c.TLSServerName;
  };
  if (kind === 'HTTP') {
    const url = c.HTTP as string;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badRequest(`Invalid check: ${field}.HTTP: ${JSON.stringify(url)} is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw badRequest(`Invalid check: ${field}.HTTP: unsupported protocol scheme ${JSON.stringify(parsed.protocol.replace(':', ''))}`);
    }
    def.HTTP = url;
    if (c.Method) def.Method = c.Method.toUpperCase();
    if (c.Header && Object.keys(c.Header).length > 0) def.Header = c.Header;
    if (c.Body) def.Body = c.Body;
    tlsOptions();
    if (c.DisableRedirects) def.DisableRedirects = true;
    return { type: 'http', def };
  }
  if (kind === 'GRPC') {
    // host:port, optionally /service (the name sent in HealthCheckRequest).
    const grpc = c.GRPC as string;
    hostPort(grpc.split('/', 1)[0] as string, `${field}.GRPC`, grpc, 'a host:port[/service] address');
    def.GRPC = grpc;
    if (c.GRPCUseTLS) def.GRPCUseTLS = true;
    tlsOptions();
    return { type: 'grpc', def };
  }
  if (kind === 'H2PING') {
    def.H2PING = hostPort(c.H2PING as string, `${field}.H2PING`);
    // Consul's default is TLS; h2c only when asked for.
    def.H2PingUseTLS = c.H2PingUseTLS ?? true;
    if (def.H2PingUseTLS) tlsOptions();
    return { type: 'h2ping', def };
  }
  if (kind === 'UDP') {
    def.UDP = hostPort(c.UDP as string, `${field}.UDP`);
    return { type: 'udp', def };
  }
  def.TCP = hostPort(c.TCP as string, `${field}.TCP`);
  if (c.TCPUseTLS) {
    def.TCPUseTLS = true;
    tlsOptions();
  }
  return { type: 'tcp', def };
}

/** `host:port` or `[v6]:port` with a port up to 65535, else a 400 naming the field. */
function hostPort(address: string, field: string, shown = address, what = 'a host:port address'): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/.test(address) || Number(address.slice(address.lastIndexOf(':') + 1)) > 65535) {
    throw badRequest(`Invalid check: ${field}: ${JSON.stringify(shown)} is not ${what}`);
  }
  return address;
}

export function initialStatus(status: string | undefined, message: string): HealthStatus {
  if (status === undefined || status === '') return 'critical';
  if (!isStatus(status)) throw badRequest(message);
  return status;
}
