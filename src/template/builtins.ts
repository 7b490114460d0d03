// Go text/template's predefined functions (and, or, not, len, index, slice, print*, eq…ge, html, js, urlquery, call).
import type { FuncSpec } from './callable.js';
import { ANY, REFLECT, STRING } from './callable.js';
import { printTop, sprint, sprintf, sprintln } from './fmt.js';
import { byteLength, compareGoStrings } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, intOf, isGoIntType, isSlice, isTrue, sliceTypeName, typedSlice, typeName } from './values.js';

/** The panic text reflect produces when a method is called on the zero Value, which safeCall turns into an error. */
const ZERO_VALUE_TYPE = 'reflect: call of reflect.Value.Type on zero Value';

type Kind = 'invalid' | 'bool' | 'int' | 'uint' | 'float' | 'string';

/** text/template's basicKind: int and int64 are one kind, uint64 another. */
function basicKind(v: Value): Kind {
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'int';
  if (v instanceof GoInt) return v.unsigned ? 'uint' : 'int';
  if (v instanceof GoFloat) return 'float';
  if (typeof v === 'string') return 'string';
  return 'invalid';
}

/** An integer's exact value (int, int64 or uint64). */
const big = (v: Value): bigint => (intOf(v) as { value: bigint }).value;
const isIntKind = (k: Kind): boolean => k === 'int' || k === 'uint';

const fmtV = (v: Value): string => sprintf('%v', [v]);

function isNil(v: Value): boolean {
  if (v === undefined) return true;
  if (v instanceof GoMap) return v.isNil;
  return false;
}

function sameKind(a: Value, b: Value): boolean {
  const k = (v: Value): string => (v === undefined ? 'invalid' : v instanceof GoMap ? 'map' : v instanceof GoStruct ? 'ptr' : v instanceof GoChan ? 'chan' : isSlice(v) ? 'slice' : typeof v);
  return k(a) === k(b) || a === undefined || b === undefined;
}

