// Go values as templates see them: the kinds text/template distinguishes, their type names, truth and zero values.
import { compareGoStrings } from './strconv.js';
import type { MethodSpec } from './callable.js';

/**
 * A Go value. `undefined` is the invalid reflect.Value (a nil interface: prints `<no value>`), a number is a Go
 * `int` within ±2^53, GoInt is any other integer (int64, uint64, or an int beyond ±2^53, exactly), GoFloat is
 * float64, arrays are slices (their Go type rides on a hidden symbol), GoMap, GoStruct and GoChan cover the rest.
 */
export type Value = undefined | string | number | boolean | GoInt | GoFloat | readonly Value[] | GoMap | GoStruct | GoChan;

export class GoFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/** The Go integer types templates meet: literals and len are int, parseInt and math give int64, parseUint and indexes uint64. */
export type IntType = 'int' | 'int64' | 'uint64';

/** A Go integer held exactly as a bigint. Build it with goInt, which keeps small ints as plain numbers. */
export class GoInt {
  readonly type: IntType;
  readonly value: bigint;
  constructor(type: IntType, value: bigint) {
    this.type = type;
    this.value = value;
  }

  get unsigned(): boolean {
    return this.type === 'uint64';
  }
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A Go integer of the given type, wrapped into its 64 bits as Go's arithmetic wraps. An `int` within ±2^53 is a plain
 * number (the common case everywhere else in the executor); everything else is a GoInt.
 */
export function goInt(type: IntType, value: bigint): number | GoInt {
  const v = type === 'uint64' ? BigInt.asUintN(64, value) : BigInt.asIntN(64, value);
  if (type === 'int' && v <= SAFE && v >= -SAFE) return Number(v);
  return new GoInt(type, v);
}

/** The type and exact value of an integer value, or undefined for other kinds. */
export function intOf(v: Value): { type: IntType; value: bigint } | undefined {
  if (typeof v === 'number') return { type: 'int', value: BigInt(v) };
  if (v instanceof GoInt) return { type: v.type, value: v.value };
  return undefined;
}

/** A Go `int` (not int64 or uint64): what int parameters and map[int] keys accept. */
export function isGoIntType(v: Value): boolean {
  return typeof v === 'number' || (v instanceof GoInt && v.type === 'int');
}

export type MapKey = string | number;

export interface MapType {
  /** Go spelling, e.g. map[string]string. */
  readonly name: string;
  /** The zero value of the element type, returned for absent keys (missingkey=zero). */
  readonly zero: Value;
}

export class GoMap {
  readonly type: MapType;
  readonly entries: ReadonlyMap<MapKey, Value>;
  /** A nil map prints as map[] like an empty one but marshals to JSON null. */
  readonly isNil: boolean;
  constructor(type: MapType, entries: ReadonlyMap<MapKey, Value>, isNil = false) {
    this.type = type;
    this.entries = entries;
    this.isNil = isNil;
  }

  /** Keys in Go's fmtsort order (numbers numerically, strings by bytes), the order range and printing use. */
  sortedKeys(): MapKey[] {
    return [...this.entries.keys()].sort(compareKeys);
  }
}

export function compareKeys(a: MapKey, b: MapKey): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return compareGoStrings(String(a), String(b));
}

export interface StructType {
  /** Go spelling without the pointer star, e.g. dependency.HealthService. */
  readonly name: string;
  /** Held by pointer (as consul-template's *HealthService), which shows in error messages. */
  readonly pointer: boolean;
  /** Field names in declaration order: the order of printing and JSON. */
  readonly fields: readonly string[];
  /** Methods templates may call (`.Name args`), as consul-template's *Scratch has. */
  readonly methods?: ReadonlyMap<string, MethodSpec>;
}

export class GoStruct {
  readonly type: StructType;
  readonly fields: Readonly<Record<string, Value>>;
  constructor(type: StructType, fields: Readonly<Record<string, Value>>) {
    this.type = type;
    this.fields = fields;
  }

  get(name: string): Value {
    return this.fields[name];
  }

