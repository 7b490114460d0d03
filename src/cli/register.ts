/** `switchyard register`: the seeds' register.py + supervisord (register, supervise, heartbeat, deregister). */
import type { Command } from 'commander';
import { RegistryClient } from '../registry/api/client.js';
import { buildRegistration } from '../register/registration.js';
import { run } from '../register/runner.js';
import { createLogger } from './wiring/logger.js';

interface Flags {
  name: string;
  port: string;
  id?: string;
  address?: string;
  tag: string[];
  meta: string[];
  checkHttp?: string;
  checkTcp?: string;
  checkTtl?: string;
  interval?: string;
  timeout?: string;
  deregisterAfter?: string;
  consulAddr?: string;
  logLevel?: string;
}

export const REGISTER_GO_FLAGS: ReadonlySet<string> = new Set(['consul-addr']);

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerRegisterCommand(program: Command): void {
  program
    .command('register')
    .description('Register a service with the agent (retrying until it answers); with -- COMMAND, supervise it and deregister when it exits')
    .requiredOption('--name <name>', 'service name')
    .requiredOption('--port <port>', 'service port')
    .option('--id <id>', 'service ID (default: the name)')
    .option('--address <addr>', 'service address (default: the agent\'s node address)')
    .option('--tag <tag>', 'a tag (repeatable)', collect, [])
    .option('--meta <k=v>', 'a metadata pair (repeatable)', collect, [])
    .option('--check-http <url>', 'HTTP health check URL')
    .option('--check-tcp <host:port>', 'TCP health check address')
    .option('--check-ttl <duration>', 'TTL check; switchyard register sends the heartbeats')
    .option('--interval <duration>', 'check interval (default 10s)')
    .option('--timeout <duration>', 'check timeout')
    .option('--deregister-after <duration>', 'DeregisterCriticalServiceAfter')
    .option('--consul-addr <host:port>', 'agent address (also -consul-addr; default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .argument('[command...]', 'the service to run and supervise, after --')
    .action(async (command: string[], flags: Flags) => {
      const registration = buildRegistration({
        name: flags.name, port: flags.port, id: flags.id, address: flags.address, tags: flags.tag, meta: flags.meta,
        checkHttp: flags.checkHttp, checkTcp: flags.checkTcp, checkTtl: flags.checkTtl, interval: flags.interval,
        timeout: flags.timeout, deregisterAfter: flags.deregisterAfter,
      });
      const logger = createLogger(flags.logLevel ?? 'info', 'register');
      const address = flags.consulAddr ?? process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
      const token = process.env.CONSUL_HTTP_TOKEN;
      const client = new RegistryClient({ address, ...(token ? { token } : {}) });
      const code = await run({
        client, registration, logger, ...(command.length > 0 ? { command } : {}),
        listenHost: flags.address ?? '127.0.0.1', port: Number(flags.port),
      });
      await client.close();
      process.exitCode = code;
    });
}
