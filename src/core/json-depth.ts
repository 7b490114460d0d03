/** Measures how deeply a JSON text nests, without parsing it and without recursion. */

/**
 * Offset of the bracket that opens level `max + 1` of arrays and objects in `text`, or -1 when the
 * text never nests deeper than `max`. Brackets inside strings do not count. Run before JSON.parse
 * so that the recursive walks after parsing (key folding, schema checks) never meet a value deep
 * enough to exhaust the stack.
 */
export function jsonDepthOverflow(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return -1;
}
