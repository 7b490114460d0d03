/**
 * The registry's write side: turns validated agent, catalog and KV requests into store
 * transactions, and waits until the view has applied them so a reader sees its own write.
 */
import { HttpError, badRequest, notFound } from '../../core/errors.js';
import { kvTooLarge } from './kv-limits.js';
import { REPLAN, optimistic, unchanged } from './optimistic.js';
import type { Store, StoreEntry, StoreOp, TxnRequest } from '../store/types.js';
import type { CatalogView } from './catalog-view.js';
import type { CatalogDeregisterInput, CatalogRegisterInput, CheckInput, ServiceInput } from './decode.js';
import { normalizeDuration } from './decode.js';
import { truncateOutput } from '../../health/output.js';
import {
  NODE_CHECK_SERF, NODE_MAINT_CHECK, SERVICE_MAINT_PREFIX, keys,
} from './model.js';
import type { CheckRecord, HealthStatus, KvRecord, NodeRecord, ServiceRecord } from './model.js';
import { encodeCheck, encodeStored } from './stored.js';
import { checkDefinition, initialStatus, isStatus, validateMeta, validateServiceAddress, validateWeights } from './validate.js';
import { checkAddressable } from './ids.js';

export interface LocalNode {
  readonly name: string;
  readonly id: string;
  readonly address: string;
  readonly datacenter: string;
}

export interface RegistryOptions {
  store: Store;
  view: CatalogView;
  node: LocalNode;
  /** Largest accepted KV value (Consul's kv_max_value_size, 512 KiB). */
  kvMaxValueSize?: number;
  /** Told about every committed change made through the agent endpoints (cluster anti-entropy). */
  onLocalCommit?: (ops: readonly StoreOp[]) => void;
  /** Accept script and Docker checks (the agent's --enable-script-checks; Consul's enable_script_checks). */
  scriptChecks?: boolean;
}

const NODE_NAME = /^[^/\s]+$/;

export class Registry {
  readonly #store: Store;
  readonly view: CatalogView;
  readonly node: LocalNode;
  readonly kvMaxValueSize: number;
  readonly #onLocalCommit: ((ops: readonly StoreOp[]) => void) | undefined;
  readonly #scriptChecks: boolean;

  constructor(opts: RegistryOptions) {
    this.#store = opts.store;
    this.view = opts.view;
    this.node = opts.node;
    this.kvMaxValueSize = opts.kvMaxValueSize ?? 512 * 1024;
    this.#onLocalCommit = opts.onLocalCommit;
    this.#scriptChecks = opts.scriptChecks ?? false;
  }

