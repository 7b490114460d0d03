/**
 * Consul's Docker check: run a command inside a running container through the Engine API's exec
 * (`DockerContainerID` with `Args`, or `Script` run by `Shell -c`, default /bin/sh); exit 0 is
 * passing, 1 warning, anything else critical. Output is the last OutputMaxSize bytes of stdout and
 * stderr. Consul's own has no timeout (a hung exec holds the check forever); this one gives up after
 * the check's Timeout (default 30 s). The engine API cannot kill an exec, so a command that hangs
 * keeps running in the container until it ends.
 */
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { describeDockerError, dockerEndpoint, dockerStatusOf } from '../core/docker-endpoint.js';
import { OutputTail, exitStatus, timedOut } from './output.js';
import { SCRIPT_CHECK_TIMEOUT_MS } from './script-check.js';
import { effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

export interface DockerCheckDefinition {
  readonly containerId: string;
  readonly args?: readonly string[] | undefined;
  readonly script?: string | undefined;
  /** For `script` (default /bin/sh). */
  readonly shell?: string | undefined;
  readonly timeoutMs: number;
  readonly outputMaxSize?: number | undefined;
}

/** The part of the Engine API a Docker check uses: start an exec, stream its output, read its exit code. */
export interface DockerExec {
  /** Resolves with the exit code once the command ended; output goes to `sink`. Rejects with a message fit for the check's output. */
  run(containerId: string, cmd: readonly string[], sink: (chunk: Buffer) => void, signal: AbortSignal): Promise<number>;
}

/** dockerode on the daemon core/docker-endpoint.ts finds; errors worded as Consul's Docker client words them. */
export class DockerodeExec implements DockerExec {
  readonly #docker: Docker;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const { socketPath } = dockerEndpoint(env);
    this.#docker = new Docker(socketPath ? { socketPath } : {});
  }

  async run(containerId: string, cmd: readonly string[], sink: (chunk: Buffer) => void, signal: AbortSignal): Promise<number> {
    let exec: Docker.Exec;
    try {
      exec = await this.#docker.getContainer(containerId).exec({ Cmd: [...cmd], AttachStdout: true, AttachStderr: true, abortSignal: signal } as Docker.ExecCreateOptions);
    } catch (err) {
      if (dockerStatusOf(err) === 404) throw new Error(`create exec failed for unknown container ${containerId}`);
      throw new Error(`create exec failed for container ${containerId}${dockerStatusOf(err) ? ` with status ${dockerStatusOf(err)}` : ''}: ${describeDockerError(err)}`);
    }
    let stream: NodeJS.ReadWriteStream;
    try {
      stream = await exec.start({ hijack: true, stdin: false, abortSignal: signal } as Docker.ExecStartOptions);
    } catch (err) {
      throw new Error(`start exec failed for container ${containerId}: ${describeDockerError(err)}`);
    }
    const out = new Writable({
      write(chunk: Buffer, _enc, cb): void {
        sink(chunk);
        cb();
      },
    });
    await new Promise<void>((resolve, reject) => {
      const destroy = (): void => (stream as unknown as { destroy(): void }).destroy();
      signal.addEventListener('abort', destroy, { once: true });
      const done = (err?: Error): void => {
        signal.removeEventListener('abort', destroy);
        if (err) reject(new Error(`reading exec output failed for container ${containerId}: ${err.message}`));
        else resolve();
      };
      stream.once('end', () => done());
      stream.once('close', () => done());
      stream.once('error', done);
      this.#docker.modem.demuxStream(stream, out, out);
    });
    if (signal.aborted) throw new Error('check stopped');
    try {
      const info = await exec.inspect({ abortSignal: signal } as Docker.ExecInspectOptions);
      if (info.ExitCode === null || info.ExitCode === undefined) throw new Error('the exec has no exit code');
      return info.ExitCode;
    } catch (err) {
      throw new Error(`inspect exec failed for container ${containerId}: ${describeDockerError(err)}`);
    }
  }
}

/** Never rejects. */
export async function runDockerCheck(def: DockerCheckDefinition, docker: DockerExec, signal?: AbortSignal): Promise<CheckResult> {
  const cmd = def.args !== undefined && def.args.length > 0 ? def.args : def.script ? [def.shell || '/bin/sh', '-c', def.script] : undefined;
  if (cmd === undefined) return { status: 'critical', output: 'the check has neither Args nor Script to run in the container' };
  const timeoutMs = effectiveTimeoutMs(def.timeoutMs || SCRIPT_CHECK_TIMEOUT_MS);
  const tail = new OutputTail(def.outputMaxSize);
  const ac = new AbortController();
  const abort = (): void => ac.abort();
  signal?.addEventListener('abort', abort, { once: true });
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    ac.abort();
  }, timeoutMs);
  try {
    const code = await docker.run(def.containerId, cmd, (c) => tail.write(c), ac.signal);
    return { status: exitStatus(code), output: tail.text() };
  } catch (err) {
    if (expired) return timedOut(timeoutMs, tail);
    return { status: 'critical', output: signal?.aborted ? 'check stopped' : (err as Error).message };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}
