/** `switchyard registrator [options] consul://host:port`: gliderlabs/registrator against a real Docker engine. */
import { CommanderError } from 'commander';
import type { Command } from 'commander';
import { SwitchyardError } from '../core/errors.js';
import { RegistryClient } from '../registry/api/client.js';
import { ConsulBackend } from '../registrator/consul.js';
import { ConsulKvBackend } from '../registrator/consul-kv.js';
import { DockerodeSource } from '../registrator/docker.js';
import { parseOptions } from '../registrator/options.js';
import type { RegistratorFlags } from '../registrator/options.js';
import { StartupError, startRegistrator } from '../registrator/run.js';
import { createLogger } from './wiring/logger.js';
import { runUntilSignal } from './wiring/signals.js';

/** registrator's single-dash long flags (Go flag syntax), rewritten to --name before parsing. */
export const REGISTRATOR_GO_FLAGS: ReadonlySet<string> = new Set([
  'ip', 'internal', 'explicit', 'useIpFromLabel', 'tags', 'resync', 'cleanup', 'deregister', 'retry-attempts', 'retry-interval', 'ttl', 'ttl-refresh', 'log-level',
  'healthcheck', 'stop-grace',
]);

interface Flags extends RegistratorFlags {
  logLevel?: string;
}

/** Go's flag package exits 2 on any usage error; commander's default is 1. */
const USAGE_ERRORS = new Set(['commander.unknownOption', 'commander.optionMissingArgument', 'commander.missingArgument', 'commander.excessArguments', 'commander.invalidArgument']);

export function registerRegistratorCommand(program: Command): void {
  const cmd: Command = program
    .command('registrator')
    .description('Register Docker containers\' published ports as services (gliderlabs/registrator compatible); options come before the registry URI')
    .usage('[options] <registry URI>')
    .option('--ip <addr>', 'IP for ports mapped to the host')
    .option('--internal', 'use internal ports instead of published ones')
    .option('--explicit', 'only register containers which have SERVICE_NAME set')
    .option('--useIpFromLabel <label>', 'use the IP stored in this container label')
    .option('--tags <list>', 'append tags for all registered services (a Go template subset is supported)')
    .option('--resync <seconds>', 'frequency with which services are resynchronized (0 = off)')
    .option('--cleanup', 'remove dangling services')
    .option('--deregister <when>', 'deregister exited services "always" or "on-success"')
    .option('--retry-attempts <n>', 'max retry attempts to reach the registry at startup (-1 = forever)')
    .option('--retry-interval <ms>', 'interval in milliseconds between retry attempts (default 2000)')
    .option('--ttl <seconds>', 'TTL for services (not used by the consul backend)')
    .option('--ttl-refresh <seconds>', 'frequency with which service TTLs are refreshed (not used by the consul backend)')
    .option('--healthcheck', 'register each container\'s Docker HEALTHCHECK status as a TTL check (healthy: passing; unhealthy and starting: critical); a Switchyard extension, off by default')
    .option('--stop-grace <seconds>', 'a container sent its stop signal is deregistered at once; still running this long past its stop timeout, it ignored the signal and is registered again (default 30; a Switchyard extension)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .argument('[uri...]', 'registry URI: consul://host:port')
    .exitOverride((err) => {
      if (USAGE_ERRORS.has(err.code)) throw new CommanderError(2, err.code, err.message);
      throw err;
    })
    .action(async (uri: string[], flags: Flags) => {
      let opts;
      try {
        opts = parseOptions(flags, uri);
      } catch (err) {
        if (uri.length !== 1 && err instanceof SwitchyardError) {
          process.stderr.write(`${err.message}\n\n${cmd.helpInformation()}`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
      const logger = createLogger(flags.logLevel ?? 'info', 'registrator');
      const token = process.env.CONSUL_HTTP_TOKEN;
      if (opts.registry.scheme === 'consul-tls' && (process.env.CONSUL_CLIENT_CERT || process.env.CONSUL_CACERT)) {
        logger.warn('CONSUL_CACERT/CONSUL_CLIENT_CERT are not read: use NODE_EXTRA_CA_CERTS for a private CA');
      }
      const client = new RegistryClient({ address: opts.registry.address, ...(token ? { token } : {}) });
      const docker = new DockerodeSource();
      let running;
      try {
        const registry = opts.registry.kvPrefix !== undefined ? new ConsulKvBackend(client, opts.registry.kvPrefix) : new ConsulBackend(client);
        running = await startRegistrator(opts, { docker, registry, logger });
      } catch (err) {
        if (!(err instanceof StartupError)) throw err;
        logger.fatal({ err: err.message }, 'cannot start');
        process.stderr.write(`switchyard registrator: ${err.message}\n`);
        await client.close();
        process.exitCode = 1;
        return;
      }
      await runUntilSignal(logger, async () => {
        await running.stop();
        await client.close();
      });
    });
}
