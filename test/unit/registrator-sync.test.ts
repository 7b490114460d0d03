// registrator's sync loop against a fake Docker and a fake registry: whole-state reconciling,
// -deregister, -cleanup, outages (retried forever, nothing lost), missed events, startup retries.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RegistryClientError } from '../../src/registry/api/client.js';
import type { RegisteredService, RegistryBackend } from '../../src/registrator/consul.js';
import type { DockerEvent, DockerSource } from '../../src/registrator/docker.js';
import { parseOptions } from '../../src/registrator/options.js';
import { StartupError, startRegistrator } from '../../src/registrator/run.js';
import { Reconciler } from '../../src/registrator/sync.js';
import type { DeregisterPolicy } from '../../src/registrator/sync.js';
import type { ContainerInspect } from '../../src/registrator/types.js';

const silent = pino({ level: process.env.SY_TEST_LOG ?? 'silent' });

class FakeDocker implements DockerSource {
  readonly endpoint = 'fake://docker';
  readonly containers = new Map<string, ContainerInspect>();
  down = false;
  /** Calls refused because the fake was down. */
  refusals = 0;
  inspects = 0;
  #subs: { onEvent: (e: DockerEvent) => void; onEnd: (err?: Error) => void }[] = [];

  run(name: string, hostPort: number, env: string[] = []): string {
    const id = `${name.padEnd(12, '0')}${'f'.repeat(52)}`;
    this.containers.set(id, {
      Id: id, Name: `/${name}`,
      Config: { Image: 'library/web:1', Env: env, Labels: {}, ExposedPorts: { '80/tcp': {} } },
      HostConfig: { NetworkMode: 'default' },
      NetworkSettings: { IPAddress: '172.17.0.2', Ports: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] }, Networks: {} },
      State: { Running: true, ExitCode: 0 },
    });
    this.emit({ action: 'start', id });
    return id;
  }

  exit(id: string, code: number, event = true): void {
    const c = this.containers.get(id);
    assert.ok(c);
    c.State = { Running: false, ExitCode: code };
    if (event) this.emit({ action: 'die', id, exitCode: String(code) });
  }

  remove(id: string): void {
    this.containers.delete(id);
  }

  emit(e: DockerEvent): void {
    for (const s of this.#subs) s.onEvent(e);
  }

  /** Ends every event stream (as a daemon restart would). */
  dropStreams(): void {
    const subs = this.#subs;
    this.#subs = [];
    for (const s of subs) s.onEnd(new Error('connection reset'));
  }

  get subscribers(): number {
    return this.#subs.length;
  }

  async ping(): Promise<void> {
    this.#refuse('connect ENOENT /var/run/docker.sock');
  }

  #refuse(message: string): void {
    if (!this.down) return;
    this.refusals++;
    throw new Error(message);
  }

  async listRunning(): Promise<string[]> {
    this.#refuse('connect ENOENT');
    return [...this.containers.values()].filter((c) => c.State?.Running).map((c) => c.Id);
  }

  async inspect(id: string): Promise<ContainerInspect | undefined> {
    this.#refuse('connect ENOENT');
    this.inspects++;
    const c = this.containers.get(id);
    return c ? structuredClone(c) : undefined;
  }

  async subscribe(onEvent: (e: DockerEvent) => void, onEnd: (err?: Error) => void, signal: AbortSignal): Promise<void> {
    this.#refuse('connect ENOENT');
    const gone = (): void => void (this.#subs = this.#subs.filter((s) => s !== sub));
    // As the real client does: the abort listener goes with the stream.
    const sub = { onEvent, onEnd: (err?: Error) => { signal.removeEventListener('abort', gone); onEnd(err); } };
    this.#subs.push(sub);
    signal.addEventListener('abort', gone, { once: true });
  }
}

class FakeRegistry implements RegistryBackend {
  readonly address = 'http://fake:8500';
  readonly services_ = new Map<string, Record<string, unknown>>();
  readonly calls: string[] = [];
  down = false;
  /** Calls refused because the fake was down. */
  refusals = 0;
  /** Refuse this many more calls, then come up (a registry that starts late). */
  downForCalls = 0;
  /** Service names the registry refuses with a 400. */
  readonly refuse = new Set<string>();

