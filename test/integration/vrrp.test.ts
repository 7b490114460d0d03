// A floating IP with VRRP (docs/cluster.md): keepalived, run with the shipped
// examples/keepalived configs, moves a virtual IP between two real `switchyard up` balancers.
// The network is built entirely inside network namespaces this test creates: a bridge in "lan",
// and lb1, lb2 and a client on veth pairs to it. Nothing touches the root namespace's interfaces
// or routes. Needs root, iproute2, keepalived and curl (the configs' health check); under CI=true
// a missing one is a failure, elsewhere a skip.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sleep, waitFor } from '../helpers/agent.js';
import { REPO } from '../helpers/process.js';

const execFileP = promisify(execFile);
const MAIN = join(REPO, 'src/cli/main.ts');
const EXAMPLES = join(REPO, 'examples/keepalived');
const CI = process.env.CI === 'true';

const firstExisting = (paths: string[], fallback: string): string => paths.find((p) => existsSync(p)) ?? fallback;
const IP = firstExisting(['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'], 'ip');
const KEEPALIVED = firstExisting(['/usr/sbin/keepalived', '/sbin/keepalived', '/usr/local/sbin/keepalived'], 'keepalived');
/** The example configs' health check runs this curl. */
const CURL = '/usr/bin/curl';

// Everything below lives inside this run's namespaces; the names carry the pid so runs never clash.
const TAG = `sy-vrrp-${process.pid}`;
const LAN = `${TAG}-lan`;
const SUBNET = '10.77.46';
const VIP = `${SUBNET}.100`;
/** The example configs' virtual IP, replaced by VIP: the only change the test makes to them. */
const EXAMPLE_VIP = '10.0.0.100/24';
const LB_PORT = 9080;
const ADMIN = '127.0.0.1:9081';
const BACKEND_PORT = 8081;

