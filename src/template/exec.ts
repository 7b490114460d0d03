// Executes parsed templates with Go text/template's semantics; a port of text/template/exec.go to our value model.
import type {
  ActionNode, ArgNode, ChainNode, CommandNode, FieldNode, IdentifierNode, ListNode, Node, NumberNode, PipeNode, RangeNode,
  TemplateNode, VariableNode,
} from './ast.js';
import { nodeString } from './ast.js';
import type { CallContext, FuncSpec, MethodSpec, ParamSpec } from './callable.js';
import { nilFor, REFLECT } from './callable.js';
import { byteColumnAt, lineAt, TemplateError } from './errors.js';
import { printTop, sprintf } from './fmt.js';
import type { ParsedTemplate } from './parser.js';
import { goQuote } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, goInt, isSlice, isTrue, typeName } from './values.js';

export interface Program {
  readonly parsed: ParsedTemplate;
  readonly lookup: (name: string) => FuncSpec | undefined;
  /** consul-template's error_on_missing_key switches Go's missingkey option from zero to error. */
  readonly missingKey: 'zero' | 'error';
  /** A method of the receiver's type by name (`.Tags.Contains "x"`, `scratch.Set "k" v`). */
  readonly method?: (receiver: Exclude<Value, undefined>, name: string) => MethodSpec | undefined;
}

/** Go's maxExecDepth is 100000; JS stacks are shallower, so nested {{template}} calls stop earlier. */
export const MAX_EXEC_DEPTH = 400;
/** The most characters one template renders (far above any config file; below what a string can hold). */
export const MAX_OUTPUT = 128 * 1024 * 1024;

/** Sentinels that unwind to the enclosing {{range}}, as Go's walkBreak/walkContinue panics do. */
const BREAK = Object.freeze({ signal: 'break' });
const CONTINUE = Object.freeze({ signal: 'continue' });

/** Marks "no value piped in", Go's missingVal: distinct from a piped nil. */
const MISSING: unique symbol = Symbol('missing');
type Final = Value | typeof MISSING;

interface Variable {
  readonly name: string;
  value: Value;
}

/** Runs the named tree of `program` with `dot` as data and returns the output text. */
export function execute(program: Program, ctx: CallContext, name: string, dot: Value, depth = 0): string {
  return new State(program, ctx, name, dot, depth).run();
}

class State {
  readonly #program: Program;
  readonly #ctx: CallContext;
  /** Output in chunks: a hundred million one-character pieces must not be a hundred million array slots. */
  readonly #out: string[] = [];
  #chunk = '';
  #size = 0;
  #name: string;
  #vars: Variable[];
  #depth: number;
  #node: Node | undefined;

  constructor(program: Program, ctx: CallContext, name: string, dot: Value, depth: number) {
    this.#program = program;
    this.#ctx = ctx;
    this.#name = name;
    this.#vars = [{ name: '$', value: dot }];
    this.#depth = depth;
  }

  run(): string {
    const tree = this.#program.parsed.trees.get(this.#name);
    if (!tree) this.#errorf(`${goQuote(this.#name)} is an incomplete or empty template`);
    if (this.#depth > MAX_EXEC_DEPTH) this.#errorf(`exceeded maximum template depth (${MAX_EXEC_DEPTH})`);
    this.#walk(this.#vars[0]?.value, tree.root);
    this.#out.push(this.#chunk);
    return this.#out.join('');
  }

  /** Appends to the output, refusing to grow it past MAX_OUTPUT (a clear error, not an exhausted heap). */
  #emit(text: string): void {
    this.#size += text.length;
    if (this.#size > MAX_OUTPUT) this.#errorf(`output is over ${MAX_OUTPUT} characters: refusing to render it`);
    this.#chunk += text;
    if (this.#chunk.length >= 65_536) {
      this.#out.push(this.#chunk);
      this.#chunk = '';
    }
  }

  // ---- errors and variables -------------------------------------------------------------------------

  #at(node: Node): void {
    this.#node = node;
  }

