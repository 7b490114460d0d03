/**
 * Prepared query templates (Template.Type "name_prefix_match"): a template answers every name that
 * starts with its own, and its service fields are rendered for the name asked, with Consul's
 * variables: `${name.full}`, `${name.prefix}`, `${name.suffix}`, `${match(N)}` (the Nth capture of
 * Template.Regexp against the full name, "" when it does not match) and `${agent.segment}` (always
 * "": there are no network segments). The regexp runs on RE2 (linear time, Go's syntax).
 */
import { RE2JS } from 're2js';
import type { PreparedQueryRecord } from './model.js';

const EXPR = /\$\{([^}]*)\}/g;
const MATCH = /^match\(\s*(\d+)\s*\)$/;
const VARIABLES = new Set(['name.full', 'name.prefix', 'name.suffix', 'agent.segment']);

interface Vars {
  readonly full: string;
  readonly prefix: string;
  readonly matches: readonly string[];
}

/** The first unknown or malformed `${…}` of the fields a render touches, named by field; undefined when all are good. */
export function templateProblem(q: Omit<PreparedQueryRecord, 'ID'>): string | undefined {
  for (const [field, value] of renderedFields(q)) {
    for (const m of value.matchAll(EXPR)) {
      const expr = (m[1] as string).trim();
      if (!VARIABLES.has(expr) && !MATCH.test(expr)) return `${field}: unknown variable or function "\${${m[1] as string}}" (known: name.full, name.prefix, name.suffix, match(N), agent.segment)`;
    }
    const rest = value.replace(EXPR, '');
    if (rest.includes('${')) return `${field}: "\${" is not closed by "}"`;
  }
  return undefined;
}

function* renderedFields(q: Omit<PreparedQueryRecord, 'ID'>): Generator<[string, string]> {
  const s = q.Service;
  yield ['Service.Service', s.Service];
  yield ['Service.Near', s.Near];
  for (const [i, t] of (s.Tags ?? []).entries()) yield [`Service.Tags[${i}]`, t];
  for (const [i, t] of (s.IgnoreCheckIDs ?? []).entries()) yield [`Service.IgnoreCheckIDs[${i}]`, t];
  for (const [i, t] of (s.Failover.Datacenters ?? []).entries()) yield [`Service.Failover.Datacenters[${i}]`, t];
  for (const [k, v] of Object.entries(s.NodeMeta ?? {})) yield [`Service.NodeMeta.${k}`, v];
  for (const [k, v] of Object.entries(s.ServiceMeta ?? {})) yield [`Service.ServiceMeta.${k}`, v];
}

function interpolate(value: string, v: Vars): string {
  if (!value.includes('${')) return value;
  return value.replace(EXPR, (_all, raw: string) => {
    const expr = raw.trim();
    if (expr === 'name.full') return v.full;
    if (expr === 'name.prefix') return v.prefix;
    if (expr === 'name.suffix') return v.full.slice(v.prefix.length);
    if (expr === 'agent.segment') return '';
    const m = MATCH.exec(expr);
    return m ? (v.matches[Number(m[1])] ?? '') : '';
  });
}

/** Compiled once per stored record (a new record is a new object), not on every execution or DNS question. */
const compiled = new WeakMap<PreparedQueryRecord, RE2JS>();

/** The template rendered for `name` (which starts with the template's Name); a plain query comes back as it is. */
export function renderTemplate(q: PreparedQueryRecord, name: string): PreparedQueryRecord {
  if (q.Template.Type === '') return q;
  let matches: string[] = [];
  if (q.Template.Regexp !== '') {
    let re = compiled.get(q);
    if (re === undefined) compiled.set(q, (re = RE2JS.compile(q.Template.Regexp)));
    const m = re.matcher(name);
    if (m.find()) matches = Array.from({ length: m.groupCount() + 1 }, (_, i) => m.group(i) ?? '');
  }
  const v: Vars = { full: name, prefix: q.Name, matches };
  const list = (xs: string[] | null, dropEmpty = false): string[] | null => {
    if (xs === null) return null;
    const out = xs.map((x) => interpolate(x, v));
    return dropEmpty ? out.filter((x) => x !== '') : out;
  };
  const map = (m: Record<string, string> | null): Record<string, string> | null =>
    m === null ? null : Object.fromEntries(Object.entries(m).map(([k, x]) => [k, interpolate(x, v)]));
  const s = q.Service;
  return {
    ...q,
    Service: {
      Service: interpolate(s.Service, v),
      Failover: { NearestN: s.Failover.NearestN, Datacenters: list(s.Failover.Datacenters) },
      IgnoreCheckIDs: list(s.IgnoreCheckIDs),
      OnlyPassing: s.OnlyPassing,
      Near: interpolate(s.Near, v),
      Tags: list(s.Tags, q.Template.RemoveEmptyTags),
      NodeMeta: map(s.NodeMeta),
      ServiceMeta: map(s.ServiceMeta),
    },
    // DNS.TTL was parsed as a duration at creation, so it holds no variables.
    DNS: { ...q.DNS },
  };
}
