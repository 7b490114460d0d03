// Owns Consul's `?filter=` expression language (hashicorp/go-bexpr): parsing, error messages, limits and evaluation against JSON items.
import { RE2JS } from 're2js';
import { SwitchyardError } from '../../core/errors.js';

/**
 * A compiled filter: true when the item (as the endpoint returns it, PascalCase JSON) passes.
 * It carries the evaluation budget of one request: compile once per request, and expect
 * SwitchyardError('SY_ERR_FILTER_LIMIT') from a call once the budget is spent.
 */
export type FilterPredicate = (item: unknown) => boolean;

/**
 * What one request's filter may cost. The agent answers every client from one thread, so a filter
 * that took seconds would stall every other request, DNS and the health checks with it.
 */
export interface FilterLimits {
  /** Characters in the expression. */
  readonly maxLength: number;
  /** Nesting of parentheses and `not`. */
  readonly maxDepth: number;
  /** Instructions in one compiled regular expression (RE2's program size). */
  readonly maxRegexProgram: number;
  /**
   * Evaluation steps per request: a regex test costs (value length + 1) × its program size (the
   * linear engine's worst case), any other test the value length + 1, each step along a selector 1.
   */
  readonly maxSteps: number;
}

export const DEFAULT_FILTER_LIMITS: FilterLimits = Object.freeze({
  maxLength: 4096,
  maxDepth: 64,
  maxRegexProgram: 10_000,
  // About 0.3 s on the slowest regex shape measured (an NFA with ~900 states); a regex over the
  // tags of ~10,000 instances fits.
  maxSteps: 10_000_000,
});

/*
 * Grammar (go-bexpr, with the lenient extras marked *):
 *   Expr     := Or
 *   Or       := And ("or" And)*
 *   And      := Not ("and" Not)*
 *   Not      := "not" Not | "(" Or ")" | Match
 *   Match    := Selector ("==" | "!=" | "contains" | "not contains" | "matches" | "not matches") Value
 *             | Selector ("is empty" | "is not empty")
 *             | Value ("in" | "not in") Selector
 *   Selector := Ident ("." Key | "[" String "]")*     Ident = [A-Za-z_][A-Za-z0-9_]*, Key = [A-Za-z0-9_-]+ *
 *   Value    := "double-quoted" (Go escapes) | `raw` | bare word or number [A-Za-z0-9_.\-/:]+ *
 *
 * Evaluation differs from go-bexpr where bexpr relies on Go's static types, which we do not have:
 *  - Unknown selectors are not a compile error (bexpr rejects unknown struct fields up front); a path that
 *    does not exist evaluates as a missing value: `==` false, `!=` true, `is empty` true, `contains`/`in` false.
 *  - Values compare by their string form; a number field also equals a literal with the same numeric value
 *    (`Port == 80`, `Port == "80"`, `Port == 80.0`), a boolean field equals Go ParseBool spellings.
 *  - When a selector steps through an array of objects (`Checks.Status` on a health entry) the match is
 *    "any element": `==`, `contains`, `in`, `matches`, `is empty` hold if one element does; each negated
 *    form is exactly the negation (`!=` means no element equals). A numeric key (`Checks.0.Status`) indexes.
 */

const PREFIX = 'Failed to create boolean expression evaluator: ';
const MATCH_SYNTAX = 'Go RE2 syntax';
const OPERATORS = '"==", "!=", "contains", "not contains", "matches", "not matches", "in", "not in", "is empty", "is not empty"';

// Single-character classes: scanned one char at a time with non-global regexes, which keep no lastIndex state.
const IDENT_START = /[A-Za-z_]/;
const WORD = /[A-Za-z0-9_]/;
const KEY = /[A-Za-z0-9_-]/;
const BARE = /[A-Za-z0-9_.\-/:]/;
const SYMBOLS = /[=!<>~]/;
const WHITESPACE = /[ \t\r\n]/;
const NUMERIC = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;
const INDEX = /^(?:0|[1-9][0-9]*)$/;
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'",
};

