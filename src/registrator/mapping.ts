/**
 * Container → services, exactly as gliderlabs/registrator (master) maps them, with no I/O:
 * inspect JSON + flags + host facts in, registrations out. Then the Consul adapter's body
 * (`PUT /v1/agent/service/register`) for each service, check included.
 * Reference: compat-spec §5.2 (mapping) and §5.3 (Consul backend).
 */
import type { ContainerInspect, HostContext, MappingConfig, PortBinding, Service, ServiceOrigin } from './types.js';
import { hasHealthcheck, healthCheckDefinition, healthSpec } from './health.js';

export interface IgnoredPort {
  readonly port: string;
  readonly reason: 'not published on host' | 'ignored by SERVICE_IGNORE' | 'no SERVICE_NAME (-explicit)';
}

export interface MappingResult {
  readonly services: Service[];
  /** Ports that produced no service, and why (for logs). */
  readonly ignored: IgnoredPort[];
}

interface CandidatePort {
  key: string;
  hostPort: string;
  hostIp: string;
  exposedPort: string;
  exposedIp: string;
  portType: string;
}

/**
 * Splits on commas that are not escaped with a backslash, dropping empty items. A faithful port of
 * registrator master's recParseEscapedComma, including its quirk: pieces come back in reverse order
 * ("a,b" → ["b", "a"]).
 */
export function parseEscapedComma(input: string): string[] {
  let str = input;
  while (str.startsWith(',')) str = str.slice(1);
  if (str.length === 0) return [];
  let offset = 0;
  while (str.length > offset) {
    const index = str.slice(offset).indexOf(',');
    if (index === -1) break;
    const at = offset + index;
    if (str.slice(at - 1, at) !== '\\') return [...parseEscapedComma(str.slice(at + 1)), str.slice(0, at)];
    str = str.slice(0, at - 1) + str.slice(at);
    offset += index;
  }
  return [str];
}

export function combineTags(...parts: string[]): string[] {
  return parts.flatMap((p) => parseEscapedComma(p));
}

const isGoInt = (s: string): boolean => /^[+-]?[0-9]+$/.test(s);

/**
 * SERVICE_* metadata for one exposed port: env first, then labels (a label overrides the same key);
 * `SERVICE_<port>_<key>` applies to that port only and beats the global `SERVICE_<key>`.
 */
export function serviceMetadata(container: ContainerInspect, port: string): { metadata: Map<string, string>; fromPort: Set<string> } {
  const kvs: string[] = [...(container.Config.Env ?? [])];
  for (const [k, v] of Object.entries(container.Config.Labels ?? {})) kvs.push(`${k}=${v}`);
  const metadata = new Map<string, string>();
  const fromPort = new Set<string>();
  for (const kv of kvs) {
    const eq = kv.indexOf('=');
    if (eq < 0) continue;
    const name = kv.slice(0, eq);
    const value = kv.slice(eq + 1);
    if (!name.startsWith('SERVICE_')) continue;
    const key = name.slice('SERVICE_'.length).toLowerCase();
    if (fromPort.has(key)) continue;
    const us = key.indexOf('_');
    const head = us < 0 ? key : key.slice(0, us);
    if (us >= 0 && isGoInt(head)) {
      if (head !== port) continue;
      const rest = key.slice(us + 1);
      metadata.set(rest, value);
      fromPort.add(rest);
    } else {
      metadata.set(key, value);
    }
  }
  return { metadata, fromPort };
}

function mapDefault(m: ReadonlyMap<string, string>, key: string, def: string): string {
  const v = m.get(key);
  return v === undefined || v === '' ? def : v;
}

function candidate(container: ContainerInspect, key: string, published: readonly PortBinding[] | null | undefined): CandidatePort {
  const first = published?.[0];
  const hostPort = first?.HostPort ?? '';
  let hostIp = first?.HostIp ?? '';
  if (hostIp === '') hostIp = '0.0.0.0';
  // A container on a user-defined (e.g. overlay) network: its IP on that network.
  const nm = container.HostConfig?.NetworkMode ?? '';
  if (nm !== 'bridge' && nm !== 'default' && nm !== 'host') {
    hostIp = container.NetworkSettings?.Networks?.[nm]?.IPAddress ?? '';
  }
  const slash = key.indexOf('/');
  const exposedPort = slash < 0 ? key : key.slice(0, slash);
  const portType = slash < 0 ? 'tcp' : key.slice(slash + 1);
  let exposedIp = container.NetworkSettings?.IPAddress ?? '';
  if (exposedIp === '') {
    // Go ranges over the map and keeps the last one; Docker lists networks by name.
    for (const n of Object.values(container.NetworkSettings?.Networks ?? {})) exposedIp = n.IPAddress ?? '';
  }
  return { key, hostPort, hostIp, exposedPort, exposedIp, portType };
}

