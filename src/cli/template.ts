/** `switchyard template`: consul-template's role (render templates from the registry, write atomically, run a command). */
import type { Command } from 'commander';
import { RegistryClient } from '../registry/api/client.js';
import { loadTemplateConfig, parseTemplateFlag, parseWait, templatesFromConfig } from '../template/config.js';
import { TemplateRunner } from '../template/runner.js';
import { createLogger } from './wiring/logger.js';

interface Flags {
  template: string[];
  consulAddr?: string;
  wait?: string;
  once?: boolean;
  dry?: boolean;
  config: string[];
  logLevel?: string;
  exec?: string;
}

export const TEMPLATE_GO_FLAGS: ReadonlySet<string> = new Set(['template', 'consul-addr', 'wait', 'once', 'dry', 'config', 'log-level', 'exec']);

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** consul-template's levels (err, warn, info, debug, trace) in pino's names. */
function level(l: string | undefined): string {
  const v = (l ?? 'warn').toLowerCase();
  if (v === 'err') return 'error';
  if (['trace', 'debug', 'info', 'warn', 'error', 'silent'].includes(v)) return v;
  throw new Error(`-log-level ${JSON.stringify(l)}: expected trace, debug, info, warn or err`);
}

export function registerTemplateCommand(program: Command): void {
  program
    .command('template')
    .description('Render templates from the registry (consul-template compatible): -template "src:dst[:command]"')
    .option('--template <src:dst[:command]>', 'a template, its destination and the command to run when it changes (repeatable; also -template)', collect, [])
    .option('--consul-addr <host:port>', 'registry address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)')
    .option('--wait <min[:max]>', 'quiescence: render after min without changes, at most max after the first (e.g. 2s:10s)')
    .option('--once', 'render every template once (waiting for all data), run the commands, exit')
    .option('--dry', 'print "> destination" and the contents instead of writing; run no command')
    .option('--config <file>', 'consul-template config (HCL, JSON or YAML; repeatable, later wins)', collect, [])
    .option('--log-level <level>', 'trace, debug, info, warn (default) or err')
    .option('--exec <command>', 'not supported yet: supervise a child process')
    .action(async (flags: Flags) => {
      if (flags.exec !== undefined) throw new Error('-exec is not supported by switchyard template yet; run the process with `switchyard register -- COMMAND` instead');
      const configs = flags.config.map(loadTemplateConfig);
      const merged = Object.assign({}, ...configs) as ReturnType<typeof loadTemplateConfig>;
      const templates = [...configs.flatMap(templatesFromConfig), ...flags.template.map(parseTemplateFlag)];
      if (templates.length === 0) throw new Error('no templates: give -template "source:destination[:command]" or a -config file with template { } blocks');
      const logger = createLogger(level(flags.logLevel ?? merged.log_level), 'template');
      const address = flags.consulAddr ?? merged.consul?.address ?? process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
      const token = merged.consul?.token ?? process.env.CONSUL_HTTP_TOKEN ?? process.env.CONSUL_TOKEN;
      const client = new RegistryClient({ address, ...(token ? { token } : {}) });
      const wait = flags.wait !== undefined ? parseWait(flags.wait) : merged.wait !== undefined ? parseWait(merged.wait, 'wait') : undefined;
      const runner = new TemplateRunner({
        client, templates, logger, ...(wait ? { wait } : {}), once: flags.once ?? merged.once ?? false, dry: flags.dry ?? false,
      });
      const stop = (): void => runner.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const done = runner.run();
      // stop() ends the run; resolve the exit code either way.
      const code = await Promise.race([done, new Promise<number>((r) => {
        process.once('SIGINT', () => r(0));
        process.once('SIGTERM', () => r(0));
      })]);
      await client.close();
      process.exitCode = code;
    });
}
