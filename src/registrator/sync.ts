/**
 * The sync loop: reconciles the whole state, never deltas. Every pass re-lists running containers,
 * maps each (pure mapping, inspect answers cached per running container), and brings the registry
 * in line: registers what is missing or changed, deregisters the services of containers that are
 * gone (per -deregister), and with -cleanup removes dangling registrator-made services of this host.
 * Any Docker event only triggers a pass, so a missed event heals on the next one; a failed pass
 * (registry or Docker unreachable) is retried with backoff, forever, and nothing is forgotten.
 * With -healthcheck, each pass also pushes the Docker health status of containers whose status
 * changed (health_status event) or whose TTL is due for a refresh (see health.ts).
 */
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';
import { isRejection } from './consul.js';
import type { RegistryBackend, RegisteredService } from './consul.js';
import { describeDockerError } from './docker.js';
import type { DockerSource } from './docker.js';
import { mapContainer, parseServiceId, registrationBody } from './mapping.js';
import { checkFromHealth } from './health.js';
import type { ContainerInspect, HostContext, MappingConfig, Service } from './types.js';
import { longTimeout } from '../core/clock.js';
import type { Timer } from '../core/clock.js';
import { sleep } from '../core/sleep.js';

export type DeregisterPolicy = 'always' | 'on-success';

/** Docker's default wait between the stop signal and SIGKILL (s). */
const DOCKER_STOP_TIMEOUT_S = 10;
/**
 * How long past a container's stop timeout it may take to die before it counts as running again. Generous,
 * because `docker stop -t 60` waits longer than the container's own timeout says, and a container sent
 * back traffic while it drains fails requests; one that ignored the signal only stays out of the pool.
 */
const STOP_GRACE_MS = 30_000;
const SIGKILL = 9;
const SIGTERM = 15;

/** A container's StopSignal ("SIGQUIT", "QUIT", "3"; unset: SIGTERM) as a number, or undefined when unknown. */
export function stopSignalNumber(name: string | null | undefined): number | undefined {
  if (!name) return SIGTERM;
  if (/^\d+$/.test(name)) return Number(name);
  const upper = name.toUpperCase();
  return (osConstants.signals as Record<string, number | undefined>)[upper.startsWith('SIG') ? upper : `SIG${upper}`];
}

/** Whether a kill event's signal stops the container: SIGKILL, SIGTERM, or its own StopSignal (not a reload's SIGHUP). */
export function isStopSignal(signal: number, stopSignal: string | null | undefined): boolean {
  return signal === SIGKILL || signal === SIGTERM || signal === stopSignalNumber(stopSignal);
}

export interface ReconcilerOptions {
  docker: DockerSource;
  registry: RegistryBackend;
  mapping: MappingConfig;
  host: Omit<HostContext, 'networkContainer'>;
  deregister: DeregisterPolicy;
  cleanup: boolean;
  logger: Logger;
  /** Backoff between failed passes (ms): base, doubled up to max. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long past its stop timeout a signalled container stays deregistered (default 30 s; see #draining). */
  stopGraceMs?: number;
}

export interface PassRequest {
  /** Re-register every known service even if unchanged (startup, -resync). */
  full?: boolean;
  /** Also remove dangling services (only when -cleanup is set). */
  cleanup?: boolean;
  reason?: string;
}

interface Owned {
  readonly containerName: string;
  readonly services: readonly Service[];
}

export class SyncError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SyncError';
  }
}

