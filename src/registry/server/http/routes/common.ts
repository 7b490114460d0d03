/** Helpers shared by the API route files: query flags, filters and blocking reads. */
import { HttpError, SwitchyardError, badRequest } from '../../../../core/errors.js';
import { compileFilter } from '../../filter.js';
import type { WatchSpec } from '../../catalog-reader.js';
import { blocking, parseQueryParams } from '../blocking.js';
import { ReadCache } from '../read-cache.js';
import type { Ctx, Reply } from '../context.js';
import type { ApiDeps } from '../deps.js';
import type { ServiceFilter } from '../../queries.js';

/** ?passing: bare means on; otherwise Go's strconv.ParseBool, 400 for anything else. */
export function parsePassing(q: URLSearchParams): boolean {
  if (!q.has('passing')) return false;
  const v = q.get('passing') ?? '';
  if (v === '') return true;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw badRequest('Invalid value for ?passing');
}

export function parseBool(raw: string | null): boolean | undefined {
  if (raw === null) return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(raw)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(raw)) return false;
  return undefined;
}

export function serviceFilter(q: URLSearchParams): ServiceFilter {
  const f: ServiceFilter = {};
  const tags = q.getAll('tag').filter((t) => t !== '');
  if (tags.length > 0) f.tags = tags;
  const nm = q.getAll('node-meta');
  if (nm.length > 0) {
    f.nodeMeta = nm.map((pair) => {
      const i = pair.indexOf(':');
      if (i <= 0) throw badRequest(`Invalid node-meta value ${JSON.stringify(pair)}: expected key:value`);
      return [pair.slice(0, i), pair.slice(i + 1)] as [string, string];
    });
  }
  return f;
}

/**
 * ?near=<node> (`_agent`: this agent's node) on catalog and health reads: the near node's entries first.
 * Consul sorts by estimated round-trip time from the near node; with no network coordinates here, the
 * near node itself (round trip 0) is all that can be told apart, and the rest keep their usual order.
 */
export function nearFirst<T>(q: URLSearchParams, agentNode: string, items: T[], nodeOf: (item: T) => string): T[] {
  const raw = q.get('near');
  if (raw === null || raw === '') return items;
  const near = raw === '_agent' ? agentNode : raw;
  const first = items.filter((i) => nodeOf(i) === near);
  if (first.length === 0 || first.length === items.length) return items;
  return [...first, ...items.filter((i) => nodeOf(i) !== near)];
}

/** Applies ?filter= to rendered items; a bad expression, or one over a limit (length, nesting, cost), is a 400 naming the problem. */
export function applyFilter<T>(q: URLSearchParams, items: T[]): T[] {
  const expr = q.get('filter');
  if (expr === null || expr === '') return items;
  try {
    return items.filter(compileFilter(expr));
  } catch (err) {
    if (err instanceof SwitchyardError && (err.code === 'SY_ERR_FILTER' || err.code === 'SY_ERR_FILTER_LIMIT')) {
      throw new HttpError(400, err.message, { code: err.code });
    }
    throw err;
  }
}

export function applyFilterToMap(q: URLSearchParams, obj: Record<string, unknown>): Record<string, unknown> {
  const expr = q.get('filter');
  if (expr === null || expr === '') return obj;
  const keep = new Set(applyFilter(q, Object.values(obj)));
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => keep.has(v)));
}

/** A blocking read: parses index/wait/dc/consistency, runs `query`, parks on `spec` when asked to. */
export function blockingRead(deps: ApiDeps, ctx: Ctx, spec: WatchSpec, query: () => Reply & { index: number }): Promise<Reply> {
  const params = parseQueryParams(ctx.query, deps.blocking, deps.registry.node.datacenter);
  const key = ReadCache.key(ctx.path, ctx.query);
  const pretty = ctx.query.has('pretty');
  // Keyed by the version of what the query reads, not its index: a transient change (the store health
  // check) moves only the version, and a change to another service moves neither.
  return blocking(ctx, deps.view, params, deps.blocking, spec, () => deps.readCache.get(key, deps.view.version(spec), pretty, query));
}

/** Validation of query parameters shared by non-blocking reads (dc, consistency flags). */
export function checkReadParams(deps: ApiDeps, ctx: Ctx): void {
  parseQueryParams(ctx.query, deps.blocking, deps.registry.node.datacenter);
}
