/** Prints what each front does with corpus cases (observed steps, invariant violations, differences from the expectations): the tool for writing and reviewing cases. */
// Usage: node --import tsx test/differential/observe.ts [id-substring ...] [--planes fast,node,nginx] [--json]
//        ... --emit nginx   prints the observed steps of that plane as corpus data (for corpus/nginx-observed.ts)
import { CORPUS } from './corpus/index.js';
import { PLANES, startFront } from './fronts.js';
import type { Front, Plane } from './fronts.js';
import { compare, crossCheck, describeSteps, expected, runCase } from './harness.js';
import type { Observation } from './harness.js';
import type { Step } from './types.js';

/** A step as corpus source text (dsl.ts builders). */
function stepDsl(s: Step): string {
  if ('garbled' in s) return 'GARBLED';
  if ('backendRefused' in s) return `{ backendRefused: ${s.backendRefused} }`;
  if (!('fwd' in s)) return `refused(${s.status})`;
  const o: string[] = [];
  if (s.fwd.host !== undefined) o.push(`host: ${JSON.stringify(s.fwd.host)}`);
  if ((s.status ?? 200) !== 200) o.push(`status: ${s.status}`);
  return `fwd('${s.fwd.to}', ${JSON.stringify(s.fwd.method)}, ${JSON.stringify(s.fwd.target)}${o.length ? `, { ${o.join(', ')} }` : ''})`;
}

const args = process.argv.slice(2);
const pi = args.indexOf('--planes');
const planes = (pi >= 0 ? (args[pi + 1] ?? '').split(',') : [...PLANES]) as Plane[];
const json = args.includes('--json');
const ei = args.indexOf('--emit');
const emit = ei >= 0 ? ((args[ei + 1] ?? '').split(',') as Plane[]) : undefined;
const filters = args.filter((a, i) => !a.startsWith('--') && (pi < 0 || i !== pi + 1) && (ei < 0 || i !== ei + 1));
const emitted: string[] = [];
const cases = CORPUS.filter((c) => filters.length === 0 || filters.some((f) => c.id.includes(f)));

const fronts = new Map<Plane, Front>();
for (const p of planes) fronts.set(p, await startFront(p));
let bad = 0;
const out: unknown[] = [];
try {
  for (const c of cases) {
    const obs = new Map<Plane, Observation>();
    await Promise.all([...fronts].map(async ([p, f]) => obs.set(p, await runCase(f, c))));
    const cross = crossCheck(c, obs);
    const lines: string[] = [];
    let failed = cross.length > 0;
    for (const p of planes) {
      const o = obs.get(p) as Observation;
      const exp = expected(c, p);
      const diff = exp ? compare(o, exp) : [];
      if (diff.length > 0 || o.violations.length > 0) failed = true;
      lines.push(`  ${p.padEnd(5)} ${describeSteps(o.steps)}${exp ? (diff.length ? '   ✗ ' + diff.join('; ') : '   ✓') : '   (no expectation)'}${o.hung ? '   [hung]' : ''}`);
      for (const v of o.violations) lines.push(`        ! ${v}`);
    }
    for (const v of cross) lines.push(`  cross ! ${v}`);
    if (failed) bad++;
    for (const ep of emit ?? []) {
      const o = obs.get(ep) as Observation;
      const tag = emit && emit.length > 1 ? `${ep}:` : '';
      for (const v of o.violations) emitted.push(`  // ${tag}${c.id}: ${v.replace(/\s+/g, ' ').slice(0, 300)}`);
      emitted.push(`  ${tag}'${c.id}': [${o.steps.map(stepDsl).join(', ')}],${expected(c, ep) ? '' : ' // no expectation yet'}`);
      process.stderr.write(`${emitted.splice(0).join('\n')}\n`);
    }
    if (json) out.push({ id: c.id, planes: Object.fromEntries([...obs].map(([p, o]) => [p, { steps: o.steps, violations: o.violations, hung: o.hung }])), cross });
    else console.log(`${failed ? '✗' : '✓'} ${c.id} — ${c.about}\n${lines.join('\n')}`);
  }
} finally {
  for (const f of fronts.values()) await f.close();
}
if (json) console.log(JSON.stringify(out, null, 1));

console.log(`\n${cases.length} case(s), ${bad} with a failure`);
