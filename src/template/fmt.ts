// Go's fmt for template values: %v printing, Sprint/Sprintln and a Sprintf with Go's verbs, flags, argument indexes and error forms.
import type { FloatFormat } from './strconv.js';
import { formatFloat, goQuote, goQuoteRune, isPrint } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, isNilSlice, isSlice, sliceTypeName, typeName } from './values.js';

/** fmt's fmtFlags plus width and precision (undefined = not present). */
interface Flags {
  plus: boolean;
  minus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  plusV: boolean;
  sharpV: boolean;
  wid: number | undefined;
  prec: number | undefined;
}

function noFlags(): Flags {
  return { plus: false, minus: false, sharp: false, space: false, zero: false, plusV: false, sharpV: false, wid: undefined, prec: undefined };
}

/**
 * The address %p and %v print for maps, slices, channels and pointers. Templates have no addresses to show; a fixed
 * one keeps renders reproducible, where Go's would differ from run to run.
 */
const FAKE_ADDRESS = 0xc000000000n;

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** fmt.writePadding: zeros only when padding on the left. */
function padding(n: number, f: Flags): string {
  return n <= 0 ? '' : (f.zero && !f.minus ? '0' : ' ').repeat(n);
}

/** fmt.pad / padString: to the width in runes, on the left unless `-`. */
function pad(s: string, f: Flags): string {
  if (f.wid === undefined || f.wid === 0) return s;
  const fill = padding(f.wid - runeCount(s), f);
  return f.minus ? s + fill : fill + s;
}

function padNoZero(s: string, f: Flags): string {
  return pad(s, { ...f, zero: false });
}

/** fmt.truncateString: at most `prec` runes. */
function truncate(s: string, f: Flags): string {
  if (f.prec === undefined) return s;
  return [...s].slice(0, f.prec).join('');
}

