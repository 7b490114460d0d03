// Go RE2 regular expressions on top of JS RegExp: syntax translation, ReplaceAllString and $-expansion rules.

export class RegexpError extends Error {}

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7F', blank: '\\t ', cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9', graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-\\/:-@\\[-`{-~', space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
};

// Go's \s is ASCII white space only (no \v), unlike JS's Unicode-aware \s.
const PERL_CLASSES: Readonly<Record<string, string>> = {
  d: '0-9', s: '\\t\\n\\f\\r ', w: '0-9A-Za-z_',
};

const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/'.split(''));

// Unicode-mode JS allows identity escapes only for syntax characters, plus '-' inside a class.
function escapeLiteral(ch: string, inClass: boolean): string {
  return JS_SYNTAX.has(ch) || (inClass && ch === '-') ? `\\${ch}` : ch;
}

/** Translates an escape at src[i] === '\\' (outside or inside a class); returns the JS text and new index. */
function translateEscape(src: string, i: number, inClass: boolean): [string, number] {
  const c = src[i + 1];
  if (c === undefined) throw new RegexpError(`error parsing regexp: trailing backslash at end of expression: \`\``);
  switch (c) {
    case 'd': case 'w': return [inClass ? PERL_CLASSES[c] as string : `[${PERL_CLASSES[c]}]`, i + 2];
    case 's': return [inClass ? PERL_CLASSES.s as string : `[${PERL_CLASSES.s}]`, i + 2];
    case 'D': case 'W': case 'S': {
      const set = PERL_CLASSES[c.toLowerCase()] as string;
      if (inClass) throw new RegexpError(`error parsing regexp: negated Perl class in a character class is not supported: \`\\${c}\``);
      return [`[^${set}]`, i + 2];
    }
    case 'b': case 'B':
      if (inClass) throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\${c}\``);
      return [`\\${c}`, i + 2];
    case 'A': return ['(?<![\\s\\S])', i + 2];
    case 'z': return ['(?![\\s\\S])', i + 2];
    case 'a': return ['\\x07', i + 2];
    case 'f': case 'n': case 'r': case 't': case 'v': return [`\\${c}`, i + 2];
    case 'x': {
      if (src[i + 2] === '{') {
        const close = src.indexOf('}', i + 3);
        const hex = close < 0 ? '' : src.slice(i + 3, close);
        if (!/^[0-9a-fA-F]+$/.test(hex)) throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\x{\``);
        return [`\\u{${hex}}`, close + 1];
      }
      const hex = src.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\x${hex}\``);
      return [`\\x${hex}`, i + 4];
    }
    case 'p': case 'P': {
      let name: string;
      let next: number;
      if (src[i + 2] === '{') {
        const close = src.indexOf('}', i + 3);
        if (close < 0) throw new RegexpError(`error parsing regexp: invalid character class range: \`\\${c}{\``);
        name = src.slice(i + 3, close);
        next = close + 1;
      } else {
        name = src[i + 2] ?? '';
        next = i + 3;
      }
      let negate = c === 'P';
      if (name.startsWith('^')) {
        negate = !negate;
        name = name.slice(1);
      }
      const prop = name === 'Any' ? '\\s\\S' : undefined;
      if (prop) return [negate ? '[^\\s\\S]' : '[\\s\\S]', next];
      return [`\\${negate ? 'P' : 'p'}{${/^[A-Z][a-z]?$/.test(name) ? name : `Script=${name}`}}`, next];
    }
    case 'Q': {
      const close = src.indexOf('\\E', i + 2);
      const lit = close < 0 ? src.slice(i + 2) : src.slice(i + 2, close);
      return [[...lit].map((c) => escapeLiteral(c, inClass)).join(''), close < 0 ? src.length : close + 2];
    }
  }
  if (c >= '0' && c <= '7') {
    const m = /^[0-7]{1,3}/.exec(src.slice(i + 1)) as RegExpExecArray;
    if (c === '0' || m[0].length > 1 || inClass) return [`\\u{${parseInt(m[0], 8).toString(16)}}`, i + 1 + m[0].length];
    throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\${c}\``);
  }
  // RE2 lets any punctuation be escaped; only JS syntax characters keep the backslash in unicode mode.
  if (/[!-/:-@[-`{-~]/.test(c)) return [escapeLiteral(c, inClass), i + 2];
  throw new RegexpError(`error parsing regexp: invalid escape sequence: \`\\${c}\``);
}

/** Compiles Go RE2 syntax into an equivalent JS RegExp (unicode mode, global for iteration). */
export function compileGoRegexp(src: string): RegExp {
  let flags = 'gu';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(src);
  if (lead) {
    const f = lead[1] as string;
    if (f.includes('U')) throw new RegexpError('error parsing regexp: ungreedy mode (?U) is not supported');
    for (const ch of f) if (!flags.includes(ch)) flags += ch;
    i = lead[0].length;
  }
  let out = '';
  let depth = 0;
  while (i < src.length) {
    const ch = src[i] as string;
    if (ch === '\\') {
      const [js, next] = translateEscape(src, i, false);
      out += js;
      i = next;
      continue;
    }
    if (ch === '[') {
      let j = i + 1;
      let cls = '[';
      if (src[j] === '^') {
        cls += '^';
        j++;
      }
      // A ']' right after '[' or '[^' is a literal in RE2.
      if (src[j] === ']') {
        cls += '\\]';
        j++;
      }
      for (;;) {
        if (j >= src.length) throw new RegexpError(`error parsing regexp: missing closing ]: \`${src.slice(i)}\``);
        const c = src[j] as string;
        if (c === ']') break;
        if (c === '[' && src[j + 1] === ':') {
          const close = src.indexOf(':]', j + 2);
          let name = close < 0 ? '' : src.slice(j + 2, close);
          const negate = name.startsWith('^');
          if (negate) name = name.slice(1);
          const set = POSIX_CLASSES[name];
          if (set === undefined) throw new RegexpError(`error parsing regexp: invalid character class range: \`${src.slice(j, close + 2)}\``);
          if (negate) throw new RegexpError('error parsing regexp: negated POSIX classes are not supported');
          cls += set;
          j = close + 2;
          continue;
        }
        if (c === '\\') {
          const [js, next] = translateEscape(src, j, true);
          cls += js;
          j = next;
          continue;
        }
        cls += c === '[' || c === '/' ? `\\${c}` : c;
        j++;
      }
      out += `${cls}]`;
      i = j + 1;
      continue;
    }
    if (ch === '(') {
      depth++;
      if (src.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (src.startsWith('(?', i) && !src.startsWith('(?:', i) && !src.startsWith('(?<', i)) {
        throw new RegexpError(`error parsing regexp: flag groups other than a leading (?ims) are not supported: \`${src}\``);
      }
      out += ch;
      i++;
      continue;
    }
    if (ch === ')') {
      depth--;
      if (depth < 0) throw new RegexpError(`error parsing regexp: unexpected ): \`${src}\``);
      out += ch;
      i++;
      continue;
    }
    if (ch === '{') {
      // A brace that does not start a repeat count is a literal in RE2.
      const m = /^\{[0-9]+(,[0-9]*)?\}/.exec(src.slice(i));
      if (m) {
        out += m[0];
        i += m[0].length;
      } else {
        out += '\\{';
        i++;
      }
      continue;
    }
    if (ch === '}' || ch === ']' || ch === '/') {
      out += `\\${ch}`;
      i++;
      continue;
    }
    // JS's dot also refuses \r, U+2028 and U+2029; Go's refuses only \n.
    out += ch === '.' && !flags.includes('s') ? '[^\n]' : ch;
    i += 1;
  }
  if (depth > 0) throw new RegexpError(`error parsing regexp: missing closing ): \`${src}\``);
  try {
    return new RegExp(out, flags);
  } catch (err) {
    throw new RegexpError(`error parsing regexp: ${(err as Error).message}`);
  }
}

/** Regexp.Expand: $1, ${1}, $name, ${name}, $$; a name is the longest run of letters, digits and _. */
function expand(template: string, m: RegExpExecArray): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const d = template.indexOf('$', i);
    if (d < 0) {
      out += template.slice(i);
      break;
    }
    out += template.slice(i, d);
    i = d + 1;
    if (template[i] === '$') {
      out += '$';
      i++;
      continue;
    }
    let name: string | undefined;
    if (template[i] === '{') {
      const close = template.indexOf('}', i + 1);
      const inner = close < 0 ? '' : template.slice(i + 1, close);
      if (/^[A-Za-z0-9_]+$/.test(inner)) {
        name = inner;
        i = close + 1;
      }
    } else {
      const mm = /^[A-Za-z0-9_]+/.exec(template.slice(i));
      if (mm) {
        name = mm[0];
        i += mm[0].length;
      }
    }
    // A malformed reference is copied as a literal "$".
    if (name === undefined) {
      out += '$';
      continue;
    }
    if (/^[0-9]+$/.test(name)) {
      const n = Number(name);
      if (n < m.length) out += m[n] ?? '';
    } else out += m.groups?.[name] ?? '';
  }
  return out;
}

/**
 * Regexp.ReplaceAllString. Go ignores an empty match right after a previous match, where JS would replace
 * it too (pattern a* on "baaac" with "-": "-b-c-" in Go, "-b--c-" in JS), so the loop follows Go's.
 */
export function goReplaceAll(re: RegExp, src: string, repl: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const a0 = m.index;
    const a1 = a0 + m[0].length;
    out += src.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += expand(repl, m);
    lastMatchEnd = a1;
    const cp = src.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + src.slice(lastMatchEnd);
}

export function goMatch(re: RegExp, s: string): boolean {
  re.lastIndex = 0;
  return re.test(s);
}
