/**
 * consul-template's runtime: render every template against a cache of dependency data, watch what
 * the templates read with blocking queries, write a destination only when all its data is there
 * and its bytes changed (atomically, keeping the file's mode), then run its command.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, openSync, fsyncSync, closeSync, chmodSync, unlinkSync, existsSync, linkSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { longTimeout } from '../core/clock.js';
import type { Timer } from '../core/clock.js';
import { watch } from '../registry/api/client.js';
import type { RegistryClient } from '../registry/api/client.js';
import type { ApiHealthEntry, ApiNode } from '../registry/api/types.js';
import { sleep } from '../core/sleep.js';
import { parseKvJson } from '../registry/api/kv.js';
import type { KvEntryJson } from './data.js';
import { compileTemplate, toCatalogNode, toCatalogNodes, toCatalogServices, toHealthServices, toKeyPairs } from './index.js';
import type { ApiCatalogNode, CompiledTemplate, Dependency, TemplateData } from './index.js';
import { keyDependencyId, nodeDependencyId, nodesDependencyId, prefixDependencyId, serviceDependencyId, servicesDependencyId } from './query.js';

export interface TemplateSpec {
  /** File name of the template (also its name in error messages). */
  readonly source: string;
  /** Inline template text (consul-template's `contents`), instead of reading `source`. */
  readonly contents?: string;
  readonly destination: string;
  readonly command?: string;
  readonly commandTimeoutMs?: number;
  readonly perms?: number;
  readonly leftDelim?: string;
  readonly rightDelim?: string;
  readonly errorOnMissingKey?: boolean;
  /** false: a missing destination directory is an error, not created (consul-template's create_dest_dirs). */
  readonly createDestDirs?: boolean;
  /** Keep the replaced file as `<destination>.bak` (consul-template's backup). */
  readonly backup?: boolean;
  /** false: an execution error of this template is logged and the others go on (consul-template's error_fatal). */
  readonly errorFatal?: boolean;
}

export interface RunnerOptions {
  client: RegistryClient;
  templates: readonly TemplateSpec[];
  logger: Logger;
  /** Quiescence: render when no change came for `min`, but at most `max` after the first change. */
  wait?: { minMs: number; maxMs: number };
  once?: boolean;
  dry?: boolean;
  /** Where -dry output goes. */
  stdout?: (s: string) => void;
  blockWaitMs?: number;
  /**
   * How often what has no blocking query is looked at again: files read by `file` (consul-template stats them
   * every 2 s) and `datacenters` (every 15 s).
   */
  pollMs?: { file?: number; datacenters?: number };
  /** Extra environment for the templates' commands (consul-template passes its registry address and token on). */
  commandEnv?: Readonly<Record<string, string>>;
  /** Called after every render pass once all templates have rendered, with whether a destination changed (-exec follows it). */
  onRendered?: (changed: boolean) => void;
}

interface Compiled {
  readonly spec: TemplateSpec;
  readonly tpl: CompiledTemplate;
  rendered: boolean;
  commandPending: boolean;
}

type KvState = { exists: boolean; value: string };

function params(dc: string, extra: string[] = []): string {
  const q = [...extra];
  if (dc) q.push(`dc=${encodeURIComponent(dc)}`);
  q.push('stale=');
  return `?${q.join('&')}`;
}

const encKey = (k: string): string => k.split('/').map(encodeURIComponent).join('/');

export class TemplateRunner {
  readonly #o: RunnerOptions;
  readonly #tpls: Compiled[];
  readonly #brain = new Map<string, unknown>();
  readonly #watches = new Map<string, AbortController>();
  readonly #ac = new AbortController();
  #quiet: Timer | undefined;
  #maxTimer: Timer | undefined;
  #allRendered = false;
  #done: ((code: number) => void) | undefined;
  #renderQueued = false;