/** Base name of the image without tag: "gliderlabs/foobar:1.2" → "foobar" (Go path.Base, then split on ":"). */
export function defaultServiceName(image: string): string {
  const trimmed = image.replace(/\/+$/, '');
  const base = trimmed === '' ? (image === '' ? '.' : '/') : trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return base.split(':')[0] ?? base;
}

function newService(container: ContainerInspect, port: CandidatePort, isGroup: boolean, cfg: MappingConfig, host: HostContext): Service | IgnoredPort['reason'] {
  const hostname = host.hostname === '' ? port.hostIp : host.hostname;
  let hostIp = port.hostIp;
  if (hostIp === '0.0.0.0' && host.hostnameIp) hostIp = host.hostnameIp;
  if (cfg.hostIp !== '') hostIp = cfg.hostIp;

  const { metadata, fromPort } = serviceMetadata(container, port.exposedPort);
  if (mapDefault(metadata, 'ignore', '') !== '') return 'ignored by SERVICE_IGNORE';
  let name = mapDefault(metadata, 'name', '');
  if (name === '') {
    if (cfg.explicit) return 'no SERVICE_NAME (-explicit)';
    name = defaultServiceName(container.Config.Image);
  }
  const containerName = container.Name.startsWith('/') ? container.Name.slice(1) : container.Name;
  let id = `${hostname}:${containerName}:${port.exposedPort}`;
  if (isGroup && !fromPort.has('name')) name += `-${port.exposedPort}`;

  let ip: string;
  let p: number;
  if (cfg.internal) {
    ip = port.exposedIp;
    p = goAtoi(port.exposedPort);
  } else {
    ip = hostIp;
    p = goAtoi(port.hostPort);
  }
  if (cfg.useIpFromLabel !== '') {
    const fromLabel = container.Config.Labels?.[cfg.useIpFromLabel] ?? '';
    if (fromLabel !== '') {
      const slash = fromLabel.lastIndexOf('/');
      ip = slash > -1 ? fromLabel.slice(0, slash) : fromLabel;
    }
  }
  const nm = container.HostConfig?.NetworkMode ?? '';
  if (nm.startsWith('container:') && host.networkContainer) ip = host.networkContainer.NetworkSettings?.IPAddress ?? '';

  const forceTags = cfg.forceTags(container);
  let tags: string[];
  if (port.portType === 'udp') {
    tags = combineTags(mapDefault(metadata, 'tags', ''), forceTags, 'udp');
    id += ':udp';
  } else {
    tags = combineTags(mapDefault(metadata, 'tags', ''), forceTags);
  }
  const customId = mapDefault(metadata, 'id', '');
  if (customId !== '') id = customId;

  metadata.delete('id');
  metadata.delete('tags');
  metadata.delete('name');
  const attrs: Record<string, string> = {};
  for (const k of [...metadata.keys()].sort()) attrs[k] = metadata.get(k) as string;
  const origin: ServiceOrigin = {
    containerId: container.Id, containerName, exposedPort: port.exposedPort, portType: port.portType,
    hostPort: port.hostPort, hostIp, exposedIp: port.exposedIp,
  };
  const health = cfg.healthcheck === true && hasHealthcheck(container) ? { health: healthSpec(id, container) } : {};
  return { id, name, port: p, ip, tags, attrs, origin, ...health };
}

/** strconv.Atoi with the error ignored, as registrator does: anything unparsable is 0. */
function goAtoi(s: string): number {
  if (!isGoInt(s)) return 0;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : 0;
}

/** Numeric order of exposed port, then protocol: Go iterates a map (random order); a stable order is friendlier. */
function portOrder(a: CandidatePort, b: CandidatePort): number {
  return Number(a.exposedPort) - Number(b.exposedPort) || a.portType.localeCompare(b.portType);
}

