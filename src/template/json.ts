// Go's encoding/json for template values: Marshal/MarshalIndent byte for byte, and Unmarshal into interface{}.
import { compareGoStrings, formatFloat } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, goMap, isNilSlice, isSlice, typedSlice, typeName } from './values.js';

export class JsonError extends Error {}

const HEX = '0123456789abcdef';

/** encodeState.string: Go escapes control characters, U+2028/U+2029 and, for HTML safety, < > &. */
function quote(s: string, escapeHTML: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0x20) {
      switch (c) {
        case 0x08: out += '\\b'; break;
        case 0x0c: out += '\\f'; break;
        case 0x0a: out += '\\n'; break;
        case 0x0d: out += '\\r'; break;
        case 0x09: out += '\\t'; break;
        default: out += `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
      }
    } else if (escapeHTML && (c === 0x3c || c === 0x3e || c === 0x26)) out += `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`;
    else if (c === 0x2028 || c === 0x2029) out += `\\u202${HEX[c & 0xf]}`;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += s[i] as string;
      out += s[i + 1] as string;
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += s[i] as string;
  }
  return `${out}"`;
}

/** floatEncoder: %f for ordinary magnitudes, %e (with a one-digit exponent kept short) outside [1e-6, 1e21). */
function jsonFloat(v: number): string {
  if (!Number.isFinite(v)) throw new JsonError(`json: unsupported value: ${formatFloat(v, 'g', -1)}`);
  const abs = Math.abs(v);
  let fmt: 'e' | 'f' = 'f';
  if (abs !== 0 && (abs < 1e-6 || abs >= 1e21)) fmt = 'e';
  let s = formatFloat(v, fmt, -1);
  if (fmt === 'e') s = s.replace(/e-0(\d)$/, 'e-$1');
  return s;
}

interface Style {
  readonly escapeHTML: boolean;
  readonly indent: string;
}

function encode(v: Value, style: Style, depth: number): string {
  if (v === undefined) return 'null';
  if (typeof v === 'string') return quote(v, style.escapeHTML);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : jsonFloat(v);
  if (v instanceof GoInt) return v.value.toString();
  if (v instanceof GoFloat) return jsonFloat(v.value);
  if (v instanceof GoChan) throw new JsonError(`json: unsupported type: ${v.typeName}`);
  const nl = style.indent ? `\n${style.indent.repeat(depth + 1)}` : '';
  const close = style.indent ? `\n${style.indent.repeat(depth)}` : '';
  const colon = style.indent ? ': ' : ':';
  if (v instanceof GoMap) {
    // encoding/json takes string and integer keys; parseYAML's maps are keyed by interface{}.
    if (v.type.name.startsWith('map[interface {}]')) throw new JsonError(`json: unsupported type: ${v.type.name}`);
    if (v.isNil) return 'null';
    // Go sorts the encoded key strings, so int keys sort as text ("10" before "9").
    const keys = [...v.entries.keys()].map((k) => ({ k, s: String(k) })).sort((a, b) => compareGoStrings(a.s, b.s));
    if (keys.length === 0) return '{}';
    return `{${keys.map(({ k, s }) => `${nl}${quote(s, style.escapeHTML)}${colon}${encode(v.entries.get(k), style, depth + 1)}`).join(',')}${close}}`;
  }
  if (v instanceof GoStruct) {
    if (v.type.fields.length === 0) return '{}';
    return `{${v.type.fields.map((f) => `${nl}${quote(f, style.escapeHTML)}${colon}${encode(v.get(f), style, depth + 1)}`).join(',')}${close}}`;
  }
  if (isSlice(v)) {
    if (isNilSlice(v)) return 'null';
    if (v.length === 0) return '[]';
    return `[${v.map((e) => `${nl}${encode(e, style, depth + 1)}`).join(',')}${close}]`;
  }
  throw new JsonError(`json: unsupported type: ${typeName(v)}`);
}

/** json.Marshal (escapeHTML) or an Encoder with SetEscapeHTML(false); indent "" means compact. */
export function marshal(v: Value, opts: { escapeHTML: boolean; indent: string }): string {
  return encode(v, opts, 0);
}

/** json.Unmarshal into interface{}: objects become map[string]interface{}, arrays []interface{}, numbers float64. */
export function unmarshal(text: string): Value {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new JsonError((err as Error).message);
  }
  return fromJson(parsed);
}

export function fromJson(x: unknown): Value {
  if (x === null || x === undefined) return undefined;
  if (typeof x === 'string' || typeof x === 'boolean') return x;
  if (typeof x === 'number') return new GoFloat(x);
  if (Array.isArray(x)) return typedSlice('[]interface {}', x.map(fromJson));
  const entries = Object.entries(x as Record<string, unknown>).map(([k, val]): [string, Value] => [k, fromJson(val)]);
  return goMap('map[string]interface {}', undefined, entries);
}