  /** Compiles every template first: a template error means nothing is written and the process fails. */
  constructor(opts: RunnerOptions) {
    this.#o = opts;
    this.#tpls = opts.templates.map((spec) => ({
      spec,
      tpl: compileTemplate(spec.contents ?? readFileSync(spec.source, 'utf8'), {
        name: spec.source,
        ...(spec.leftDelim ? { leftDelim: spec.leftDelim } : {}),
        ...(spec.rightDelim ? { rightDelim: spec.rightDelim } : {}),
        ...(spec.errorOnMissingKey ? { errorOnMissingKey: true } : {}),
      }),
      rendered: false,
      commandPending: false,
    }));
  }

  /** Runs until stop() (or, with once, until every template rendered and its command ran). Resolves with an exit code. */
  run(): Promise<number> {
    return new Promise((resolve) => {
      this.#done = (code) => {
        this.stop();
        resolve(code);
      };
      this.#renderInBackground();
    });
  }

  stop(): void {
    this.#ac.abort();
    for (const ac of this.#watches.values()) ac.abort();
    this.#quiet?.cancel();
    this.#maxTimer?.cancel();
  }

  #data(): TemplateData {
    const b = this.#brain;
    const kv = (id: string): KvState | undefined => b.get(id) as KvState | undefined;
    return {
      service: (q) => b.get(serviceDependencyId(q)) as ReturnType<TemplateData['service']>,
      services: (q) => b.get(servicesDependencyId(q)) as ReturnType<TemplateData['services']>,
      key: (q) => {
        const s = kv(keyDependencyId(q, true));
        return s?.exists ? s.value : undefined;
      },
      keyExists: (q) => kv(keyDependencyId(q, false))?.exists,
      keyOrDefault: (q) => {
        const s = kv(keyDependencyId(q, false));
        return s === undefined ? undefined : s.exists ? s.value : null;
      },
      ls: (q) => b.get(prefixDependencyId(q)) as ReturnType<TemplateData['ls']>,
      tree: (q) => b.get(prefixDependencyId(q)) as ReturnType<TemplateData['tree']>,
      nodes: (q) => b.get(nodesDependencyId(q)) as ReturnType<NonNullable<TemplateData['nodes']>>,
      node: (q) => b.get(nodeDependencyId(q)) as ReturnType<NonNullable<TemplateData['node']>>,
      datacenters: () => b.get('catalog.datacenters') as ReturnType<NonNullable<TemplateData['datacenters']>>,
    };
  }

  /** Starts a blocking-query watch for a dependency the first time a template reads it. */
  #ensureWatch(dep: Dependency): void {
    if (this.#watches.has(dep.id) || this.#ac.signal.aborted) return;
    // Not linked to #ac by a listener per watch (past ten, Node warns of a leak on every template that reads
    // more than ten dependencies): stop() aborts the watches it holds.
    const ac = new AbortController();
    this.#watches.set(dep.id, ac);
    const store = (value: unknown): void => {
      this.#brain.set(dep.id, value);
      this.#changed();
    };
    const onError = (err: unknown, attempt: number): void => {
      if (attempt === 1 || attempt % 10 === 0) this.#o.logger.warn({ dependency: dep.id, attempt, err: (err as Error).message }, 'registry query failed: retrying');
    };
    const opts = { waitMs: this.#o.blockWaitMs ?? 60_000, onError };
    const c = this.#o.client;
    switch (dep.type) {
      case 'health.service':
      case 'health.connect': {
        const q = dep.query;
        const extra: string[] = [];
        if (q.passingOnly) extra.push('passing=1');
        if (q.tag) extra.push(`tag=${encodeURIComponent(q.tag)}`);
        if (q.near) extra.push(`near=${encodeURIComponent(q.near)}`);
        const kind = dep.type === 'health.connect' ? 'connect' : 'service';
        void watch<ApiHealthEntry[]>(c, `/v1/health/${kind}/${encodeURIComponent(q.name)}${params(q.dc, extra)}`,
          (v) => store(toHealthServices(v ?? [], { filters: q.filters, near: q.near })), ac.signal, opts);
        return;
      }
      case 'catalog.services':
        void watch<Record<string, string[]>>(c, `/v1/catalog/services${params(dep.query.dc)}`, (v) => store(toCatalogServices(v ?? {})), ac.signal, opts);
        return;
      case 'kv.block':
      case 'kv.get':
        void watch<KvEntryJson[] | undefined>(c, `/v1/kv/${encKey(dep.query.key)}${params(dep.query.dc)}`, (v, _i, status) => {
          const e = status === 404 ? undefined : v?.[0];
          store({ exists: e !== undefined, value: e?.Value ? Buffer.from(e.Value, 'base64').toString('utf8') : '' } satisfies KvState);
        }, ac.signal, opts);
        return;
      case 'kv.list':
        void watch<KvEntryJson[] | undefined>(c, `/v1/kv/${encKey(dep.query.prefix)}${params(dep.query.dc, ['recurse='])}`, (v, _i, status) => {
          store(status === 404 ? [] : toKeyPairs(v ?? [], dep.query.prefix));
        }, ac.signal, { ...opts, parse: parseKvJson });
        return;
      case 'catalog.nodes': {
        const near = dep.query.near ? [`near=${encodeURIComponent(dep.query.near)}`] : [];
        void watch<ApiNode[]>(c, `/v1/catalog/nodes${params(dep.query.dc, near)}`, (v) => store(toCatalogNodes(v ?? [], dep.query.near)), ac.signal, opts);
        return;
      }
      case 'catalog.node': {
        const q = dep.query;
        // No name: the agent's own node, as consul-template asks the agent for it.
        void this.#nodeName(q.name, ac.signal, onError).then((name) => {
          if (name === undefined) return;
          return watch<ApiCatalogNode | null>(c, `/v1/catalog/node/${encodeURIComponent(name)}${params(q.dc)}`, (v) => store(toCatalogNode(v ?? null)), ac.signal, opts);
        });
        return;
      }
      case 'catalog.datacenters':
        // Consul gives no index for the datacenter list, so it is polled (consul-template: every 15 s).
        void poll(async () => this.#o.client.get<string[]>('/v1/catalog/datacenters', ac.signal), store, this.#o.pollMs?.datacenters ?? 15_000, ac.signal, onError);
        return;
      case 'file':
        // The render reads the file itself; watching it means rendering again when it changes (or appears).
        void poll(() => fileSignature(dep.path), store, this.#o.pollMs?.file ?? 2_000, ac.signal, onError);
        return;
      default: {
        const unknown: never = dep;
        this.#o.logger.error({ dependency: (unknown as Dependency).id }, 'this dependency type is not supported by switchyard template');
        this.#done?.(1);
      }
    }
  }

  /** The node a `node` query names, or the agent's own; undefined once stopped. Retried with the watches' backoff. */
  async #nodeName(name: string, signal: AbortSignal, onError: (err: unknown, attempt: number) => void): Promise<string | undefined> {
    if (name !== '') return name;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const self = await this.#o.client.get<{ Config?: { NodeName?: string } }>('/v1/agent/self', signal);
        const n = self.Config?.NodeName;
        if (typeof n === 'string' && n !== '') return n;
        throw new Error('/v1/agent/self has no Config.NodeName');
      } catch (err) {
        if (signal.aborted) return undefined;
        onError(err, attempt);
        await sleep(Math.min(10_000, 250 * 2 ** Math.min(attempt, 6)), signal);
      }
    }
    return undefined;
  }

  /** New data arrived: render at once until everything rendered, then honour the quiescence window. */
  #changed(): void {
    const w = this.#o.wait;
    if (!this.#allRendered || !w || this.#o.once) {
      if (!this.#renderQueued) {
        this.#renderQueued = true;
        setImmediate(() => {
          this.#renderQueued = false;
          this.#renderInBackground();
        });
      }
      return;
    }
    // Any -wait works (see longTimeout): a plain timer above 2^31 - 1 ms would fire at once.
    this.#quiet?.cancel();
    this.#quiet = longTimeout(() => this.#fire(), w.minMs);
    this.#maxTimer ??= longTimeout(() => this.#fire(), w.maxMs);
  }

  #fire(): void {
    this.#quiet?.cancel();
    this.#maxTimer?.cancel();
    this.#maxTimer = undefined;
    this.#renderInBackground();
  }

  /** A render nobody awaits (data arrived, a timer fired): an unexpected failure ends the run with exit code 1, never an unhandled rejection. */
  #renderInBackground(): void {
    this.#renderAll().catch((err: unknown) => {
      this.#o.logger.error({ err: (err as Error).message }, 'render failed');
      this.#done?.(1);
    });
  }

  async #renderAll(): Promise<void> {
    if (this.#ac.signal.aborted) return;
    const data = this.#data();
    const env = { env: process.env, readFile: (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } } };
    const changed: Compiled[] = [];
    for (const t of this.#tpls) {
      let r;
      try {
        r = t.tpl.render(data, env);
      } catch (err) {
        this.#o.logger.error({ template: t.spec.source, err: (err as Error).message }, 'template execution failed: nothing written');
        process.stderr.write(`switchyard template: ${(err as Error).message}\n`);
        if (t.spec.errorFatal === false) continue;
        this.#done?.(1);
        return;
      }
      for (const d of r.used) this.#ensureWatch(d);
      for (const d of r.missing) this.#ensureWatch(d);
      if (r.missing.length > 0) continue;
      t.rendered = true;
      if (this.#write(t, r.output)) changed.push(t);
    }
    const all = this.#tpls.every((t) => t.rendered);
    if (all && !this.#allRendered) {
      this.#allRendered = true;
      this.#o.logger.info({ templates: this.#tpls.length }, 'all templates rendered');
    }
    const failed = await this.#runCommands(changed);
    if (all && !this.#ac.signal.aborted) this.#o.onRendered?.(changed.length > 0);
    if (this.#o.once && all) this.#done?.(failed ? 1 : 0);
  }

  /** Writes atomically when the bytes differ; returns whether the destination changed. */
  #write(t: Compiled, output: string): boolean {
    const dst = t.spec.destination;
    if (this.#o.dry) {
      (this.#o.stdout ?? ((s: string) => process.stdout.write(s)))(`> ${dst}\n${output}`);
      return false;
    }
    let mode = t.spec.perms;
    try {
      const cur = readFileSync(dst, 'utf8');
      mode ??= statSync(dst).mode & 0o7777;
      if (cur === output) return t.commandPending;
    } catch {
      // Absent destination: created below.
    }
    const tmp = join(dirname(dst), `.${basename(dst)}.switchyard-${process.pid}.tmp`);
    try {
      if (t.spec.createDestDirs !== false) mkdirSync(dirname(dst), { recursive: true });
      writeFileSync(tmp, output, { mode: mode ?? 0o644 });
      chmodSync(tmp, mode ?? 0o644);
      const fd = openSync(tmp, 'r');
      fsyncSync(fd);
      closeSync(fd);
      if (t.spec.backup) backUp(dst);
      renameSync(tmp, dst);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to clean up
      }
      this.#o.logger.error({ destination: dst, err: (err as Error).message }, 'could not write the destination');
      return false;
    }
    this.#o.logger.info({ source: t.spec.source, destination: dst }, 'rendered');
    return true;
  }

  /** Runs the commands of changed templates in order, once per distinct command; a failure is retried on the next change. */
  async #runCommands(changed: readonly Compiled[]): Promise<boolean> {
    let failed = false;
    const seen = new Set<string>();
    for (const t of changed) {
      const cmd = t.spec.command;
      if (!cmd || this.#o.dry) continue;
      if (seen.has(cmd)) {
        t.commandPending = false;
        continue;
      }
      seen.add(cmd);
      const r = await runCommand(cmd, t.spec.commandTimeoutMs ?? 30_000, this.#o.commandEnv);
      if (r.ok) {
        t.commandPending = false;
        this.#o.logger.info({ destination: t.spec.destination, command: cmd, code: r.code, ms: r.ms }, 'command ran');
      } else {
        failed = true;
        t.commandPending = true;
        this.#o.logger.error({ destination: t.spec.destination, command: cmd, code: r.code, output: r.output.slice(-2000), timedOut: r.timedOut }, 'command failed: will run again on the next change');
      }
    }
    return failed;
  }
}

/** `sh -c <command>` in its own process group, killed (group and all) after the timeout. */
export function runCommand(cmd: string, timeoutMs: number, env?: Readonly<Record<string, string>>): Promise<{ ok: boolean; code: number | null; output: string; timedOut: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('sh', ['-c', cmd], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let output = '';
    const add = (d: Buffer): void => {
      output = (output + d.toString()).slice(-8192);
    };
    child.stdout?.on('data', add);
    child.stderr?.on('data', add);
    let timedOut = false;
    // Any command_timeout (see longTimeout): "1000h" used to kill the command after a millisecond.
    const timer = longTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (err) => {
      timer.cancel();
      resolve({ ok: false, code: null, output: err.message, timedOut, ms: Date.now() - started });
    });
    child.on('close', (code) => {
      timer.cancel();
      resolve({ ok: code === 0 && !timedOut, code, output, timedOut, ms: Date.now() - started });
    });
  });
}

