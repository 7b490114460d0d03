// Parser from tokens to trees, a port of text/template/parse/parse.go including its error wording.
import type {
  ActionNode, ArgNode, CommandNode, ElseNode, EndNode, ListNode, Node, NumberNode, PipeNode, TemplateNode, VariableNode,
} from './ast.js';
import { nodeString } from './ast.js';
import { charColumnAt, lineAt, TemplateError } from './errors.js';
import type { Token, TokenType } from './lexer.js';
import { lex, tokenString } from './lexer.js';
import { goUnquote, parseGoFloat } from './strconv.js';

export interface Tree {
  readonly name: string;
  readonly root: ListNode;
}

/** A parsed template: the top-level tree plus every {{define}}/{{block}} tree, all sharing one source text. */
export interface ParsedTemplate {
  readonly name: string;
  readonly text: string;
  readonly trees: ReadonlyMap<string, Tree>;
}

export interface ParseOptions {
  readonly name: string;
  readonly leftDelim?: string;
  readonly rightDelim?: string;
  /** Whether an identifier names a function; Go rejects unknown functions at parse time. */
  readonly hasFunction: (name: string) => boolean;
  /** Extra text for a function that exists in consul-template but not here. */
  readonly unsupportedFunction?: (name: string) => string | undefined;
}

export function parseTemplate(text: string, opts: ParseOptions): ParsedTemplate {
  const trees = new Map<string, Tree>();
  new Parser(text, opts, trees).parseTop();
  return { name: opts.name, text, trees };
}

type Item = Node | EndNode | ElseNode;

class Parser {
  readonly #text: string;
  readonly #opts: ParseOptions;
  readonly #trees: Map<string, Tree>;
  readonly #tokens: Token[];
  #i = 0;
  #vars: string[] = ['$'];
  #rangeDepth = 0;
  #parenDepth = 0;
  #actionStart: Token | undefined;
  #last: Token;

  constructor(text: string, opts: ParseOptions, trees: Map<string, Tree>) {
    this.#text = text;
    this.#opts = opts;
    this.#trees = trees;
    this.#tokens = lex(text, opts.leftDelim, opts.rightDelim);
    this.#last = this.#tokens[0] as Token;
  }

  // ---- token stream -------------------------------------------------------------------------------

