/** /v1/event/fire/:name and /v1/event/list: Consul's user events, fired through the store to every agent and listed from this agent's ring buffer, with the list's UUID-derived index and blocking. */
import { HttpError, badRequest } from '../../../../core/errors.js';
import { eventIndex } from '../../events.js';
import { parseQueryParams } from '../blocking.js';
import type { Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

/** The list's index is a uint64 beyond JavaScript's safe integers: the headers are written by hand. */
function indexHeaders(index: bigint): Record<string, string> {
  return { 'X-Consul-Index': index.toString(), 'X-Consul-KnownLeader': 'true', 'X-Consul-LastContact': '0' };
}

export function eventRoutes(deps: ApiDeps): Route[] {
  const { registry, events } = deps;
  return [
    {
      path: '/v1/event/fire/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        const dc = ctx.query.get('dc');
        if (dc && dc !== registry.node.datacenter) throw new HttpError(500, 'No path to datacenter');
        const payload = await ctx.body();
        const q = ctx.query;
        return { json: await events.fire({ name: ctx.suffix, payload, node: q.get('node') ?? '', service: q.get('service') ?? '', tag: q.get('tag') ?? '' }) };
      },
    },
    {
      path: '/v1/event/list', methods: ['GET'],
      handler: async (ctx) => {
        const rest = new URLSearchParams(ctx.query);
        rest.delete('index');
        const params = parseQueryParams(rest, deps.blocking, registry.node.datacenter);
        const raw = ctx.query.get('index') ?? '';
        if (raw !== '' && !/^\d{1,20}$/.test(raw)) throw badRequest('Invalid index');
        const min = raw === '' ? 0n : BigInt(raw);
        const name = ctx.query.get('name') ?? '';
        // Consul blocks while the index equals the caller's (it is not monotonic), up to wait (10 min by default).
        const waitMs = ctx.query.get('wait') ? params.waitMs : deps.blocking.maxWaitMs;
        const deadline = Date.now() + waitMs;
        let list = events.list(name);
        while (min > 0n && eventIndex(list) === min && !ctx.cancel.cancelled) {
          const left = deadline - Date.now();
          if (left <= 0 || !(await events.wait(left, ctx.cancel))) break;
          list = events.list(name);
        }
        return { json: list, headers: indexHeaders(eventIndex(list)) };
      },
    },
  ];
}
