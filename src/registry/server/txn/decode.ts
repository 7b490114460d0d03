/**
 * Decoding of a `/v1/txn` body: a JSON array of operations, each with one of KV, Node, Service or
 * Check, keys in any case as Go decodes them, KV values in base64. A body that does not decode is
 * a 400 "Failed to parse body: …" naming the operation, as in Consul; per-operation semantic
 * errors are left to evaluation, which reports them in the 409's Errors.
 */
import { z } from 'zod';
import { HttpError, badRequest } from '../../../core/errors.js';
import { canon, dictionary, strictRecord } from '../decode.js';

export interface KvOp {
  readonly kind: 'KV';
  readonly verb: string;
  readonly key: string;
  /** Decoded bytes, or null for an absent/null Value. */
  readonly value: Buffer | null;
  /** uint64 as a decimal string. */
  readonly flags: string;
  readonly index: number;
  readonly session: string;
}

export interface NodeOp {
  readonly kind: 'Node';
  readonly verb: string;
  readonly node: { ID: string; Node: string; Address: string; Datacenter: string; TaggedAddresses: Record<string, string>; Meta: Record<string, string>; ModifyIndex: number };
}

export interface ServiceOp {
  readonly kind: 'Service';
  readonly verb: string;
  readonly node: string;
  readonly service: {
    ID: string; Service: string; Tags: string[]; Address: string; Meta: Record<string, string>; Port: number;
    Weights: { Passing?: number | undefined; Warning?: number | undefined } | null; EnableTagOverride: boolean; Kind: string; ModifyIndex: number;
  };
}

export interface CheckOp {
  readonly kind: 'Check';
  readonly verb: string;
  readonly check: {
    Node: string; CheckID: string; Name: string; Status: string; Notes: string; Output: string; ServiceID: string;
    ServiceName: string; ServiceTags: string[]; Definition: Record<string, unknown> | undefined; ModifyIndex: number;
  };
}

export type TxnOp = KvOp | NodeOp | ServiceOp | CheckOp;

/** Consul's maxTxnOps. */
export const MAX_TXN_OPS = 64;