const short = (id: string): string => id.slice(0, 12);

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #log: Logger;
  /** Containers whose services this process registers: container ID → services. */
  readonly #owned = new Map<string, Owned>();
  /** serviceId → body JSON the registry last accepted. */
  readonly #registered = new Map<string, string>();
  /** serviceId → body JSON the registry refused (4xx): not retried until it changes or a full pass. */
  readonly #rejected = new Map<string, string>();
  /** serviceId → container ID: deregistrations still to do (survive registry outages). */
  readonly #pendingDeregister = new Map<string, string>();
  readonly #inspectCache = new Map<string, ContainerInspect>();
  /** -healthcheck: check ID → what was last pushed and when (performance.now(): a wall clock stepped back must not hold refreshes, and TTLs, for that long). */
  readonly #healthPushed = new Map<string, { key: string; at: number }>();
  /** Containers with a health_status event since their last push. */
  readonly #healthDirty = new Set<string>();
  #healthTimer: Timer | undefined;

  #pending: PassRequest | undefined;
  readonly #died = new Set<string>();
  /** Containers sent a signal that may stop them (kill events): ID → the signal's number and when (performance.now()). */
  readonly #signalled = new Map<string, { signal: number; at: number }>();
  #drainTimer: Timer | undefined;
  #running: Promise<void> | undefined;
  #failures = 0;
  #passes = 0;
  readonly #stop = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];

  constructor(o: ReconcilerOptions) {
    this.#o = o;
    this.#log = o.logger;
  }

  /** Completed passes (successful ones). */
  get passes(): number {
    return this.#passes;
  }

  /** Service IDs this process currently keeps registered (for tests and logs). */
  ownedServiceIds(): string[] {
    return [...this.#owned.values()].flatMap((c) => c.services.map((s) => s.id)).sort();
  }

  /** Asks for a pass; requests arriving while one runs are merged into the next one. */
  /**
   * Docker's list can still show a container as running right after its die event (seen with a
   * forced removal), so a died container counts as stopped until a start event says otherwise.
   */
  noteEvent(action: string, id: string, signal?: string): void {
    if (action === 'die' || action === 'destroy') {
      this.#died.add(id);
      this.#signalled.delete(id);
    } else if (action === 'start') {
      this.#died.delete(id);
      this.#signalled.delete(id);
    } else if (action === 'kill') {
      const n = Number(signal);
      if (Number.isInteger(n) && n > 0) this.#signalled.set(id, { signal: n, at: performance.now() });
    } else if (action.startsWith('health_status')) this.#healthDirty.add(id);
  }

  /**
   * Running containers that were sent their stop signal (`docker stop`) or SIGKILL and have not died
   * yet: their services go now, while the process is still finishing its requests, so a balancer
   * following the registry stops sending new ones before the container's port closes. Registrator
   * waits for the die event, when the port has already gone. A container still running past its
   * stop timeout (plus -stop-grace) ignored the signal: it counts as running again. Only with
   * -deregister always: under on-success the exit code decides, and it is not known yet.
   */
  #draining(runningIds: readonly string[]): Set<string> {
    const out = new Set<string>();
    if (this.#o.deregister !== 'always' || this.#signalled.size === 0) return out;
    const now = performance.now();
    let next = Infinity;
    for (const [cid, s] of [...this.#signalled]) {
      if (!runningIds.includes(cid)) {
        if (!this.#owned.has(cid)) this.#signalled.delete(cid);
        continue;
      }
      const info = this.#inspectCache.get(cid);
      if (!isStopSignal(s.signal, info?.Config.StopSignal)) {
        this.#signalled.delete(cid);
        continue;
      }
      const until = s.at + (info?.Config.StopTimeout ?? DOCKER_STOP_TIMEOUT_S) * 1000 + (this.#o.stopGraceMs ?? STOP_GRACE_MS);
      if (now >= until) {
        this.#signalled.delete(cid);
        this.#log.warn({ container: short(cid), signal: s.signal }, 'container still running past its stop timeout after a stop signal: registering its services again');
        continue;
      }
      out.add(cid);
      next = Math.min(next, until);
    }
    this.#drainTimer?.cancel();
    this.#drainTimer = next === Infinity ? undefined : longTimeout(() => this.request({ reason: 'stop timeout' }), Math.max(50, next - now), { unref: true });
    return out;
  }

  request(req: PassRequest = {}): void {
    if (this.#stop.signal.aborted) return;
    const p = this.#pending;
    this.#pending = {
      full: Boolean(p?.full || req.full),
      cleanup: Boolean(p?.cleanup || req.cleanup),
      reason: p?.reason ?? req.reason ?? 'event',
    };
    if (!this.#running) this.#kick();
  }

  #kick(): void {
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
      if (this.#pending && !this.#stop.signal.aborted) this.#kick();
      else for (const w of this.#idleWaiters.splice(0)) w();
    });
  }

  /** Resolves when no pass is running or pending. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    this.#healthTimer?.cancel();
    this.#drainTimer?.cancel();
    await this.#running;
  }

  async #loop(): Promise<void> {
    while (this.#pending && !this.#stop.signal.aborted) {
      const req = this.#pending;
      this.#pending = undefined;
      try {
        await this.pass(req);
        this.#passes++;
        if (this.#failures > 0) this.#log.info({ failedPasses: this.#failures }, 'sync recovered');
        this.#failures = 0;
      } catch (err) {
        if (this.#stop.signal.aborted) return;
        this.#failures++;
        const base = this.#o.retryBaseMs ?? 500;
        const delay = Math.min(this.#o.retryMaxMs ?? 15_000, base * 2 ** Math.min(this.#failures - 1, 16));
        this.#log.warn({ err: (err as Error).message, attempt: this.#failures, retryInMs: delay }, 'sync failed: will retry');
        // Keep what this pass was asked to do for the retry, plus anything requested meanwhile.
        const later = this.#pending as PassRequest | undefined;
        const merged: PassRequest = {
          full: Boolean(req.full || later?.full),
          cleanup: Boolean(req.cleanup || later?.cleanup),
          reason: 'retry',
        };
        this.#pending = merged;
        await sleep(delay, this.#stop.signal);
      }
    }
  }

  /** One reconcile pass. Throws when Docker or the registry could not be reached (state is kept for the retry). */
  async pass(req: PassRequest = {}): Promise<void> {
    const { docker, registry } = this.#o;
    const signal = this.#stop.signal;
    let listed: string[];
    try {
      listed = await docker.listRunning();
    } catch (err) {
      throw new SyncError(`cannot list containers at ${docker.endpoint}: ${describeDockerError(err)}`, { cause: err });
    }
    // Once the list no longer shows a died container, Docker has caught up and the note can go.
    for (const id of [...this.#died]) if (!listed.includes(id)) this.#died.delete(id);
    const draining = this.#draining(listed.filter((id) => !this.#died.has(id)));
    const runningIds = listed.filter((id) => !this.#died.has(id) && !draining.has(id));
    const running = new Set(runningIds);
    const dockerErrors: string[] = [];

    // 1. Containers that stopped running, or are stopping: their services go (per -deregister).
    for (const [cid, owned] of [...this.#owned]) {
      if (running.has(cid)) continue;
      if (draining.has(cid)) {
        for (const s of owned.services) this.#pendingDeregister.set(s.id, cid);
        this.#log.info({ container: short(cid), signal: this.#signalled.get(cid)?.signal, services: owned.services.map((s) => s.id) }, 'container is stopping: deregistering its services before it exits');
        this.#owned.delete(cid);
        continue;
      }
      let decision: 'remove' | 'keep' | 'still-running';
      try {
        decision = await this.#shouldRemove(cid);
      } catch (err) {
        dockerErrors.push(`inspect ${short(cid)}: ${describeDockerError(err)}`);
        continue;
      }
      if (decision === 'still-running') continue;
      if (decision === 'remove') {
        for (const s of owned.services) this.#pendingDeregister.set(s.id, cid);
      } else {
        this.#log.info({ container: short(cid), services: owned.services.map((s) => s.id) }, 'container exited with a failure: leaving its services registered (-deregister on-success)');
      }
      this.#owned.delete(cid);
      this.#inspectCache.delete(cid);
    }
    for (const cid of [...this.#inspectCache.keys()]) if (!running.has(cid) && !draining.has(cid)) this.#inspectCache.delete(cid);

    // 2. Running containers: what should be registered.
    for (const cid of runningIds) {
      let info = this.#inspectCache.get(cid);
      let fresh = false;
      if (!info) {
        try {
          info = await docker.inspect(cid);
        } catch (err) {
          dockerErrors.push(`inspect ${short(cid)}: ${describeDockerError(err)}`);
          continue;
        }
        if (!info || info.State?.Running === false) continue;
        this.#inspectCache.set(cid, info);
        fresh = true;
      }
      let networkContainer: ContainerInspect | undefined;
      const nm = info.HostConfig?.NetworkMode ?? '';
      if (nm.startsWith('container:')) {
        try {
          networkContainer = await docker.inspect(nm.slice('container:'.length));
        } catch (err) {
          this.#log.warn({ container: short(cid), err: describeDockerError(err) }, 'cannot inspect network container');
        }
      }
      const { services, ignored } = mapContainer(info, this.#o.mapping, { ...this.#o.host, networkContainer });
      if (fresh) {
        for (const i of ignored) this.#log.info({ container: short(cid), port: i.port, reason: i.reason }, 'ignored');
        if (services.length === 0 && ignored.length === 0) this.#log.info({ container: short(cid) }, 'ignored: no published ports');
      }
      const prev = this.#owned.get(cid);
      for (const s of prev?.services ?? []) if (!services.some((n) => n.id === s.id)) this.#pendingDeregister.set(s.id, cid);
      const containerName = info.Name.replace(/^\//, '');
      this.#owned.set(cid, { containerName, services });
    }

    // 3. The registry.
    const desired = new Map<string, Service>();
    for (const c of this.#owned.values()) for (const s of c.services) desired.set(s.id, s);
    for (const id of [...this.#pendingDeregister.keys()]) if (desired.has(id)) this.#pendingDeregister.delete(id);

    let existing: Map<string, RegisteredService>;
    try {
      existing = await registry.services(signal);
    } catch (err) {
      throw new SyncError(`registry ${registry.address} unreachable: ${(err as Error).message}`, { cause: err });
    }
    for (const [id, cid] of [...this.#pendingDeregister]) {
      if (existing.has(id)) {
        try {
          await registry.deregister(id, signal);
        } catch (err) {
          throw new SyncError(`deregister ${id}: ${(err as Error).message}`, { cause: err });
        }
        this.#log.info({ container: short(cid), service: id }, 'removed');
      }
      this.#pendingDeregister.delete(id);
      this.#registered.delete(id);
      this.#rejected.delete(id);
      for (const k of [...this.#healthPushed.keys()]) if (k.startsWith(`service:${id}:`)) this.#healthPushed.delete(k);
    }
    for (const s of desired.values()) {
      const body = registrationBody(s);
      const key = JSON.stringify(body);
      const inRegistry = existing.has(s.id);
      if (!req.full && inRegistry && this.#registered.get(s.id) === key) continue;
      if (!req.full && this.#rejected.get(s.id) === key) continue;
      try {
        await registry.register(body, signal);
      } catch (err) {
        if (isRejection(err)) {
          this.#rejected.set(s.id, key);
          this.#log.error({ container: short(s.origin.containerId), service: s.id, err: (err as Error).message }, 'register failed: the registry refused the registration');
          continue;
        }
        throw new SyncError(`register ${s.id}: ${(err as Error).message}`, { cause: err });
      }
      const known = this.#registered.has(s.id) && inRegistry;
      this.#registered.set(s.id, key);
      this.#rejected.delete(s.id);
      if (known) this.#log.debug({ service: s.id }, 'refreshed');
      else this.#log.info({ container: short(s.origin.containerId), service: s.id, name: s.name, address: s.ip, port: s.port }, 'added');
    }

    // 4. -cleanup: registrator-made services of this host whose (name, container name) is not known.
    if (req.cleanup && this.#o.cleanup) {
      const pairs = new Set<string>();
      for (const c of this.#owned.values()) for (const s of c.services) pairs.add(`${s.name}\u0000${c.containerName}`);
      for (const ext of existing.values()) {
        if (desired.has(ext.id)) continue;
        const parsed = parseServiceId(ext.id);
        if (!parsed || parsed.hostname !== this.#o.host.hostname) continue;
        if (pairs.has(`${ext.name}\u0000${parsed.containerName}`)) continue;
        try {
          await registry.deregister(ext.id, signal);
        } catch (err) {
          throw new SyncError(`cleanup: deregister ${ext.id}: ${(err as Error).message}`, { cause: err });
        }
        this.#log.info({ service: ext.id }, 'dangling service removed (-cleanup)');
      }
    }

    await this.#pushHealth(dockerErrors, signal);
    if (dockerErrors.length > 0) throw new SyncError(`Docker at ${docker.endpoint}: ${dockerErrors.join('; ')}`);
    this.#log.debug({ reason: req.reason, containers: runningIds.length, services: desired.size }, 'synced');
  }

  /**
   * -healthcheck: pushes the Docker health status of every owned container whose status changed
   * (event), that was never pushed (new registration), or whose TTL is due for a refresh; then
   * arms a timer for the next refresh.
   */
  async #pushHealth(dockerErrors: string[], signal: AbortSignal): Promise<void> {
    const now = performance.now();
    let next = Infinity;
    for (const [cid, owned] of this.#owned) {
      const withHealth = owned.services.filter((s) => s.health !== undefined && this.#registered.has(s.id));
      if (withHealth.length === 0) continue;
      const due = this.#healthDirty.has(cid) || withHealth.some((s) => {
        const p = this.#healthPushed.get(s.health?.checkId ?? '');
        return p === undefined || now - p.at >= (s.health?.refreshMs ?? 0);
      });
      if (!due) {
        for (const s of withHealth) next = Math.min(next, (this.#healthPushed.get(s.health?.checkId ?? '')?.at ?? now) + (s.health?.refreshMs ?? 0));
        continue;
      }
      this.#healthDirty.delete(cid);
      let info: ContainerInspect | undefined;
      try {
        info = await this.#o.docker.inspect(cid);
      } catch (err) {
        dockerErrors.push(`inspect ${short(cid)} for its health: ${describeDockerError(err)}`);
        this.#healthDirty.add(cid);
        continue;
      }
      if (!info) continue;
      const { status, output } = checkFromHealth(info.State?.Health);
      for (const s of withHealth) {
        const spec = s.health as NonNullable<Service['health']>;
        const key = `${status}\u0000${output}`;
        const before = this.#healthPushed.get(spec.checkId);
        try {
          await this.#o.registry.updateCheck(spec.checkId, status, output, signal);
        } catch (err) {
          // The check may be gone with a registry that lost its state: the next pass registers again.
          this.#registered.delete(s.id);
          throw new SyncError(`health check ${spec.checkId}: ${(err as Error).message}`, { cause: err });
        }
        if (before?.key !== key) this.#log.info({ container: short(cid), check: spec.checkId, status, docker: info.State?.Health?.Status ?? 'none' }, 'docker health pushed');
        const at = performance.now();
        this.#healthPushed.set(spec.checkId, { key, at });
        next = Math.min(next, at + spec.refreshMs);
      }
    }
    this.#healthTimer?.cancel();
    this.#healthTimer = undefined;
    if (next !== Infinity && !signal.aborted) {
      this.#healthTimer = longTimeout(() => this.request({ reason: 'health refresh' }), Math.max(100, next - performance.now()), { unref: true });
    }
  }

  async #shouldRemove(cid: string): Promise<'remove' | 'keep' | 'still-running'> {
    if (this.#o.deregister === 'always') return 'remove';
    const c = await this.#o.docker.inspect(cid);
    // Already removed (e.g. --rm): its exit code is gone.
    if (!c) return 'remove';
    if (c.State?.Running) return 'still-running';
    const code = c.State?.ExitCode ?? 0;
    // Exit 0, or killed by a signal (bit 128 set).
    if (code === 0 || (code & 128) === 128) return 'remove';
    return 'keep';
  }
}