/** The services registrator registers for one (running) container. */
export function mapContainer(container: ContainerInspect, cfg: MappingConfig, host: HostContext): MappingResult {
  const ports = new Map<string, CandidatePort>();
  // Exposed ports count as published on 0.0.0.0 with host port = container port: that is what makes --net=host work.
  for (const key of Object.keys(container.Config.ExposedPorts ?? {})) {
    const slash = key.indexOf('/');
    ports.set(key, candidate(container, key, [{ HostIp: '0.0.0.0', HostPort: slash < 0 ? key : key.slice(0, slash) }]));
  }
  // Real bindings (--net=bridge) override; an exposed-but-unpublished port has no host port.
  for (const [key, published] of Object.entries(container.NetworkSettings?.Ports ?? {})) {
    ports.set(key, candidate(container, key, published));
  }
  const ignored: IgnoredPort[] = [];
  const servicePorts: CandidatePort[] = [];
  for (const port of [...ports.values()].sort(portOrder)) {
    if (!cfg.internal && port.hostPort === '') {
      ignored.push({ port: port.key, reason: 'not published on host' });
      continue;
    }
    servicePorts.push(port);
  }
  const isGroup = servicePorts.length > 1;
  const services: Service[] = [];
  for (const port of servicePorts) {
    const s = newService(container, port, isGroup, cfg, host);
    if (typeof s === 'string') ignored.push({ port: port.key, reason: s });
    else services.push(s);
  }
  return { services, ignored };
}

const DEFAULT_INTERVAL = '10s';

/** The Consul check registrator's Consul adapter builds from a service's attrs (first match wins), or undefined. */
export function buildCheck(s: Service): Record<string, unknown> | undefined {
  const a = (k: string): string => s.attrs[k] ?? '';
  const check: Record<string, unknown> = {};
  if (a('check_initial_status') !== '') check.Status = a('check_initial_status');
  let needsInterval = false;
  if (a('check_http') !== '' || a('check_https') !== '') {
    const https = a('check_http') === '';
    check.HTTP = `${https ? 'https' : 'http'}://${s.ip}:${s.port}${a(https ? 'check_https' : 'check_http')}`;
    if (a('check_timeout') !== '') check.Timeout = a('check_timeout');
    const method = a(https ? 'check_https_method' : 'check_http_method');
    if (method !== '') check.Method = method;
    needsInterval = true;
  } else if (a('check_cmd') !== '') {
    check.ScriptArgs = ['check-cmd', s.origin.containerId.slice(0, 12), s.origin.exposedPort, a('check_cmd')];
    needsInterval = true;
  } else if (a('check_script') !== '') {
    check.ScriptArgs = [a('check_script').replaceAll('$SERVICE_IP', s.ip).replaceAll('$SERVICE_PORT', String(s.port))];
    needsInterval = true;
  } else if (a('check_ttl') !== '') {
    check.TTL = a('check_ttl');
  } else if (a('check_tcp') !== '') {
    check.TCP = `${s.ip}:${s.port}`;
    if (a('check_timeout') !== '') check.Timeout = a('check_timeout');
    needsInterval = true;
  } else if (a('check_grpc') !== '') {
    check.GRPC = `${s.ip}:${s.port}`;
    if (a('check_timeout') !== '') check.Timeout = a('check_timeout');
    if (a('check_grpc_use_tls') !== '') {
      check.GRPCUseTLS = true;
      if (a('check_tls_skip_verify') !== '') check.TLSSkipVerify = true;
    }
    needsInterval = true;
  } else {
    return undefined;
  }
  if (needsInterval) check.Interval = a('check_interval') !== '' ? a('check_interval') : DEFAULT_INTERVAL;
  if (a('check_deregister_after') !== '') check.DeregisterCriticalServiceAfter = a('check_deregister_after');
  return check;
}

/**
 * The body of `PUT /v1/agent/service/register`, as Go's api.AgentServiceRegistration marshals it
 * (every field omitempty: no empty Tags, no empty Meta, no zero Port, no empty Address).
 */
export function registrationBody(s: Service): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (s.id !== '') body.ID = s.id;
  if (s.name !== '') body.Name = s.name;
  if (s.tags.length > 0) body.Tags = [...s.tags];
  if (s.port !== 0) body.Port = s.port;
  if (s.ip !== '') body.Address = s.ip;
  if (Object.keys(s.attrs).length > 0) body.Meta = { ...s.attrs };
  const check = buildCheck(s);
  if (check) body.Check = check;
  if (s.health) {
    // With a second check, Consul numbers unnamed ones (service:<id>:1): keep the SERVICE_CHECK_* one's ID.
    if (check) check.CheckID = `service:${s.id}`;
    body.Checks = [healthCheckDefinition(s.health, s.origin.containerName)];
  }
  return body;
}

/**
 * Service IDs that look registrator-made: hostname part (shortest possible), container name,
 * exposed port, optional ":udp". Used by -cleanup.
 */
export const SERVICE_ID_PATTERN = /^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$/;

export function parseServiceId(id: string): { hostname: string; containerName: string } | undefined {
  const m = SERVICE_ID_PATTERN.exec(id);
  if (!m) return undefined;
  return { hostname: m[1] as string, containerName: m[2] as string };
}
