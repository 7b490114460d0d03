// Go's strconv for templates: quoting, literal unquoting, integer/float parsing and exact float formatting.

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isPrint(cp: number): boolean {
  if (cp === 0x20) return true;
  if (cp < 0x20 || cp === 0x7f) return false;
  return /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(String.fromCodePoint(cp));
}

const LOWER_HEX = '0123456789abcdef';

function hex(n: number, width: number): string {
  let s = '';
  for (let i = width - 1; i >= 0; i--) s += LOWER_HEX[(n >> (4 * i)) & 0xf];
  return s;
}

function escapeRune(cp: number, quote: number, asciiOnly: boolean): string {
  if (cp === quote || cp === 0x5c) return `\\${String.fromCodePoint(cp)}`;
  if (asciiOnly ? cp < 0x80 && isPrint(cp) : isPrint(cp)) return String.fromCodePoint(cp);
  switch (cp) {
    case 0x07: return '\\a';
    case 0x08: return '\\b';
    case 0x0c: return '\\f';
    case 0x0a: return '\\n';
    case 0x0d: return '\\r';
    case 0x09: return '\\t';
    case 0x0b: return '\\v';
  }
  if (cp < 0x20 || cp === 0x7f) return `\\x${hex(cp, 2)}`;
  // A lone surrogate is what an invalid UTF-8 byte becomes in JS; Go would print the replacement rune.
  if (cp >= 0xd800 && cp <= 0xdfff) return '\\ufffd';
  if (cp < 0x10000) return `\\u${hex(cp, 4)}`;
  return `\\U${hex(cp, 8)}`;
}

/** strconv.Quote (or QuoteToASCII when asciiOnly). */
export function goQuote(s: string, asciiOnly = false): string {
  let out = '"';
  for (const ch of s) out += escapeRune(ch.codePointAt(0) as number, 0x22, asciiOnly);
  return `${out}"`;
}

