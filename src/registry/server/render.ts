/** Consul's JSON response shapes, built from view records (never null for lists and maps). */
import type { Indexed } from './catalog-reader.js';
import type { CheckDefinition, CheckRecord, KvRecord, NodeRecord, ServiceRecord } from './model.js';
import type { HealthEntry } from './queries.js';

export function renderNode(n: Indexed<NodeRecord>): Record<string, unknown> {
  const r = n.rec;
  return {
    ID: r.ID, Node: r.Node, Address: r.Address, Datacenter: r.Datacenter, TaggedAddresses: r.TaggedAddresses,
    Meta: r.Meta, CreateIndex: n.createIndex, ModifyIndex: n.modifyIndex,
  };
}

/** The `Service` object of health entries and catalog/node. */
export function renderService(s: Indexed<ServiceRecord>, datacenter: string): Record<string, unknown> {
  const r = s.rec;
  return {
    ID: r.ID, Service: r.Service, Tags: r.Tags, Address: r.Address, TaggedAddresses: r.TaggedAddresses, Meta: r.Meta,
    Port: r.Port, Weights: r.Weights, EnableTagOverride: r.EnableTagOverride, Kind: r.Kind,
    Proxy: { Mode: '', MeshGateway: {}, Expose: {} }, Connect: {}, Datacenter: datacenter,
    CreateIndex: s.createIndex, ModifyIndex: s.modifyIndex,
  };
}

/** `/v1/agent/services` values: agent-local indexes are 0 in Consul. */
export function renderAgentService(r: ServiceRecord, datacenter: string): Record<string, unknown> {
  return {
    ID: r.ID, Service: r.Service, Tags: r.Tags, Meta: r.Meta, Port: r.Port, Address: r.Address,
    TaggedAddresses: r.TaggedAddresses, Weights: r.Weights, EnableTagOverride: r.EnableTagOverride, Kind: r.Kind,
    Datacenter: datacenter,
  };
}

export function renderCatalogService(s: Indexed<ServiceRecord>, n: Indexed<NodeRecord> | undefined): Record<string, unknown> {
  const r = s.rec;
  return {
    ID: n?.rec.ID ?? '', Node: r.Node, Address: n?.rec.Address ?? '', Datacenter: n?.rec.Datacenter ?? '',
    TaggedAddresses: n?.rec.TaggedAddresses ?? {}, NodeMeta: n?.rec.Meta ?? {}, ServiceKind: r.Kind, ServiceID: r.ID,
    ServiceName: r.Service, ServiceTags: r.Tags, ServiceAddress: r.Address, ServiceTaggedAddresses: r.TaggedAddresses,
    ServiceWeights: r.Weights, ServiceMeta: r.Meta, ServicePort: r.Port, ServiceEnableTagOverride: r.EnableTagOverride,
    ServiceProxy: { Mode: '', MeshGateway: {}, Expose: {} }, ServiceConnect: {},
    CreateIndex: s.createIndex, ModifyIndex: s.modifyIndex,
  };
}

const ZERO = '0s';

function renderDefinition(d: CheckDefinition): Record<string, unknown> {
  return {
    Interval: d.Interval ?? ZERO, Timeout: d.Timeout ?? ZERO, DeregisterCriticalServiceAfter: d.DeregisterCriticalServiceAfter ?? ZERO,
    HTTP: d.HTTP ?? '', Header: d.Header ?? null, Method: d.Method ?? '', Body: d.Body ?? '', TLSServerName: d.TLSServerName ?? '',
    TLSSkipVerify: d.TLSSkipVerify ?? false, TCP: d.TCP ?? '', TCPUseTLS: d.TCPUseTLS ?? false, UDP: d.UDP ?? '', GRPC: d.GRPC ?? '', OSService: '', GRPCUseTLS: d.GRPCUseTLS ?? false,
    // Consul's server-side definition carries these too; its api package leaves them out.
    H2PING: d.H2PING ?? '', H2PingUseTLS: d.H2PingUseTLS ?? false, AliasNode: d.AliasNode ?? '', AliasService: d.AliasService ?? '',
  };
}

/** HealthCheck; `indexed` is absent for agent-local views, where Consul reports no indexes. */
export function renderCheck(c: CheckRecord, indexed?: { createIndex: number; modifyIndex: number }): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Node: c.Node, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: c.Notes, Output: c.Output,
    ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: c.ServiceTags, Type: c.Type === 'serf' ? '' : c.Type,
    Interval: c.Definition.Interval ?? '', Timeout: c.Definition.Timeout ?? '', ExposedPort: 0,
    Definition: renderDefinition(c.Definition),
  };
  if (indexed) {
    out.CreateIndex = indexed.createIndex;
    out.ModifyIndex = indexed.modifyIndex;
  }
  return out;
}

const UINT64_SAFE = /^\d{1,15}$/;

/** KV entries; Flags is uint64 and is emitted as a bare number even past 2^53 (see jsonWithRawFlags). */
export function renderKv(key: string, e: Indexed<KvRecord>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    LockIndex: e.rec.LockIndex, Key: key,
    Flags: UINT64_SAFE.test(e.rec.Flags) ? Number(e.rec.Flags) : { [RAW_NUMBER]: e.rec.Flags },
    Value: e.rec.Value, CreateIndex: e.createIndex, ModifyIndex: e.modifyIndex,
  };
  if (e.rec.Session) out.Session = e.rec.Session;
  return out;
}

/** Marker for numbers JSON.stringify cannot carry exactly; the encoder splices the digits in. */
export const RAW_NUMBER = '__sy_raw_number__';

/** One entry of /v1/health/service (and of a prepared query's Nodes): the node, the service, its checks. */
export function renderHealthEntry(e: HealthEntry, datacenter: string): Record<string, unknown> {
  return {
    Node: e.node ? renderNode(e.node) : { Node: e.service.rec.Node },
    Service: renderService(e.service, datacenter),
    Checks: e.checks.map((c) => renderCheck(c.rec, c)),
  };
}
