// `npm run demo` (the seeds' experiment, self-checking) runs to the end with every step OK and leaves nothing behind.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

it('the demo scales 3 → 5 → 2, survives a failing health check, and exits 0 within a minute', async () => {
  const script = fileURLToPath(new URL('../../scripts/demo.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, out);
  assert.ok(Date.now() - started < 75_000, 'finishes in about a minute at most');
  for (const step of ['Step 1: three backends', 'Step 2: scale up to five', 'Step 3: scale down to two', 'Step 4: web-2 starts failing its health check', 'Step 5: web-2 recovers']) {
    assert.ok(out.includes(step), `${step} printed`);
  }
  assert.equal((out.match(/^ {2}OK: /gm) ?? []).length, 5, out);
  assert.match(out, /, 0 failed; every step OK in /);
});
