/**
 * The Store interface over an etcd v3 cluster: every agent keeps an in-memory mirror of its key
 * prefix, fed by one etcd watch, so reads stay local and synchronous (as with the embedded store)
 * while writes are etcd transactions committed by quorum. Revisions are etcd's own, so indexes
 * agree across all agents sharing the cluster.
 */
import { CompareResult, CompareTarget, Etcd3, EtcdError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { ConsecutiveBreaker, ConstantBackoff, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, retry } from 'cockatiel';
import type { IBackoff } from 'cockatiel';
import type { IKeyValue, ITxnRequest, ITxnResponse, IWatchResponse, Lease, Watcher } from 'etcd3';
import { readFileSync } from 'node:fs';
import { SwitchyardError } from '../../core/errors.js';
import { MemoryState, validateTxn } from './memory-state.js';
import type { Store, StoreChange, StoreCompare, StoreEntry, StoreEvent, StoreListener, StoreOp, StoreStats, TxnRequest, TxnResult } from './types.js';
import { StoreOutcomeUnknownError } from './types.js';
import { EtcdTxnChannel, encodeTxn } from './etcd-txn.js';
import type { TxnAnswer, TxnCompare, TxnOp } from './etcd-txn.js';

export interface EtcdStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface EtcdStoreOptions {
  /** host:port or http(s)://host:port of each member. */
  readonly endpoints: readonly string[];
  /** Every key lives under this prefix, so several registries (or other users) can share a cluster. */
  readonly prefix?: string;
  readonly logger: EtcdStoreLogger;
  /**
   * How long a write may wait for a quorum commit and for its own watch event. Without a bound a
   * write during a quorum loss would hang its HTTP client; with it the client gets a clear 503.
   */
  readonly requestTimeoutMs?: number;
  /** TLS to the members (PEM): with it, every member is spoken to over TLS. */
  readonly tls?: EtcdTls;
}

/** PEM contents: the CA that signed the members' certificates (the system's CAs without it), and a client certificate. */
export interface EtcdTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** Reads the files of --etcd-cacert/--etcd-cert/--etcd-key, naming the flag and file of whatever is wrong. */
export function readEtcdTls(files: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string }): EtcdTls {
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new SwitchyardError('SY_ERR_CONFIG', files.certFile === undefined ? '--etcd-key needs --etcd-cert (a key without its certificate)' : '--etcd-cert needs --etcd-key (a certificate without its private key)');
  }
  const read = (flag: string, file: string | undefined, label: RegExp): Buffer | undefined => {
    if (file === undefined) return undefined;
    let b: Buffer;
    try {
      b = readFileSync(file);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `${flag} ${file}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (!label.test(b.toString('latin1'))) throw new SwitchyardError('SY_ERR_CONFIG', `${flag} ${file}: not a PEM file (no ${label.source} block)`);
    return b;
  };
  const ca = read('--etcd-cacert', files.caFile, /-----BEGIN CERTIFICATE-----/);
  const cert = read('--etcd-cert', files.certFile, /-----BEGIN CERTIFICATE-----/);
  const key = read('--etcd-key', files.keyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/);
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

/** A lease whose keys etcd deletes when the holder stops renewing it (agent liveness). */
export interface StoreLease {
  readonly id: string;
  /** Called once if etcd reports the lease gone (expired while we were cut off, or revoked). */
  onLost(cb: (err: Error) => void): void;
  /** Stops renewing and deletes the lease's keys now. */
  revoke(): Promise<void>;
  /** Stops renewing only; etcd expires the lease after its TTL. */
  release(): void;
}

export const DEFAULT_ETCD_PREFIX = 'switchyard/';

/** Parses `etcd://h1:2379,h2:2379[/prefix]` (also http:// per host) into endpoints and prefix. */
export function parseEtcdUrl(url: string): { endpoints: string[]; prefix: string } {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url);
  if (!m) throw new SwitchyardError('SY_ERR_CONFIG', `store URL ${JSON.stringify(url)} is not etcd://host:port[,host:port...][/prefix]`);
  const endpoints = (m[1] ?? '').split(',').map((h) => h.trim());
  for (const h of endpoints) {
    if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(h)) {
      throw new SwitchyardError('SY_ERR_CONFIG', `store URL ${JSON.stringify(url)}: endpoint ${JSON.stringify(h)} is not host:port`);
    }
  }
  const path = (m[2] ?? '').replace(/^\/+/, '');
  return { endpoints, prefix: path === '' ? DEFAULT_ETCD_PREFIX : path.endsWith('/') ? path : `${path}/` };
}

