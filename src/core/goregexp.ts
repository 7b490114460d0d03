/**
 * Go's regexp, for what the Go originals match with it: consul-template's regexMatch and
 * regexReplaceAll, registrator's -tags functions. On re2js: Go's RE2 syntax and error texts as Go
 * has them, and matching in linear time. A hand-written translation to JS RegExp ran on a
 * backtracking engine, so a template's pattern against a tag any client can register could stall
 * the runner for hours (`^(a+)+$` against 26 a's and a "!" took 286 ms, 48 would take weeks).
 */
import { RE2JS } from 're2js';

export class RegexpError extends Error {}

export function compileGoRegexp(src: string): RE2JS {
  try {
    return RE2JS.compile(src);
  } catch (err) {
    // re2js words its syntax errors as Go does: "error parsing regexp: missing closing ): `(a`".
    throw new RegexpError((err as Error).message);
  }
}

export function goMatch(re: RE2JS, s: string): boolean {
  return re.test(s);
}

/** Regexp.Expand: $1, ${1}, $name, ${name}, $$; a name is the longest run of letters, digits and _. */
function expand(template: string, group: (ref: number | string) => string): string {
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
    out += group(/^[0-9]+$/.test(name) ? Number(name) : name);
  }
  return out;
}

/**
 * Regexp.ReplaceAllString. Go ignores an empty match right after a previous match (pattern a* on
 * "baaac" with "-": "-b-c-" in Go, where a JS replace gives "-b--c-"), so the loop follows Go's.
 */
export function goReplaceAll(re: RE2JS, src: string, repl: string): string {
  const m = re.matcher(src);
  const count = re.groupCount();
  const named = re.namedGroups();
  const group = (ref: number | string): string => {
    const n = typeof ref === 'number' ? ref : named[ref];
    return n === undefined || n > count ? '' : m.group(n) ?? '';
  };
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length && m.find(searchPos)) {
    const a0 = m.start();
    const a1 = m.end();
    out += src.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += expand(repl, group);
    lastMatchEnd = a1;
    const cp = src.codePointAt(searchPos);
    const width = cp === undefined ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + src.slice(lastMatchEnd);
}
