// consul-template's template functions: data lookups that record dependencies, and the helper library.
// One table of ~100 functions, kept whole (over 600 lines) so it reads like consul-template's
// funcs.go: a user looking for a function's behaviour finds it in one place, in the same order.
import { createHash, createHmac } from 'node:crypto';
import type { CallContext, FuncSpec, MethodSpec, ParamSpec } from './callable.js';
import { ANY, BOOL, INT, mapParam, sliceParam, STRING } from './callable.js';
import type { CatalogNode, CatalogNodeInfo, CatalogService, HealthCheck, HealthService, KeyPair } from './data.js';
import { sprintf } from './fmt.js';
import { compileGoRegexp, goMatch, goReplaceAll } from '../core/goregexp.js';
import { formatGoTime, RFC3339 } from './gotime.js';
import { JsonError, marshal, unmarshal } from './json.js';
import { marshalYaml, YamlError } from './yaml.js';
import { mergeMaps } from './merge-map.js';
import { marshalToml, TomlError } from './toml.js';
import { unmarshalYaml, YamlParseError } from './yaml-parse.js';
import type { Dependency } from './query.js';
import {
  keyDependencyId, nodeDependencyId, nodesDependencyId, parseKeyQuery, parseNodeQuery, parseNodesQuery, parsePrefixQuery,
  parseServiceQuery, parseServicesQuery, prefixDependencyId, serviceDependencyId, servicesDependencyId,
} from './query.js';
import { goQuote, parseGoBool, parseGoFloat, parseGoInt, parseGoUint } from './strconv.js';
import type { MapKey, Numeric, StructType, Value } from './values.js';
import {
  GoChan, GoFloat, GoInt, GoMap, GoStruct, goInt, goMap, intOf, isSlice, listItems, numericOf, sliceTypeName, stringMap, stringSlice,
  typedSlice, typeName,
} from './values.js';

// ---- Go shapes of consul-template's records --------------------------------------------------------

const HEALTH_SERVICE: StructType = {
  name: 'dependency.HealthService', pointer: true,
  fields: ['Node', 'NodeID', 'NodeAddress', 'NodeTaggedAddresses', 'NodeMeta', 'ServiceMeta', 'Address', 'ServiceTaggedAddresses', 'ID', 'Name', 'Tags', 'Checks', 'Status', 'Port', 'Weights'],
};
const HEALTH_CHECK: StructType = {
  name: 'api.HealthCheck', pointer: true,
  fields: ['Node', 'CheckID', 'Name', 'Status', 'Notes', 'Output', 'ServiceID', 'ServiceName', 'ServiceTags', 'Type', 'CreateIndex', 'ModifyIndex'],
};
const AGENT_WEIGHTS: StructType = { name: 'api.AgentWeights', pointer: false, fields: ['Passing', 'Warning'] };
const SERVICE_ADDRESS: StructType = { name: 'api.ServiceAddress', pointer: false, fields: ['Address', 'Port'] };
const CATALOG_SNIPPET: StructType = { name: 'dependency.CatalogSnippet', pointer: true, fields: ['Name', 'Tags'] };
const KEY_PAIR: StructType = {
  name: 'dependency.KeyPair', pointer: true,
  fields: ['Path', 'Key', 'Value', 'CreateIndex', 'ModifyIndex', 'LockIndex', 'Flags', 'Session'],
};
const NODE: StructType = { name: 'dependency.Node', pointer: true, fields: ['ID', 'Node', 'Address', 'Datacenter', 'TaggedAddresses', 'Meta'] };
const CATALOG_NODE: StructType = { name: 'dependency.CatalogNode', pointer: true, fields: ['Node', 'Services'] };
const CATALOG_NODE_SERVICE: StructType = {
  name: 'dependency.CatalogNodeService', pointer: true,
  fields: ['ID', 'Service', 'Tags', 'Meta', 'Port', 'Address', 'EnableTagOverride'],
};

const HEALTH_SERVICES = '[]*dependency.HealthService';
const KEY_PAIRS = '[]*dependency.KeyPair';
const SERVICE_TAGS = 'dependency.ServiceTags';

/** Consul's indexes and KV flags are uint64 fields. */
const uint64 = (n: number | bigint): GoInt => new GoInt('uint64', BigInt(n));

function checkValue(c: HealthCheck): GoStruct {
  return new GoStruct(HEALTH_CHECK, {
    Node: c.Node, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: c.Notes, Output: c.Output,
    ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: stringSlice(c.ServiceTags), Type: c.Type,
    CreateIndex: uint64(c.CreateIndex), ModifyIndex: uint64(c.ModifyIndex),
  });
}

export function healthServiceValue(s: HealthService): GoStruct {
  const tagged = s.ServiceTaggedAddresses;
  return new GoStruct(HEALTH_SERVICE, {
    Node: s.Node,
    NodeID: s.NodeID,
    NodeAddress: s.NodeAddress,
    NodeTaggedAddresses: stringMap(s.NodeTaggedAddresses),
    NodeMeta: stringMap(s.NodeMeta),
    ServiceMeta: stringMap(s.ServiceMeta),
    Address: s.Address,
    ServiceTaggedAddresses: goMap(
      'map[string]api.ServiceAddress', new GoStruct(SERVICE_ADDRESS, { Address: '', Port: 0 }),
      Object.entries(tagged ?? {}).map(([k, a]): [string, Value] => [k, new GoStruct(SERVICE_ADDRESS, { Address: a.Address, Port: a.Port })]),
      tagged === null,
    ),
    ID: s.ID,
    Name: s.Name,
    Tags: stringSlice(s.Tags, SERVICE_TAGS),
    Checks: typedSlice('api.HealthChecks', s.Checks.map(checkValue)),
    Status: s.Status,
    Port: s.Port,
    Weights: new GoStruct(AGENT_WEIGHTS, { Passing: s.Weights.Passing, Warning: s.Weights.Warning }),
  });
}

