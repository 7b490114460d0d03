/**
 * A balancer registering itself in the registry (service `switchyard-lb` by default) with a health
 * check, so that `switchyard-lb.service.consul` resolves to live balancers only: the entry-point
 * failover of seed 000's cluster experiment, without a floating IP.
 *
 * The registration is refreshed periodically (an unchanged registration costs the agent no
 * write) so it follows the client to another agent when the first one dies; the copy left on a
 * dead agent's node is critical there and is deregistered once that agent answers again.
 */
import type { Logger } from 'pino';
import { RegistryClient } from '../registry/api/client.js';
import { sleep } from '../core/sleep.js';

export interface SelfRegistrationOptions {
  readonly client: RegistryClient;
  readonly logger: Logger;
  /** Service name (default switchyard-lb). */
  readonly name: string;
  readonly id: string;
  /** Address and port clients use to reach the balancer. */
  readonly address: string;
  readonly port: number;
  /** HTTP URL answering 200 while the balancer is healthy (its admin /health); else a TCP check on address:port. */
  readonly healthUrl?: string;
  readonly checkInterval?: string;
  readonly tags?: readonly string[];
  readonly token?: string;
  /** How often the registration is re-asserted (ms, default 5000). */
  readonly refreshMs?: number;
}

export class SelfRegistration {
  readonly #o: SelfRegistrationOptions;
  readonly #ac = new AbortController();
  /** Agents (base URLs) that may still hold a copy of this registration. */
  readonly #placed = new Set<string>();
  #loop: Promise<void> | undefined;

  constructor(opts: SelfRegistrationOptions) {
    this.#o = opts;
  }

  get body(): object {
    const o = this.#o;
    const target = o.address.includes(':') ? `[${o.address}]:${o.port}` : `${o.address}:${o.port}`;
    return {
      ID: o.id,
      Name: o.name,
      Address: o.address,
      Port: o.port,
      Tags: [...(o.tags ?? [])],
      Meta: { 'switchyard-role': 'lb' },
      Check: {
        CheckID: `service:${o.id}`,
        Name: `${o.name} health`,
        ...(o.healthUrl ? { HTTP: o.healthUrl } : { TCP: target }),
        Interval: o.checkInterval ?? '2s',
        Timeout: '1s',
        // A balancer killed without deregistering leaves the catalog a minute later.
        DeregisterCriticalServiceAfter: '1m',
      },
    };
  }

  start(): void {
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    const o = this.#o;
    let ok = false;
    while (!this.#ac.signal.aborted) {
      const at = o.client.base;
      try {
        await o.client.put('/v1/agent/service/register', this.body, this.#ac.signal);
        if (!ok || !this.#placed.has(at)) o.logger.info({ service: o.name, id: o.id, agent: at }, 'balancer registered in the registry');
        ok = true;
        this.#placed.add(at);
        await this.#tidy(at);
      } catch (err) {
        if (this.#ac.signal.aborted) break;
        if (ok) o.logger.warn({ agent: at, err: (err as Error).message }, 'could not refresh the balancer\'s registration; retrying');
        ok = false;
      }
      await sleep(ok ? (o.refreshMs ?? 5000) : 1000, this.#ac.signal);
    }
  }

  /** Removes copies left on agents other than the current one, as soon as they answer. */
  async #tidy(current: string): Promise<void> {
    for (const base of [...this.#placed]) {
      if (base === current) continue;
      const c = new RegistryClient({ address: base, timeoutMs: 1000, ...(this.#o.token ? { token: this.#o.token } : {}) });
      try {
        await c.put(`/v1/agent/service/deregister/${encodeURIComponent(this.#o.id)}`, undefined, this.#ac.signal);
        this.#placed.delete(base);
        this.#o.logger.info({ agent: base, id: this.#o.id }, 'removed the balancer\'s registration from a previous agent');
      } catch (err) {
        // 404: nothing left there; anything else: that agent is still away, try again next round.
        if ((err as { status?: number }).status === 404) this.#placed.delete(base);
      } finally {
        await c.close();
      }
    }
  }

  /** Stops refreshing and deregisters (best effort, bounded). */
  async close(): Promise<void> {
    this.#ac.abort();
    await this.#loop;
    const id = encodeURIComponent(this.#o.id);
    await Promise.all([...this.#placed].map(async (base) => {
      const c = new RegistryClient({ address: base, timeoutMs: 2000, ...(this.#o.token ? { token: this.#o.token } : {}) });
      try {
        await c.put(`/v1/agent/service/deregister/${id}`);
        this.#o.logger.info({ agent: base, id: this.#o.id }, 'balancer deregistered');
      } catch (err) {
        this.#o.logger.warn({ agent: base, err: (err as Error).message }, 'could not deregister the balancer');
      } finally {
        await c.close();
      }
    }));
  }
}
