/**
 * What registrator needs from the Docker Engine API (list running containers, inspect one, follow
 * container events), behind a small interface so the sync loop can be tested without a daemon.
 * The real one uses dockerode, on the daemon core/docker-endpoint.ts finds.
 */
import Docker from 'dockerode';
import { describeDockerError, dockerEndpoint, dockerStatusOf } from '../core/docker-endpoint.js';
import type { ContainerInspect } from './types.js';

export { describeDockerError, dockerEndpoint };

export interface DockerEvent {
  /** start, die, stop, kill, health_status: healthy, … */
  readonly action: string;
  readonly id: string;
  readonly exitCode?: string | undefined;
  /** kill events: the signal sent, as a number ("15"). */
  readonly signal?: string | undefined;
}

export interface DockerSource {
  /** Where the daemon is, for logs and errors. */
  readonly endpoint: string;
  ping(): Promise<void>;
  /** IDs of running containers. */
  listRunning(): Promise<string[]>;
  /** undefined when the container no longer exists. */
  inspect(id: string): Promise<ContainerInspect | undefined>;
  /**
   * Subscribes to container events; resolves once subscribed. `onEnd` is called once when the
   * stream ends or fails (not when `signal` aborts it).
   */
  subscribe(onEvent: (e: DockerEvent) => void, onEnd: (err?: Error) => void, signal: AbortSignal): Promise<void>;
}

/** The container events the sync loop reacts to (any of them triggers a reconcile). */
export const WATCHED_EVENTS = ['start', 'die', 'stop', 'kill', 'health_status'] as const;


export class DockerodeSource implements DockerSource {
  readonly endpoint: string;
  readonly #api: Docker;
  readonly #events: Docker;

  constructor(env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000) {
    const { endpoint, socketPath } = dockerEndpoint(env);
    this.endpoint = endpoint;
    const base = socketPath ? { socketPath } : {};
    this.#api = new Docker({ ...base, timeout: timeoutMs });
    // The event stream idles for as long as nothing happens: no timeout on that one.
    this.#events = new Docker(base);
  }

  async ping(): Promise<void> {
    await this.#api.ping();
  }

  async listRunning(): Promise<string[]> {
    const list = await this.#api.listContainers({ filters: { status: ['running'] } });
    return list.map((c) => c.Id);
  }

  async inspect(id: string): Promise<ContainerInspect | undefined> {
    try {
      return (await this.#api.getContainer(id).inspect()) as unknown as ContainerInspect;
    } catch (err) {
      if (dockerStatusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async subscribe(onEvent: (e: DockerEvent) => void, onEnd: (err?: Error) => void, signal: AbortSignal): Promise<void> {
    const stream = await this.#events.getEvents({
      filters: { type: ['container'], event: [...WATCHED_EVENTS] },
      abortSignal: signal,
    } as Docker.GetEventsOptions);
    let buf = '';
    let ended = false;
    const destroy = (): void => (stream as unknown as { destroy?: () => void }).destroy?.();
    const end = (err?: Error): void => {
      if (ended) return;
      ended = true;
      // The signal outlives this stream (the next subscription uses it too).
      signal.removeEventListener('abort', destroy);
      if (!signal.aborted) onEnd(err);
    };
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) {
          const e = parseEvent(line);
          if (e) onEvent(e);
        }
      }
    });
    stream.on('end', () => end());
    stream.on('close', () => end());
    stream.on('error', (err: Error) => end(err));
    signal.addEventListener('abort', destroy, { once: true });
  }
}

export function parseEvent(line: string): DockerEvent | undefined {
  try {
    const j = JSON.parse(line) as { status?: string; Action?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    const action = j.Action ?? j.status ?? '';
    const id = j.Actor?.ID ?? j.id ?? '';
    if (!action || !id) return undefined;
    return { action, id, exitCode: j.Actor?.Attributes?.exitCode, signal: j.Actor?.Attributes?.signal };
  } catch {
    return undefined;
  }
}
