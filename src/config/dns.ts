/**
 * The DNS interface's settings: the fields of `switchyard up`'s `dns:` section, and the same fields as
 * the agent's `dns-*` keys, so both commands offer one set of options with one set of rules.
 */
import { z } from 'zod';
import { parseGoDuration } from '../core/duration.js';
import { goDurationBetween, hostPort, recursorList } from './fields.js';

const domain = z.string().regex(/^[A-Za-z0-9.-]+\.?$/, { message: 'must be a domain such as consul' });
const MAX_TTL_SECONDS = 2_147_483_647;

/** A Go duration's whole seconds (Consul's `uint32(ttl / time.Second)`: "1500ms" is 1), or undefined if it does not parse. */
function durationSeconds(s: string): number | undefined {
  try {
    const ns = parseGoDuration(s);
    return ns < 0 ? undefined : Math.floor(ns / 1e9);
  } catch {
    return undefined;
  }
}

/**
 * A TTL as the TTL field of an answer holds it, in seconds. Consul's dns_config takes durations ("10s",
 * "1m"), so a config copied from one works; a bare number of seconds (as the flag and older configs
 * give it, `7` or "7") is taken too.
 */
const ttl = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const seconds = typeof v === 'number' ? v : /^[0-9]+$/.test(v) ? Number(v) : durationSeconds(v);
  if (seconds === undefined || !Number.isInteger(seconds) || seconds < 0 || seconds > MAX_TTL_SECONDS) {
    ctx.addIssue({ code: 'custom', message: `must be a duration such as "10s" or "1m", or whole seconds, from 0 to ${MAX_TTL_SECONDS}s` });
    return z.NEVER;
  }
  return seconds;
});
/** Per service name, `*` for every service and `web*` for a prefix (Consul's service_ttl). */
const serviceTtl = z.record(z.string(), ttl);
const udpAnswerLimit = z.number().int().min(1).max(64);
/** Largest UDP answer in bytes whatever the client advertises (default 1232, the DNS flag day value); larger answers are cut with TC. */
const udpMaxSize = z.number().int().min(512).max(65507);
/** How long each recursor gets to answer (Consul's recursor_timeout, default 2s). */
const recursorTimeout = goDurationBetween(1e6, 60e9, 'must be between 1ms and 1m');

export const dnsConfigSchema = z.strictObject({
  addr: hostPort('127.0.0.1:8600').optional(),
  domain: domain.optional(),
  'only-passing': z.boolean().optional(),
  'node-ttl': ttl.optional(),
  'service-ttl': serviceTtl.optional(),
  'udp-answer-limit': udpAnswerLimit.optional(),
  'udp-max-size': udpMaxSize.optional(),
  enabled: z.boolean().optional(),
  /** Upstream resolvers for names outside the domain (Consul's recursors), tried in order. */
  recursors: recursorList.optional(),
  'recursor-timeout': recursorTimeout.optional(),
});

export type DnsConfigInput = z.infer<typeof dnsConfigSchema>;

/** The agent's keys for the same fields. */
export const agentDnsKeys = {
  /** Serve the DNS interface (UDP and TCP) on this address, as a Consul agent does on :8600. */
  'dns-addr': hostPort('127.0.0.1:8600').optional(),
  /** The domain answered (Consul's -domain; default consul). */
  'dns-domain': domain.optional(),
  /** Leave out instances whose checks warn (Consul's dns_config.only_passing). */
  'dns-only-passing': z.boolean().optional(),
  /** TTL of node answers, a duration or seconds (Consul's dns_config.node_ttl; default 0: not cached). */
  'dns-node-ttl': ttl.optional(),
  /** TTL of service answers by service name, durations or seconds (Consul's dns_config.service_ttl). */
  'dns-service-ttl': serviceTtl.optional(),
  /** Records in one UDP answer at most (Consul's dns_config.udp_answer_limit). */
  'dns-udp-answer-limit': udpAnswerLimit.optional(),
  'dns-udp-max-size': udpMaxSize.optional(),
  /** Upstream resolvers for names outside the DNS domain (Consul's recursors), tried in order. */
  'dns-recursors': recursorList.optional(),
  'dns-recursor-timeout': recursorTimeout.optional(),
} as const;

type AgentDnsInput = { [K in keyof typeof agentDnsKeys]?: z.infer<(typeof agentDnsKeys)[K]> };

/** The DNS settings an agent's keys give, or undefined when it serves no DNS (no dns-addr). */
export function agentDns(c: AgentDnsInput): DnsConfigInput | undefined {
  if (c['dns-addr'] === undefined) return undefined;
  const d: DnsConfigInput = {
    addr: c['dns-addr'], domain: c['dns-domain'], 'only-passing': c['dns-only-passing'], 'node-ttl': c['dns-node-ttl'],
    'service-ttl': c['dns-service-ttl'], 'udp-answer-limit': c['dns-udp-answer-limit'], 'udp-max-size': c['dns-udp-max-size'],
    recursors: c['dns-recursors'], 'recursor-timeout': c['dns-recursor-timeout'],
  };
  return Object.fromEntries(Object.entries(d).filter(([, v]) => v !== undefined)) as DnsConfigInput;
}