  async #commit(req: TxnRequest): Promise<{ succeeded: boolean; revision: number }> {
    const r = await this.#store.txn(req);
    await this.view.waitForRevision(r.revision);
    return r;
  }

  /** A change to this agent's own services and checks (the agent endpoints). */
  async #commitLocal(req: TxnRequest): Promise<{ succeeded: boolean; revision: number }> {
    const r = await this.#commit(req);
    if (r.succeeded) this.#onLocalCommit?.(req.success);
    return r;
  }

  /** Registers (or refreshes) this agent's node, its serfHealth check and the `consul` service a real server lists. */
  async ensureLocalNode(): Promise<void> {
    const n = this.node;
    const rec: NodeRecord = {
      ID: n.id,
      Node: n.name,
      Address: n.address,
      Datacenter: n.datacenter,
      TaggedAddresses: { lan: n.address, wan: n.address },
      Meta: { 'consul-network-segment': '' },
    };
    const serf: CheckRecord = {
      Node: n.name, CheckID: NODE_CHECK_SERF, Name: 'Serf Health Status', Status: 'passing', Notes: '',
      Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', ServiceTags: [], Type: 'serf', Definition: {},
    };
    const consul: ServiceRecord = {
      Node: n.name, ID: 'consul', Service: 'consul', Tags: [], Address: '', TaggedAddresses: {}, Meta: {}, Port: 8300,
      Weights: { Passing: 1, Warning: 1 }, EnableTagOverride: false, Kind: '', Local: false,
    };
    const ops: StoreOp[] = [];
    putIfChanged(ops, this.#store, keys.node(n.name), rec);
    putIfChanged(ops, this.#store, keys.check(n.name, NODE_CHECK_SERF), serf);
    putIfChanged(ops, this.#store, keys.service(n.name, 'consul'), consul);
    if (ops.length > 0) await this.#commit({ success: ops });
  }

  // -------------------------------------------------------------------------------------------
  // Agent endpoints (services and checks owned by this node)

  /** Returns the IDs of the service's checks: each was registered anew (a TTL check's timer starts again, as in Consul). */
  async registerService(input: ServiceInput, opts: { replaceExistingChecks: boolean }): Promise<string[]> {
    const name = input.Name ?? '';
    if (name === '') throw badRequest('Missing service name');
    const id = input.ID || name;
    checkAddressable('service name', name);
    checkAddressable('service ID', id);
    const node = this.node.name;
    const svc: ServiceRecord = {
      Node: node,
      ID: id,
      Service: name,
      Tags: [...(input.Tags ?? [])],
      Address: validateServiceAddress(input.Address),
      TaggedAddresses: taggedAddresses(input.TaggedAddresses),
      Meta: validateMeta(input.Meta),
      Port: input.Port ?? 0,
      Weights: validateWeights(input.Weights),
      EnableTagOverride: input.EnableTagOverride ?? false,
      Kind: input.Kind ?? '',
      Local: true,
    };
    const defs: CheckInput[] = [];
    if (input.Check) defs.push(input.Check);
    for (const c of input.Checks ?? []) defs.push(c);
    const checks = defs.map((c, i) => {
      const field = input.Check && i === 0 ? 'Check' : `Checks[${input.Check ? i - 1 : i}]`;
      const { type, def } = checkDefinition(c, field, this.#scriptChecks);
      const checkId = c.CheckID || (defs.length > 1 ? `service:${id}:${i + 1}` : `service:${id}`);
      checkAddressable(`check ID (${field}.CheckID)`, checkId);
      const rec: CheckRecord = {
        Node: node,
        CheckID: checkId,
        Name: c.Name || `Service '${name}' check`,
        Status: initialStatus(c.Status, "Status for checks must 'passing', 'warning', 'critical'"),
        Notes: c.Notes ?? '',
        Output: '',
        ServiceID: id,
        ServiceName: name,
        ServiceTags: svc.Tags,
        Type: type,
        Definition: def,
      };
      // Re-registration keeps the status of checks that survive, so an idempotent resync does not flap health.
      const prev = this.view.findCheck(node, checkId);
      if (prev && prev.rec.ServiceID === id) {
        rec.Status = prev.rec.Status;
        rec.Output = prev.rec.Output;
      }
      return rec;
    });
    const ops: StoreOp[] = [];
    putIfChanged(ops, this.#store, keys.service(node, id), svc);
    const kept = new Set(checks.map((c) => c.CheckID));
    for (const c of checks) putIfChanged(ops, this.#store, keys.check(node, c.CheckID), c);
    for (const existing of this.view.serviceChecks(node, id)) {
      const cid = existing.rec.CheckID;
      if (kept.has(cid)) continue;
      if (cid.startsWith(SERVICE_MAINT_PREFIX)) continue;
      if (opts.replaceExistingChecks) ops.push({ type: 'delete', key: keys.check(node, cid) });
      else if (existing.rec.ServiceTags.join('\0') !== svc.Tags.join('\0') || existing.rec.ServiceName !== name) {
        putIfChanged(ops, this.#store, keys.check(node, cid), { ...existing.rec, ServiceTags: svc.Tags, ServiceName: name });
      }
    }
    if (ops.length > 0) await this.#commitLocal({ success: ops });
    return [...kept];
  }

  async deregisterService(id: string): Promise<void> {
    const node = this.node.name;
    if (!this.view.findService(node, id)?.rec.Local) {
      throw notFound(`Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
    }
    const ops: StoreOp[] = [{ type: 'delete', key: keys.service(node, id) }];
    for (const c of this.view.serviceChecks(node, id)) ops.push({ type: 'delete', key: keys.check(node, c.rec.CheckID) });
    await this.#commitLocal({ success: ops });
  }

  /** Returns the check's ID (its TTL, if it has one, starts again: see registerService). */
  async registerCheck(c: CheckInput): Promise<string> {
    const name = c.Name ?? '';
    if (name === '') throw badRequest('Missing check name');
    const node = this.node.name;
    let serviceName = '';
    let serviceTags: string[] = [];
    if (c.ServiceID) {
      const svc = this.view.findService(node, c.ServiceID);
      if (!svc) throw notFound(`ServiceID "${c.ServiceID}" does not exist`);
      serviceName = svc.rec.Service;
      serviceTags = svc.rec.Tags;
    }
    const { type, def } = checkDefinition(c, 'check', this.#scriptChecks);
    const id = c.CheckID || name;
    checkAddressable('check ID', id);
    const rec: CheckRecord = {
      Node: node, CheckID: id, Name: name, Status: initialStatus(c.Status, 'Bad check status'), Notes: c.Notes ?? '',
      Output: '', ServiceID: c.ServiceID ?? '', ServiceName: serviceName, ServiceTags: serviceTags, Type: type, Definition: def,
    };
    const prev = this.view.findCheck(node, id);
    if (prev && prev.rec.ServiceID === rec.ServiceID && c.Status === undefined) {
      rec.Status = prev.rec.Status;
      rec.Output = prev.rec.Output;
    }
    const ops: StoreOp[] = [];
    putIfChanged(ops, this.#store, keys.check(node, id), rec);
    if (ops.length > 0) await this.#commitLocal({ success: ops });
    return id;
  }

  async deregisterCheck(id: string): Promise<void> {
    const node = this.node.name;
    if (!this.view.findCheck(node, id)) {
      throw notFound(`Unknown check ID "${id}". Ensure that the check ID is passed, not the check name.`);
    }
    await this.#commitLocal({ success: [{ type: 'delete', key: keys.check(node, id) }] });
  }

  /** Sets a local check's status and output; a write only happens when something changed. */
  async setCheckStatus(checkId: string, status: HealthStatus, output: string): Promise<boolean> {
    const node = this.node.name;
    const cur = this.view.findCheck(node, checkId);
    if (!cur) return false;
    if (cur.rec.Status === status && cur.rec.Output === output) return true;
    const rec: CheckRecord = { ...cur.rec, Status: status, Output: output };
    // Not journaled for anti-entropy: statuses belong to the check runner, and they change far
    // more often than registrations.
    await this.#commit({
      compare: [{ key: keys.check(node, checkId), target: 'exists', equals: true }],
      success: [{ type: 'put', key: keys.check(node, checkId), value: encodeCheck(rec, keys.check(node, checkId)) }],
    });
    return true;
  }

  /** Validates a TTL update target the way Consul does (404 unknown, 500 not a TTL check). */
  ttlTarget(checkId: string): CheckRecord {
    const cur = this.view.findCheck(this.node.name, checkId);
    if (!cur) throw notFound(`Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`);
    if (cur.rec.Type !== 'ttl') throw new HttpError(500, `CheckID "${checkId}" does not have associated TTL`);
    return cur.rec;
  }

  async updateTtl(checkId: string, status: string, output: string): Promise<void> {
    const rec = this.ttlTarget(checkId);
    if (!isStatus(status)) throw badRequest(`Invalid check status: '${status}'`);
    await this.setCheckStatus(checkId, status, truncateOutput(output, rec.Definition.OutputMaxSize ?? 4096));
  }

  async serviceMaintenance(serviceId: string, enable: boolean, reason: string): Promise<void> {
    if (serviceId === '') throw badRequest('Missing service ID');
    const node = this.node.name;
    const svc = this.view.findService(node, serviceId);
    if (!svc) throw notFound(`No service registered with ID "${serviceId}"`);
    const key = keys.check(node, SERVICE_MAINT_PREFIX + serviceId);
    if (!enable) {
      if (this.#store.get(key)) await this.#commitLocal({ success: [{ type: 'delete', key }] });
      return;
    }
    const rec: CheckRecord = {
      Node: node, CheckID: SERVICE_MAINT_PREFIX + serviceId, Name: 'Service Maintenance Mode', Status: 'critical',
      Notes: reason || 'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
      Output: '', ServiceID: serviceId, ServiceName: svc.rec.Service, ServiceTags: svc.rec.Tags, Type: 'maintenance', Definition: {},
    };
    const ops: StoreOp[] = [];
    putIfChanged(ops, this.#store, key, rec);
    if (ops.length > 0) await this.#commitLocal({ success: ops });
  }

  async nodeMaintenance(enable: boolean, reason: string): Promise<void> {
    const node = this.node.name;
    const key = keys.check(node, NODE_MAINT_CHECK);
    if (!enable) {
      if (this.#store.get(key)) await this.#commitLocal({ success: [{ type: 'delete', key }] });
      return;
    }
    const rec: CheckRecord = {
      Node: node, CheckID: NODE_MAINT_CHECK, Name: 'Node Maintenance Mode', Status: 'critical',
      Notes: reason || 'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.',
      Output: '', ServiceID: '', ServiceName: '', ServiceTags: [], Type: 'maintenance', Definition: {},
    };
    const ops: StoreOp[] = [];
    putIfChanged(ops, this.#store, key, rec);
    if (ops.length > 0) await this.#commitLocal({ success: ops });
  }

  // -------------------------------------------------------------------------------------------
  // Catalog endpoints (low-level writes; nothing is executed for these checks)

  async catalogRegister(input: CatalogRegisterInput): Promise<void> {
    if (input.Datacenter && input.Datacenter !== this.node.datacenter) throw new HttpError(500, 'No path to datacenter');
    const node = input.Node ?? '';
    if (node === '') throw badRequest('Must provide node');
    if (!NODE_NAME.test(node)) throw badRequest(`Invalid node name ${JSON.stringify(node)}: must not contain '/' or whitespace`);
    checkAddressable('node name', node);
    const existing = this.view.node(node);
    const ops: StoreOp[] = [];
    if (!(input.SkipNodeUpdate && existing)) {
      const address = input.Address ?? '';
      if (address === '') throw badRequest('Must provide address if SkipNodeUpdate is not set');
      const rec: NodeRecord = {
        ID: input.ID ?? existing?.rec.ID ?? '',
        Node: node,
        Address: address,
        Datacenter: this.node.datacenter,
        TaggedAddresses: { ...(input.TaggedAddresses ?? {}) },
        Meta: validateMeta(input.NodeMeta, 'Node'),
      };
      putIfChanged(ops, this.#store, keys.node(node), rec);
    } else if (!existing) {
      throw badRequest('Must provide address if SkipNodeUpdate is not set');
    }
    let svcRec: ServiceRecord | undefined;
    if (input.Service) {
      const s = input.Service;
      const name = s.Service || s.Name || '';
      if (name === '') throw badRequest('Must provide service name (Service.Service) with Service.ID');
      checkAddressable('service name', name);
      checkAddressable('service ID', s.ID || name);
      svcRec = {
        Node: node, ID: s.ID || name, Service: name, Tags: [...(s.Tags ?? [])], Address: validateServiceAddress(s.Address),
        TaggedAddresses: taggedAddresses(s.TaggedAddresses), Meta: validateMeta(s.Meta), Port: s.Port ?? 0,
        Weights: validateWeights(s.Weights), EnableTagOverride: s.EnableTagOverride ?? false, Kind: s.Kind ?? '', Local: false,
      };
      putIfChanged(ops, this.#store, keys.service(node, svcRec.ID), svcRec);
    }
    const checks = [...(input.Check ? [input.Check] : []), ...(input.Checks ?? [])];
    for (const [i, c] of checks.entries()) {
      const checkId = c.CheckID || c.Name || '';
      if (checkId === '') throw badRequest(`Missing check ID (Checks[${i}].CheckID or Name)`);
      checkAddressable(`check ID (Checks[${i}].CheckID)`, checkId);
      const status = initialStatus(c.Status, `Invalid check status: '${c.Status ?? ''}'`);
      let serviceName = '';
      let serviceTags: string[] = [];
      if (c.ServiceID) {
        const svc = svcRec && svcRec.ID === c.ServiceID ? svcRec : this.view.findService(node, c.ServiceID)?.rec;
        if (!svc) throw badRequest(`Unknown service ID '${c.ServiceID}' for check '${checkId}'`);
        serviceName = svc.Service;
        serviceTags = svc.Tags;
      }
      const rec: CheckRecord = {
        Node: node, CheckID: checkId, Name: c.Name || checkId, Status: status, Notes: c.Notes ?? '', Output: c.Output ?? '',
        ServiceID: c.ServiceID ?? '', ServiceName: serviceName, ServiceTags: serviceTags, Type: '',
        Definition: catalogCheckDefinition(c.Definition, `Checks[${i}].Definition`),
      };
      putIfChanged(ops, this.#store, keys.check(node, checkId), rec);
    }
    if (ops.length > 0) await this.#commit({ success: ops });
  }

  async catalogDeregister(input: CatalogDeregisterInput): Promise<void> {
    if (input.Datacenter && input.Datacenter !== this.node.datacenter) throw new HttpError(500, 'No path to datacenter');
    const node = input.Node ?? '';
    if (node === '') throw badRequest('Must provide node');
    const ops: StoreOp[] = [];
    if (input.ServiceID) {
      ops.push({ type: 'delete', key: keys.service(node, input.ServiceID) });
      for (const c of this.view.serviceChecks(node, input.ServiceID)) ops.push({ type: 'delete', key: keys.check(node, c.rec.CheckID) });
    }
    if (input.CheckID) ops.push({ type: 'delete', key: keys.check(node, input.CheckID) });
    if (!input.ServiceID && !input.CheckID) {
      ops.push({ type: 'delete', key: keys.node(node) }, { type: 'deletePrefix', prefix: keys.servicePrefix(node) },
        { type: 'deletePrefix', prefix: keys.checkPrefix(node) });
    }
    await this.#commit({ success: ops });
  }

  // -------------------------------------------------------------------------------------------
  // KV

  async kvPut(key: string, value: Buffer, opts: { flags: string; cas?: number }): Promise<boolean> {
    if (value.length > this.kvMaxValueSize) throw new HttpError(413, kvTooLarge(value.length, this.kvMaxValueSize));
    const sk = keys.kv(key);
    const encoded = value.length === 0 ? null : value.toString('base64');
    // A write keeps the entry's lock (Session, LockIndex) as Consul does, so the new record is built
    // from the entry it replaces and guarded by it: a lock taken in between is never overwritten.
    const record = (prev: StoreEntry | undefined): string => {
      const p = prev ? (JSON.parse(prev.value) as KvRecord) : undefined;
      const rec: KvRecord = { Flags: opts.flags, Value: encoded, LockIndex: p?.LockIndex ?? 0 };
      if (p?.Session) rec.Session = p.Session;
      return JSON.stringify(rec);
    };
    const ok = await optimistic<boolean>(this.#store, () => {
      const prev = this.#store.get(sk);
      if (opts.cas !== undefined && (prev?.modRevision ?? 0) !== opts.cas) {
        // Either the client's index is stale (false) or, on etcd, this agent's mirror is behind the
        // cluster: a compare-only transaction asks the store, and a lagging mirror is waited for.
        return { txn: { compare: [{ key: sk, target: 'modRevision', equals: opts.cas }], success: [] }, done: () => REPLAN, lost: () => false };
      }
      return {
        txn: { compare: [unchanged(sk, prev)], success: [{ type: 'put', key: sk, value: record(prev) }] },
        done: () => true,
        // Without cas the record is derived from the entry it replaces: a lost commit is written again.
        ...(opts.cas !== undefined ? { lost: () => false } : { replayable: true }),
      };
    }, { what: `PUT /v1/kv/${key}` });
    await this.view.waitForRevision(this.#store.revision());
    return ok;
  }

  async kvDelete(key: string, opts: { recurse: boolean; cas?: number }): Promise<boolean> {
    if (opts.recurse) {
      await this.#commit({ success: [{ type: 'deletePrefix', prefix: keys.kv(key) }] });
      return true;
    }
    const sk = keys.kv(key);
    if (opts.cas !== undefined) {
      // cas=0 never deletes (Consul): the compare on "absent" would be vacuous.
      if (opts.cas === 0) return false;
      const r = await this.#commit({ compare: [{ key: sk, target: 'modRevision', equals: opts.cas }], success: [{ type: 'delete', key: sk }] });
      return r.succeeded;
    }
    await this.#commit({ success: [{ type: 'delete', key: sk }] });
    return true;
  }
}

function putIfChanged(ops: StoreOp[], store: Store, key: string, rec: object): void {
  const value = encodeStored(key, rec);
  if (store.get(key)?.value === value) return;
  ops.push({ type: 'put', key, value });
}

function taggedAddresses(t: Record<string, { Address?: string | undefined; Port?: number | undefined }> | null | undefined): ServiceRecord['TaggedAddresses'] {
  const out: ServiceRecord['TaggedAddresses'] = {};
  for (const [k, v] of Object.entries(t ?? {})) out[k] = { Address: v.Address ?? '', Port: v.Port ?? 0 };
  return out;
}

export function catalogCheckDefinition(d: Record<string, unknown> | undefined, field: string): CheckRecord['Definition'] {
  if (!d) return {};
  const out: CheckRecord['Definition'] = {};
  const str = (k: string): string | undefined => (typeof d[k] === 'string' ? (d[k] as string) : undefined);
  const dur = (k: string): string | undefined => {
    const v = d[k];
    return typeof v === 'string' || typeof v === 'number' ? normalizeDuration(`${field}.${k}`, v) : undefined;
  };
  const http = str('HTTP');
  if (http) out.HTTP = http;
  const tcp = str('TCP');
  if (tcp) out.TCP = tcp;
  const method = str('Method');
  if (method) out.Method = method;
  for (const k of ['Interval', 'Timeout', 'DeregisterCriticalServiceAfter'] as const) {
    const v = dur(k);
    if (v) out[k] = v;
  }
  return out;
}
