#!/usr/bin/env node
// Runs every *.test.ts under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
// Without filters, a second pass runs the registry suites again with every test agent on a real
// etcd (SY_TEST_STORE=etcd): one suite, two stores. It needs /usr/bin/etcd (Debian etcd-server).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk('test')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${JSON.stringify(filters)}`);
  process.exit(1);
}
// Integration tests start real servers; two files at a time keeps a 2-core machine responsive.
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
// TAP goes to stdout as before; a second reporter (spec) writes to a file whose "failing tests" section is
// repeated at the very end, so a log that keeps only its tail (a CI summary) still names what failed.
const specDir = mkdtempSync(join(tmpdir(), 'sy-tests-'));
const failures = [];
// --test-timeout also bounds each test FILE as a whole (node runs every file as one test of its own), so it
// is the longest file's budget, not a per-test one: compose.test.ts builds images on dockerd's vfs driver
// (its hooks allow 660 s and 420 s per example) and ran past 180 s beside another file on a slow day.
// Tests that can wait set their own deadlines; this only ends what hangs.
const FILE_TIMEOUT_MS = 900_000;
const run = (list, label, env = {}) => new Promise((resolve) => {
  const spec = join(specDir, `${failures.length}-${label}.txt`);
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, `--test-timeout=${FILE_TIMEOUT_MS}`,
    '--test-reporter=tap', '--test-reporter-destination=stdout', '--test-reporter=spec', `--test-reporter-destination=${spec}`, ...list];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  child.on('exit', (code, signal) => {
    const c = code ?? (signal ? 1 : 0);
    if (c !== 0) {
      const text = existsSync(spec) ? readFileSync(spec, 'utf8') : '';
      const at = text.indexOf('✖ failing tests:');
      failures.push(`## ${label}: exit ${c}${signal ? ` (${signal})` : ''}\n${at >= 0 ? text.slice(at) : '(no failing-tests summary: the runner stopped before writing one)'}`);
    }
    resolve(c);
  });
});

// The registry's behaviour suites: everything that drives test agents through the Consul API.
const REGISTRY_SUITES = ['agent-api', 'bad-input', 'blocking', 'consul-client', 'health', 'dns', 'sources', 'sources-model', 'register-py', 'register', 'template', 'sessions', 'sessions-model', 'python-consul', 'snapshot', 'prepared-query']
  .map((n) => join('test', 'integration', `${n}.test.ts`));

let code = await run(files, 'main pass');
const etcdBin = process.env.SY_ETCD ?? '/usr/bin/etcd';
if (filters.length === 0 && process.env.SY_TEST_STORE === undefined) {
  if (existsSync(etcdBin)) {
    console.log(`\n# second pass: the registry suites on the etcd store (${REGISTRY_SUITES.length} files, SY_TEST_STORE=etcd)`);
    code = (await run(REGISTRY_SUITES, 'etcd pass', { SY_TEST_STORE: 'etcd' })) || code;
  } else if (process.env.CI === 'true') {
    // Outside CI a missing system part skips; under CI it fails.
    console.error(`\n# the etcd pass needs ${etcdBin} (Debian etcd-server), which is missing under CI=true`);
    code = 1;
  } else {
    console.log(`\n# skipped: the registry suites on the etcd store (${etcdBin} is not installed: apt-get install etcd-server)`);
  }
}
if (failures.length > 0) console.log(`\n# what failed, repeated from each pass's spec report:\n${failures.join('\n')}`);
rmSync(specDir, { recursive: true, force: true });
process.exit(code);