  #check(): void {
    if (this.downForCalls > 0) this.downForCalls--;
    else if (!this.down) return;
    this.refusals++;
    throw new RegistryClientError('PUT http://fake:8500: connect ECONNREFUSED');
  }

  async ping(): Promise<void> {
    this.#check();
  }

  async register(body: Record<string, unknown>): Promise<void> {
    this.#check();
    if (this.refuse.has(String(body.Name))) throw new RegistryClientError('Unexpected response code: 400 (Invalid service)', 400);
    this.calls.push(`register ${String(body.ID)}`);
    this.services_.set(String(body.ID), body);
  }

  async deregister(id: string): Promise<void> {
    this.#check();
    this.calls.push(`deregister ${id}`);
    this.services_.delete(id);
  }

  async services(): Promise<Map<string, RegisteredService>> {
    this.#check();
    return new Map([...this.services_].map(([id, b]) => [id, { id, name: String(b.Name) }]));
  }

  async updateCheck(checkId: string, status: string): Promise<void> {
    this.#check();
    this.calls.push(`check ${checkId} ${status}`);
  }

  ids(): string[] {
    return [...this.services_.keys()].sort();
  }
}

function setup(over: { deregister?: DeregisterPolicy; cleanup?: boolean; healthcheck?: boolean } = {}): { docker: FakeDocker; registry: FakeRegistry; r: Reconciler } {
  const docker = new FakeDocker();
  const registry = new FakeRegistry();
  const r = new Reconciler({
    docker, registry, logger: silent, deregister: over.deregister ?? 'always', cleanup: over.cleanup ?? false,
    host: { hostname: 'h1', hostnameIp: '192.0.2.1' },
    mapping: { hostIp: '127.0.0.1', internal: false, explicit: false, useIpFromLabel: '', forceTags: () => '', ...(over.healthcheck ? { healthcheck: true } : {}) },
    retryBaseMs: 5, retryMaxMs: 20,
  });
  return { docker, registry, r };
}

const until = async (cond: () => boolean, what: string, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 5));
  }
};

