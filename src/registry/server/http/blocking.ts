/**
 * Consul's blocking-query loop: ?index & ?wait parsing, jittered timeout, wake on the query's own
 * topics; catalog and health answers say when the change at their index was applied (indexTime).
 */
import { HttpError, badRequest } from '../../../core/errors.js';
import { parseGoDuration } from '../../../core/duration.js';
import type { Random } from '../../../core/clock.js';
import type { CatalogReader, CatalogWatch, WatchSpec } from '../catalog-reader.js';
import type { Ctx, Reply } from './context.js';

export interface BlockingOptions {
  defaultWaitMs: number;
  maxWaitMs: number;
  random: Random;
}

export const DEFAULT_BLOCKING: Omit<BlockingOptions, 'random'> = { defaultWaitMs: 5 * 60_000, maxWaitMs: 10 * 60_000 };

export interface QueryParams {
  minIndex: number;
  waitMs: number;
}

/** Parses the parameters shared by every read endpoint; Consul's exact 400 messages. */
export function parseQueryParams(q: URLSearchParams, opts: Omit<BlockingOptions, 'random'>, datacenter: string): QueryParams {
  if (q.has('stale') && q.has('consistent')) throw badRequest('Cannot specify ?stale with ?consistent, conflicting semantics.');
  const dc = q.get('dc');
  if (dc && dc !== datacenter) throw new HttpError(500, 'No path to datacenter');
  let minIndex = 0;
  const idx = q.get('index');
  if (idx !== null && idx !== '') {
    if (!/^\d+$/.test(idx) || !Number.isSafeInteger(Number(idx))) throw badRequest('Invalid index');
    minIndex = Number(idx);
  }
  let waitMs = opts.defaultWaitMs;
  const w = q.get('wait');
  if (w !== null && w !== '') {
    let ns: number;
    try {
      ns = parseGoDuration(w);
    } catch {
      throw badRequest('Invalid wait time');
    }
    if (ns < 0) throw badRequest('Invalid wait time');
    if (ns > 0) waitMs = ns / 1e6;
  }
  const ms = q.get('max_stale');
  if (ms !== null && ms !== '') {
    try {
      parseGoDuration(ms);
    } catch {
      throw badRequest(`Invalid max_stale value ${JSON.stringify(ms)}`);
    }
  }
  return { minIndex, waitMs: Math.min(waitMs, opts.maxWaitMs) };
}

/**
 * Runs `query` now; when the client passed an index the result has not moved past, parks until
 * the query's own topics change (then re-runs) or the jittered wait runs out (then answers 200
 * with the same index, as Consul does).
 */
export async function blocking(
  ctx: Ctx,
  view: Pick<CatalogWatch, 'wait'> & Partial<Pick<CatalogReader, 'topicAppliedAt'>>,
  params: QueryParams,
  opts: BlockingOptions,
  spec: WatchSpec,
  query: () => Reply & { index: number },
): Promise<Reply> {
  let res = query();
  let wokeAt: number | undefined;
  if (params.minIndex !== 0 && res.index <= params.minIndex) {
    // Consul adds up to wait/16 of random jitter so that a herd of watchers does not return in lockstep.
    const deadline = Date.now() + params.waitMs + opts.random.next() * (params.waitMs / 16);
    while (res.index <= params.minIndex) {
      const left = deadline - Date.now();
      if (left <= 0 || ctx.cancel.cancelled) break;
      const woke = await view.wait(spec, left, ctx.cancel);
      res = query();
      if (woke === false) break;
      wokeAt = woke;
    }
  }
  // The reply may be a cached object shared by every watcher of this revision: copy, never mutate.
  const indexTime = 'topics' in spec ? view.topicAppliedAt?.(spec.topics) : undefined;
  if (wokeAt === undefined && indexTime === undefined) return res;
  return { ...res, ...(wokeAt !== undefined ? { wokeAt } : {}), ...(indexTime !== undefined ? { indexTime } : {}) };
}
