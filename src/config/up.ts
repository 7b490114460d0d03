/** `switchyard up`: one config file with a section per part (agent, lb, dns), each with that part's keys. */
import { z } from 'zod';
import { agentConfigSchema } from './agent.js';
import { lbConfigSchema } from './lb.js';
import { agentDnsKeys, dnsConfigSchema } from './dns.js';


export const upConfigSchema = z.strictObject({
  // The DNS interface is configured in dns: (the agent's dns-* keys there would be ignored, so they are refused).
  agent: agentConfigSchema.omit(Object.fromEntries(Object.keys(agentDnsKeys).map((k) => [k, true])) as { [K in keyof typeof agentDnsKeys]: true }).optional(),
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
export { dnsConfigSchema };
export type { DnsConfigInput } from './dns.js';
