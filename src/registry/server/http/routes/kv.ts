/** /v1/kv/*: Consul's KV semantics (base64 values, recurse, keys+separator, raw, cas, flags, acquire/release, 404 with index headers). */
import { HttpError, badRequest } from '../../../../core/errors.js';
import { renderKv } from '../../render.js';
import { kvTooLarge } from '../../kv-limits.js';
import type { Ctx, Reply, Route } from '../context.js';
import { flag } from '../context.js';
import type { ApiDeps } from '../deps.js';
import { blockingRead } from './common.js';

const UINT64_MAX = 18446744073709551615n;

/** Go's strconv.ParseUint error text, which Consul returns as a 500 for bad flags/cas. */
function parseUint(name: string, raw: string): bigint {
  if (!/^\d+$/.test(raw)) throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`, { code: 'SY_ERR_BAD_REQUEST' });
  const v = BigInt(raw);
  if (v > UINT64_MAX) throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(raw)}: value out of range`, { code: 'SY_ERR_BAD_REQUEST' });
  void name;
  return v;
}

/** Consul prints the query as Go's url.Values.Encode does: sorted by key. */
function conflicting(ctx: Ctx): never {
  const q = new URLSearchParams(ctx.query);
  q.sort();
  throw badRequest(`Conflicting flags: ${q.toString()}\n`);
}

export function kvRoutes(deps: ApiDeps): Route[] {
  const { registry, view } = deps;
  const checkDatacenter = (ctx: Ctx): void => {
    const dc = ctx.query.get('dc');
    if (dc && dc !== registry.node.datacenter) throw new HttpError(500, 'No path to datacenter');
  };

  const get = (ctx: Ctx): Promise<Reply> => {
    const key = ctx.suffix;
    const q = ctx.query;
    const keysOnly = flag(q, 'keys');
    const recurse = flag(q, 'recurse') || keysOnly;
    if (key === '' && !recurse) throw badRequest('Missing key name');
    const sep = q.get('separator') ?? q.get('seperator') ?? '';
    return blockingRead(deps, ctx, { kv: key, prefix: recurse }, () => {
      const index = view.kvIndex(key, recurse);
      if (keysOnly) {
        const all = view.kvKeysUnder(key);
        const out: string[] = [];
        for (const k of all) {
          if (sep) {
            const i = k.indexOf(sep, key.length);
            const item = i >= 0 ? k.slice(0, i + sep.length) : k;
            if (out[out.length - 1] !== item) out.push(item);
          } else out.push(k);
        }
        // Consul: an empty listing of the root is [], of any other prefix is a 404.
        if (out.length === 0 && key !== '') return { index, status: 404 };
        return { index, json: out };
      }
      if (recurse) {
        const list = view.kvKeysUnder(key).map((k) => renderKv(k, view.kvEntry(k)!));
        if (list.length === 0) return { index, status: 404 };
        return { index, json: list };
      }
      const e = view.kvEntry(key);
      if (!e) return { index, status: 404 };
      if (flag(q, 'raw')) {
        return {
          index,
          raw: e.rec.Value === null ? Buffer.alloc(0) : Buffer.from(e.rec.Value, 'base64'),
          headers: { 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': 'sandbox' },
        };
      }
      return { index, json: [renderKv(key, e)] };
    });
  };

  const put = async (ctx: Ctx): Promise<Reply> => {
    const key = ctx.suffix;
    const q = ctx.query;
    checkDatacenter(ctx);
    if (key === '') throw badRequest('Missing key name');
    const exclusive = ['cas', 'acquire', 'release'].filter((f) => q.has(f));
    if (exclusive.length > 1) conflicting(ctx);
    const flags = q.has('flags') ? parseUint('flags', q.get('flags') ?? '').toString() : '0';
    const cas = q.has('cas') ? Number(parseUint('cas', q.get('cas') ?? '')) : undefined;
    const body = await ctx.body(registry.kvMaxValueSize, kvTooLarge);
    if (q.has('acquire') || q.has('release')) {
      const w = { flags, value: body.length === 0 ? null : body.toString('base64') };
      const ok = q.has('acquire') ? await deps.sessions.acquire(key, q.get('acquire') ?? '', w) : await deps.sessions.release(key, q.get('release') ?? '', w);
      return { json: ok };
    }
    const ok = await registry.kvPut(key, body, cas === undefined ? { flags } : { flags, cas });
    return { json: ok };
  };

  const del = async (ctx: Ctx): Promise<Reply> => {
    const key = ctx.suffix;
    const q = ctx.query;
    const recurse = flag(q, 'recurse');
    checkDatacenter(ctx);
    if (key === '' && !recurse) throw badRequest('Missing key name');
    if (recurse && q.has('cas')) conflicting(ctx);
    const cas = q.has('cas') ? Number(parseUint('cas', q.get('cas') ?? '')) : undefined;
    const ok = await registry.kvDelete(key, cas === undefined ? { recurse } : { recurse, cas });
    return { json: ok };
  };

  return [{
    path: '/v1/kv/', prefix: true, methods: ['GET', 'PUT', 'DELETE'],
    handler: (ctx) => (ctx.method === 'GET' ? get(ctx) : ctx.method === 'PUT' ? put(ctx) : del(ctx)),
  }];
}
