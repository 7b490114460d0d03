// consul-template's CLI and config forms: -template "src:dst:cmd", -wait, and the HCL subset.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseHcl } from '../../src/template/hcl.js';
import { parseTemplateFlag, parseWait } from '../../src/template/config.js';

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
