/**
 * Prepared queries as stored and as Consul shows them (/v1/query): the record, its store keys,
 * decoding of a definition with Consul's checks and messages, and rendering. A query lives at
 * `pq/<id>`; a named one also holds `pqn/<name>` (its ID), which makes a name unique with one guard
 * in the transaction that claims it, on either store and with any number of agents.
 */
import { z } from 'zod';
import { RE2JS } from 're2js';
import { badRequest } from '../../../core/errors.js';
import { parseGoDuration } from '../../../core/duration.js';
import { canon, decodeWith, dictionary, strictRecord } from '../decode.js';
import { templateProblem } from './template.js';

export const TEMPLATE_NAME_PREFIX_MATCH = 'name_prefix_match';

export interface PreparedQueryRecord {
  ID: string;
  Name: string;
  Session: string;
  Token: string;
  Template: { Type: string; Regexp: string; RemoveEmptyTags: boolean };
  Service: {
    Service: string;
    Failover: { NearestN: number; Datacenters: string[] | null };
    IgnoreCheckIDs: string[] | null;
    OnlyPassing: boolean;
    Near: string;
    Tags: string[] | null;
    NodeMeta: Record<string, string> | null;
    ServiceMeta: Record<string, string> | null;
  };
  DNS: { TTL: string };
}

export const preparedKeys = {
  PREFIX: 'pq/',
  query: (id: string) => `pq/${id}`,
  NAME_PREFIX: 'pqn/',
  name: (name: string) => `pqn/${name}`,
} as const;

/** What `pqn/<name>` holds. */
export interface PreparedNameRecord {
  ID: string;
}

export const isTemplate = (q: PreparedQueryRecord): boolean => q.Template.Type !== '';

/**
 * Whether the query claims its name in `pqn/`: every named query, and the one catch-all template (a
 * template with an empty name matches every name, so Consul allows only one).
 */
export const claimsName = (q: PreparedQueryRecord): boolean => q.Name !== '' || isTemplate(q);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const looksLikeId = (s: string): boolean => UUID.test(s);

// ---------------------------------------------------------------------------------------------
// Decoding

const QUERY_FIELDS = dictionary(['ID', 'Name', 'Session', 'Token', 'Template', 'Service', 'DNS', 'CreateIndex', 'ModifyIndex']);
const TEMPLATE_FIELDS = dictionary(['Type', 'Regexp', 'RemoveEmptyTags']);
const SERVICE_FIELDS = dictionary(['Service', 'Failover', 'IgnoreCheckIDs', 'OnlyPassing', 'Near', 'Tags', 'NodeMeta', 'ServiceMeta', 'Connect', 'Peer', 'Namespace', 'Partition']);
const FAILOVER_FIELDS = dictionary(['NearestN', 'Datacenters', 'Targets']);
const DNS_FIELDS = dictionary(['TTL']);

const strList = z.array(z.string()).nullable().optional();
const strMap = strictRecord(z.string()).nullable().optional();

const shape = z.object({
  Name: z.string().optional(),
  Session: z.string().optional(),
  Token: z.string().optional(),
  Template: z.object({ Type: z.string().optional(), Regexp: z.string().optional(), RemoveEmptyTags: z.boolean().optional() }).nullable().optional(),
  Service: z.object({
    Service: z.string().optional(),
    Failover: z.object({ NearestN: z.number().int().optional(), Datacenters: strList, Targets: z.array(z.unknown()).nullable().optional() }).nullable().optional(),
    IgnoreCheckIDs: strList,
    OnlyPassing: z.boolean().optional(),
    Near: z.string().optional(),
    Tags: strList,
    NodeMeta: strMap,
    ServiceMeta: strMap,
    Connect: z.boolean().optional(),
    Peer: z.string().optional(),
  }).nullable().optional(),
  DNS: z.object({ TTL: z.string().optional() }).nullable().optional(),
});

/** The largest compiled template regexp accepted: it runs on every execution by name. */
const MAX_REGEXP_PROGRAM = 2000;

/**
 * Decodes a definition (POST /v1/query, PUT /v1/query/:id) into a record without its ID, with
 * Consul's parseQuery checks and words. Keys are case-insensitive: python-consul sends lower case.
 */
