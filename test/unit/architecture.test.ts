// The import rules of docs/architecture.md are enforced by ESLint (eslint-rules/layers.js), and the typed promise
// rules are on: checked here with ESLint's API and the repository's own config, on real files of each layer with
// forbidden imports (and floating promises) appended.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { LAYERS } from '../../eslint-rules/layers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');
const layerTable = LAYERS;
const eslint = new ESLint({ cwd: ROOT });

/** Layers as the rule sees them: each folder of src/, each folder of src/registry/ on its own. */
function layersOnDisk(): string[] {
  const dirs = (p: string): string[] => readdirSync(p).filter((n) => statSync(join(p, n)).isDirectory());
  return dirs(SRC).flatMap((d) => (d === 'registry' ? dirs(join(SRC, d)).map((s) => `registry/${s}`) : [d])).sort();
}

/** A real file of the layer (the first .ts file at its top), to lint with extra lines. */
function fileOf(layer: string): string {
  const dir = join(SRC, layer);
  const name = readdirSync(dir).filter((n) => n.endsWith('.ts')).sort()[0];
  assert.ok(name, `src/${layer} has a .ts file`);
  return join(dir, name);
}

function importOf(from: string, layer: string): string {
  const rel = relative(dirname(from), fileOf(layer)).replace(/\.ts$/, '.js');
  return `import '${rel.startsWith('.') ? rel : `./${rel}`}';`;
}

async function lint(file: string, extra: string): Promise<ESLint.LintResult> {
  const [result] = await eslint.lintText(`${readFileSync(file, 'utf8')}\n${extra}\n`, { filePath: file });
  assert.ok(result);
  return result;
}

const layerErrors = (r: ESLint.LintResult): string[] => r.messages.filter((m) => m.ruleId === 'switchyard/imports').map((m) => m.message);

describe('import rules (docs/architecture.md) enforced by ESLint', () => {
  it('the rule\'s table names every layer of src/, and docs/architecture.md shows the same table', () => {
    assert.deepEqual(Object.keys(layerTable).sort(), layersOnDisk());
    const doc = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z/]+)` \| ([^|]+) \|/gm)].map((m) => [m[1] as string, (m[2] as string).trim()] as const);
    const shown = Object.fromEntries(rows.map(([layer, may]) => [layer, may === 'anything' ? '*' : may === 'nothing' ? [] : [...may.matchAll(/`([a-z/]+)`/g)].map((x) => x[1])]));
    assert.deepEqual(shown, layerTable);
  });

  for (const [from, allowed] of Object.entries(layerTable)) {
    if (allowed === '*') continue;
    it(`${from}: every import of a layer it does not list fails lint, the ones it lists pass`, async () => {
      const file = fileOf(from);
      const forbidden = Object.keys(layerTable).filter((l) => l !== from && !allowed.includes(l));
      const bad = await lint(file, forbidden.map((l) => importOf(file, l)).join('\n'));
      const errors = layerErrors(bad);
      assert.equal(errors.length, forbidden.length, errors.join('\n'));
      for (const l of forbidden) assert.ok(errors.some((e) => e.startsWith(`${from} must not import ${l} `)), `importing ${l} is reported`);
      const good = await lint(file, allowed.map((l) => importOf(file, l)).join('\n'));
      assert.deepEqual(layerErrors(good), []);
    });
  }

  it('the remote discovery source reaches a registry only through registry/api; the in-process one reads registry/server', async () => {
    const remote = join(SRC, 'discovery', 'remote-source.ts');
    assert.match(layerErrors(await lint(remote, importOf(remote, 'registry/server'))).join('\n'), /^discovery must not import registry\/server /);
    const local = join(SRC, 'discovery', 'local-source.ts');
    assert.deepEqual(layerErrors(await lint(local, importOf(local, 'registry/server'))), []);
  });
});

describe('typed promise rules', () => {
  it('a floating promise and a promise-returning callback where void is expected fail lint; `void` marks fire-and-forget', async () => {
    const file = join(SRC, 'core', 'sleep.ts');
    const r = await lint(file, 'async function probe(): Promise<void> {}\nprobe();\n[1].forEach(async () => probe());\nvoid probe();');
    const rules = r.messages.map((m) => `${m.line}:${m.ruleId}`);
    const lines = readFileSync(file, 'utf8').split('\n').length;
    assert.deepEqual(rules, [`${lines + 2}:@typescript-eslint/no-floating-promises`, `${lines + 3}:@typescript-eslint/no-misused-promises`]);
  });
});