/** pp.badVerb: `%!verb(type=value)`, the value printed with %v and whatever flags the directive had. */
function badVerb(verb: string, v: Value, f: Flags): string {
  if (v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${typeName(v)}=${printArg(v, 'v', f)})`;
}

// ---- integers ----------------------------------------------------------------------------------------

/** fmt.fmtInteger for a value already known signed or unsigned (bigint, exact). */
function fmtIntegerBase(v: bigint, base: 2 | 8 | 10 | 16, verb: string, upper: boolean, f: Flags): string {
  const negative = v < 0n;
  const u = negative ? -v : v;
  let prec = 0;
  if (f.prec !== undefined) {
    prec = f.prec;
    // Precision 0 with the value 0 prints nothing but the padding (spaces).
    if (prec === 0 && u === 0n) return ' '.repeat(f.wid ?? 0);
  } else if (f.zero && !f.minus && f.wid !== undefined) {
    prec = f.wid;
    if (negative || f.plus || f.space) prec--;
  }
  let digits = u.toString(base);
  if (upper) digits = digits.toUpperCase();
  if (digits.length < prec) digits = '0'.repeat(prec - digits.length) + digits;
  if (f.sharp) {
    if (base === 2) digits = `0b${digits}`;
    else if (base === 8 && !digits.startsWith('0')) digits = `0${digits}`;
    else if (base === 16) digits = `0${upper ? 'X' : 'x'}${digits}`;
  }
  if (verb === 'O') digits = `0o${digits}`;
  if (negative) digits = `-${digits}`;
  else if (f.plus) digits = `+${digits}`;
  else if (f.space) digits = ` ${digits}`;
  // Zero padding was done as precision above (or is ignored because a precision was given).
  return padNoZero(digits, f);
}

/** fmt.fmtC: a code point beyond Unicode (or a negative int, as uint64) prints U+FFFD; so does a surrogate. */
function runeOf(u: bigint): number {
  if (u > 0x10ffffn) return 0xfffd;
  const r = Number(u);
  return r >= 0xd800 && r <= 0xdfff ? 0xfffd : r;
}

/** fmt.fmtUnicode: U+0078, at least four hex digits (more with a larger precision), `#` adds the quoted rune. */
function fmtUnicode(u: bigint, f: Flags): string {
  const prec = f.prec !== undefined && f.prec > 4 ? f.prec : 4;
  let s = `U+${u.toString(16).toUpperCase().padStart(prec, '0')}`;
  if (f.sharp && u <= 0x10ffffn && isPrint(Number(u))) s += ` '${String.fromCodePoint(Number(u))}'`;
  return padNoZero(s, f);
}

/** pp.fmtInteger: the verbs of signed and unsigned integers; `v` is the exact value, `operand` what a bad verb shows. */
function fmtInteger(v: bigint, unsigned: boolean, verb: string, f: Flags, operand: Value): string {
  const bits = BigInt.asUintN(64, v);
  switch (verb) {
    case 'v':
      // %#v of an unsigned integer is Go syntax in hex (fmt0x64).
      if (f.sharpV && unsigned) return fmtIntegerBase(v, 16, verb, false, { ...f, sharp: true });
      return fmtIntegerBase(v, 10, verb, false, f);
    case 'd': return fmtIntegerBase(v, 10, verb, false, f);
    case 'b': return fmtIntegerBase(v, 2, verb, false, f);
    case 'o':
    case 'O': return fmtIntegerBase(v, 8, verb, false, f);
    case 'x': return fmtIntegerBase(v, 16, verb, false, f);
    case 'X': return fmtIntegerBase(v, 16, verb, true, f);
    case 'c': return pad(String.fromCodePoint(runeOf(bits)), f);
    case 'q': return pad(goQuoteRune(runeOf(bits), f.plus), f);
    case 'U': return fmtUnicode(bits, f);
    default: return badVerb(verb, operand, f);
  }
}

// ---- floats ------------------------------------------------------------------------------------------

/**
 * fmt.fmtFloat: strconv's digits plus the sign, space and zero-padding rules, and `#` (always a decimal point, and
 * for %g/%x the trailing zeros up to the precision, counted the way Go counts them).
 */
function fmtFloatWith(v: number, verb: FloatFormat, defaultPrec: number, f: Flags): string {
  const prec = f.prec !== undefined ? f.prec : defaultPrec;
  let num = formatFloat(v, verb, prec);
  if (num[0] !== '-' && num[0] !== '+') num = `+${num}`;
  if (f.space && num[0] === '+' && !f.plus) num = ` ${num.slice(1)}`;
  // Infinities and NaN are not numbers to pad with zeros.
  if (num[1] === 'I' || num[1] === 'N') {
    if (num[1] === 'N' && !f.space && !f.plus) num = num.slice(1);
    return padNoZero(num, f);
  }
  if (f.sharp && verb !== 'b') {
    let digits = 0;
    if (verb === 'g' || verb === 'G' || verb === 'x') digits = prec === -1 ? 6 : prec;
    let tail = '';
    let hasDecimalPoint = false;
    let sawNonzeroDigit = false;
    let body = num;
    for (let i = 1; i < body.length; i++) {
      const c = body[i] as string;
      if (c === '.') {
        hasDecimalPoint = true;
        continue;
      }
      if (c === 'p' || c === 'P' || ((c === 'e' || c === 'E') && verb !== 'x' && verb !== 'X')) {
        tail = body.slice(i);
        body = body.slice(0, i);
        break;
      }
      if (c !== '0') sawNonzeroDigit = true;
      if (sawNonzeroDigit) digits--;
    }
    if (!hasDecimalPoint) {
      // A lone leading 0 counts once.
      if (body.length === 2 && body[1] === '0') digits--;
      body += '.';
    }
    if (digits > 0) body += '0'.repeat(digits);
    num = body + tail;
  }
  if (f.plus || num[0] !== '+') {
    // Zero padding goes between the sign and the digits.
    if (f.zero && !f.minus && f.wid !== undefined && f.wid > num.length) {
      return num[0] + padding(f.wid - num.length, f) + num.slice(1);
    }
    return pad(num, f);
  }
  return pad(num.slice(1), f);
}

/** pp.fmtFloat: which strconv format and default precision each verb uses. */
function fmtFloat(v: number, verb: string, f: Flags): string {
  switch (verb) {
    case 'v': return fmtFloatWith(v, 'g', -1, f);
    case 'b': case 'g': case 'G': case 'x': case 'X': return fmtFloatWith(v, verb, -1, f);
    case 'f': case 'e': case 'E': return fmtFloatWith(v, verb, 6, f);
    case 'F': return fmtFloatWith(v, 'f', 6, f);
    default: return badVerb(verb, new GoFloat(v), f);
  }
}

// ---- strings -----------------------------------------------------------------------------------------

/** strconv.CanBackquote: no backquote, no BOM, no control characters other than tab, valid UTF-8. */
function canBackquote(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '`' || c === 0x7f || (c < 0x20 && c !== 0x09) || c === 0xfeff) return false;
    // A lone surrogate is what an invalid UTF-8 byte became.
    if (c >= 0xd800 && c <= 0xdfff) return false;
  }
  return true;
}

