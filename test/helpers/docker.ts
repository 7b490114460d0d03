/**
 * Test helpers for a real Docker engine (DOCKER_HOST or /var/run/docker.sock): availability,
 * the locally built busybox image (scripts/docker-test-image.sh, never pulled), and containers
 * that publish only on 127.0.0.1 and are always removed by ID.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { REPO } from './process.js';

export const TEST_IMAGE = process.env.SY_DOCKER_TEST_IMAGE ?? 'switchyard-test-busybox:2';

export function dockerClient(): Docker {
  return new Docker({ timeout: 30_000 });
}

/** True when a daemon answers within a few seconds. */
export async function dockerAvailable(): Promise<boolean> {
  try {
    const d = new Docker({ timeout: 3000 });
    await d.ping();
    return true;
  } catch {
    return false;
  }
}

/** Builds the test image if it is missing (idempotent script, no pulls). */
export async function ensureTestImage(): Promise<void> {
  try {
    await dockerClient().getImage(TEST_IMAGE).inspect();
    return;
  } catch {
    // build it below
  }
  await promisify(execFile)('bash', ['scripts/docker-test-image.sh', TEST_IMAGE], { cwd: REPO, timeout: 120_000 });
}

export interface RunOptions {
  name: string;
  env?: string[];
  labels?: Record<string, string>;
  /** Container ports to publish on 127.0.0.1 with a random host port (default ["80/tcp"]). */
  publish?: string[];
  cmd?: string[];
  /** Docker's HEALTHCHECK (as --health-cmd etc. set it): Test e.g. ['CMD-SHELL', 'test -f /www/health'], durations in ns. */
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
  /** Seconds `docker stop` waits before SIGKILL (docker run --stop-timeout). */
  stopTimeout?: number;
}

/** Starts containers and remembers them, so that `removeAll` can force-remove every one by ID. */
export class Containers {
  readonly docker = dockerClient();
  readonly ids = new Set<string>();

  async run(o: RunOptions): Promise<string> {
    const publish = o.publish ?? ['80/tcp'];
    const c = await this.docker.createContainer({
      name: o.name,
      Image: TEST_IMAGE,
      Env: o.env ?? [],
      Labels: o.labels ?? {},
      ...(o.cmd ? { Cmd: o.cmd } : {}),
      ...(o.healthcheck ? { Healthcheck: o.healthcheck } : {}),
      ...(o.stopTimeout !== undefined ? { StopTimeout: o.stopTimeout } : {}),
      ExposedPorts: Object.fromEntries(publish.map((p) => [p, {}])),
      HostConfig: { PortBindings: Object.fromEntries(publish.map((p) => [p, [{ HostIp: '127.0.0.1', HostPort: '' }]])) },
    });
    this.ids.add(c.id);
    await c.start();
    return c.id;
  }

  /** The host port Docker chose for a published container port. */
  async hostPort(id: string, port = '80/tcp'): Promise<number> {
    const info = await this.docker.getContainer(id).inspect();
    const b = info.NetworkSettings.Ports[port]?.[0];
    if (!b) throw new Error(`${id.slice(0, 12)}: ${port} is not published`);
    return Number(b.HostPort);
  }

  /** Runs a command in the container and waits for it; resolves with its exit code. */
  async exec(id: string, cmd: string[]): Promise<number> {
    const ex = await this.docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({});
    await new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
      stream.resume();
    });
    return (await ex.inspect()).ExitCode ?? -1;
  }

  /** docker kill -s <signal>. */
  async kill(id: string, signal: string): Promise<void> {
    await this.docker.getContainer(id).kill({ signal });
  }

  async stop(id: string): Promise<void> {
    await this.docker.getContainer(id).stop({ t: 5 });
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    this.ids.delete(id);
  }

  async removeAll(): Promise<void> {
    for (const id of [...this.ids]) await this.remove(id);
  }
}