function catalogServiceValue(s: CatalogService): GoStruct {
  return new GoStruct(CATALOG_SNIPPET, { Name: s.Name, Tags: stringSlice(s.Tags, SERVICE_TAGS) });
}

function keyPairValue(p: KeyPair): GoStruct {
  return new GoStruct(KEY_PAIR, {
    Path: p.Path, Key: p.Key, Value: p.Value, CreateIndex: uint64(p.CreateIndex), ModifyIndex: uint64(p.ModifyIndex),
    LockIndex: uint64(p.LockIndex), Flags: uint64(p.Flags), Session: p.Session,
  });
}

function nodeValue(n: CatalogNodeInfo): GoStruct {
  return new GoStruct(NODE, {
    ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
    TaggedAddresses: stringMap(n.TaggedAddresses), Meta: stringMap(n.Meta),
  });
}

function catalogNodeValue(n: CatalogNode): GoStruct {
  return new GoStruct(CATALOG_NODE, {
    Node: nodeValue(n.Node),
    Services: typedSlice('[]*dependency.CatalogNodeService', n.Services.map((s) => new GoStruct(CATALOG_NODE_SERVICE, {
      ID: s.ID, Service: s.Service, Tags: stringSlice(s.Tags, SERVICE_TAGS), Meta: stringMap(s.Meta), Port: s.Port,
      Address: s.Address, EnableTagOverride: s.EnableTagOverride,
    }))),
  });
}

// ---- helpers ---------------------------------------------------------------------------------------

const str = (v: Value): string => v as string;

/** errors.Wrap(err, label) of a strconv failure, e.g. `parseInt: strconv.ParseInt: parsing "x": invalid syntax`. */
function strconvError(label: string, fn: string, s: string, reason: string): Error {
  return new Error(`${label}: strconv.${fn}: parsing ${goQuote(s)}: ${reason}`);
}

const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** strings.TrimSpace (unicode.IsSpace; unlike String.prototype.trim it keeps U+FEFF). */
export function goTrimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && GO_SPACE.test(s[a] as string)) a++;
  while (b > a && GO_SPACE.test(s[b - 1] as string)) b--;
  return s.slice(a, b);
}

/** strings.ToUpper/ToLower use simple case mapping: one rune in, one rune out (ß stays ß). */
function mapCase(s: string, upper: boolean): string {
  let out = '';
  for (const ch of s) {
    const m = upper ? ch.toUpperCase() : ch.toLowerCase();
    const runes = [...m];
    out += runes.length === 1 ? m : upper ? ch : (runes[0] as string);
  }
  return out;
}

// Word-internal punctuation of Unicode word segmentation (MidLetter, MidNumLet, Single_Quote).
const MID = new Set([':', '\u00b7', '\u0387', '\u05f4', '\u2027', '\ufe13', '\ufe55', '\uff1a', '.', '\u2018', '\u2019', '\u2024', '\ufe52', '\uff07', '\uff0e', "'"]);

/**
 * cases.Title(language.Und, cases.NoLower) as consul-template uses it: the first cased letter of each word is
 * title-cased, the rest is left alone. Letters, digits, marks, '_' and single mid-word punctuation (. ' :) do
 * not end a word; digits do not start one either, so "3rd" becomes "3Rd" just as in Go.
 */
function toTitle(s: string): string {
  let out = '';
  let midWord = false;
  let prevMid = false;
  for (const ch of s) {
    const cased = ch.toUpperCase() !== ch.toLowerCase() || /\p{Lt}/u.test(ch);
    const mid = MID.has(ch);
    if (prevMid && mid) midWord = false;
    if (cased) {
      if (!midWord) {
        const up = [...ch.toUpperCase()];
        out += up.length === 1 ? (up[0] as string) : (up[0] as string) + up.slice(1).join('').toLowerCase();
        midWord = true;
      } else out += ch;
    } else {
      out += ch;
      const wordChar = /[\p{L}\p{N}\p{M}\p{Pc}\p{Cf}]/u.test(ch) || mid;
      if (!wordChar) midWord = false;
    }
    prevMid = mid;
  }
  return out;
}

/** strings.Split: an empty separator splits into runes. */
function goSplit(s: string, sep: string): string[] {
  return sep === '' ? [...s] : s.split(sep);
}