describe('registrator sync loop', () => {
  it('-healthcheck: pushes the Docker health status on registration, on health_status events and every probe interval', async () => {
    const { docker, registry, r } = setup({ healthcheck: true });
    const id = docker.run('api-1', 1);
    const c = docker.containers.get(id);
    assert.ok(c);
    c.Config.Healthcheck = { Test: ['CMD', 'true'], Interval: 1e9 };
    c.State = { Running: true, Health: { Status: 'starting', Log: [] } };
    await r.pass({ full: true });
    const check = 'check service:h1:api-1:80:docker-health';
    assert.deepEqual(registry.calls, ['register h1:api-1:80', `${check} critical`], 'starting is critical');
    registry.calls.length = 0;
    await r.pass();
    assert.deepEqual(registry.calls, [], 'nothing new: nothing pushed');
    c.State = { Running: true, Health: { Status: 'healthy', Log: [{ ExitCode: 0, Output: 'ok' }] } };
    r.noteEvent('health_status: healthy', id);
    await r.pass();
    assert.deepEqual(registry.calls, [`${check} passing`]);
    // Docker sends no event while the status holds: the TTL is refreshed every probe interval.
    registry.calls.length = 0;
    await until(() => registry.calls.includes(`${check} passing`), 'a refresh within the probe interval', 5000);
    c.State = { Running: true, Health: { Status: 'unhealthy', FailingStreak: 3, Log: [{ ExitCode: 1, Output: 'down' }] } };
    r.noteEvent('health_status: unhealthy', id);
    registry.calls.length = 0;
    await r.pass();
    assert.deepEqual(registry.calls, [`${check} critical`]);
    await r.stop();
  });

  it('-healthcheck: the refresh goes on when the wall clock steps back an hour (the TTL checks would expire meanwhile)', async (t) => {
    const { docker, registry, r } = setup({ healthcheck: true });
    const id = docker.run('api-1', 1);
    const c = docker.containers.get(id);
    assert.ok(c);
    c.Config.Healthcheck = { Test: ['CMD', 'true'], Interval: 3e8 };
    c.State = { Running: true, Health: { Status: 'healthy', Log: [{ ExitCode: 0, Output: 'ok' }] } };
    await r.pass({ full: true });
    const check = 'check service:h1:api-1:80:docker-health';
    assert.ok(registry.calls.includes(`${check} passing`));
    const wall = Date.now;
    Date.now = () => wall() - 3_600_000;
    t.after(() => {
      Date.now = wall;
    });
    registry.calls.length = 0;
    await until(() => registry.calls.includes(`${check} passing`), 'a refresh within the 0.3 s probe interval after the step', 3000);
    await r.stop();
  });

  it('registers running containers, deregisters on die (item 20: one PUT deregister per service)', async () => {
    const { docker, registry, r } = setup();
    const a = docker.run('web-1', 32768);
    docker.run('web-2', 32769);
    await r.pass({ full: true });
    assert.deepEqual(registry.ids(), ['h1:web-1:80', 'h1:web-2:80']);
    assert.deepEqual(registry.services_.get('h1:web-1:80'), { ID: 'h1:web-1:80', Name: 'web', Port: 32768, Address: '127.0.0.1' });
    docker.exit(a, 0);
    registry.calls.length = 0;
    await r.pass();
    assert.deepEqual(registry.calls, ['deregister h1:web-1:80']);
    assert.deepEqual(registry.ids(), ['h1:web-2:80']);
  });

  it('an ordinary pass does not re-PUT unchanged services; a full pass (-resync) does', async () => {
    const { docker, registry, r } = setup();
    docker.run('web-1', 1);
    await r.pass({ full: true });
    const inspects = docker.inspects;
    registry.calls.length = 0;
    await r.pass();
    assert.deepEqual(registry.calls, []);
    assert.equal(docker.inspects, inspects, 'running containers are inspected once');
    await r.pass({ full: true });
    assert.deepEqual(registry.calls, ['register h1:web-1:80']);
  });

  it('a missed event heals on the next pass, whatever triggers it', async () => {
    const { docker, registry, r } = setup();
    const a = docker.run('web-1', 1);
    await r.pass();
    docker.exit(a, 0, false); // no die event delivered
    docker.remove(a);
    const b = docker.run('web-2', 2);
    await r.pass();
    assert.deepEqual(registry.ids(), ['h1:web-2:80']);
    assert.deepEqual(r.ownedServiceIds(), ['h1:web-2:80']);
    assert.ok(b);
  });

  it('-deregister on-success: exit 0, killed by a signal (bit 128) or removed → deregister; a failure exit → keep', async () => {
    const { docker, registry, r } = setup({ deregister: 'on-success' });
    const ok = docker.run('ok', 1);
    const killed = docker.run('killed', 2);
    const failed = docker.run('failed', 3);
    const gone = docker.run('gone', 4);
    await r.pass();
    docker.exit(ok, 0);
    docker.exit(killed, 137);
    docker.exit(failed, 1);
    docker.exit(gone, 2);
    docker.remove(gone);
    await r.pass();
    assert.deepEqual(registry.ids(), ['h1:failed:80']);
    assert.deepEqual(r.ownedServiceIds(), []);
  });

  it('a registry outage is retried with backoff until it ends, and nothing is lost', async () => {
    const { docker, registry, r } = setup();
    const a = docker.run('web-1', 1);
    await r.pass();
    registry.down = true;
    docker.exit(a, 0);
    docker.run('web-2', 2);
    docker.run('web-3', 3);
    r.request({ reason: 'die' });
    // Counted in attempts, not time: three passes refused (the first and two backed-off retries).
    const refused = registry.refusals;
    await until(() => registry.refusals >= refused + 3, 'three refused attempts');
    assert.deepEqual(registry.ids(), ['h1:web-1:80'], 'nothing could be written');
    registry.down = false;
    await until(() => registry.ids().join() === 'h1:web-2:80,h1:web-3:80', 'registry caught up');
    await r.idle();
    await r.stop();
  });

  it('a registry that lost its state gets everything back on the next pass', async () => {
    const { docker, registry, r } = setup();
    docker.run('web-1', 1);
    docker.run('web-2', 2);
    await r.pass();
    registry.services_.clear();
    await r.pass();
    assert.deepEqual(registry.ids(), ['h1:web-1:80', 'h1:web-2:80']);
  });

  it('Docker unreachable: the pass fails and is retried; state is kept', async () => {
    const { docker, registry, r } = setup();
    docker.run('web-1', 1);
    docker.down = true;
    await assert.rejects(r.pass(), /cannot list containers at fake:\/\/docker/);
    const refused = docker.refusals;
    r.request();
    await until(() => docker.refusals >= refused + 2, 'two retried passes refused by Docker');
    docker.down = false;
    await until(() => registry.ids().length === 1, 'registered after Docker came back');
    await r.stop();
  });

  it('a registration the registry refuses (4xx) is logged and not retried until it changes or a full pass', async () => {
    const { docker, registry, r } = setup();
    docker.run('web-1', 1);
    registry.refuse.add('web');
    await r.pass();
    await r.pass();
    assert.deepEqual(registry.ids(), []);
    registry.refuse.clear();
    await r.pass({ full: true });
    assert.deepEqual(registry.ids(), ['h1:web-1:80']);
  });

  it('-cleanup removes dangling registrator services of this host only', async () => {
    const { docker, registry, r } = setup({ cleanup: true });
    docker.run('web-1', 1);
    for (const [id, name] of [
      ['h1:old-container:80', 'web'], // dangling: this host, unknown container
      ['h1:web-1:8080', 'web'], // same (name, container) as a known one: kept, as registrator does
      ['h2:old-container:80', 'web'], // another host
      ['api', 'api'], // not registrator-shaped
    ] as const) registry.services_.set(id, { ID: id, Name: name });
    await r.pass({ cleanup: false });
    assert.equal(registry.ids().length, 5, 'no cleanup unless asked');
    await r.pass({ cleanup: true });
    assert.deepEqual(registry.ids(), ['api', 'h1:web-1:80', 'h1:web-1:8080', 'h2:old-container:80']);
  });

  it('requests made during a pass are merged into one more pass', async () => {
    const { docker, registry, r } = setup();
    docker.run('web-1', 1);
    r.request();
    docker.run('web-2', 2);
    r.request();
    docker.run('web-3', 3);
    r.request();
    await r.idle();
    assert.deepEqual(registry.ids(), ['h1:web-1:80', 'h1:web-2:80', 'h1:web-3:80']);
    assert.ok(r.passes <= 2, `passes: ${r.passes}`);
  });
});