/**
 * consul-template's backup: the file about to be replaced is hard-linked as `<dst>.bak`, the previous
 * `.bak` kept as `<dst>.old.bak` until the new link is in place. Nothing to keep when there is no file yet.
 */
function backUp(dst: string): void {
  if (!existsSync(dst)) return;
  const bak = `${dst}.bak`;
  const old = `${dst}.old.bak`;
  if (existsSync(bak)) renameSync(bak, old);
  linkSync(dst, bak);
  rmSync(old, { force: true });
}

/** What `file` watches: a change of size, modification time or inode (a rename over it), or the file appearing or going. */
function fileSignature(path: string): string {
  try {
    const st = statSync(path);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/** Reads `read` now and every `everyMs`, storing a value only when it differs from the last one stored. */
async function poll(read: () => unknown, store: (v: unknown) => void, everyMs: number, signal: AbortSignal, onError: (err: unknown, attempt: number) => void): Promise<void> {
  let last: string | undefined;
  let attempt = 0;
  while (!signal.aborted) {
    try {
      const v = await read();
      attempt = 0;
      const key = JSON.stringify(v);
      if (key !== last && !signal.aborted) {
        last = key;
        store(v);
      }
    } catch (err) {
      if (signal.aborted) return;
      onError(err, ++attempt);
    }
    await sleep(everyMs, signal);
  }
}
