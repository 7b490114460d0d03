/**
 * Consul's script check (`Args`, or the older `Script` string): run a command on the agent's host;
 * exit 0 is passing, 1 warning, anything else (or a signal) critical. The output is stdout and stderr
 * as they arrived, its last OutputMaxSize bytes. `Args` run as given, without a shell; `Script` runs
 * with `$SHELL -c` (default /bin/sh), as Consul's exec.Script does.
 *
 * The command runs in its own process group, so a timeout or a removed check kills everything it
 * started (a shell's children too), and the result is only reported once it has exited: the next run
 * can never overlap a previous one that is still dying.
 */
import { spawn } from 'node:child_process';
import { OutputTail, exitStatus, timedOut } from './output.js';
import { effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

/** Consul's default for script and Docker checks (HTTP and TCP have 10 s). */
export const SCRIPT_CHECK_TIMEOUT_MS = 30_000;

/** How long a killed command's pipes may stay open after it exited (a grandchild that left the group). */
const DRAIN_AFTER_EXIT_MS = 1000;

export interface ScriptCheckDefinition {
  /** Run directly, args[0] looked up in PATH. Wins over `script` when both are set, as in Consul. */
  readonly args?: readonly string[] | undefined;
  /** Run with `shell -c`. */
  readonly script?: string | undefined;
  readonly timeoutMs: number;
  readonly outputMaxSize?: number | undefined;
  /** Environment of the command (default: the agent's). */
  readonly env?: NodeJS.ProcessEnv;
}

/** The command line a definition runs, or why it cannot run. */
export function scriptCommand(def: ScriptCheckDefinition, env: NodeJS.ProcessEnv = process.env): { file: string; args: string[] } | { error: string } {
  if (def.args !== undefined && def.args.length > 0) {
    const [file, ...args] = def.args;
    if (!file) return { error: 'the check\'s Args start with an empty command name' };
    return { file, args };
  }
  if (def.script !== undefined && def.script !== '') return { file: env.SHELL || '/bin/sh', args: ['-c', def.script] };
  return { error: 'the check has neither Args nor Script to run' };
}

/** Go's wording for a command that could not start, as Consul reports it. */
function startError(file: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return file.includes('/') ? `fork/exec ${file}: no such file or directory` : `exec: "${file}": executable file not found in $PATH`;
  if (err.code === 'EACCES') return `fork/exec ${file}: permission denied`;
  return `fork/exec ${file}: ${err.message}`;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Never rejects. */
export function runScriptCheck(def: ScriptCheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const cmd = scriptCommand(def, def.env);
  if ('error' in cmd) return Promise.resolve({ status: 'critical', output: cmd.error });
  if (signal?.aborted) return Promise.resolve({ status: 'critical', output: 'check stopped' });
  const timeoutMs = effectiveTimeoutMs(def.timeoutMs);
  const tail = new OutputTail(def.outputMaxSize);
  return new Promise<CheckResult>((resolve) => {
    // What ended it early (a timeout or an abort); the result once the process has gone.
    let cut: CheckResult | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drain: NodeJS.Timeout | undefined;
    let settled = false;
    const child = spawn(cmd.file, cmd.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: def.env ?? process.env });
    const finish = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve(r);
    };
    const result = (): CheckResult => {
      if (cut) return cut;
      return { status: exitStatus(exit?.code), output: tail.text() };
    };
    const stop = (r: CheckResult): void => {
      if (cut || settled) return;
      cut = r;
      killGroup(child.pid);
    };
    function onAbort(): void {
      stop({ status: 'critical', output: 'check stopped' });
    }
    const timer = setTimeout(() => stop(timedOut(timeoutMs, tail)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => tail.write(c));
    child.stderr.on('data', (c: Buffer) => tail.write(c));
    child.once('error', (err: NodeJS.ErrnoException) => finish({ status: 'critical', output: startError(cmd.file, err) }));
    child.once('exit', (code, sig) => {
      exit = { code, signal: sig };
      // A process it started may still hold the pipes: take what is written for a moment, then stop listening.
      drain = setTimeout(() => finish(result()), DRAIN_AFTER_EXIT_MS);
    });
    child.once('close', () => {
      if (exit !== undefined) finish(result());
    });
  });
}
