/**
 * A small client for any Consul-compatible API (our agent or a real Consul): typed reads with
 * blocking-query support and the client rules Consul documents (reset when the index goes
 * backwards, treat 0 as 1, rate-limit tight loops), used by every tool that talks to a registry.
 */
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { longTimeout } from '../../core/clock.js';
import { SwitchyardError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';

export interface ClientOptions {
  /**
   * Base URL, e.g. http://127.0.0.1:8500 (a bare host:port gets http://). A comma-separated list
   * names several agents of one cluster: a call that cannot reach one moves on to the next.
   */
  address: string;
  token?: string;
  /** Per-request timeout for non-blocking calls (ms). */
  timeoutMs?: number;
}

export interface BlockingResult<T> {
  readonly index: number;
  readonly value: T;
  /** HTTP status (200, or 404 for a missing KV key). */
  readonly status: number;
  /**
   * When the serving agent applied the change at `index` (Unix ms), from our agent's
   * X-Switchyard-Index-Time; undefined from registries without it (Consul).
   */
  readonly indexTime?: number;
}

/** Switchyard's header beside X-Consul-Index (docs/registry.md). */
const INDEX_TIME = 'x-switchyard-index-time';

export class RegistryClientError extends SwitchyardError {
  readonly status: number | undefined;
  constructor(message: string, status?: number, cause?: unknown) {
    super('SY_ERR_INTERNAL', message, { cause });
    this.status = status;
    this.name = 'RegistryClientError';
  }
}

export function normalizeAddress(addr: string): string {
  const a = addr.trim().replace(/\/+$/, '');
  return /^https?:\/\//.test(a) ? a : `http://${a}`;
}

interface CallOptions {
  body?: string | Buffer;
  signal?: AbortSignal;
  timeoutMs?: number;
  allow404?: boolean;
  /** Read the answer as bytes (an error's body is still read as text for its message). */
  binary?: boolean;
}

export class RegistryClient {
  /** The agents, each as its base URL and that URL's origin and path prefix (an agent behind a proxy may live under one). */
  readonly #targets: readonly { base: string; origin: string; prefix: string }[];
  #current = 0;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #dispatcher: Dispatcher;
  #disconnects = 0;

  constructor(opts: ClientOptions) {
    const bases = opts.address.split(',').map((a) => a.trim()).filter((a) => a !== '').map(normalizeAddress);
    if (bases.length === 0) throw new RegistryClientError(`registry address ${JSON.stringify(opts.address)} names no agent`);
    this.#targets = bases.map((b) => {
      let u: URL;
      try {
        u = new URL(b);
      } catch {
        throw new RegistryClientError(`registry address ${JSON.stringify(b)} is not a URL or host:port`);
      }
      return { base: b, origin: u.origin, prefix: u.pathname.replace(/\/+$/, '') };
    });
    this.#token = opts.token;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    // Blocking queries hold a connection each for up to wait + wait/16; keep the idle timeout above that.
    this.#dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 64, headersTimeout: 0, bodyTimeout: 0 });
    this.#dispatcher.on('disconnect', () => {
      this.#disconnects++;
    });
  }

  /**
   * How many connections to agents have closed so far. An agent that restarts closes them all, even
   * the idle ones between two blocking reads, which see no error of their own (see watch).
   */
  get disconnects(): number {
    return this.#disconnects;
  }

  /** The agent calls go to now (the first of the list until it fails). */
  get base(): string {
    return (this.#targets[this.#current] as { base: string }).base;
  }

  #headers(): Record<string, string> {
    return this.#token ? { 'X-Consul-Token': this.#token } : {};
  }

  async #call(method: 'GET' | 'PUT' | 'DELETE', path: string, opts: CallOptions = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string; bytes?: Buffer }> {
    const ac = new AbortController();
    // A blocking read's timeout follows its wait, which a caller may set to any length (lock -timeout).
    const timer = longTimeout(() => ac.abort(new Error(`timed out after ${opts.timeoutMs ?? this.#timeoutMs} ms`)), opts.timeoutMs ?? this.#timeoutMs);
    const onAbort = (): void => ac.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const at = this.#targets[this.#current] as { base: string; origin: string; prefix: string };
    const base = at.base;
    try {
      // The path goes out as written: through a URL, `a/../b` would become `b` (dot segments are resolved,
      // %2e%2e too), and a KV key with such a segment would be read or written under another name.
      const res = await this.#dispatcher.request({
        origin: at.origin, path: `${at.prefix}${path}`, method, headers: this.#headers(), signal: ac.signal,
        ...(opts.body !== undefined ? { body: opts.body } : {}),
      });
      const bytes = opts.binary ? Buffer.from(await res.body.arrayBuffer()) : undefined;
      const text = bytes === undefined ? await res.body.text() : res.statusCode >= 400 ? bytes.toString() : '';
      if (res.statusCode >= 400 && !(opts.allow404 && res.statusCode === 404)) {
        throw new RegistryClientError(`${method} ${path}: Unexpected response code: ${res.statusCode} (${text.trim()})`, res.statusCode);
      }
      return { status: res.statusCode, headers: res.headers, text, ...(bytes !== undefined ? { bytes } : {}) };
    } catch (err) {
      if (err instanceof RegistryClientError) throw err;
      const reason = opts.signal?.aborted ? 'aborted' : (err as Error).message;
      // Unreachable (not a refusal by a live agent): the next call tries the next agent.
      if (!opts.signal?.aborted && this.#targets.length > 1 && this.base === base) this.#current = (this.#current + 1) % this.#targets.length;
      throw new RegistryClientError(`${method} ${base}${path}: ${reason}`, undefined, err);
    } finally {
      timer.cancel();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const r = await this.#call('GET', path, signal ? { signal } : {});
    return JSON.parse(r.text) as T;
  }

  async put(path: string, body?: unknown, signal?: AbortSignal): Promise<string> {
    const r = await this.#call('PUT', path, {
      ...(body === undefined ? {} : { body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
      ...(signal ? { signal } : {}),
    });
    return r.text;
  }

  /** A call whose answer is bytes (a snapshot file), with its own timeout: large bodies take longer than the default. */
  async bytes(method: 'GET' | 'PUT', path: string, opts: { body?: Buffer; timeoutMs?: number } = {}): Promise<Buffer> {
    const r = await this.#call(method, path, { ...opts, binary: true });
    return r.bytes ?? Buffer.alloc(0);
  }

  async delete(path: string, signal?: AbortSignal): Promise<string> {
    const r = await this.#call('DELETE', path, signal ? { signal } : {});
    return r.text;
  }

  /**
   * One blocking read: `index` 0 answers at once; otherwise the server parks up to `waitMs`.
   * The HTTP timeout allows for Consul's wait/16 jitter.
   */
  async blockingGet<T>(path: string, index: number, waitMs: number, signal?: AbortSignal, parse: (text: string) => unknown = JSON.parse): Promise<BlockingResult<T>> {
    const sep = path.includes('?') ? '&' : '?';
    const q = index > 0 ? `${sep}index=${index}&wait=${Math.round(waitMs)}ms` : '';
    const r = await this.#call('GET', `${path}${q}`, { ...(signal ? { signal } : {}), timeoutMs: waitMs + Math.max(waitMs / 16, 0) + 5000, allow404: true });
    const raw = r.headers['x-consul-index'];
    const idx = Number(Array.isArray(raw) ? raw[0] : raw);
    if (!Number.isFinite(idx) || raw === undefined) throw new RegistryClientError(`GET ${path}: no X-Consul-Index header: the endpoint does not support blocking queries`);
    const at = Number(r.headers[INDEX_TIME]);
    return { index: idx < 1 ? 1 : idx, status: r.status, value: (r.status === 404 ? undefined : parse(r.text)) as T, ...(at > 0 ? { indexTime: at } : {}) };
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}

export interface WatchOptions {
  waitMs?: number;
  /** Minimum spacing between two fetches of the same watch (consul-template uses 100 ms). */
  minIntervalMs?: number;
  /** Backoff on errors: base and cap. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * The cap until the watch's first answer (default: maxBackoffMs). A balancer started with its
   * registry (a reboot, `compose up`) retries its first read every second or so, so it has its first
   * table about a second after the registry answers, not up to maxBackoffMs later.
   */
  firstAnswerMaxBackoffMs?: number;
  onError?: (err: unknown, attempt: number) => void;
  /** Parses an answer's body (default JSON.parse; KV readers keep uint64 flags exact). */
  parse?: (text: string) => unknown;
  /** Every answer, changed or not (a blocking read that timed out too): the registry is still talking. */
  onAnswer?: () => void;
}

/** What a watch knows about one changed value besides the value itself. */
export interface WatchAnswer {
  /** See BlockingResult.indexTime. */
  readonly indexTime: number | undefined;
  /** Date.now() when the answer arrived. */
  readonly receivedAt: number;
}

/**
 * Follows one endpoint with blocking queries until `signal` aborts, calling `onChange` with each
 * new value (deduplicated by index). Consul's client guidance: an index that goes backwards resets
 * to 0. So does anything that says the agent may have restarted, since it may have come back with
 * less history (lost or restored data) and a blocking read with an index it has not reached would
 * park for the whole wait, holding back every change made meanwhile: a failed read, or a
 * connection to the registry closing between two reads. A read with index 0 answers at once.
 * Never rejects (callers start it with `void`): failures, including a throwing `onChange`, go to
 * `onError` and are retried with backoff.
 */
export async function watch<T>(client: RegistryClient, path: string, onChange: (value: T, index: number, status: number, answer: WatchAnswer) => void, signal: AbortSignal, opts: WatchOptions = {}): Promise<void> {
  const waitMs = opts.waitMs ?? 60_000;
  const minInterval = opts.minIntervalMs ?? 100;
  const base = opts.backoffMs ?? 250;
  const cap = opts.maxBackoffMs ?? 10_000;
  let answered = false;
  let index = 0;
  let attempt = 0;
  let last = 0;
  let disconnects = client.disconnects;
  while (!signal.aborted) {
    const since = Date.now() - last;
    if (since < minInterval) await sleep(minInterval - since, signal);
    if (signal.aborted) return;
    last = Date.now();
    if (client.disconnects !== disconnects) index = 0;
    disconnects = client.disconnects;
    try {
      const r = await client.blockingGet<T>(path, index, waitMs, signal, opts.parse);
      attempt = 0;
      answered = true;
      opts.onAnswer?.();
      // Aborted while the answer was on its way in (a source that stopped following this service): it
      // must not reach onChange, which would put back what its owner has just let go.
      if (signal.aborted) return;
      if (r.index < index) {
        index = 0;
        continue;
      }
      if (r.index === index) continue;
      index = r.index;
      onChange(r.value, r.index, r.status, { indexTime: r.indexTime, receivedAt: Date.now() });
    } catch (err) {
      if (signal.aborted) return;
      index = 0;
      attempt++;
      opts.onError?.(err, attempt);
      // Full jitter so that many watchers do not retry in lockstep after an outage.
      const capNow = answered ? cap : Math.min(cap, opts.firstAnswerMaxBackoffMs ?? cap);
      await sleep(Math.random() * Math.min(capNow, base * 2 ** Math.min(attempt, 16)), signal);
    }
  }
}
