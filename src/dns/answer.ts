/** Answers one decoded DNS query from the catalog view: Consul's names, health filter, records, SOA and size limits. */
import type { Answer, OptAnswer, Packet, Question, SoaAnswer } from 'dns-packet';
import { AUTHORITATIVE_ANSWER, CHECKING_DISABLED, RECURSION_AVAILABLE, RECURSION_DESIRED, TRUNCATED_RESPONSE, encodingLength } from 'dns-packet';
import type { Random } from '../core/clock.js';
import { shuffle } from '../core/shuffle.js';
import { parseGoDuration } from '../core/duration.js';
import type { PreparedLookup } from '../registry/server/prepared/execute.js';
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { aggregateStatus } from '../registry/server/model.js';
import type { HealthStatus, ServiceRecord } from '../registry/server/model.js';
import { healthEntries } from '../registry/server/queries.js';
import type { HealthEntry } from '../registry/server/queries.js';
import { scanNames } from './name-index.js';
import type { NameLookup } from './name-index.js';
import { ipToHex, isEncodableName, isReverseName, parseIp, parseQueryName, parseReverseName, relativeLabels } from './names.js';
import { reverseRecords } from './reverse.js';

export const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
export type RcodeName = keyof typeof RCODES;

/** Plain DNS over UDP, without EDNS0 (RFC 1035 §4.2.1). */
export const DEFAULT_UDP_SIZE = 512;
/**
 * Largest UDP answer by default, whatever size a client advertises (the DNS flag day 2020 value):
 * bigger datagrams fragment, fragments get dropped, and a client told TC retries over TCP anyway.
 */
export const DEFAULT_MAX_UDP_SIZE = 1232;
/** The most a UDP datagram can carry over IPv4 (65,535 − 8 UDP − 20 IP header bytes). */
export const MAX_UDP_DATAGRAM = 65_507;
/** A TCP message's length prefix is 16 bits. */
export const MAX_TCP_SIZE = 65535;
/** Consul's hard cap on answers in a 512-byte UDP response, whatever udp_answer_limit says. */
export const MAX_UDP_ANSWER_LIMIT = 8;

export interface AnswerOptions {
  /** Normalized by normalizeDomain: `consul`. */
  readonly domain: string;
  readonly datacenter: string;
  readonly onlyPassing: boolean;
  /** Seconds, for node and `.addr.` lookups and NS records. */
  readonly nodeTtl: number;
  /** Seconds by service name, `prefix*` or `*` (see serviceTtl). */
  readonly serviceTtl: Readonly<Record<string, number>>;
  readonly udpAnswerLimit: number;
  readonly enableTruncate: boolean;
  /** Bytes: a UDP answer never exceeds this, even to a client advertising more (default DEFAULT_MAX_UDP_SIZE). */
  readonly maxUdpSize?: number | undefined;
  /** Named in NS answers when no healthy `consul` service instance exists. */
  readonly nodeName?: string | undefined;
  /** Recursors are configured: answers say recursion is available (RA), as Consul's do then. */
  readonly recursionAvailable?: boolean | undefined;
}

export interface AnswerContext {
  readonly view: CatalogReader;
  readonly options: AnswerOptions;
  readonly random: Random;
  /** Epoch milliseconds: the SOA serial. */
  readonly now: number;
  readonly transport: 'udp' | 'tcp';
  /** Defaults to scanning the view; the server passes a cached NameIndex. */
  readonly names?: NameLookup | undefined;
  /** `<query>.query.<domain>`: runs a prepared query (absent: such names do not exist). */
  readonly preparedQuery?: PreparedLookup | undefined;
  /** The asking client's address, as the socket gives it (a prepared query's Near `_ip`). */
  readonly client?: string | undefined;
}

export interface AnswerResult {
  readonly response: Packet;
  readonly rcode: RcodeName;
  /** Records were left out to fit the transport's limits (TC is set only over UDP with enableTruncate). */
  readonly truncated: boolean;
}