  #next(): Token {
    const t = this.#tokens[Math.min(this.#i, this.#tokens.length - 1)] as Token;
    this.#i++;
    this.#last = t;
    return t;
  }

  #backup(): void {
    this.#i--;
  }

  #peek(): Token {
    const t = this.#tokens[Math.min(this.#i, this.#tokens.length - 1)] as Token;
    this.#last = t;
    return t;
  }

  #nextNonSpace(): Token {
    let t: Token;
    do t = this.#next();
    while (t.type === 'space');
    return t;
  }

  #peekNonSpace(): Token {
    const t = this.#nextNonSpace();
    this.#backup();
    return t;
  }

  // ---- errors -------------------------------------------------------------------------------------

  #errorf(message: string, at: Token | number = this.#last): never {
    const pos = typeof at === 'number' ? at : at.pos;
    const line = lineAt(this.#text, pos);
    const column = charColumnAt(this.#text, pos);
    throw new TemplateError('parse', `template: ${this.#opts.name}:${line}:${column}: ${message}`, {
      template: this.#opts.name, line, column,
    });
  }

  #unexpected(token: Token, context: string): never {
    if (token.type === 'error') {
      let extra = '';
      const started = this.#actionStart;
      if (started) {
        const actionLine = lineAt(this.#text, started.pos);
        if (actionLine !== lineAt(this.#text, token.pos)) {
          extra = ` in action started at ${this.#opts.name}:${actionLine}`;
          if (token.val.endsWith(' action')) extra = extra.slice(' in action'.length);
        }
      }
      this.#errorf(`${token.val}${extra}`, token);
    }
    this.#errorf(`unexpected ${tokenString(token)} in ${context}`, token);
  }

  #expect(type: TokenType, context: string): Token {
    const t = this.#nextNonSpace();
    if (t.type !== type) this.#unexpected(t, context);
    return t;
  }

  // ---- trees --------------------------------------------------------------------------------------

  parseTop(): void {
    const root: ListNode = { type: 'list', pos: this.#peek().pos, nodes: [] };
    while (this.#peek().type !== 'eof') {
      if (this.#peek().type === 'leftDelim') {
        const save = this.#i;
        this.#next();
        if (this.#nextNonSpace().type === 'define') {
          this.#withFreshScope(() => this.#parseDefinition());
          continue;
        }
        this.#i = save;
      }
      const n = this.#textOrAction();
      if (n.type === 'end' || n.type === 'else') this.#errorf(`unexpected ${nodeString(n)}`, n.pos);
      root.nodes.push(n);
    }
    this.#add({ name: this.#opts.name, root });
  }

  #withFreshScope<T>(fn: () => T): T {
    const vars = this.#vars;
    const depth = this.#rangeDepth;
    this.#vars = ['$'];
    this.#rangeDepth = 0;
    try {
      return fn();
    } finally {
      this.#vars = vars;
      this.#rangeDepth = depth;
    }
  }

  /** `at` is the name token of a {{define}}/{{block}}, where a duplicate is reported. */
  #add(tree: Tree, at: Token | number = 0): void {
    const existing = this.#trees.get(tree.name);
    if (!existing || isEmptyTree(existing.root)) {
      this.#trees.set(tree.name, tree);
      return;
    }
    if (!isEmptyTree(tree.root)) this.#errorf(`template: multiple definition of template ${JSON.stringify(tree.name)}`, at);
  }

  #parseDefinition(): void {
    const context = 'define clause';
    const nameTok = this.#nextNonSpace();
    if (nameTok.type !== 'string' && nameTok.type !== 'rawString') this.#unexpected(nameTok, context);
    const name = this.#unquoteString(nameTok);
    this.#expect('rightDelim', context);
    const [root, end] = this.#itemList();
    if (end.type !== 'end') this.#errorf(`unexpected ${nodeString(end)} in ${context}`, end.pos);
    this.#add({ name, root }, nameTok);
  }

  #itemList(): [ListNode, EndNode | ElseNode] {
    const list: ListNode = { type: 'list', pos: this.#peekNonSpace().pos, nodes: [] };
    while (this.#peekNonSpace().type !== 'eof') {
      const n = this.#textOrAction();
      if (n.type === 'end' || n.type === 'else') return [list, n];
      list.nodes.push(n);
    }
    this.#errorf('unexpected EOF');
  }

  #textOrAction(): Item {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case 'text':
        return { type: 'text', pos: token.pos, text: token.val };
      case 'leftDelim': {
        const outer = this.#actionStart;
        this.#actionStart = token;
        try {
          return this.#action();
        } finally {
          this.#actionStart = outer;
        }
      }
      default:
        this.#unexpected(token, 'input');
    }
  }

  #action(): Item {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case 'block': return this.#blockControl();
      case 'break': return this.#loopControl('break', token);
      case 'continue': return this.#loopControl('continue', token);
      case 'else': return this.#elseControl(token);
      case 'end':
        this.#expect('rightDelim', 'end');
        // Go positions {{end}} at its closing delimiter; the keyword is the better place to point at.
        return { type: 'end', pos: token.pos };
      case 'if': return this.#branch('if');
      case 'range': return this.#branch('range');
      case 'template': return this.#templateControl();
      case 'with': return this.#branch('with');
    }
    this.#backup();
    const t = this.#peek();
    // Variables declared by a plain action stay in scope until the enclosing {{end}}.
    const action: ActionNode = { type: 'action', pos: t.pos, pipe: this.#pipeline('command', 'rightDelim') };
    return action;
  }

  #loopControl(kind: 'break' | 'continue', token: Token): Node {
    const t = this.#nextNonSpace();
    if (t.type !== 'rightDelim') this.#unexpected(t, `{{${kind}}}`);
    if (this.#rangeDepth === 0) this.#errorf(`{{${kind}}} outside {{range}}`, token);
    return { type: kind, pos: token.pos };
  }

  #elseControl(token: Token): ElseNode {
    const peek = this.#peekNonSpace();
    // "{{else if …" / "{{else with …" leave the keyword pending for the enclosing control to chain.
    if (peek.type === 'if' || peek.type === 'with') return { type: 'else', pos: token.pos };
    this.#expect('rightDelim', 'else');
    return { type: 'else', pos: token.pos };
  }

  #branch(context: 'if' | 'range' | 'with'): Node {
    const mark = this.#vars.length;
    try {
      const pipe = this.#pipeline(context, 'rightDelim');
      if (context === 'range') this.#rangeDepth++;
      const [list, first] = this.#itemList();
      let next = first;
      if (context === 'range') this.#rangeDepth--;
      let elseList: ListNode | undefined;
      if (next.type === 'else') {
        if ((context === 'if' && this.#peek().type === 'if') || (context === 'with' && this.#peek().type === 'with')) {
          this.#next();
          // {{else if b}}…{{end}} is {{else}}{{if b}}…{{end}}{{end}} with the outer {{end}} implied.
          elseList = { type: 'list', pos: next.pos, nodes: [this.#branch(context)] };
        } else {
          [elseList, next] = this.#itemList();
          if (next.type !== 'end') this.#errorf(`expected end; found ${nodeString(next)}`, next.pos);
        }
      }
      return { type: context, pos: pipe.pos, pipe, list, elseList };
    } finally {
      this.#vars.length = mark;
    }
  }

  #blockControl(): TemplateNode {
    const context = 'block clause';
    const token = this.#nextNonSpace();
    const name = this.#templateName(token, context);
    const pipe = this.#pipeline(context, 'rightDelim');
    this.#withFreshScope(() => {
      const [root, end] = this.#itemList();
      if (end.type !== 'end') this.#errorf(`unexpected ${nodeString(end)} in ${context}`, end.pos);
      this.#add({ name, root }, token);
    });
    return { type: 'template', pos: token.pos, name, pipe };
  }

  #templateControl(): TemplateNode {
    const context = 'template clause';
    const token = this.#nextNonSpace();
    const name = this.#templateName(token, context);
    let pipe: PipeNode | undefined;
    if (this.#nextNonSpace().type !== 'rightDelim') {
      this.#backup();
      pipe = this.#pipeline(context, 'rightDelim');
    }
    return { type: 'template', pos: token.pos, name, pipe };
  }

  #templateName(token: Token, context: string): string {
    if (token.type !== 'string' && token.type !== 'rawString') this.#unexpected(token, context);
    return this.#unquoteString(token);
  }

  #unquoteString(token: Token): string {
    try {
      const s = goUnquote(token.val);
      if (typeof s === 'string') return s;
    } catch {
      // reported below with Go's wording
    }
    this.#errorf('invalid syntax', token);
  }

  // ---- pipelines ----------------------------------------------------------------------------------

  #pipeline(context: string, end: 'rightDelim' | 'rightParen'): PipeNode {
    const pipe: PipeNode = { type: 'pipe', pos: this.#peekNonSpace().pos, isAssign: false, decl: [], cmds: [] };
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.type !== 'variable') break;
      const save = this.#i;
      this.#next();
      const next = this.#peekNonSpace();
      if (next.type === 'assign' || next.type === 'declare') {
        pipe.isAssign = next.type === 'assign';
        this.#nextNonSpace();
        pipe.decl.push(this.#variableNode(v.pos, v.val));
        this.#vars.push(v.val);
        break;
      }
      if (next.type === 'char' && next.val === ',') {
        this.#nextNonSpace();
        pipe.decl.push(this.#variableNode(v.pos, v.val));
        this.#vars.push(v.val);
        if (context === 'range' && pipe.decl.length < 2) {
          const after = this.#peekNonSpace();
          if (after.type === 'variable' || after.type === 'rightDelim' || after.type === 'rightParen') continue;
          this.#errorf('range can only initialize variables', after);
        }
        this.#errorf(`too many declarations in ${context}`, next);
      }
      this.#i = save;
      break;
    }
    for (;;) {
      const token = this.#nextNonSpace();
      switch (token.type) {
        case end:
          this.#checkPipeline(pipe, context, token);
          return pipe;
        case 'bool': case 'charConstant': case 'complex': case 'dot': case 'field': case 'identifier':
        case 'number': case 'nil': case 'rawString': case 'string': case 'variable': case 'leftParen':
          this.#backup();
          pipe.cmds.push(this.#command());
          break;
        default:
          this.#unexpected(token, context);
      }
    }
  }

  #checkPipeline(pipe: PipeNode, context: string, at: Token): void {
    if (pipe.cmds.length === 0) this.#errorf(`missing value for ${context}`, at);
    pipe.cmds.slice(1).forEach((c, i) => {
      const first = c.args[0] as ArgNode;
      if (['bool', 'dot', 'nil', 'number', 'string'].includes(first.type)) {
        this.#errorf(`non executable command in pipeline stage ${i + 2}`, first.pos);
      }
    });
  }

  #command(): CommandNode {
    const cmd: CommandNode = { type: 'command', pos: this.#peekNonSpace().pos, args: [] };
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand) cmd.args.push(operand);
      const token = this.#next();
      if (token.type === 'space') continue;
      if (token.type === 'rightDelim' || token.type === 'rightParen') this.#backup();
      else if (token.type !== 'pipe') this.#unexpected(token, 'operand');
      break;
    }
    if (cmd.args.length === 0) this.#errorf('empty command');
    return cmd;
  }

  #operand(): ArgNode | undefined {
    const node = this.#term();
    if (!node) return undefined;
    if (this.#peek().type !== 'field') return node;
    // Go positions a chain at its first trailing field, and so do its error columns.
    const chainPos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().type === 'field') fields.push(this.#next().val.slice(1));
    switch (node.type) {
      case 'field':
        return { type: 'field', pos: chainPos, ident: [...node.ident, ...fields] };
      case 'variable':
        return { type: 'variable', pos: chainPos, ident: [...node.ident, ...fields] };
      case 'bool': case 'string': case 'number': case 'nil': case 'dot':
        return this.#errorf(`unexpected . after term ${JSON.stringify(nodeString(node))}`, chainPos);
      default:
        return { type: 'chain', pos: chainPos, node, field: fields };
    }
  }

  #term(): ArgNode | undefined {
    const token = this.#nextNonSpace();
    switch (token.type) {
      case 'identifier': {
        if (!this.#opts.hasFunction(token.val)) {
          const why = this.#opts.unsupportedFunction?.(token.val);
          this.#errorf(why ?? `function ${JSON.stringify(token.val)} not defined`, token);
        }
        return { type: 'identifier', pos: token.pos, ident: token.val };
      }
      case 'dot': return { type: 'dot', pos: token.pos };
      case 'nil': return { type: 'nil', pos: token.pos };
      case 'variable': {
        const v = this.#variableNode(token.pos, token.val);
        if (!this.#vars.includes(v.ident[0] as string)) this.#errorf(`undefined variable ${JSON.stringify(v.ident[0])}`, token);
        return v;
      }
      case 'field': return { type: 'field', pos: token.pos, ident: [token.val.slice(1)] };
      case 'bool': return { type: 'bool', pos: token.pos, value: token.val === 'true' };
      case 'charConstant': case 'complex': case 'number':
        return this.#number(token);
      case 'leftParen': {
        if (this.#parenDepth >= 10000) this.#errorf('max expression depth exceeded', token);
        this.#parenDepth++;
        try {
          return this.#pipeline('parenthesized pipeline', 'rightParen');
        } finally {
          this.#parenDepth--;
        }
      }
      case 'string': case 'rawString':
        return { type: 'string', pos: token.pos, quoted: token.val, text: this.#unquoteString(token) };
    }
    this.#backup();
    return undefined;
  }

  #variableNode(pos: number, text: string): VariableNode {
    return { type: 'variable', pos, ident: text.split('.') };
  }

  #number(token: Token): NumberNode {
    const text = token.val;
    const base = { type: 'number' as const, pos: token.pos, text };
    if (token.type === 'charConstant') {
      let r: string | number;
      try {
        r = goUnquote(text);
      } catch {
        this.#errorf(`malformed character constant: ${text}`, token);
      }
      const cp = r as number;
      return { ...base, isInt: true, isUint: true, isFloat: true, int: BigInt(cp), float: cp };
    }
    if (token.type === 'complex' || text.endsWith('i')) this.#errorf(`complex constants are not supported: ${text}`, token);
    const i = parseIntBase0(text);
    if (i !== undefined) {
      if (i > 9223372036854775807n || i < -9223372036854775808n) {
        if (i >= 0n && i <= 18446744073709551615n) return { ...base, isInt: false, isUint: true, isFloat: true, int: i, float: Number(i) };
        this.#errorf(`integer overflow: ${text}`, token);
      }
      return { ...base, isInt: true, isUint: i >= 0n, isFloat: true, int: i, float: Number(i) };
    }
    const f = parseGoFloat(text.replace(/_/g, ''));
    if (f.ok) {
      if (!/[.eEpP]/.test(text)) this.#errorf(`integer overflow: ${text}`, token);
      const integral = Number.isInteger(f.value) && Math.abs(f.value) < 2 ** 63;
      return { ...base, isInt: integral, isUint: integral && f.value >= 0, isFloat: true, int: integral ? BigInt(f.value) : 0n, float: f.value };
    }
    this.#errorf(`illegal number syntax: ${JSON.stringify(text)}`, token);
  }
}