const OP_FIELDS = dictionary(['KV', 'Node', 'Service', 'Check']);
const KV_FIELDS = dictionary(['Verb', 'Key', 'Value', 'Flags', 'Index', 'Session', 'Namespace', 'Partition']);
const NODE_OP_FIELDS = dictionary(['Verb', 'Node']);
const NODE_FIELDS = dictionary(['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'Meta', 'ModifyIndex', 'CreateIndex', 'Partition', 'PeerName']);
const SERVICE_OP_FIELDS = dictionary(['Verb', 'Node', 'Service']);
const SERVICE_FIELDS = dictionary(['ID', 'Service', 'Tags', 'Address', 'Meta', 'Port', 'Weights', 'EnableTagOverride', 'Kind', 'ModifyIndex', 'CreateIndex', 'Namespace', 'Partition']);
const WEIGHT_FIELDS = dictionary(['Passing', 'Warning']);
const CHECK_OP_FIELDS = dictionary(['Verb', 'Check']);
const CHECK_FIELDS = dictionary(['Node', 'CheckID', 'Name', 'Status', 'Notes', 'Output', 'ServiceID', 'ServiceName', 'ServiceTags', 'Definition', 'ModifyIndex', 'CreateIndex', 'Type', 'Namespace', 'Partition']);

const str = z.string().optional();
const index = z.number().int().min(0).optional();
const strMap = strictRecord(z.string()).nullable().optional();

const kvShape = z.object({ Verb: str, Key: str, Value: z.string().nullable().optional(), Flags: z.number().int().min(0).optional(), Index: index, Session: str });
const nodeShape = z.object({
  Verb: str,
  Node: z.object({ ID: str, Node: str, Address: str, Datacenter: str, TaggedAddresses: strMap, Meta: strMap, ModifyIndex: index }).nullable().optional(),
});
const serviceShape = z.object({
  Verb: str,
  Node: str,
  Service: z.object({
    ID: str, Service: str, Tags: z.array(z.string()).nullable().optional(), Address: str, Meta: strMap, Port: z.number().int().min(0).max(65535).optional(),
    Weights: z.object({ Passing: z.number().int().optional(), Warning: z.number().int().optional() }).nullable().optional(),
    EnableTagOverride: z.boolean().optional(), Kind: str, ModifyIndex: index,
  }).nullable().optional(),
});
const checkShape = z.object({
  Verb: str,
  Check: z.object({
    Node: str, CheckID: str, Name: str, Status: str, Notes: str, Output: str, ServiceID: str, ServiceName: str,
    ServiceTags: z.array(z.string()).nullable().optional(), Definition: strictRecord(z.unknown()).nullable().optional(), ModifyIndex: index,
  }).nullable().optional(),
});

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function parseFailed(message: string): HttpError {
  return badRequest(`Failed to parse body: ${message}`);
}

function shaped<T>(schema: z.ZodType<T>, v: unknown, where: string): T {
  const r = schema.safeParse(v === null ? {} : v);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw parseFailed(`${where}${issue && issue.path.length > 0 ? `.${issue.path.map(String).join('.')}` : ''}: ${issue?.message ?? 'invalid'}`);
}

/** Decodes the body; `maxValueBytes` is the KV value limit (413 with Consul's message past it). */
export function decodeTxn(body: Buffer, maxValueBytes: number): TxnOp[] {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw parseFailed((err as Error).message);
  }
  if (!Array.isArray(raw)) throw parseFailed('expected a JSON array of operations');
  if (raw.length > MAX_TXN_OPS) throw new HttpError(413, `Transaction contains too many operations (${raw.length} > ${MAX_TXN_OPS})`);
  return raw.map((item, i) => decodeOp(item, i, maxValueBytes));
}

function decodeOp(item: unknown, i: number, maxValueBytes: number): TxnOp {
  const where = `operation ${i}`;
  if (item === null || typeof item !== 'object' || Array.isArray(item)) throw parseFailed(`${where} is not an object`);
  const op = canon(item, OP_FIELDS) as Record<string, unknown>;
  const present = Object.keys(op).filter((k) => op[k] !== null && op[k] !== undefined);
  if (present.length !== 1) {
    throw parseFailed(`${where} must have exactly one of KV, Node, Service or Check (it has ${present.length === 0 ? 'none' : present.join(', ')})`);
  }
  switch (present[0]) {
    case 'KV': {
      const kv = shaped(kvShape, canon(op.KV, KV_FIELDS), `${where}.KV`);
      let value: Buffer | null = null;
      if (typeof kv.Value === 'string') {
        if (!BASE64.test(kv.Value) || kv.Value.length % 4 !== 0) throw parseFailed(`${where}.KV.Value: failed to decode value: illegal base64 data`);
        value = Buffer.from(kv.Value, 'base64');
      }
      if (value && value.length > maxValueBytes) {
        throw new HttpError(413, `Value for key ${JSON.stringify(kv.Key ?? '')} is too large (${value.length} > ${maxValueBytes} bytes)`);
      }
      return {
        kind: 'KV', verb: kv.Verb ?? '', key: kv.Key ?? '', value, index: kv.Index ?? 0, session: kv.Session ?? '',
        // JSON numbers past 2^53 arrive rounded; Flags are kept as the exact integer they parsed to.
        flags: BigInt(kv.Flags ?? 0).toString(),
      };
    }
    case 'Node': {
      const n = shaped(nodeShape, canon(op.Node, NODE_OP_FIELDS, { Node: (v) => canon(v, NODE_FIELDS) }), `${where}.Node`);
      const node = n.Node ?? {};
      return {
        kind: 'Node', verb: n.Verb ?? '',
        node: {
          ID: node.ID ?? '', Node: node.Node ?? '', Address: node.Address ?? '', Datacenter: node.Datacenter ?? '',
          TaggedAddresses: { ...(node.TaggedAddresses ?? {}) }, Meta: { ...(node.Meta ?? {}) }, ModifyIndex: node.ModifyIndex ?? 0,
        },
      };
    }
    case 'Service': {
      const s = shaped(serviceShape, canon(op.Service, SERVICE_OP_FIELDS, {
        Service: (v) => canon(v, SERVICE_FIELDS, { Weights: (w) => canon(w, WEIGHT_FIELDS) }),
      }), `${where}.Service`);
      const svc = s.Service ?? {};
      return {
        kind: 'Service', verb: s.Verb ?? '', node: s.Node ?? '',
        service: {
          ID: svc.ID ?? '', Service: svc.Service ?? '', Tags: [...(svc.Tags ?? [])], Address: svc.Address ?? '', Meta: { ...(svc.Meta ?? {}) },
          Port: svc.Port ?? 0, Weights: svc.Weights ?? null, EnableTagOverride: svc.EnableTagOverride ?? false, Kind: svc.Kind ?? '',
          ModifyIndex: svc.ModifyIndex ?? 0,
        },
      };
    }
    default: {
      const c = shaped(checkShape, canon(op.Check, CHECK_OP_FIELDS, { Check: (v) => canon(v, CHECK_FIELDS) }), `${where}.Check`);
      const chk = c.Check ?? {};
      return {
        kind: 'Check', verb: c.Verb ?? '',
        check: {
          Node: chk.Node ?? '', CheckID: chk.CheckID ?? '', Name: chk.Name ?? '', Status: chk.Status ?? '', Notes: chk.Notes ?? '',
          Output: chk.Output ?? '', ServiceID: chk.ServiceID ?? '', ServiceName: chk.ServiceName ?? '', ServiceTags: [...(chk.ServiceTags ?? [])],
          Definition: chk.Definition ?? undefined, ModifyIndex: chk.ModifyIndex ?? 0,
        },
      };
    }
  }
}
