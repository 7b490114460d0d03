/** /v1/agent/*: this node's services, checks, TTL updates, maintenance, self and members. */
import { createHash } from 'node:crypto';
import { badRequest, notFound } from '../../../../core/errors.js';
import { parseGoDuration } from '../../../../core/duration.js';
import { decodeCheck, decodeCheckUpdate, decodeService, parseJsonBody } from '../../decode.js';
import { AGENT_CHECK_TYPES, aggregateStatus, keys } from '../../model.js';
import type { ServiceRecord } from '../../model.js';
import { renderAgentService, renderCheck } from '../../render.js';
import { cmp, keyedBy } from '../../queries.js';
import { topics } from '../../catalog-reader.js';
import type { Ctx, Reply, Route } from '../context.js';
import type { ApiDeps } from '../deps.js';
import { applyFilterToMap, parseBool } from './common.js';

const EMPTY: Reply = {};

/** Checks this agent owns (registered through /v1/agent/*); serfHealth and catalog-registered checks are not listed. */

function localServices(deps: ApiDeps): ServiceRecord[] {
  return [...deps.view.nodeServices(deps.registry.node.name)].map((s) => s.rec).filter((s) => s.Local).sort((a, b) => (a.ID < b.ID ? -1 : a.ID > b.ID ? 1 : 0));
}

function count(xs: Iterable<unknown>): number {
  let n = 0;
  for (const _ of xs) n++;
  return n;
}

function parseEnable(q: URLSearchParams): boolean {
  const raw = q.get('enable');
  if (raw === null || raw === '') throw badRequest('Missing value for enable');
  const v = parseBool(raw);
  if (v === undefined) throw badRequest(`Invalid value for enable: ${JSON.stringify(raw)}`);
  return v;
}

function contentHash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

/** /v1/agent/health/service/*: 200 passing, 429 warning, 503 critical or maintenance. */
function healthStatusCode(status: string): number {
  return status === 'passing' ? 200 : status === 'warning' ? 429 : 503;
}

function wantsText(ctx: Ctx): boolean {
  return ctx.query.get('format') === 'text' || (ctx.headers.accept ?? '').startsWith('text/plain');
}

