// The compose examples (examples/compose/) on a REAL Docker engine, as a user runs them: build the
// image from the Dockerfile (on a local base, nothing is pulled), `up -d`, scale `web` 1 → 3 → 2 under
// load, and `down -v`. Checked each time: the agent's catalog holds exactly the running `web`
// containers (Registrator registered and deregistered each one), traffic through the balancer on
// 127.0.0.1 reaches exactly those containers, no request fails while one is being removed, and
// nothing of the project is left afterwards. Once with `switchyard lb`, once with nginx driven by
// `switchyard template` (the seeds' design). Skipped outside CI when Docker or compose is missing.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { Agent, get } from 'node:http';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/agent.js';
import { dockerAvailable, dockerClient, ensureTestImage, TEST_IMAGE } from '../helpers/docker.js';
import { freePort, REPO } from '../helpers/process.js';

const run = promisify(execFile);
const inCI = process.env.CI === 'true';
const EXAMPLE_DIR = join(REPO, 'examples/compose');
const APP_IMAGE = process.env.SY_DOCKER_APP_IMAGE ?? 'switchyard-test/switchyard:local';
const ELB_IMAGE = 'switchyard-test/nginx-elb:local';
/** Project names are `sy-compose-<pid>-<time>`: a run killed before its `down` can be recognised later. */
const PROJECT_PREFIX = 'sy-compose-';

/** `docker compose` (v2 plugin) when it answers, else Debian's `docker-compose` (v1), else undefined. */
async function composeCommand(): Promise<string[] | undefined> {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    try {
      await run(cmd[0] as string, [...cmd.slice(1), 'version'], { timeout: 20_000 });
      return cmd;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

const dockerUp = await dockerAvailable();
const compose = dockerUp ? await composeCommand() : undefined;
const skip = !inCI && (!dockerUp || !compose)
  ? `needs a Docker daemon and docker compose / docker-compose (${!dockerUp ? 'no daemon answers' : 'no compose command'}; required when CI=true)`
  : false;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface CatalogEntry {
  ServiceID: string;
  ServiceAddress: string;
  ServicePort: number;
}

interface WebContainer {
  /** Container name without the leading slash (part of Registrator's service ID). */
  name: string;
  /** The hostname the page names: Docker's default, the first 12 characters of the ID. */
  host: string;
  ip: string;
}

interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  byHost: Map<string, number>;
}

/**
 * One GET to 127.0.0.1:port; resolves with the body of a 200, else rejects. node:http rather than
 * fetch: when docker-proxy accepts and then resets (the container is not listening yet), undici
 * settles the request from a callback that holds no handle, and with nothing else pending the test
 * runner sees an empty event loop and cancels the test.
 */
function getText(port: number, path: string, agent: Agent | false = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 200)}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no response within 10 s')));
    req.on('error', reject);
  });
}

/** One GET through the balancer: the page names the container ("web <hostname>"). */
const getPage = async (port: number, agent: Agent): Promise<string> => (await getText(port, '/', agent)).trim();

/**
 * Bounded load on 127.0.0.1: `concurrency` keep-alive loops until stop() (or maxRequests, or the
 * deadline). Every failure is kept (status or error), none is retried.
 */
