/**
 * How service and check records are kept in the store: JSON without the fields that hold their
 * default (empty tags, address, maps and kind, weights 1/1, no notes or output…). At a million
 * instances those defaults were over a third of every stored value: heap, write-ahead log, snapshot
 * and the JSON parsed again at every restart. Readers fill the defaults back in, so values written
 * in full (by earlier versions) read the same.
 */
import { keys, splitNodeKey } from './model.js';
import type { CheckRecord, ServiceRecord, Weights } from './model.js';

/** Consul's default weights; shared (frozen) by every record that has them. */
export const DEFAULT_WEIGHTS: Readonly<Weights> = Object.freeze({ Passing: 1, Warning: 1 });

const isEmpty = (o: object | undefined | null): boolean => {
  if (o === undefined || o === null) return true;
  for (const _ in o) return false;
  return true;
};

/** Whether `key` is `expected` and reads back as the same node (names with '/' would not: the key splits at the first one). */
const saysNodeAndId = (key: string, node: string, expected: string): boolean => key === expected && !node.includes('/');

/**
 * A service record's stored JSON under `key`: only the fields that differ from their defaults
 * (Service and Port always). Node and ID are left out when the key already says them, which it does
 * for every record the registry writes; they are kept for any other key, so nothing is ever lost.
 */
export function encodeService(r: ServiceRecord, key: string): string {
  const out: Partial<ServiceRecord> = saysNodeAndId(key, r.Node, keys.service(r.Node, r.ID)) ? { Service: r.Service } : { Node: r.Node, ID: r.ID, Service: r.Service };
  if (r.Tags.length > 0) out.Tags = r.Tags;
  if (r.Address !== '') out.Address = r.Address;
  if (!isEmpty(r.TaggedAddresses)) out.TaggedAddresses = r.TaggedAddresses;
  if (!isEmpty(r.Meta)) out.Meta = r.Meta;
  out.Port = r.Port;
  if (r.Weights.Passing !== 1 || r.Weights.Warning !== 1) out.Weights = r.Weights;
  if (r.EnableTagOverride) out.EnableTagOverride = true;
  if (r.Kind !== '') out.Kind = r.Kind;
  if (r.Local) out.Local = true;
  return JSON.stringify(out);
}

/** A check record's stored JSON under `key`: as for services, Node and CheckID only when the key does not say them (Name and Status always). */
export function encodeCheck(r: CheckRecord, key: string): string {
  const out: Partial<CheckRecord> = saysNodeAndId(key, r.Node, keys.check(r.Node, r.CheckID)) ? { Name: r.Name, Status: r.Status } : { Node: r.Node, CheckID: r.CheckID, Name: r.Name, Status: r.Status };
  if (r.Notes !== '') out.Notes = r.Notes;
  if (r.Output !== '') out.Output = r.Output;
  if (r.ServiceID !== '') out.ServiceID = r.ServiceID;
  if (r.ServiceName !== '') out.ServiceName = r.ServiceName;
  if (r.ServiceTags.length > 0) out.ServiceTags = r.ServiceTags;
  if (r.Type !== '') out.Type = r.Type;
  if (!isEmpty(r.Definition)) out.Definition = r.Definition;
  return JSON.stringify(out);
}

/** A parsed stored service, with its defaults filled in (field order as ServiceRecord declares it). */
export function serviceWithDefaults(r: Partial<ServiceRecord>): ServiceRecord {
  return {
    Node: r.Node ?? '', ID: r.ID ?? '', Service: r.Service ?? '', Tags: r.Tags ?? [], Address: r.Address ?? '',
    TaggedAddresses: r.TaggedAddresses ?? {}, Meta: r.Meta ?? {}, Port: r.Port ?? 0, Weights: r.Weights ?? { ...DEFAULT_WEIGHTS },
    EnableTagOverride: r.EnableTagOverride ?? false, Kind: r.Kind ?? '', Local: r.Local ?? false,
  };
}

/** A parsed stored check, with its defaults filled in (field order as CheckRecord declares it). */
export function checkWithDefaults(r: Partial<CheckRecord>): CheckRecord {
  return {
    Node: r.Node ?? '', CheckID: r.CheckID ?? '', Name: r.Name ?? '', Status: r.Status ?? 'critical', Notes: r.Notes ?? '',
    Output: r.Output ?? '', ServiceID: r.ServiceID ?? '', ServiceName: r.ServiceName ?? '', ServiceTags: r.ServiceTags ?? [],
    Type: r.Type ?? '', Definition: r.Definition ?? {},
  };
}

/** A stored JSON record, or undefined when the value does not parse: readers skip what they cannot read. */
export function parseStored<T>(value: string): T | undefined {
  try {
    return JSON.parse(value) as T;
  } catch {
    return undefined;
  }
}

/** The stored value for a record under `key`: services and checks without their defaults, anything else as JSON. */
export function encodeStored(key: string, rec: object): string {
  if (key.startsWith('s/')) return encodeService(rec as ServiceRecord, key);
  if (key.startsWith('c/')) return encodeCheck(rec as CheckRecord, key);
  return JSON.stringify(rec);
}

/** The node and ID a service or check key names (`s/<node>/<id>`, `c/<node>/<id>`): what the stored value may leave out. */
const named = (key: string): [node: string, id: string] => splitNodeKey(key.slice(2));

/** The service stored under `key`, defaults filled in, Node and ID from the key when the value leaves them out. */
export function decodeService(json: string, key: string): ServiceRecord {
  const r = JSON.parse(json) as Partial<ServiceRecord>;
  if (r.Node === undefined || r.ID === undefined) {
    const [node, id] = named(key);
    r.Node ??= node;
    r.ID ??= id;
  }
  return serviceWithDefaults(r);
}

/** The check stored under `key`, as decodeService. */
export function decodeCheck(json: string, key: string): CheckRecord {
  const r = JSON.parse(json) as Partial<CheckRecord>;
  if (r.Node === undefined || r.CheckID === undefined) {
    const [node, id] = named(key);
    r.Node ??= node;
    r.CheckID ??= id;
  }
  return checkWithDefaults(r);
}
