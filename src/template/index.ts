// Public face of the template engine: compile a consul-template template once, render it against data many times.
import { BUILTINS } from './builtins.js';
import type { CallContext, FuncSpec, RenderEnv } from './callable.js';
import type { TemplateData } from './data.js';
import { execute } from './exec.js';
import { FUNCTIONS, UNSUPPORTED_FUNCTIONS, methodOf } from './functions.js';
import { parseTemplate } from './parser.js';
import type { Dependency } from './query.js';
import type { Value } from './values.js';

export type { RenderEnv } from './callable.js';
export type {
  CatalogNode, CatalogNodeInfo, CatalogNodeService, CatalogService, HealthCheck, HealthService, KeyPair, TemplateData,
} from './data.js';
export { aggregatedStatus, toCatalogNode, toCatalogNodes, toCatalogServices, toHealthServices, toKeyPairs } from './data.js';
export type { ApiCatalogNode } from './data.js';
export { TemplateError } from './errors.js';
export type {
  ConsulQueryParams, Dependency, HealthFilter, KeyQuery, NodeQuery, NodesQuery, PrefixQuery, ServiceQuery, ServicesQuery,
} from './query.js';
export { parseServiceQuery, QueryError, serviceDependencyId } from './query.js';

export interface CompileOptions {
  /** Shown in error messages (consul-template itself leaves it empty: `template: :3:15: …`). */
  readonly name: string;
  readonly leftDelim?: string;
  readonly rightDelim?: string;
  /** consul-template's error_on_missing_key: a missing map key fails instead of yielding the zero value. */
  readonly errorOnMissingKey?: boolean;
}

export interface RenderResult {
  /** The rendered text; only final when `missing` is empty. */
  readonly output: string;
  /** Dependencies whose data was not available: write nothing, watch these, render again. */
  readonly missing: readonly Dependency[];
  /** Every dependency the render read (in first-use order, de-duplicated by id). */
  readonly used: readonly Dependency[];
}

export interface CompiledTemplate {
  readonly name: string;
  /** Executes with `.` = nil, as consul-template does. Throws TemplateError (SY_ERR_TEMPLATE) on execution errors. */
  render(data: TemplateData, env?: RenderEnv): RenderResult;
}

function lookup(name: string): FuncSpec | undefined {
  return FUNCTIONS.get(name) ?? BUILTINS.get(name);
}

/** Parses `text` (Go text/template syntax with consul-template's functions); throws TemplateError on syntax errors. */
export function compileTemplate(text: string, opts: CompileOptions): CompiledTemplate {
  const parsed = parseTemplate(text, {
    name: opts.name,
    ...(opts.leftDelim !== undefined ? { leftDelim: opts.leftDelim } : {}),
    ...(opts.rightDelim !== undefined ? { rightDelim: opts.rightDelim } : {}),
    hasFunction: (n) => lookup(n) !== undefined,
    unsupportedFunction: (n) => (UNSUPPORTED_FUNCTIONS.has(n) || n.startsWith('sprig_')
      ? `function ${JSON.stringify(n)} is not supported by switchyard's template engine`
      : undefined),
  });
  const program = { parsed, lookup, method: methodOf, missingKey: opts.errorOnMissingKey ? 'error' as const : 'zero' as const };
  return {
    name: opts.name,
    render(data: TemplateData, env: RenderEnv = {}): RenderResult {
      const used = new Map<string, Dependency>();
      const missing = new Map<string, Dependency>();
      const memo = new Map<string, Value>();
      const ctx: CallContext = {
        data,
        env,
        use: (dep) => {
          if (!used.has(dep.id)) used.set(dep.id, dep);
        },
        miss: (dep) => {
          if (!missing.has(dep.id)) missing.set(dep.id, dep);
        },
        memo: (key, compute) => {
          if (!memo.has(key)) memo.set(key, compute());
          return memo.get(key);
        },
        executeTemplate: (name: string, dot: Value) => {
          if (!parsed.trees.has(name)) throw new Error(`template: no template ${JSON.stringify(name)} associated with template ${JSON.stringify(opts.name)}`);
          return execute(program, ctx, name, dot, 1);
        },
      };
      const output = execute(program, ctx, opts.name, undefined);
      return { output, missing: [...missing.values()], used: [...used.values()] };
    },
  };
}