/** fmt.fmtSbx: the bytes in hex, `#` for a 0x prefix, space-separated with ` `. */
function fmtSx(s: string, upper: boolean, f: Flags): string {
  let bytes = [...Buffer.from(s, 'utf8')];
  if (f.prec !== undefined && f.prec < bytes.length) bytes = bytes.slice(0, f.prec);
  if (bytes.length === 0) return f.wid !== undefined ? padding(f.wid, f) : '';
  const prefix = upper ? '0X' : '0x';
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0'));
  const out = f.space ? hex.map((h) => (f.sharp ? prefix + h : h)).join(' ') : (f.sharp ? prefix : '') + hex.join('');
  return pad(upper ? out.toUpperCase() : out, f);
}

/** fmt.fmtQ: a Go string literal (ASCII-only with `+`), or a raw one with `#` when it can be. */
function fmtQ(s: string, f: Flags): string {
  const t = truncate(s, f);
  if (f.sharp && canBackquote(t)) return pad(`\`${t}\``, f);
  return pad(goQuote(t, f.plus), f);
}

function fmtString(s: string, verb: string, f: Flags): string {
  switch (verb) {
    case 'v': return f.sharpV ? fmtQ(s, f) : pad(truncate(s, f), f);
    case 's': return pad(truncate(s, f), f);
    case 'x': return fmtSx(s, false, f);
    case 'X': return fmtSx(s, true, f);
    case 'q': return fmtQ(s, f);
    default: return badVerb(verb, s, f);
  }
}

// ---- pointers and composites ---------------------------------------------------------------------------

/** Values Go prints as an address for %p (maps, slices, channels, pointers to structs). */
function addressOf(v: Value): bigint | undefined {
  if (v instanceof GoMap) return v.isNil ? 0n : FAKE_ADDRESS;
  if (isSlice(v)) return isNilSlice(v) ? 0n : FAKE_ADDRESS;
  if (v instanceof GoChan) return FAKE_ADDRESS;
  if (v instanceof GoStruct && v.type.pointer) return FAKE_ADDRESS;
  return undefined;
}

/** pp.fmtPointer for %p and for channels (a channel prints as its address). */
function fmtPointer(v: Value, verb: string, f: Flags): string {
  const u = addressOf(v);
  if (u === undefined) return badVerb(verb, v, f);
  switch (verb) {
    case 'v':
      if (f.sharpV) return `(${typeName(v)})(${u === 0n ? 'nil' : `0x${u.toString(16)}`})`;
      if (u === 0n) return pad('<nil>', f);
      return fmtIntegerBase(u, 16, 'v', false, { ...f, sharp: !f.sharp });
    case 'p': return fmtIntegerBase(u, 16, 'v', false, { ...f, sharp: !f.sharp });
    case 'b': case 'o': case 'd': case 'x': case 'X': return fmtInteger(u, true, verb, f, v);
    default: return badVerb(verb, v, f);
  }
}

/** pp.printValue for what sits inside maps, slices and structs (depth > 0), and for composites at the top. */
function printValue(v: Value, verb: string, f: Flags, depth: number): string {
  if (v === undefined) {
    // Inside a container a nil is an interface holding nothing: no padding, no bad-verb form.
    return f.sharpV ? 'interface {}(nil)' : '<nil>';
  }
  if (v instanceof GoMap) {
    const sep = f.sharpV ? ', ' : ' ';
    const parts = v.sortedKeys().map((k) => `${printValue(k, verb, f, depth + 1)}:${printValue(v.entries.get(k), verb, f, depth + 1)}`);
    if (f.sharpV) return v.isNil ? `${v.type.name}(nil)` : `${v.type.name}{${parts.join(sep)}}`;
    return `map[${parts.join(sep)}]`;
  }
  if (v instanceof GoStruct) {
    const sep = f.sharpV ? ', ' : ' ';
    const parts = v.type.fields.map((name) => (f.plusV || f.sharpV ? `${name}:` : '') + printValue(v.get(name), verb, f, depth + 1));
    const body = `${f.sharpV ? v.type.name : ''}{${parts.join(sep)}}`;
    // Go prints &{…} for a pointer at the top and an address deeper down; we print &{…} at every depth, since an
    // address is meaningless in a rendered file.
    return v.type.pointer ? `&${body}` : body;
  }
  if (isSlice(v)) {
    const items = v.map((e) => printValue(e, verb, f, depth + 1));
    if (f.sharpV) return isNilSlice(v) ? `${sliceTypeName(v)}(nil)` : `${sliceTypeName(v)}{${items.join(', ')}}`;
    return `[${items.join(' ')}]`;
  }
  return printArg(v, verb, f);
}