describe('registrator process (startRegistrator)', () => {
  const opts = (flags: Parameters<typeof parseOptions>[0] = {}) => parseOptions({ ip: '127.0.0.1', ...flags }, ['consul://127.0.0.1:8500']);

  it('syncs at start, then follows events; a lost event stream is re-opened and reconciled', async () => {
    const docker = new FakeDocker();
    const registry = new FakeRegistry();
    docker.run('pre', 1);
    const running = await startRegistrator(opts(), { docker, registry, logger: silent, hostname: 'h1', retryBaseMs: 5, retryMaxMs: 20 });
    try {
      await until(() => registry.ids().join() === 'h1:pre:80', 'initial sync');
      const b = docker.run('later', 2);
      await until(() => registry.ids().length === 2, 'start event');
      docker.exit(b, 0);
      await until(() => registry.ids().length === 1, 'die event');
      docker.dropStreams();
      docker.run('while-disconnected', 3); // event lost: nobody subscribed
      await until(() => registry.ids().includes('h1:while-disconnected:80'), 'reconciled after re-subscribing');
      assert.equal(docker.subscribers, 1);
    } finally {
      await running.stop();
    }
    assert.deepEqual(registry.ids(), ['h1:pre:80', 'h1:while-disconnected:80'], 'stopping deregisters nothing');
  });

  it('a Docker daemon that drops the event stream again and again leaves no listener behind per lost stream', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const docker = new FakeDocker();
    const registry = new FakeRegistry();
    const running = await startRegistrator(opts(), { docker, registry, logger: silent, hostname: 'h1', retryBaseMs: 1, retryMaxMs: 2 });
    try {
      for (let i = 0; i < 15; i++) {
        await until(() => docker.subscribers === 1, `subscription ${i}`);
        docker.dropStreams();
      }
      await until(() => docker.subscribers === 1, 'the last subscription');
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
    } finally {
      process.off('warning', onWarning);
      await running.stop();
    }
  });

  it('-retry-attempts: keeps pinging the registry, then gives up with a StartupError', async () => {
    const docker = new FakeDocker();
    const registry = new FakeRegistry();
    registry.down = true;
    const started = Date.now();
    await assert.rejects(
      startRegistrator(opts({ retryAttempts: '2', retryInterval: '20' }), { docker, registry, logger: silent, hostname: 'h1' }),
      (err: unknown) => err instanceof StartupError && /cannot reach the registry at http:\/\/fake:8500/.test(err.message),
    );
    assert.ok(Date.now() - started >= 35, 'two retry intervals');
    // Up after three more refused pings: -retry-attempts -1 keeps trying until it answers.
    registry.down = false;
    registry.downForCalls = 3;
    const running = await startRegistrator(opts({ retryAttempts: '-1', retryInterval: '10' }), { docker, registry, logger: silent, hostname: 'h1' });
    await running.stop();
  });

  it('Docker unreachable at start: a StartupError naming the endpoint', async () => {
    const docker = new FakeDocker();
    docker.down = true;
    await assert.rejects(
      startRegistrator(opts(), { docker, registry: new FakeRegistry(), logger: silent, hostname: 'h1' }),
      (err: unknown) => err instanceof StartupError && /cannot reach Docker at fake:\/\/docker/.test(err.message),
    );
  });

  it('-resync re-registers on a timer, with -cleanup', async () => {
    const docker = new FakeDocker();
    const registry = new FakeRegistry();
    docker.run('web-1', 1);
    const running = await startRegistrator(opts({ resync: '1', cleanup: true }), { docker, registry, logger: silent, hostname: 'h1' });
    try {
      await until(() => registry.ids().length === 1, 'initial sync');
      registry.services_.set('h1:dangling:80', { ID: 'h1:dangling:80', Name: 'web' });
      registry.calls.length = 0;
      await until(() => registry.calls.includes('register h1:web-1:80') && !registry.ids().includes('h1:dangling:80'), 'resync', 3000);
    } finally {
      await running.stop();
    }
  });
});
