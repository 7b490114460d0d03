#!/usr/bin/env -S node --max-semi-space-size=64
// A 64 MiB young generation (V8's default here is 16): a loaded agent allocates tens of MB/s per thousand blocking
// queries, and the default made it scavenge four times a second (docs/scale.md, "The young generation"). V8 grows
// the young generation only on demand, so small commands pay nothing. `npm start` and the Dockerfile pass the same.
/** The `switchyard` command: one binary, one subcommand per role of the seeds' system. */
import { Command, CommanderError } from 'commander';
import { ZodError } from 'zod';
import { SwitchyardError } from '../core/errors.js';
import { registerAgentCommand } from './agent.js';
import { registerLbCommand } from './lb.js';
import { registerUpCommand } from './up.js';
import { REGISTER_GO_FLAGS, registerRegisterCommand } from './register.js';
import { REGISTRATOR_GO_FLAGS, registerRegistratorCommand } from './registrator.js';
import { TEMPLATE_GO_FLAGS, registerTemplateCommand } from './template.js';
import { LOCK_GO_BOOLEANS, LOCK_GO_FLAGS, registerLockCommand } from './lock.js';
import { registerSnapshotCommand } from './snapshot.js';
import { registerKvCommand } from './kv.js';
import { normalizeGoFlags } from './go-flags.js';
import { VERSION } from './wiring/version.js';

const program = new Command();
program
  .name('switchyard')
  .description('Dynamic load balancing with service discovery: a Consul-compatible registry, a live load balancer and the tools around them')
  .version(VERSION, '-v, --version')
  .showHelpAfterError()
  .exitOverride();

registerAgentCommand(program);
registerLbCommand(program);
registerUpCommand(program);
registerRegisterCommand(program);
registerRegistratorCommand(program);
registerTemplateCommand(program);
registerLockCommand(program);
registerSnapshotCommand(program);
registerKvCommand(program);

function describe(err: unknown): string {
  if (err instanceof ZodError) {
    const i = err.issues[0];
    const flag = i ? `--${String(i.path[0] ?? '')}` : '';
    return `invalid value for ${flag}: ${i?.message ?? err.message}`;
  }
  if (err instanceof SwitchyardError) return `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}

try {
  // kv reads its own Go flags, which stop at the first argument: a value such as "-name" must stay as it is.
  const goArgv = process.argv[2] === 'kv' ? process.argv : normalizeGoFlags(process.argv, new Set([...REGISTER_GO_FLAGS, ...REGISTRATOR_GO_FLAGS, ...TEMPLATE_GO_FLAGS, ...LOCK_GO_FLAGS]), LOCK_GO_BOOLEANS);
  await program.parseAsync(goArgv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.stderr.write(`switchyard: ${describe(err)}\n`);
  process.exit(err instanceof SwitchyardError && err.code === 'SY_ERR_ADDR_IN_USE' ? 3 : 2);
}