/** pp.printArg: how `%<verb>` renders one operand. */
function printArg(v: Value, verb: string, f: Flags): string {
  if (v === undefined) return verb === 'v' || verb === 'T' ? pad('<nil>', f) : badVerb(verb, v, f);
  if (verb === 'T') return pad(truncate(typeName(v), f), f);
  if (verb === 'p') return fmtPointer(v, verb, f);
  if (typeof v === 'boolean') return verb === 'v' || verb === 't' ? pad(v ? 'true' : 'false', f) : badVerb(verb, v, f);
  if (typeof v === 'number') return fmtInteger(BigInt(v), false, verb, f, v);
  if (v instanceof GoInt) return fmtInteger(v.value, v.unsigned, verb, f, v);
  if (v instanceof GoFloat) return fmtFloat(v.value, verb, f);
  if (typeof v === 'string') return fmtString(v, verb, f);
  if (v instanceof GoChan) return fmtPointer(v, verb, f);
  return printValue(v, verb, f, 0);
}

/** Rendering of `{{ value }}`: a nil interface is `<no value>`, a pointer to a struct prints as the struct. */
export function printTop(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v instanceof GoStruct && v.type.pointer) return printArg(new GoStruct({ ...v.type, pointer: false }, v.fields), 'v', noFlags());
  return printArg(v, 'v', noFlags());
}

/** fmt.Sprint: a space between operands when neither side is a string. */
export function sprint(args: readonly Value[]): string {
  let out = '';
  let prevString = false;
  args.forEach((arg, i) => {
    const isString = typeof arg === 'string';
    if (i > 0 && !isString && !prevString) out += ' ';
    out += printArg(arg, 'v', noFlags());
    prevString = isString;
  });
  return out;
}

/** fmt.Sprintln: spaces between all operands and a trailing newline. */
export function sprintln(args: readonly Value[]): string {
  return `${args.map((a) => printArg(a, 'v', noFlags())).join(' ')}\n`;
}

// ---- Sprintf -------------------------------------------------------------------------------------------

/** fmt's tooLarge: widths and precisions beyond ±10^6 are refused. */
const tooLarge = (x: number): boolean => x > 1e6 || x < -1e6;

/** fmt's parsenum: the decimal number at format[start:]; an absurdly long one gives up and consumes the rest. */
function parseNum(format: string, start: number): { num: number; isNum: boolean; next: number } {
  let num = 0;
  let isNum = false;
  let i = start;
  for (; i < format.length && format[i]! >= '0' && format[i]! <= '9'; i++) {
    if (tooLarge(num)) return { num: 0, isNum: false, next: format.length };
    num = num * 10 + (format.charCodeAt(i) - 48);
    isNum = true;
  }
  return { num, isNum, next: i };
}

/** fmt's parseArgNumber for the `[n]` at format[i:]: the zero-based index, how much to consume, whether it parsed. */
function parseArgNumber(format: string, i: number): { index: number; wid: number; ok: boolean } {
  if (format.length - i < 3) return { index: 0, wid: 1, ok: false };
  for (let j = i + 1; j < format.length; j++) {
    if (format[j] === ']') {
      const n = parseNum(format, i + 1);
      if (!n.isNum || n.next !== j) return { index: 0, wid: j - i + 1, ok: false };
      return { index: n.num - 1, wid: j - i + 1, ok: true };
    }
  }
  return { index: 0, wid: 1, ok: false };
}

/**
 * fmt.Sprintf: Go's verbs and flags (+ - # space 0), width and precision (literal, `*`, or `[n]*`), explicit
 * argument indexes (`%[2]s`), and the error forms %!verb(type=value), %!verb(MISSING), %!verb(BADINDEX),
 * %!(BADWIDTH), %!(BADPREC), %!(NOVERB) and %!(EXTRA …), as fmt's doPrintf produces them.
 */
