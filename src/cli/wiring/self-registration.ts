/** A balancer registering itself (`--register-as`), shared by `lb` and `up`. */
import type { Logger } from 'pino';
import type { LbConfig } from '../../config/lb.js';
import { splitHostPort } from '../../config/fields.js';
import { SelfRegistration } from '../../discovery/self-registration.js';
import { RegistryClient } from '../../registry/api/client.js';

/** With --register-as: keeps this balancer registered (health-checked on its admin /health, else by TCP). */
export function selfRegistration(cfg: LbConfig, logger: Logger, port: number, admin: { host: string; port: number } | undefined): SelfRegistration | undefined {
  if (!cfg.registerAs) return undefined;
  const host = splitHostPort(cfg.listen).host;
  const address = cfg.advertiseAddr ?? (host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host);
  const hostFor = (h: string): string => (h === '0.0.0.0' || h === '::' ? address : h.includes(':') ? `[${h}]` : h);
  const reg = new SelfRegistration({
    client: new RegistryClient({ address: cfg.registry, timeoutMs: 3000, ...(cfg.token ? { token: cfg.token } : {}) }),
    logger: logger.child({ part: 'self-registration' }),
    name: cfg.registerAs,
    id: `${cfg.registerAs}-${address}-${port}`,
    address,
    port,
    ...(admin ? { healthUrl: `http://${hostFor(admin.host)}:${admin.port}/health` } : {}),
    ...(cfg.token ? { token: cfg.token } : {}),
  });
  reg.start();
  return reg;
}