export function agentRoutes(deps: ApiDeps): Route[] {
  const { registry, view } = deps;
  const dc = () => registry.node.datacenter;

  const agentServiceDetail = (s: ServiceRecord): Record<string, unknown> => {
    const out = renderAgentService(s, dc());
    out.ContentHash = contentHash(out);
    return out;
  };

  const serviceHealth = (s: ServiceRecord) => {
    const checks = [...view.nodeChecks(s.Node), ...view.serviceChecks(s.Node, s.ID)];
    return { AggregatedStatus: aggregateStatus(checks.map((c) => c.rec)), Service: renderAgentService(s, dc()), Checks: checks.map((c) => renderCheck(c.rec)) };
  };

  return [
    {
      path: '/v1/agent/self', methods: ['GET'],
      handler: () => ({
        json: {
          Config: {
            Datacenter: dc(), NodeName: registry.node.name, NodeID: registry.node.id, Server: true, Revision: 'switchyard',
            Version: deps.version, PrimaryDatacenter: dc(),
          },
          DebugConfig: {},
          Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
          Member: member(deps, deps.registry.node, SERF_ALIVE),
          Stats: { agent: { checks: String(count(view.checksOnNode(registry.node.name))), services: String(count(view.nodeServices(registry.node.name))) } },
          Meta: { 'consul-network-segment': '' },
        },
      }),
    },
    { path: '/v1/agent/members', methods: ['GET'], handler: () => ({ json: members(deps) }) },
    {
      path: '/v1/agent/services', methods: ['GET'],
      handler: (ctx) => {
        const out = keyedBy(localServices(deps), (s) => [s.ID, renderAgentService(s, dc())]);
        return { json: applyFilterToMap(ctx.query, out) };
      },
    },
    {
      path: '/v1/agent/checks', methods: ['GET'],
      handler: (ctx) => {
        const local = [...view.checksOnNode(registry.node.name)].filter((c) => AGENT_CHECK_TYPES.has(c.rec.Type));
        const out = keyedBy(local.sort((x, y) => (x.rec.CheckID < y.rec.CheckID ? -1 : 1)), (c) => [c.rec.CheckID, renderCheck(c.rec)]);
        return { json: applyFilterToMap(ctx.query, out) };
      },
    },
    {
      path: '/v1/agent/service/register', methods: ['PUT'],
      handler: async (ctx) => {
        const def = decodeService(parseJsonBody(await ctx.body()));
        const r = ctx.query.get('replace-existing-checks');
        const checkIds = await registry.registerService(def, { replaceExistingChecks: r !== null && r !== 'false' && r !== '0' });
        // Consul starts a re-registered TTL check's timer again, even when nothing in it changed.
        for (const id of checkIds) deps.onTtlUpdate(id);
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/service/deregister/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        await registry.deregisterService(ctx.suffix);
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/service/maintenance/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        const enable = parseEnable(ctx.query);
        await registry.serviceMaintenance(ctx.suffix, enable, ctx.query.get('reason') ?? '');
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/service/', prefix: true, methods: ['GET'],
      handler: async (ctx) => {
        const id = ctx.suffix;
        const find = () => view.findService(registry.node.name, id)?.rec;
        let s = find();
        if (!s) throw notFound(`unknown service ID: ${id}`);
        let out = agentServiceDetail(s);
        // Hash-based blocking (Consul 1.3+): wait while the content hash equals the caller's.
        const hash = ctx.query.get('hash');
        if (hash && hash === out.ContentHash) {
          let waitMs = deps.blocking.defaultWaitMs;
          const w = ctx.query.get('wait');
          if (w) {
            try {
              waitMs = Math.min(parseGoDuration(w) / 1e6 || waitMs, deps.blocking.maxWaitMs);
            } catch {
              throw badRequest('Invalid wait time');
            }
          }
          const deadline = Date.now() + waitMs + deps.blocking.random.next() * (waitMs / 16);
          while (out.ContentHash === hash && Date.now() < deadline && !ctx.cancel.cancelled) {
            await view.wait({ topics: [topics.node(registry.node.name)] }, deadline - Date.now(), ctx.cancel);
            s = find();
            if (!s) throw notFound(`unknown service ID: ${id}`);
            out = agentServiceDetail(s);
          }
        }
        return { json: out, headers: { 'X-Consul-ContentHash': String(out.ContentHash) } };
      },
    },
    {
      path: '/v1/agent/health/service/name/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const list = localServices(deps).filter((s) => s.Service === ctx.suffix);
        if (list.length === 0) {
          return wantsText(ctx) ? { status: 404, text: `ServiceName ${ctx.suffix} Not Found` } : { status: 404, json: [] };
        }
        const entries = list.map(serviceHealth);
        const agg = worstStatus(entries.map((e) => e.AggregatedStatus));
        return wantsText(ctx) ? { status: healthStatusCode(agg), text: agg } : { status: healthStatusCode(agg), json: entries };
      },
    },
    {
      path: '/v1/agent/health/service/id/', prefix: true, methods: ['GET'],
      handler: (ctx) => {
        const s = view.findService(registry.node.name, ctx.suffix)?.rec;
        if (!s) return wantsText(ctx) ? { status: 404, text: `ServiceId ${ctx.suffix} Not Found` } : { status: 404, json: null };
        const e = serviceHealth(s);
        return wantsText(ctx) ? { status: healthStatusCode(e.AggregatedStatus), text: e.AggregatedStatus } : { status: healthStatusCode(e.AggregatedStatus), json: e };
      },
    },
    {
      path: '/v1/agent/check/register', methods: ['PUT'],
      handler: async (ctx) => {
        deps.onTtlUpdate(await registry.registerCheck(decodeCheck(parseJsonBody(await ctx.body()))));
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/check/deregister/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        await registry.deregisterCheck(ctx.suffix);
        return EMPTY;
      },
    },
    ...(['pass', 'warn', 'fail'] as const).map((verb): Route => ({
      path: `/v1/agent/check/${verb}/`, prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        const status = verb === 'pass' ? 'passing' : verb === 'warn' ? 'warning' : 'critical';
        await registry.updateTtl(ctx.suffix, status, ctx.query.get('note') ?? '');
        deps.onTtlUpdate(ctx.suffix);
        return EMPTY;
      },
    })),
    {
      path: '/v1/agent/check/update/', prefix: true, methods: ['PUT'],
      handler: async (ctx) => {
        registry.ttlTarget(ctx.suffix);
        const u = decodeCheckUpdate(parseJsonBody(await ctx.body()));
        await registry.updateTtl(ctx.suffix, u.Status ?? '', u.Output ?? '');
        deps.onTtlUpdate(ctx.suffix);
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/maintenance', methods: ['PUT'],
      handler: async (ctx) => {
        await registry.nodeMaintenance(parseEnable(ctx.query), ctx.query.get('reason') ?? '');
        return EMPTY;
      },
    },
    {
      path: '/v1/agent/metrics', methods: ['GET'],
      // Consul's JSON by default; Prometheus text (what /metrics serves) with ?format=prometheus.
      handler: async (ctx) => (ctx.query.get('format') === 'prometheus' || !deps.metricsJson
        ? { text: deps.metricsText ? await deps.metricsText() : '', headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' } }
        : { json: await deps.metricsJson() }),
    },
  ];
}

const SEVERITY = ['passing', 'warning', 'critical', 'maintenance'];
function worstStatus(list: string[]): string {
  return list.reduce((w, s) => (SEVERITY.indexOf(s) > SEVERITY.indexOf(w) ? s : w), 'passing');
}

/** Serf's member status codes as /v1/agent/members reports them. */
const SERF_ALIVE = 1;
const SERF_FAILED = 4;

function member(deps: ApiDeps, n: { name: string; address: string; id: string }, status: number): Record<string, unknown> {
  return {
    Name: n.name, Addr: n.address, Port: 8301,
    Tags: { dc: deps.registry.node.datacenter, role: 'consul', port: '8300', id: n.id, vsn: '2', vsn_min: '2', vsn_max: '3', build: `${deps.version}:switchyard` },
    Status: status, ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4,
  };
}

/**
 * Consul lists its gossip pool's members. On a shared etcd store the members are the agents that
 * joined it (`m/<node>`), alive while their lease key (`a/<node>`) lives and failed after: what
 * Serf would say of an agent that stopped answering. Alone (embedded store) it is just this agent.
 */
function members(deps: ApiDeps): Record<string, unknown>[] {
  const self = deps.registry.node;
  const joined = deps.store.range(keys.MEMBER_PREFIX).map((e) => e.key.slice(keys.MEMBER_PREFIX.length));
  if (!joined.includes(self.name)) joined.push(self.name);
  return joined.sort(cmp).map((name) => {
    if (name === self.name) return member(deps, self, SERF_ALIVE);
    const n = deps.view.node(name);
    return member(deps, { name, address: n?.rec.Address ?? '', id: n?.rec.ID ?? '' }, deps.store.get(keys.ALIVE_PREFIX + name) ? SERF_ALIVE : SERF_FAILED);
  });
}
