/**
 * consul-template's parseYAML: gopkg.in/yaml.v2's Unmarshal into interface{}. The text is parsed by
 * the `yaml` package (syntax, anchors, block scalars); what the nodes become is yaml.v2's: its YAML
 * 1.1 resolution of plain scalars (yes/on are bools, 0x1F and 017 ints, timestamps stay strings),
 * mappings as map[interface {}]interface {}, merge keys applied as yaml.v2 applies them (in place,
 * so a key before `<<` is overridden by it), the first document only, and its limit on aliases
 * (a "billion laughs" document in the KV store must not take the renderer down; ours is stricter).
 *
 * Template maps hold string and integer keys; a key that yaml.v2 would read as a float, bool or
 * null (`on:` is the classic) is refused with its line rather than silently turned into a string.
 * Syntax errors are worded by the `yaml` package, not libyaml. A line or paragraph separator (U+2028,
 * U+2029) inside a scalar is an ordinary character here; yaml.v2 also breaks the line there and drops
 * the indentation that follows. A quoted scalar whose continuation lines are not indented under its
 * key is refused here, as YAML says; libyaml does not check that indentation.
 */
import { parseAllDocuments, isAlias, isMap, isScalar, isSeq } from 'yaml';
import { yamlDepthOverflow } from '../core/yaml-depth.js';
import type { Document, Node as YamlNode, Pair } from 'yaml';
import type { MapKey, Value } from './values.js';
import { GoFloat, GoInt, GoMap, goInt, goMap, typedSlice } from './values.js';
import { resolvePlain } from './yaml.js';
import type { Resolved } from './yaml.js';

export class YamlParseError extends Error {}

const STD = 'tag:yaml.org,2002:';
const MAP_TYPE = 'map[interface {}]interface {}';

/**
 * Stricter than yaml.v2, whose ratio rule lets a "billion laughs" document expand to about four
 * million nodes first (8 s of a render here): a document with aliases stops at a quarter million.
 */
const MAX_ALIASED_NODES = 250_000;

/** yaml.v2's allowedAliasRatio: generous for small documents, 10% for huge ones. */
function allowedAliasRatio(decodeCount: number): number {
  if (decodeCount <= 400_000) return 0.99;
  if (decodeCount >= 4_000_000) return 0.1;
  return 0.99 - 0.89 * ((decodeCount - 400_000) / 3_600_000);
}

function valueOf(r: Resolved): Value {
  switch (r.tag) {
    case 'str': case 'timestamp': return r.value;
    case 'null': return undefined;
    case 'bool': return r.value;
    case 'int': return r.value > 9223372036854775807n ? new GoInt('uint64', r.value) : goInt('int', r.value);
    case 'float': return new GoFloat(r.value);
  }
}

const shortTag = (tag: string): string => (tag.startsWith(STD) ? `!!${tag.slice(STD.length)}` : tag);

/** resolve(tag, value) for an explicitly tagged scalar. */
function resolveTagged(tag: string, text: string, line: number): Value {
  const short = shortTag(tag);
  switch (short) {
    case '!!str': return text;
    case '!!binary': {
      if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(text)) throw new YamlParseError('yaml: !!binary value contains invalid base64 data');
      return Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
    }
    case '!!null': case '!!bool': case '!!int': case '!!float': case '!!timestamp': {
      const r = resolvePlain(text);
      const want = short.slice(2);
      if (r.tag === want) return valueOf(r);
      // A !!float that reads as an int becomes a float64 (resolve's deferred fix-up).
      if (want === 'float' && r.tag === 'int') return new GoFloat(Number(r.value));
      throw new YamlParseError(`yaml: line ${line}: cannot decode !!${r.tag} \`${text}\` as a ${short}`);
    }
    default:
      // Any other tag (a custom !thing, or "!"): yaml.v2 keeps the text.
      return text;
  }
}

class Decoder {
  readonly #doc: Document.Parsed;
  readonly #lines: number[];
  #decodeCount = 0;
  #aliasCount = 0;
  readonly #aliasing = new Set<YamlNode>();

  constructor(doc: Document.Parsed, text: string) {
    this.#doc = doc;
    this.#lines = [0];
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.#lines.push(i + 1);
  }