/** The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** grpc-js's words for a call that found no open connection to its member: it never left this process. */
const NO_CONNECTION = /No connection established|ECONNREFUSED|failed to connect/i;
/** grpc-js's deadline details for a call still waiting for a connection when its time ran out. */
const NEVER_PICKED = /Waiting for LB pick|waiting for name resolution|waiting for metadata filters/i;

function noConnection(err: unknown): boolean {
  return (err instanceof GRPCUnavailableError && !/etcdserver:/.test(err.message) && NO_CONNECTION.test(err.message))
    || (err instanceof GRPCDeadlineExceededError && NEVER_PICKED.test(err.message));
}

/**
 * A member is shunned only for failures of the member itself (no connection, or one dropped), not
 * for what a live member answers: during an election every member says "etcdserver: leader
 * changed" or "no leader" for a moment, and shunning them all for that refused writes while two of
 * three members were up.
 */
export function memberUnreachable(err: unknown): boolean {
  return noConnection(err) || (err instanceof GRPCUnavailableError && !/etcdserver:/.test(err.message));
}

/**
 * The request never reached a member: every member's circuit was open, or no connection could be
 * made. Any request, a compare-and-set included, can then be sent again (to another member).
 */
export function neverSent(err: unknown): boolean {
  return isBrokenCircuitError(err) || noConnection(err);
}

/** An error after which an idempotent request may simply be sent again. */
function transient(err: unknown): boolean {
  return err instanceof GRPCDeadlineExceededError || err instanceof GRPCUnavailableError || isBrokenCircuitError(err)
    || (err instanceof EtcdError && /leader|timed out/i.test(err.message));
}

function unavailable(message: string, cause?: unknown): SwitchyardError {
  return new SwitchyardError('SY_ERR_STORE_UNAVAILABLE', message, { cause });
}

/** A transaction as the store builds it: what etcd3 takes, and what etcd-txn.ts encodes. */
interface EtcdTxn extends ITxnRequest {
  readonly compare: TxnCompare[];
  readonly success: TxnOp[];
  readonly failure: TxnOp[];
}

