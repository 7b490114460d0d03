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
  let problem: string | undefined;
  mapService(q.Service, (field, value) => {
    if (problem !== undefined) return value;
    for (const m of value.matchAll(EXPR)) {
      const expr = (m[1] as string).trim();
      if (!VARIABLES.has(expr) && !MATCH.test(expr)) {
        problem = `${field}: unknown variable or function "\${${m[1] as string}}" (known: name.full, name.prefix, name.suffix, match(N), agent.segment)`;
        return value;
      }
    }
    if (value.replace(EXPR, '').includes('${')) problem = `${field}: "\${" is not closed by "}"`;
    return value;
  });
  return problem;
}

/**
 * The service fields a template renders (every string but OnlyPassing and NearestN), each passed
 * through `fn` with its name; one list for both the check at creation and the render.
 */
function mapService(s: PreparedQueryRecord['Service'], fn: (field: string, value: string) => string): PreparedQueryRecord['Service'] {
  const list = (field: string, xs: string[] | null): string[] | null => (xs === null ? null : xs.map((x, i) => fn(`${field}[${i}]`, x)));
  const map = (field: string, m: Record<string, string> | null): Record<string, string> | null =>
    m === null ? null : Object.fromEntries(Object.entries(m).map(([k, x]) => [k, fn(`${field}.${k}`, x)]));
  return {
    Service: fn('Service.Service', s.Service),
    Failover: { NearestN: s.Failover.NearestN, Datacenters: list('Service.Failover.Datacenters', s.Failover.Datacenters) },
    IgnoreCheckIDs: list('Service.IgnoreCheckIDs', s.IgnoreCheckIDs),
    OnlyPassing: s.OnlyPassing,
    Near: fn('Service.Near', s.Near),
    Tags: list('Service.Tags', s.Tags),
    NodeMeta: map('Service.NodeMeta', s.NodeMeta),
    ServiceMeta: map('Service.ServiceMeta', s.ServiceMeta),
  };
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
  const service = mapService(q.Service, (_field, value) => interpolate(value, v));
  if (q.Template.RemoveEmptyTags && service.Tags !== null) service.Tags = service.Tags.filter((t) => t !== '');
  return {
    ...q,
    Service: service,
    // DNS.TTL was parsed as a duration at creation, so it holds no variables.
    DNS: { ...q.DNS },
  };
}