type Test = (value: unknown) => boolean;

/** The right-hand literal, pre-converted once so evaluation does no parsing. */
interface Literal {
  readonly raw: string;
  readonly num: number | undefined;
  readonly bool: boolean | undefined;
}

interface Operand {
  readonly kind: 'selector' | 'value';
  readonly text: string;
  readonly path: readonly string[];
  readonly raw: string;
}

/** Spent by every test a predicate runs; shared by all the nodes of one compiled filter. */
class Budget {
  private left: number;

  constructor(private readonly limit: number) {
    this.left = limit;
  }

  charge(steps: number): void {
    this.left -= steps;
    if (this.left < 0) {
      throw new SwitchyardError('SY_ERR_FILTER_LIMIT',
        `filter evaluation exceeded its budget of ${this.limit} steps (a regex test costs (value length + 1) × the regex's compiled size): ` +
        'use a simpler expression or a narrower query');
    }
  }
}

/**
 * Compiles a filter expression for one request; the returned predicate can be called for every item.
 * Throws SwitchyardError('SY_ERR_FILTER') with `line:column (offset)` of the problem, or
 * SwitchyardError('SY_ERR_FILTER_LIMIT') naming the limit an expression exceeds.
 */
export function compileFilter(expression: string, limits: FilterLimits = DEFAULT_FILTER_LIMITS): FilterPredicate {
  if (expression.length > limits.maxLength) {
    throw new SwitchyardError('SY_ERR_FILTER_LIMIT', `${PREFIX}filter too long: ${expression.length} characters, the limit is ${limits.maxLength}`);
  }
  return new Parser(expression, limits, new Budget(limits.maxSteps)).parse();
}

class Parser {
  private readonly src: string;
  private readonly limits: FilterLimits;
  private readonly budget: Budget;
  private pos = 0;
  private depth = 0;

  constructor(src: string, limits: FilterLimits, budget: Budget) {
    this.src = src;
    this.limits = limits;
    this.budget = budget;
  }

  parse(): FilterPredicate {
    this.skipWs();
    if (this.eof()) this.fail(0, 'empty expression, expected a match expression such as Service.Tags contains "web"');
    const pred = this.parseOr('at the start');
    this.skipWs();
    if (!this.eof()) {
      if (this.src[this.pos] === ')') this.fail(this.pos, 'unmatched parentheses: ")" has no opening "("');
      this.fail(this.pos, `unexpected ${this.describe(this.pos)} after a complete expression, expected "and", "or" or end of input`);
    }
    return pred;
  }

  private parseOr(ctx: string): FilterPredicate {
    let left = this.parseAnd(ctx);
    while (this.acceptWord('or')) {
      const l = left;
      const r = this.parseAnd('after "or"');
      left = (item) => l(item) || r(item);
    }
    return left;
  }

  private parseAnd(ctx: string): FilterPredicate {
    let left = this.parseNot(ctx);
    while (this.acceptWord('and')) {
      const l = left;
      const r = this.parseNot('after "and"');
      left = (item) => l(item) && r(item);
    }
    return left;
  }

  private parseNot(ctx: string): FilterPredicate {
    if (this.acceptWord('not')) {
      this.enter();
      const inner = this.parseNot('after "not"');
      this.depth--;
      return (item) => !inner(item);
    }
    return this.parsePrimary(ctx);
  }

  /** One level deeper: bounded, so that a long run of "(" or "not" cannot exhaust the stack. */
  private enter(): void {
    if (++this.depth > this.limits.maxDepth) {
      this.fail(this.pos, `expression nested too deeply: more than ${this.limits.maxDepth} levels of parentheses and "not"`, 'SY_ERR_FILTER_LIMIT');
    }
  }

