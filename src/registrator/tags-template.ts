/**
 * registrator master runs `-tags` as a Go text/template against the container's inspect object
 * before splitting it on commas. This is the subset that -tags needs: text, `{{ pipeline }}` actions
 * (with `{{-`/`-}}` trimming), field chains (`.Config.Labels`, `.ID`), string/raw/number literals,
 * parenthesised pipelines, `|`, and registrator's helper functions plus Go's `index`, `len`, `print`.
 * Control structures (if/range/with/define) and `httpGet` are rejected when the flag is parsed.
 */
import type { RE2JS } from 're2js';
import { SwitchyardError } from '../core/errors.js';
import { compileGoRegexp, goMatch } from '../core/goregexp.js';

type Value = unknown;

type Node =
  | { kind: 'field'; path: string[] }
  | { kind: 'dot' }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'pipe'; cmds: Command[] }
  | { kind: 'ident'; name: string };

interface Command {
  args: Node[];
}

type Part = { kind: 'text'; text: string } | { kind: 'action'; pipe: Command[] };

const bad = (msg: string): never => {
  throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `-tags template: ${msg}`);
};

type Fn = (...args: Value[]) => Value;

const str = (v: Value, fn: string): string => {
  if (typeof v !== 'string') bad(`${fn}: expected a string, got ${describe(v)}`);
  return v as string;
};
const int = (v: Value, fn: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v)) bad(`${fn}: expected an integer, got ${describe(v)}`);
  return v as number;
};
const strs = (v: Value, fn: string): string[] => {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) bad(`${fn}: expected a list of strings, got ${describe(v)}`);
  return (v as unknown[]).map((x) => str(x, fn));
};
const describe = (v: Value): string => (v === null || v === undefined ? '<no value>' : Array.isArray(v) ? 'a list' : typeof v);

function pickIndex(i: number, l: readonly string[]): string {
  if (l.length === 0) return '';
  if (i < 0) {
    const j = -i;
    return j >= l.length ? (l[0] as string) : (l[l.length - j] as string);
  }
  return i >= l.length ? (l[l.length - 1] as string) : (l[i] as string);
}

const FUNCS: Readonly<Record<string, Fn>> = {
  strSlice: (v, ...i) => {
    const s = str(v, 'strSlice');
    const n = i.map((x) => int(x, 'strSlice'));
    if (n.length === 1 && s.length >= (n[0] as number)) return s.slice(n[0]);
    if (n.length === 2) {
      const [a, b] = n as [number, number];
      if (s.length >= a && s.length >= b) {
        if (a === 0) return s.slice(0, b);
        if (b < a) return s.slice(a);
        return s.slice(a, b);
      }
    }
    return s;
  },
  sIndex: (i, s) => pickIndex(int(i, 'sIndex'), strs(s, 'sIndex')),
  mIndex: (k, m) => {
    const key = str(k, 'mIndex');
    if (m === null || m === undefined) return '';
    if (typeof m !== 'object' || Array.isArray(m)) bad(`mIndex: expected a map, got ${describe(m)}`);
    const v = (m as Record<string, unknown>)[key];
    return typeof v === 'string' ? v : '';
  },
  toUpper: (v) => str(v, 'toUpper').toUpperCase(),
  toLower: (v) => str(v, 'toLower').toLowerCase(),
  replace: (n, o, nw, v) => {
    const count = int(n, 'replace');
    const s = str(v, 'replace');
    const from = str(o, 'replace');
    const to = str(nw, 'replace');
    if (count < 0) return s.split(from).join(to);
    let out = s;
    let pos = 0;
    for (let k = 0; k < count; k++) {
      const at = out.indexOf(from, pos);
      if (at < 0) break;
      out = out.slice(0, at) + to + out.slice(at + from.length);
      pos = at + to.length + (from === '' ? 1 : 0);
    }
    return out;
  },
  join: (sep, s) => strs(s, 'join').join(str(sep, 'join')),
  split: (sep, v) => str(v, 'split').split(str(sep, 'split')),
  splitIndex: (i, sep, v) => pickIndex(int(i, 'splitIndex'), str(v, 'splitIndex').split(str(sep, 'splitIndex'))),
  matchFirstElement: (r, s) => {
    const re = regex(str(r, 'matchFirstElement'));
    return strs(s, 'matchFirstElement').find((e) => goMatch(re, e)) ?? '';
  },
  matchAllElements: (r, s) => {
    const re = regex(str(r, 'matchAllElements'));
    return strs(s, 'matchAllElements').filter((e) => goMatch(re, e));
  },
  jsonParse: (b, k) => {
    let cur: unknown;
    try {
      cur = JSON.parse(str(b, 'jsonParse'));
    } catch {
      return '';
    }
    for (const key of str(k, 'jsonParse').split('::')) {
      if (cur === null || typeof cur !== 'object') return '';
      cur = Array.isArray(cur) ? cur[Number(key.replace(/^\[|\]$/g, ''))] : (cur as Record<string, unknown>)[key];
    }
    return typeof cur === 'string' ? cur : cur === undefined ? '' : JSON.stringify(cur);
  },
  index: (m, ...keys) => {
    let cur: unknown = m;
    for (const k of keys) {
      if (cur === null || cur === undefined) return undefined;
      if (Array.isArray(cur)) cur = cur[int(k, 'index')];
      else if (Object.hasOwn(cur, String(k))) cur = (cur as Record<string, unknown>)[String(k)];
      // Go's index gives the map's zero value for a missing key: "" for a map of strings (Labels).
      else cur = Object.values(cur).every((v) => typeof v === 'string') ? '' : undefined;
    }
    return cur;
  },
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    return bad(`len of ${describe(v)}`);
  },
  print: (...vs) => vs.map(format).join(''),
};