/** strconv.QuoteRune. */
export function goQuoteRune(cp: number, asciiOnly = false): string {
  if (cp > 0x10ffff || cp < 0 || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  return `'${escapeRune(cp, 0x27, asciiOnly)}'`;
}

/** `%#U` of fmt: U+0029 ')'. */
export function formatUnicode(cp: number): string {
  const code = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return isPrint(cp) ? `${code} '${String.fromCodePoint(cp)}'` : code;
}

export class SyntaxError extends Error {
  constructor() {
    super('invalid syntax');
    this.name = 'SyntaxError';
  }
}

function utf8Bytes(s: string): number[] {
  return [...Buffer.from(s, 'utf8')];
}

/**
 * strconv.Unquote for "…", `…` and '…' literals. Byte escapes (\x, octal) are collected as bytes and the
 * result decoded as UTF-8, so "\xc3\xa9" is é; bytes that are not valid UTF-8 become U+FFFD (JS strings
 * cannot hold them).
 */
export function goUnquote(lit: string): string | number {
  const q = lit[0];
  if (lit.length < 2 || lit[lit.length - 1] !== q) throw new SyntaxError();
  const body = lit.slice(1, -1);
  if (q === '`') {
    if (body.includes('`')) throw new SyntaxError();
    return body.replace(/\r/g, '');
  }
  if (q !== '"' && q !== "'") throw new SyntaxError();
  if (body.includes('\n')) throw new SyntaxError();
  const bytes: number[] = [];
  let runes = 0;
  let lastRune = -1;
  const push = (cp: number): void => {
    runes++;
    lastRune = cp;
    bytes.push(...utf8Bytes(String.fromCodePoint(cp)));
  };
  let i = 0;
  while (i < body.length) {
    const cp = body.codePointAt(i) as number;
    const w = cp > 0xffff ? 2 : 1;
    if (cp === q.charCodeAt(0)) throw new SyntaxError();
    if (cp !== 0x5c) {
      push(cp);
      i += w;
      continue;
    }
    const e = body[i + 1];
    i += 2;
    switch (e) {
      case 'a': push(7); break;
      case 'b': push(8); break;
      case 'f': push(12); break;
      case 'n': push(10); break;
      case 'r': push(13); break;
      case 't': push(9); break;
      case 'v': push(11); break;
      case '\\': push(0x5c); break;
      case '"':
      case "'":
        if (e !== q) throw new SyntaxError();
        push(e.charCodeAt(0));
        break;
      case 'x':
      case 'u':
      case 'U': {
        const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const digits = body.slice(i, i + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits)) throw new SyntaxError();
        i += n;
        const v = parseInt(digits, 16);
        if (e === 'x') {
          if (q === "'") push(v);
          else { bytes.push(v); runes++; lastRune = v; }
        } else {
          if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) throw new SyntaxError();
          push(v);
        }
        break;
      }
      default: {
        if (e !== undefined && e >= '0' && e <= '7') {
          const digits = body.slice(i - 1, i + 2);
          if (!/^[0-7]{3}$/.test(digits)) throw new SyntaxError();
          const v = parseInt(digits, 8);
          if (v > 255) throw new SyntaxError();
          i += 2;
          if (q === "'") push(v);
          else { bytes.push(v); runes++; lastRune = v; }
          break;
        }
        throw new SyntaxError();
      }
    }
  }
  if (q === "'") {
    if (runes !== 1) throw new SyntaxError();
    return lastRune;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Decimal digits of a finite float: value = 0.d1d2d3… × 10^dp; digits has no trailing zeros ('' for 0). */
interface Decimal { digits: string; dp: number }

/** The exact decimal expansion of a double (every double is a finite decimal). */
function exactDecimal(v: number): Decimal {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(v));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  if (mant === 0n) return { digits: '', dp: 0 };
  let s: string;
  let dp: number;
  if (exp >= 0) {
    s = (mant << BigInt(exp)).toString();
    dp = s.length;
  } else {
    s = (mant * 5n ** BigInt(-exp)).toString();
    dp = s.length + exp;
  }
  return { digits: s.replace(/0+$/, ''), dp };
}

/** The shortest digits that read back as v (JS and Go both pick the closest shortest candidate). */
function shortestDecimal(v: number): Decimal {
  if (v === 0) return { digits: '', dp: 0 };
  const [mant, e] = Math.abs(v).toExponential().split('e') as [string, string];
  return { digits: mant.replace('.', '').replace(/0+$/, ''), dp: Number(e) + 1 };
}

/** Go's decimal.Round: to nd significant digits, exact halves to even. */
function roundDecimal(d: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= d.digits.length) return d;
  const next = d.digits[nd] as string;
  const up = next === '5' && nd + 1 === d.digits.length
    ? nd > 0 && Number(d.digits[nd - 1]) % 2 === 1
    : next >= '5';
  if (!up) return { digits: d.digits.slice(0, nd).replace(/0+$/, ''), dp: d.dp };
  const ds = d.digits.slice(0, nd).split('');
  let i = nd - 1;
  while (i >= 0 && ds[i] === '9') i--;
  if (i < 0) return { digits: '1', dp: d.dp + 1 };
  ds[i] = String(Number(ds[i]) + 1);
  return { digits: ds.slice(0, i + 1).join(''), dp: d.dp };
}

function fmtE(neg: boolean, d: Decimal, prec: number, verb: 'e' | 'E'): string {
  let s = neg ? '-' : '';
  s += d.digits.length === 0 ? '0' : d.digits[0];
  if (prec > 0) {
    s += '.';
    for (let i = 1; i <= prec; i++) s += d.digits[i] ?? '0';
  }
  const exp = d.digits.length === 0 ? 0 : d.dp - 1;
  const ae = Math.abs(exp);
  return `${s}${verb}${exp < 0 ? '-' : '+'}${ae < 10 ? `0${ae}` : ae}`;
}

