/** Starts the registrator inside `up` when a Docker engine answers; without one, `up` simply runs without it. */
import type { Logger } from 'pino';
import { RegistryClient } from '../../registry/api/client.js';
import { ConsulBackend } from '../../registrator/consul.js';
import { DockerodeSource } from '../../registrator/docker.js';
import { parseOptions } from '../../registrator/options.js';
import { startRegistrator } from '../../registrator/run.js';

export interface RunningUpRegistrator {
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function maybeStartRegistrator(cfg: { enabled?: boolean | undefined; ip?: string | undefined; 'docker-host'?: string | undefined; healthcheck?: boolean | undefined }, agentUrl: string, token: string | undefined, logger: Logger): Promise<RunningUpRegistrator | undefined> {
  if (cfg.enabled === false) return undefined;
  const env = cfg['docker-host'] ? { ...process.env, DOCKER_HOST: cfg['docker-host'] } : process.env;
  const docker = new DockerodeSource(env, 5000);
  try {
    await docker.ping();
  } catch (err) {
    const msg = `no Docker engine at ${docker.endpoint} (${(err as Error).message})`;
    // Asked for explicitly: that is an error. Otherwise the registrator is simply not needed here.
    if (cfg.enabled === true) throw new Error(`registrator: ${msg}`);
    logger.info({ endpoint: docker.endpoint }, 'no Docker engine: running without the registrator');
    return undefined;
  }
  // On one machine the published ports are reachable on loopback (Registrator's -ip).
  const opts = parseOptions({ ip: cfg.ip ?? '127.0.0.1', healthcheck: cfg.healthcheck }, [agentUrl.replace(/^http:\/\//, 'consul://')]);
  const client = new RegistryClient({ address: agentUrl, ...(token ? { token } : {}) });
  const running = await startRegistrator(opts, { docker, registry: new ConsulBackend(client), logger });
  logger.info({ endpoint: docker.endpoint, ip: opts.hostIp }, 'registrator following Docker');
  return {
    endpoint: docker.endpoint,
    async close() {
      await running.stop();
      await client.close();
    },
  };
}
