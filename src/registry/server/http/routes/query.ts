/**
 * /v1/query: prepared queries, Consul's shapes and words. Create (POST), list (GET, blocking), read,
 * update (PUT) and delete one, execute it by ID or name (templates render for the name asked) and
 * explain what a name resolves to. One datacenter: a query's Failover is kept and shown, and there
 * is no other datacenter to fail over to (Failovers is always 0).
 */
import { HttpError, badRequest } from '../../../../core/errors.js';
import { parseJsonBody } from '../../decode.js';
import { renderHealthEntry } from '../../render.js';
import { decodePreparedQuery, renderPreparedQuery } from '../../prepared/model.js';
import { renderTemplate } from '../../prepared/template.js';
import { executePrepared } from '../../prepared/execute.js';
import { PREPARED_QUERIES_TOPIC } from '../../prepared/view.js';
import type { IndexedQuery } from '../../prepared/view.js';
import { blocking, parseQueryParams } from '../blocking.js';
import type { Ctx, Reply, Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

const render = (q: IndexedQuery): Record<string, unknown> => renderPreparedQuery(q.rec, q.createIndex, q.modifyIndex);
/** Consul's 404s carry X-Consul-Index, and python-consul reads it from every 404 (a KeyError without it). */
const missing = (text: string, index: number): HttpError => new HttpError(404, text, { headers: { 'X-Consul-Index': String(index) } });

export function queryRoutes(deps: ApiDeps): Route[] {
  const { view, writes } = deps.prepared;
  const dc = deps.registry.node.datacenter;
  const notFound = (): HttpError => missing('Query not found', view.index);
  /** A write's own 404 (the query is gone), with the index. */
  const write = async (p: Promise<unknown>): Promise<Reply> => {
    try {
      await p;
    } catch (err) {
      throw err instanceof HttpError && err.status === 404 ? missing(err.message, view.index) : err;
    }
    return { text: '' };
  };
  const read = (ctx: Ctx, query: () => unknown): Promise<Reply> => {
    const params = parseQueryParams(ctx.query, deps.blocking, dc);
    return blocking(ctx, view, params, deps.blocking, { topics: [PREPARED_QUERIES_TOPIC] }, () => ({ index: view.index, json: query() }));
  };
  const definition = async (ctx: Ctx): Promise<ReturnType<typeof decodePreparedQuery>> => {
    parseQueryParams(ctx.query, deps.blocking, dc);
    return decodePreparedQuery(parseJsonBody(await ctx.body()));
  };
  /** The query a name or ID resolves to, rendered for that name. */
  const resolved = (idOrName: string): { q: IndexedQuery; rec: ReturnType<typeof renderTemplate> } => {
    const q = view.resolve(idOrName);
    if (!q) throw notFound();
    return { q, rec: renderTemplate(q.rec, idOrName) };
  };
  const limitOf = (ctx: Ctx): number => {
    const raw = ctx.query.get('limit');
    if (raw === null || raw === '') return 0;
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw badRequest(`Bad limit: ${JSON.stringify(raw)} is not a whole number`);
    return Number(raw);
  };

  return [
    {
      path: '/v1/query', methods: ['GET', 'POST'],
      handler: async (ctx) => {
        if (ctx.method === 'GET') return read(ctx, () => view.list().map(render));
        return { json: { ID: await writes.create(await definition(ctx)) } };
      },
    },
    {
      path: '/v1/query/', prefix: true, methods: ['GET', 'PUT', 'DELETE'],
      handler: async (ctx) => {
        const [idOrName = '', action, ...more] = ctx.suffix.split('/');
        if (idOrName === '' || more.length > 0 || (action !== undefined && action !== 'execute' && action !== 'explain')) {
          throw new HttpError(404, `Invalid URL path: ${ctx.path} is not /v1/query/<id>, /v1/query/<id or name>/execute or /v1/query/<id or name>/explain`);
        }
        if (action !== undefined && ctx.method !== 'GET') throw new HttpError(405, `method ${ctx.method} not allowed`);
        if (action === 'execute') {
          parseQueryParams(ctx.query, deps.blocking, dc);
          const limit = limitOf(ctx);
          const { rec } = resolved(idOrName);
          const near = ctx.query.get('near') ?? undefined;
          const run = executePrepared(deps.view, rec, { agentNode: deps.registry.node.name, random: deps.blocking.random, limit, ...(near !== undefined ? { near } : {}) });
          return {
            index: deps.view.revision,
            json: {
              Service: run.service,
              Nodes: run.entries.map((e) => renderHealthEntry(e, dc)),
              DNS: { TTL: run.dnsTtl },
              Datacenter: dc,
              Failovers: 0,
            },
          };
        }
        if (action === 'explain') {
          parseQueryParams(ctx.query, deps.blocking, dc);
          const { q, rec } = resolved(idOrName);
          return { index: view.index, json: { Query: renderPreparedQuery(rec, q.createIndex, q.modifyIndex) } };
        }
        if (ctx.method === 'GET') {
          // Consul reads one query by ID only (a name is for execute and explain).
          return read(ctx, () => {
            const q = view.get(idOrName);
            if (!q) throw notFound();
            return [render(q)];
          });
        }
        if (ctx.method === 'PUT') return write(writes.update(idOrName, await definition(ctx)));
        parseQueryParams(ctx.query, deps.blocking, dc);
        return write(writes.delete(idOrName));
      },
    },
  ];
}
