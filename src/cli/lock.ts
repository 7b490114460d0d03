/** `switchyard lock`: consul lock (run a command while holding a lock or semaphore slot under a KV prefix). */
import type { Command } from 'commander';
import type { ChildProcess } from 'node:child_process';
import { parseGoDuration } from '../core/duration.js';
import { SwitchyardError } from '../core/errors.js';
import { RegistryClient } from '../registry/api/client.js';
import { runLock } from '../lock/run.js';

interface Flags {
  n: string;
  childExitCode?: boolean;
  monitorRetry: string;
  name?: string;
  passStdin?: boolean;
  shell?: boolean;
  timeout?: string;
  try?: string;
  verbose?: boolean;
  httpAddr?: string;
  token?: string;
  sessionTtl: string;
  lockDelay?: string;
}

/** consul lock's flags, accepted with one dash as Go's flag package does. */
export const LOCK_GO_FLAGS: ReadonlySet<string> = new Set(['child-exit-code', 'monitor-retry', 'name', 'pass-stdin', 'shell', 'timeout', 'try', 'verbose', 'http-addr', 'token', 'session-ttl', 'lock-delay']);
export const LOCK_GO_BOOLEANS: ReadonlySet<string> = new Set(['child-exit-code', 'pass-stdin', 'shell', 'verbose']);

/** Go's flag values: `-n=2` reaches commander as "=2". */
const value = (v: string): string => v.replace(/^=/, '');

function int(flag: string, v: string): number {
  const s = value(v);
  if (!/^-?\d+$/.test(s)) throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `invalid value ${JSON.stringify(s)} for flag -${flag}: parse error`);
  return Number(s);
}

function duration(flag: string, v: string): number {
  try {
    return parseGoDuration(value(v)) / 1e6;
  } catch (err) {
    throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `invalid value ${JSON.stringify(value(v))} for flag -${flag}: ${(err as Error).message}`);
  }
}

export function registerLockCommand(program: Command): void {
  program
    .command('lock')
    .description('Run a command while holding a lock (or, with -n > 1, a semaphore slot) under a KV prefix, as consul lock does')
    .argument('<prefix>', 'KV prefix of the lock (the lock key is <prefix>/.lock)')
    .argument('<child...>', 'the command to run while holding the lock (after --)')
    .option('-n <limit>', 'how many may hold it at once; above 1 a semaphore is used', '1')
    .option('--child-exit-code', 'exit 2 when the child exits with an error (default: exit 0)')
    .option('--monitor-retry <n>', '5xx answers tolerated while watching the lock, 1 s apart', '3')
    .option('--name <name>', 'session name (default: "Consul lock for \'<child>\' at \'<prefix>\'")')
    .option('--pass-stdin', 'give the child this process\'s stdin')
    .option('--shell', 'run the child through $SHELL -c, default /bin/sh (the default)')
    .option('--no-shell', 'run the child directly')
    .option('--timeout <duration>', 'give up acquiring after this long (default: wait forever)')
    .option('--try <duration>', 'deprecated alias of -timeout')
    .option('--verbose', 'say what happens, on stderr')
    .option('--http-addr <addr>', 'agent address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)')
    .option('--token <token>', 'ACL token (default $CONSUL_HTTP_TOKEN)')
    .option('--session-ttl <duration>', 'Switchyard: TTL of the lock\'s session, renewed every TTL/2 (15s as in consul lock)', '15s')
    .option('--lock-delay <duration>', 'Switchyard: lock-delay of the lock\'s session (default: the agent\'s, 15s)')
    .action(async (prefix: string, child: string[], flags: Flags) => {
      const timeout = flags.timeout ?? flags.try;
      if (flags.lockDelay !== undefined) duration('lock-delay', flags.lockDelay);
      duration('session-ttl', flags.sessionTtl);
      const address = flags.httpAddr ?? process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
      const token = flags.token ?? process.env.CONSUL_HTTP_TOKEN;
      const client = new RegistryClient({ address, ...(token ? { token } : {}) });
      const shutdown = new AbortController();
      let running: ChildProcess | undefined;
      // As consul lock: the signal reaches the child, and the lock is released once it is gone.
      const onSignal = (sig: NodeJS.Signals): void => {
        running?.kill(sig);
        shutdown.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        process.exitCode = await runLock({
          client, prefix, child, limit: int('n', flags.n), childExitCode: flags.childExitCode ?? false,
          monitorRetry: int('monitor-retry', flags.monitorRetry), name: flags.name, passStdin: flags.passStdin ?? false,
          shell: flags.shell ?? true, timeoutMs: timeout === undefined ? 0 : duration('timeout', timeout), verbose: flags.verbose ?? false,
          sessionTtl: value(flags.sessionTtl), lockDelay: flags.lockDelay === undefined ? undefined : value(flags.lockDelay),
          shutdown: shutdown.signal, onChild: (c) => void (running = c),
          info: (line) => void process.stderr.write(`${line}\n`),
          error: (line) => void process.stderr.write(`${line}\n`),
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await client.close();
      }
    });
}
