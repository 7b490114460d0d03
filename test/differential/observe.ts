/** Prints what each front does with corpus cases (observed steps, invariant violations, differences from the expectations): the tool for writing and reviewing cases. */
// Usage: node --import tsx test/differential/observe.ts [id-substring ...] [--planes fast,node,nginx] [--json]
import { CORPUS } from './corpus/index.js';
import { PLANES, startFront } from './fronts.js';
import type { Front, Plane } from './fronts.js';
import { compare, crossCheck, describeSteps, expected, runCase } from './harness.js';
import type { Observation } from './harness.js';

const args = process.argv.slice(2);
const pi = args.indexOf('--planes');
const planes = (pi >= 0 ? (args[pi + 1] ?? '').split(',') : [...PLANES]) as Plane[];
const json = args.includes('--json');
const filters = args.filter((a, i) => !a.startsWith('--') && (pi < 0 || i !== pi + 1));
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
    if (json) out.push({ id: c.id, planes: Object.fromEntries([...obs].map(([p, o]) => [p, { steps: o.steps, violations: o.violations, hung: o.hung }])), cross });
    else console.log(`${failed ? '✗' : '✓'} ${c.id} — ${c.about}\n${lines.join('\n')}`);
  }
} finally {
  for (const f of fronts.values()) await f.close();
}
if (json) console.log(JSON.stringify(out, null, 1));
console.log(`\n${cases.length} case(s), ${bad} with a failure`);
