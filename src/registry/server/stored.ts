/**
 * How service and check records are kept in the store: JSON without the fields that hold their
 * default (empty tags, address, maps and kind, weights 1/1, no notes or output…). At a million
 * instances those defaults were over a third of every stored value: heap, write-ahead log, snapshot
 * and the JSON parsed again at every restart. Readers fill the defaults back in, so values written
 * in full (by earlier versions) read the same.
 */
import type { CheckRecord, ServiceRecord, Weights } from './model.js';

/** Consul's default weights; shared (frozen) by every record that has them. */
export const DEFAULT_WEIGHTS: Readonly<Weights> = Object.freeze({ Passing: 1, Warning: 1 });

const isEmpty = (o: object | undefined | null): boolean => {
  if (o === undefined || o === null) return true;
  for (const _ in o) return false;
  return true;
};

/** A service record's stored JSON: only the fields that differ from their defaults (Node, ID, Service and Port always). */
export function encodeService(r: ServiceRecord): string {
  const out: Partial<ServiceRecord> = { Node: r.Node, ID: r.ID, Service: r.Service };
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

/** A check record's stored JSON: only the fields that differ from their defaults (Node, CheckID, Name and Status always). */
export function encodeCheck(r: CheckRecord): string {
  const out: Partial<CheckRecord> = { Node: r.Node, CheckID: r.CheckID, Name: r.Name, Status: r.Status };
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

/** The stored value for a record under `key`: services and checks without their defaults, anything else as JSON. */
export function encodeStored(key: string, rec: object): string {
  if (key.startsWith('s/')) return encodeService(rec as ServiceRecord);
  if (key.startsWith('c/')) return encodeCheck(rec as CheckRecord);
  return JSON.stringify(rec);
}

export const decodeService = (json: string): ServiceRecord => serviceWithDefaults(JSON.parse(json) as Partial<ServiceRecord>);
export const decodeCheck = (json: string): CheckRecord => checkWithDefaults(JSON.parse(json) as Partial<CheckRecord>);