  line(node: YamlNode | null | undefined): number {
    const offset = node?.range?.[0] ?? 0;
    let lo = 0;
    let hi = this.#lines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#lines[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }

  decode(node: YamlNode | null | undefined): Value {
    this.#decodeCount++;
    if ((this.#aliasCount > 100 && this.#decodeCount > 1000 && this.#aliasCount / this.#decodeCount > allowedAliasRatio(this.#decodeCount))
      || (this.#aliasCount > 0 && this.#decodeCount > MAX_ALIASED_NODES)) {
      throw new YamlParseError('yaml: document contains excessive aliasing');
    }
    if (node === null || node === undefined) return undefined;
    if (isAlias(node)) {
      const target = node.resolve(this.#doc) as YamlNode | undefined;
      if (target === undefined) throw new YamlParseError(`yaml: line ${this.line(node)}: unknown anchor '${node.source}' referenced`);
      if (this.#aliasing.has(target)) throw new YamlParseError(`yaml: anchor '${node.source}' value contains itself`);
      this.#aliasCount++;
      this.#aliasing.add(target);
      try {
        return this.decode(target);
      } finally {
        this.#aliasing.delete(target);
      }
    }
    if (isScalar(node)) {
      const text = String(node.value ?? '');
      const tag = node.tag;
      if (tag !== undefined && tag !== '!') return resolveTagged(tag, text, this.line(node));
      if (node.type === 'PLAIN' && tag === undefined) return valueOf(resolvePlain(text));
      return text;
    }
    if (isSeq(node)) return typedSlice('[]interface {}', node.items.map((n) => this.decode(n as YamlNode)));
    if (isMap(node)) {
      const out = new Map<MapKey, Value>();
      this.#mapInto(node.items as Pair<YamlNode, YamlNode>[], out);
      return goMap(MAP_TYPE, undefined, out);
    }
    throw new YamlParseError(`yaml: line ${this.line(node)}: unsupported node`);
  }

  #mapInto(pairs: readonly Pair<YamlNode, YamlNode>[], out: Map<MapKey, Value>): void {
    for (const p of pairs) {
      const k = p.key;
      if (isScalar(k) && k.type === 'PLAIN' && k.tag === undefined && k.value === '<<') {
        this.#merge(p.value, out);
        continue;
      }
      const key = this.decode(k);
      const v = this.decode(p.value);
      out.set(this.#key(key, k), v);
    }
  }

  #key(key: Value, node: YamlNode | null): MapKey {
    if (typeof key === 'string' || typeof key === 'number') return key;
    if (key instanceof GoMap || Array.isArray(key)) throw new YamlParseError(`yaml: line ${this.line(node)}: invalid map key: a ${key instanceof GoMap ? 'map' : 'sequence'}`);
    const kind = key === undefined ? 'null' : typeof key === 'boolean' ? `bool ${String(key)}` : key instanceof GoFloat ? 'float64' : 'integer beyond int';
    throw new YamlParseError(`yaml: line ${this.line(node)}: key ${JSON.stringify(String((node as { source?: string } | null)?.source ?? ''))} reads as ${kind}; switchyard's template maps take string and integer keys only (quote the key to keep it a string)`);
  }

  /** yaml.v2's merge: a mapping, an alias of one, or a sequence of them (later ones first, so earlier ones win). */
  #merge(node: YamlNode | null, out: Map<MapKey, Value>): void {
    const want = (): never => {
      throw new YamlParseError('yaml: map merge requires map or sequence of maps as the value');
    };
    const mapping = (n: YamlNode | null): void => {
      let target: YamlNode | null | undefined = n;
      if (target !== null && isAlias(target)) {
        this.#aliasCount++;
        target = target.resolve(this.#doc) as YamlNode | undefined;
      }
      if (target === null || target === undefined || !isMap(target)) want();
      this.#decodeCount++;
      this.#mapInto((target as { items: Pair<YamlNode, YamlNode>[] }).items, out);
    };
    if (node !== null && isSeq(node)) {
      for (let i = node.items.length - 1; i >= 0; i--) mapping(node.items[i] as YamlNode);
    } else mapping(node);
  }
}

/**
 * How deep a document may nest here. The `yaml` package parses recursively: past about 800 flow
 * levels it runs out of stack, and a regular expression compiled that close to the limit has taken
 * the whole process down (V8 reports it as a fatal out-of-memory). The bound below counts block
 * levels twice, so a document of up to 100 levels always parses. yaml.v2 allows 10,000; no
 * configuration comes near 100.
 */
const MAX_NESTING = 200;

/** yaml.Unmarshal(text, &interface{}); consul-template's parseYAML returns an empty map for "". */
export function unmarshalYaml(text: string): Value {
  if (text === '') return goMap('map[string]interface {}', undefined, []);
  // libyaml's reader takes only these characters (a lone surrogate is invalid UTF-8 to Go).
  if (/[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.test(text) || /\p{Cs}/u.test(text)) {
    throw new YamlParseError('yaml: control characters are not allowed');
  }
  const deep = yamlDepthOverflow(text, MAX_NESTING);
  if (deep !== undefined) throw new YamlParseError(`yaml: line ${deep}: the document nests more than ${MAX_NESTING} levels deep (refused: this parser would run out of stack)`);
  // A lone CR and NEL (a YAML 1.1 line break) are content to the `yaml` package; libyaml reads both as
  // a line feed. One character for one, so positions stay.
  const docs = parseAllDocuments(text.replace(/\r(?!\n)|\u0085/g, '\n'), { version: '1.1', schema: 'failsafe', uniqueKeys: false, merge: false, prettyErrors: false });
  const doc = docs[0];
  if (doc === undefined) return undefined;
  const err = doc.errors[0];
  if (err !== undefined) {
    throw new YamlParseError(`yaml: line ${err.linePos?.[0]?.line ?? 1}: ${err.message.split('\n')[0]}`);
  }
  return new Decoder(doc, text).decode(doc.contents as YamlNode | null);
}