  has(name: string): boolean {
    return this.type.fields.includes(name);
  }
}

/** A receive channel (consul-template's loop returns one); templates can only range over it. */
/**
 * A receive-only channel: `receive()` yields what a sender goroutine would send until it closes.
 * Lazily, as Go's: `loop 100000000` must not build a hundred million values before the first.
 */
export class GoChan {
  readonly typeName: string;
  readonly #send: () => Iterable<Value>;
  constructor(typeName: string, send: () => Iterable<Value>) {
    this.typeName = typeName;
    this.#send = send;
  }

  receive(): Iterable<Value> {
    return this.#send();
  }
}

const SLICE_TYPE: unique symbol = Symbol('go slice type');
const NIL_SLICE: unique symbol = Symbol('go nil slice');

type Tagged = readonly Value[] & { readonly [SLICE_TYPE]?: string; readonly [NIL_SLICE]?: boolean };

/** A slice with its Go type name, e.g. typedSlice('[]string', …) or typedSlice('dependency.ServiceTags', …). */
export function typedSlice(typeName: string, items: readonly Value[], isNil = false): readonly Value[] {
  const arr = [...items];
  Object.defineProperty(arr, SLICE_TYPE, { value: typeName, enumerable: false });
  if (isNil) Object.defineProperty(arr, NIL_SLICE, { value: true, enumerable: false });
  return Object.freeze(arr);
}

export function sliceTypeName(v: readonly Value[]): string {
  return (v as Tagged)[SLICE_TYPE] ?? '[]interface {}';
}

export function isNilSlice(v: readonly Value[]): boolean {
  return (v as Tagged)[NIL_SLICE] === true;
}

export function isSlice(v: Value): v is readonly Value[] {
  return Array.isArray(v);
}

/** Go's %T spelling of a value's dynamic type (`<nil>` for a nil interface). */
export function typeName(v: Value): string {
  if (v === undefined) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'int';
  if (v instanceof GoInt) return v.type;
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof GoFloat) return 'float64';
  if (v instanceof GoMap) return v.type.name;
  if (v instanceof GoStruct) return `${v.type.pointer ? '*' : ''}${v.type.name}`;
  if (v instanceof GoChan) return v.typeName;
  return sliceTypeName(v);
}

/** text/template's isTrue: false, 0, nil and empty strings, slices and maps are false; structs are true. */
export function isTrue(v: Value): boolean {
  if (v === undefined) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (v instanceof GoInt) return v.value !== 0n;
  if (typeof v === 'boolean') return v;
  if (v instanceof GoFloat) return v.value !== 0;
  if (v instanceof GoMap) return v.entries.size > 0;
  if (v instanceof GoStruct || v instanceof GoChan) return true;
  return v.length > 0;
}

/** Elements of a value a function treats as a list, or undefined if it is not a slice. */
export function listItems(v: Value): readonly Value[] | undefined {
  return Array.isArray(v) ? (v as readonly Value[]) : undefined;
}

export function goMap(name: string, zero: Value, entries: Iterable<[MapKey, Value]>, isNil = false): GoMap {
  return new GoMap({ name, zero }, new Map(entries), isNil);
}

/** map[string]string, the type of NodeMeta, ServiceMeta and tagged addresses. */
export function stringMap(record: Readonly<Record<string, string>> | null | undefined): GoMap {
  return goMap('map[string]string', '', Object.entries(record ?? {}), record == null);
}

export function stringSlice(items: readonly string[], typeName = '[]string'): readonly Value[] {
  return typedSlice(typeName, items);
}

/** A number as reflect's Kind groups it: signed ints, unsigned ints (exact) and floats. */
export type Numeric = { kind: 'int' | 'uint'; value: bigint } | { kind: 'float'; value: number };

export function numericOf(v: Value): Numeric | undefined {
  const i = intOf(v);
  if (i) return { kind: i.type === 'uint64' ? 'uint' : 'int', value: i.value };
  if (v instanceof GoFloat) return { kind: 'float', value: v.value };
  return undefined;
}