/** Why this test cannot run here, or undefined. Creates and deletes one probe namespace. */
function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (spawnSync(IP, ['-V']).status !== 0) return 'ip (iproute2) is not installed';
  if (spawnSync(KEEPALIVED, ['--version']).status !== 0) return 'keepalived is not installed (apt-get install keepalived)';
  if (!existsSync(CURL)) return `${CURL} is missing (the keepalived health check runs it)`;
  const probe = `${TAG}-probe`;
  const r = spawnSync(IP, ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace (root needed): ${(r.stderr || r.error?.message || '').trim()}`;
  spawnSync(IP, ['netns', 'del', probe]);
  return undefined;
}
const why = unavailable();

interface NsProc {
  readonly label: string;
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  readonly exited: Promise<void>;
}

interface Host {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
}

interface Lb extends Host {
  readonly dataDir: string;
  up?: NsProc;
  backend?: NsProc;
  keepalived?: NsProc;
}

interface Answer {
  /** When the request started and ended (epoch ms). */
  t: number;
  end: number;
  ok: boolean;
  body?: string;
  err?: string;
}

/** What one failover cost the client. */
interface Failover {
  /** Fault → the VIP is on the other balancer only. */
  vipMs: number;
  /** Fault → first answer from the other balancer. */
  recoveredMs: number;
  /** Last answer before the fault → first answer after it: the time without a successful answer. */
  gapMs: number;
  failed: number;
}

const ip = async (...args: string[]): Promise<string> => (await execFileP(IP, args, { encoding: 'utf8', timeout: 10_000 })).stdout;

/** GET from inside a namespace; the body on 2xx, else undefined. */
async function nsGet(ns: string, url: string): Promise<string | undefined> {
  try {
    return (await execFileP(IP, ['netns', 'exec', ns, CURL, '-fsS', '-m', '1', url], { encoding: 'utf8', timeout: 5000 })).stdout;
  } catch {
    return undefined;
  }
}

const procs: NsProc[] = [];

/** Runs a command inside a namespace (`ip netns exec` execs it, so the pid is the command's own). */
function nsSpawn(ns: string, label: string, cmd: string[], onLine?: (line: string) => void): NsProc {
  const child = spawn(IP, ['netns', 'exec', ns, ...cmd], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const s = d.toString();
    if (!onLine) {
      out += s;
      return;
    }
    partial += s;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l) onLine(l);
  });
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const p: NsProc = { label, child, pid: child.pid as number, output: () => out, exited };
  procs.push(p);
  return p;
}

const running = (p: NsProc | undefined): boolean => p !== undefined && p.child.exitCode === null && p.child.signalCode === null;

async function terminate(p: NsProc, graceMs = 5000): Promise<void> {
  if (!running(p)) return;
  p.child.kill('SIGTERM');
  const done = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done && running(p)) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

const BACKEND = `
const name = process.argv[1];
const s = require('node:http').createServer((q, r) => r.end(name)).listen(${BACKEND_PORT}, '127.0.0.1');
process.on('SIGTERM', () => s.close(() => process.exit(0)));
`;

/** Requests http://VIP:9080/ every 50 ms on a new connection (1 s timeout), one JSON line per answer. */
const CLIENT = `
const http = require('node:http');
const [url, forMs] = [process.argv[1], Number(process.argv[2])];
const until = Date.now() + forMs;
const one = () => new Promise((resolve) => {
  const t = Date.now();
  const done = (r) => resolve({ t, end: Date.now(), ...r });
  const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => done({ ok: res.statusCode === 200, body }));
    res.on('error', (e) => done({ ok: false, err: e.code || e.message }));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (e) => done({ ok: false, err: e.code || e.message }));
});
(async () => {
  while (Date.now() < until) {
    process.stdout.write(JSON.stringify(await one()) + '\\n');
    await new Promise((r) => setTimeout(r, 50));
  }
})();
process.on('SIGTERM', () => process.exit(0));
`;

describe('VRRP floating IP: keepalived with the example configs in front of two balancers', { skip: why !== undefined && !CI ? why : false }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-vrrp-'));
  const created: string[] = [];
  const lbs: Lb[] = ['lb1', 'lb2'].map((name, i) => ({ name, ns: `${TAG}-${name}`, ip: `${SUBNET}.${11 + i}`, dataDir: join(dir, name) }));
  const client: Host = { name: 'client', ns: `${TAG}-client`, ip: `${SUBNET}.20` };
  const answers: Answer[] = [];
  let clientProc: NsProc | undefined;
  const figures: string[] = [];
  // Set by the first test: who took the VIP, and the other one.
  let active: Lb | undefined;
  let standby: Lb | undefined;

  const byName = (name: string): Lb => lbs.find((l) => l.name === name) as Lb;

  function startUp(lb: Lb): void {
    lb.up = nsSpawn(lb.ns, `${lb.name} switchyard up`, [process.execPath, '--import', 'tsx', MAIN, 'up',
      '--http-addr', '127.0.0.1:8500', '--dns-addr', '127.0.0.1:8600', '--listen', `0.0.0.0:${LB_PORT}`, '--admin-addr', ADMIN,
      '--data-dir', lb.dataDir, '--node', lb.name, '--service', 'web', '--no-registrator', '--log-level', 'warn']);
  }

  /** The balancer answers with its own backend (through its own listener, inside its namespace). */
  async function waitServing(lb: Lb): Promise<void> {
    await waitFor(async () => {
      if (!running(lb.up)) throw new Error(`${lb.name}'s switchyard exited: ${lb.up?.output()}`);
      return (await nsGet(lb.ns, `http://127.0.0.1:${LB_PORT}/`)) === lb.name;
    }, `${lb.name} balancing to its backend`, 30_000, 200);
  }

  /** Which balancers have the VIP on their interface. */
  async function holders(): Promise<string[]> {
    const out: string[] = [];
    for (const lb of lbs) {
      const addrs = await ip('-n', lb.ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0');
      if (addrs.includes(` ${VIP}/`)) out.push(lb.name);
    }
    return out;
  }

  /** The last `n` answers, all started after `since`, all from `name`. */
  async function waitServedBy(name: string, since: number, what: string, timeoutMs: number, n = 5): Promise<void> {
    await waitFor(() => {
      const last = answers.slice(-n);
      return last.length === n && last.every((a) => a.t >= since && a.ok && a.body === name);
    }, `${what}: ${n} answers in a row from ${name} (last answers: ${JSON.stringify(answers.slice(-3))})`, timeoutMs, 50);
  }

  /** Applies `fault` to `from` and measures how long until the VIP and the client's answers are on `to`. */
  async function failover(from: Lb, to: Lb, fault: () => Promise<void> | void, what: string): Promise<Failover> {
    const at = Date.now();
    await fault();
    // Requests sent while the fault was being applied (an `ip` command takes a while on a busy box) may still reach `from`.
    const applied = Date.now();
    const vipAt = await waitFor(async () => {
      const h = await holders();
      return h.length === 1 && h[0] === to.name ? Date.now() : 0;
    }, `${what}: the VIP on ${to.name} only`, 15_000, 50);
    await waitServedBy(to.name, at, what, 15_000);
    const firstOk = answers.find((a) => a.t >= at && a.ok && a.body === to.name) as Answer;
    const lastOk = answers.filter((a) => a.ok && a.end <= at).at(-1);
    assert.ok(lastOk, 'the client had answers before the fault');
    const failed = answers.filter((a) => a.end >= at && a.end <= firstOk.end && !a.ok).length;
    assert.equal(answers.filter((a) => a.t > applied && a.ok && a.body === from.name).length, 0, `${from.name} answers nothing after the fault`);
    return { vipMs: vipAt - at, recoveredMs: firstOk.end - at, gapMs: firstOk.end - lastOk.end, failed };
  }

  const describeFailover = (f: Failover): string =>
    `VIP moved ${f.vipMs} ms after the fault; first answer from the new holder after ${f.recoveredMs} ms; ` +
    `${f.gapMs} ms without a successful answer; ${f.failed} requests failed meanwhile (one every 50 ms, 1 s timeout)`;

  /** An example config with this test's VIP: the only change. */
  function config(name: string): string {
    const src = readFileSync(join(EXAMPLES, `keepalived-${name}.conf`), 'utf8');
    assert.equal(src.split(EXAMPLE_VIP).length, 2, `keepalived-${name}.conf has one virtual_ipaddress ${EXAMPLE_VIP}`);
    assert.match(src, /^\s*interface eth0$/m, 'the example uses eth0, as the test namespaces do');
    assert.ok(src.includes(`http://${ADMIN}/health`), `the example checks the admin /health on ${ADMIN}`);
    const file = join(dir, `keepalived-${name}.conf`);
    writeFileSync(file, src.replace(EXAMPLE_VIP, `${VIP}/24`));
    return file;
  }

  before(async () => {
    if (why) assert.fail(`CI=true: ${why} (.ci/run installs keepalived, iproute2 and curl; the test needs root)`);
    // The LAN: a bridge in its own namespace; each host gets a veth pair whose far end is its eth0.
    await ip('netns', 'add', LAN);
    created.push(LAN);
    await ip('-n', LAN, 'link', 'set', 'lo', 'up');
    await ip('-n', LAN, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', LAN, 'link', 'set', 'br0', 'up');
    for (const h of [...lbs, client]) {
      await ip('netns', 'add', h.ns);
      created.push(h.ns);
      await ip('-n', h.ns, 'link', 'set', 'lo', 'up');
      await ip('-n', LAN, 'link', 'add', `v-${h.name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns);
      await ip('-n', LAN, 'link', 'set', `v-${h.name}`, 'master', 'br0', 'up');
      await ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      await ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
    }
    // In each balancer namespace: `switchyard up`, and a backend registered in it that answers its lb's name.
    for (const lb of lbs) {
      startUp(lb);
      lb.backend = nsSpawn(lb.ns, `${lb.name} backend`, [process.execPath, '--import', 'tsx', MAIN, 'register',
        '--consul-addr', '127.0.0.1:8500', '--name', 'web', '--id', `web-${lb.name}`, '--address', '127.0.0.1', '--port', String(BACKEND_PORT),
        '--log-level', 'warn', '--', process.execPath, '-e', BACKEND, lb.name]);
    }
    await Promise.all(lbs.map(waitServing));
    // The balancers answer on the LAN too (the client reaches each one's own address).
    for (const lb of lbs) assert.equal(await nsGet(client.ns, `http://${lb.ip}:${LB_PORT}/`), lb.name);
  });

  /** Last resort if the run is cut short before `after`: kill what runs in this run's namespaces, delete them. */
  const sweep = (): void => {
    for (const ns of created) {
      const pids = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (const ns of [...created].reverse()) spawnSync(IP, ['netns', 'del', ns]);
    created.length = 0;
  };
  process.once('exit', sweep);

  after(async () => {
    if (figures.length > 0) console.log(`# vrrp run:\n#   ${figures.join('\n#   ')}`);
    // keepalived first (it releases the VIP), then everything else; all by pid.
    for (const lb of lbs) if (lb.keepalived) await terminate(lb.keepalived);
    await Promise.all(procs.map((p) => terminate(p)));
    // Then anything still running in this run's namespaces (keepalived's VRRP child, a supervised
    // backend), and the namespaces themselves (deleting "lan" removes the bridge and the veth pairs).
    sweep();
    process.removeListener('exit', sweep);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the example configs pass keepalived --config-test', async () => {
    for (const lb of lbs) {
      const r = spawnSync(KEEPALIVED, ['--config-test', '-f', config(lb.name)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `keepalived -t ${lb.name}: ${r.stderr}`);
    }
  });

  it('exactly one balancer takes the virtual IP, and the client\'s traffic goes there', async () => {
    for (const lb of lbs) {
      const k = join(dir, `${lb.name}-keepalived`);
      lb.keepalived = nsSpawn(lb.ns, `${lb.name} keepalived`, [KEEPALIVED, '--dont-fork', '--log-console', '--log-detail', '--no-syslog', '--vrrp',
        '-f', config(lb.name), '-p', `${k}.pid`, '-r', `${k}-vrrp.pid`, '-c', `${k}-checkers.pid`, '-b', `${k}-bfd.pid`]);
    }
    // Both start as BACKUP; after three silent advertisement intervals one becomes MASTER.
    const holder = await waitFor(async () => {
      for (const lb of lbs) if (!running(lb.keepalived)) throw new Error(`${lb.name}'s keepalived exited: ${lb.keepalived?.output()}`);
      const h = await holders();
      return h.length === 1 ? h[0] : undefined;
    }, 'one balancer holding the VIP', 20_000, 100);
    active = byName(holder as string);
    standby = lbs.find((l) => l !== active) as Lb;
    // ... and it keeps it: no flapping, never both.
    // A window (2 s, two advertisement intervals), sampled every 100 ms: the claim is that nothing changes.
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await holders(), [active.name], 'exactly one holder, steadily');
      await sleep(100);
    }
    clientProc = nsSpawn(client.ns, 'client', [process.execPath, '-e', CLIENT, `http://${VIP}:${LB_PORT}/`, '150000'], (line) => answers.push(JSON.parse(line) as Answer));
    await waitServedBy(active.name, 0, 'client via the VIP', 10_000, 10);
    assert.ok(answers.every((a) => a.ok && a.body === active?.name), `every answer so far comes from ${active.name}: ${JSON.stringify(answers.filter((a) => !a.ok || a.body !== active?.name).slice(0, 3))}`);
    figures.push(`${active.name} took the VIP first (${standby.name} standing by)`);
  });

  it('killing the active balancer\'s switchyard (SIGKILL) moves the VIP, and the client gets answers from the other within seconds', async () => {
    assert.ok(active && standby);
    const from = active;
    const pid = from.up?.pid as number;
    const f = await failover(from, standby, () => void process.kill(pid, 'SIGKILL'), `${from.name}'s switchyard killed`);
    figures.push(`kill -9 of ${from.name}'s switchyard: ${describeFailover(f)}`);
    assert.ok(f.vipMs < 6000, `the VIP moved within 6 s (${f.vipMs} ms)`);
    assert.ok(f.gapMs < 8000, `the client was without answers for less than 8 s (${f.gapMs} ms)`);
  });

  it('the restarted balancer becomes healthy again but does not take the VIP back (nopreempt)', async () => {
    assert.ok(active && standby);
    const back = active;
    const holder = standby;
    const backups = (): number => back.keepalived?.output().split('Entering BACKUP STATE').length ?? 0;
    const before = backups();
    const restartedAt = Date.now();
    startUp(back);
    await waitServing(back);
    // Its keepalived sees /health pass twice (rise 2) and goes from FAULT to BACKUP.
    await waitFor(() => backups() > before, `${back.name}'s keepalived back in BACKUP state`, 15_000, 100);
    const backupAt = Date.now();
    // With preemption its higher priority (if it has it) would take the VIP at the next advertisement (1 s).
    const watchFrom = Date.now();
    // A window (5 advertisements), sampled every 100 ms: the claim is that the VIP does not move back.
    while (Date.now() - watchFrom < 5000) {
      assert.deepEqual(await holders(), [holder.name], `${holder.name} keeps the VIP after ${back.name} recovers`);
      await sleep(100);
    }
    const during = answers.filter((a) => a.t >= restartedAt);
    assert.ok(during.length > 20, 'the client kept sending');
    assert.deepEqual(during.filter((a) => !a.ok || a.body !== holder.name), [], `all answers from ${holder.name}, none failed`);
    figures.push(`${back.name} restarted: healthy and BACKUP ${backupAt - restartedAt} ms later; the VIP stayed on ${holder.name} (${during.length} requests, 0 failed)`);
    active = holder;
    standby = back;
  });

  it('when the VIP holder drops off the network (link down), the recovered balancer takes over', async () => {
    assert.ok(active && standby);
    const gone = active;
    const f = await failover(gone, standby, async () => void (await ip('-n', gone.ns, 'link', 'set', 'eth0', 'down')), `${gone.name} off the network`);
    figures.push(`${gone.name} off the network (eth0 down): ${describeFailover(f)}`);
    assert.ok(f.vipMs < 8000, `the VIP moved within 8 s (${f.vipMs} ms)`);
    assert.ok(f.gapMs < 10_000, `the client was without answers for less than 10 s (${f.gapMs} ms)`);
  });

  it('keepalived and the client loop ran throughout', () => {
    assert.ok(running(clientProc), `the client loop is still running: ${clientProc?.output()}`);
    for (const lb of lbs) assert.ok(running(lb.keepalived), `${lb.name}'s keepalived is running: ${lb.keepalived?.output().slice(-2000)}`);
  });
});
