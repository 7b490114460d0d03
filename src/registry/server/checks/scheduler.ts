/**
 * Runs the health checks of this agent's node (HTTP, TCP, UDP, gRPC, H2PING, script, Docker, TTL, alias) and writes
 * their results to the registry. It follows the view: a check that appears starts, a changed
 * definition restarts, a removed one stops. Probes never overlap (the next run is scheduled when one
 * finishes) and the first run is spread over the interval, as Consul does. Alias checks have no
 * interval: they re-read the aliased checks whenever the view changes on the aliased node.
 */
import type { Logger } from 'pino';
import type { Clock, Random, Timer } from '../../../core/clock.js';
import { parseGoDuration } from '../../../core/duration.js';
import { runGrpcCheck } from '../../../health/grpc-check.js';
import { SwitchyardError } from '../../../core/errors.js';
import { runH2PingCheck } from '../../../health/h2ping-check.js';
import { runHttpCheck } from '../../../health/http-check.js';
import { runTcpCheck } from '../../../health/tcp-check.js';
import { runUdpCheck } from '../../../health/udp-check.js';
import { DEFAULT_CHECK_TIMEOUT_MS } from '../../../health/types.js';
import type { CheckResult } from '../../../health/types.js';
import { runDockerCheck, DockerodeExec } from '../../../health/docker-check.js';
import type { DockerExec } from '../../../health/docker-check.js';
import { runScriptCheck, SCRIPT_CHECK_TIMEOUT_MS } from '../../../health/script-check.js';
import { SCRIPTS_DISABLED } from '../validate.js';
import { topics } from '../catalog-reader.js';
import type { CatalogReader, CheckKey } from '../catalog-reader.js';
import { aliasHealth } from './alias.js';
import type { CheckRecord, HealthStatus } from '../model.js';
import type { Registry } from '../registry.js';

export interface SchedulerOptions {
  registry: Registry;
  view: CatalogReader;
  logger: Logger;
  clock: Clock;
  random: Random;
  /** Consul raises shorter intervals to 1s. */
  minIntervalMs?: number;
  /** How often critical checks are examined for DeregisterCriticalServiceAfter (Consul: 30s). */
  reapIntervalMs?: number;
  /** Smallest DeregisterCriticalServiceAfter honoured (Consul's check_deregister_interval_min: 1m). */
  deregisterMinMs?: number;
  onResult?: (type: string, status: HealthStatus) => void;
  /**
   * How often an alias check re-reads its target even without a change there (Consul: 1m). It
   * makes up for a status write that failed, e.g. while the store was unavailable.
   */
  aliasRefreshMs?: number;
  /**
   * Run script and Docker checks (--enable-script-checks). Without it, such a check already stored
   * (registered while it was on, before a restart) is not run: it turns critical and says why.
   */
  scriptChecks?: boolean;
  /** The Engine API for Docker checks; made on the first one when not given. */
  docker?: DockerExec;
}

const PROBED: ReadonlySet<string> = new Set(['http', 'tcp', 'udp', 'grpc', 'h2ping', 'script', 'docker']);
const COMMANDS: ReadonlySet<string> = new Set(['script', 'docker']);

const ms = (d: string | undefined, fallback: number): number => (d ? parseGoDuration(d) / 1e6 : fallback);

interface Runner {
  readonly defKey: string;
  stop(): void;
  /** TTL checks: an update arrived, restart the expiry timer. */
  touch?(): void;
  /** Alias checks: the view changed these topics. */
  viewChanged?(touched: ReadonlySet<string>): void;
}

export class CheckScheduler {
  readonly #o: Required<Omit<SchedulerOptions, 'onResult' | 'docker'>> & Pick<SchedulerOptions, 'onResult'>;
  #docker: DockerExec | undefined;
  readonly #runners = new Map<string, Runner>();
  /** The alias runners among #runners: every view change is offered to them alone. */
  readonly #followers = new Set<Runner>();
  readonly #criticalSince = new Map<string, number>();
  #unsubscribe: (() => void) | undefined;
  #reaper: Timer | undefined;
  #closed = false;

  constructor(opts: SchedulerOptions) {
    const { docker, ...rest } = opts;
    this.#o = { minIntervalMs: 1000, reapIntervalMs: 30_000, deregisterMinMs: 60_000, aliasRefreshMs: 60_000, scriptChecks: false, ...rest };
    this.#docker = docker;
  }

