/** /v1/catalog/* and /v1/health/*: blocking reads of nodes, services and checks; catalog writes. */
import { badRequest } from '../../../../core/errors.js';
import { decodeCatalogDeregister, decodeCatalogRegister, parseJsonBody } from '../../decode.js';
import { topics } from '../../catalog-reader.js';
import { renderCatalogService, renderCheck, renderHealthEntry, renderNode, renderService } from '../../render.js';
import { checksInState, cmp, healthEntries, keyedBy, serviceInstances, serviceTagsIndex } from '../../queries.js';
import type { NodeRecord, ServiceRecord } from '../../model.js';
import type { Indexed } from '../../catalog-reader.js';
import type { Ctx, Reply, Route } from '../context.js';
import type { ApiDeps } from '../deps.js';
import { applyFilter, applyFilterToMap, blockingRead, checkReadParams, nearFirst, parsePassing, serviceFilter } from './common.js';

const STATES = new Set(['any', 'passing', 'warning', 'critical']);

export function catalogRoutes(deps: ApiDeps): Route[] {
  const { registry, view } = deps;
  const dc = () => registry.node.datacenter;

  const requireName = (name: string, what: string): string => {
    if (name === '') throw badRequest(what);
    return name;
  };

  /**
   * ?filter on the service list: as Consul does, the expression runs over every instance in the
   * shape of /v1/catalog/service/:name (ServiceName, ServiceTags, NodeMeta, ...), and the answer
   * lists the names of the instances left with the union of their tags.
   */
  /** catalog/node and catalog/node-services: a node and its services in ID order, blocking on that node. */
  const nodeRead = (ctx: Ctx, shape: (n: Indexed<NodeRecord> | undefined, services: Indexed<ServiceRecord>[]) => unknown): Promise<Reply> | Reply => {
    const node = requireName(ctx.suffix, 'Missing node name');
    const t = [topics.node(node)];
    return blockingRead(deps, ctx, { topics: t }, () => {
      const n = view.node(node);
      const list = n ? [...view.nodeServices(node)].sort((x, y) => cmp(x.rec.ID, y.rec.ID)) : [];
      return { index: view.topicIndex(t), json: shape(n, list) };
    });
  };

  const filteredServiceTags = (q: URLSearchParams): Record<string, string[]> => {
    const records = new Map<Record<string, unknown>, ServiceRecord>();
    for (const name of view.serviceNames()) for (const s of view.instances(name)) records.set(renderCatalogService(s, view.node(s.rec.Node)), s.rec);
    const tags = new Map<string, Set<string>>();
    for (const doc of applyFilter(q, [...records.keys()])) {
      const r = records.get(doc) as ServiceRecord;
      let set = tags.get(r.Service);
      if (set === undefined) tags.set(r.Service, (set = new Set()));
      for (const tag of r.Tags) set.add(tag);
    }
    return Object.fromEntries([...tags].map(([name, set]) => [name, [...set]]));
  };

  return [
    {
      path: '/v1/catalog/register', methods: ['PUT'],
      handler: async (ctx) => {
        await registry.catalogRegister(decodeCatalogRegister(parseJsonBody(await ctx.body())));
        return { json: true };
      },
    },
    {
      path: '/v1/catalog/deregister', methods: ['PUT'],
      handler: async (ctx) => {
        await registry.catalogDeregister(decodeCatalogDeregister(parseJsonBody(await ctx.body())));
        return { json: true };
      },
    },
    {
      path: '/v1/catalog/datacenters', methods: ['GET'],
      handler: (ctx) => {
        checkReadParams(deps, ctx);
        return { json: [dc()] };
      },
    },
    {
      path: '/v1/catalog/nodes', methods: ['GET'],
      handler: (ctx) => {
        const f = serviceFilter(ctx.query);
        return blockingRead(deps, ctx, { topics: [topics.NODES] }, () => {
          const list = [...view.nodes()]
            .filter((n) => !f.nodeMeta || f.nodeMeta.every(([k, v]) => n.rec.Meta[k] === v))
            .sort((a, b) => cmp(a.rec.Node, b.rec.Node))
            .map(renderNode);
          return { index: view.topicIndex([topics.NODES]), json: nearFirst(ctx.query, registry.node.name, applyFilter(ctx.query, list), (n) => n.Node as string) };
        });
      },
    },
    {
      path: '/v1/catalog/services', methods: ['GET'],
      handler: (ctx) => {
        const f = serviceFilter(ctx.query);
        const expr = ctx.query.get('filter') ?? '';
        // With ?node-meta or ?filter the answer also depends on node records: a node changing wakes it too.
        const t = f.nodeMeta || expr !== '' ? [topics.SERVICES, topics.NODES] : [topics.SERVICES];
        return blockingRead(deps, ctx, { topics: t }, () => {
          let out = expr === '' ? serviceTagsIndex(view) : filteredServiceTags(ctx.query);
          if (f.nodeMeta) {
            const meta = f.nodeMeta;
            const keep = new Set<string>();
            for (const name of view.serviceNames()) {
              for (const s of view.instances(name)) {
                const n = view.node(s.rec.Node);
                if (n && meta.every(([k, v]) => n.rec.Meta[k] === v)) {
                  keep.add(name);
                  break;
                }
              }
            }
            out = Object.fromEntries(Object.entries(out).filter(([k]) => keep.has(k)));
          }
          return { index: view.topicIndex(t), json: out };
        });
      },
    },
    {
      path: '/v1/catalog/service/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const name = requireName(ctx.suffix, 'Missing service name');
        const f = serviceFilter(ctx.query);
        const t = [topics.service(name)];
        return blockingRead(deps, ctx, { topics: t }, () => {
          const list = serviceInstances(view, name, f).map((s) => renderCatalogService(s, view.node(s.rec.Node)));
          return { index: view.topicIndex(t), json: nearFirst(ctx.query, registry.node.name, applyFilter(ctx.query, list), (s) => s.Node as string) };
        });
      },
    },
    {
      path: '/v1/catalog/node/', prefix: true, methods: ['GET'],
      handler: (ctx) => nodeRead(ctx, (n, list) => {
        if (!n) return null;
        const services = keyedBy(list, (s) => [s.rec.ID, renderService(s, dc())]);
        return { Node: renderNode(n), Services: applyFilterToMap(ctx.query, services) };
      }),
    },
    {
      // Consul 1.7+: the same as catalog/node with Services as a list. Consul's nil lists stay null
      // (an unknown node, a node without services), so clients decode what they get from Consul.
      path: '/v1/catalog/node-services/', prefix: true, methods: ['GET'],
      handler: (ctx) => nodeRead(ctx, (n, list) => (n
        ? { Node: renderNode(n), Services: list.length > 0 ? applyFilter(ctx.query, list.map((s) => renderService(s, dc()))) : null }
        : { Node: null, Services: null })),
    },
    {
      path: '/v1/health/service/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const name = requireName(ctx.suffix, 'Missing service name');
        const passingOnly = parsePassing(ctx.query);
        const f = serviceFilter(ctx.query);
        const t = [topics.service(name)];
        return blockingRead(deps, ctx, { topics: t }, () => {
          const list = healthEntries(view, name, { ...f, passingOnly }).map((e) => renderHealthEntry(e, dc()));
          return { index: view.topicIndex(t), json: nearFirst(ctx.query, registry.node.name, applyFilter(ctx.query, list), (e) => (e.Node as { Node: string }).Node) };
        });
      },
    },
    {
      path: '/v1/health/checks/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const name = requireName(ctx.suffix, 'Missing service name');
        const t = [topics.service(name)];
        return blockingRead(deps, ctx, { topics: t }, () => {
          const list = [];
          for (const s of serviceInstances(view, name)) for (const c of view.serviceChecks(s.rec.Node, s.rec.ID)) list.push(renderCheck(c.rec, c));
          return { index: view.topicIndex(t), json: applyFilter(ctx.query, list) };
        });
      },
    },
    {
      path: '/v1/health/node/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const node = requireName(ctx.suffix, 'Missing node name');
        const t = [topics.node(node)];
        return blockingRead(deps, ctx, { topics: t }, () => {
          const list = [...view.checksOnNode(node)].sort((a, b) => cmp(a.rec.CheckID, b.rec.CheckID)).map((c) => renderCheck(c.rec, c));
          return { index: view.topicIndex(t), json: applyFilter(ctx.query, list) };
        });
      },
    },
    {
      path: '/v1/health/state/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const state = requireName(ctx.suffix, 'Missing check state');
        if (!STATES.has(state)) throw badRequest(`Invalid check state ${JSON.stringify(state)}: expected any, passing, warning or critical`);
        const t = [topics.CHECKS];
        return blockingRead(deps, ctx, { topics: t }, () => ({
          index: view.topicIndex(t),
          json: applyFilter(ctx.query, checksInState(view, state).map((c) => renderCheck(c.rec, c))),
        }));
      },
    },
  ];
}
