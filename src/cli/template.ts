/** `switchyard template`: consul-template's role (render templates from the registry, write atomically, run a command). */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { RegistryClient } from '../registry/api/client.js';
import { writeFileSync, rmSync } from 'node:fs';
import { blockQueryWaitMs, execSettings, ignoredKeys, loadTemplateConfig, parseTemplateFlag, parseWait, registryToken, templatesFromConfig } from '../template/config.js';
import { ExecChild, PASSED_ON } from '../template/exec-child.js';
import type { ExecSettings } from '../template/exec-child.js';
import { TemplateRunner } from '../template/runner.js';
import type { TemplateSpec } from '../template/runner.js';
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
  execReloadSignal?: string;
  execKillSignal?: string;
  execKillTimeout?: string;
  execSplay?: string;
  consulToken?: string;
  consulTokenFile?: string;
  pidFile?: string;
}

export const TEMPLATE_GO_FLAGS: ReadonlySet<string> = new Set([
  'template', 'consul-addr', 'wait', 'once', 'dry', 'config', 'log-level', 'exec', 'exec-reload-signal', 'exec-kill-signal', 'exec-kill-timeout', 'exec-splay',
  'consul-token', 'consul-token-file', 'pid-file',
]);

/**
 * With -exec, these reach the child instead of stopping us (consul-template passes on every signal but its
 * reload and kill signals): `docker stop` then stops nginx, whose exit ends us with its code, and nginx's
 * own signals (USR1 reopens its logs, QUIT stops it gracefully) work through us.
 */
const FORWARDED: readonly NodeJS.Signals[] = PASSED_ON.filter((sig) => sig !== 'SIGHUP');

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** consul-template's levels (err, warn, info, debug, trace) in pino's names. */
function level(l: string | undefined): string {
  const v = (l ?? 'warn').toLowerCase();
  if (v === 'err') return 'error';
  if (['trace', 'debug', 'info', 'warn', 'error', 'silent'].includes(v)) return v;
  throw new Error(`-log-level ${JSON.stringify(l)}: expected trace, debug, info, warn or err`);
}

/** Everything the flags and config files say; read again, whole, on SIGHUP. */
interface Settings {
  templates: TemplateSpec[];
  address: string;
  token: string | undefined;
  wait: { minMs: number; maxMs: number } | undefined;
  once: boolean;
  logLevel: string;
  exec: ExecSettings | undefined;
  blockWaitMs: number | undefined;
  pidFile: string | undefined;
  /** Top-level config keys that change nothing here, said once at start and at each reload. */
  ignored: string[];
}

function readSettings(flags: Flags): Settings {
  const configs = flags.config.map(loadTemplateConfig);
  const merged = Object.assign({}, ...configs) as ReturnType<typeof loadTemplateConfig>;
  const templates = [...configs.flatMap(templatesFromConfig), ...flags.template.map(parseTemplateFlag)];
  if (templates.length === 0) throw new Error('no templates: give -template "source:destination[:command]" or a -config file with template { } blocks');
  const exec = execSettings(merged, { exec: flags.exec, reloadSignal: flags.execReloadSignal, killSignal: flags.execKillSignal, killTimeout: flags.execKillTimeout, splay: flags.execSplay });
  if (exec && flags.dry) throw new Error('-exec cannot be combined with -dry: a dry run writes no file, so there is nothing for the child to read');
  return {
    templates,
    address: flags.consulAddr ?? merged.consul?.address ?? process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500',
    token: registryToken(merged, { token: flags.consulToken, tokenFile: flags.consulTokenFile }, process.env),
    wait: flags.wait !== undefined ? parseWait(flags.wait) : merged.wait !== undefined ? parseWait(merged.wait, 'wait') : undefined,
    once: flags.once ?? merged.once ?? false,
    logLevel: level(flags.logLevel ?? merged.log_level),
    exec,
    blockWaitMs: blockQueryWaitMs(merged),
    pidFile: flags.pidFile ?? merged.pid_file,
    ignored: [...new Set(configs.flatMap(ignoredKeys))],
  };
}

/** What commands and the -exec child find in their environment, as consul-template sets it. */
function consulEnv(s: Settings): Record<string, string> {
  return { CONSUL_HTTP_ADDR: s.address, ...(s.token ? { CONSUL_HTTP_TOKEN: s.token } : {}) };
}

interface Running {
  readonly client: RegistryClient;
  readonly runner: TemplateRunner;
}

/** A runner for these settings, not started; compiling its templates is what may throw. */
function prepare(s: Settings, flags: Flags, logger: Logger, child: ExecChild | undefined): Running {
  const client = new RegistryClient({ address: s.address, ...(s.token ? { token: s.token } : {}) });
  try {
    if (s.ignored.length > 0) logger.warn({ keys: s.ignored }, `config keys ignored (consul-template has them; switchyard template does not use them): ${s.ignored.join(', ')}`);
    const runner = new TemplateRunner({
      client, templates: s.templates, logger, ...(s.wait ? { wait: s.wait } : {}), once: s.once, dry: flags.dry ?? false, commandEnv: consulEnv(s),
      ...(s.blockWaitMs !== undefined ? { blockWaitMs: s.blockWaitMs } : {}),
      onRendered: (changed) => {
        if (!child) return;
        if (!child.started) child.start();
        else if (changed) child.changed();
      },
    });
    return { client, runner };
  } catch (err) {
    void client.close();
    throw err;
  }
}

