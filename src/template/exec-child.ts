/**
 * consul-template's `-exec`: one child process supervised next to the templates. It starts once every
 * template has rendered, is told about later changes (its reload signal, or a restart when it has none),
 * receives the signals its supervisor passes on, and its exit ends the supervisor with its exit code.
 *
 * The child runs as `sh -c <command>` in its own process group, and every signal goes to the whole
 * group: `sh` does not always exec the last command, and a signal to the shell alone would not reach
 * nginx behind it. The shell itself traps every signal it may get but SIGKILL (with a handler, not by
 * ignoring them: an ignored signal would stay ignored in the command it starts), so a reload signal
 * reaches the command without ending the shell that waits for it, and after a kill signal the shell
 * ends only once its command has: nginx shutting down gracefully still holds its ports, and a
 * restart must not start the next one before that.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import { longTimeout } from '../core/clock.js';
import type { Timer } from '../core/clock.js';
import { SwitchyardError } from '../core/errors.js';

export interface ExecSettings {
  readonly command: string;
  /** Sent on a change; without it the child is restarted (consul-template's default). */
  readonly reloadSignal?: NodeJS.Signals;
  /** Asks the child to stop (default SIGINT, as consul-template); SIGKILL follows after killTimeoutMs. */
  readonly killSignal: NodeJS.Signals;
  readonly killTimeoutMs: number;
  /** A change is passed on after a random delay below this, so many supervisors do not reload at once. */
  readonly splayMs: number;
}

/** `SIGHUP`, `sighup` or `HUP` → 'SIGHUP'; anything else is refused with the name of the setting. */
export function parseSignal(what: string, v: string): NodeJS.Signals {
  const name = v.trim().toUpperCase();
  const full = name.startsWith('SIG') ? name : `SIG${name}`;
  if (!Object.hasOwn(constants.signals, full) || full === 'SIGKILL' || full === 'SIGSTOP') {
    throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `${what}: ${JSON.stringify(v)} is not a signal that can be sent and caught (e.g. SIGHUP, SIGTERM, SIGUSR1)`);
  }
  return full as NodeJS.Signals;
}

/** The shell's convention for an exit: the code, or 128 + the number of the signal that ended it. */
function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal === null ? undefined : constants.signals[signal];
  return n === undefined ? 1 : 128 + n;
}

export interface ExecChildOptions {
  readonly settings: ExecSettings;
  readonly logger: Logger;
  /** Added to the inherited environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly random?: () => number;
}

/** Signals passed on to a running child besides its reload signal (see the CLI): the wrapping shell survives them. */
export const PASSED_ON: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

export class ExecChild {
  #settings: ExecSettings;
  readonly #log: Logger;
  readonly #env: Readonly<Record<string, string>> | undefined;
  readonly #random: () => number;
  #child: ChildProcess | undefined;
  /** Set while we are the ones ending the child (restart, stop): its exit is then ours, not its own. */
  #ending: Promise<void> | undefined;
  #splay: Timer | undefined;
  #stopped = false;
  readonly #exited: Promise<number>;
  #resolveExited!: (code: number) => void;

  constructor(opts: ExecChildOptions) {
    this.#settings = opts.settings;
    this.#log = opts.logger;
    this.#env = opts.env;
    this.#random = opts.random ?? Math.random;
    this.#exited = new Promise((resolve) => {
      this.#resolveExited = resolve;
    });
  }

  get settings(): ExecSettings {
    return this.#settings;
  }

  get started(): boolean {
    return this.#child !== undefined;
  }

  /** Resolves with the exit code when the child ends by itself (not when restarted or stopped here). */
  get exited(): Promise<number> {
    return this.#exited;
  }

  start(): void {
    if (this.#stopped || this.#child) return;
    const { command, reloadSignal, killSignal } = this.#settings;
    const trapped = [...new Set<NodeJS.Signals>([...PASSED_ON, 'SIGINT', killSignal, ...(reloadSignal ? [reloadSignal] : [])])].map((sig) => sig.slice(3));
    const child = spawn('sh', ['-c', `trap : ${trapped.join(' ')}\n${command}`], { detached: true, stdio: 'inherit', ...(this.#env ? { env: { ...process.env, ...this.#env } } : {}) });
    this.#child = child;
    this.#log.info({ command, pid: child.pid }, 'exec: child started');
    child.once('error', (err) => this.#log.error({ command, err: err.message }, 'exec: child could not be started'));
    child.once('exit', (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      const c = exitCode(code, signal);
      if (this.#ending) {
        this.#log.info({ pid: child.pid, code, signal }, 'exec: child ended as asked');
        return;
      }
      this.#log.warn({ command, pid: child.pid, code, signal }, 'exec: child exited: stopping with its exit code');
      this.#resolveExited(c);
    });
  }

  /** The templates changed: the reload signal, or a restart, after the splay. Several changes within it make one. */
  changed(): void {
    if (this.#stopped || !this.#child || this.#splay) return;
    const delay = this.#settings.splayMs > 0 ? this.#random() * this.#settings.splayMs : 0;
    this.#splay = longTimeout(() => {
      this.#splay = undefined;
      void this.#passOn();
    }, delay);
  }

  async #passOn(): Promise<void> {
    if (this.#stopped || !this.#child) return;
    const { reloadSignal } = this.#settings;
    if (reloadSignal) {
      this.#log.info({ pid: this.#child.pid, signal: reloadSignal }, 'exec: templates changed: signalling the child');
      this.signal(reloadSignal);
      return;
    }
    this.#log.info({ pid: this.#child.pid }, 'exec: templates changed: restarting the child');
    await this.restart();
  }

  /** Stops the child and starts it again, with new settings if given. */
  async restart(settings?: ExecSettings): Promise<void> {
    await this.#end();
    if (settings) this.#settings = settings;
    this.start();
  }

  /** Passes a signal on to the child's process group. */
  signal(sig: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // The group is gone already (the child is exiting): its exit is handled above.
    }
  }

  /** Ends the child for good: the kill signal, then SIGKILL to the group after the kill timeout. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#splay?.cancel();
    this.#splay = undefined;
    await this.#end();
  }

  #end(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.#ending ?? Promise.resolve();
    if (this.#ending) return this.#ending;
    const { killSignal, killTimeoutMs } = this.#settings;
    this.#ending = new Promise<void>((resolve) => {
      const kill = longTimeout(() => {
        this.#log.warn({ pid: child.pid, killTimeoutMs }, 'exec: child still running after the kill timeout: SIGKILL');
        this.signal('SIGKILL');
      }, killTimeoutMs);
      child.once('exit', () => {
        kill.cancel();
        resolve();
      });
      this.signal(killSignal);
    }).finally(() => {
      this.#ending = undefined;
    });
    return this.#ending;
  }
}
