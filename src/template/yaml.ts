/**
 * gopkg.in/yaml.v2 (2.4.0, what consul-template builds with) Marshal for template values, byte for
 * byte: its key order, its choice between plain, single-quoted, double-quoted and literal scalars,
 * and its libyaml emitter's indentation and folding of long lines at 80 columns. Templates that
 * render YAML configs diff-check their output, so "equivalent YAML" would show up as a change.
 *
 * The emitter below keeps libyaml's state (column, indent stack, whitespace, indention, contexts)
 * and follows its state functions for the events yaml.v2 sends; the parts yaml.v2 never reaches
 * (anchors, tags other than !!binary, canonical output, folded scalars) are left out.
 */
import { formatFloat, parseGoFloat } from './strconv.js';
import type { MapKey, Value } from './values.js';
import { GoChan, GoFloat, GoInt, GoMap, GoStruct, isSlice, typeName } from './values.js';

export class YamlError extends Error {}

const BEST_INDENT = 2;
const BEST_WIDTH = 80;
/** Deeper values would run the emitter out of stack; yaml.v2's own reader stops at 10,000 levels. */
const MAX_DEPTH = 1500;

// ---- yaml.v2 resolve.go: the tag a plain scalar would be read back as ----------------------------

export type Resolved =
  | { readonly tag: 'str' | 'timestamp'; readonly value: string }
  | { readonly tag: 'null'; readonly value: undefined }
  | { readonly tag: 'bool'; readonly value: boolean }
  | { readonly tag: 'int'; readonly value: bigint }
  | { readonly tag: 'float'; readonly value: number };

const MAP_ITEMS: ReadonlyMap<string, Resolved> = new Map<string, Resolved>([
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'].map((k): [string, Resolved] => [k, { tag: 'bool', value: true }]),
  ...['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'].map((k): [string, Resolved] => [k, { tag: 'bool', value: false }]),
  ...['', '~', 'null', 'Null', 'NULL'].map((k): [string, Resolved] => [k, { tag: 'null', value: undefined }]),
  ...['.nan', '.NaN', '.NAN'].map((k): [string, Resolved] => [k, { tag: 'float', value: NaN }]),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((k): [string, Resolved] => [k, { tag: 'float', value: Infinity }]),
  ...['-.inf', '-.Inf', '-.INF'].map((k): [string, Resolved] => [k, { tag: 'float', value: -Infinity }]),
]);
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const BASE60_FLOAT = /^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$/;

/**
 * Go's strconv.ParseInt, else ParseUint, (s, 0, 64): a sign, 0x/0o/0b/0 prefixes (resolve has taken
 * the underscores out). ParseInt takes [-2^63, 2^63-1]; ParseUint [0, 2^64-1] without a minus sign.
 */
function goParseInt(s: string): bigint | undefined {
  const negative = s.startsWith('-');
  const body = /^[+-]/.test(s) ? s.slice(1) : s;
  if (!/^(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)$/.test(body)) return undefined;
  const n = /^0[xXbBoO]/.test(body) ? BigInt(body.toLowerCase()) : body.length > 1 && body.startsWith('0') ? BigInt(`0o${body.slice(1)}`) : BigInt(body);
  const v = negative ? -n : n;
  return v >= -(2n ** 63n) && v < 2n ** 64n ? v : undefined;
}

/** time.Parse with yaml.v2's allowedTimestampFormats succeeds. */
function isTimestamp(s: string): boolean {
  if (!/^[0-9]{4}-/.test(s)) return false;
  const m = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2}))|(?: ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.[0-9]+)?))?$/.exec(s);
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate()) return false;
  const h = m[4] ?? m[7];
  if (h === undefined) return true;
  const [mi, se] = [m[5] ?? m[8], m[6] ?? m[9]].map(Number) as [number, number];
  return Number(h) <= 23 && mi <= 59 && se <= 59;
}

