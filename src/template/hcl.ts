/**
 * The HCL subset consul-template's documentation uses: `key = value` pairs, `name { … }` blocks
 * (repeated blocks become lists), strings with escapes and heredocs, numbers, booleans, lists,
 * and #, // and /* comments. Errors name the line and column.
 */
import { SwitchyardError } from '../core/errors.js';

export type HclValue = string | number | boolean | HclValue[] | HclObject;
export interface HclObject { [key: string]: HclValue }

export function parseHcl(text: string, file: string): HclObject {
  let i = 0;
  let line = 1;
  let col = 1;
  const fail = (msg: string): never => {
    throw new SwitchyardError('SY_ERR_CONFIG', `${file}:${line}:${col}: ${msg}`);
  };
  const advance = (n = 1): void => {
    for (let k = 0; k < n; k++) {
      if (text[i] === '\n') {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  const skip = (): void => {
    for (;;) {
      const c = text[i];
      if (c === undefined) return;
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === ',') advance();
      else if (c === '#' || (c === '/' && text[i + 1] === '/')) while (i < text.length && text[i] !== '\n') advance();
      else if (c === '/' && text[i + 1] === '*') {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) fail('unterminated /* comment');
        advance(end + 2 - i);
      } else return;
    }
  };
  const ident = (): string => {
    const m = /^[A-Za-z_][A-Za-z0-9_.-]*/.exec(text.slice(i));
    if (!m) fail(`expected a name, found ${JSON.stringify(text.slice(i, i + 10))}`);
    advance((m as RegExpExecArray)[0].length);
    return (m as RegExpExecArray)[0];
  };
  const str = (): string => {
    advance(); // opening quote
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n') fail('unterminated string');
      if (c === '"') {
        advance();
        return out;
      }
      if (c === '\\') {
        const n = text[i + 1];
        const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
        if (n !== undefined && n in map) {
          out += map[n];
          advance(2);
          continue;
        }
        fail(`unknown escape \\${n ?? ''}`);
      }
      out += c;
      advance();
    }
  };
  const heredoc = (): string => {
    const m = /^<<-?([A-Za-z_][A-Za-z0-9_]*)\r?\n/.exec(text.slice(i));
    if (!m) fail('malformed heredoc (expected <<EOF and a newline)');
    const tag = (m as RegExpExecArray)[1] as string;
    const indent = text[i + 2] === '-';
    advance((m as RegExpExecArray)[0].length);
    const lines: string[] = [];
    for (;;) {
      if (i >= text.length) fail(`heredoc ${tag} is not closed`);
      const nl = text.indexOf('\n', i);
      const l = text.slice(i, nl < 0 ? text.length : nl);
      advance((nl < 0 ? text.length : nl + 1) - i);
      if (l.trim() === tag) break;
      lines.push(l);
    }
    let body = lines.join('\n');
    if (indent) {
      const min = Math.min(...lines.filter((l) => l.trim()).map((l) => /^\s*/.exec(l)![0].length));
      body = lines.map((l) => l.slice(Number.isFinite(min) ? min : 0)).join('\n');
    }
    return `${body}\n`;
  };
  const value = (): HclValue => {
    skip();
    const c = text[i];
    if (c === '"') return str();
    if (c === '<' && text[i + 1] === '<') return heredoc();
    if (c === '[') {
      advance();
      const list: HclValue[] = [];
      for (;;) {
        skip();
        if (text[i] === ']') {
          advance();
          return list;
        }
        if (i >= text.length) fail('unterminated list');
        list.push(value());
      }
    }
    if (c === '{') {
      advance();
      return body(true);
    }
    const m = /^(-?\d+(\.\d+)?|true|false)\b/.exec(text.slice(i));
    if (m) {
      advance(m[0].length);
      if (m[0] === 'true' || m[0] === 'false') return m[0] === 'true';
      // HCL reads a leading 0 as octal (strconv.ParseInt base 0): `perms = 0640`.
      return /^-?0[0-7]+$/.test(m[0]) ? parseInt(m[0], 8) : Number(m[0]);
    }
    return fail(`expected a value, found ${JSON.stringify(text.slice(i, i + 10))}`);
  };
  const put = (obj: HclObject, key: string, v: HclValue, block: boolean): void => {
    // On a JavaScript object this key would set the prototype instead of a field.
    if (key === '__proto__') fail('the key "__proto__" is not supported');
    if (!block) {
      obj[key] = v;
      return;
    }
    // Repeated blocks (several `template { }`) collect into a list.
    const prev = Object.hasOwn(obj, key) ? obj[key] : undefined;
    obj[key] = prev === undefined ? [v] : Array.isArray(prev) ? [...prev, v] : [prev, v];
  };
  const body = (nested: boolean): HclObject => {
    const obj: HclObject = {};
    for (;;) {
      skip();
      if (i >= text.length) {
        if (nested) fail('missing closing }');
        return obj;
      }
      if (text[i] === '}') {
        if (!nested) fail('unexpected }');
        advance();
        return obj;
      }
      const key = text[i] === '"' ? str() : ident();
      skip();
      if (text[i] === '=' || text[i] === ':') {
        advance();
        put(obj, key, value(), false);
      } else if (text[i] === '{') {
        advance();
        put(obj, key, body(true), true);
      } else if (text[i] === '"') {
        // A labelled block: name "label" { … } → name = [{ label: { … } }]
        const label = str();
        skip();
        if (text[i] !== '{') fail(`expected { after ${key} "${label}"`);
        advance();
        put(obj, key, { [label]: body(true) }, true);
      } else fail(`expected = or { after ${JSON.stringify(key)}`);
    }
  };
  return body(false);
}
