/**
 * Go's flag package accepts `-name value`, `-name=value`, `--name value` and `--name=value`; the
 * tools Switchyard replaces (consul-template, registrator, consul lock) are documented with single
 * dashes. This rewrites single-dash long flags to commander's double-dash form before parsing, and
 * Go's explicit booleans (`-shell=false`, `--verbose=true`) to commander's `--no-shell` / `--verbose`.
 */
export function normalizeGoFlags(argv: readonly string[], longNames: ReadonlySet<string>, booleans: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  let rest = false;
  for (const a of argv) {
    if (rest || a === '--') {
      rest = true;
      out.push(a);
      continue;
    }
    const b = /^--?([A-Za-z][\w-]*)=(true|false|1|0|t|f|T|F|TRUE|FALSE|True|False)$/.exec(a);
    if (b && booleans.has(b[1] as string)) {
      out.push(/^(true|1|t|T|TRUE|True)$/.test(b[2] as string) ? `--${b[1]}` : `--no-${b[1]}`);
      continue;
    }
    const m = /^-([A-Za-z][\w-]*)(=.*)?$/.exec(a);
    if (m && longNames.has(m[1] as string)) out.push(`--${m[1]}${m[2] ?? ''}`);
    else out.push(a);
  }
  return out;
}