  start(): void {
    const node = this.#o.registry.node.name;
    this.#unsubscribe = this.#o.view.onChange((touched, _r, checks) => {
      for (const k of checks) if (k.node === node) this.#reconcile(k);
      for (const r of this.#followers) r.viewChanged?.(touched);
    });
    for (const c of [...this.#o.view.checksOnNode(node)]) this.#reconcile({ node, checkId: c.rec.CheckID });
    this.#scheduleReap();
  }

  /** Called by the API after pass/warn/fail/update, even when nothing changed, to push the TTL out. */
  ttlUpdated(checkId: string): void {
    this.#runners.get(checkId)?.touch?.();
  }

  runnerCount(): number {
    return this.#runners.size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#reaper?.cancel();
    for (const r of this.#runners.values()) r.stop();
    this.#runners.clear();
    this.#followers.clear();
  }

  #reconcile(k: CheckKey): void {
    if (this.#closed) return;
    const cur = this.#o.view.findCheck(k.node, k.checkId)?.rec;
    this.#trackCritical(k.checkId, cur);
    const existing = this.#runners.get(k.checkId);
    const runnable = cur && (PROBED.has(cur.Type) || cur.Type === 'ttl' || cur.Type === 'alias');
    const drop = (): void => {
      if (existing === undefined) return;
      existing.stop();
      this.#runners.delete(k.checkId);
      this.#followers.delete(existing);
    };
    if (!runnable) {
      drop();
      return;
    }
    const defKey = `${cur.Type}:${JSON.stringify(cur.Definition)}`;
    if (existing?.defKey === defKey) return;
    drop();
    const runner = cur.Type === 'ttl' ? this.#ttlRunner(cur, defKey) : cur.Type === 'alias' ? this.#aliasRunner(cur, defKey) : this.#probeRunner(cur, defKey);
    this.#runners.set(k.checkId, runner);
    if (runner.viewChanged) this.#followers.add(runner);
  }

  #trackCritical(checkId: string, rec: CheckRecord | undefined): void {
    if (rec?.Status === 'critical' && rec.Definition.DeregisterCriticalServiceAfter) {
      if (!this.#criticalSince.has(checkId)) this.#criticalSince.set(checkId, this.#o.clock.now());
    } else this.#criticalSince.delete(checkId);
  }

  #scheduleReap(): void {
    if (this.#closed) return;
    this.#reaper = this.#o.clock.setTimeout(() => {
      void this.#reap().finally(() => this.#scheduleReap());
    }, this.#o.reapIntervalMs);
  }

  async #reap(): Promise<void> {
    const node = this.#o.registry.node.name;
    const now = this.#o.clock.now();
    for (const [checkId, since] of [...this.#criticalSince]) {
      const rec = this.#o.view.findCheck(node, checkId)?.rec;
      const after = rec?.Definition.DeregisterCriticalServiceAfter;
      if (!rec || !after || rec.Status !== 'critical') {
        this.#criticalSince.delete(checkId);
        continue;
      }
      const timeout = Math.max(ms(after, 0), this.#o.deregisterMinMs);
      if (now - since < timeout || !rec.ServiceID) continue;
      this.#o.logger.info({ checkId, serviceId: rec.ServiceID, criticalForMs: now - since }, 'deregistering service whose check stayed critical past DeregisterCriticalServiceAfter');
      try {
        await this.#o.registry.deregisterService(rec.ServiceID);
      } catch (err) {
        this.#o.logger.warn({ err, serviceId: rec.ServiceID }, 'could not deregister critical service');
      }
      this.#criticalSince.delete(checkId);
    }
  }

  #write(checkId: string, status: HealthStatus, output: string, type: string): Promise<void> {
    this.#o.onResult?.(type, status);
    return this.#o.registry.setCheckStatus(checkId, status, output).then(() => undefined, (err: unknown) => {
      if (this.#closed) return;
      // The store logs its own outage once; one stack trace per check run would bury it.
      if (err instanceof SwitchyardError && err.code === 'SY_ERR_STORE_UNAVAILABLE') this.#o.logger.debug({ checkId, err: err.message }, 'could not record check result');
      else this.#o.logger.warn({ err, checkId }, 'could not record check result');
    });
  }