function startLoad(port: number, opts: { concurrency: number; maxRequests: number; deadlineMs: number }): { result: LoadResult; stop: () => Promise<LoadResult> } {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const result: LoadResult = { ok: 0, failed: 0, errors: [], byHost: new Map() };
  const deadline = Date.now() + opts.deadlineMs;
  let stopping = false;
  const loop = async (): Promise<void> => {
    while (!stopping && Date.now() < deadline && result.ok + result.failed < opts.maxRequests) {
      try {
        const page = await getPage(port, agent);
        result.ok++;
        result.byHost.set(page, (result.byHost.get(page) ?? 0) + 1);
      } catch (err) {
        result.failed++;
        if (result.errors.length < 20) result.errors.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: opts.concurrency }, loop);
  return {
    result,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

interface Example {
  title: string;
  file: string;
  /** Services built by compose from this repository's files before `up` (the test's images exist already). */
  build: string[];
  /** The service whose log must show the changes being applied: each message at least `min` times over the run. */
  applies: { service: string; messages: { msg: string; min: number }[] };
}

const EXAMPLES: Example[] = [
  { title: 'docker-compose.yml (switchyard lb)', file: 'docker-compose.yml', build: [], applies: { service: 'lb', messages: [{ msg: 'routing table swapped', min: 3 }] } },
  {
    title: 'docker-compose.nginx.yml (nginx + switchyard template)', file: 'docker-compose.nginx.yml', build: ['elb'],
    // The first render (-once, before nginx starts) runs no command; every later one reloads nginx.
    applies: { service: 'elb', messages: [{ msg: 'rendered', min: 3 }, { msg: 'command ran', min: 2 }] },
  },
];

describe('examples/compose on a real Docker engine: scale web 1 → 3 → 2', { skip }, () => {
  const docker = dockerClient();

  before(async () => {
    assert.ok(dockerUp, 'CI=true: a Docker daemon must answer (DOCKER_HOST or /var/run/docker.sock); .ci/run starts one');
    assert.ok(compose, 'CI=true: `docker compose` or `docker-compose` must work; .ci/run installs docker-compose');
    // A run killed before its `down` leaves its project running: bring down those whose process is gone.
    const projects = new Set<string>();
    for (const c of await docker.listContainers({ all: true, filters: { label: ['com.docker.compose.project'] } })) {
      const name = c.Labels['com.docker.compose.project'] ?? '';
      const pid = Number(/^sy-compose-(\d+)-[0-9a-z]+$/.exec(name)?.[1] ?? NaN);
      if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) projects.add(name);
    }
    for (const name of projects) {
      await run((compose as string[])[0] as string, [...(compose as string[]).slice(1), '-p', name, '-f', 'docker-compose.yml', 'down', '-v', '--remove-orphans', '-t', '1'], {
        cwd: EXAMPLE_DIR, timeout: 120_000, env: { ...process.env, SWITCHYARD_IMAGE: APP_IMAGE, WEB_IMAGE: TEST_IMAGE },
      }).catch(() => undefined);
    }
    // The Dockerfile's runtime stage on the local base (scripts/docker-base-image.sh) plus this tree's build output.
    await run('bash', ['scripts/docker-app-image.sh', APP_IMAGE], { cwd: REPO, timeout: 600_000, maxBuffer: 16 << 20 });
    await ensureTestImage();
  }, { timeout: 660_000 });

  for (const ex of EXAMPLES) {
    it(ex.title, { timeout: 420_000 }, async (t: TestContext) => {
      const project = `${PROJECT_PREFIX}${process.pid}-${Date.now().toString(36)}`;
      // The registrator sees every container on the Docker host: a service name of its own keeps this
      // stack apart from other tests' containers (the registrator test's are called "web" too).
      const service = `web-${project.slice(PROJECT_PREFIX.length)}`;
      const [httpPort, dnsPort, lbPort] = [await freePort(), await freePort(), await freePort()];
      const env = {
        ...process.env,
        SWITCHYARD_IMAGE: APP_IMAGE, ELB_IMAGE, WEB_IMAGE: TEST_IMAGE, WEB_SERVICE: service,
        SWITCHYARD_HTTP_PORT: String(httpPort), SWITCHYARD_DNS_PORT: String(dnsPort), SWITCHYARD_LB_PORT: String(lbPort),
        // Compose builds with the legacy builder: recent docker CLIs need the buildx plugin for BuildKit.
        DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0',
      };
      const cmd = compose as string[];
      const dc = async (...args: string[]): Promise<string> => {
        const started = Date.now();
        try {
          const { stdout, stderr } = await run(cmd[0] as string, [...cmd.slice(1), '-p', project, '-f', ex.file, ...args], {
            cwd: EXAMPLE_DIR, env, timeout: 300_000, maxBuffer: 16 << 20,
          });
          t.diagnostic(`${args.join(' ')}: ${Date.now() - started} ms`);
          return stdout + stderr;
        } catch (err) {
          const e = err as Error & { stdout?: string; stderr?: string };
          throw new Error(`${cmd.join(' ')} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
        }
      };
      const byProject = (extra: string[] = []): { label: string[] } => ({ label: [`com.docker.compose.project=${project}`, ...extra] });

      /** The running `web` containers of this project. */
      const webContainers = async (): Promise<WebContainer[]> => {
        const list = await docker.listContainers({ filters: byProject(['com.docker.compose.service=web']) });
        return list.map((c) => ({
          name: (c.Names[0] ?? '').replace(/^\//, ''),
          host: c.Id.slice(0, 12),
          ip: Object.values(c.NetworkSettings.Networks)[0]?.IPAddress ?? '',
        })).sort((a, b) => a.name.localeCompare(b.name));
      };
      const catalog = async (): Promise<CatalogEntry[]> =>
        JSON.parse(await getText(httpPort, `/v1/catalog/service/${service}`)) as CatalogEntry[];
      const passing = async (): Promise<string[]> =>
        (JSON.parse(await getText(httpPort, `/v1/health/service/${service}?passing`)) as { Service: { ID: string } }[]).map((e) => e.Service.ID).sort();
      /** Hostnames answering through the balancer in `n` requests. */
      const sample = async (n: number): Promise<Set<string>> => {
        const agent = new Agent({ keepAlive: true, maxSockets: 2 });
        const seen = new Set<string>();
        try {
          for (let i = 0; i < n; i++) seen.add(await getPage(lbPort, agent));
        } finally {
          agent.destroy();
        }
        return seen;
      };

      /**
       * `count` web containers run; the catalog holds exactly one entry per container (Registrator's
       * ID names the container, the address is its IP on the project network, port 80), all passing;
       * the balancer's traffic reaches exactly those containers.
       */
      const expectWeb = async (count: number): Promise<WebContainer[]> => {
        let state = '';
        let webs: WebContainer[] = [];
        try {
          await waitFor(async () => {
            try {
              webs = await webContainers();
              const entries = await catalog();
              const ids = await passing();
              const registered = entries.map((e) => `${e.ServiceID.split(':')[1] ?? '?'}@${e.ServiceAddress}:${e.ServicePort}`).sort();
              const want = webs.map((w) => `${w.name}@${w.ip}:80`).sort();
              const pages = webs.length === count && JSON.stringify(registered) === JSON.stringify(want) && ids.length === count
                ? [...(await sample(6 * count))].sort() : [];
              const hosts = webs.map((w) => `web ${w.host}`).sort();
              state = `containers ${JSON.stringify(want)}; catalog ${JSON.stringify(registered)}; passing ${ids.length}; pages ${JSON.stringify(pages)}`;
              return webs.length === count && JSON.stringify(pages) === JSON.stringify(hosts);
            } catch (err) {
              state = `not ready: ${(err as Error).message}`;
              return false;
            }
          }, `${count} web container(s) registered, passing and answering through the balancer`, 60_000, 250);
        } catch (err) {
          assert.fail(`${(err as Error).message}\n  last state: ${state}`);
        }
        t.diagnostic(`web=${count}: ${state}`);
        return webs;
      };

      let failure: unknown;
      try {
        for (const name of ex.build) {
          const previous = await docker.getImage(ELB_IMAGE).inspect().then((i) => i.Id, () => undefined);
          await dc('build', name);
          const current = (await docker.getImage(ELB_IMAGE).inspect()).Id;
          if (previous && previous !== current) await docker.getImage(previous).remove().catch(() => undefined);
        }
        await dc('up', '-d');
        await expectWeb(1);
        // Everything the project publishes listens on 127.0.0.1 only.
        for (const c of await docker.listContainers({ filters: byProject() })) {
          for (const p of c.Ports) if (p.PublicPort) assert.equal(p.IP, '127.0.0.1', `${c.Names[0]} publishes ${p.PublicPort} on ${p.IP}`);
        }
        assert.ok((await docker.listNetworks({ filters: byProject() })).length >= 1, 'the project network is labelled (the clean-up check below relies on it)');

        await dc('up', '-d', '--scale', 'web=3');
        const three = await expectWeb(3);
        // The agent's DNS interface, published on 127.0.0.1 (UDP): the seeds' web.service.consul.
        const resolver = new Resolver({ timeout: 2000, tries: 2 });
        resolver.setServers([`127.0.0.1:${dnsPort}`]);
        assert.deepEqual((await resolver.resolve4(`${service}.service.consul`)).sort(), three.map((w) => w.ip).sort(), 'DNS answers the three web containers');

        // Scale down under steady load: the removed container fails its health check, the balancer
        // stops sending to it, then it exits and Registrator deregisters it. No request may fail.
        const load = startLoad(lbPort, { concurrency: 4, maxRequests: 200_000, deadlineMs: 120_000 });
        const loadSoFar = (): string => `${load.result.ok} ok, ${load.result.failed} failed, by host ${JSON.stringify([...load.result.byHost])}`;
        await waitFor(() => three.every((w) => (load.result.byHost.get(`web ${w.host}`) ?? 0) > 0), () => `traffic on all three web containers before the scale-down (${loadSoFar()})`, 30_000, 20);
        const started = Date.now();
        await dc('up', '-d', '--scale', 'web=2');
        const two = await expectWeb(2);
        // Steady traffic on the two that remain.
        const after2 = load.result.ok + load.result.failed;
        await waitFor(() => load.result.ok + load.result.failed >= after2 + 200, () => `200 requests on the two remaining containers (${loadSoFar()})`, 30_000, 20);
        const res = await load.stop();
        const removed = three.filter((w) => !two.some((x) => x.name === w.name));
        assert.equal(removed.length, 1, 'one container removed');
        const shares = [...res.byHost].map(([h, n]) => `${h}: ${n}`).join(', ');
        t.diagnostic(`scale-down under load: ${res.ok} ok, ${res.failed} failed; the scale-down and 200 requests after it took ${Date.now() - started} ms (${shares})`);
        assert.equal(res.failed, 0, `no request may fail during the scale-down: ${res.errors.join('; ')}`);
        assert.ok(res.ok > 100, `the load loop ran (${res.ok} requests)`);
        assert.ok((res.byHost.get(`web ${removed[0]?.host}`) ?? 0) > 0, 'the removed container served traffic before it left');
        assert.deepEqual(
          [...res.byHost.keys()].sort(),
          three.map((w) => `web ${w.host}`).sort(),
          'traffic went to the three containers and nowhere else',
        );
        // Each change left a line in the log of what applies it (nginx's renders and reloads too, with exit code 0).
        const lines = (await dc('logs', '--no-color', ex.applies.service)).split('\n')
          .map((l) => l.slice(l.indexOf('{'))).filter((l) => l.startsWith('{'))
          .map((l) => { try { return JSON.parse(l) as { msg?: string; code?: number }; } catch { return {}; } });
        for (const { msg, min } of ex.applies.messages) {
          const n = lines.filter((l) => l.msg === msg).length;
          assert.ok(n >= min, `\`logs ${ex.applies.service}\` shows "${msg}" ${n} times, expected at least ${min} (1, 3 and 2 web containers)`);
        }
        assert.ok(lines.filter((l) => l.msg === 'command ran').every((l) => l.code === 0), 'every reload exited 0');
      } catch (err) {
        failure = err;
        try {
          t.diagnostic((await dc('logs', '--no-color', '--tail', '40')).slice(-12_000));
        } catch {
          // the failure below says enough
        }
      } finally {
        await dc('down', '-v', '--remove-orphans', '-t', '15').catch((err: unknown) => {
          failure ??= err;
        });
      }
      if (failure) throw failure;

      // `down -v` leaves nothing of the project: no container (running or not), network or volume.
      const left = {
        containers: (await docker.listContainers({ all: true, filters: byProject() })).map((c) => c.Names[0]),
        networks: (await docker.listNetworks({ filters: byProject() })).map((n) => n.Name),
        volumes: ((await docker.listVolumes({ filters: byProject() })).Volumes ?? []).map((v) => v.Name),
      };
      assert.deepEqual(left, { containers: [], networks: [], volumes: [] }, 'down -v leaves nothing behind');
    });
  }
});
