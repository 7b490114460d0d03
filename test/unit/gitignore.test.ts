// What the product writes into the working tree when run from a checkout (`npm start`) is git-ignored.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveAgentConfig } from '../../src/config/agent.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function ignored(path: string): boolean | undefined {
  const r = spawnSync('git', ['check-ignore', '-q', '--no-index', path], { cwd: root });
  if (r.error !== undefined || r.status === 128) return undefined; // no git, or not a checkout
  return r.status === 0;
}

it('the default data dir of `switchyard up` / `agent` (what `npm start` creates) is git-ignored', (t) => {
  const dataDir = resolveAgentConfig({}, {}).dataDir;
  // The embedded store's lock and snapshot files (its WAL segments happen to match `*.log` already).
  for (const file of ['LOCK', 'snapshot-0000000000000042.snap']) {
    const verdict = ignored(join(dataDir, file));
    if (verdict === undefined) {
      if (process.env.CI === 'true') assert.fail('git check-ignore could not run in the checkout under CI=true');
      t.skip('not a git checkout');
      return;
    }
    assert.equal(verdict, true, `${join(dataDir, file)} is not git-ignored`);
  }
});

it('consul-template-style temp files of an interrupted render and CPU profiles are git-ignored', (t) => {
  for (const p of ['.default.conf.switchyard-1234.tmp', 'CPU.20250101.000000.1234.0.001.cpuprofile']) {
    const verdict = ignored(p);
    if (verdict === undefined) { t.skip('not a git checkout'); return; }
    assert.equal(verdict, true, `${p} is not ignored`);
  }
});
