/** `switchyard up`: one config file with a section per part (agent, lb, dns), each with that part's keys. */
import { z } from 'zod';
import { agentConfigSchema } from './agent.js';
import { lbConfigSchema } from './lb.js';
import { goDurationBetween, hostPort, recursorList } from './fields.js';

export const dnsConfigSchema = z.strictObject({
  addr: hostPort('127.0.0.1:8600').optional(),
  domain: z.string().regex(/^[A-Za-z0-9.-]+\.?$/, { message: 'must be a domain such as consul' }).optional(),
  'only-passing': z.boolean().optional(),
  'node-ttl': z.number().int().min(0).optional(),
  'service-ttl': z.record(z.string(), z.number().int().min(0)).optional(),
  'udp-answer-limit': z.number().int().min(1).max(64).optional(),
  /** Largest UDP answer in bytes whatever the client advertises (default 1232, the DNS flag day value); larger answers are cut with TC. */
  'udp-max-size': z.number().int().min(512).max(65507).optional(),
  enabled: z.boolean().optional(),
  /** Upstream resolvers for names outside the domain (Consul's recursors), tried in order. */
  recursors: recursorList.optional(),
  /** How long each recursor gets to answer (Consul's recursor_timeout, default 2s). */
  'recursor-timeout': goDurationBetween(1e6, 60e9, 'must be between 1ms and 1m').optional(),
});

export const upConfigSchema = z.strictObject({
  agent: agentConfigSchema.omit({ 'dns-addr': true }).optional(),
  // `watch` tunes blocking queries; `up` reads its catalog in-process and has none.
  lb: lbConfigSchema.omit({ registry: true, token: true, workers: true, watch: true }).optional(),
  dns: dnsConfigSchema.optional(),
  registrator: z.strictObject({
    enabled: z.boolean().optional(),
    ip: z.string().optional(),
    'docker-host': z.string().optional(),
    /** Register each container's Docker HEALTHCHECK status as a TTL check (registrator's -healthcheck). */
    healthcheck: z.boolean().optional(),
  }).optional(),
});

export type UpConfigInput = z.infer<typeof upConfigSchema>;
export type DnsConfigInput = z.infer<typeof dnsConfigSchema>;
