// Tokenizer for Go text/template source, a port of text/template/parse/lex.go (trim markers, comments, literals).
import { formatUnicode, goQuote } from './strconv.js';

export type TokenType =
  | 'error' | 'bool' | 'char' | 'charConstant' | 'complex' | 'assign' | 'declare' | 'eof' | 'field' | 'identifier'
  | 'leftDelim' | 'leftParen' | 'number' | 'pipe' | 'rawString' | 'rightDelim' | 'rightParen' | 'space' | 'string'
  | 'text' | 'variable'
  // Keywords; Go prints these as <name> in "unexpected …" messages.
  | 'block' | 'break' | 'continue' | 'dot' | 'define' | 'else' | 'end' | 'if' | 'nil' | 'range' | 'template' | 'with';

export interface Token {
  readonly type: TokenType;
  /** UTF-16 offset of the token start in the template text. */
  readonly pos: number;
  readonly val: string;
}

const KEYWORDS: ReadonlyMap<string, TokenType> = new Map<string, TokenType>([
  ['.', 'dot'], ['block', 'block'], ['break', 'break'], ['continue', 'continue'], ['define', 'define'],
  ['else', 'else'], ['end', 'end'], ['if', 'if'], ['range', 'range'], ['nil', 'nil'], ['template', 'template'],
  ['with', 'with'],
]);

export function isKeyword(t: TokenType): boolean {
  return t === 'block' || t === 'break' || t === 'continue' || t === 'dot' || t === 'define' || t === 'else'
    || t === 'end' || t === 'if' || t === 'nil' || t === 'range' || t === 'template' || t === 'with';
}

/** Go's item.String(), the token spelling in parse errors: EOF, <range>, "}" or "abcdefghij"... */
export function tokenString(t: Token): string {
  if (t.type === 'eof') return 'EOF';
  if (t.type === 'error') return t.val;
  if (isKeyword(t.type)) return `<${t.val}>`;
  const runes = [...t.val];
  if (runes.length > 10) return `${goQuote(runes.slice(0, 10).join(''))}...`;
  return goQuote(t.val);
}

const EOF = -1;
const SPACE_CHARS = ' \t\r\n';

function isSpace(r: number): boolean {
  return r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a;
}

function isAlphaNumeric(r: number): boolean {
  if (r === 0x5f) return true;
  if (r < 0) return false;
  return /[\p{L}\p{Nd}]/u.test(String.fromCodePoint(r));
}

type State = (() => State) | null;

/** Lexes the whole input; the token list ends with an 'eof' or an 'error' token. */
export function lex(input: string, leftDelim = '{{', rightDelim = '}}'): Token[] {
  return new Lexer(input, leftDelim || '{{', rightDelim || '}}').run();
}

class Lexer {
  readonly #input: string;
  readonly #left: string;
  readonly #right: string;
  readonly #items: Token[] = [];
  #pos = 0;
  #start = 0;
  #width = 0;
  #parenDepth = 0;

  constructor(input: string, left: string, right: string) {
    this.#input = input;
    this.#left = left;
    this.#right = right;
  }

  run(): Token[] {
    let state: State = this.#lexText;
    while (state) state = state();
    return this.#items;
  }

