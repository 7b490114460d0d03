/**
 * -healthcheck (a Switchyard extension to Registrator, registrator#578): a container's Docker
 * HEALTHCHECK status as a TTL check of each of its services. Pure mapping here; the sync loop
 * registers the check with the service and pushes the status on every health_status event and
 * every probe interval (Docker only emits an event when the status changes; the TTL catches a
 * registrator that stopped pushing).
 *
 *   healthy   → passing
 *   unhealthy → critical
 *   starting  → critical: not yet healthy, so not yet sent traffic, as a new Consul check is
 *               critical until it first passes (warning would put a container that may not be
 *               ready yet in the balancer: warning instances take their warning weight)
 */
import type { ContainerHealth, ContainerInspect, HealthCheckSpec } from './types.js';

/** Docker's default probe interval. */
const DEFAULT_INTERVAL_MS = 30_000;

/** True when the container runs a HEALTHCHECK (its image's or --health-cmd), not turned off with NONE. */
export function hasHealthcheck(c: ContainerInspect): boolean {
  const test = c.Config.Healthcheck?.Test ?? [];
  if (test.length > 0) return test[0] !== 'NONE';
  return c.State?.Health != null;
}

/** The TTL check for one service of a container with a HEALTHCHECK. */
export function healthSpec(serviceId: string, c: ContainerInspect): HealthCheckSpec {
  const ns = c.Config.Healthcheck?.Interval ?? 0;
  const refreshMs = ns > 0 ? Math.max(1000, Math.round(ns / 1e6)) : DEFAULT_INTERVAL_MS;
  // Three missed refreshes (plus slack for a slow registry) before the registry calls it critical.
  const ttlMs = refreshMs * 3 + 10_000;
  return { checkId: `service:${serviceId}:docker-health`, ttl: `${Math.ceil(ttlMs / 1000)}s`, refreshMs };
}

/** The check definition registered with the service (no Status: a new check is critical until the first push). */
export function healthCheckDefinition(spec: HealthCheckSpec, containerName: string): Record<string, unknown> {
  return {
    CheckID: spec.checkId,
    Name: 'Docker HEALTHCHECK',
    Notes: `The Docker health status of container ${containerName}, pushed by switchyard registrator -healthcheck`,
    TTL: spec.ttl,
  };
}

export type CheckStatus = 'passing' | 'warning' | 'critical';

/** Docker's health state → the check's status and output (the last probe's output, as Consul shows a script's). */
export function checkFromHealth(h: ContainerHealth | null | undefined): { status: CheckStatus; output: string } {
  const docker = h?.Status ?? 'none';
  const status: CheckStatus = docker === 'healthy' ? 'passing' : 'critical';
  const last = h?.Log?.[h.Log.length - 1];
  const probe = last === undefined ? 'no probe has run yet' : `last probe exited ${String(last.ExitCode ?? '?')}${(last.Output ?? '').trim() ? `: ${(last.Output ?? '').trim()}` : ''}`;
  const streak = (h?.FailingStreak ?? 0) > 0 ? `, ${String(h?.FailingStreak)} failing in a row` : '';
  return { status, output: `Docker health: ${docker}${streak}; ${probe}`.slice(0, 4096) };
}
