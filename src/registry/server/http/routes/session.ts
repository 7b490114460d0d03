/** /v1/session/*: create, destroy, renew, and the blocking reads info, node and list, with Consul's shapes and messages. */
import { HttpError, badRequest, notFound } from '../../../../core/errors.js';
import { parseJsonBody } from '../../decode.js';
import { SESSION_TTL_MAX_NS, decodeSessionCreate, renderSession } from '../../sessions/model.js';
import { SESSIONS_TOPIC } from '../../sessions/view.js';
import type { IndexedSession } from '../../sessions/view.js';
import { blocking, parseQueryParams } from '../blocking.js';
import type { Ctx, Reply, Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

const render = (s: IndexedSession): Record<string, unknown> => renderSession(s.rec, s.createIndex);

export function sessionRoutes(deps: ApiDeps): Route[] {
  const { registry, sessions } = deps;
  const view = sessions.view;
  const checkDatacenter = (ctx: Ctx): void => {
    const dc = ctx.query.get('dc');
    if (dc && dc !== registry.node.datacenter) throw new HttpError(500, 'No path to datacenter');
  };
  const id = (ctx: Ctx): string => {
    if (ctx.suffix === '') throw badRequest('Missing session');
    return ctx.suffix;
  };
  const read = (ctx: Ctx, query: () => Record<string, unknown>[]): Promise<Reply> => {
    const params = parseQueryParams(ctx.query, deps.blocking, registry.node.datacenter);
    return blocking(ctx, view, params, deps.blocking, { topics: [SESSIONS_TOPIC] }, () => ({ index: view.index, json: query() }));
  };

  return [
    {
      path: '/v1/session/create', methods: ['PUT'],
      handler: async (ctx) => {
        checkDatacenter(ctx);
        const raw = await ctx.body();
        // Consul decodes a body only when there is one: an empty PUT takes every default.
        const body = raw.length === 0 ? undefined : parseJsonBody(raw);
        const input = decodeSessionCreate(body, registry.node.name, { minNs: deps.sessionTtlMinNs, maxNs: SESSION_TTL_MAX_NS });
        return { json: { ID: await sessions.create(input) } };
      },
    },
    {
      path: '/v1/session/destroy/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        checkDatacenter(ctx);
        await sessions.destroy(id(ctx));
        return { json: true };
      },
    },
    {
      path: '/v1/session/renew/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        checkDatacenter(ctx);
        const sid = id(ctx);
        const s = await sessions.renew(sid);
        if (!s) throw notFound(`Session id '${sid}' not found`);
        return { index: view.index, json: [render(s)] };
      },
    },
    {
      path: '/v1/session/info/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const sid = id(ctx);
        return read(ctx, () => {
          const s = view.get(sid);
          return s ? [render(s)] : [];
        });
      },
    },
    {
      path: '/v1/session/node/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        if (ctx.suffix === '') throw badRequest('Missing node name');
        return read(ctx, () => view.onNode(ctx.suffix).map(render));
      },
    },
    { path: '/v1/session/list', methods: ['GET'], handler: (ctx) => read(ctx, () => view.list().map(render)) },
  ];
}