  #next(): number {
    if (this.#pos >= this.#input.length) {
      this.#width = 0;
      return EOF;
    }
    const r = this.#input.codePointAt(this.#pos) as number;
    this.#width = r > 0xffff ? 2 : 1;
    this.#pos += this.#width;
    return r;
  }

  #backup(): void {
    this.#pos -= this.#width;
  }

  #peek(): number {
    const r = this.#next();
    this.#backup();
    return r;
  }

  #emit(type: TokenType): void {
    this.#items.push({ type, pos: this.#start, val: this.#input.slice(this.#start, this.#pos) });
    this.#start = this.#pos;
  }

  #ignore(): void {
    this.#start = this.#pos;
  }

  #errorf(message: string): State {
    this.#items.push({ type: 'error', pos: this.#start, val: message });
    return null;
  }

  #accept(valid: string): boolean {
    const r = this.#next();
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true;
    this.#backup();
    return false;
  }

  #acceptRun(valid: string): void {
    for (;;) {
      const r = this.#next();
      if (r === EOF || !valid.includes(String.fromCodePoint(r))) break;
    }
    this.#backup();
  }

  // The trim marker needs white space next to the dash so that {{-3}} stays the number -3.
  #hasLeftTrimMarker(at: number): boolean {
    return this.#input[at] === '-' && SPACE_CHARS.includes(this.#input[at + 1] ?? 'x');
  }

  #hasRightTrimMarker(at: number): boolean {
    return SPACE_CHARS.includes(this.#input[at] ?? 'x') && this.#input[at + 1] === '-';
  }

  #atRightDelim(): { delim: boolean; trim: boolean } {
    if (this.#hasRightTrimMarker(this.#pos) && this.#input.startsWith(this.#right, this.#pos + 2)) return { delim: true, trim: true };
    if (this.#input.startsWith(this.#right, this.#pos)) return { delim: true, trim: false };
    return { delim: false, trim: false };
  }

  #leftTrimLength(from: number): number {
    let n = 0;
    while (SPACE_CHARS.includes(this.#input[from + n] ?? 'x')) n++;
    return n;
  }

  #rightTrimLength(from: number, to: number): number {
    let n = 0;
    while (to - n > from && SPACE_CHARS.includes(this.#input[to - n - 1] as string)) n++;
    return n;
  }

  #atTerminator(): boolean {
    const r = this.#peek();
    if (isSpace(r) || r === EOF) return true;
    switch (r) {
      case 0x2e: case 0x2c: case 0x7c: case 0x3a: case 0x29: case 0x28:
        return true;
    }
    return r === this.#right.codePointAt(0);
  }

  #lexText = (): State => {
    this.#width = 0;
    const x = this.#input.indexOf(this.#left, this.#pos);
    if (x >= 0) {
      this.#pos = x;
      let trim = 0;
      if (this.#hasLeftTrimMarker(this.#pos + this.#left.length)) trim = this.#rightTrimLength(this.#start, this.#pos);
      this.#pos -= trim;
      if (this.#pos > this.#start) this.#emit('text');
      this.#pos += trim;
      this.#ignore();
      return this.#lexLeftDelim;
    }
    this.#pos = this.#input.length;
    if (this.#pos > this.#start) this.#emit('text');
    this.#emit('eof');
    return null;
  };

  #lexLeftDelim = (): State => {
    this.#pos += this.#left.length;
    const after = this.#hasLeftTrimMarker(this.#pos) ? 2 : 0;
    if (this.#input.startsWith('/*', this.#pos + after)) {
      this.#pos += after;
      this.#ignore();
      return this.#lexComment;
    }
    this.#emit('leftDelim');
    this.#pos += after;
    this.#ignore();
    this.#parenDepth = 0;
    return this.#lexInsideAction;
  };

  #lexComment = (): State => {
    this.#pos += 2;
    const i = this.#input.indexOf('*/', this.#pos);
    if (i < 0) return this.#errorf('unclosed comment');
    this.#pos = i + 2;
    const { delim, trim } = this.#atRightDelim();
    if (!delim) return this.#errorf('comment ends before closing delimiter');
    if (trim) this.#pos += 2;
    this.#pos += this.#right.length;
    if (trim) this.#pos += this.#leftTrimLength(this.#pos);
    this.#ignore();
    return this.#lexText;
  };

  #lexRightDelim = (): State => {
    const trim = this.#hasRightTrimMarker(this.#pos);
    if (trim) {
      this.#pos += 2;
      this.#ignore();
    }
    this.#pos += this.#right.length;
    this.#emit('rightDelim');
    if (trim) {
      this.#pos += this.#leftTrimLength(this.#pos);
      this.#ignore();
    }
    return this.#lexText;
  };

  #lexInsideAction = (): State => {
    if (this.#atRightDelim().delim) {
      if (this.#parenDepth === 0) return this.#lexRightDelim;
      return this.#errorf('unclosed left paren');
    }
    const r = this.#next();
    if (r === EOF) return this.#errorf('unclosed action');
    if (isSpace(r)) {
      this.#backup();
      return this.#lexSpace;
    }
    switch (r) {
      case 0x3d: // =
        this.#emit('assign');
        return this.#lexInsideAction;
      case 0x3a: // :
        if (this.#next() !== 0x3d) return this.#errorf('expected :=');
        this.#emit('declare');
        return this.#lexInsideAction;
      case 0x7c:
        this.#emit('pipe');
        return this.#lexInsideAction;
      case 0x22:
        return this.#lexQuote;
      case 0x60:
        return this.#lexRawQuote;
      case 0x24:
        return this.#lexVariable;
      case 0x27:
        return this.#lexChar;
      case 0x28:
        this.#emit('leftParen');
        this.#parenDepth++;
        return this.#lexInsideAction;
      case 0x29:
        this.#emit('rightParen');
        this.#parenDepth--;
        if (this.#parenDepth < 0) return this.#errorf(`unexpected right paren ${formatUnicode(r)}`);
        return this.#lexInsideAction;
    }
    if (r === 0x2e) {
      const c = this.#input.charCodeAt(this.#pos);
      // ".field" unless a digit follows, in which case "." starts a number like .5.
      if (this.#pos < this.#input.length && (c < 0x30 || c > 0x39)) return this.#lexField;
    }
    if (r === 0x2e || r === 0x2b || r === 0x2d || (r >= 0x30 && r <= 0x39)) {
      this.#backup();
      return this.#lexNumber;
    }
    if (isAlphaNumeric(r)) {
      this.#backup();
      return this.#lexIdentifier;
    }
    if (r <= 0x7f && r >= 0x20 && r !== 0x7f) {
      this.#emit('char');
      return this.#lexInsideAction;
    }
    return this.#errorf(`unrecognized character in action: ${formatUnicode(r)}`);
  };

  #lexSpace = (): State => {
    let numSpaces = 0;
    while (isSpace(this.#peek())) {
      this.#next();
      numSpaces++;
    }
    // A space followed by "-}}" belongs to the trim marker, not to the argument separator.
    if (this.#hasRightTrimMarker(this.#pos - 1) && this.#input.startsWith(this.#right, this.#pos + 1)) {
      this.#backup();
      if (numSpaces === 1) return this.#lexRightDelim;
    }
    this.#emit('space');
    return this.#lexInsideAction;
  };

  #lexIdentifier = (): State => {
    for (;;) {
      const r = this.#next();
      if (isAlphaNumeric(r)) continue;
      this.#backup();
      const word = this.#input.slice(this.#start, this.#pos);
      if (!this.#atTerminator()) return this.#errorf(`bad character ${formatUnicode(r)}`);
      const kw = KEYWORDS.get(word);
      if (kw) this.#emit(kw);
      else if (word === 'true' || word === 'false') this.#emit('bool');
      else this.#emit('identifier');
      return this.#lexInsideAction;
    }
  };

  #lexField = (): State => this.#lexFieldOrVariable('field');

  #lexVariable = (): State => {
    if (this.#atTerminator()) {
      this.#emit('variable');
      return this.#lexInsideAction;
    }
    return this.#lexFieldOrVariable('variable');
  };

  #lexFieldOrVariable(type: 'field' | 'variable'): State {
    if (this.#atTerminator()) {
      this.#emit(type === 'variable' ? 'variable' : 'dot');
      return this.#lexInsideAction;
    }
    let r: number;
    for (;;) {
      r = this.#next();
      if (!isAlphaNumeric(r)) {
        this.#backup();
        break;
      }
    }
    if (!this.#atTerminator()) return this.#errorf(`bad character ${formatUnicode(r)}`);
    this.#emit(type);
    return this.#lexInsideAction;
  }

  #lexChar = (): State => {
    for (;;) {
      const r = this.#next();
      if (r === 0x5c) {
        const e = this.#next();
        if (e !== EOF && e !== 0x0a) continue;
        return this.#errorf('unterminated character constant');
      }
      if (r === EOF || r === 0x0a) return this.#errorf('unterminated character constant');
      if (r === 0x27) break;
    }
    this.#emit('charConstant');
    return this.#lexInsideAction;
  };

  #lexNumber = (): State => {
    if (!this.#scanNumber()) return this.#errorf(`bad number syntax: ${goQuote(this.#input.slice(this.#start, this.#pos))}`);
    const sign = this.#peek();
    if (sign === 0x2b || sign === 0x2d) {
      if (!this.#scanNumber() || this.#input[this.#pos - 1] !== 'i') {
        return this.#errorf(`bad number syntax: ${goQuote(this.#input.slice(this.#start, this.#pos))}`);
      }
      this.#emit('complex');
      return this.#lexInsideAction;
    }
    this.#emit('number');
    return this.#lexInsideAction;
  };

  #scanNumber(): boolean {
    this.#accept('+-');
    let digits = '0123456789_';
    if (this.#accept('0')) {
      if (this.#accept('xX')) digits = '0123456789abcdefABCDEF_';
      else if (this.#accept('oO')) digits = '01234567_';
      else if (this.#accept('bB')) digits = '01_';
    }
    this.#acceptRun(digits);
    if (this.#accept('.')) this.#acceptRun(digits);
    if (digits.length === 11 && this.#accept('eE')) {
      this.#accept('+-');
      this.#acceptRun('0123456789_');
    }
    if (digits.length === 23 && this.#accept('pP')) {
      this.#accept('+-');
      this.#acceptRun('0123456789_');
    }
    this.#accept('i');
    if (isAlphaNumeric(this.#peek())) {
      this.#next();
      return false;
    }
    return true;
  }

  #lexQuote = (): State => {
    for (;;) {
      const r = this.#next();
      if (r === 0x5c) {
        const e = this.#next();
        if (e !== EOF && e !== 0x0a) continue;
        return this.#errorf('unterminated quoted string');
      }
      if (r === EOF || r === 0x0a) return this.#errorf('unterminated quoted string');
      if (r === 0x22) break;
    }
    this.#emit('string');
    return this.#lexInsideAction;
  };

  #lexRawQuote = (): State => {
    for (;;) {
      const r = this.#next();
      if (r === EOF) return this.#errorf('unterminated raw quoted string');
      if (r === 0x60) break;
    }
    this.#emit('rawString');
    return this.#lexInsideAction;
  };
}
