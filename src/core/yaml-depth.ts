/**
 * Measures how deeply a YAML text may nest, without parsing it and without recursion. The `yaml`
 * package parses recursively; run this first so a hostile document is refused with its line
 * instead of exhausting the stack (see src/template/yaml-parse.ts for what that did).
 */

/**
 * An upper bound on the document's nesting, scanned before the parser sees it: every indentation
 * level counted twice (a sequence may sit at its key's indentation), each compact `- `, `? ` or
 * `: ` that opens a line, and open flow brackets outside quotes and comments. Block scalars'
 * content lines and quoted scalars' continuation lines are skipped. Returns the first line (from 1)
 * whose nesting may pass `max`, or undefined.
 */
export function yamlDepthOverflow(text: string, max: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let quote: '' | "'" | '"' = '';
  let blockParent = -1;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n] as string;
    let i = 0;
    while (line[i] === ' ') i++;
    const indent = i;
    if (quote === '') {
      if (blockParent >= 0) {
        if (i === line.length || indent > blockParent) continue;
        blockParent = -1;
      }
      if (i < line.length && line[i] !== '#' && flow === 0) {
        while (indents.length > 0 && (indents[indents.length - 1] as number) > indent) indents.pop();
        if (indents.length === 0 || (indents[indents.length - 1] as number) < indent) indents.push(indent);
      }
    }
    let compact = 0;
    while (quote === '' && '-?:'.includes(line[i] ?? 'x') && (line[i + 1] === ' ' || i + 1 === line.length)) {
      compact++;
      i += 2;
      while (line[i] === ' ') i++;
    }
    const base = 2 * indents.length + compact;
    if (base + flow > max) return n + 1;
    let prev = '';
    for (; i < line.length; i++) {
      const c = line[i] as string;
      if (quote === '"') {
        if (c === '\\') i++;
        else if (c === '"') quote = '';
      } else if (quote === "'") {
        if (c === "'" && line[i + 1] === "'") i++;
        else if (c === "'") quote = '';
      } else if (c === '#' && (prev === '' || line[i - 1] === ' ' || line[i - 1] === '\t')) {
        break;
      } else if ((c === '"' || c === "'") && (prev === '' || ':,[{-?'.includes(prev))) {
        quote = c;
      } else if (c === '[' || c === '{') {
        flow++;
        if (base + flow > max) return n + 1;
      } else if (c === ']' || c === '}') {
        flow = Math.max(0, flow - 1);
      } else if ((c === '|' || c === '>') && flow === 0 && (prev === '' || prev === ':' || prev === '-') && /^[|>][-+0-9]*\s*(#.*)?$/.test(line.slice(i))) {
        blockParent = indent;
        break;
      }
      if (c !== ' ' && c !== '\t') prev = c;
    }
  }
  return undefined;
}