interface Reply {
  rcode: RcodeName;
  aa: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

interface Instance {
  readonly entry: HealthEntry;
  readonly status: HealthStatus | 'maintenance';
}

const SOA_REFRESH = 3600;
const SOA_RETRY = 600;
const SOA_EXPIRE = 86400;
const SOA_MINIMUM = 0;

export function answerQuery(request: Packet, ctx: AnswerContext): AnswerResult {
  const reqFlags = request.flags ?? 0;
  const opcode = (reqFlags >> 11) & 0xf;
  const questions = request.questions ?? [];
  const opts = (request.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  const edns = opts.length === 1 ? opts[0] : undefined;
  const q = questions.length === 1 && isEncodableName(questions[0]?.name ?? '') ? questions[0] : undefined;
  const reply: Reply = { rcode: 'NOERROR', aa: true, answers: [], authorities: [], additionals: [] };
  if (opcode !== 0) {
    reply.rcode = 'NOTIMP';
    reply.aa = false;
  } else if (!q || opts.length > 1) {
    // RFC 6891 §6.1.1: more than one OPT is a format error, as is a query that is not exactly one question.
    reply.rcode = 'FORMERR';
    reply.aa = false;
  } else if (edns && edns.ednsVersion !== 0) {
    reply.rcode = 'BADVERS';
  } else {
    resolve(q, ctx, reply);
  }
  return finish(request, opcode, q, edns, reply, ctx);
}

function resolve(q: Question, ctx: AnswerContext, reply: Reply): void {
  const o = ctx.options;
  // The library's RecordType has no ANY, and unknown types arrive as `UNKNOWN_<n>`.
  const qtype: string = q.type;
  const reverse = isReverseName(q.name) ? parseReverseName(q.name) : undefined;
  if (reverse && (q.class === undefined || q.class === 'IN' || q.class === 'ANY')) {
    const ptr = reverseRecords(q, reverse, ctx.view, o);
    if (ptr.length === 0) {
      // An address the catalog does not know is someone else's to answer: the recursors', if there are any.
      reply.rcode = 'REFUSED';
      reply.aa = false;
    } else if (qtype === 'PTR' || qtype === 'ANY') {
      reply.answers.push(...ptr);
    }
    return;
  }
  const labels = relativeLabels(q.name, o.domain);
  if (!labels || (q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY')) {
    // A name we are not authoritative for is refused rather than failed, or handed to the recursors (server.ts).
    reply.rcode = 'REFUSED';
    reply.aa = false;
    return;
  }
  if (qtype === 'AXFR' || qtype === 'IXFR') {
    reply.rcode = 'NOTIMP';
    return;
  }
  if (labels.length === 0) {
    // The zone apex owns the SOA and NS records; any other type there is NODATA, not NXDOMAIN.
    if (qtype === 'SOA' || qtype === 'ANY') reply.answers.push(soa(ctx));
    if (qtype === 'NS' || qtype === 'ANY') nameservers(ctx, reply.answers, reply.additionals);
    else if (qtype === 'SOA') nameservers(ctx, reply.authorities, reply.additionals);
    else reply.authorities.push(soa(ctx));
    return;
  }
  const parsed = parseQueryName(labels, qtype === 'SRV', o.datacenter);
  if (parsed.kind === 'invalid' || (parsed.datacenter !== undefined && parsed.datacenter !== o.datacenter.toLowerCase())) {
    // Another datacenter is unreachable from here; Consul would try a WAN hop, we say the name does not exist.
    nxdomain(ctx, reply);
    return;
  }
  switch (parsed.kind) {
    case 'service':
      serviceLookup(q, parsed.service, parsed.tag, ctx, reply);
      break;
    case 'node':
      nodeLookup(q, parsed.node, ctx, reply);
      break;
    case 'addr':
      reply.answers.push(...addressRecords(q.name, parsed.ip.text, qtype, o.nodeTtl));
      break;
    case 'query':
      preparedQueryLookup(q, parsed.query, ctx, reply);
      break;
  }
  // NODATA (RFC 2308 §2.2): the name exists but has nothing of this type; the SOA tells caches for how long.
  if (reply.rcode === 'NOERROR' && reply.answers.length === 0) reply.authorities.push(soa(ctx));
}

function nxdomain(ctx: AnswerContext, reply: Reply): void {
  reply.rcode = 'NXDOMAIN';
  reply.authorities.push(soa(ctx));
}

function soa(ctx: AnswerContext): SoaAnswer {
  const d = ctx.options.domain;
  return {
    name: d, type: 'SOA', class: 'IN', ttl: SOA_MINIMUM,
    data: {
      mname: `ns.${d}`, rname: `hostmaster.${d}`, serial: Math.floor(ctx.now / 1000) >>> 0,
      refresh: SOA_REFRESH, retry: SOA_RETRY, expire: SOA_EXPIRE, minimum: SOA_MINIMUM,
    },
  };
}

/** As Consul: the healthy `consul` service instances are the name servers, with their addresses as glue. */
function nameservers(ctx: AnswerContext, into: Answer[], glue: Answer[]): void {
  const o = ctx.options;
  const nodes = new Set<string>();
  for (const i of healthyInstances(ctx, 'consul', undefined)) nodes.add(i.entry.service.rec.Node);
  if (nodes.size === 0 && o.nodeName !== undefined && ctx.view.node(o.nodeName) !== undefined) nodes.add(o.nodeName);
  for (const n of [...nodes].sort()) {
    const target = `${n}.node.${o.datacenter}.${o.domain}`;
    if (!isEncodableName(target)) continue;
    into.push({ name: o.domain, type: 'NS', class: 'IN', ttl: o.nodeTtl, data: target });
    const addr = ctx.view.node(n)?.rec.Address ?? '';
    glue.push(...addressRecords(target, addr, 'ANY', o.nodeTtl).filter((r) => r.type !== 'CNAME'));
  }
  if (into.length === 0) into.push({ name: o.domain, type: 'NS', class: 'IN', ttl: o.nodeTtl, data: `ns.${o.domain}` });
}

function healthyInstances(ctx: AnswerContext, lowerName: string, tag: string | undefined): Instance[] {
  const out: Instance[] = [];
  const names = (ctx.names ?? scanNames(ctx.view)).services(lowerName);
  for (const name of names) {
    for (const entry of healthEntries(ctx.view, name, tag === undefined ? {} : { tags: [tag] })) {
      const status = aggregateStatus(entry.checks.map((c) => c.rec));
      // Maintenance checks are critical, so maintenance hides an instance like any critical check.
      if (status === 'critical' || status === 'maintenance') continue;
      if (ctx.options.onlyPassing && status !== 'passing') continue;
      out.push({ entry, status });
    }
  }
  return out;
}

function serviceLookup(q: Question, service: string, tag: string | undefined, ctx: AnswerContext, reply: Reply): void {
  const instances = healthyInstances(ctx, service, tag);
  const first = instances[0];
  if (!first) {
    nxdomain(ctx, reply);
    return;
  }
  // Consul ignores weights for ordering: every query gets a fresh random order.
  shuffle(instances, ctx.random);
  const ttl = serviceTtl(ctx.options.serviceTtl, first.entry.service.rec.Service);
  if (q.type === 'SRV') srvRecords(q, instances, ttl, ctx, reply);
  else serviceAddressRecords(q, instances, ttl, reply);
}

/**
 * A prepared query answers like a service lookup with the query's filters and order; its
 * DNS.TTL, when set, is the records' TTL (Consul's rule), else the service TTL of its service.
 */
function preparedQueryLookup(q: Question, query: string, ctx: AnswerContext, reply: Reply): void {
  // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d; the catalog holds a.b.c.d.
  const run = ctx.preparedQuery?.(query, ctx.client === undefined ? undefined : parseIp(ctx.client)?.text);
  if (!run || run.entries.length === 0) {
    nxdomain(ctx, reply);
    return;
  }
  // The query's own health rules chose these (its OnlyPassing and IgnoreCheckIDs, not dns only_passing), as in Consul.
  const instances: Instance[] = run.entries.map((entry) => ({ entry, status: aggregateStatus(entry.checks.map((c) => c.rec)) }));
  const ttl = run.dnsTtl !== '' ? Math.floor(parseGoDuration(run.dnsTtl) / 1e9) : serviceTtl(ctx.options.serviceTtl, run.service);
  if (q.type === 'SRV') srvRecords(q, instances, ttl, ctx, reply);
  else serviceAddressRecords(q, instances, ttl, reply);
}

function serviceAddressRecords(q: Question, instances: readonly Instance[], ttl: number, reply: Reply): void {
  const seen = new Set<string>();
  const qname = bare(q.name).toLowerCase();
  let cname: Answer | undefined;
  for (const { entry } of instances) {
    const nodeAddr = entry.node?.rec.Address ?? '';
    let addr = entry.service.rec.Address || nodeAddr;
    // A service whose address is the very name asked would be a CNAME to itself.
    if (bare(addr).toLowerCase() === qname) addr = nodeAddr;
    if (addr === '') continue;
    const key = parseIp(addr)?.text ?? bare(addr).toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    for (const r of addressRecords(q.name, addr, q.type, ttl)) {
      if (r.type === 'CNAME') cname ??= r;
      else reply.answers.push(r);
    }
  }
  // A CNAME cannot share its owner name with other data, so it is the answer only when there is no address.
  if (reply.answers.length === 0 && cname) reply.answers.push(cname);
}

/**
 * One SRV record per (node, address, port), each followed in the additional section by the address
 * of its target, as Consul does: three instances on one node give the node's A record three times.
 * Clients such as HAProxy's resolvers pair additional records with answers one to one; the copies
 * are only merged when the answer has to be trimmed to fit (see fit()).
 */
function srvRecords(q: Question, instances: readonly Instance[], ttl: number, ctx: AnswerContext, reply: Reply): void {
  const { datacenter: dc, domain } = ctx.options;
  const handled = new Set<string>();
  for (const { entry, status } of instances) {
    const svc = entry.service.rec;
    const tuple = `${svc.Node}\u0000${svc.Address}\u0000${svc.Port}`;
    if (handled.has(tuple)) continue;
    handled.add(tuple);
    const nodeAddr = entry.node?.rec.Address ?? '';
    const addr = svc.Address || nodeAddr;
    const ip = parseIp(addr);
    let target = `${svc.Node}.node.${dc}.${domain}`;
    let extras: Answer[] = [];
    if (ip) {
      // The additional section can hold one address per name, so a service address that differs
      // from its node's gets a name of its own that encodes it.
      if (parseIp(nodeAddr)?.text !== ip.text) target = `${ipToHex(ip)}.addr.${dc}.${domain}`;
      extras = addressRecords(target, ip.text, 'ANY', ttl);
    } else if (addr !== '') {
      target = bare(addr);
    }
    if (!isEncodableName(target)) continue;
    reply.answers.push({
      name: q.name, type: 'SRV', class: 'IN', ttl,
      data: { priority: 1, weight: weightOf(svc, status), port: clamp(svc.Port, 0, 65535), target },
    });
    reply.additionals.push(...extras);
  }
}

function weightOf(svc: ServiceRecord, status: HealthStatus | 'maintenance'): number {
  const w = status === 'warning' ? svc.Weights.Warning : status === 'passing' ? svc.Weights.Passing : 1;
  return clamp(w, 0, 65535);
}

function nodeLookup(q: Question, lowerName: string, ctx: AnswerContext, reply: Reply): void {
  const name = (ctx.names ?? scanNames(ctx.view)).nodes(lowerName)[0];
  const node = name === undefined ? undefined : ctx.view.node(name);
  if (!node) {
    nxdomain(ctx, reply);
    return;
  }
  const ttl = ctx.options.nodeTtl;
  const qtype: string = q.type;
  const records = qtype === 'TXT' ? [] : addressRecords(q.name, node.rec.Address, qtype, ttl);
  reply.answers.push(...records);
  if ((qtype === 'TXT' || qtype === 'ANY') && !records.some((r) => r.type === 'CNAME')) {
    reply.answers.push(...metaTxt(q.name, node.rec.Meta, ttl));
  }
}

/** A/AAAA for an IP address of the asked family (or any for ANY); a CNAME for a host name. */
function addressRecords(owner: string, addr: string, qtype: string, ttl: number): Answer[] {
  const ip = parseIp(addr);
  if (ip) {
    if (ip.family === 4 && (qtype === 'A' || qtype === 'ANY')) return [{ name: owner, type: 'A', class: 'IN', ttl, data: ip.text }];
    if (ip.family === 6 && (qtype === 'AAAA' || qtype === 'ANY')) return [{ name: owner, type: 'AAAA', class: 'IN', ttl, data: ip.text }];
    return [];
  }
  const host = bare(addr);
  if (host !== '' && isEncodableName(host) && ['A', 'AAAA', 'ANY', 'CNAME', 'TXT'].includes(qtype)) {
    return [{ name: owner, type: 'CNAME', class: 'IN', ttl, data: host }];
  }
  return [];
}

/** Node meta as RFC 1464 `key=value` TXT records; keys starting `rfc1035-` give just the value (as Consul). */
function metaTxt(owner: string, meta: Readonly<Record<string, string>>, ttl: number): Answer[] {
  return Object.keys(meta).sort().map((key) => {
    const value = meta[key] ?? '';
    const txt = key.toLowerCase().startsWith('rfc1035-') ? value : encodeRfc1464(key, value);
    return { name: owner, type: 'TXT', class: 'IN', ttl, data: chunk(Buffer.from(txt)) };
  });
}

export function encodeRfc1464(key: string, value: string): string {
  let k = key.replace(/`/g, '``').replace(/=/g, '`=');
  k = k.replace(/^ +/, (m) => '` '.repeat(m.length)).replace(/ +$/, (m) => '` '.repeat(m.length));
  return `${k}=${value.replace(/`/g, '``')}`;
}

/** A TXT character-string holds at most 255 bytes; longer text becomes several strings in one record. */
function chunk(b: Buffer): Buffer[] {
  if (b.length === 0) return [b];
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += 255) out.push(b.subarray(i, i + 255));
  return out;
}

/** TTL for a service: exact name, then the longest matching `prefix*` (`*` is the empty prefix), else 0. */
export function serviceTtl(map: Readonly<Record<string, number>>, service: string): number {
  const name = service.toLowerCase();
  let best: number | undefined;
  let bestLen = -1;
  for (const [key, ttl] of Object.entries(map)) {
    const k = key.toLowerCase();
    if (k === name) return ttl;
    if (k.endsWith('*') && k.length > bestLen && name.startsWith(k.slice(0, -1))) {
      best = ttl;
      bestLen = k.length;
    }
  }
  return best ?? 0;
}

function finish(request: Packet, opcode: number, q: Question | undefined, edns: OptAnswer | undefined, reply: Reply, ctx: AnswerContext): AnswerResult {
  const udp = ctx.transport === 'udp';
  const maxUdp = ctx.options.maxUdpSize ?? DEFAULT_MAX_UDP_SIZE;
  const limit = !udp ? MAX_TCP_SIZE : edns ? clamp(edns.udpPayloadSize, DEFAULT_UDP_SIZE, maxUdp) : DEFAULT_UDP_SIZE;
  // Consul caps the count only for 512-byte responses; with a larger EDNS0 size the bytes are the only limit.
  const cap = udp && limit === DEFAULT_UDP_SIZE ? Math.min(MAX_UDP_ANSWER_LIMIT, ctx.options.udpAnswerLimit) : Infinity;
  const opt: OptAnswer[] = edns
    ? [{ name: '.', type: 'OPT', udpPayloadSize: maxUdp, extendedRcode: RCODES[reply.rcode] >> 4, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    : [];
  const base: Packet = { questions: q ? [q] : [], authorities: reply.authorities, additionals: opt };
  const fitted = fit(base, reply.answers, reply.additionals, limit, cap);
  let flags = (request.flags ?? 0) & (RECURSION_DESIRED | CHECKING_DISABLED);
  flags |= (opcode << 11) | (RCODES[reply.rcode] & 0xf);
  if (reply.aa) flags |= AUTHORITATIVE_ANSWER;
  if (ctx.options.recursionAvailable) flags |= RECURSION_AVAILABLE;
  if (fitted.truncated && udp && ctx.options.enableTruncate) flags |= TRUNCATED_RESPONSE;
  return {
    response: {
      type: 'response', id: request.id ?? 0, flags, questions: base.questions ?? [],
      answers: fitted.answers, authorities: reply.authorities, additionals: [...fitted.additionals, ...opt],
    },
    rcode: reply.rcode,
    truncated: fitted.truncated,
  };
}

/**
 * Keeps the longest prefix of the answers that fits `limit` bytes and `cap` records, with only the
 * additional records of the kept answers (a dropped SRV's address must not stay behind), each
 * target's once, as Consul's syncExtra does when it trims. An answer that fits is sent as built,
 * copies included. dns-packet does not compress names, so the computed size is the size sent.
 */
function fit(base: Packet, answers: Answer[], additionals: Answer[], limit: number, cap: number): { answers: Answer[]; additionals: Answer[]; truncated: boolean } {
  const all: Packet = { ...base, answers, additionals: [...additionals, ...(base.additionals ?? [])] };
  if (answers.length <= cap && encodingLength(all) <= limit) return { answers, additionals, truncated: false };
  const referenced = new Set(answers.map(refName).filter((n): n is string => n !== undefined));
  const attached = new Map<string, Answer[]>();
  const unattached: Answer[] = [];
  for (const a of additionals) {
    const k = bare(a.name).toLowerCase();
    if (!referenced.has(k)) unattached.push(a);
    else {
      const list = attached.get(k) ?? [];
      if (!list.some((b) => sameRecord(a, b))) list.push(a);
      attached.set(k, list);
    }
  }
  let size = encodingLength({ ...base, additionals: [...unattached, ...(base.additionals ?? [])] });
  const kept: Answer[] = [];
  const extras: Answer[] = [];
  const included = new Set<string>();
  let droppedExtras = false;
  for (const a of answers) {
    if (kept.length >= cap) break;
    const aLen = recordLength(a);
    const ref = refName(a);
    const more = ref !== undefined && !included.has(ref) ? (attached.get(ref) ?? []) : [];
    const moreLen = more.reduce((s, r) => s + recordLength(r), 0);
    if (size + aLen + moreLen <= limit) {
      kept.push(a);
      extras.push(...more);
      if (ref !== undefined) included.add(ref);
      size += aLen + moreLen;
      continue;
    }
    // Better one record without its address than none at all.
    if (kept.length === 0 && size + aLen <= limit) {
      kept.push(a);
      droppedExtras = true;
    }
    break;
  }
  return { answers: kept, additionals: [...unattached, ...extras], truncated: kept.length < answers.length || droppedExtras };
}

function sameRecord(a: Answer, b: Answer): boolean {
  return a.type === b.type && 'data' in a && 'data' in b && JSON.stringify(a.data) === JSON.stringify(b.data);
}

function refName(a: Answer): string | undefined {
  if (a.type === 'SRV') return bare(a.data.target).toLowerCase();
  if (a.type === 'NS' || a.type === 'CNAME') return bare(a.data).toLowerCase();
  return undefined;
}

function recordLength(a: Answer): number {
  return encodingLength({ answers: [a] }) - 12;
}

function bare(name: string): string {
  return name.replace(/\.$/, '');
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.trunc(Number.isFinite(n) ? n : lo)));
}