export class EtcdStore implements Store {
  readonly #opts: EtcdStoreOptions;
  readonly #prefix: string;
  readonly #prefixBuf: Buffer;
  readonly #timeoutMs: number;
  readonly #client: Etcd3;
  /** Transactions over HTTP/2 (etcd-txn.ts); undefined only for a member list that mixes schemes, which etcd3 refuses anyway. */
  readonly #txnChannel: EtcdTxnChannel | undefined;
  #state = MemoryState.empty();
  #revision = 0;
  #opened = false;
  #closed = false;
  /** close() was called: new writes are refused while those already submitted finish. */
  #closing = false;
  #watcher: Watcher | undefined;
  readonly #listeners = new Set<StoreListener>();
  /** Writers waiting for their revision to come back through the watch (read-your-writes). */
  readonly #waiters: { revision: number; resolve: () => void }[] = [];
  readonly #inflight = new Set<Promise<unknown>>();
  #watchConnected = false;
  /** What the last member that could not be reached said (a refused connection, a certificate that does not verify). */
  #lastMemberError: string | undefined;
  /** memberUnreachable, remembering why: once every circuit is open, the error names the last cause, not only the breakers. */
  readonly #memberFailed = (err: unknown): boolean => {
    const unreachable = memberUnreachable(err);
    if (unreachable) this.#lastMemberError = err instanceof Error ? err.message : String(err);
    return unreachable;
  };

  constructor(opts: EtcdStoreOptions) {
    this.#opts = opts;
    this.#prefix = opts.prefix ?? DEFAULT_ETCD_PREFIX;
    this.#prefixBuf = Buffer.from(this.#prefix);
    this.#timeoutMs = opts.requestTimeoutMs ?? 5000;
    const tls = opts.tls;
    const hosts = opts.endpoints.map((h) => (h.includes('://') ? h : `${tls ? 'https' : 'http'}://${h}`));
    this.#txnChannel = hosts.every((h) => h.startsWith('http://')) || (tls && hosts.every((h) => h.startsWith('https://')))
      ? new EtcdTxnChannel(hosts, this.#memberFailed, tls)
      : undefined;
    this.#client = new Etcd3({
      hosts,
      // grpc-js takes no CA as "the system's CAs", as node:tls does.
      ...(tls ? { credentials: { rootCertificate: tls.ca as Buffer, ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) } } : {}),
      dialTimeout: Math.min(this.#timeoutMs, 3000),
      // Reconnect a dropped watch fast: writes wait for their own event, and the default backoff
      // (growing to 30 s) would stretch one lost member into seconds of refused writes.
      // (etcd3 calls next() on what it is given, as on its own default factory; its type names the step.)
      // Each member sits out at most 1 s after three failures of its own (etcd3's default is 5 s and
      // counts any recoverable error, so an election shunned every member at once).
      // etcd3's own retry would resend any recoverable failure, a compare-and-set that may have
      // committed included; here it resends only what never left (another member is picked).
      faultHandling: {
        watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1000 }) as unknown as IBackoff<unknown>,
        host: () => circuitBreaker(handleWhen(this.#memberFailed), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
        global: retry(handleWhen(neverSent), { maxAttempts: 2 * opts.endpoints.length, backoff: new ConstantBackoff(50) }),
      },
    });
  }

  #deadline(): { deadline: Date } {
    return { deadline: new Date(Date.now() + this.#timeoutMs) };
  }

  #describe(): string {
    return `etcd ${this.#opts.endpoints.join(',')}`;
  }

  #fail(what: string, err: unknown): SwitchyardError {
    if (err instanceof SwitchyardError) return err;
    const reason = err instanceof GRPCDeadlineExceededError ? `no answer within ${this.#timeoutMs} ms (quorum lost or members unreachable)`
      : isBrokenCircuitError(err) ? `every member failed its recent calls (unreachable, or quorum lost)${this.#lastMemberError === undefined ? '' : `; the last: ${this.#lastMemberError}`}`
        : err instanceof Error ? err.message : String(err);
    return unavailable(`${what} failed on ${this.#describe()}: ${reason}`, err);
  }

  async open(): Promise<{ revision: number; entries: StoreEntry[] }> {
    if (this.#opened) throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', 'store already opened');
    this.#opened = true;
    const { revision, state } = await this.#load();
    this.#state = state;
    this.#revision = revision;
    this.#watch(revision);
    return { revision, entries: state.entriesUnordered() };
  }

  /** Reads the whole prefix at one revision. */
  async #load(): Promise<{ revision: number; state: MemoryState }> {
    const range = { key: this.#prefixBuf, range_end: prefixEnd(this.#prefixBuf) };
    const res = await this.#retrying('reading the registry', transient, this.#attemptMs(), (deadline) => this.#client.kv.range(range, { deadline }));
    const state = MemoryState.empty();
    for (const kv of res.kvs) state.set(this.#entry(kv));
    return { revision: Number(res.header.revision), state };
  }

  #entry(kv: IKeyValue): StoreEntry {
    return Object.freeze({
      key: kv.key.subarray(this.#prefixBuf.length).toString(),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      version: Number(kv.version),
    });
  }

  #watch(fromRevision: number): void {
    const watcher = this.#client.watch().prefix(this.#prefix).startRevision(String(fromRevision + 1)).watcher();
    this.#watcher = watcher;
    watcher.on('connected', () => {
      if (!this.#watchConnected) this.#opts.logger.info({ revision: this.#revision }, 'etcd watch connected');
      this.#watchConnected = true;
    });
    watcher.on('disconnected', (err: EtcdError) => {
      if (this.#watchConnected) this.#opts.logger.warn({ err: err.message }, 'etcd watch disconnected; serving the last state while reconnecting');
      this.#watchConnected = false;
    });
    watcher.on('data', (res: IWatchResponse) => this.#onWatch(res));
    watcher.on('error', (err: EtcdError) => {
      // A watch is cancelled when its start revision was compacted away: reload and diff.
      if (this.#closed || watcher !== this.#watcher) return;
      this.#opts.logger.warn({ err: err.message }, 'etcd watch cancelled; resynchronizing from a full read');
      void watcher.cancel().catch(() => undefined);
      void this.#resync();
    });
  }

  async #resync(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const { revision, state } = await this.#load();
        const events: StoreEvent[] = [];
        for (const entry of state.entries()) {
          const prev = this.#state.get(entry.key);
          if (prev?.modRevision === entry.modRevision) continue;
          events.push(Object.freeze(prev ? { type: 'put', key: entry.key, entry, prev } : { type: 'put', key: entry.key, entry }));
        }
        for (const prev of this.#state.entries()) {
          if (state.get(prev.key) === undefined) events.push(Object.freeze({ type: 'delete', key: prev.key, prev }));
        }
        this.#state = state;
        if (revision > this.#revision) this.#deliver({ revision, events }, false);
        this.#watch(revision);
        return;
      } catch (err) {
        this.#opts.logger.warn({ err: err instanceof Error ? err.message : String(err), attempt }, 'etcd resync failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }

  #onWatch(res: IWatchResponse): void {
    if (this.#closed) return;
    let pending: StoreEvent[] = [];
    let pendingRev = 0;
    const flush = (): void => {
      if (pending.length > 0 && pendingRev > this.#revision) this.#deliver({ revision: pendingRev, events: pending }, true);
      pending = [];
    };
    for (const ev of res.events) {
      const rev = Number(ev.kv.mod_revision);
      if (rev !== pendingRev) {
        flush();
        pendingRev = rev;
      }
      if (rev <= this.#revision) continue; // already seen (a resumed watch may replay)
      const key = ev.kv.key.subarray(this.#prefixBuf.length).toString();
      if (ev.type === 'Put') {
        const entry = this.#entry(ev.kv);
        const prev = this.#state.get(key);
        pending.push(Object.freeze(prev ? { type: 'put', key, entry, prev } : { type: 'put', key, entry }));
      } else {
        const prev = this.#state.get(key);
        if (prev) pending.push(Object.freeze({ type: 'delete', key, prev }));
      }
    }
    flush();
  }

  /** Applies a change to the mirror (unless already applied) and tells listeners and waiting writers. */
  #deliver(change: StoreChange, apply: boolean): void {
    if (apply) {
      for (const ev of change.events) {
        if (ev.type === 'put' && ev.entry) this.#state.set(ev.entry);
        else this.#state.delete(ev.key);
      }
    }
    this.#revision = change.revision;
    for (const l of [...this.#listeners]) {
      try {
        l(change);
      } catch (err) {
        this.#opts.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'store listener failed');
      }
    }
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i];
      if (w && w.revision <= change.revision) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  #compare(c: StoreCompare): { key: Buffer; target: CompareTarget; result: CompareResult; mod_revision?: number; create_revision?: number } {
    const key = Buffer.from(this.#prefix + c.key);
    if (c.target === 'modRevision') return { key, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: c.equals };
    // A missing key compares as create_revision 0.
    return c.equals
      ? { key, target: CompareTarget.Create, result: CompareResult.Greater, create_revision: 0 }
      : { key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 };
  }

  /**
   * etcd refuses a transaction that writes one key twice or puts a key inside a range it also
   * deletes; the embedded store applies ops in order. Folding to the same end state keeps both
   * stores interchangeable for every transaction the registry issues.
   */
  #ops(ops: readonly StoreOp[]): TxnOp[] {
    const puts = new Map<string, StoreOp & { type: 'put' }>();
    const deletes = new Set<string>();
    const prefixes: string[] = [];
    for (const op of ops) {
      if (op.type === 'put') {
        if (prefixes.some((p) => op.key.startsWith(p))) {
          throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `etcd cannot put ${op.key} in the transaction that deletes the range around it`);
        }
        deletes.delete(op.key);
        puts.set(op.key, op);
      } else if (op.type === 'delete') {
        puts.delete(op.key);
        deletes.add(op.key);
      } else {
        for (const k of [...puts.keys()]) if (k.startsWith(op.prefix)) puts.delete(k);
        prefixes.push(op.prefix);
      }
    }
    const out: TxnOp[] = [];
    for (const p of prefixes) {
      const key = Buffer.from(this.#prefix + p);
      out.push({ request_delete_range: { key, range_end: prefixEnd(key) } });
    }
    for (const k of deletes) {
      if (!prefixes.some((p) => k.startsWith(p))) out.push({ request_delete_range: { key: Buffer.from(this.#prefix + k) } });
    }
    for (const op of puts.values()) {
      out.push({ request_put: { key: Buffer.from(this.#prefix + op.key), value: Buffer.from(op.value), ...(op.lease ? { lease: op.lease } : {}) } });
    }
    return out;
  }

  txn(req: TxnRequest): Promise<TxnResult> {
    if (this.#closing) return Promise.reject(new SwitchyardError('SY_ERR_STORE_CLOSED', 'store is closed'));
    const p = this.#txn(req);
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p)).catch(() => undefined);
    return p;
  }

  async #txn(req: TxnRequest): Promise<TxnResult> {
    validateTxn(req, { leases: true });
    const success = this.#ops(req.success);
    const failure = this.#ops(req.failure ?? []);
    const request: EtcdTxn = { compare: (req.compare ?? []).map((c) => this.#compare(c)), success, failure };
    const res = await this.#commit(request, (req.compare ?? []).every((c) => c.target === 'exists'));
    const ran = res.succeeded ? success : failure;
    const changed = ran.some((op, i) => op.request_put !== undefined || Number(res.responses[i]?.response_delete_range?.deleted ?? 0) > 0);
    if (!changed) return { succeeded: res.succeeded, revision: this.#revision };
    const revision = Number(res.header.revision);
    await this.#waitDelivered(revision);
    return { succeeded: res.succeeded, revision };
  }

  /**
   * Sends a transaction, retrying within the timeout budget when etcd did not answer. A proposal
   * in flight when the leader dies is neither committed nor refused until etcd's own request
   * timeout (5 s and more), so one attempt would turn a routine leader change into an error.
   * Only transactions whose repetition lands in the same state are retried: plain writes and
   * writes guarded by existence. A modRevision-guarded one (KV ?cas) that timed out may have
   * committed, and a retry would then wrongly answer false, so it fails with StoreOutcomeUnknownError
   * instead (callers that can plan again on fresh state do), unless it never reached a member at all
   * (every circuit open, no connection), which any transaction can retry.
   */
  async #commit(request: EtcdTxn, retriable: boolean): Promise<ITxnResponse | TxnAnswer> {
    const channel = this.#txnChannel;
    // Encoded once, whatever the number of attempts.
    const body = channel === undefined ? undefined : encodeTxn(request.compare, request.success, request.failure);
    const send = (deadline: Date): Promise<ITxnResponse | TxnAnswer> => channel === undefined || body === undefined
      ? this.#client.kv.txn(request, { deadline })
      : channel.txn(body, deadline);
    try {
      // Guarded ones get half the budget too: a proposal a follower forwarded to a leader that died is
      // dropped, and etcd says so only after its own request timeout (5 s and more), so waiting longer
      // for that answer gains nothing; the caller learns the outcome is unknown while it can still act.
      return await this.#retrying('write', (err) => neverSent(err) || (retriable && transient(err)), this.#attemptMs(), send);
    } catch (err) {
      // A guarded transaction whose answer was lost: say so, so that a caller that can plan again does.
      const cause = err instanceof SwitchyardError ? err.cause : err;
      if (!retriable && transient(cause) && !neverSent(cause)) {
        throw new StoreOutcomeUnknownError(`${err instanceof Error ? err.message : String(err)} (the write may or may not have been applied)`, cause, this.#timeoutMs);
      }
      throw err;
    }
  }

  /**
   * One attempt of a request that may be repeated: a third of the budget, so a member that hangs
   * (a proposal forwarded to a leader that died waits for etcd's own 5 s+ timeout) leaves time for
   * two more, after the election (about 10 election timeouts at worst).
   */
  #attemptMs(): number {
    return Math.max(500, Math.floor(this.#timeoutMs / 3));
  }

  /** Runs `attempt` until it succeeds, the timeout budget is spent, or it fails in a way `mayRetry` says not to repeat. */
  async #retrying<T>(what: string, mayRetry: (err: unknown) => boolean, attemptMs: number, attempt: (deadline: Date) => Promise<T>): Promise<T> {
    const end = Date.now() + this.#timeoutMs;
    for (;;) {
      try {
        return await attempt(new Date(Math.min(end, Date.now() + attemptMs)));
      } catch (err) {
        if (!mayRetry(err) || this.#closing || Date.now() + 100 >= end) throw this.#fail(what, err);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  #waitDelivered(revision: number): Promise<void> {
    if (this.#revision >= revision) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(unavailable(`write committed at revision ${revision} on ${this.#describe()}, but this agent's watch has not delivered it within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Grants a lease with the given TTL; etcd3 renews it in the background until revoked or released. */
  async lease(ttlSeconds: number): Promise<StoreLease> {
    let lease!: Lease;
    // A grant that timed out may still have created a lease: it was never renewed, so etcd expires it after its TTL.
    const id = await this.#retrying('granting a lease', transient, this.#attemptMs(), async (deadline) => {
      const candidate = this.#client.lease(ttlSeconds, { autoKeepAlive: true });
      let timer: NodeJS.Timeout | undefined;
      try {
        const granted = await Promise.race([
          candidate.grant(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new GRPCDeadlineExceededError('lease grant timed out')), Math.max(0, deadline.getTime() - Date.now()));
          }),
        ]);
        lease = candidate;
        return granted;
      } catch (err) {
        candidate.release();
        throw err;
      } finally {
        clearTimeout(timer);
      }
    });
    let lostCb: ((err: Error) => void) | undefined;
    let lost = false;
    lease.on('lost', (err) => {
      if (lost) return;
      lost = true;
      lostCb?.(err);
    });
    return {
      id,
      onLost: (cb) => void (lostCb = cb),
      revoke: async () => {
        lost = true;
        await lease.revoke(this.#deadline()).catch(() => lease.release());
      },
      release: () => {
        lost = true;
        lease.release();
      },
    };
  }

  get(key: string): StoreEntry | undefined {
    return this.#state.get(key);
  }

  range(prefix: string): StoreEntry[] {
    return this.#state.range(prefix);
  }

  subscribe(listener: StoreListener): () => void {
    // A wrapper gives each subscription its own identity, so subscribing one function twice is two subscriptions.
    const wrapped: StoreListener = (c) => listener(c);
    this.#listeners.add(wrapped);
    return () => void this.#listeners.delete(wrapped);
  }

  revision(): number {
    return this.#revision;
  }

  /** Whether the watch stream is up (false while etcd is unreachable: reads are then possibly stale). */
  connected(): boolean {
    return this.#watchConnected;
  }

  stats(): StoreStats {
    return { revision: this.#revision, keys: this.#state.size, endpoints: this.#opts.endpoints.join(','), prefix: this.#prefix, watch: this.#watchConnected ? 'connected' : 'disconnected' };
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await Promise.allSettled([...this.#inflight]);
    this.#closed = true;
    const w = this.#watcher;
    this.#watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
    this.#txnChannel?.close();
    this.#client.close();
  }
}