export function sprintf(format: string, args: readonly Value[]): string {
  let out = '';
  const end = format.length;
  let argNum = 0;
  let afterIndex = false;
  let reordered = false;
  let goodArgNum = true;

  /** pp.argNumber: an explicit `[n]` at format[i:] selects the next operand. */
  const argNumber = (i: number): { i: number; found: boolean } => {
    if (i >= end || format[i] !== '[') return { i, found: false };
    reordered = true;
    const { index, wid, ok } = parseArgNumber(format, i);
    if (ok && index >= 0 && index < args.length) {
      argNum = index;
      return { i: i + wid, found: true };
    }
    goodArgNum = false;
    return { i: i + wid, found: ok };
  };

  /** fmt's intFromArg: the operand as a width or precision, if it is an integer of sane size. */
  const intFromArg = (): { num: number; isInt: boolean } => {
    if (argNum >= args.length) return { num: 0, isInt: false };
    const a = args[argNum];
    argNum++;
    let num = 0;
    let isInt = false;
    if (typeof a === 'number') {
      num = a;
      isInt = true;
    } else if (a instanceof GoInt && (!a.unsigned || a.value < 2n ** 63n)) {
      // Beyond ±10^6 it is refused below anyway; Number() of a huge value is only compared.
      num = Number(a.value);
      isInt = true;
    }
    if (tooLarge(num)) return { num: 0, isInt: false };
    return { num, isInt };
  };

  let i = 0;
  while (i < end) {
    goodArgNum = true;
    const next = format.indexOf('%', i);
    if (next < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, next);
    i = next + 1;

    const f = noFlags();
    flags: for (; i < end; i++) {
      switch (format[i]) {
        case '#': f.sharp = true; break;
        case '0': f.zero = true; break;
        case '+': f.plus = true; break;
        case '-': f.minus = true; break;
        case ' ': f.space = true; break;
        default: break flags;
      }
    }

    ({ i, found: afterIndex } = argNumber(i));

    if (i < end && format[i] === '*') {
      i++;
      const w = intFromArg();
      f.wid = w.isInt ? w.num : undefined;
      if (!w.isInt) out += '%!(BADWIDTH)';
      if (f.wid !== undefined && f.wid < 0) {
        f.wid = -f.wid;
        f.minus = true;
        f.zero = false;
      }
      afterIndex = false;
    } else {
      const n = parseNum(format, i);
      i = n.next;
      if (n.isNum) {
        f.wid = n.num;
        // "%[3]2d": a width after an index is an error.
        if (afterIndex) goodArgNum = false;
      }
    }

    if (i + 1 < end && format[i] === '.') {
      i++;
      // "%[3].2d": so is a precision.
      if (afterIndex) goodArgNum = false;
      ({ i, found: afterIndex } = argNumber(i));
      if (i < end && format[i] === '*') {
        i++;
        const p = intFromArg();
        f.prec = p.isInt && p.num >= 0 ? p.num : undefined;
        if (f.prec === undefined) out += '%!(BADPREC)';
        afterIndex = false;
      } else {
        const n = parseNum(format, i);
        i = n.next;
        // A lone dot is precision zero.
        f.prec = n.isNum ? n.num : 0;
      }
    }

    if (!afterIndex) ({ i, found: afterIndex } = argNumber(i));

    if (i >= end) {
      out += '%!(NOVERB)';
      break;
    }

    const verb = String.fromCodePoint(format.codePointAt(i) as number);
    i += verb.length;

    if (verb === '%') {
      // A percent takes no operand and ignores width and precision.
      out += '%';
      continue;
    }
    if (!goodArgNum) {
      out += `%!${verb}(BADINDEX)`;
      continue;
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    if (verb === 'v' || verb === 'w') {
      // %#v is Go syntax and %+v names struct fields: flags of their own, not # and + as such.
      f.sharpV = f.sharp;
      f.sharp = false;
      f.plusV = f.plus;
      f.plus = false;
    }
    // Sprintf is not Errorf: %w is a bad verb for every operand.
    out += verb === 'w' ? badVerb(verb, args[argNum], f) : printArg(args[argNum], verb, f);
    argNum++;
  }

  // Operands left over are reported unless indexes were used, which makes "unused" ambiguous.
  if (!reordered && argNum < args.length) {
    const extra = args.slice(argNum).map((a) => (a === undefined ? '<nil>' : `${typeName(a)}=${printArg(a, 'v', noFlags())}`));
    out += `%!(EXTRA ${extra.join(', ')})`;
  }
  return out;
}