  private parsePrimary(ctx: string): FilterPredicate {
    this.skipWs();
    const start = this.pos;
    if (this.eof()) this.fail(start, `expected a match expression ${ctx}, found end of input`);
    if (this.src[start] !== '(') return this.parseMatch(ctx);
    this.enter();
    this.pos++;
    const inner = this.parseOr('after "("');
    this.depth--;
    this.skipWs();
    if (this.eof()) this.fail(this.pos, `unmatched parentheses: "(" at ${this.lineCol(start)} is never closed, expected ")"`);
    if (this.src[this.pos] !== ')') {
      this.fail(this.pos, `unexpected ${this.describe(this.pos)}, expected "and", "or" or ")" to close "(" at ${this.lineCol(start)}`);
    }
    this.pos++;
    return inner;
  }

  private parseMatch(ctx: string): FilterPredicate {
    const start = this.pos;
    const lhs = this.parseOperand();
    if (lhs === undefined) this.fail(start, `unexpected ${this.describe(start)}, expected a match expression ${ctx}`);
    this.skipWs();
    const opStart = this.pos;
    const op = this.parseOperator(lhs);

    if (op === 'in' || op === 'not in') {
      // `<Value> in <Selector>`: a selector-looking left side is a bare word value here, as in bexpr.
      this.skipWs();
      const selStart = this.pos;
      const sel = this.parseSelector();
      if (sel === undefined) this.fail(selStart, `invalid selector after "${op}": expected a selector such as Service.Tags, found ${this.describe(selStart)}`);
      return this.match(sel.path, this.containsTest(literal(lhs.raw)), op === 'not in');
    }
    if (lhs.kind === 'value') {
      this.fail(opStart, `unexpected "${op}" after the value ${JSON.stringify(lhs.raw)}: a value on the left must be followed by "in" or "not in"`);
    }
    if (op === 'is empty' || op === 'is not empty') return this.match(lhs.path, isEmpty, op === 'is not empty');

    this.skipWs();
    const valStart = this.pos;
    const raw = this.parseValue(op);
    switch (op) {
      case '==': return this.match(lhs.path, this.equalsTest(literal(raw)), false);
      case '!=': return this.match(lhs.path, this.equalsTest(literal(raw)), true);
      case 'contains': return this.match(lhs.path, this.containsTest(literal(raw)), false);
      case 'not contains': return this.match(lhs.path, this.containsTest(literal(raw)), true);
      case 'matches': return this.match(lhs.path, this.regexTest(raw, valStart, op), false);
      case 'not matches': return this.match(lhs.path, this.regexTest(raw, valStart, op), true);
    }
  }

  /** Left side of a match: a selector, or (before `in`) a quoted string, number or bare word. */
  private parseOperand(): Operand | undefined {
    const start = this.pos;
    const ch = this.src[start];
    if (ch === '"' || ch === '`') {
      const raw = this.parseString();
      return { kind: 'value', text: this.src.slice(start, this.pos), path: [], raw };
    }
    const bareEnd = this.matchAt(BARE, start);
    // `a == 1 or or ...`: a doubled or dangling keyword is a syntax error, not a field named "or".
    const word = this.peekWord();
    if ((word === 'and' || word === 'or') && bareEnd === start + word.length) return undefined;
    const sel = this.parseSelector();
    // A bare word running past what a selector allows (`my-tag`, `10.0.0.1`) can only be a value.
    if (sel !== undefined && this.pos >= bareEnd) return { kind: 'selector', text: sel.text, path: sel.path, raw: sel.text };
    if (bareEnd > start) {
      this.pos = bareEnd;
      const text = this.src.slice(start, bareEnd);
      return { kind: 'value', text, path: [], raw: text };
    }
    return undefined;
  }