function fmtF(neg: boolean, d: Decimal, prec: number): string {
  let s = neg ? '-' : '';
  if (d.dp > 0) {
    for (let i = 0; i < d.dp; i++) s += d.digits[i] ?? '0';
  } else s += '0';
  if (prec > 0) {
    s += '.';
    for (let i = 1; i <= prec; i++) {
      const j = d.dp + i - 1;
      s += j >= 0 && j < d.digits.length ? d.digits[j] : '0';
    }
  }
  return s;
}

/** A double's sign, 53-bit mantissa and binary exponent as strconv's genericFtoa reads them (value = mant × 2^(exp-52)). */
function binaryParts(v: number): { neg: boolean; mant: bigint; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  let exp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exp === 0) exp++;
  else mant |= 1n << 52n;
  return { neg: hi >>> 31 === 1, mant, exp: exp - 1023 };
}

/** strconv's %b: decimal mantissa and binary exponent, -ddddp±ddd. */
function fmtB(v: number): string {
  const { neg, mant, exp } = binaryParts(v);
  const e = exp - 52;
  return `${neg ? '-' : ''}${mant}p${e >= 0 ? '+' : ''}${e}`;
}

/** strconv's %x/%X: -0x1.hhhhp±dd, rounded to prec hex digits (half to even), prec -1 for as many as needed. */
function fmtX(v: number, prec: number, upper: boolean): string {
  const parts = binaryParts(v);
  let { mant, exp } = parts;
  if (mant === 0n) exp = 0;
  const ONE = 1n << 60n;
  const MASK = (1n << 64n) - 1n;
  // Leading 1 (if any) at bit 60, as strconv shifts it.
  mant = (mant << 8n) & MASK;
  while (mant !== 0n && (mant & ONE) === 0n) {
    mant = (mant << 1n) & MASK;
    exp--;
  }
  if (prec >= 0 && prec < 15) {
    const shift = BigInt(prec * 4);
    const extra = (mant << shift) & (ONE - 1n);
    mant >>= 60n - shift;
    if ((extra | (mant & 1n)) > 1n << 59n) mant++;
    mant = (mant << (60n - shift)) & MASK;
    if ((mant & (1n << 61n)) !== 0n) {
      mant >>= 1n;
      exp++;
    }
  }
  const hex = upper ? '0123456789ABCDEF' : '0123456789abcdef';
  let out = `${parts.neg ? '-' : ''}0${upper ? 'X' : 'x'}${(mant >> 60n) & 1n}`;
  mant = (mant << 4n) & MASK;
  if (prec < 0 && mant !== 0n) {
    out += '.';
    while (mant !== 0n) {
      out += hex[Number((mant >> 60n) & 15n)];
      mant = (mant << 4n) & MASK;
    }
  } else if (prec > 0) {
    out += '.';
    for (let i = 0; i < prec; i++) {
      out += hex[Number((mant >> 60n) & 15n)];
      mant = (mant << 4n) & MASK;
    }
  }
  const ae = Math.abs(exp);
  return `${out}${upper ? 'P' : 'p'}${exp < 0 ? '-' : '+'}${ae < 10 ? `0${ae}` : ae}`;
}

export type FloatFormat = 'b' | 'e' | 'E' | 'f' | 'g' | 'G' | 'x' | 'X';

