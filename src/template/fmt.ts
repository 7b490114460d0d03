// Go's fmt for template values: %v printing, Sprint/Sprintln and a Sprintf with Go's verbs, flags and error forms.
import { formatFloat, formatUnicode, goQuote, goQuoteRune } from './strconv.js';
import type { Value } from './values.js';
import { GoChan, GoFloat, GoMap, GoStruct, isSlice, typeName } from './values.js';

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

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function pad(s: string, f: Flags): string {
  if (f.wid === undefined) return s;
  const width = f.wid - runeCount(s);
  if (width <= 0) return s;
  if (f.minus) return s + ' '.repeat(width);
  return (f.zero ? '0' : ' ').repeat(width) + s;
}

function badVerb(verb: string, v: Value): string {
  if (v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${typeName(v)}=${formatArg(v, 'v', noFlags(), 0)})`;
}

function fmtInteger(n: number, base: number, verb: string, f: Flags): string {
  const negative = n < 0;
  let digits = Math.abs(n).toString(base);
  if (Math.abs(n) > Number.MAX_SAFE_INTEGER) digits = BigInt(Math.trunc(Math.abs(n))).toString(base);
  if (verb === 'X') digits = digits.toUpperCase();
  let prec = 0;
  if (f.prec !== undefined) {
    prec = f.prec;
    // Precision 0 with the value 0 prints nothing but the padding.
    if (prec === 0 && n === 0) return ' '.repeat(f.wid ?? 0);
  } else if (f.zero && !f.minus && f.wid !== undefined) {
    prec = f.wid;
    if (negative || f.plus || f.space) prec--;
  }
  if (digits.length < prec) digits = '0'.repeat(prec - digits.length) + digits;
  if (f.sharp) {
    if (base === 2) digits = `0b${digits}`;
    else if (base === 8 && !digits.startsWith('0')) digits = `0${digits}`;
    else if (base === 16) digits = `${verb === 'X' ? '0X' : '0x'}${digits}`;
  }
  if (verb === 'O') digits = `0o${digits}`;
  if (negative) digits = `-${digits}`;
  else if (f.plus) digits = `+${digits}`;
  else if (f.space) digits = ` ${digits}`;
  return pad(digits, { ...f, zero: false });
}

function fmtIntVerb(n: number, verb: string, f: Flags): string {
  switch (verb) {
    case 'v':
    case 'd': return fmtInteger(n, 10, verb, f);
    case 'b': return fmtInteger(n, 2, verb, f);
    case 'o':
    case 'O': return fmtInteger(n, 8, verb, f);
    case 'x':
    case 'X': return fmtInteger(n, 16, verb, f);
    case 'c': return pad(String.fromCodePoint(validRune(n)), f);
    case 'q': return pad(goQuoteRune(validRune(n), f.plus), f);
    case 'U': {
      const u = `U+${n.toString(16).toUpperCase().padStart(4, '0')}`;
      return pad(f.sharp && n <= 0x10ffff ? formatUnicode(n).replace(/^U\+[0-9A-F]+/, u) : u, f);
    }
    default: return badVerb(verb, n);
  }
}

function validRune(n: number): number {
  return n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff) ? 0xfffd : n;
}

function fmtFloatVerb(v: number, verb: string, f: Flags): string {
  let conv: 'e' | 'E' | 'f' | 'g' | 'G';
  let prec: number;
  switch (verb) {
    case 'v': conv = 'g'; prec = -1; break;
    case 'g': case 'G': conv = verb; prec = -1; break;
    case 'e': case 'E': conv = verb; prec = 6; break;
    case 'f': case 'F': conv = 'f'; prec = 6; break;
    default: return badVerb(verb, new GoFloat(v));
  }
  if (f.prec !== undefined) prec = f.prec;
  let num = formatFloat(v, conv, prec);
  if (!num.startsWith('-') && !num.startsWith('+')) num = `+${num}`;
  if (f.space && num.startsWith('+') && !f.plus) num = ` ${num.slice(1)}`;
  if (num[1] === 'I' || num[1] === 'N') {
    if (num[1] === 'N' && !f.space && !f.plus) num = num.slice(1);
    return pad(num, { ...f, zero: false });
  }
  if (f.plus || !num.startsWith('+')) {
    // Zero padding goes between the sign and the digits.
    if (f.zero && !f.minus && f.wid !== undefined && f.wid > num.length) {
      return num[0] + '0'.repeat(f.wid - num.length) + num.slice(1);
    }
    return pad(num, f);
  }
  return pad(num.slice(1), f);
}

/** strconv.CanBackquote: no backquote and no control characters other than tab. */
function canBackquote(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '`' || c === 0x7f || (c < 0x20 && c !== 0x09) || c === 0xfeff) return false;
  }
  return true;
}

function truncate(s: string, f: Flags): string {
  if (f.prec === undefined) return s;
  return [...s].slice(0, f.prec).join('');
}

