// The agent's node flags (a larger young generation, docs/scale.md) reach it however it is started: the
// `switchyard` command's own #! line, `npm start` and the Docker image's entrypoint carry the same ones, and
// the #! line really runs node with them here (the kernel hands it to `env -S`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const read = (f: string): string => readFileSync(join(REPO, f), 'utf8');

const shebang = read('src/cli/main.ts').split('\n', 1)[0] ?? '';
const shebangFlags = /^#!\/usr\/bin\/env -S node((?:\s+--[\w-]+=\S+)+)$/.exec(shebang)?.[1]?.trim().split(/\s+/);

describe('launchers of the switchyard command', () => {
  it('the #! line names node with flags through env -S', () => {
    assert.ok(shebangFlags, `src/cli/main.ts starts with ${JSON.stringify(shebang)}`);
    assert.ok(shebangFlags.some((f) => f.startsWith('--max-semi-space-size=')), 'the young generation is set');
  });

  it('npm start and the Dockerfile entrypoint pass the same flags', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start ?? '';
    // exec: npm's child is node itself, so the SIGTERM npm forwards reaches it (up.test.ts checks that it stops).
    assert.equal(start, `exec node ${(shebangFlags ?? []).join(' ')} dist/cli/main.js up`);
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    assert.ok(entry, 'the Dockerfile has an exec-form ENTRYPOINT');
    assert.deepEqual(JSON.parse(entry), ['node', ...(shebangFlags ?? []), '/app/dist/cli/main.js']);
  });

  it('a script with that #! line runs node with those flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-shebang-'));
    try {
      const file = join(dir, 'probe.mjs');
      writeFileSync(file, `${shebang}\nconsole.log(JSON.stringify(process.execArgv));\n`);
      chmodSync(file, 0o755);
      const argv = JSON.parse(execFileSync(file, { encoding: 'utf8', timeout: 20_000 })) as string[];
      assert.deepEqual(argv, shebangFlags);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
