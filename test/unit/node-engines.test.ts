// The Node versions package.json claims are ones every locked dependency accepts, so `npm ci` on any of them is free of EBADENGINE.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import semver from 'semver';

interface LockEntry { version?: string; engines?: { node?: string } | string[] }
const readJson = (rel: string): unknown => JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8'));
const pkg = readJson('../../package.json') as { engines: { node: string } };
const lock = readJson('../../package-lock.json') as { packages: Record<string, LockEntry> };

it('every locked package accepts every Node version in package.json engines', () => {
  const ours = pkg.engines.node;
  const refused: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    // Old packages wrote engines as an array of strings; npm ignores that form.
    const theirs = entry.engines !== undefined && !Array.isArray(entry.engines) ? entry.engines.node : undefined;
    if (path === '' || theirs === undefined) continue;
    if (!semver.subset(ours, theirs)) refused.push(`${path}@${entry.version ?? '?'} wants node ${theirs}`);
  }
  assert.deepEqual(refused, [], `package.json says node ${ours}`);
});

it('the Node running the tests is one package.json claims', () => {
  assert.ok(semver.satisfies(process.versions.node, pkg.engines.node), `${process.versions.node} is outside ${pkg.engines.node}`);
});