  private parseOperator(lhs: Operand): '==' | '!=' | 'contains' | 'not contains' | 'in' | 'not in' | 'matches' | 'not matches' | 'is empty' | 'is not empty' {
    const start = this.pos;
    if (this.src.startsWith('==', start) || this.src.startsWith('!=', start)) {
      this.pos += 2;
      return this.src.startsWith('==', start) ? '==' : '!=';
    }
    const word = this.peekWord();
    switch (word) {
      case 'contains':
      case 'matches':
      case 'in':
        this.pos += word.length;
        return word;
      case 'is':
        this.pos += 2;
        if (this.acceptWord('empty')) return 'is empty';
        if (this.acceptWord('not') && this.acceptWord('empty')) return 'is not empty';
        this.skipWs();
        return this.fail(this.pos, `unexpected ${this.describe(this.pos)} after "is", expected "empty" or "not empty"`);
      case 'not': {
        this.pos += 3;
        this.skipWs();
        const next = this.peekWord();
        if (next === 'in' || next === 'contains' || next === 'matches') {
          this.pos += next.length;
          return `not ${next}`;
        }
        return this.fail(this.pos, `unexpected ${this.describe(this.pos)} after "not", expected "in", "contains" or "matches"`);
      }
    }
    const what = lhs.kind === 'selector' ? `selector ${lhs.text}` : `value ${lhs.text}`;
    if (this.eof()) return this.fail(start, `missing operator after ${what}, expected one of ${OPERATORS}`);
    const symbols = this.matchAt(SYMBOLS, start);
    if (symbols > start) {
      return this.fail(start, `unsupported operator "${this.src.slice(start, symbols)}" after ${what}, expected one of ${OPERATORS}`);
    }
    return this.fail(start, `unexpected ${this.describe(start)} after ${what}, expected an operator: one of ${OPERATORS}`);
  }

  /** `Ident ("." Key | "[" String "]")*`, or undefined (position unchanged) when no identifier starts here. */
  private parseSelector(): { text: string; path: string[] } | undefined {
    const start = this.pos;
    if (!IDENT_START.test(this.src.charAt(start))) return undefined;
    const identEnd = this.matchAt(WORD, start);
    const path = [this.src.slice(start, identEnd)];
    this.pos = identEnd;
    for (;;) {
      const ch = this.src[this.pos];
      if (ch === '.') {
        const keyStart = this.pos + 1;
        const keyEnd = this.matchAt(KEY, keyStart);
        if (keyEnd === keyStart) this.fail(keyStart, `invalid selector: expected a field name or map key after ".", found ${this.describe(keyStart)}`);
        path.push(this.src.slice(keyStart, keyEnd));
        this.pos = keyEnd;
      } else if (ch === '[') {
        this.pos++;
        this.skipWs();
        const q = this.src[this.pos];
        if (q !== '"' && q !== '`') this.fail(this.pos, `invalid index: expected a quoted string such as ["my-key"], found ${this.describe(this.pos)}`);
        path.push(this.parseString());
        this.skipWs();
        if (this.src[this.pos] !== ']') this.fail(this.pos, `unclosed index expression: expected "]", found ${this.describe(this.pos)}`);
        this.pos++;
      } else {
        return { text: this.src.slice(start, this.pos), path };
      }
    }
  }

  /** The right-hand value: a string literal, or a bare number/word (bexpr accepts selector-shaped words as raw values). */
  private parseValue(op: string): string {
    const start = this.pos;
    const ch = this.src[start];
    if (ch === '"' || ch === '`') return this.parseString();
    const end = this.matchAt(BARE, start);
    const text = this.src.slice(start, end);
    // `a == and b == 1` is a forgotten value, not the value "and".
    if (end === start || text === 'and' || text === 'or') this.fail(start, `missing value after "${op}", found ${this.describe(start)}`);
    this.pos = end;
    return text;
  }

