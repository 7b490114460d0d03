/** Real etcd members (Debian etcd-server) on 127.0.0.1 ports for the etcd store and cluster tests. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './process.js';

export const ETCD_BIN = process.env['SY_ETCD'] ?? '/usr/bin/etcd';

/** True when etcd can run here; under CI=true a missing etcd is a failure, not a skip. */
export function etcdAvailable(): boolean {
  const ok = spawnSync(ETCD_BIN, ['--version'], { stdio: 'ignore' }).status === 0;
  if (!ok && process.env['CI'] === 'true') throw new Error(`etcd is required under CI=true but ${ETCD_BIN} does not run (apt-get install etcd-server)`);
  return ok;
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  /** Plain-HTTP /health and /metrics, also when the client URLs are TLS. */
  readonly metricsPort: number;
  readonly dataDir: string;
  child: ChildProcess | undefined;
  log: string;
}

/** Files for members that serve clients over TLS; with clientCertAuth they also require a client certificate signed by `ca`. */
export interface EtcdServerTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly clientCertAuth?: boolean;
}

export interface EtcdCluster {
  /** host:port of every member's client URL. */
  readonly endpoints: string[];
  /** etcd://h1:p1,h2:p2,...[/prefix] */
  url(prefix?: string): string;
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  start(i: number): Promise<void>;
  /** SIGSTOP / SIGCONT: a member that hangs (no answers, connections open), as in a long GC or I/O stall. */
  pause(i: number): void;
  resume(i: number): void;
  log(i: number): string;
  stop(): Promise<void>;
  /** Synchronous SIGKILL of every member and removal of the data (for process 'exit' handlers). */
  killSync(): void;
}

async function waitHealthy(endpoint: string, member: Member, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (member.child?.exitCode !== null && member.child?.exitCode !== undefined) throw new Error(`etcd ${member.name} exited: ${member.log.slice(-2000)}`);
    try {
      const r = await fetch(`http://${endpoint}/health`);
      const body = (await r.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`etcd ${member.name} not healthy within ${timeoutMs} ms: ${member.log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts an n-member cluster with short heartbeats (fast elections) and waits until each is healthy.
 * For diagnosing: SY_ETCD_LOG_LEVEL=info logs elections, SY_ETCD_LOG_KEEP raises the per-member log
 * kept for log(i) (characters, 20,000 by default).
 */
export async function startEtcd(n = 1, opts: { tls?: EtcdServerTls } = {}): Promise<EtcdCluster> {
  const base = mkdtempSync(join(tmpdir(), 'sy-etcd-'));
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(), metricsPort: await freePort(), dataDir: join(base, `m${i}`), child: undefined, log: '' });
  }
  const tls = opts.tls;
  const clientScheme = tls ? 'https' : 'http';
  const tlsArgs = tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, ...(tls.clientCertAuth ? ['--client-cert-auth'] : [])] : [];
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `sy-${process.pid}-${Date.now()}`;
  const launch = (m: Member): void => {
    const child = spawn(ETCD_BIN, [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', `${clientScheme}://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `${clientScheme}://127.0.0.1:${m.clientPort}`,
      // /health in plain HTTP whatever the client URLs speak.
      '--listen-metrics-urls', `http://127.0.0.1:${m.metricsPort}`, ...tlsArgs,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', token,
      '--heartbeat-interval', '50', '--election-timeout', '500', '--logger', 'zap', '--log-level', process.env['SY_ETCD_LOG_LEVEL'] ?? 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    child.on('error', (err) => (m.log += `spawn ${ETCD_BIN}: ${err.message}\n`));
    const add = (d: Buffer): void => {
      m.log = (m.log + d.toString()).slice(-Number(process.env['SY_ETCD_LOG_KEEP'] ?? 20_000));
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
    // A test process must be able to exit with members still running (the shared one is killed on 'exit').
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  };
  const endpoint = (m: Member): string => `127.0.0.1:${m.clientPort}`;
  for (const m of members) launch(m);
  const stopAll = async (): Promise<void> => {
    await Promise.all(members.map(async (m) => {
      const c = m.child;
      if (c && c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }));
    rmSync(base, { recursive: true, force: true });
  };
  try {
    await Promise.all(members.map((m) => waitHealthy(`127.0.0.1:${m.metricsPort}`, m, 30_000)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    endpoints: members.map(endpoint),
    url: (prefix) => `etcd://${members.map(endpoint).join(',')}${prefix ? `/${prefix}` : ''}`,
    async kill(i, signal = 'SIGKILL') {
      const c = members[i]?.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill(signal);
      await gone;
    },
    async start(i) {
      const m = members[i];
      if (!m) throw new Error(`no etcd member ${i}`);
      launch(m);
    },
    pause: (i) => void members[i]?.child?.kill('SIGSTOP'),
    resume: (i) => void members[i]?.child?.kill('SIGCONT'),
    log: (i) => members[i]?.log ?? '',
    stop: stopAll,
    killSync() {
      for (const m of members) m.child?.kill('SIGKILL');
      rmSync(base, { recursive: true, force: true });
    },
  };
}

let shared: Promise<EtcdCluster> | undefined;
let sharedSeq = 0;

/**
 * One single-member etcd per test process, for running the registry suites on the etcd store
 * (SY_TEST_STORE=etcd); each caller gets its own key prefix. Killed when the process exits.
 */
export async function sharedEtcdStoreUrl(): Promise<string> {
  shared ??= startEtcd(1).then((c) => {
    process.once('exit', () => c.killSync());
    // The test runner ends a timed-out file with SIGTERM, which skips 'exit' handlers: no orphaned members.
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => {
        c.killSync();
        process.exit(128 + (sig === 'SIGTERM' ? 15 : 2));
      });
    }
    return c;
  });
  const c = await shared;
  return c.url(`t${process.pid}-${sharedSeq++}`);
}