/** base64.StdEncoding/URLEncoding.DecodeString: padding required, \r and \n ignored, else a CorruptInputError. */
function base64Decode(s: string, url: boolean, label: string): string {
  const alphabet = url ? /[A-Za-z0-9\-_]/ : /[A-Za-z0-9+/]/;
  let clean = '';
  let quantum = 0;
  let quantumStart = 0;
  let padded = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\r' || c === '\n') continue;
    if (padded && c !== '=') throw new Error(`${label}: illegal base64 data at input byte ${i}`);
    if (c === '=') {
      if (quantum < 2) throw new Error(`${label}: illegal base64 data at input byte ${i}`);
      padded = true;
      clean += c;
      quantum++;
      if (quantum > 4) throw new Error(`${label}: illegal base64 data at input byte ${i}`);
      continue;
    }
    if (!alphabet.test(c)) throw new Error(`${label}: illegal base64 data at input byte ${i}`);
    if (quantum === 0) quantumStart = i;
    clean += c;
    quantum = (quantum + 1) % 4;
  }
  if (padded ? quantum !== 4 : quantum !== 0) throw new Error(`${label}: illegal base64 data at input byte ${quantumStart}`);
  return Buffer.from(clean, url ? 'base64url' : 'base64').toString('utf8');
}

/** consul-template's `in`: element equality by kind for slices, substring for strings. */
function goIn(l: Value, v: Value): boolean {
  if (isSlice(l)) {
    for (const e of l) {
      // Signed integers match by value whatever their size (reflect's Int()); unsigned ones never match.
      const ei = intOf(e);
      const vi = intOf(v);
      if (ei && vi && ei.type !== 'uint64' && vi.type !== 'uint64' && ei.value === vi.value) return true;
      if (e instanceof GoFloat && v instanceof GoFloat && e.value === v.value) return true;
      if (typeof e === 'string') {
        if (v === undefined) throw new Error('reflect: call of reflect.Value.Type on zero Value');
        if (typeof v === 'string' && e === v) return true;
      }
    }
    return false;
  }
  if (typeof l === 'string') {
    if (v === undefined) throw new Error('reflect: call of reflect.Value.Type on zero Value');
    return typeof v === 'string' && l.includes(v);
  }
  return false;
}

function containsSome(retTrue: boolean, invert: boolean): FuncSpec['call'] {
  return (_c, [v, l]) => {
    for (const x of listItems(v) ?? []) if (goIn(l, x) !== invert) return !retTrue;
    return retTrue;
  };
}

/** %q of the reflect.Value consul-template's math helpers print in "unknown type" errors. */
function mathOperand(v: Value): string {
  return v === undefined ? '<invalid reflect.Value>' : sprintf('%q', [v]);
}

/** The operand of a math helper as Go's reflect sees it, or the "unknown type" error consul-template returns. */
function mathArg(name: string, v: Value, intOnly: boolean): Numeric {
  const n = numericOf(v);
  if (!n || (intOnly && n.kind === 'float')) throw new Error(`${name}: unknown type for ${mathOperand(v)} (${typeName(v)})`);
  return n;
}

const asFloat = (n: Numeric): number => (n.kind === 'float' ? n.value : Number(n.value));
/** int64(x) of Go: an unsigned value past 2^63 wraps to a negative one. */
const asInt64 = (n: Numeric & { kind: 'int' | 'uint' }): bigint => BigInt.asIntN(64, n.value);

type IntOp = (a: bigint, b: bigint) => bigint;

/**
 * consul-template's math helpers take (b, a) and compute `a op b`, so the piped (last) argument is the left
 * operand: {{ 10 | subtract 2 }} is 8. Two unsigned operands give a uint64, other integer pairs an int64 (both
 * wrap around on overflow, as Go's do), anything with a float a float64.
 */
function arithmetic(name: string, intOp: IntOp, floatOp: ((a: number, b: number) => number) | undefined): FuncSpec {
  return {
    params: [ANY, ANY],
    call: (_c, [b, a]) => {
      const an = mathArg(name, a, floatOp === undefined);
      const bn = mathArg(name, b, floatOp === undefined);
      if (an.kind === 'float' || bn.kind === 'float') return new GoFloat((floatOp as (x: number, y: number) => number)(asFloat(an), asFloat(bn)));
      const unsigned = an.kind === 'uint' && bn.kind === 'uint';
      const x = unsigned ? an.value : asInt64(an);
      const y = unsigned ? bn.value : asInt64(bn);
      if (y === 0n && (name === 'divide' || name === 'modulo')) throw new Error('runtime error: integer divide by zero');
      return goInt(unsigned ? 'uint64' : 'int64', intOp(x, y));
    },
  };
}

/** The value minimum/maximum return for an operand: Go's av.Int(), av.Uint() or av.Float(). */
function extremumResult(n: Numeric): Value {
  if (n.kind === 'float') return new GoFloat(n.value);
  return goInt(n.kind === 'uint' ? 'uint64' : 'int64', n.value);
}

/** minimum/maximum: compared as floats if either is one, unsigned if both are, else as int64; returns a or b. */
function extremum(name: string, pickA: (a: number | bigint, b: number | bigint) => boolean): FuncSpec {
  return {
    params: [ANY, ANY],
    call: (_c, [b, a]) => {
      const an = mathArg(name, a, false);
      const bn = mathArg(name, b, false);
      let picked: boolean;
      if (an.kind === 'float' || bn.kind === 'float') picked = pickA(asFloat(an), asFloat(bn));
      else if (an.kind === 'uint' && bn.kind === 'uint') picked = pickA(an.value, bn.value);
      else picked = pickA(asInt64(an), asInt64(bn));
      return extremumResult(picked ? an : bn);
    },
  };
}