/** resolve("", s): what a plain scalar is read back as. */
export function resolvePlain(s: string): Resolved {
  const c = s === '' ? 'N' : s[0] as string;
  // Only strings starting with one of these are looked at further ("<<" starts with none).
  if (!/^[-+0-9yYnNtTfFoO~.N]$/.test(c)) return { tag: 'str', value: s };
  const item = MAP_ITEMS.get(s);
  if (item !== undefined) return item;
  if (c === '.') {
    const f = parseGoFloat(s);
    return f.ok ? { tag: 'float', value: f.value } : { tag: 'str', value: s };
  }
  if (/[-+0-9]/.test(c)) {
    if (isTimestamp(s)) return { tag: 'timestamp', value: s };
    const plain = s.replace(/_/g, '');
    const i = goParseInt(plain);
    if (i !== undefined) return { tag: 'int', value: i };
    if (YAML_STYLE_FLOAT.test(plain)) {
      const f = parseGoFloat(plain);
      if (f.ok) return { tag: 'float', value: f.value };
    }
    if (/^0b[01]+$/.test(plain) && BigInt(plain) < 2n ** 64n) return { tag: 'int', value: BigInt(plain) };
    if (/^-0b[01]+$/.test(plain) && BigInt(plain.slice(1)) <= 2n ** 63n) return { tag: 'int', value: -BigInt(plain.slice(1)) };
  }
  return { tag: 'str', value: s };
}

// ---- yaml.v2 sorter.go: the order of map keys ------------------------------------------------------

const isLetter = (c: number): boolean => /\p{L}/u.test(String.fromCodePoint(c));
const isDigit = (c: number): boolean => /\p{Nd}/u.test(String.fromCodePoint(c));

/**
 * keyList.Less for two keys of one map (both numbers or both strings). It is not a total order
 * ("a0b" < "a1" < "a01" < "a0b"): for such keys Go's own output follows the map's random iteration
 * order into its sort, and ours is one of the orders Go can give.
 */
export function keyLess(a: MapKey, b: MapKey): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a < b;
  const ar = [...String(a)].map((c) => c.codePointAt(0) as number);
  const br = [...String(b)].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < ar.length && i < br.length; i++) {
    const ai0 = ar[i] as number;
    const bi0 = br[i] as number;
    if (ai0 === bi0) continue;
    const al = isLetter(ai0);
    const bl = isLetter(bi0);
    if (al && bl) return ai0 < bi0;
    if (al || bl) return bl;
    // int64, wrapping as Go's does on a long run of digits.
    let an = 0n;
    let bn = 0n;
    if (ai0 === 0x30 || bi0 === 0x30) {
      for (let j = i - 1; j >= 0 && isDigit(ar[j] as number); j--) {
        if (ar[j] !== 0x30) {
          an = 1n;
          bn = 1n;
          break;
        }
      }
    }
    let ai = i;
    let bi = i;
    for (; ai < ar.length && isDigit(ar[ai] as number); ai++) an = BigInt.asIntN(64, an * 10n + BigInt((ar[ai] as number) - 0x30));
    for (; bi < br.length && isDigit(br[bi] as number); bi++) bn = BigInt.asIntN(64, bn * 10n + BigInt((br[bi] as number) - 0x30));
    if (an !== bn) return an < bn;
    if (ai !== bi) return ai < bi;
    return ai0 < bi0;
  }
  return ar.length < br.length;
}

// ---- the values yaml.v2's encoder turns into events --------------------------------------------------

type Style = 'plain' | 'single' | 'double' | 'literal';
type Node =
  | { readonly kind: 'scalar'; readonly value: string; readonly style: Style }
  | { readonly kind: 'seq'; readonly items: readonly Node[] }
  | { readonly kind: 'map'; readonly pairs: readonly (readonly [Node, Node])[] };

const plain = (value: string): Node => ({ kind: 'scalar', value, style: 'plain' });

function stringNode(s: string): Node {
  const style: Style = s.includes('\n') ? 'literal' : resolvePlain(s).tag === 'str' && !BASE60_FLOAT.test(s) ? 'plain' : 'double';
  return { kind: 'scalar', value: s, style };
}

function floatText(f: number): string {
  if (f === Infinity) return '.inf';
  if (f === -Infinity) return '-.inf';
  if (Number.isNaN(f)) return '.nan';
  return formatFloat(f, 'g', -1);
}

/** Struct fields are keyed by their lower-cased names, in declaration order (yaml.v2's default for untagged fields). */
function toNode(v: Value, depth: number): Node {
  if (depth > MAX_DEPTH) throw new YamlError(`value nested more than ${MAX_DEPTH} levels deep`);
  if (v === undefined) return plain('null');
  if (typeof v === 'string') return stringNode(v);
  if (typeof v === 'boolean') return plain(v ? 'true' : 'false');
  if (typeof v === 'number') return plain(String(v));
  if (v instanceof GoInt) return plain(v.value.toString());
  if (v instanceof GoFloat) return plain(floatText(v.value));
  if (v instanceof GoChan) throw new YamlError(`cannot marshal type: ${v.typeName}`);
  if (v instanceof GoMap) {
    const keys = [...v.entries.keys()].sort((a, b) => (keyLess(a, b) ? -1 : keyLess(b, a) ? 1 : 0));
    return { kind: 'map', pairs: keys.map((k) => [toNode(k, depth + 1), toNode(v.entries.get(k), depth + 1)] as const) };
  }
  if (v instanceof GoStruct) {
    return { kind: 'map', pairs: v.type.fields.map((f) => [stringNode(f.toLowerCase()), toNode(v.get(f), depth + 1)] as const) };
  }
  if (isSlice(v)) return { kind: 'seq', items: v.map((e) => toNode(e, depth + 1)) };
  throw new YamlError(`cannot marshal type: ${typeName(v)}`);
}

