#!/usr/bin/env node
// Runs every *.test.ts under test/ with node's test runner (TypeScript through tsx).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
// Without filters, a second pass runs the registry suites again with every test agent on a real
// etcd (SY_TEST_STORE=etcd): one suite, two stores. It needs /usr/bin/etcd (Debian etcd-server).
import { existsSync, readdirSync, statSync } from 'node:fs';
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
const run = (list, env = {}) => new Promise((resolve) => {
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=180000', ...list];
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
});

// The registry's behaviour suites: everything that drives test agents through the Consul API.
const REGISTRY_SUITES = ['agent-api', 'bad-input', 'blocking', 'consul-client', 'health', 'dns', 'sources', 'register-py', 'register', 'template', 'sessions', 'python-consul']
  .map((n) => join('test', 'integration', `${n}.test.ts`));

let code = await run(files);
const etcdBin = process.env.SY_ETCD ?? '/usr/bin/etcd';
if (filters.length === 0 && process.env.SY_TEST_STORE === undefined) {
  if (existsSync(etcdBin)) {
    console.log(`\n# second pass: the registry suites on the etcd store (${REGISTRY_SUITES.length} files, SY_TEST_STORE=etcd)`);
    code = (await run(REGISTRY_SUITES, { SY_TEST_STORE: 'etcd' })) || code;
  } else if (process.env.CI === 'true') {
    // Outside CI a missing system part skips; under CI it fails.
    console.error(`\n# the etcd pass needs ${etcdBin} (Debian etcd-server), which is missing under CI=true`);
    code = 1;
  } else {
    console.log(`\n# skipped: the registry suites on the etcd store (${etcdBin} is not installed: apt-get install etcd-server)`);
  }
}
process.exit(code);
