/**
 * registrator's Consul backend over RegistryClient: ping = GET /v1/status/leader, register =
 * PUT /v1/agent/service/register, deregister = PUT /v1/agent/service/deregister/<id>,
 * services = GET /v1/agent/services (for reconciling and -cleanup), updateCheck =
 * PUT /v1/agent/check/update/<id> (the -healthcheck TTL checks).
 */
import { RegistryClientError } from '../registry/api/client.js';
import type { RegistryClient } from '../registry/api/client.js';

export interface RegisteredService {
  readonly id: string;
  readonly name: string;
}

export interface RegistryBackend {
  readonly address: string;
  ping(signal?: AbortSignal): Promise<void>;
  register(body: Record<string, unknown>, signal?: AbortSignal): Promise<void>;
  /** An ID the registry does not know counts as deregistered. */
  deregister(id: string, signal?: AbortSignal): Promise<void>;
  services(signal?: AbortSignal): Promise<Map<string, RegisteredService>>;
  /** Sets a TTL check's status and output (and pushes its TTL out). */
  updateCheck(checkId: string, status: 'passing' | 'warning' | 'critical', output: string, signal?: AbortSignal): Promise<void>;
}

/** A 4xx (other than 404 and 429) means the registry refused this request: retrying the same body will not help. */
export function isRejection(err: unknown): boolean {
  return err instanceof RegistryClientError && err.status !== undefined && err.status >= 400 && err.status < 500 && err.status !== 404 && err.status !== 429;
}

export class ConsulBackend implements RegistryBackend {
  readonly #client: RegistryClient;

  constructor(client: RegistryClient) {
    this.#client = client;
  }

  get address(): string {
    return this.#client.base;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.#client.get<string>('/v1/status/leader', signal);
  }

  async register(body: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.#client.put('/v1/agent/service/register', body, signal);
  }

  async deregister(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#client.put(`/v1/agent/service/deregister/${encodeURIComponent(id)}`, undefined, signal);
    } catch (err) {
      if (err instanceof RegistryClientError && err.status === 404) return;
      throw err;
    }
  }

  async updateCheck(checkId: string, status: 'passing' | 'warning' | 'critical', output: string, signal?: AbortSignal): Promise<void> {
    await this.#client.put(`/v1/agent/check/update/${encodeURIComponent(checkId)}`, { Status: status, Output: output }, signal);
  }

  async services(signal?: AbortSignal): Promise<Map<string, RegisteredService>> {
    const raw = await this.#client.get<Record<string, { ID?: string; Service?: string }> | null>('/v1/agent/services', signal);
    const out = new Map<string, RegisteredService>();
    for (const [key, s] of Object.entries(raw ?? {})) {
      const id = s.ID ?? key;
      out.set(id, { id, name: s.Service ?? '' });
    }
    return out;
  }
}