/** strconv.ParseInt(text, 0, 64) syntax: sign, 0x/0o/0b prefixes, legacy leading-0 octal, underscores. */
function parseIntBase0(text: string): bigint | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(text);
  if (!m) return undefined;
  let body = m[2] as string;
  if (body.includes('_')) {
    // Underscores must separate digits (or follow a base prefix), as Go's underscoreOK demands.
    if (/__|_$/.test(body) || (/^[1-9]/.test(body) === false && /^0[0-7]/.test(body) === false && !/^0[xXoObB]/.test(body))) return undefined;
    body = body.replace(/_/g, '');
  }
  let v: bigint;
  if (/^0[xX]/.test(body)) v = BigInt(`0x${body.slice(2)}`);
  else if (/^0[oO]/.test(body)) v = BigInt(`0o${body.slice(2)}`);
  else if (/^0[bB]/.test(body)) v = BigInt(`0b${body.slice(2)}`);
  else if (body.length > 1 && body.startsWith('0')) v = BigInt(`0o${body.slice(1)}`);
  else v = BigInt(body);
  return m[1] === '-' ? -v : v;
}

/** Whether a tree holds nothing but white space, so that a later {{define}} may replace it. */
export function isEmptyTree(n: Node): boolean {
  switch (n.type) {
    case 'list': return n.nodes.every(isEmptyTree);
    case 'text': return n.text.trim() === '';
    case 'comment': return true;
    default: return false;
  }
}