export function goEq(a: Value, rest: readonly Value[]): boolean {
  if (rest.length === 0) throw new Error('missing argument for comparison');
  const k1 = basicKind(a);
  for (const b of rest) {
    const k2 = basicKind(b);
    let truth = false;
    if (k1 !== k2) {
      // Integers compare by value across signedness (Go 1.18+); any other mix is an error.
      if (isIntKind(k1) && isIntKind(k2)) truth = big(a) === big(b);
      else if (a !== undefined && b !== undefined) throw new Error(`incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);
    } else if (k1 === 'invalid') {
      if (!sameKind(a, b)) throw new Error(`non-comparable types ${fmtV(a)}: ${typeName(a)}, ${typeName(b)}: ${fmtV(b)}`);
      if (isNil(a) || isNil(b)) truth = isNil(a) === isNil(b);
      else {
        if (isSlice(b) || b instanceof GoMap) throw new Error(`non-comparable type ${fmtV(b)}: ${typeName(b)}`);
        truth = a === b;
      }
    } else if (k1 === 'float') truth = (a as GoFloat).value === (b as GoFloat).value;
    else if (isIntKind(k1)) truth = big(a) === big(b);
    else truth = a === b;
    if (truth) return true;
  }
  return false;
}

export function goLt(a: Value, b: Value): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === 'invalid' || k2 === 'invalid') throw new Error('invalid type for comparison');
  if (isIntKind(k1) && isIntKind(k2)) return big(a) < big(b);
  if (k1 !== k2) throw new Error(`incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);
  if (k1 === 'bool') throw new Error('invalid type for comparison');
  if (k1 === 'string') return compareGoStrings(a as string, b as string) < 0;
  return (a as GoFloat).value < (b as GoFloat).value;
}

/** text/template's indexArg: any integer type; an unsigned one is read as int64 first, as Go converts it. */
function indexArg(index: Value, cap: number): number {
  if (index === undefined) throw new Error('cannot index slice/array with nil');
  const n = intOf(index);
  if (!n) throw new Error(`cannot index slice/array with type ${typeName(index)}`);
  const x = BigInt.asIntN(64, n.value);
  if (x < 0n || x > BigInt(cap)) throw new Error(`index out of range: ${x}`);
  return Number(x);
}

function goIndex(item: Value, indexes: readonly Value[]): Value {
  if (item === undefined) throw new Error('index of untyped nil');
  for (const index of indexes) {
    if (item === undefined) throw new Error('index of nil pointer');
    if (typeof item === 'string') {
      const bytes = Buffer.from(item, 'utf8');
      const x = indexArg(index, bytes.length);
      if (x === bytes.length) throw new Error('reflect: string index out of range');
      item = bytes[x] as number;
    } else if (isSlice(item)) {
      const x = indexArg(index, item.length);
      if (x === item.length) throw new Error('reflect: slice index out of range');
      item = item[x];
    } else if (item instanceof GoMap) {
      const keyType = /^map\[(.*?)\]/.exec(item.type.name)?.[1] ?? 'string';
      if (index === undefined) throw new Error(`value is nil; should be of type ${keyType}`);
      const ok = keyType === 'int' ? isGoIntType(index) : typeof index === 'string';
      if (!ok) throw new Error(`value has type ${typeName(index)}; should be ${keyType}`);
      item = item.entries.has(index as string | number) ? item.entries.get(index as string | number) : item.type.zero;
    } else throw new Error(`can't index item of type ${typeName(item)}`);
  }
  return item;
}

function goSlice(item: Value, indexes: readonly Value[]): Value {
  if (item === undefined) throw new Error('slice of untyped nil');
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`);
  let len: number;
  if (typeof item === 'string') {
    if (indexes.length === 3) throw new Error('cannot 3-index slice a string');
    len = byteLength(item);
  } else if (isSlice(item)) len = item.length;
  else throw new Error(`can't slice item of type ${typeName(item)}`);
  const idx = [0, len, len];
  indexes.forEach((index, i) => {
    idx[i] = indexArg(index, len);
  });
  const [i0, i1, i2] = idx as [number, number, number];
  if (i0 > i1) throw new Error(`invalid slice index: ${i0} > ${i1}`);
  if (indexes.length === 3 && i1 > i2) throw new Error(`invalid slice index: ${i1} > ${i2}`);
  if (typeof item === 'string') return Buffer.from(item, 'utf8').subarray(i0, i1).toString('utf8');
  return typedSlice(sliceTypeName(item as readonly Value[]), (item as readonly Value[]).slice(i0, i1));
}

function goLen(item: Value): number {
  if (item === undefined) throw new Error(ZERO_VALUE_TYPE);
  if (typeof item === 'string') return byteLength(item);
  if (isSlice(item)) return item.length;
  if (item instanceof GoMap) return item.entries.size;
  // An unbuffered channel such as loop's has nothing queued.
  if (item instanceof GoChan) return 0;
  throw new Error(`len of type ${typeName(item)}`);
}

/** evalArgs: a lone string as is; otherwise each argument printed as a template would, joined like Sprint. */
function evalArgs(args: readonly Value[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  let out = '';
  let prevString = false;
  args.forEach((arg, i) => {
    const s = arg === undefined ? '<no value>' : printTop(arg);
    const isString = typeof arg === 'string' || arg === undefined;
    if (i > 0 && !isString && !prevString) out += ' ';
    out += s;
    prevString = isString;
  });
  return out;
}

export function htmlEscape(s: string): string {
  return s.replace(/[\0"'&<>]/g, (c) => ({ '\0': '\uFFFD', '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c] as string);
}

export function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case '\\': out += '\\\\'; continue;
      case "'": out += "\\'"; continue;
      case '"': out += '\\"'; continue;
      case '<': out += '\\u003C'; continue;
      case '>': out += '\\u003E'; continue;
      case '&': out += '\\u0026'; continue;
      case '=': out += '\\u003D'; continue;
    }
    if (cp < 0x20) out += `\\u00${cp.toString(16).toUpperCase().padStart(2, '0')}`;
    else if (cp < 0x80 || /[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u.test(ch)) out += ch;
    else out += `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return out;
}

/** url.QueryEscape: unreserved bytes stay, spaces become '+', the rest %XX of the UTF-8 bytes. */
export function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export const BUILTINS: ReadonlyMap<string, FuncSpec> = new Map<string, FuncSpec>([
  ['and', { params: [REFLECT], variadic: REFLECT, shortCircuit: 'and', call: () => undefined }],
  ['or', { params: [REFLECT], variadic: REFLECT, shortCircuit: 'or', call: () => undefined }],
  ['not', { params: [REFLECT], call: (_c, [v]) => !isTrue(v) }],
  ['len', { params: [REFLECT], call: (_c, [v]) => goLen(v) }],
  ['index', { params: [REFLECT], variadic: REFLECT, call: (_c, [item, ...idx]) => goIndex(item, idx) }],
  ['slice', { params: [REFLECT], variadic: REFLECT, call: (_c, [item, ...idx]) => goSlice(item, idx) }],
  ['print', { params: [], variadic: ANY, call: (_c, args) => sprint(args) }],
  ['printf', { params: [STRING], variadic: ANY, call: (_c, [f, ...args]) => sprintf(f as string, args) }],
  ['println', { params: [], variadic: ANY, call: (_c, args) => sprintln(args) }],
  ['html', { params: [], variadic: ANY, call: (_c, args) => htmlEscape(evalArgs(args)) }],
  ['js', { params: [], variadic: ANY, call: (_c, args) => jsEscape(evalArgs(args)) }],
  ['urlquery', { params: [], variadic: ANY, call: (_c, args) => queryEscape(evalArgs(args)) }],
  ['eq', { params: [REFLECT], variadic: REFLECT, call: (_c, [a, ...rest]) => goEq(a, rest) }],
  ['ne', { params: [REFLECT, REFLECT], call: (_c, [a, b]) => !goEq(a, [b]) }],
  ['lt', { params: [REFLECT, REFLECT], call: (_c, [a, b]) => goLt(a, b) }],
  ['le', { params: [REFLECT, REFLECT], call: (_c, [a, b]) => goLt(a, b) || goEq(a, [b]) }],
  ['gt', { params: [REFLECT, REFLECT], call: (_c, [a, b]) => !(goLt(a, b) || goEq(a, [b])) }],
  ['ge', { params: [REFLECT, REFLECT], call: (_c, [a, b]) => !goLt(a, b) }],
  ['call', {
    params: [REFLECT], variadic: REFLECT,
    call: (_c, [fn]) => {
      if (fn === undefined) throw new Error('call of nil');
      throw new Error(`non-function of type ${typeName(fn)}`);
    },
  }],
]);