// ---- libyaml's emitter ---------------------------------------------------------------------------

const isBreak = (c: number | undefined): boolean => c === 0x0d || c === 0x0a || c === 0x85 || c === 0x2028 || c === 0x2029;
const isSpace = (c: number | undefined): boolean => c === 0x20;
const isBlank = (c: number | undefined): boolean => c === 0x20 || c === 0x09;
/** Blank, break, NUL, or past the end. */
const isBlankz = (c: number | undefined): boolean => c === undefined || c === 0 || isBlank(c) || isBreak(c);
/** libyaml's is_printable over UTF-8 bytes, for a code point (a 4-byte sequence is never printable). */
const isPrintable = (c: number): boolean => c === 0x0a || (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd && c !== 0xfeff);

interface Analysis {
  readonly multiline: boolean;
  readonly flowPlain: boolean;
  readonly blockPlain: boolean;
  readonly singleQuoted: boolean;
  readonly block: boolean;
}

function analyze(cps: readonly number[]): Analysis {
  if (cps.length === 0) return { multiline: false, flowPlain: false, blockPlain: true, singleQuoted: true, block: false };
  let blockIndicators = false;
  let flowIndicators = false;
  let lineBreaks = false;
  let special = false;
  let leadingSpace = false;
  let leadingBreak = false;
  let trailingSpace = false;
  let trailingBreak = false;
  let breakSpace = false;
  let spaceBreak = false;
  let previousSpace = false;
  let previousBreak = false;
  const s3 = String.fromCodePoint(...cps.slice(0, 3));
  if (s3 === '---' || s3 === '...') {
    blockIndicators = true;
    flowIndicators = true;
  }
  let precededByWhitespace = true;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i] as number;
    const followedByWhitespace = i + 1 >= cps.length || isBlank(cps[i + 1]);
    const ch = String.fromCodePoint(c);
    if (i === 0) {
      if ('#,[]{}&*!|>\'"%@`'.includes(ch)) {
        flowIndicators = true;
        blockIndicators = true;
      } else if (ch === '?' || ch === ':') {
        flowIndicators = true;
        if (followedByWhitespace) blockIndicators = true;
      } else if (ch === '-' && followedByWhitespace) {
        flowIndicators = true;
        blockIndicators = true;
      }
    } else if (',?[]{}'.includes(ch)) {
      flowIndicators = true;
    } else if (ch === ':') {
      flowIndicators = true;
      if (followedByWhitespace) blockIndicators = true;
    } else if (ch === '#' && precededByWhitespace) {
      flowIndicators = true;
      blockIndicators = true;
    }
    if (!isPrintable(c)) special = true;
    if (isSpace(c)) {
      if (i === 0) leadingSpace = true;
      if (i === cps.length - 1) trailingSpace = true;
      if (previousBreak) breakSpace = true;
      previousSpace = true;
      previousBreak = false;
    } else if (isBreak(c)) {
      lineBreaks = true;
      if (i === 0) leadingBreak = true;
      if (i === cps.length - 1) trailingBreak = true;
      if (previousSpace) spaceBreak = true;
      previousSpace = false;
      previousBreak = true;
    } else {
      previousSpace = false;
      previousBreak = false;
    }
    precededByWhitespace = isBlankz(c);
  }
  let flowPlain = true;
  let blockPlain = true;
  let singleQuoted = true;
  let block = true;
  if (leadingSpace || leadingBreak || trailingSpace || trailingBreak) flowPlain = blockPlain = false;
  if (trailingSpace) block = false;
  if (breakSpace) flowPlain = blockPlain = singleQuoted = false;
  if (spaceBreak || special) flowPlain = blockPlain = singleQuoted = block = false;
  if (lineBreaks) flowPlain = blockPlain = false;
  if (flowIndicators) flowPlain = false;
  if (blockIndicators) blockPlain = false;
  return { multiline: lineBreaks, flowPlain, blockPlain, singleQuoted, block };
}

