/**
 * SIGHUP for `switchyard lb`, after the certificates: the configuration is read again and its routes
 * are swapped in without a restart (nginx -s reload's job; the registry's instances never needed one).
 * All or nothing: a file that does not load, a change to any other setting (listeners, timeouts,
 * workers… those take a restart), or routes that do not build leave the running routes as they were
 * and say why. Open connections keep going; the next request is routed by the new table.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { LbConfig } from '../../config/lb.js';
import { l4Routes } from '../../config/lb.js';
import type { RouteSpec } from '../../config/route-spec.js';
import type { FollowedServices } from '../../discovery/follow.js';
import type { Source } from '../../discovery/types.js';

/** A configuration as read: what the file and flags said (keys as the user wrote them) and what it resolved to. */
export interface ReadConfig {
  readonly input: Readonly<Record<string, unknown>>;
  readonly cfg: LbConfig;
}

export type RoutesRead = { kind: 'changed'; next: ReadConfig } | { kind: 'unchanged' } | { kind: 'refused'; reason: string };

/** What reading the configuration again would change. */
export function readRoutes(current: ReadConfig, read: () => ReadConfig): RoutesRead {
  let next: ReadConfig;
  try {
    next = read();
  } catch (err) {
    return { kind: 'refused', reason: `the configuration does not load: ${(err as Error).message}` };
  }
  const keys = new Set([...Object.keys(current.input), ...Object.keys(next.input)]);
  const others = [...keys].filter((k) => k !== 'routes' && !isDeepStrictEqual(current.input[k], next.input[k])).sort();
  if (others.length > 0) return { kind: 'refused', reason: `${others.join(', ')} changed, which ${others.length > 1 ? 'take' : 'takes'} a restart (only routes reload)` };
  return isDeepStrictEqual(current.cfg.routes, next.cfg.routes) ? { kind: 'unchanged' } : { kind: 'changed', next };
}

export interface RouteReloaderOptions {
  /** The configuration running now. */
  readonly current: ReadConfig;
  /** Reads the configuration as at start (the same file and flags). */
  readonly read: () => ReadConfig;
  readonly logger: Logger;
  /** Swaps the new routes in: undefined when they went live, else why not (the running ones stay). */
  readonly apply: (routes: readonly RouteSpec[]) => string | undefined;
  /** Where the registry is followed (not in a worker): told which services the new routes name. */
  readonly follow?: { readonly services: FollowedServices; readonly source: Source };
}

/** How long a reload waits for the instances of services its routes newly name before it swaps anyway. */
const FIRST_ANSWERS_MS = 10_000;

export class RouteReloader {
  #current: ReadConfig;
  readonly #o: RouteReloaderOptions;
  /** Reloads run one at a time: a SIGHUP during one is read once it is done. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: RouteReloaderOptions) {
    this.#o = o;
    this.#current = o.current;
  }

  /** Resolves true when new routes went live. */
  reload(): Promise<boolean> {
    const run = this.#queue.then(() => this.#reload());
    this.#queue = run;
    return run;
  }

  async #reload(): Promise<boolean> {
    const { logger } = this.#o;
    const r = readRoutes(this.#current, this.#o.read);
    if (r.kind === 'refused') {
      logger.error({ reason: r.reason }, 'SIGHUP: routes not reloaded; the running ones stay');
      return false;
    }
    if (r.kind === 'unchanged') {
      logger.info('SIGHUP: routes unchanged');
      return false;
    }
    const cfg = r.next.cfg;
    const before = this.#current.cfg;
    const f = this.#o.follow;
    const l4 = (c: LbConfig): string[] => l4Routes(c).map((t) => t.service);
    if (f) {
      // The new routes' services are followed before the table changes, the old ones' until it has: a route to a
      // service not followed before would answer 503 until that service's instances came.
      f.services.union(before.routes, cfg.routes, l4(cfg));
      await waitAtMost(f.source.refollow?.(), FIRST_ANSWERS_MS, () => logger.warn({ waitedMs: FIRST_ANSWERS_MS }, 'SIGHUP: the registry has not answered for every service the new routes name; swapping them in anyway'));
    }
    const refused = this.#o.apply(cfg.routes);
    const ok = refused === undefined;
    if (f) {
      f.services.set((ok ? cfg : before).routes, l4(ok ? cfg : before));
      void f.source.refollow?.();
    }
    if (!ok) {
      logger.error({ reason: refused }, 'SIGHUP: routes not reloaded; the running ones stay');
      return false;
    }
    logger.info({ routes: cfg.routes.length, before: before.routes.length }, 'SIGHUP: routes reloaded');
    this.#current = r.next;
    return true;
  }
}

async function waitAtMost(p: Promise<void> | undefined, ms: number, onTimeout: () => void): Promise<void> {
  if (p === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  if ((await Promise.race([p, late])) === 'late') onTimeout();
  clearTimeout(timer);
}
