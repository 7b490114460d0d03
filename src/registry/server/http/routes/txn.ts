/** /v1/txn: Consul's transactions (KV, Node, Service and Check operations), atomic, with the 409 + Errors answer when one fails. */
import { HttpError } from '../../../../core/errors.js';
import { decodeTxn } from '../../txn/decode.js';
import { runTxn } from '../../txn/evaluate.js';
import type { Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

/** Consul's txn_max_req_len default; a larger kv_max_value_size raises it, as in Consul. */
const TXN_MAX_REQ_LEN = 512 * 1024;

export function txnRoutes(deps: ApiDeps): Route[] {
  const { registry } = deps;
  const maxLen = Math.max(TXN_MAX_REQ_LEN, registry.kvMaxValueSize);
  return [{
    path: '/v1/txn', methods: ['PUT'],
    handler: async (ctx) => {
      const dc = ctx.query.get('dc');
      if (dc && dc !== registry.node.datacenter) throw new HttpError(500, 'No path to datacenter');
      const body = await ctx.body(maxLen, (_size, max) => `Request body too large, max size: ${max} bytes`);
      const ops = decodeTxn(body, registry.kvMaxValueSize);
      const out = await runTxn({ store: deps.store, clock: deps.clock, datacenter: registry.node.datacenter }, ops);
      await deps.view.waitForRevision(out.index);
      return { status: out.status, json: out.body, index: out.index };
    },
  }];
}
