/**
 * registrator's flags and registry URI, validated the way registrator validates them (Go flag
 * syntax for numbers, -deregister values, -ttl/-ttl-refresh pairing, -retry-interval > 0). Every
 * error names the flag; the CLI turns it into exit status 2.
 */
import { SwitchyardError } from '../core/errors.js';
import { compileTagsTemplate } from './tags-template.js';
import type { TagsTemplate } from './tags-template.js';
import type { DeregisterPolicy } from './sync.js';

export interface RegistratorFlags {
  ip?: string | undefined;
  internal?: boolean | undefined;
  explicit?: boolean | undefined;
  useIpFromLabel?: string | undefined;
  tags?: string | undefined;
  resync?: string | undefined;
  cleanup?: boolean | undefined;
  deregister?: string | undefined;
  retryAttempts?: string | undefined;
  retryInterval?: string | undefined;
  ttl?: string | undefined;
  ttlRefresh?: string | undefined;
  /** Switchyard's extension: mirror Docker HEALTHCHECK status into a TTL check. */
  healthcheck?: boolean | undefined;
  /** Switchyard's extension: seconds past its stop timeout a signalled container stays deregistered. */
  stopGrace?: string | undefined;
}

export interface RegistryTarget {
  /** Base URL for RegistryClient. */
  readonly address: string;
  readonly scheme: 'consul' | 'consul-tls' | 'consulkv';
  /** consulkv: the KV path the entries go under, without its slashes. */
  readonly kvPrefix?: string;
}

export interface RegistratorOptions {
  readonly hostIp: string;
  readonly internal: boolean;
  readonly explicit: boolean;
  readonly useIpFromLabel: string;
  readonly tags: string;
  readonly tagsTemplate: TagsTemplate;
  /** Seconds; 0 = off. */
  readonly resyncSec: number;
  readonly cleanup: boolean;
  readonly deregister: DeregisterPolicy;
  /** -1 = forever. */
  readonly retryAttempts: number;
  readonly retryIntervalMs: number;
  readonly ttl: number;
  readonly ttlRefresh: number;
  /** -healthcheck: each container's Docker HEALTHCHECK status becomes a TTL check of its services. */
  readonly healthcheck: boolean;
  /** -stop-grace: seconds past a signalled container's stop timeout before it counts as running again. */
  readonly stopGraceSec: number;
  readonly registry: RegistryTarget;
}

const bad = (msg: string): never => {
  throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', msg);
};

/** Go's flag.Int parsing (strconv.ParseInt base 0: decimal, 0x…, 0o…/0…, 0b…, optional sign, underscores). */
export function parseGoInt(flag: string, raw: string | undefined, def: number): number {
  if (raw === undefined) return def;
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]+|[1-9][0-9_]*|0)$/.exec(raw);
  const fail = (): never => bad(`invalid value ${JSON.stringify(raw)} for flag -${flag}: parse error`);
  if (!m) return fail();
  const sign = m[1] === '-' ? -1 : 1;
  let digits = (m[2] as string).replaceAll('_', '');
  let radix = 10;
  if (/^0[xX]/.test(digits)) [radix, digits] = [16, digits.slice(2)];
  else if (/^0[bB]/.test(digits)) [radix, digits] = [2, digits.slice(2)];
  else if (/^0[oO]/.test(digits)) [radix, digits] = [8, digits.slice(2)];
  else if (digits.length > 1 && digits.startsWith('0')) [radix, digits] = [8, digits.slice(1)];
  if (digits === '') return fail();
  const n = sign * parseInt(digits, radix);
  if (!Number.isSafeInteger(n)) bad(`invalid value ${JSON.stringify(raw)} for flag -${flag}: value out of range`);
  return n;
}

/** consul://host:port (default 127.0.0.1:8500), consul-tls://host:port, or consulkv://host:port/path. */
export function parseRegistryUri(uri: string): RegistryTarget {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return bad(`bad registry URI ${JSON.stringify(uri)}: expected consul://host:port`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (scheme !== 'consul' && scheme !== 'consul-tls' && scheme !== 'consulkv') {
    const known = ['consul-unix', 'consulkv-unix', 'etcd', 'skydns2', 'zookeeper'].includes(scheme);
    return bad(`${known ? 'unsupported' : 'unrecognized'} registry adapter ${JSON.stringify(`${scheme}://`)} in ${JSON.stringify(uri)}: switchyard registrator supports consul://, consul-tls:// and consulkv://`);
  }
  const host = u.host === '' ? '127.0.0.1:8500' : u.port === '' ? `${u.host}:8500` : u.host;
  if (scheme === 'consulkv') {
    const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
    // registrator's adapter indexes the path and crashes without one.
    if (prefix === '') bad(`bad registry URI ${JSON.stringify(uri)}: consulkv:// needs the KV path its entries go under, e.g. consulkv://127.0.0.1:8500/services`);
    return { scheme, address: `http://${host}`, kvPrefix: prefix };
  }
  if (u.pathname !== '' && u.pathname !== '/') bad(`bad registry URI ${JSON.stringify(uri)}: the consul backend takes no path`);
  return { scheme, address: `${scheme === 'consul-tls' ? 'https' : 'http'}://${host}` };
}

export function parseOptions(flags: RegistratorFlags, args: readonly string[]): RegistratorOptions {
  if (args.length === 0) bad('missing required argument for registry URI');
  if (args.length > 1) bad(`extra unparsed arguments: ${args.slice(1).join(' ')} (options should come before the registry URI argument)`);
  const deregister = (flags.deregister ?? 'always') as DeregisterPolicy;
  if (deregister !== 'always' && deregister !== 'on-success') bad(`-deregister must be "always" or "on-success", got ${JSON.stringify(deregister)}`);
  const resyncSec = parseGoInt('resync', flags.resync, 0);
  const retryAttempts = parseGoInt('retry-attempts', flags.retryAttempts, 0);
  if (retryAttempts < -1) bad(`-retry-attempts must be -1 (forever) or at least 0, got ${retryAttempts}`);
  const retryIntervalMs = parseGoInt('retry-interval', flags.retryInterval, 2000);
  if (retryIntervalMs <= 0) bad('-retry-interval must be greater than 0');
  const ttl = parseGoInt('ttl', flags.ttl, 0);
  const ttlRefresh = parseGoInt('ttl-refresh', flags.ttlRefresh, 0);
  if ((ttl === 0 && ttlRefresh > 0) || (ttl > 0 && ttlRefresh === 0)) bad('-ttl and -ttl-refresh must be specified together or not at all');
  if (ttl > 0 && ttl <= ttlRefresh) bad('-ttl must be greater than -ttl-refresh');
  const stopGraceSec = parseGoInt('stop-grace', flags.stopGrace, 30);
  if (stopGraceSec < 0 || stopGraceSec > 86_400) bad(`-stop-grace must be 0 … 86400 seconds, got ${stopGraceSec}`);
  const tags = flags.tags ?? '';
  const tagsTemplate = compileTagsTemplate(tags);
  return {
    hostIp: flags.ip ?? '', internal: Boolean(flags.internal), explicit: Boolean(flags.explicit), useIpFromLabel: flags.useIpFromLabel ?? '',
    tags, tagsTemplate, resyncSec, cleanup: Boolean(flags.cleanup), deregister, retryAttempts, retryIntervalMs, ttl, ttlRefresh,
    healthcheck: Boolean(flags.healthcheck), stopGraceSec,
    registry: parseRegistryUri(args[0] as string),
  };
}