  /** One run of a probed check's definition. */
  #probe(rec: CheckRecord, timeoutMs: number, signal: AbortSignal): Promise<CheckResult> {
    const d = rec.Definition;
    const tls = { tlsSkipVerify: d.TLSSkipVerify, tlsServerName: d.TLSServerName };
    switch (rec.Type) {
      case 'http':
        return runHttpCheck({
          url: d.HTTP as string, method: d.Method ?? 'GET', timeoutMs,
          ...(d.Header ? { header: d.Header } : {}), ...(d.Body ? { body: d.Body } : {}),
          ...(d.TLSSkipVerify ? { tlsSkipVerify: true } : {}), ...(d.TLSServerName ? { tlsServerName: d.TLSServerName } : {}),
          ...(d.DisableRedirects ? { disableRedirects: true } : {}), ...(d.OutputMaxSize ? { outputMaxSize: d.OutputMaxSize } : {}),
        }, signal);
      case 'grpc': return runGrpcCheck({ target: d.GRPC as string, useTls: d.GRPCUseTLS === true, ...tls, timeoutMs }, signal);
      case 'h2ping': return runH2PingCheck({ address: d.H2PING as string, useTls: d.H2PingUseTLS !== false, ...tls, timeoutMs }, signal);
      case 'udp': return runUdpCheck({ address: d.UDP as string, timeoutMs }, signal);
      case 'script':
      case 'docker': {
        if (!this.#o.scriptChecks) return Promise.resolve({ status: 'critical', output: `${SCRIPTS_DISABLED} (this check was registered while they were enabled)` });
        const command = { args: d.ScriptArgs, script: d.Script, timeoutMs, outputMaxSize: d.OutputMaxSize };
        if (rec.Type === 'script') return runScriptCheck(command, signal);
        this.#docker ??= new DockerodeExec();
        return runDockerCheck({ ...command, containerId: d.DockerContainerID ?? '', shell: d.Shell }, this.#docker, signal);
      }
      default: return runTcpCheck({ address: d.TCP as string, timeoutMs, useTls: d.TCPUseTLS === true, ...tls }, signal);
    }
  }

  #probeRunner(rec: CheckRecord, defKey: string): Runner {
    const d = rec.Definition;
    const checkId = rec.CheckID;
    const interval = Math.max(ms(d.Interval, 10_000), this.#o.minIntervalMs);
    const timeoutMs = ms(d.Timeout, COMMANDS.has(rec.Type) ? SCRIPT_CHECK_TIMEOUT_MS : DEFAULT_CHECK_TIMEOUT_MS);
    // Consul's StatusHandler: warning counts as a success; thresholds default to 0 (act at once).
    const successBefore = d.SuccessBeforePassing ?? 0;
    const failuresBeforeCritical = d.FailuresBeforeCritical ?? 0;
    const failuresBeforeWarning = d.FailuresBeforeWarning ?? failuresBeforeCritical;
    let successes = 0;
    let failures = 0;
    let stopped = false;
    let timer: Timer | undefined;
    const ac = new AbortController();

    const handle = (r: CheckResult): void => {
      if (r.status !== 'critical') {
        successes++;
        failures = 0;
        if (successes >= successBefore) void this.#write(checkId, r.status, r.output, rec.Type);
        return;
      }
      failures++;
      successes = 0;
      if (failures >= failuresBeforeCritical) void this.#write(checkId, 'critical', r.output, rec.Type);
      else if (failures >= failuresBeforeWarning) void this.#write(checkId, 'warning', r.output, rec.Type);
    };

    const run = async (): Promise<void> => {
      if (stopped) return;
      let r: CheckResult;
      try {
        r = await this.#probe(rec, timeoutMs, ac.signal);
      } catch (err) {
        r = { status: 'critical', output: `check failed: ${(err as Error).message}` };
      }
      if (stopped) return;
      handle(r);
      timer = this.#o.clock.setTimeout(() => void run(), interval);
    };
    timer = this.#o.clock.setTimeout(() => void run(), this.#o.random.next() * interval);
    return {
      defKey,
      stop: () => {
        stopped = true;
        timer?.cancel();
        ac.abort();
      },
    };
  }

  #aliasRunner(rec: CheckRecord, defKey: string): Runner {
    const self = { node: rec.Node, checkId: rec.CheckID };
    const target = { node: rec.Definition.AliasNode || rec.Node, service: rec.Definition.AliasService ?? '' };
    const topic = topics.node(target.node);
    let stopped = false;
    let refresh: Timer | undefined;
    // The result being written: a change that lands before the view shows it must not write it twice.
    let inFlight: string | undefined;
    const evaluate = (): void => {
      if (stopped) return;
      refresh?.cancel();
      refresh = this.#o.clock.setTimeout(evaluate, this.#o.aliasRefreshMs);
      const r = aliasHealth(this.#o.view, self, target);
      const cur = this.#o.view.findCheck(self.node, self.checkId)?.rec;
      const key = `${r.status}\n${r.output}`;
      if (!cur || (cur.Status === r.status && cur.Output === r.output) || inFlight === key) return;
      inFlight = key;
      void this.#write(self.checkId, r.status, r.output, 'alias').finally(() => {
        if (inFlight === key) inFlight = undefined;
      });
    };
    evaluate();
    return {
      defKey,
      stop: () => {
        stopped = true;
        refresh?.cancel();
      },
      viewChanged: (touched) => {
        if (touched.has(topic)) evaluate();
      },
    };
  }

  #ttlRunner(rec: CheckRecord, defKey: string): Runner {
    const ttl = ms(rec.Definition.TTL, 0);
    const checkId = rec.CheckID;
    let timer: Timer | undefined;
    const arm = (): void => {
      timer?.cancel();
      timer = this.#o.clock.setTimeout(() => {
        const cur = this.#o.view.findCheck(rec.Node, checkId)?.rec;
        if (!cur) return;
        const output = cur.Output ? `TTL expired (last output before timeout follows): ${cur.Output}` : 'TTL expired';
        this.#o.logger.info({ checkId }, 'TTL check expired');
        void this.#write(checkId, 'critical', output, 'ttl');
      }, ttl);
    };
    arm();
    return { defKey, stop: () => timer?.cancel(), touch: arm };
  }
}
