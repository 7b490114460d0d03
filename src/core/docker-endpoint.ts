/**
 * Where the Docker Engine API is, and what its errors say, for the parts that talk to it (registrator,
 * Docker health checks):
 * DOCKER_HOST (unix:///path, tcp://host:port; dockerode reads it itself), else /var/run/docker.sock,
 * else registrator's documented mount point /tmp/docker.sock.
 */
import { existsSync } from 'node:fs';

export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env, exists: (p: string) => boolean = existsSync): { endpoint: string; socketPath?: string } {
  const host = env.DOCKER_HOST;
  if (host) return { endpoint: host };
  if (!exists('/var/run/docker.sock') && exists('/tmp/docker.sock')) return { endpoint: 'unix:///tmp/docker.sock', socketPath: '/tmp/docker.sock' };
  return { endpoint: 'unix:///var/run/docker.sock', socketPath: '/var/run/docker.sock' };
}

/** The HTTP status of a dockerode error (404: no such container), if it has one. */
export function dockerStatusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The daemon's own message for a dockerode error (its JSON body), else the error's. */
export function describeDockerError(err: unknown): string {
  const e = err as { message?: string; json?: { message?: string } } | null;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
}
