/**
 * github.com/BurntSushi/toml's Encoder (1.5.0, what consul-template builds with) for template values,
 * byte for byte: a table's plain keys first, then its sub-tables and arrays of tables, each group in
 * key order; nested tables' headers and keys indented two spaces a level; strings in double quotes
 * with its escapes; floats always with a decimal point; nil values left out.
 */
import { compareGoStrings, formatFloat } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, isNilSlice, isSlice, typeName } from './values.js';

export class TomlError extends Error {}

const INDENT = '  ';
const MAX_DEPTH = 1500;

type TomlType = 'table' | 'tableArray' | 'other';

/** isNil: a nil interface, map or slice is left out. */
const isNil = (v: Value): boolean => v === undefined || (v instanceof GoMap && v.isNil) || (isSlice(v) && isNilSlice(v));

/** tomlTypeOfGo: what a value becomes (undefined for nil); an array of tables holds tables only and no nil. */
function tomlType(v: Value, depth: number): TomlType | undefined {
  if (isNil(v)) return undefined;
  if (v instanceof GoMap) return 'table';
  if (v instanceof GoStruct) return 'table';
  if (isSlice(v)) {
    if (v.length === 0) return 'other';
    let tables = true;
    for (const e of v) {
      const t = tomlType(e, depth + 1);
      if (t === undefined) throw new TomlError('toml: cannot encode array with nil element');
      if (t !== 'table') tables = false;
    }
    return tables ? 'tableArray' : 'other';
  }
  return 'other';
}

const isTable = (t: TomlType | undefined): boolean => t === 'table' || t === 'tableArray';

/** Key.maybeQuoted: bare when every character is A-Z a-z 0-9 _ -. */
function keyPart(k: string): string {
  if (k === '') return '""';
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : quoted(k);
}

const keyString = (key: readonly string[]): string => key.map(keyPart).join('.');

/** dblQuotedReplacer: quote, backslash and the C0 controls and DEL escaped; everything else as it is. */
function quoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function floatText(f: number): string {
  if (Number.isNaN(f)) return 'nan';
  if (f === Infinity) return 'inf';
  if (f === -Infinity) return '-inf';
  const s = formatFloat(f, 'f', -1);
  return s.includes('.') ? s : `${s}.0`;
}

/** A map's or struct's entries: a map's in key order (bytes), a struct's as declared. */
function entriesOf(v: GoMap | GoStruct): [string, Value][] {
  if (v instanceof GoStruct) return v.type.fields.map((f) => [f, v.get(f)]);
  const keys = [...v.entries.keys()];
  if (keys.some((k) => typeof k !== 'string') || v.type.name.startsWith('map[interface {}]')) {
    throw new TomlError('toml: cannot encode a map with non-string key type');
  }
  return (keys as string[]).sort(compareGoStrings).map((k) => [k, v.entries.get(k)]);
}

class Encoder {
  out = '';

  wf(s: string): void {
    this.out += s;
  }

  newline(): void {
    if (this.out !== '') this.out += '\n';
  }

  encode(key: readonly string[], v: Value, depth: number): void {
    if (depth > MAX_DEPTH) throw new TomlError(`value nested more than ${MAX_DEPTH} levels deep`);
    if (isNil(v)) return;
    if (v instanceof GoChan) throw new TomlError(`toml: unsupported type for key '${keyString(key)}': chan`);
    if (isSlice(v)) {
      if (tomlType(v, depth) === 'tableArray') this.arrayOfTables(key, v, depth);
      else this.keyValue(key, v, false, depth);
      return;
    }
    if (v instanceof GoMap || v instanceof GoStruct) {
      this.table(key, v, depth);
      return;
    }
    this.keyValue(key, v, false, depth);
  }

  keyValue(key: readonly string[], v: Value, inline: boolean, depth: number): void {
    if (key.length === 0) {
      this.element(v, depth);
      return;
    }
    this.wf(`${INDENT.repeat(key.length - 1)}${keyPart(key[key.length - 1] as string)} = `);
    this.element(v, depth);
    if (!inline) this.newline();
  }

  element(v: Value, depth: number): void {
    if (depth > MAX_DEPTH) throw new TomlError(`value nested more than ${MAX_DEPTH} levels deep`);
    if (typeof v === 'string') this.wf(quoted(v));
    else if (typeof v === 'boolean') this.wf(v ? 'true' : 'false');
    else if (typeof v === 'number') this.wf(String(v));
    else if (v instanceof GoInt) this.wf(v.value.toString());
    else if (v instanceof GoFloat) this.wf(floatText(v.value));
    else if (isSlice(v)) {
      this.wf('[');
      v.forEach((e, i) => {
        if (isNil(e)) throw new TomlError('toml: cannot encode array with nil element');
        this.element(e, depth + 1);
        if (i !== v.length - 1) this.wf(', ');
      });
      this.wf(']');
    } else if (v instanceof GoMap || v instanceof GoStruct) this.mapOrStruct([], v, true, depth + 1);
    else throw new TomlError(`toml: unexpected type: ${typeName(v)}`);
  }

  arrayOfTables(key: readonly string[], v: readonly Value[], depth: number): void {
    if (key.length === 0) throw new TomlError('toml: top-level values must be Go maps or structs');
    for (const t of v) {
      if (isNil(t)) continue;
      this.newline();
      this.wf(`${INDENT.repeat(key.length - 1)}[[${keyString(key)}]]`);
      this.newline();
      this.mapOrStruct(key, t as GoMap | GoStruct, false, depth + 1);
    }
  }

  table(key: readonly string[], v: GoMap | GoStruct, depth: number): void {
    // A blank line between top-level tables (none before the first thing written).
    if (key.length === 1) this.newline();
    if (key.length > 0) {
      this.wf(`${INDENT.repeat(key.length - 1)}[${keyString(key)}]`);
      this.newline();
    }
    this.mapOrStruct(key, v, false, depth + 1);
  }

  mapOrStruct(key: readonly string[], v: GoMap | GoStruct, inline: boolean, depth: number): void {
    const direct: [string, Value][] = [];
    const sub: [string, Value][] = [];
    for (const e of entriesOf(v)) (isTable(tomlType(e[1], depth)) ? sub : direct).push(e);
    const write = (entries: readonly [string, Value][], trailingComma: boolean): void => {
      entries.forEach(([k, val], i) => {
        if (isNil(val)) return;
        if (inline) {
          this.keyValue([k], val, true, depth);
          if (trailingComma || i !== entries.length - 1) this.wf(', ');
        } else this.encode([...key, k], val, depth);
      });
    };
    if (inline) this.wf('{');
    write(direct, sub.length > 0);
    write(sub, false);
    if (inline) this.wf('}');
  }
}

/** toml.NewEncoder(w).Encode(v): the document as written, before consul-template trims it. */
export function marshalToml(v: Value): string {
  const e = new Encoder();
  e.encode([], v, 0);
  return e.out;
}
