// consul-template's CLI and config forms: -template "src:dst:cmd", -wait, and the HCL subset.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseHcl } from '../../src/template/hcl.js';
import { blockQueryWaitMs, execSettings, parseTemplateFlag, parseWait, registryToken, templateConfigSchema } from '../../src/template/config.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSignal } from '../../src/template/exec-child.js';

it('splits -template like consul-template (command keeps its colons, drive letters stay)', () => {
  assert.deepEqual(parseTemplateFlag('in.ctmpl:out.conf'), { source: 'in.ctmpl', destination: 'out.conf' });
  assert.deepEqual(parseTemplateFlag('a:b:nginx -s reload'), { source: 'a', destination: 'b', command: 'nginx -s reload' });
  assert.deepEqual(parseTemplateFlag('a:b:echo x:y'), { source: 'a', destination: 'b', command: 'echo x:y' });
  assert.deepEqual(parseTemplateFlag('C:\\t.ctmpl:out'), { source: 'C:\\t.ctmpl', destination: 'out' });
  assert.throws(() => parseTemplateFlag(''), /empty value/);
  assert.throws(() => parseTemplateFlag('only-source'), /a destination is required/);
});

it('parses -wait min[:max] (max defaults to 4 × min) and rejects bad values', () => {
  assert.deepEqual(parseWait('2s:10s'), { minMs: 2000, maxMs: 10_000 });
  assert.deepEqual(parseWait('500ms'), { minMs: 500, maxMs: 2000 });
  assert.throws(() => parseWait('5s:1s'), /min must be ≥ 0 and ≤ max/);
  assert.throws(() => parseWait('5x'), (e: Error & { code?: string }) => e.code === 'SY_ERR_BAD_DURATION' && /-wait/.test(e.message));
});

it('reads the HCL subset: blocks, repeated blocks, labels, heredocs, lists, comments, octal', () => {
  const c = parseHcl([
    '// a comment',
    'consul { address = "127.0.0.1:8500" }',
    'wait { min = "2s" max = "10s" }  # trailing comment',
    'template {',
    '  source = "a.ctmpl"',
    '  destination = "a.conf"',
    '  perms = 0600',
    '  command = ["nginx", "-s", "reload"]',
    '}',
    'template {',
    '  contents = <<EOT',
    'upstream {{ "x" }}',
    'EOT',
    '  destination = "b.conf"',
    '}',
    '/* block comment */',
    'exec "svc" { command = "run" }',
  ].join('\n'), 'ct.hcl');
  assert.deepEqual(c.consul, [{ address: '127.0.0.1:8500' }]);
  assert.deepEqual(c.wait, [{ min: '2s', max: '10s' }]);
  const t = c.template as Record<string, unknown>[];
  assert.equal(t.length, 2);
  assert.equal(t[0]!.perms, 0o600);
  assert.deepEqual(t[0]!.command, ['nginx', '-s', 'reload']);
  assert.equal(t[1]!.contents, 'upstream {{ "x" }}\n');
  assert.deepEqual(c.exec, [{ svc: { command: 'run' } }]);
});

it('names the line and column of HCL syntax errors', () => {
  assert.throws(() => parseHcl('consul {\n  address = \n}', 'f.hcl'), /f\.hcl:3:1: expected a value/);
  assert.throws(() => parseHcl('template {\n  source = "a\n}', 'f.hcl'), /f\.hcl:2:\d+: unterminated string/);
  assert.throws(() => parseHcl('template {', 'f.hcl'), /f\.hcl:1:11: missing closing \}/);
  assert.throws(() => parseHcl('x = "\\q"', 'f.hcl'), /unknown escape/);
});

it('keys that Object.prototype has are fields like any other; __proto__ is refused', () => {
  // A repeated block reads what the key held before: on a plain object `constructor` held Object itself.
  assert.deepEqual(parseHcl('constructor {\n  a = 1\n}\nconstructor {\n  a = 2\n}\ntoString = "t"', 'f.hcl'), { constructor: [{ a: 1 }, { a: 2 }], toString: 't' });
  assert.throws(() => parseHcl('template {\n  __proto__ = "x"\n}', 'f.hcl'), /f\.hcl:2:\d+: the key "__proto__" is not supported/);
});

