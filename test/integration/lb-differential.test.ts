// The differential corpus (test/differential/): the same raw bytes through switchyard lb on the fast
// plane, on the node plane and through real nginx, each in front of recording backends that parse
// what they receive with llhttp. Per case and plane: the invariants (no message boundary the proxy did
// not mean, same framing at the backend as at the client, well-framed answers, no passive-health
// charge for a client's mistake) and the expected outcome recorded in the corpus; across planes: the
// fast plane never forwards what nginx refuses, and no client error becomes a 502/503/504.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS } from '../differential/corpus/index.js';
import { PLANES, nginxAvailable, startFront } from '../differential/fronts.js';
import type { Front, Plane } from '../differential/fronts.js';
import { compare, crossCheck, describeSteps, expected, runCase } from '../differential/harness.js';
import type { Observation } from '../differential/harness.js';

const hasNginx = nginxAvailable();
if (!hasNginx && process.env.CI === 'true') throw new Error('CI=true: nginx must be installed for the differential corpus (.ci/run installs it)');
/** SY_DIFF_FILTER=substring runs only matching cases (when working on the corpus). */
const filter = process.env.SY_DIFF_FILTER;
const cases = CORPUS.filter((c) => filter === undefined || c.id.includes(filter));

describe('differential corpus: fast plane, node plane and nginx on the same bytes', () => {
  const fronts = new Map<Plane, Front>();
  const planes: Plane[] = PLANES.filter((p) => p !== 'nginx' || hasNginx);

  before(async () => {
    for (const p of planes) fronts.set(p, await startFront(p));
  });
  after(async () => {
    await Promise.all([...fronts.values()].map((f) => f.close()));
  });

  it(`the corpus is large and its ids are unique (${CORPUS.length} cases)`, () => {
    assert.ok(CORPUS.length >= 200, `the corpus has ${CORPUS.length} cases`);
    assert.equal(new Set(CORPUS.map((c) => c.id)).size, CORPUS.length);
    for (const c of CORPUS) assert.ok(expected(c, 'fast') && expected(c, 'node') && expected(c, 'nginx'), `${c.id}: every plane has an expected outcome`);
  });

  for (const c of cases) {
    it(`${c.id}: ${c.about}`, async (t) => {
      if (!hasNginx) t.diagnostic('nginx is not installed: the nginx column and the cross-plane checks are skipped (CI=true fails instead)');
      const obs = new Map<Plane, Observation>();
      // The planes run side by side: each has its own backends, and cases on one plane run one at a time.
      await Promise.all(planes.map(async (p) => obs.set(p, await runCase(fronts.get(p) as Front, c))));
      const problems: string[] = [];
      for (const p of planes) {
        const o = obs.get(p) as Observation;
        const exp = expected(c, p) ?? [];
        for (const d of compare(o, exp)) problems.push(`${p}: ${d}`);
        // nginx is the reference, not the system under test: what it gets wrong is recorded in its expectations.
        if (p === 'node' && c.nodePlaneLimitation !== undefined) for (const v of o.violations) t.diagnostic(`node (known limitation: ${c.nodePlaneLimitation}): ${v}`);
        else if (p !== 'nginx') for (const v of o.violations) problems.push(`${p}: INVARIANT: ${v}`);
      }
      for (const v of crossCheck(c, obs)) problems.push(`INVARIANT: ${v}`);
      if (problems.length > 0) {
        const seen = planes.map((p) => `  ${p.padEnd(5)} ${describeSteps((obs.get(p) as Observation).steps)}`).join('\n');
        assert.fail(`${c.id}\n${problems.map((x) => `- ${x}`).join('\n')}\nobserved:\n${seen}`);
      }
    });
  }
});