/** strconv.FormatFloat(v, fmt, prec, 64); prec -1 means the shortest representation that round-trips. */
export function formatFloat(v: number, fmt: FloatFormat, prec: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (fmt === 'b') return fmtB(v);
  if (fmt === 'x' || fmt === 'X') return fmtX(v, prec, fmt === 'X');
  const neg = v < 0 || Object.is(v, -0);
  const shortest = prec < 0;
  let d: Decimal;
  if (shortest) d = shortestDecimal(v);
  else {
    const exact = exactDecimal(v);
    if (fmt === 'f') d = roundDecimal(exact, exact.dp + prec);
    else if (fmt === 'e' || fmt === 'E') d = roundDecimal(exact, prec + 1);
    else d = roundDecimal(exact, prec === 0 ? 1 : prec);
  }
  switch (fmt) {
    case 'e':
    case 'E':
      return fmtE(neg, d, shortest ? Math.max(d.digits.length - 1, 0) : prec, fmt);
    case 'f':
      return fmtF(neg, d, shortest ? Math.max(d.digits.length - d.dp, 0) : prec);
    case 'g':
    case 'G': {
      const nd = d.digits.length;
      let p = shortest ? nd : prec === 0 ? 1 : prec;
      let eprec = p;
      if (eprec > nd && nd >= d.dp) eprec = nd;
      // Shortest %g switches to an exponent from 1e+06 on, which is why Go prints 1e+06 for a million.
      if (shortest) eprec = 6;
      const exp = d.dp - 1;
      if (exp < -4 || exp >= eprec) {
        if (p > nd) p = nd;
        return fmtE(neg, d, p - 1, fmt === 'g' ? 'e' : 'E');
      }
      if (p > d.dp) p = nd;
      return fmtF(neg, d, Math.max(p - d.dp, 0));
    }
  }
}

export type NumParse = { ok: true; value: number } | { ok: false; reason: 'invalid syntax' | 'value out of range' };
export type IntParse = { ok: true; value: bigint } | { ok: false; reason: 'invalid syntax' | 'value out of range' };

/** strconv.ParseInt(s, 10, 64), exactly (a bigint: int64 values beyond ±2^53 keep every digit). */
export function parseGoInt(s: string): IntParse {
  if (!/^[+-]?[0-9]+$/.test(s)) return { ok: false, reason: 'invalid syntax' };
  const b = BigInt(s);
  if (b > 9223372036854775807n || b < -9223372036854775808n) return { ok: false, reason: 'value out of range' };
  return { ok: true, value: b };
}

/** strconv.ParseUint(s, 10, 64), exactly: no sign allowed. */
export function parseGoUint(s: string): IntParse {
  if (!/^[0-9]+$/.test(s)) return { ok: false, reason: 'invalid syntax' };
  const b = BigInt(s);
  if (b > 18446744073709551615n) return { ok: false, reason: 'value out of range' };
  return { ok: true, value: b };
}

/** strconv.ParseFloat(s, 64) for decimal syntax plus inf/infinity/nan (any case) and underscores-free input. */
export function parseGoFloat(s: string): NumParse {
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(s);
  if (special) {
    if (special[2]?.toLowerCase() === 'nan') return special[1] === '' ? { ok: true, value: NaN } : { ok: false, reason: 'invalid syntax' };
    return { ok: true, value: special[1] === '-' ? -Infinity : Infinity };
  }
  if (/^[+-]?0[xX]/.test(s)) {
    const m = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?[0-9]+)$/.exec(s);
    if (!m || (m[2] === '' && (m[3] ?? '') === '')) return { ok: false, reason: 'invalid syntax' };
    const mant = parseInt(`${m[2]}${m[3] ?? ''}` || '0', 16) / 16 ** (m[3] ?? '').length;
    const v = mant * 2 ** Number(m[4]);
    return Number.isFinite(v) ? { ok: true, value: m[1] === '-' ? -v : v } : { ok: false, reason: 'value out of range' };
  }
  if (!/^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(s)) return { ok: false, reason: 'invalid syntax' };
  const v = Number(s);
  return Number.isFinite(v) ? { ok: true, value: v } : { ok: false, reason: 'value out of range' };
}

/** strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Go's string ordering is byte order of UTF-8, which is code point order (not UTF-16 unit order). */
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // Surrogates encode code points above every BMP character, including U+E000..U+FFFF.
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Length of a string in UTF-8 bytes, which is what Go's len and byte columns count. */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