it('reads -exec settings like consul-template: flags over the exec block, SIGINT and 30 s by default, an empty reload signal means restart', () => {
  const cfg = templateConfigSchema.parse({ exec: { command: ['nginx', '-g', 'daemon off;'], reload_signal: 'hup', kill_timeout: '5s', splay: 2_000_000_000 } });
  assert.deepEqual(execSettings(cfg, {}), { command: "nginx -g 'daemon off;'", reloadSignal: 'SIGHUP', killSignal: 'SIGINT', killTimeoutMs: 5000, splayMs: 2000 });
  assert.deepEqual(execSettings(cfg, { exec: 'other', reloadSignal: '', killSignal: 'QUIT' }), { command: 'other', killSignal: 'SIGQUIT', killTimeoutMs: 5000, splayMs: 2000 });
  assert.equal(execSettings(templateConfigSchema.parse({}), {}), undefined);
  assert.throws(() => execSettings(templateConfigSchema.parse({}), { exec: '  ' }), /-exec: empty command/);
  assert.throws(() => execSettings(cfg, { killTimeout: 'soon' }), (e: Error & { code?: string }) => e.code === 'SY_ERR_BAD_DURATION' && /exec kill timeout/.test(e.message));
  assert.equal(parseSignal('x', 'SIGUSR1'), 'SIGUSR1');
  assert.equal(parseSignal('x', 'winch'), 'SIGWINCH');
  for (const bad of ['SIGKILL', 'STOP', 'SIGNOPE', '', 'constructor', '__proto__']) assert.throws(() => parseSignal('exec kill signal', bad), /exec kill signal: .* is not a signal that can be sent and caught/, bad);
});

it('block_query_wait is read in 1 s … 10 min; template blocks are lists so errors name the template by its place', () => {
  assert.equal(blockQueryWaitMs(templateConfigSchema.parse({})), undefined);
  assert.equal(blockQueryWaitMs(templateConfigSchema.parse({ block_query_wait: '30s' })), 30_000);
  assert.throws(() => blockQueryWaitMs(templateConfigSchema.parse({ block_query_wait: '11m' })), /block_query_wait: 660s is outside 1s … 10m/);
  const one = templateConfigSchema.safeParse({ template: { source: 'a', destination: 'b', perms: 'rw' } });
  assert.equal(one.success, false);
  assert.deepEqual(one.error?.issues[0]?.path, ['template', 0, 'perms']);
  const two = templateConfigSchema.safeParse({ template: [{ source: 'a', destination: 'b' }, { source: 'a', destination: 'c', command: 'x', exec: { command: 'y' } }] });
  assert.equal(two.success, false);
  assert.match(two.error?.issues[0]?.message ?? '', /either as command or in exec/);
  assert.deepEqual(two.error?.issues[0]?.path, ['template', 1]);
});

it('finds the registry token as consul-template does: flag, flag file, config token, config token_file, then the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-token-'));
  const file = (name: string, v: string): string => {
    writeFileSync(join(dir, name), v);
    return join(dir, name);
  };
  const cfg = (consul: Record<string, string>) => templateConfigSchema.parse({ consul });
  assert.equal(registryToken(cfg({ token: 'c' }), { token: 'f', tokenFile: file('a', 'ff') }, { CONSUL_HTTP_TOKEN: 'e' }), 'f');
  assert.equal(registryToken(cfg({ token: 'c' }), { tokenFile: file('b', ' ff\n') }, { CONSUL_HTTP_TOKEN: 'e' }), 'ff');
  assert.equal(registryToken(cfg({ token: 'c', token_file: file('c', 'cf') }), {}, { CONSUL_HTTP_TOKEN: 'e' }), 'c');
  assert.equal(registryToken(cfg({ token_file: file('d', 'cf\n') }), {}, { CONSUL_HTTP_TOKEN: 'e' }), 'cf');
  assert.equal(registryToken(cfg({}), {}, { CONSUL_TOKEN: 'old', CONSUL_HTTP_TOKEN_FILE: file('e', 'ef') }), 'old');
  assert.equal(registryToken(cfg({}), {}, { CONSUL_HTTP_TOKEN_FILE: file('g', 'ef\n') }), 'ef');
  assert.equal(registryToken(cfg({}), {}, {}), undefined);
  assert.throws(() => registryToken(cfg({ token_file: join(dir, 'none') }), {}, {}), /consul\.token_file: cannot read the token file .*none/);
});
