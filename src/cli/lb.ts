/** `switchyard lb`: the balancer that follows the registry live (no template; SIGHUP reloads certificates and routes). */
import cluster from 'node:cluster';
import type { Command } from 'commander';
import { l4Routes, lbConfigSchema, resolveLbConfig } from '../config/lb.js';
import type { LbConfig, LbConfigInput } from '../config/lb.js';
import { loadConfigFile } from '../config/load.js';
import { RemoteSource } from '../discovery/remote-source.js';
import { FollowedServices } from '../discovery/follow.js';
import { flagsToConfig, registerAsFlag } from './flags.js';
import { createLogger } from './wiring/logger.js';
import { StartStopped, checkConfigFiles, reloadCertificates, startLb } from './wiring/lb.js';
import { RouteReloader } from './wiring/lb-reload.js';
import type { ReadConfig } from './wiring/lb-reload.js';
import { runWorker, setSchedulingPolicy, startPrimary } from './wiring/lb-workers.js';
import { selfRegistration } from './wiring/self-registration.js';
import { catchHangup, catchSignals } from './wiring/signals.js';
import { splitHostPort } from '../config/fields.js';

interface LbFlags {
  config?: string;
  listen?: string;
  registry?: string;
  service?: string;
  adminAddr?: string;
  workers?: string;
  acceptBatch?: string;
  stateFile?: string;
  logLevel?: string;
  accessLog?: boolean;
  balance?: string;
  dataPlane?: string;
  check?: boolean;
  registerAs?: string | boolean;
  advertiseAddr?: string;
}

const followed = (cfg: LbConfig): FollowedServices => new FollowedServices(cfg.routes, l4Routes(cfg).map((t) => t.service));

function readConfig(flags: LbFlags): ReadConfig {
  const fromFile: LbConfigInput = flags.config ? loadConfigFile(flags.config, lbConfigSchema) : {};
  const fromFlags = flagsToConfig(lbConfigSchema, { ...flags, registerAs: registerAsFlag(flags.registerAs) });
  return { input: { ...fromFile, ...Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined)) }, cfg: resolveLbConfig(fromFile, fromFlags) };
}

/** A stop during the wait for the first table is a clean exit; anything else goes on up. */
function stoppedAtStart(err: unknown): undefined {
  if (err instanceof StartStopped) return undefined;
  throw err;
}

export function registerLbCommand(program: Command): void {
  program
    .command('lb')
    .description('Run the load balancer: routes from the config file and from urlprefix- service tags, fed live by the registry')
    .option('-c, --config <file>', 'YAML config file (routes, balancing, timeouts, retries, passive health, tcp, tls)')
    .option('--listen <host:port>', 'HTTP listen address (default 127.0.0.1:9080, as the seeds\' 9080)')
    .option('--registry <url>', 'any Consul-compatible API: our agent or a real Consul (default http://127.0.0.1:8500)')
    .option('--service <name>', 'send all traffic to this service (the seeds\' setup)')
    .option('--admin-addr <host:port>', 'serve /metrics, /routes and /health here')
    .option('--workers <n>', 'worker processes sharing the listen port (one registry watch for all; default 1)')
    .option('--accept-batch <n>', 'connections each listener may accept per event-loop turn (default 16; 1 accepts one per turn, as libuv does)')
    .option('--state-file <file>', 'keep the last table here (rewritten at most once a second, and at shutdown); a restarted balancer serves it before the registry answers')
    .option('--balance <strategy>', 'round_robin (default), least_conn, p2c, random or hash')
    .option('--data-plane <plane>', 'fast (own HTTP/1.1 parser on raw sockets) or node (Node http server + undici)')
    .option('--access-log', 'log one JSON line per request')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .option('--register-as [service]', 'register this balancer in the registry (default name switchyard-lb) with a health check, so DNS lists live balancers only')
    .option('--advertise-addr <ip>', 'address registered for this balancer (default: the listen host)')
    .option('--check', 'validate the configuration and exit')
    .action(async (flags: LbFlags) => {
      const current = readConfig(flags);
      const { cfg } = current;
      if (flags.check) {
        checkConfigFiles(cfg);
        process.stdout.write(`configuration OK: ${cfg.routes.length} route(s), listen ${cfg.listen}, registry ${cfg.registry}\n`);
        return;
      }
      const logger = createLogger(cfg.logLevel, cluster.isPrimary ? 'lb' : `lb-worker-${cluster.worker?.id ?? 0}`);
      // From here: the start may wait for the first table, and a stop meanwhile must still be clean.
      const signals = catchSignals(logger);
      // Workers hear of SIGHUP from their primary (a message), not from the signal.
      const hangup = cluster.isPrimary ? catchHangup(logger) : undefined;
      const services = followed(cfg);
      const read = (): ReadConfig => readConfig(flags);
      if (cfg.workers <= 1) {
        const source = new RemoteSource({ address: cfg.registry, follow: services.predicate, logger, waitMs: cfg.watch.waitMs, staleMarginMs: cfg.watch.staleMarginMs, ...(cfg.token ? { token: cfg.token } : {}) });
        const lb = await startLb(cfg, logger, { source, stop: signals.stopped }).catch(stoppedAtStart);
        if (!lb) return;
        const routes = new RouteReloader({ current, read, logger, apply: (specs) => lb.setRoutes(specs), follow: { services, source } });
        hangup?.set(() => {
          reloadCertificates(lb, logger);
          void routes.reload();
        });
        const self = selfRegistration(cfg, logger, lb.address.port, lb.adminAddress);
        await signals.until(async () => {
          // Leave DNS first, so clients move to another balancer while this one drains.
          await self?.close();
          await lb.close();
        });
        return;
      }
      if (cluster.isWorker) {
        // A worker: no registry watch of its own; the primary sends each new ServiceSet.
        await runWorker(current, logger, signals, read).catch(stoppedAtStart);
        process.exit(0);
      }
      setSchedulingPolicy();
      const source = new RemoteSource({ address: cfg.registry, follow: services.predicate, logger, waitMs: cfg.watch.waitMs, staleMarginMs: cfg.watch.staleMarginMs, ...(cfg.token ? { token: cfg.token } : {}) });
      const primary = await startPrimary(current, logger, source, { read, follow: { services, source } });
      hangup?.set(() => {
        logger.info('SIGHUP: the workers read their TLS certificates again');
        primary.reloadTls();
        void primary.reloadRoutes();
      });
      const self = selfRegistration(cfg, logger, splitHostPort(cfg.listen).port, primary.admin.adminAddress);
      await signals.until(async () => {
        await self?.close();
        await primary.close();
      });
    });
}