const hex = (v: number, digits: number): string => v.toString(16).toUpperCase().padStart(digits, '0');

class Emitter {
  out = '';
  column = 0;
  indent = -1;
  readonly indents: number[] = [];
  whitespace = true;
  indention = true;
  flowLevel = 0;
  rootContext = false;
  sequenceContext = false;
  mappingContext = false;
  simpleKeyContext = false;

  put(s: string): void {
    this.out += s;
    this.column += 1;
  }

  putBreak(): void {
    this.out += '\n';
    this.column = 0;
  }

  write(c: number): void {
    this.out += String.fromCodePoint(c);
    this.column += 1;
  }

  writeBreak(c: number): void {
    if (c === 0x0a) this.putBreak();
    else {
      this.write(c);
      this.column = 0;
    }
  }

  increaseIndent(flow: boolean, indentless: boolean): void {
    this.indents.push(this.indent);
    if (this.indent < 0) this.indent = flow ? BEST_INDENT : 0;
    else if (!indentless) this.indent += BEST_INDENT;
  }

  popIndent(): void {
    this.indent = this.indents.pop() as number;
  }

  writeIndent(): void {
    const indent = Math.max(this.indent, 0);
    if (!this.indention || this.column > indent || (this.column === indent && !this.whitespace)) this.putBreak();
    while (this.column < indent) this.put(' ');
    this.whitespace = true;
    this.indention = true;
  }

  writeIndicator(indicator: string, needWhitespace: boolean, isWhitespace: boolean, isIndention: boolean): void {
    if (needWhitespace && !this.whitespace) this.put(' ');
    for (const c of indicator) this.put(c);
    this.whitespace = isWhitespace;
    this.indention = this.indention && isIndention;
  }

  node(n: Node, root: boolean, sequence: boolean, mapping: boolean, simpleKey: boolean): void {
    this.rootContext = root;
    this.sequenceContext = sequence;
    this.mappingContext = mapping;
    this.simpleKeyContext = simpleKey;
    if (n.kind === 'scalar') this.scalar(n);
    else if (n.kind === 'seq') {
      if (this.flowLevel > 0 || n.items.length === 0) this.flowCollection('[', ']');
      else this.blockSequence(n.items);
    } else if (this.flowLevel > 0 || n.pairs.length === 0) this.flowCollection('{', '}');
    else this.blockMapping(n.pairs);
  }

  /** Only empty collections are written in flow style here (yaml.v2 asks for block style). */
  flowCollection(open: string, close: string): void {
    this.writeIndicator(open, true, true, false);
    this.increaseIndent(true, false);
    this.flowLevel++;
    this.flowLevel--;
    this.popIndent();
    this.writeIndicator(close, false, false, false);
  }

  blockSequence(items: readonly Node[]): void {
    this.increaseIndent(false, this.mappingContext && !this.indention);
    for (const item of items) {
      this.writeIndent();
      this.writeIndicator('-', true, false, true);
      this.node(item, false, true, false, false);
    }
    this.popIndent();
  }

  blockMapping(pairs: readonly (readonly [Node, Node])[]): void {
    this.increaseIndent(false, false);
    for (const [k, v] of pairs) {
      this.writeIndent();
      if (simpleKey(k)) {
        this.node(k, false, false, true, true);
        this.writeIndicator(':', false, false, false);
        this.node(v, false, false, true, false);
      } else {
        this.writeIndicator('?', true, false, true);
        this.node(k, false, false, true, false);
        this.writeIndent();
        this.writeIndicator(':', true, false, true);
        this.node(v, false, false, true, false);
      }
    }
    this.popIndent();
  }

  scalar(n: Extract<Node, { kind: 'scalar' }>): void {
    const cps = [...n.value].map((c) => c.codePointAt(0) as number);
    const a = analyze(cps);
    let style = n.style;
    if (this.simpleKeyContext && a.multiline) style = 'double';
    if (style === 'plain') {
      if ((this.flowLevel > 0 && !a.flowPlain) || (this.flowLevel === 0 && !a.blockPlain)) style = 'single';
      if (cps.length === 0 && (this.flowLevel > 0 || this.simpleKeyContext)) style = 'single';
    }
    if (style === 'single' && !a.singleQuoted) style = 'double';
    if (style === 'literal' && (!a.block || this.flowLevel > 0 || this.simpleKeyContext)) style = 'double';
    this.increaseIndent(true, false);
    const allowBreaks = !this.simpleKeyContext;
    if (style === 'plain' || style === 'single') this.plainOrSingleQuoted(cps, allowBreaks, style === 'single');
    else if (style === 'double') this.doubleQuoted(cps, allowBreaks);
    else this.literal(cps);
    this.popIndent();
  }

