/**
 * Go's flag package accepts `-name value`, `-name=value`, `--name value` and `--name=value`; the
 * tools Switchyard replaces (consul-template, registrator) are documented with single dashes.
 * This rewrites single-dash long flags to commander's double-dash form before parsing.
 */
export function normalizeGoFlags(argv: readonly string[], longNames: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === '--') {
      rest = true;
      out.push(a);
      continue;
    }
    const m = /^-([A-Za-z][\w-]*)(=.*)?$/.exec(a);
    if (m && longNames.has(m[1] as string)) out.push(`--${m[1]}${m[2] ?? ''}`);
    else out.push(a);
  }
  return out;
}
