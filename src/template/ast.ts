// Parse-tree nodes of Go text/template and their Go `String()` renderings (used verbatim in error contexts).

/** Offset of a node in the template text (UTF-16 index; converted to Go's byte columns only for messages). */
export type Pos = number;

export interface ListNode { readonly type: 'list'; readonly pos: Pos; readonly nodes: Node[] }
export interface TextNode { readonly type: 'text'; readonly pos: Pos; readonly text: string }
export interface ActionNode { readonly type: 'action'; readonly pos: Pos; readonly pipe: PipeNode }
export interface CommentNode { readonly type: 'comment'; readonly pos: Pos }
export interface BreakNode { readonly type: 'break'; readonly pos: Pos }
export interface ContinueNode { readonly type: 'continue'; readonly pos: Pos }

export interface PipeNode {
  readonly type: 'pipe';
  readonly pos: Pos;
  /** `$x = …` rather than `$x := …`. */
  isAssign: boolean;
  readonly decl: VariableNode[];
  readonly cmds: CommandNode[];
}

export interface CommandNode { readonly type: 'command'; readonly pos: Pos; readonly args: ArgNode[] }

export interface IdentifierNode { readonly type: 'identifier'; readonly pos: Pos; readonly ident: string }
/** `.A.B` → ident ['A', 'B']. */
export interface FieldNode { readonly type: 'field'; readonly pos: Pos; readonly ident: readonly string[] }
/** `$x.A` → ident ['$x', 'A']. */
export interface VariableNode { readonly type: 'variable'; readonly pos: Pos; readonly ident: readonly string[] }
/** `(pipeline).A.B`. */
export interface ChainNode { readonly type: 'chain'; readonly pos: Pos; readonly node: ArgNode; readonly field: readonly string[] }
export interface DotNode { readonly type: 'dot'; readonly pos: Pos }
export interface NilNode { readonly type: 'nil'; readonly pos: Pos }
export interface BoolNode { readonly type: 'bool'; readonly pos: Pos; readonly value: boolean }
export interface NumberNode {
  readonly type: 'number';
  readonly pos: Pos;
  readonly text: string;
  readonly isInt: boolean;
  readonly isUint: boolean;
  readonly isFloat: boolean;
  /** The exact integer value when isInt or isUint. */
  readonly int: bigint;
  readonly float: number;
}
export interface StringNode { readonly type: 'string'; readonly pos: Pos; readonly quoted: string; readonly text: string }

export type ArgNode =
  | IdentifierNode | FieldNode | VariableNode | ChainNode | DotNode | NilNode | BoolNode | NumberNode | StringNode | PipeNode;

export interface BranchNode<T extends 'if' | 'range' | 'with'> {
  readonly type: T;
  readonly pos: Pos;
  readonly pipe: PipeNode;
  readonly list: ListNode;
  readonly elseList: ListNode | undefined;
}
export type IfNode = BranchNode<'if'>;
export type RangeNode = BranchNode<'range'>;
export type WithNode = BranchNode<'with'>;

export interface TemplateNode { readonly type: 'template'; readonly pos: Pos; readonly name: string; readonly pipe: PipeNode | undefined }

/** Parser-internal markers: they end an item list and never reach a tree. */
export interface EndNode { readonly type: 'end'; readonly pos: Pos }
export interface ElseNode { readonly type: 'else'; readonly pos: Pos }

export type Node =
  | ListNode | TextNode | ActionNode | CommentNode | BreakNode | ContinueNode | IfNode | RangeNode | WithNode
  | TemplateNode | PipeNode | CommandNode | ArgNode;

/** Go's `(*parse.X).String()`, which text/template prints inside `executing "…" at <…>`. */
export function nodeString(n: Node | EndNode | ElseNode): string {
  switch (n.type) {
    case 'list': return n.nodes.map(nodeString).join('');
    case 'text': return n.text;
    case 'action': return `{{${nodeString(n.pipe)}}}`;
    case 'comment': return '{{/* */}}';
    case 'break': return '{{break}}';
    case 'continue': return '{{continue}}';
    case 'end': return '{{end}}';
    case 'else': return '{{else}}';
    case 'pipe': {
      let s = '';
      if (n.decl.length > 0) s = n.decl.map(nodeString).join(', ') + (n.isAssign ? ' = ' : ' := ');
      return s + n.cmds.map(nodeString).join(' | ');
    }
    case 'command': return n.args.map((a) => (a.type === 'pipe' ? `(${nodeString(a)})` : nodeString(a))).join(' ');
    case 'identifier': return n.ident;
    case 'field': return n.ident.map((f) => `.${f}`).join('');
    case 'variable': return n.ident.join('.');
    case 'chain': {
      const head = n.node.type === 'pipe' ? `(${nodeString(n.node)})` : nodeString(n.node);
      return head + n.field.map((f) => `.${f}`).join('');
    }
    case 'dot': return '.';
    case 'nil': return 'nil';
    case 'bool': return n.value ? 'true' : 'false';
    case 'number': return n.text;
    case 'string': return n.quoted;
    case 'if':
    case 'range':
    case 'with': {
      const elsePart = n.elseList ? `{{else}}${nodeString(n.elseList)}` : '';
      return `{{${n.type} ${nodeString(n.pipe)}}}${nodeString(n.list)}${elsePart}{{end}}`;
    }
    case 'template': {
      const name = JSON.stringify(n.name);
      return n.pipe ? `{{template ${name} ${nodeString(n.pipe)}}}` : `{{template ${name}}}`;
    }
  }
}