export function decodePreparedQuery(body: unknown): Omit<PreparedQueryRecord, 'ID'> {
  const input = decodeWith(shape, canon(body, QUERY_FIELDS, {
    Template: (v) => canon(v, TEMPLATE_FIELDS),
    Service: (v) => canon(v, SERVICE_FIELDS, { Failover: (f) => canon(f, FAILOVER_FIELDS) }),
    DNS: (v) => canon(v, DNS_FIELDS),
  }), 'prepared query');
  const svc = input.Service ?? {};
  if ((svc.Service ?? '') === '') throw badRequest('Must provide a Service name to query');
  if (svc.Connect) throw badRequest('Service.Connect: Switchyard has no Connect (service mesh); a prepared query can only return the service\'s own instances');
  if ((svc.Peer ?? '') !== '') throw badRequest('Service.Peer: Switchyard has no cluster peering');
  if ((svc.Failover?.Targets ?? []).length > 0) throw badRequest('Service.Failover.Targets: Switchyard has no cluster peering; use Failover.Datacenters');
  const nearestN = svc.Failover?.NearestN ?? 0;
  if (nearestN < 0) throw badRequest(`Bad NearestN '${nearestN}', must be >= 0`);
  const ttl = input.DNS?.TTL ?? '';
  if (ttl !== '') {
    let ns: number;
    try {
      ns = parseGoDuration(ttl);
    } catch (err) {
      throw badRequest(`Bad DNS TTL '${ttl}': ${(err as Error).message}`);
    }
    if (ns < 0) throw badRequest(`DNS TTL '${ns}', must be >=0`);
  }
  const type = input.Template?.Type ?? '';
  if (type !== '' && type !== TEMPLATE_NAME_PREFIX_MATCH) throw badRequest(`Bad Template.Type '${type}'`);
  const regexp = input.Template?.Regexp ?? '';
  const rec: Omit<PreparedQueryRecord, 'ID'> = {
    Name: input.Name ?? '',
    Session: input.Session ?? '',
    Token: input.Token ?? '',
    Template: { Type: type, Regexp: regexp, RemoveEmptyTags: input.Template?.RemoveEmptyTags ?? false },
    Service: {
      Service: svc.Service ?? '',
      Failover: { NearestN: nearestN, Datacenters: svc.Failover?.Datacenters ?? null },
      IgnoreCheckIDs: svc.IgnoreCheckIDs ?? null,
      OnlyPassing: svc.OnlyPassing ?? false,
      Near: svc.Near ?? '',
      Tags: svc.Tags ?? null,
      NodeMeta: svc.NodeMeta ?? null,
      ServiceMeta: svc.ServiceMeta ?? null,
    },
    DNS: { TTL: ttl },
  };
  if (type !== '') {
    if (regexp !== '') {
      let re: RE2JS;
      try {
        re = RE2JS.compile(regexp);
      } catch (err) {
        throw badRequest(`Bad Regexp: ${(err as Error).message}`);
      }
      if (re.programSize() > MAX_REGEXP_PROGRAM) throw badRequest(`Bad Regexp: ${re.programSize()} instructions compiled, the limit is ${MAX_REGEXP_PROGRAM}`);
    }
    const problem = templateProblem(rec);
    if (problem) throw badRequest(`Failed compiling template: ${problem}`);
  }
  return rec;
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** Consul's PreparedQuery JSON (OSS fields). */
export function renderPreparedQuery(q: PreparedQueryRecord, createIndex: number, modifyIndex: number): Record<string, unknown> {
  return {
    ID: q.ID, Name: q.Name, Session: q.Session, Token: q.Token,
    Template: { ...q.Template },
    Service: {
      Service: q.Service.Service,
      Failover: { NearestN: q.Service.Failover.NearestN, Datacenters: q.Service.Failover.Datacenters, Targets: null },
      IgnoreCheckIDs: q.Service.IgnoreCheckIDs, OnlyPassing: q.Service.OnlyPassing, Near: q.Service.Near,
      Tags: q.Service.Tags, NodeMeta: q.Service.NodeMeta, ServiceMeta: q.Service.ServiceMeta, Peer: '', Connect: false,
    },
    DNS: { ...q.DNS },
    CreateIndex: createIndex, ModifyIndex: modifyIndex,
  };
}

// ---------------------------------------------------------------------------------------------
// Stored shape (a snapshot's values are held to it before a restore)

export const storedPreparedQuery = z.object({
  ID: z.string().regex(UUID),
  Name: z.string(),
  Session: z.string(),
  Token: z.string(),
  Template: z.object({ Type: z.enum(['', TEMPLATE_NAME_PREFIX_MATCH]), Regexp: z.string(), RemoveEmptyTags: z.boolean() }),
  Service: z.object({
    Service: z.string().min(1),
    Failover: z.object({ NearestN: z.number().int().min(0), Datacenters: z.array(z.string()).nullable() }),
    IgnoreCheckIDs: z.array(z.string()).nullable(),
    OnlyPassing: z.boolean(),
    Near: z.string(),
    Tags: z.array(z.string()).nullable(),
    NodeMeta: z.record(z.string(), z.string()).nullable(),
    ServiceMeta: z.record(z.string(), z.string()).nullable(),
  }),
  DNS: z.object({ TTL: z.string() }),
});

export const storedPreparedName = z.object({ ID: z.string().regex(UUID) });