  #errorf(message: string): never {
    const { parsed } = this.#program;
    const node = this.#node;
    if (!node) {
      throw new TemplateError('exec', `template: ${this.#name}: ${message}`, { template: parsed.name, line: 0, column: 0 });
    }
    const line = lineAt(parsed.text, node.pos);
    const column = byteColumnAt(parsed.text, node.pos);
    throw new TemplateError('exec',
      `template: ${parsed.name}:${line}:${column}: executing ${goQuote(this.#name)} at <${nodeString(node)}>: ${message}`,
      { template: parsed.name, line, column });
  }

  #varValue(name: string): Value {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      const v = this.#vars[i] as Variable;
      if (v.name === name) return v.value;
    }
    this.#errorf(`undefined variable: ${name}`);
  }

  #setVar(name: string, value: Value): void {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      const v = this.#vars[i] as Variable;
      if (v.name === name) {
        v.value = value;
        return;
      }
    }
    this.#errorf(`undefined variable: ${name}`);
  }

  #setTopVar(n: number, value: Value): void {
    (this.#vars[this.#vars.length - n] as Variable).value = value;
  }

  // ---- walking ------------------------------------------------------------------------------------

  #walk(dot: Value, node: Node): void {
    this.#at(node);
    switch (node.type) {
      case 'action': {
        const val = this.#evalPipeline(dot, node.pipe);
        // An action that declares variables prints nothing.
        if (node.pipe.decl.length === 0) this.#printValue(node, val);
        return;
      }
      case 'break': throw BREAK;
      case 'continue': throw CONTINUE;
      case 'comment': return;
      case 'if':
      case 'with': {
        const mark = this.#vars.length;
        try {
          const val = this.#evalPipeline(dot, node.pipe);
          if (isTrue(val)) this.#walk(node.type === 'with' ? val : dot, node.list);
          else if (node.elseList) this.#walk(dot, node.elseList);
        } finally {
          this.#vars.length = mark;
        }
        return;
      }
      case 'list':
        for (const n of (node as ListNode).nodes) this.#walk(dot, n);
        return;
      case 'range': this.#walkRange(dot, node); return;
      case 'template': this.#walkTemplate(dot, node); return;
      case 'text': this.#emit(node.text); return;
      default: this.#errorf(`unknown node: ${nodeString(node)}`);
    }
  }

  #walkRange(dot: Value, r: RangeNode): void {
    this.#at(r);
    const outer = this.#vars.length;
    try {
      const val = this.#evalPipeline(dot, r.pipe);
      // Variables of the body are dropped after each iteration; the range's own ($i, $e) stay.
      const mark = this.#vars.length;
      const decl = r.pipe.decl;
      const oneIteration = (index: Value, elem: Value): void => {
        if (decl.length > 0) {
          // With two variables the first takes the index; with one it takes the element.
          if (r.pipe.isAssign) this.#setVar((decl[0] as VariableNode).ident[0] as string, decl.length > 1 ? index : elem);
          else this.#setTopVar(1, elem);
        }
        if (decl.length > 1) {
          if (r.pipe.isAssign) this.#setVar((decl[1] as VariableNode).ident[0] as string, elem);
          else this.#setTopVar(2, index);
        }
        try {
          this.#walk(elem, r.list);
        } catch (err) {
          if (err !== CONTINUE) throw err;
        } finally {
          this.#vars.length = mark;
        }
      };
      if (isSlice(val)) {
        if (val.length > 0) {
          val.forEach((e, i) => oneIteration(i, e));
          return;
        }
      } else if (val instanceof GoMap) {
        if (val.entries.size > 0) {
          for (const k of val.sortedKeys()) oneIteration(k, val.entries.get(k));
          return;
        }
      } else if (val instanceof GoChan) {
        let i = 0;
        for (const e of val.receive()) oneIteration(i++, e);
        if (i > 0) return;
      } else if (typeof val === 'number' || val instanceof GoInt) {
        if (decl.length > 1) this.#errorf(`can't use ${sprintf('%v', [val])} to iterate over more than one variable`);
        // Go 1.22's range over an integer yields 0…n-1 of the integer's own type.
        const type = typeof val === 'number' ? 'int' : val.type;
        const n = typeof val === 'number' ? BigInt(val) : val.value;
        if (n > 0n) {
          for (let i = 0n; i < n; i++) oneIteration(goInt(type, i), goInt(type, i));
          return;
        }
      } else if (val !== undefined) {
        this.#errorf(`range can't iterate over ${sprintf('%v', [val])}`);
      }
      if (r.elseList) this.#walk(dot, r.elseList);
    } catch (err) {
      if (err !== BREAK) throw err;
    } finally {
      this.#vars.length = outer;
    }
  }

  #walkTemplate(dot: Value, t: TemplateNode): void {
    this.#at(t);
    const tree = this.#program.parsed.trees.get(t.name);
    if (!tree) this.#errorf(`template ${goQuote(t.name)} not defined`);
    if (this.#depth >= MAX_EXEC_DEPTH) this.#errorf(`exceeded maximum template depth (${MAX_EXEC_DEPTH})`);
    const newDot = this.#evalPipeline(dot, t.pipe);
    const saved = { vars: this.#vars, name: this.#name, depth: this.#depth };
    // No dynamic scoping: the invoked template sees only $.
    this.#vars = [{ name: '$', value: newDot }];
    this.#name = t.name;
    this.#depth++;
    try {
      this.#walk(newDot, tree.root);
    } finally {
      this.#vars = saved.vars;
      this.#name = saved.name;
      this.#depth = saved.depth;
    }
  }

  #printValue(node: ActionNode, v: Value): void {
    this.#at(node);
    if (v instanceof GoChan) this.#errorf(`can't print ${nodeString(node)} of type ${v.typeName}`);
    this.#emit(printTop(v));
  }

  // ---- evaluation ---------------------------------------------------------------------------------

  #evalPipeline(dot: Value, pipe: PipeNode | undefined): Value {
    if (!pipe) return undefined;
    this.#at(pipe);
    let value: Final = MISSING;
    // Each command receives the previous command's value as its final argument.
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    const result = value === MISSING ? undefined : value;
    for (const v of pipe.decl) {
      const name = v.ident[0] as string;
      if (pipe.isAssign) this.#setVar(name, result);
      else this.#vars.push({ name, value: result });
    }
    return result;
  }

  #notAFunction(args: readonly ArgNode[] | null, final: Final): void {
    if ((args !== null && args.length > 1) || final !== MISSING) {
      this.#errorf(`can't give argument to non-function ${args?.[0] ? nodeString(args[0]) : ''}`);
    }
  }

  #evalCommand(dot: Value, cmd: CommandNode, final: Final): Value {
    const first = cmd.args[0] as ArgNode;
    switch (first.type) {
      case 'field': return this.#evalFieldNode(dot, first, cmd.args, final);
      case 'chain': return this.#evalChainNode(dot, first, cmd.args, final);
      case 'identifier': return this.#evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        this.#notAFunction(cmd.args, final);
        return this.#evalPipeline(dot, first);
      case 'variable': return this.#evalVariableNode(dot, first, cmd.args, final);
    }
    this.#at(first);
    this.#notAFunction(cmd.args, final);
    switch (first.type) {
      case 'bool': return first.value;
      case 'dot': return dot;
      case 'nil': return this.#errorf('nil is not a command');
      case 'number': return this.#idealConstant(first);
      case 'string': return first.text;
    }
  }

  #idealConstant(n: NumberNode): Value {
    this.#at(n);
    const hexInt = n.text.length > 2 && n.text[0] === '0' && (n.text[1] === 'x' || n.text[1] === 'X') && !/[pP]/.test(n.text);
    const runeInt = n.text.startsWith("'");
    if (n.isFloat && !hexInt && !runeInt && /[.eEpP]/.test(n.text)) return new GoFloat(n.float);
    if (n.isInt) return goInt('int', n.int);
    if (n.isUint) this.#errorf(`${n.text} overflows int`);
    return undefined;
  }

  #evalFieldNode(dot: Value, field: FieldNode, args: readonly ArgNode[] | null, final: Final): Value {
    this.#at(field);
    return this.#evalFieldChain(dot, dot, field, field.ident, args, final);
  }

  #evalChainNode(dot: Value, chain: ChainNode, args: readonly ArgNode[] | null, final: Final): Value {
    this.#at(chain);
    if (chain.node.type === 'nil') this.#errorf(`indirection through explicit nil in ${nodeString(chain)}`);
    const pipe = this.#evalArg(dot, REFLECT, chain.node);
    return this.#evalFieldChain(dot, pipe, chain, chain.field, args, final);
  }

  #evalVariableNode(dot: Value, v: VariableNode, args: readonly ArgNode[] | null, final: Final): Value {
    this.#at(v);
    const value = this.#varValue(v.ident[0] as string);
    if (v.ident.length === 1) {
      this.#notAFunction(args, final);
      return value;
    }
    return this.#evalFieldChain(dot, value, v, v.ident.slice(1), args, final);
  }

  // The receiver walks along .X.Y.Z; only the last field may receive arguments.
  #evalFieldChain(dot: Value, receiver: Value, node: Node, ident: readonly string[], args: readonly ArgNode[] | null, final: Final): Value {
    const n = ident.length;
    for (let i = 0; i < n - 1; i++) receiver = this.#evalField(dot, node, ident[i] as string, null, MISSING, receiver);
    return this.#evalField(dot, node, ident[n - 1] as string, args, final, receiver);
  }

  #evalField(dot: Value, node: Node, fieldName: string, args: readonly ArgNode[] | null, final: Final, receiver: Value): Value {
    // A method first, as Go looks one up on the pointer before the struct's fields.
    const method = receiver === undefined ? undefined : this.#program.method?.(receiver, fieldName);
    if (method !== undefined) {
      const self = receiver as Exclude<Value, undefined>;
      const spec: FuncSpec = { params: method.params, ...(method.variadic ? { variadic: method.variadic } : {}), call: (ctx, argv) => method.call(ctx, self, argv) };
      return this.#evalCall(dot, spec, node, fieldName, args, final);
    }
    if (receiver === undefined) {
      if (this.#program.missingKey === 'error') this.#errorf(`nil data; no entry for key ${goQuote(fieldName)}`);
      return undefined;
    }
    const hasArgs = (args !== null && args.length > 1) || final !== MISSING;
    if (receiver instanceof GoStruct && receiver.has(fieldName)) {
      if (hasArgs) this.#errorf(`${fieldName} has arguments but cannot be invoked as function`);
      return receiver.get(fieldName);
    }
    if (receiver instanceof GoMap && !receiver.type.name.startsWith('map[int]')) {
      if (hasArgs) this.#errorf(`${fieldName} is not a method but has arguments`);
      if (receiver.entries.has(fieldName)) return receiver.entries.get(fieldName);
      if (this.#program.missingKey === 'error') this.#errorf(`map has no entry for key ${goQuote(fieldName)}`);
      return receiver.type.zero;
    }
    this.#errorf(`can't evaluate field ${fieldName} in type ${typeName(receiver)}`);
  }

  #evalFunction(dot: Value, node: IdentifierNode, cmd: Node, args: readonly ArgNode[] | null, final: Final): Value {
    this.#at(node);
    const spec = this.#program.lookup(node.ident);
    if (!spec) this.#errorf(`${goQuote(node.ident)} is not a defined function`);
    return this.#evalCall(dot, spec, cmd, node.ident, args, final);
  }

  #evalCall(dot: Value, spec: FuncSpec, node: Node, name: string, argNodes: readonly ArgNode[] | null, final: Final): Value {
    // The zeroth argument node is the function name itself.
    const args = argNodes ? argNodes.slice(1) : [];
    const numIn = args.length + (final !== MISSING ? 1 : 0);
    const numFixed = spec.variadic ? spec.params.length : args.length;
    if (spec.variadic) {
      if (numIn < numFixed) this.#errorf(`wrong number of args for ${name}: want at least ${spec.params.length} got ${args.length}`);
    } else if (numIn !== spec.params.length) {
      this.#errorf(`wrong number of args for ${name}: want ${spec.params.length} got ${numIn}`);
    }
    if (spec.shortCircuit) {
      let v: Value;
      for (const arg of args) {
        v = this.#evalArg(dot, REFLECT, arg);
        if (isTrue(v) === (spec.shortCircuit === 'or')) return v;
      }
      if (final !== MISSING) v = final;
      return v;
    }
    const argv: Value[] = [];
    let i = 0;
    for (; i < numFixed && i < args.length; i++) argv.push(this.#evalArg(dot, spec.params[i] as ParamSpec, args[i] as ArgNode));
    if (spec.variadic) for (; i < args.length; i++) argv.push(this.#evalArg(dot, spec.variadic, args[i] as ArgNode));
    if (final !== MISSING) {
      const t = spec.variadic
        ? (numIn - 1 < numFixed ? spec.params[numIn - 1] : spec.variadic) as ParamSpec
        : spec.params[spec.params.length - 1] as ParamSpec;
      argv.push(this.#validateType(final, t));
    }
    try {
      return spec.call(this.#ctx, argv);
    } catch (err) {
      if (err === BREAK || err === CONTINUE) throw err;
      this.#at(node);
      this.#errorf(`error calling ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #validateType(value: Value, p: ParamSpec): Value {
    if (value === undefined) {
      if (p.nillable) return nilFor(p);
      this.#errorf(`invalid value; expected ${p.go}`);
    }
    if (!p.accepts(value)) this.#errorf(`wrong type for value; expected ${p.go}; got ${typeName(value)}`);
    return value;
  }

  #evalArg(dot: Value, p: ParamSpec, n: ArgNode): Value {
    this.#at(n);
    switch (n.type) {
      case 'dot': return this.#validateType(dot, p);
      case 'nil':
        if (p.nillable) return nilFor(p);
        return this.#errorf(`cannot assign nil to ${p.go}`);
      case 'field': return this.#validateType(this.#evalFieldNode(dot, n, [n], MISSING), p);
      case 'variable': return this.#validateType(this.#evalVariableNode(dot, n, null, MISSING), p);
      case 'pipe': return this.#validateType(this.#evalPipeline(dot, n), p);
      case 'identifier': return this.#validateType(this.#evalFunction(dot, n, n, null, MISSING), p);
      case 'chain': return this.#validateType(this.#evalChainNode(dot, n, null, MISSING), p);
    }
    switch (p.literal) {
      case 'bool':
        if (n.type === 'bool') return n.value;
        return this.#errorf(`expected bool; found ${nodeString(n)}`);
      case 'float':
        if (n.type === 'number' && n.isFloat) return new GoFloat(n.float);
        return this.#errorf(`expected float; found ${nodeString(n)}`);
      case 'int':
        if (n.type === 'number' && n.isInt) return goInt('int', n.int);
        return this.#errorf(`expected integer; found ${nodeString(n)}`);
      case 'string':
        if (n.type === 'string') return n.text;
        return this.#errorf(`expected string; found ${nodeString(n)}`);
      case 'any':
        switch (n.type) {
          case 'bool': return n.value;
          case 'number': return this.#idealConstant(n);
          case 'string': return n.text;
        }
    }
    return this.#errorf(`can't handle ${nodeString(n)} for arg of type ${p.go}`);
  }
}