  /** A plain or single-quoted scalar: libyaml writes both the same way but for the quotes. */
  plainOrSingleQuoted(cps: readonly number[], allowBreaks: boolean, quoted: boolean): void {
    if (quoted) this.writeIndicator("'", true, false, false);
    else if (!this.whitespace) this.put(' ');
    let spaces = false;
    let breaks = false;
    for (let i = 0; i < cps.length; i++) {
      const c = cps[i] as number;
      if (isSpace(c)) {
        // A quoted scalar never folds at its first or last character.
        const inner = !quoted || (i > 0 && i < cps.length - 1);
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && inner && !isSpace(cps[i + 1])) this.writeIndent();
        else this.write(c);
        spaces = true;
      } else if (isBreak(c)) {
        if (!breaks && c === 0x0a) this.putBreak();
        this.writeBreak(c);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        if (quoted && c === 0x27) this.put("'");
        this.write(c);
        this.indention = false;
        spaces = false;
        breaks = false;
      }
    }
    if (quoted) this.writeIndicator("'", false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  doubleQuoted(cps: readonly number[], allowBreaks: boolean): void {
    let spaces = false;
    this.writeIndicator('"', true, false, false);
    // libyaml's is_bom looks at the start of the value, whichever character it is asked about.
    const bom = cps[0] === 0xfeff;
    for (let i = 0; i < cps.length; i++) {
      const c = cps[i] as number;
      if (!isPrintable(c) || bom || isBreak(c) || c === 0x22 || c === 0x5c) {
        this.put('\\');
        const short: Record<number, string> = { 0: '0', 7: 'a', 8: 'b', 9: 't', 0x0a: 'n', 0x0b: 'v', 0x0c: 'f', 0x0d: 'r', 0x1b: 'e', 0x22: '"', 0x5c: '\\', 0x85: 'N', 0xa0: '_', 0x2028: 'L', 0x2029: 'P' };
        const esc = short[c];
        if (esc !== undefined) this.put(esc);
        else {
          const [letter, digits] = c <= 0xff ? ['x', 2] : c <= 0xffff ? ['u', 4] : ['U', 8];
          this.put(letter as string);
          for (const d of hex(c, digits as number)) this.put(d);
        }
        spaces = false;
      } else if (isSpace(c)) {
        if (allowBreaks && !spaces && this.column > BEST_WIDTH && i > 0 && i < cps.length - 1) {
          this.writeIndent();
          if (isSpace(cps[i + 1])) this.put('\\');
        } else this.write(c);
        spaces = true;
      } else {
        this.write(c);
        spaces = false;
      }
    }
    this.writeIndicator('"', false, false, false);
    this.whitespace = false;
    this.indention = false;
  }

  literal(cps: readonly number[]): void {
    this.writeIndicator('|', true, false, false);
    if (isSpace(cps[0]) || isBreak(cps[0])) this.writeIndicator(String(BEST_INDENT), false, false, false);
    let chomp = '';
    if (cps.length === 0) chomp = '-';
    else if (!isBreak(cps[cps.length - 1])) chomp = '-';
    else if (cps.length === 1 || isBreak(cps[cps.length - 2])) chomp = '+';
    if (chomp !== '') this.writeIndicator(chomp, false, false, false);
    this.putBreak();
    this.indention = true;
    this.whitespace = true;
    let breaks = true;
    for (const c of cps) {
      if (isBreak(c)) {
        this.writeBreak(c);
        this.indention = true;
        breaks = true;
      } else {
        if (breaks) this.writeIndent();
        this.write(c);
        this.indention = false;
        breaks = false;
      }
    }
  }
}

/** check_simple_key: a scalar on one line of at most 128 bytes (keys here are never collections). */
function simpleKey(k: Node): boolean {
  if (k.kind !== 'scalar') return false;
  return !analyze([...k.value].map((c) => c.codePointAt(0) as number)).multiline && Buffer.byteLength(k.value) <= 128;
}

/** yaml.Marshal(v): the document, ending in a line break. */
export function marshalYaml(v: Value): string {
  const e = new Emitter();
  e.node(toNode(v, 0), true, false, false, false);
  // Document end: write_indent (a line break after the last line), implicit, so no "...".
  e.writeIndent();
  return e.out;
}