/**
 * Go's regexp, as registrator has it: RE2 syntax (`(?P<name>…)`, `\\z`; no lookaround, no
 * backreferences) matched in linear time. The elements matched are the container's env and labels,
 * which whoever starts a container chooses; on a backtracking engine `^(a+)+$` against one such
 * value would stall every registration for as long as the attacker liked.
 */
function regex(src: string): RE2JS {
  try {
    return compileGoRegexp(src);
  } catch (err) {
    return bad(`bad regular expression ${JSON.stringify(src)}: ${(err as Error).message}`);
  }
}

/** Go's fmt %v, for the values a -tags template produces. */
function format(v: Value): string {
  if (v === null || v === undefined) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(format).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${format(o[k])}`).join(' ')}]`;
  }
  return String(v);
}

// ---- lexer/parser -------------------------------------------------------------------------------

function splitParts(src: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      parts.push({ kind: 'text', text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src.startsWith('- ', start) || src.startsWith('-\t', start) || src.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) parts.push({ kind: 'text', text });
    const close = findClose(src, start);
    let inner = src.slice(start, close);
    let next = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      while (next < src.length && /\s/.test(src[next] as string)) next++;
    }
    const trimmed = inner.trim();
    if (trimmed.startsWith('/*')) {
      i = next;
      continue;
    }
    parts.push({ kind: 'action', pipe: parsePipeline(tokenize(trimmed)) });
    i = next;
  }
  return parts;
}

function findClose(src: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === '`') {
      const q = c;
      i++;
      while (i < src.length && src[i] !== q) i += src[i] === '\\' && q === '"' ? 2 : 1;
      i++;
      continue;
    }
    if (src.startsWith('}}', i)) return i;
    i++;
  }
  return bad('unclosed action');
}

type Token = { t: 'str' | 'num' | 'field' | 'ident' | 'pipe' | 'lp' | 'rp' | 'dot'; v: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      out.push({ t: 'pipe', v: c });
      i++;
    } else if (c === '(') {
      out.push({ t: 'lp', v: c });
      i++;
    } else if (c === ')') {
      out.push({ t: 'rp', v: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      while (j < s.length && s[j] !== '"') {
        if (s[j] === '\\') {
          const e = s[j + 1];
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : (e ?? '');
          j += 2;
        } else {
          v += s[j];
          j++;
        }
      }
      if (j >= s.length) bad('unterminated string');
      out.push({ t: 'str', v });
      i = j + 1;
    } else if (c === '`') {
      const j = s.indexOf('`', i + 1);
      if (j < 0) bad('unterminated raw string');
      out.push({ t: 'str', v: s.slice(i + 1, j) });
      i = j + 1;
    } else if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?[0-9]+/.exec(s.slice(i));
      if (!m) return bad(`unexpected ${JSON.stringify(c)}`);
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (c === '.') {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_]*)+/.exec(s.slice(i));
      if (m) {
        out.push({ t: 'field', v: m[0] });
        i += m[0].length;
      } else {
        out.push({ t: 'dot', v: '.' });
        i++;
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i)) as RegExpExecArray;
      out.push({ t: 'ident', v: m[0] });
      i += m[0].length;
    } else if (c === '$') {
      return bad('variables are not supported');
    } else {
      return bad(`unexpected ${JSON.stringify(c)}`);
    }
  }
  return out;
}