export function registerTemplateCommand(program: Command): void {
  program
    .command('template')
    .description('Render templates from the registry (consul-template compatible): -template "src:dst[:command]"; SIGHUP reloads')
    .option('--template <src:dst[:command]>', 'a template, its destination and the command to run when it changes (repeatable; also -template)', collect, [])
    .option('--consul-addr <host:port>', 'registry address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)')
    .option('--wait <min[:max]>', 'quiescence: render after min without changes, at most max after the first (e.g. 2s:10s)')
    .option('--once', 'render every template once (waiting for all data), run the commands, exit (with -exec: once the child exits)')
    .option('--dry', 'print "> destination" and the contents instead of writing; run no command')
    .option('--config <file>', 'consul-template config (HCL, JSON or YAML; repeatable, later wins)', collect, [])
    .option('--log-level <level>', 'trace, debug, info, warn (default) or err')
    .option('--consul-token <token>', 'registry token (default $CONSUL_HTTP_TOKEN)')
    .option('--consul-token-file <file>', 'read the registry token from this file (default $CONSUL_HTTP_TOKEN_FILE)')
    .option('--pid-file <file>', 'write our PID here (for kill -HUP `cat file` to reload), removed when we stop')
    .option('--exec <command>', 'supervise a child (e.g. "nginx -g \'daemon off;\'"): started once every template rendered, told of changes, its exit ends switchyard template with its code')
    .option('--exec-reload-signal <signal>', 'signal the child gets when a template changes (default: none, the child is restarted)')
    .option('--exec-kill-signal <signal>', 'signal that asks the child to stop (default SIGINT)')
    .option('--exec-kill-timeout <duration>', 'SIGKILL the child this long after the kill signal (default 30s)')
    .option('--exec-splay <duration>', 'wait a random time below this before passing a change on to the child (default 0s)')
    .action(async (flags: Flags) => {
      const first = readSettings(flags);
      const logger = createLogger(first.logLevel, 'template');
      const pidFile = first.pidFile;
      if (pidFile) {
        try {
          writeFileSync(pidFile, `${process.pid}\n`);
        } catch (err) {
          throw new Error(`-pid-file: cannot write ${pidFile}: ${(err as Error).message}`);
        }
      }
      const child = first.exec ? new ExecChild({ settings: first.exec, logger, env: consulEnv(first) }) : undefined;
      let current = prepare(first, flags, logger, child);

      let finish!: (code: number) => void;
      const finished = new Promise<number>((resolve) => {
        finish = resolve;
      });
      const start = (r: Running, once: boolean): void => {
        void r.runner.run().then(async (code) => {
          if (r !== current) return; // replaced by a reload
          // -once with -exec: the templates are done, the child now decides when we end.
          finish(once && code === 0 && child?.started ? await child.exited : code);
        });
      };
      void child?.exited.then(finish);

      // SIGHUP: everything is read again; only a whole new configuration that compiles replaces the running one.
      const reload = (): void => {
        let s: Settings;
        let next: Running;
        try {
          s = readSettings(flags);
          next = prepare(s, flags, logger, child);
        } catch (err) {
          const msg = (err as Error).message;
          logger.error({ err: msg }, 'reload failed: still running the previous configuration');
          process.stderr.write(`switchyard template: reload failed, still running the previous configuration: ${msg}\n`);
          return;
        }
        const old = current;
        current = next;
        old.runner.stop();
        void old.client.close();
        if (child && s.exec && JSON.stringify(s.exec) !== JSON.stringify(child.settings)) void child.restart(s.exec);
        else if (Boolean(child) !== Boolean(s.exec)) logger.warn('reload: adding or removing -exec takes a restart of switchyard template; the rest is reloaded');
        logger.info({ templates: s.templates.length }, 'configuration reloaded');
        start(next, s.once);
      };
      const stop = (): void => finish(0);
      // consul-template stops on SIGINT; without a child there is nobody to pass SIGTERM to, so it stops us too.
      const listeners: [NodeJS.Signals, () => void][] = [['SIGHUP', reload], ['SIGINT', stop]];
      if (child) for (const sig of FORWARDED) listeners.push([sig, () => child.signal(sig)]);
      else listeners.push(['SIGTERM', stop]);
      for (const [sig, fn] of listeners) process.on(sig, fn);

      start(current, first.once);
      const code = await finished;
      for (const [sig, fn] of listeners) process.off(sig, fn);
      current.runner.stop();
      await child?.stop();
      await current.client.close();
      if (pidFile) rmSync(pidFile, { force: true });
      process.exitCode = code;
    });
}