function explodeInto(m: Map<MapKey, Value>, k: string, v: Value, p: string): void {
  if (k.includes('/')) {
    const parts = k.split('/');
    const top = parts[0] as string;
    const rest = parts.slice(1).join('/');
    if (!m.has(top)) m.set(top, goMap('map[string]interface {}', undefined, []));
    const nest = m.get(top);
    if (!(nest instanceof GoMap)) throw new Error(`not a map: ${goQuote(p)}: ${goQuote(top)} already has value ${sprintf('%q', [nest])}`);
    explodeInto(nest.entries as Map<MapKey, Value>, rest, v, k);
    return;
  }
  if (k !== '') m.set(k, v);
}

// ---- data functions --------------------------------------------------------------------------------

function record(ctx: CallContext, dep: Dependency, value: unknown): boolean {
  ctx.use(dep);
  if (value === undefined) {
    ctx.miss(dep);
    return false;
  }
  return true;
}

function serviceFn(connect: boolean): FuncSpec {
  return {
    params: [], variadic: STRING,
    call: (ctx, args) => {
      if (args.length === 0 || args[0] === '') return typedSlice(HEALTH_SERVICES, []);
      const query = parseServiceQuery(args.join('|'), connect);
      const dep: Dependency = { type: connect ? 'health.connect' : 'health.service', id: serviceDependencyId(query), query };
      const found = ctx.data.service(query);
      if (!record(ctx, dep, found)) return typedSlice(HEALTH_SERVICES, []);
      return ctx.memo(dep.id, () => typedSlice(HEALTH_SERVICES, (found as readonly HealthService[]).map(healthServiceValue)));
    },
  };
}

function listFn(kind: 'ls' | 'tree', safe: boolean): FuncSpec {
  return {
    params: [STRING],
    call: (ctx, [s]) => {
      if (str(s) === '') return typedSlice(KEY_PAIRS, []);
      const query = parsePrefixQuery(str(s));
      const dep: Dependency = { type: 'kv.list', id: prefixDependencyId(query), query };
      const found = kind === 'ls' ? ctx.data.ls(query) : ctx.data.tree(query);
      if (!record(ctx, dep, found)) return typedSlice(KEY_PAIRS, []);
      const kept = (found as readonly KeyPair[]).filter((p) => (kind === 'ls'
        ? p.Key !== '' && !p.Key.includes('/')
        : (p.Key.split('/').pop() as string) !== ''));
      // safeLs/safeTree refuse to render from an empty prefix: they keep the dependency missing.
      if (kept.length === 0 && safe) ctx.miss(dep);
      return ctx.memo(`${dep.id}#${kind}`, () => typedSlice(KEY_PAIRS, kept.map(keyPairValue)));
    },
  };
}

function keyQueryDep(s: string, block: boolean): { query: ReturnType<typeof parseKeyQuery>; dep: Dependency } {
  const query = parseKeyQuery(s);
  return { query, dep: { type: block ? 'kv.block' : 'kv.get', id: keyDependencyId(query, block), query } };
}

function envLookup(ctx: CallContext, name: string): string | undefined {
  return ctx.env.env?.[name];
}

const byTagAccepts = new Set([HEALTH_SERVICES, '[]*dependency.CatalogSnippet']);

// ---- the table -------------------------------------------------------------------------------------

const S_LIST: ParamSpec = sliceParam('[]string', SERVICE_TAGS);
const IFACE_LIST: ParamSpec = sliceParam('[]interface {}');
const PAIRS: ParamSpec = sliceParam(KEY_PAIRS);
const SERVICES: ParamSpec = sliceParam(HEALTH_SERVICES);
const STRING_ANY_MAP: ParamSpec = mapParam('map[string]interface {}');

const fn = (params: readonly ParamSpec[], call: FuncSpec['call']): FuncSpec => ({ params, call });