function fmtStringVerb(s: string, verb: string, f: Flags): string {
  switch (verb) {
    case 'v':
      if (f.sharpV) return pad(goQuote(s), f);
      return pad(truncate(s, f), f);
    case 's': return pad(truncate(s, f), f);
    case 'q': {
      const t = truncate(s, f);
      if (f.sharp && canBackquote(t)) return pad(`\`${t}\``, f);
      return pad(goQuote(t, f.plus), f);
    }
    case 'x':
    case 'X': {
      let bytes = [...Buffer.from(s, 'utf8')];
      if (f.prec !== undefined) bytes = bytes.slice(0, f.prec);
      const hex = bytes.map((b) => b.toString(16).padStart(2, '0'));
      const out = (f.space ? hex.map((h) => (f.sharp ? `0x${h}` : h)).join(' ') : (f.sharp && hex.length ? '0x' : '') + hex.join(''));
      return pad(verb === 'X' ? out.toUpperCase() : out, f);
    }
    default: return badVerb(verb, s);
  }
}

/** fmt's printArg/printValue: how `%<verb>` renders one value at a nesting depth. */
function formatArg(v: Value, verb: string, f: Flags, depth: number): string {
  if (v === undefined) {
    if (verb === 'v' || verb === 'T') return pad('<nil>', f);
    return badVerb(verb, v);
  }
  if (verb === 'T') return pad(typeName(v), f);
  if (typeof v === 'boolean') return verb === 'v' || verb === 't' ? pad(v ? 'true' : 'false', f) : badVerb(verb, v);
  if (typeof v === 'number') return fmtIntVerb(v, verb, f);
  if (v instanceof GoFloat) return fmtFloatVerb(v.value, verb, f);
  if (typeof v === 'string') return fmtStringVerb(v, verb, f);
  if (v instanceof GoMap) {
    const parts = v.sortedKeys().map((k) => `${formatArg(k, verb, f, depth + 1)}:${formatArg(v.entries.get(k), verb, f, depth + 1)}`);
    return `map[${parts.join(' ')}]`;
  }
  if (v instanceof GoStruct) {
    const parts = v.type.fields.map((name) => (f.plusV ? `${name}:` : '') + formatArg(v.get(name), verb, f, depth + 1));
    const body = `{${parts.join(' ')}}`;
    // Go prints &{…} for a pointer at the top of a Printf argument. Deeper pointers print as a memory
    // address there; we print &{…} too, since an address is meaningless in a rendered file.
    return v.type.pointer ? `&${body}` : body;
  }
  if (v instanceof GoChan) return pad('0xc000000000', f);
  if (isSlice(v)) return `[${v.map((e) => formatArg(e, verb, f, depth + 1)).join(' ')}]`;
  return '';
}

/** Rendering of `{{ value }}`: a nil interface is `<no value>`, a pointer to a struct prints as the struct. */
export function printTop(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v instanceof GoStruct && v.type.pointer) return formatArg(new GoStruct({ ...v.type, pointer: false }, v.fields), 'v', noFlags(), 0);
  return formatArg(v, 'v', noFlags(), 0);
}

/** fmt.Sprint: a space between operands when neither side is a string. */
export function sprint(args: readonly Value[]): string {
  let out = '';
  let prevString = false;
  args.forEach((arg, i) => {
    const isString = typeof arg === 'string';
    if (i > 0 && !isString && !prevString) out += ' ';
    out += formatArg(arg, 'v', noFlags(), 0);
    prevString = isString;
  });
  return out;
}

/** fmt.Sprintln: spaces between all operands and a trailing newline. */
export function sprintln(args: readonly Value[]): string {
  return `${args.map((a) => formatArg(a, 'v', noFlags(), 0)).join(' ')}\n`;
}

/** fmt.Sprintf with Go's verbs, flags, width, precision, `*` and the %!verb(…) error forms. */
export function sprintf(format: string, args: readonly Value[]): string {
  let out = '';
  let argNum = 0;
  let i = 0;
  const end = format.length;
  const intArg = (): number | undefined => {
    const a = args[argNum];
    if (argNum >= args.length || typeof a !== 'number') {
      argNum++;
      return undefined;
    }
    argNum++;
    return a;
  };
  while (i < end) {
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
        case '0': f.zero = !f.minus; break;
        case '+': f.plus = true; break;
        case '-': f.minus = true; f.zero = false; break;
        case ' ': f.space = true; break;
        default: break flags;
      }
    }
    if (format[i] === '*') {
      i++;
      const w = intArg();
      if (w === undefined) out += '%!(BADWIDTH)';
      else if (w < 0) {
        f.minus = true;
        f.zero = false;
        f.wid = -w;
      } else f.wid = w;
    } else {
      const m = /^[0-9]+/.exec(format.slice(i));
      if (m) {
        f.wid = Number(m[0]);
        i += m[0].length;
      }
    }
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        const p = intArg();
        if (p === undefined || p < 0) {
          if (p === undefined) out += '%!(BADPREC)';
          f.prec = undefined;
        } else f.prec = p;
      } else {
        const m = /^[0-9]+/.exec(format.slice(i));
        f.prec = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    if (i >= end) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i) as number);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    if (verb === 'v') {
      f.sharpV = f.sharp;
      f.sharp = false;
      f.plusV = f.plus;
      f.plus = false;
    }
    out += formatArg(args[argNum], verb, f, 0);
    argNum++;
  }
  if (argNum < args.length) {
    const extra = args.slice(argNum).map((a) => (a === undefined ? '<nil>' : `${typeName(a)}=${formatArg(a, 'v', noFlags(), 0)}`));
    out += `%!(EXTRA ${extra.join(', ')})`;
  }
  return out;
}
