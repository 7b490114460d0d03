/** The three fronts of the differential harness: switchyard lb on the fast plane, on the node plane, and real nginx, each before its own recording backends. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { lbConfigSchema, resolveLbConfig } from '../../src/config/lb.js';
import { loadConfigFile } from '../../src/config/load.js';
import { startLb } from '../../src/cli/wiring/lb.js';
import type { RunningLb } from '../../src/cli/wiring/lb.js';
import type { Instance, ServiceSet } from '../../src/discovery/types.js';
import { Recorder, SERVICES } from './recorder.js';

export const PLANES = ['fast', 'node', 'nginx'] as const;
export type Plane = (typeof PLANES)[number];

export const LB_CONFIG = fileURLToPath(new URL('./lb.yaml', import.meta.url));
const NGINX_CONF = fileURLToPath(new URL('./nginx.conf', import.meta.url));

export interface Front {
  readonly plane: Plane;
  readonly port: number;
  readonly recorder: Recorder;
  /** The balancer (switchyard planes only): its upstream states show what passive health charged. */
  readonly lb: RunningLb | undefined;
  /** Instance ids by service (switchyard planes). */
  readonly instanceIds: ReadonlyMap<string, string>;
  /** nginx only: its error log, for the report. */
  errorLog(): string;
  close(): Promise<void>;
}

function serviceSet(rec: Recorder): { set: ServiceSet; ids: Map<string, string> } {
  const catalog = new Map<string, string[]>();
  const instances = new Map<string, Instance[]>();
  const ids = new Map<string, string>();
  for (const service of SERVICES) {
    const id = `diff/${service}-1`;
    ids.set(service, id);
    catalog.set(service, []);
    instances.set(service, [{
      id, service, node: 'diff', address: '127.0.0.1', port: rec.ports.get(service) as number, tags: [], meta: {},
      weights: { passing: 1, warning: 1 }, status: 'passing',
    }]);
  }
  return { set: { catalog, instances }, ids };
}

/** switchyard lb in this process: routes from lb.yaml, instances fed straight to the routing table (no registry needed). */
export async function startSwitchyard(plane: 'fast' | 'node'): Promise<Front> {
  const recorder = new Recorder(plane);
  await recorder.start();
  const file = loadConfigFile(LB_CONFIG, lbConfigSchema);
  const cfg = resolveLbConfig(file, { listen: '127.0.0.1:0', 'data-plane': plane, 'log-level': 'silent' });
  const lb = await startLb(cfg, pino({ level: process.env.SY_TEST_LOG ?? 'silent' }), { admin: false, processMetrics: false });
  const { set, ids } = serviceSet(recorder);
  lb.apply(set);
  return {
    plane, port: lb.address.port, recorder, lb, instanceIds: ids,
    errorLog: () => '',
    async close() {
      // A balancer that cannot close within its drain time plus a margin is a finding, not a reason to hang the run.
      const stuck = await Promise.race([lb.close().then(() => false), new Promise<boolean>((r) => setTimeout(r, cfg.timeouts.drainMs + 5000, true).unref())]);
      if (stuck) {
        const open = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles()
          .filter((h): h is Socket => typeof h === 'object' && h !== null && 'localPort' in h && (h as { localPort?: number }).localPort === lb.address.port)
          .map((sk) => `${sk.remoteAddress}:${sk.remotePort} (destroyed ${sk.destroyed}, readable ${sk.readable}, writable ${sk.writable})`);
        process.stderr.write(`differential: the ${plane} balancer did not close within ${cfg.timeouts.drainMs + 5000} ms; client sockets still open: ${open.join(', ') || 'none'}\n`);
      }
      await recorder.close();
    },
  };
}

/** True when an nginx binary can run here. */
export function nginxAvailable(): boolean {
  return !spawnSync('nginx', ['-v']).error;
}

/**
 * Real nginx (Debian package) with nginx.conf. The test process opens the listening socket on port 0
 * and nginx inherits it (NGINX="3;", the mechanism of nginx's binary upgrade), so there is no window in
 * which another process could take the port.
 */
export async function startNginx(): Promise<Front> {
  const recorder = new Recorder('nginx');
  await recorder.start();
  const prefix = mkdtempSync(join(tmpdir(), 'sy-diff-nginx-'));
  for (const d of ['tmp_body', 'tmp_proxy', 'tmp_fastcgi', 'tmp_uwsgi', 'tmp_scgi']) mkdirSync(join(prefix, d));
  const listener = createServer();
  await new Promise<void>((r) => listener.listen({ port: 0, host: '127.0.0.1', backlog: 511 }, r));
  const port = (listener.address() as AddressInfo).port;
  const vars: Record<string, string> = {
    PREFIX: prefix, PORT: String(port), WEB: String(recorder.ports.get('web')), API: String(recorder.ports.get('api')), INTERNAL: String(recorder.ports.get('internal')),
  };
  const conf = readFileSync(NGINX_CONF, 'utf8').replace(/^#.*\n/gm, '').replace(/@@([A-Z]+)@@/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`nginx.conf: no value for @@${k}@@`);
    return v;
  });
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const child: ChildProcess = spawn('nginx', ['-p', `${prefix}/`, '-e', join(prefix, 'error.log'), '-c', join(prefix, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe', fd], env: { ...process.env, NGINX: '3;' },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // nginx holds its own copy of the socket now; ours must stop accepting so every connection reaches nginx.
  await new Promise<void>((r) => listener.close(() => r()));
  await waitReady(port, child, () => stderr);
  return {
    plane: 'nginx', port, recorder, lb: undefined, instanceIds: new Map(),
    errorLog: () => {
      try {
        return readFileSync(join(prefix, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
      await exited;
      await recorder.close();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** Polls nginx's /__ready until it answers 204 (or nginx exits). */
async function waitReady(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let got = '';
      s.on('connect', () => s.write('GET /__ready HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n'));
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got.startsWith('HTTP/1.1 204')));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nginx did not answer on 127.0.0.1:${port} within 15 s: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startFront(plane: Plane): Promise<Front> {
  return plane === 'nginx' ? startNginx() : startSwitchyard(plane);
}