const REGEXP_FUNCS = new Set(['matchFirstElement', 'matchAllElements']);

/** A literal pattern is compiled now, so a bad one stops the flag instead of every registration. */
function command(args: Node[]): Command {
  const [fn, pattern] = args;
  if (fn?.kind === 'ident' && REGEXP_FUNCS.has(fn.name) && pattern?.kind === 'string') regex(pattern.value);
  return { args };
}

function parsePipeline(tokens: Token[]): Command[] {
  let pos = 0;
  const pipeline = (): Command[] => {
    const cmds: Command[] = [];
    let args: Node[] = [];
    while (pos < tokens.length) {
      const tk = tokens[pos] as Token;
      if (tk.t === 'rp') break;
      pos++;
      if (tk.t === 'pipe') {
        if (args.length === 0) bad('missing command before |');
        cmds.push(command(args));
        args = [];
        continue;
      }
      if (tk.t === 'lp') {
        const inner = pipeline();
        if (tokens[pos]?.t !== 'rp') bad('unclosed (');
        pos++;
        args.push({ kind: 'pipe', cmds: inner });
      } else if (tk.t === 'str') args.push({ kind: 'string', value: tk.v });
      else if (tk.t === 'num') args.push({ kind: 'number', value: Number(tk.v) });
      else if (tk.t === 'field') args.push({ kind: 'field', path: tk.v.slice(1).split('.') });
      else if (tk.t === 'dot') args.push({ kind: 'dot' });
      else if (tk.v === 'true' || tk.v === 'false') args.push({ kind: 'bool', value: tk.v === 'true' });
      else if (['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'nil'].includes(tk.v)) bad(`"${tk.v}" is not supported`);
      else if (tk.v === 'httpGet') bad('httpGet is not supported');
      else if (!Object.hasOwn(FUNCS, tk.v)) bad(`function "${tk.v}" not defined`);
      else args.push({ kind: 'ident', name: tk.v });
    }
    if (args.length === 0) bad(cmds.length === 0 ? 'empty action' : 'missing command after |');
    cmds.push(command(args));
    return cmds;
  };
  const cmds = pipeline();
  if (pos < tokens.length) bad('unexpected )');
  return cmds;
}

// ---- evaluation ---------------------------------------------------------------------------------

function field(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const name of path) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    const o = cur as Record<string, unknown>;
    if (Object.hasOwn(o, name)) cur = o[name];
    else {
      // go-dockerclient's struct fields (ID, IPAddress…) vs the Engine API's JSON names (Id…).
      const k = Object.keys(o).find((x) => x.toLowerCase() === name.toLowerCase());
      cur = k === undefined ? undefined : o[k];
    }
  }
  return cur;
}

function evalNode(n: Node, dot: unknown): Value {
  switch (n.kind) {
    case 'field': return field(dot, n.path);
    case 'dot': return dot;
    case 'string': return n.value;
    case 'number': return n.value;
    case 'bool': return n.value;
    case 'pipe': return evalPipe(n.cmds, dot);
    case 'ident': return (FUNCS[n.name] as Fn)();
  }
}

function evalPipe(cmds: readonly Command[], dot: unknown): Value {
  let prev: Value;
  let first = true;
  for (const cmd of cmds) {
    const [head, ...rest] = cmd.args as [Node, ...Node[]];
    const extra = first ? [] : [prev];
    if (head.kind === 'ident') {
      prev = (FUNCS[head.name] as Fn)(...rest.map((a) => evalNode(a, dot)), ...extra);
    } else {
      if (rest.length > 0 || extra.length > 0) bad('can\'t give arguments to a non-function');
      prev = evalNode(head, dot);
    }
    first = false;
  }
  return prev;
}

export type TagsTemplate = (container: unknown) => string;

/** Parses `-tags` once (bad syntax → SY_ERR_INVALID_ARGUMENT naming -tags); the result renders it per container. */
export function compileTagsTemplate(src: string): TagsTemplate {
  if (!src.includes('{{')) return () => src;
  const parts = splitParts(src);
  return (container) => parts.map((p) => (p.kind === 'text' ? p.text : format(evalPipe(p.pipe, container)))).join('');
}
