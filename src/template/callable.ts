// The contract between the executor and template functions: Go parameter types, call context and render inputs.
import type { TemplateData } from './data.js';
import type { Dependency } from './query.js';
import type { Value } from './values.js';
import { GoMap, GoStruct, isGoIntType, isSlice, sliceTypeName, typedSlice } from './values.js';

/** Inputs of one render besides the catalog data; everything optional, all of it injected. */
export interface RenderEnv {
  /** The environment `env`, `mustEnv` and `envOrDefault` read (consul-template reads its process environment). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Clock for `timestamp`; defaults to the current time. */
  readonly now?: () => Date;
  /** Reader for `file`: the contents, or undefined while not available (the `file(path)` dependency is then missing). */
  readonly readFile?: (path: string) => string | undefined;
}

/** What a function may touch while it runs. */
export interface CallContext {
  readonly data: TemplateData;
  readonly env: RenderEnv;
  /** Records a dependency the template read. */
  use(dep: Dependency): void;
  /** Records a dependency whose data is not available yet. */
  miss(dep: Dependency): void;
  /** Runs a named ({{define}}d) template with a dot and returns its output. */
  executeTemplate(name: string, dot: Value): string;
  /**
   * The value computed for `key` earlier in this render, else `compute()`. Data functions convert each answer
   * once per render, so repeated lookups yield the same objects (eq compares records by identity, as Go
   * compares the brain's pointers).
   */
  memo(key: string, compute: () => Value): Value;
}

/**
 * A Go parameter type, as far as text/template's argument checks need it: which values are assignable, what a nil
 * argument becomes, and how Go spells the type in "wrong type for value; expected …" errors.
 */
export interface ParamSpec {
  readonly go: string;
  /** How a literal argument is converted (text/template's evalArg switch on the parameter kind). */
  readonly literal: 'any' | 'string' | 'int' | 'bool' | 'float' | 'none';
  /** Slices, maps, pointers and interfaces accept nil. */
  readonly nillable: boolean;
  readonly accepts: (v: Exclude<Value, undefined>) => boolean;
}

export interface FuncSpec {
  readonly params: readonly ParamSpec[];
  readonly variadic?: ParamSpec;
  /** Builtin and/or evaluate lazily and return the deciding operand. */
  readonly shortCircuit?: 'and' | 'or';
  /** Throw an Error to fail; the executor reports it as `error calling <name>: <message>`. */
  readonly call: (ctx: CallContext, args: readonly Value[]) => Value;
}

/** A method of a Go type: a function whose first argument is its receiver. */
export interface MethodSpec {
  readonly params: readonly ParamSpec[];
  readonly variadic?: ParamSpec;
  readonly call: (ctx: CallContext, self: Exclude<Value, undefined>, args: readonly Value[]) => Value;
}

export const ANY: ParamSpec = { go: 'interface {}', literal: 'any', nillable: true, accepts: () => true };
/** reflect.Value parameters of the builtins: anything, including nil. */
export const REFLECT: ParamSpec = { go: 'reflect.Value', literal: 'any', nillable: true, accepts: () => true };
export const STRING: ParamSpec = { go: 'string', literal: 'string', nillable: false, accepts: (v) => typeof v === 'string' };
export const INT: ParamSpec = { go: 'int', literal: 'int', nillable: false, accepts: isGoIntType };
export const BOOL: ParamSpec = { go: 'bool', literal: 'bool', nillable: false, accepts: (v) => typeof v === 'boolean' };

/** A slice parameter accepting slices whose Go type is one of `types` (a named slice is assignable to its unnamed type). */
export function sliceParam(go: string, ...also: string[]): ParamSpec {
  const ok = new Set([go, ...also]);
  return { go, literal: 'none', nillable: true, accepts: (v) => isSlice(v) && ok.has(sliceTypeName(v)) };
}

export function mapParam(go: string): ParamSpec {
  return { go, literal: 'none', nillable: true, accepts: (v) => v instanceof GoMap && v.type.name === go };
}

export function structParam(go: string): ParamSpec {
  return { go, literal: 'none', nillable: true, accepts: (v) => v instanceof GoStruct && `${v.type.pointer ? '*' : ''}${v.type.name}` === go };
}

/** The value a nil argument takes for a nillable parameter: a nil slice for slice types, else nil. */
export function nilFor(p: ParamSpec): Value {
  return p.go.startsWith('[]') ? typedSlice(p.go, [], true) : undefined;
}
