/**
 * registrator's consulkv backend: each service is one KV entry, `<path>/<name>/<id>` = "ip:port",
 * for setups whose templates read addresses from the KV store rather than the catalog. As in
 * registrator there are no checks (-healthcheck and -ttl change nothing here). Unlike registrator,
 * services() lists the entries under the path, so -resync and -cleanup remove the entries of
 * containers that died while no registrator ran (registrator's adapter lists none).
 */
import { isIP } from 'node:net';
import { RegistryClientError } from '../registry/api/client.js';
import type { RegistryClient } from '../registry/api/client.js';
import type { RegisteredService, RegistryBackend } from './consul.js';

const kvPath = (key: string): string => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}`;

export class ConsulKvBackend implements RegistryBackend {
  readonly #client: RegistryClient;
  /** The path without its slashes, e.g. "services". */
  readonly #prefix: string;
  /** Each service's key by ID, from the last listing and the registrations since. */
  readonly #keys = new Map<string, string>();

  constructor(client: RegistryClient, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  get address(): string {
    return `${this.#client.base} (KV ${this.#prefix}/)`;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.#client.get<string>('/v1/status/leader', signal);
  }

  async register(body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    const id = String(body.ID);
    const key = `${this.#prefix}/${String(body.Name)}/${id}`;
    const address = String(body.Address ?? '');
    // net.JoinHostPort: an IPv6 address in brackets.
    const value = `${isIP(address) === 6 ? `[${address}]` : address}:${String(body.Port)}`;
    await this.#client.put(kvPath(key), value, signal);
    this.#keys.set(id, key);
  }

  async deregister(id: string, signal?: AbortSignal): Promise<void> {
    let key = this.#keys.get(id);
    if (key === undefined) {
      await this.services(signal);
      key = this.#keys.get(id);
      if (key === undefined) return;
    }
    await this.#client.delete(kvPath(key), signal);
    this.#keys.delete(id);
  }

  async updateCheck(): Promise<void> {
    // No checks in the KV store.
  }

  async services(signal?: AbortSignal): Promise<Map<string, RegisteredService>> {
    let keys: string[];
    try {
      keys = await this.#client.get<string[]>(`${kvPath(`${this.#prefix}/`)}?keys`, signal);
    } catch (err) {
      if (err instanceof RegistryClientError && err.status === 404) keys = [];
      else throw err;
    }
    const out = new Map<string, RegisteredService>();
    this.#keys.clear();
    for (const key of keys) {
      // <prefix>/<name>/<id>: registrator's IDs hold no "/", names may not either.
      const rest = key.slice(this.#prefix.length + 1).split('/');
      if (rest.length !== 2 || rest[0] === '' || rest[1] === '') continue;
      const [name, id] = rest as [string, string];
      out.set(id, { id, name });
      this.#keys.set(id, key);
    }
    return out;
  }
}