  /** A "double-quoted" string with Go escapes (strconv.Unquote) or a `raw` string; the position is on the quote. */
  private parseString(): string {
    const start = this.pos;
    const src = this.src;
    if (src[start] === '`') {
      const end = src.indexOf('`', start + 1);
      if (end < 0) this.fail(start, 'unterminated string literal: expected a closing "`"');
      this.pos = end + 1;
      return src.slice(start + 1, end);
    }
    let out = '';
    let i = start + 1;
    let chunk = i;
    while (i < src.length) {
      const c = src[i];
      if (c === '"') {
        this.pos = i + 1;
        return out + src.slice(chunk, i);
      }
      if (c !== '\\') {
        i++;
        continue;
      }
      out += src.slice(chunk, i);
      const e = src[i + 1];
      if (e === undefined) break; // a backslash at the very end: the string is unterminated
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        i += 2;
      } else {
        const [digits, radix] = e === 'x' ? [2, 16] : e === 'u' ? [4, 16] : e === 'U' ? [8, 16] : e >= '0' && e <= '7' ? [3, 8] : [0, 0];
        const from = radix === 8 ? i + 1 : i + 2;
        const code = digits === 0 ? NaN : parseCode(src.slice(from, from + digits), digits, radix);
        if (Number.isNaN(code) || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) || (radix === 8 && code > 255)) {
          this.fail(i, `invalid escape sequence ${JSON.stringify(src.slice(i, Math.max(from + digits, i + 2)))} in string literal`);
        }
        out += String.fromCodePoint(code);
        i = from + digits;
      }
      chunk = i;
    }
    return this.fail(start, 'unterminated string literal: expected a closing \'"\'');
  }

  /**
   * Go's regexp package (RE2 syntax, as Consul's bexpr uses) through a linear-time engine: no
   * pattern can make a match backtrack exponentially, and Go's flags, classes and errors carry over.
   */
  private regexTest(raw: string, at: number, op: string): Test {
    let re: RE2JS;
    try {
      re = RE2JS.compile(raw);
    } catch (err) {
      return this.fail(at, `invalid regular expression ${JSON.stringify(raw)} after "${op}" (${MATCH_SYNTAX}): ${(err as Error).message}`);
    }
    const size = re.programSize();
    if (size > this.limits.maxRegexProgram) {
      this.fail(at, `regular expression ${JSON.stringify(raw.length > 60 ? `${raw.slice(0, 60)}…` : raw)} after "${op}" is too large: ` +
        `${size} instructions compiled, the limit is ${this.limits.maxRegexProgram}`, 'SY_ERR_FILTER_LIMIT');
    }
    const budget = this.budget;
    const run = (s: string): boolean => {
      budget.charge((s.length + 1) * size);
      return re.test(s);
    };
    const test = (v: unknown): boolean => (typeof v === 'string' ? run(v) : typeof v === 'number' || typeof v === 'boolean' ? run(String(v)) : false);
    return (v) => (Array.isArray(v) ? v.some(test) : test(v));
  }

  private equalsTest(lit: Literal): Test {
    const budget = this.budget;
    return (v) => {
      budget.charge(typeof v === 'string' ? v.length + 1 : 1);
      return equals(v, lit);
    };
  }

  /** Arrays: has an equal element; strings: substring; maps: has the key. `in` is the same test reversed. */
  private containsTest(lit: Literal): Test {
    const budget = this.budget;
    return (v) => {
      if (typeof v === 'string') {
        budget.charge(v.length + 1);
        return v.includes(lit.raw);
      }
      if (Array.isArray(v)) {
        budget.charge(v.length + 1);
        return v.some((e) => equals(e, lit));
      }
      budget.charge(1);
      return isRecord(v) && Object.hasOwn(v, lit.raw);
    };
  }

  /** A match node: any value the path reaches passes `test` (a missing path is tested as undefined), then optional negation. */
  private match(path: readonly string[], test: Test, negate: boolean): FilterPredicate {
    const budget = this.budget;
    return (item) => {
      const hit = walk(item, path, 0, test, budget) ?? test(undefined);
      return negate ? !hit : hit;
    };
  }

  private acceptWord(word: string): boolean {
    const save = this.pos;
    this.skipWs();
    if (this.peekWord() === word) {
      this.pos += word.length;
      return true;
    }
    this.pos = save;
    return false;
  }

  private peekWord(): string {
    return this.src.slice(this.pos, this.matchAt(WORD, this.pos));
  }

  private skipWs(): void {
    this.pos = this.matchAt(WHITESPACE, this.pos);
  }

  private eof(): boolean {
    return this.pos >= this.src.length;
  }

  /** End offset of the run of characters in class `re` starting at `at` (`at` itself when there is none). */
  private matchAt(re: RegExp, at: number): number {
    let i = at;
    while (i < this.src.length && re.test(this.src.charAt(i))) i++;
    return i;
  }

  private describe(at: number): string {
    if (at >= this.src.length) return 'end of input';
    if (this.matchAt(WHITESPACE, at) > at) return 'whitespace';
    for (const re of [WORD, SYMBOLS]) {
      const end = this.matchAt(re, at);
      if (end > at) return JSON.stringify(this.src.slice(at, end));
    }
    return JSON.stringify(String.fromCodePoint(this.src.codePointAt(at) ?? 0));
  }

  /** `line:column` like go-bexpr's parser (pigeon): 1-based, columns counted in characters. */
  private lineCol(at: number): string {
    const before = this.src.slice(0, at);
    const lineStart = before.lastIndexOf('\n') + 1;
    const line = before.split('\n').length;
    return `${line}:${[...before.slice(lineStart)].length + 1}`;
  }

  private fail(at: number, reason: string, code: 'SY_ERR_FILTER' | 'SY_ERR_FILTER_LIMIT' = 'SY_ERR_FILTER'): never {
    // The parenthesised number is the byte offset, as in Consul's messages (`1:12 (11): ...`).
    const offset = Buffer.byteLength(this.src.slice(0, at), 'utf8');
    throw new SwitchyardError(code, `${PREFIX}${this.lineCol(at)} (${offset}): ${reason}`);
  }
}