export const FUNCTIONS: ReadonlyMap<string, FuncSpec> = new Map<string, FuncSpec>([
  // Data sources.
  ['service', serviceFn(false)],
  ['connect', serviceFn(true)],
  ['services', {
    params: [], variadic: STRING,
    call: (ctx, args) => {
      const query = parseServicesQuery(args.join(''));
      const dep: Dependency = { type: 'catalog.services', id: servicesDependencyId(query), query };
      const found = ctx.data.services(query);
      if (!record(ctx, dep, found)) return typedSlice('[]*dependency.CatalogSnippet', []);
      return ctx.memo(dep.id, () => typedSlice('[]*dependency.CatalogSnippet', (found as readonly CatalogService[]).map(catalogServiceValue)));
    },
  }],
  ['key', fn([STRING], (ctx, [s]) => {
    if (str(s) === '') return '';
    const { query, dep } = keyQueryDep(str(s), true);
    const v = ctx.data.key(query);
    return record(ctx, dep, v) ? (v as string) : '';
  })],
  ['keyExists', fn([STRING], (ctx, [s]) => {
    if (str(s) === '') return false;
    const { query, dep } = keyQueryDep(str(s), false);
    const v = ctx.data.keyExists(query);
    return record(ctx, dep, v) ? (v as boolean) : false;
  })],
  ['keyOrDefault', fn([STRING, STRING], (ctx, [s, def]) => {
    if (str(s) === '') return def;
    const { query, dep } = keyQueryDep(str(s), false);
    const v = ctx.data.keyOrDefault(query);
    if (!record(ctx, dep, v) || v === null || v === '') return def;
    return v as string;
  })],
  ['ls', listFn('ls', false)],
  ['safeLs', listFn('ls', true)],
  ['tree', listFn('tree', false)],
  ['safeTree', listFn('tree', true)],
  ['node', {
    params: [], variadic: STRING,
    call: (ctx, args) => {
      const query = parseNodeQuery(args.join(''));
      const dep: Dependency = { type: 'catalog.node', id: nodeDependencyId(query), query };
      if (!ctx.data.node) throw new Error('node: this data source does not provide catalog nodes');
      const v = ctx.data.node(query);
      if (!record(ctx, dep, v) || v === null) return undefined;
      return ctx.memo(dep.id, () => catalogNodeValue(v as CatalogNode));
    },
  }],
  ['nodes', {
    params: [], variadic: STRING,
    call: (ctx, args) => {
      const query = parseNodesQuery(args.join(''));
      const dep: Dependency = { type: 'catalog.nodes', id: nodesDependencyId(query), query };
      if (!ctx.data.nodes) throw new Error('nodes: this data source does not provide catalog nodes');
      const v = ctx.data.nodes(query);
      if (!record(ctx, dep, v)) return typedSlice('[]*dependency.Node', []);
      return ctx.memo(dep.id, () => typedSlice('[]*dependency.Node', (v as readonly CatalogNodeInfo[]).map(nodeValue)));
    },
  }],
  ['datacenters', {
    params: [], variadic: BOOL,
    call: (ctx) => {
      const dep: Dependency = { type: 'catalog.datacenters', id: 'catalog.datacenters' };
      if (!ctx.data.datacenters) throw new Error('datacenters: this data source does not provide datacenters');
      const v = ctx.data.datacenters();
      if (!record(ctx, dep, v)) return typedSlice('[]string', []);
      return stringSlice(v as readonly string[]);
    },
  }],
  ['file', fn([STRING], (ctx, [s]) => {
    if (str(s) === '') return '';
    const path = str(s).trim();
    const dep: Dependency = { type: 'file', id: `file(${path})`, path };
    if (!ctx.env.readFile) throw new Error('file: no file reader was provided to the renderer');
    const v = ctx.env.readFile(path);
    return record(ctx, dep, v) ? (v as string) : '';
  })],
  ['env', fn([STRING], (ctx, [s]) => envLookup(ctx, str(s)) ?? '')],
  ['mustEnv', fn([STRING], (ctx, [s]) => {
    const v = envLookup(ctx, str(s)) ?? '';
    if (v === '') throw new Error(`required environment variable ${str(s)} is empty`);
    return v;
  })],
  ['envOrDefault', fn([STRING, STRING], (ctx, [s, def]) => envLookup(ctx, str(s)) ?? def)],
  ['executeTemplate', {
    params: [STRING], variadic: ANY,
    call: (ctx, [name, ...data]) => {
      if (data.length > 1) throw new Error(`executeTemplate: wrong number of arguments, expected 1 or 2, but got ${data.length + 1}`);
      return ctx.executeTemplate(str(name), data[0]);
    },
  }],

  // Grouping and membership.
  ['byKey', fn([PAIRS], (_c, [pairs]) => {
    const inner = 'map[string]*dependency.KeyPair';
    const m = new Map<MapKey, Value>();
    for (const p of listItems(pairs) ?? []) {
      const pair = p as GoStruct;
      const parts = str(pair.get('Key')).split('/');
      const rest = parts.slice(1).join('/');
      if (rest === '') continue;
      const top = parts[0] as string;
      if (!m.has(top)) m.set(top, goMap(inner, undefined, []));
      ((m.get(top) as GoMap).entries as Map<MapKey, Value>).set(rest, new GoStruct(pair.type, { ...pair.fields, Key: rest }));
    }
    return goMap('map[string]map[string]*dependency.KeyPair', goMap(inner, undefined, [], true), m);
  })],
  ['byTag', fn([ANY], (_c, [v]) => {
    const m = new Map<MapKey, Value>();
    if (v !== undefined) {
      if (!isSlice(v) || !byTagAccepts.has(sliceTypeName(v))) throw new Error(`byTag: wrong argument type ${typeName(v)}`);
      for (const s of v) {
        for (const t of listItems((s as GoStruct).get('Tags')) ?? []) {
          m.set(t as string, [...((m.get(t as string) as Value[] | undefined) ?? []), s]);
        }
      }
    }
    const entries = [...m].map(([k, list]): [MapKey, Value] => [k, typedSlice('[]interface {}', list as Value[])]);
    return goMap('map[string][]interface {}', typedSlice('[]interface {}', [], true), entries);
  })],
  ['byPort', fn([ANY], (_c, [v]) => {
    const m = new Map<MapKey, Value[]>();
    if (v !== undefined) {
      if (!isSlice(v) || sliceTypeName(v) !== HEALTH_SERVICES) throw new Error(`byPort: wrong argument type ${typeName(v)}`);
      for (const s of v) {
        const port = (s as GoStruct).get('Port') as number;
        m.set(port, [...(m.get(port) ?? []), s]);
      }
    }
    return goMap('map[int][]interface {}', typedSlice('[]interface {}', [], true), [...m].map(([k, l]): [MapKey, Value] => [k, typedSlice('[]interface {}', l)]));
  })],
  ['byMeta', fn([STRING, SERVICES], (_c, [meta, services]) => {
    const metas = str(meta).split(',');
    const groups = new Map<MapKey, Value[]>();
    for (const s of listItems(services) ?? []) {
      const sm = (s as GoStruct).get('ServiceMeta') as GoMap;
      const parts = metas.map((key) => {
        const realKey = key.endsWith('|int') ? key.slice(0, -4) : key;
        let value = (sm.entries.get(realKey) as string | undefined) ?? '';
        if (value === '') value = key.endsWith('|int') ? '0' : `_no_${realKey}_`;
        if (key.endsWith('|int')) {
          if (!/^[+-]?[0-9]+$/.test(value)) throw new Error(`cannot parse ${value} as number : strconv.Atoi: parsing ${goQuote(value)}: invalid syntax`);
          const n = Number(value);
          value = n < 0 ? `-${String(-n).padStart(4, '0')}` : String(n).padStart(5, '0');
        }
        return value.replace(/[^a-zA-Z0-9_-]/g, '_');
      });
      const key = parts.join('_');
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    return goMap('map[string][]*dependency.HealthService', typedSlice(HEALTH_SERVICES, [], true),
      [...groups].map(([k, l]): [MapKey, Value] => [k, typedSlice(HEALTH_SERVICES, l)]));
  })],
  ['contains', fn([ANY, ANY], (_c, [v, l]) => goIn(l, v))],
  ['in', fn([ANY, ANY], (_c, [l, v]) => goIn(l, v))],
  ['containsAll', fn([IFACE_LIST, ANY], containsSome(true, true))],
  ['containsAny', fn([IFACE_LIST, ANY], containsSome(false, false))],
  ['containsNone', fn([IFACE_LIST, ANY], containsSome(true, false))],
  ['containsNotAll', fn([IFACE_LIST, ANY], containsSome(false, true))],
  ['explode', fn([PAIRS], (_c, [pairs]) => {
    const m = new Map<MapKey, Value>();
    try {
      for (const p of listItems(pairs) ?? []) {
        const pair = p as GoStruct;
        explodeInto(m, str(pair.get('Key')), pair.get('Value'), str(pair.get('Key')));
      }
    } catch (err) {
      throw new Error(`explode: ${(err as Error).message}`);
    }
    return goMap('map[string]interface {}', undefined, m);
  })],
  ['explodeMap', fn([STRING_ANY_MAP], (_c, [v]) => {
    const m = new Map<MapKey, Value>();
    const input = v as GoMap | undefined;
    try {
      for (const k of input?.sortedKeys() ?? []) explodeInto(m, String(k), input?.entries.get(k), String(k));
    } catch (err) {
      throw new Error(`explodeMap: ${(err as Error).message}`);
    }
    return goMap('map[string]interface {}', undefined, m);
  })],
  ['loop', {
    params: [], variadic: ANY,
    call: (_c, args) => {
      if (args.length !== 1 && args.length !== 2) throw new Error(`loop: wrong number of arguments, expected 1 or 2, but got ${args.length}`);
      const to64 = (v: Value): bigint => {
        const n = intOf(v);
        if (n) return BigInt.asIntN(64, n.value);
        if (typeof v === 'string') {
          if (v === '') return 0n;
          const r = parseGoInt(v);
          if (!r.ok) throw strconvError('parseInt', 'ParseInt', v, r.reason);
          return r.value;
        }
        throw new Error(`loop: bad argument type: ${typeName(v)}`);
      };
      const [start, stop] = args.length === 1 ? [0n, to64(args[0])] : [to64(args[0]), to64(args[1])];
      return new GoChan('<-chan int64', function* send() {
        for (let i = start; i < stop; i++) yield new GoInt('int64', i);
      });
    },
  }],

  // Strings.
  ['indent', fn([INT, STRING], (_c, [n, s]) => {
    const spaces = Number(intOf(n)?.value ?? 0n);
    if (spaces < 0) throw new Error('indent value must be a positive integer');
    const prefix = ' '.repeat(spaces);
    let out = '';
    let atLineStart = true;
    for (const c of str(s)) {
      if (atLineStart && c !== '\n') out += prefix;
      out += c;
      atLineStart = c === '\n';
    }
    return out;
  })],
  ['join', fn([STRING, S_LIST], (_c, [sep, list]) => (listItems(list) ?? []).join(str(sep)))],
  ['split', fn([STRING, STRING], (_c, [sep, s]) => {
    const t = goTrimSpace(str(s));
    return stringSlice(t === '' ? [] : goSplit(t, str(sep)));
  })],
  ['splitToMap', fn([STRING, STRING, STRING], (_c, [sep1, sep2, s]) => {
    const t = goTrimSpace(str(s));
    const entries: [string, string][] = [];
    if (t !== '') {
      for (const item of goSplit(t, str(sep1))) {
        const at = item.indexOf(str(sep2));
        if (at < 0) continue;
        entries.push([item.slice(0, at), item.slice(at + str(sep2).length)]);
      }
    }
    return goMap('map[string]string', '', entries);
  })],
  ['replaceAll', fn([STRING, STRING, STRING], (_c, [from, to, s]) => (str(from) === ''
    ? [...str(s)].map((ch) => str(to) + ch).join('') + str(to)
    : str(s).split(str(from)).join(str(to))))],
  ['regexReplaceAll', fn([STRING, STRING, STRING], (_c, [re, repl, s]) => goReplaceAll(compileGoRegexp(str(re)), str(s), str(repl)))],
  ['regexMatch', fn([STRING, STRING], (_c, [re, s]) => goMatch(compileGoRegexp(str(re)), str(s)))],
  ['trim', fn([STRING, STRING], (_c, [cutset, s]) => {
    const cut = new Set([...str(cutset)]);
    const runes = [...str(s)];
    let a = 0;
    let b = runes.length;
    while (a < b && cut.has(runes[a] as string)) a++;
    while (b > a && cut.has(runes[b - 1] as string)) b--;
    return runes.slice(a, b).join('');
  })],
  ['trimPrefix', fn([STRING, STRING], (_c, [p, s]) => (str(p) !== '' && str(s).startsWith(str(p)) ? str(s).slice(str(p).length) : str(s)))],
  ['trimSuffix', fn([STRING, STRING], (_c, [x, s]) => (str(x) !== '' && str(s).endsWith(str(x)) ? str(s).slice(0, -str(x).length) : str(s)))],
  ['trimSpace', fn([STRING], (_c, [s]) => goTrimSpace(str(s)))],
  ['toLower', fn([STRING], (_c, [s]) => mapCase(str(s), false))],
  ['toUpper', fn([STRING], (_c, [s]) => mapCase(str(s), true))],
  ['toTitle', fn([STRING], (_c, [s]) => toTitle(str(s)))],

  // Parsing and encoding.
  ['parseBool', fn([STRING], (_c, [s]) => {
    if (str(s) === '') return false;
    const b = parseGoBool(str(s));
    if (b === undefined) throw strconvError('parseBool', 'ParseBool', str(s), 'invalid syntax');
    return b;
  })],
  ['parseFloat', fn([STRING], (_c, [s]) => {
    if (str(s) === '') return new GoFloat(0);
    const r = parseGoFloat(str(s));
    if (!r.ok) throw strconvError('parseFloat', 'ParseFloat', str(s), r.reason);
    return new GoFloat(r.value);
  })],
  ['parseInt', fn([STRING], (_c, [s]) => {
    if (str(s) === '') return new GoInt('int64', 0n);
    const r = parseGoInt(str(s));
    if (!r.ok) throw strconvError('parseInt', 'ParseInt', str(s), r.reason);
    return new GoInt('int64', r.value);
  })],
  ['parseUint', fn([STRING], (_c, [s]) => {
    if (str(s) === '') return new GoInt('uint64', 0n);
    const r = parseGoUint(str(s));
    if (!r.ok) throw strconvError('parseUint', 'ParseUint', str(s), r.reason);
    return new GoInt('uint64', r.value);
  })],
  ['parseJSON', fn([STRING], (_c, [s]) => (str(s) === '' ? goMap('map[string]interface {}', undefined, []) : unmarshal(str(s))))],
  ['toJSON', fn([ANY], (_c, [v]) => jsonOf('toJSON', v, true, ''))],
  ['toJSONPretty', fn([ANY], (_c, [v]) => jsonOf('toJSONPretty', v, true, '  '))],
  ['toYAML', fn([ANY], (_c, [v]) => encoded('toYAML', YamlError, () => goTrimSpace(marshalYaml(v))))],
  ['toTOML', fn([ANY], (_c, [v]) => encoded('toTOML', TomlError, () => goTrimSpace(marshalToml(v))))],
  ['mergeMap', fn([STRING_ANY_MAP, STRING_ANY_MAP], (_c, [dst, src]) => mergeMaps(dst as GoMap, src as GoMap, false))],
  ['mergeMapWithOverride', fn([STRING_ANY_MAP, STRING_ANY_MAP], (_c, [dst, src]) => mergeMaps(dst as GoMap, src as GoMap, true))],
  ['parseYAML', fn([STRING], (_c, [s]) => {
    try {
      return unmarshalYaml(str(s));
    } catch (err) {
      // consul-template returns yaml.v2's error as it is.
      if (err instanceof YamlParseError) throw new Error(err.message);
      throw err;
    }
  })],
  ['scratch', fn([], (ctx) => ctx.memo('scratch', newScratch))],
  ['toUnescapedJSON', fn([ANY], (_c, [v]) => jsonOf('toUnescapedJSON', v, false, ''))],
  ['toUnescapedJSONPretty', fn([ANY], (_c, [v]) => jsonOf('toUnescapedJSONPretty', v, false, '  '))],
  ['base64Encode', fn([STRING], (_c, [s]) => Buffer.from(str(s), 'utf8').toString('base64'))],
  ['base64Decode', fn([STRING], (_c, [s]) => base64Decode(str(s), false, 'base64Decode'))],
  ['base64URLEncode', fn([STRING], (_c, [s]) => Buffer.from(str(s), 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_'))],
  ['base64URLDecode', fn([STRING], (_c, [s]) => base64Decode(str(s), true, 'base64URLDecode'))],
  ['sha256Hex', fn([STRING], (_c, [s]) => createHash('sha256').update(str(s), 'utf8').digest('hex'))],
  ['md5sum', fn([STRING], (_c, [s]) => createHash('md5').update(str(s), 'utf8').digest('hex'))],
  ['hmacSHA256Hex', fn([STRING, STRING], (_c, [msg, key]) => createHmac('sha256', str(key)).update(str(msg), 'utf8').digest('hex'))],
  ['timestamp', {
    params: [], variadic: STRING,
    call: (ctx, args) => {
      if (args.length > 1) throw new Error(`timestamp: wrong number of arguments, expected 0 or 1, but got ${args.length}`);
      const now = ctx.env.now?.() ?? new Date();
      if (args.length === 0) return formatGoTime(now, RFC3339);
      if (args[0] === 'unix') return String(Math.floor(now.getTime() / 1000));
      return formatGoTime(now, str(args[0]));
    },
  }],

  // Arithmetic.
  ['add', arithmetic('add', (a, b) => a + b, (a, b) => a + b)],
  ['subtract', arithmetic('subtract', (a, b) => a - b, (a, b) => a - b)],
  ['multiply', arithmetic('multiply', (a, b) => a * b, (a, b) => a * b)],
  // bigint division truncates toward zero and % takes the dividend's sign, as Go's do.
  ['divide', arithmetic('divide', (a, b) => a / b, (a, b) => a / b)],
  ['modulo', arithmetic('modulo', (a, b) => a % b, undefined)],
  ['minimum', extremum('minimum', (a, b) => a < b)],
  ['maximum', extremum('maximum', (a, b) => a > b)],
]);

/**
 * An encoder's output, its own errors wrapped with the function's name as consul-template wraps them
 * (`toJSON: json: unsupported type: …`); anything else is a bug and goes up as it is.
 */
function encoded(label: string, own: abstract new (...args: never[]) => Error, encode: () => string): string {
  try {
    return encode();
  } catch (err) {
    if (err instanceof own) throw new Error(`${label}: ${err.message}`);
    throw err;
  }
}

function jsonOf(label: string, v: Value, escapeHTML: boolean, indent: string): string {
  return encoded(label, JsonError, () => marshal(v, { escapeHTML, indent }));
}

/**
 * consul-template's scratch pad: one per render (it makes a new one per execution), a map of
 * anything by key, and maps of anything by key inside it. Go maps are references, so a map read
 * with Get sees later MapSets, as it does here.
 */
function scratchValues(self: Value): Map<string, Value> {
  // Held in a field the type does not declare: templates cannot read it, print it or marshal it.
  return ((self as GoStruct).get('values') as GoMap).entries as Map<string, Value>;
}

function scratchMapSet(self: Value, k: string, mk: string, v: Value, overwrite: boolean): string {
  const values = scratchValues(self);
  if (!values.has(k)) values.set(k, goMap('map[string]interface {}', undefined, []));
  const m = values.get(k);
  if (!(m instanceof GoMap) || m.type.name !== 'map[string]interface {}') throw new Error(`${goQuote(k)} is not a map`);
  const entries = m.entries as Map<MapKey, Value>;
  if (overwrite || !entries.has(mk)) entries.set(mk, v);
  return '';
}

const method = (params: readonly ParamSpec[], call: MethodSpec['call']): MethodSpec => ({ params, call });

const SCRATCH: StructType = {
  name: 'template.Scratch', pointer: true, fields: [],
  methods: new Map<string, MethodSpec>([
    ['Key', method([STRING], (_c, self, [k]) => scratchValues(self).has(str(k)))],
    ['Get', method([STRING], (_c, self, [k]) => scratchValues(self).get(str(k)))],
    ['Set', method([STRING, ANY], (_c, self, [k, v]) => {
      scratchValues(self).set(str(k), v);
      return '';
    })],
    ['SetX', method([STRING, ANY], (_c, self, [k, v]) => {
      const values = scratchValues(self);
      if (!values.has(str(k))) values.set(str(k), v);
      return '';
    })],
    ['MapSet', method([STRING, STRING, ANY], (_c, self, [k, mk, v]) => scratchMapSet(self, str(k), str(mk), v, true))],
    ['MapSetX', method([STRING, STRING, ANY], (_c, self, [k, mk, v]) => scratchMapSet(self, str(k), str(mk), v, false))],
    ['MapValues', method([STRING], (_c, self, [k]) => {
      const m = scratchValues(self).get(str(k));
      if (!(m instanceof GoMap) || m.type.name !== 'map[string]interface {}') return typedSlice('[]interface {}', [], true);
      return typedSlice('[]interface {}', m.sortedKeys().map((key) => m.entries.get(key)));
    })],
  ]),
};

function newScratch(): GoStruct {
  return new GoStruct(SCRATCH, { values: goMap('map[string]interface {}', undefined, []) });
}

/** Methods of the slice types consul-template gives templates. */
const SLICE_METHODS: ReadonlyMap<string, ReadonlyMap<string, MethodSpec>> = new Map([
  // Deprecated in consul-template (it logs a warning pointing to `contains`), still in templates.
  [SERVICE_TAGS, new Map([['Contains', method([STRING], (_c, self, [t]) => (self as readonly Value[]).includes(str(t)))]])],
]);

/** A method of a value's type by name, for `.Field.Method args`. */
export function methodOf(receiver: Exclude<Value, undefined>, name: string): MethodSpec | undefined {
  if (receiver instanceof GoStruct) return receiver.type.methods?.get(name);
  if (isSlice(receiver)) return SLICE_METHODS.get(sliceTypeName(receiver))?.get(name);
  return undefined;
}

/** consul-template functions deliberately left out (I/O, Vault/Nomad, sprig). */
export const UNSUPPORTED_FUNCTIONS: ReadonlySet<string> = new Set([
  'caLeaf', 'caRoots', 'exportedServices', 'importedServices', 'nomadService',
  'nomadServices', 'nomadVar', 'nomadVarExists', 'nomadVarList', 'nomadVarListSafe', 'partitions',
  'peerings', 'pkiCert', 'plugin', 'secret', 'secrets', 'sockaddr', 'spew_dump', 'spew_printf',
  'spew_sdump', 'spew_sprintf', 'writeToFile',
]);
