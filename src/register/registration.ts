/** The registration `switchyard register` sends: built from its flags, validated before anything is sent. */
import { SwitchyardError } from '../core/errors.js';
import { parseGoDuration } from '../core/duration.js';

export interface RegisterFlags {
  name: string;
  /** As typed on the command line; validated here so the message can echo it. */
  port: string;
  id?: string | undefined;
  address?: string | undefined;
  tags: string[];
  meta: string[];
  checkHttp?: string | undefined;
  checkTcp?: string | undefined;
  checkTtl?: string | undefined;
  interval?: string | undefined;
  timeout?: string | undefined;
  deregisterAfter?: string | undefined;
}

export interface Registration {
  readonly body: Record<string, unknown>;
  readonly serviceId: string;
  /** TTL in ms when the check is a TTL check (the runner sends heartbeats). */
  readonly ttlMs: number | undefined;
}

const bad = (msg: string): never => {
  throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', msg);
};

function duration(flag: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    if (parseGoDuration(v) <= 0) bad(`${flag} ${JSON.stringify(v)}: must be a positive duration such as 5s`);
  } catch (err) {
    if (err instanceof SwitchyardError && err.code === 'SY_ERR_INVALID_ARGUMENT') throw err;
    bad(`${flag} ${JSON.stringify(v)}: not a duration (use Go syntax: 10s, 1m30s, 250ms)`);
  }
  return v;
}

export function buildRegistration(f: RegisterFlags): Registration {
  if (!f.name) bad('--name is required');
  const port = /^\d+$/.test(f.port) ? Number(f.port) : NaN;
  if (!Number.isInteger(port) || port > 65535) bad(`--port ${f.port}: must be an integer between 0 and 65535`);
  const meta: Record<string, string> = {};
  for (const kv of f.meta) {
    const i = kv.indexOf('=');
    if (i <= 0) bad(`--meta ${JSON.stringify(kv)}: expected key=value`);
    meta[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const checks = [f.checkHttp && '--check-http', f.checkTcp && '--check-tcp', f.checkTtl && '--check-ttl'].filter(Boolean);
  if (checks.length > 1) bad(`only one check may be given, got ${checks.join(' and ')}`);
  const interval = duration('--interval', f.interval) ?? '10s';
  const timeout = duration('--timeout', f.timeout);
  const deregister = duration('--deregister-after', f.deregisterAfter);
  const ttl = duration('--check-ttl', f.checkTtl);
  let check: Record<string, unknown> | undefined;
  if (f.checkHttp) {
    try {
      const u = new URL(f.checkHttp);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') bad(`--check-http ${f.checkHttp}: must be an http:// or https:// URL`);
    } catch (err) {
      if (err instanceof SwitchyardError) throw err;
      bad(`--check-http ${JSON.stringify(f.checkHttp)}: not a URL`);
    }
    check = { HTTP: f.checkHttp, Interval: interval, ...(timeout ? { Timeout: timeout } : {}) };
  } else if (f.checkTcp) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(f.checkTcp)) bad(`--check-tcp ${JSON.stringify(f.checkTcp)}: expected host:port`);
    check = { TCP: f.checkTcp, Interval: interval, ...(timeout ? { Timeout: timeout } : {}) };
  } else if (ttl) {
    check = { TTL: ttl };
  }
  if (check && deregister) check.DeregisterCriticalServiceAfter = deregister;
  const serviceId = f.id ?? f.name;
  return {
    serviceId,
    ttlMs: ttl ? parseGoDuration(ttl) / 1e6 : undefined,
    body: {
      ID: serviceId, Name: f.name, Port: port, Tags: f.tags,
      ...(f.address ? { Address: f.address } : {}), ...(Object.keys(meta).length > 0 ? { Meta: meta } : {}),
      ...(check ? { Check: check } : {}),
    },
  };
}