function parseCode(text: string, digits: number, radix: number): number {
  if (text.length !== digits || !(radix === 16 ? /^[0-9a-fA-F]+$/ : /^[0-7]+$/).test(text)) return NaN;
  return parseInt(text, radix);
}

function literal(raw: string): Literal {
  return {
    raw,
    num: NUMERIC.test(raw) ? Number(raw) : undefined,
    bool: GO_TRUE.has(raw) ? true : GO_FALSE.has(raw) ? false : undefined,
  };
}

function equals(v: unknown, lit: Literal): boolean {
  switch (typeof v) {
    case 'string': return v === lit.raw;
    case 'number': return v === lit.num || String(v) === lit.raw;
    case 'boolean': return v === lit.bool;
    default: return false; // null, missing, arrays and objects never equal a scalar
  }
}

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (typeof v === 'string' || Array.isArray(v)) return v.length === 0;
  if (isRecord(v)) {
    for (const k in v) if (Object.hasOwn(v, k)) return false;
    return true;
  }
  return false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Follows `path` from `v`, fanning out over arrays of objects. Returns true as soon as a reached value
 * passes, false when values were reached but none passed, and null when the path reached nothing.
 * Own-property lookups only, so `constructor` or `__proto__` never resolve to prototype members.
 */
function walk(v: unknown, path: readonly string[], i: number, test: Test, budget: Budget): boolean | null {
  budget.charge(1);
  if (i === path.length) return test(v);
  const key = path[i] as string;
  if (Array.isArray(v)) {
    if (INDEX.test(key)) return Number(key) < v.length ? walk(v[Number(key)], path, i + 1, test, budget) : null;
    let reached = false;
    for (const e of v) {
      const r = walk(e, path, i, test, budget);
      if (r === true) return true;
      if (r === false) reached = true;
    }
    return reached ? false : null;
  }
  if (isRecord(v) && Object.hasOwn(v, key)) return walk(v[key], path, i + 1, test, budget);
  return null;
}
