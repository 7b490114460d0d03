// `switchyard kv` as `consul kv`: get, put, delete, export and import against a real agent, with
// consul's arguments, output and exit codes; uint64 flags and binary values kept to the byte; an
// export that Consul's import reads and an import that reads Consul's export (and a saved
// /v1/kv/?recurse answer); a bad import file writes nothing.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, tempDir } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { REPO } from '../helpers/process.js';
import { RegistryClient } from '../../src/registry/api/client.js';
import { runKv } from '../../src/kv/commands.js';

interface Run {
  code: number;
  out: Buffer;
  err: string;
}

describe('switchyard kv (consul kv)', () => {
  let a: TestAgent;
  let addr: string;
  const dir = tempDir();
  before(async () => {
    a = await startTestAgent();
    addr = a.url.replace(/^http:\/\//, '');
  });
  after(async () => {
    await a.stop();
  });

  /** runKv in this process, its output collected as consul's Ui would print it (a newline per line). */
  async function kv(args: string[], stdin = ''): Promise<Run> {
    const out: Buffer[] = [];
    let err = '';
    const code = await runKv(args, {
      out: (s) => out.push(Buffer.from(s), Buffer.from('\n')),
      err: (s) => (err += `${s}\n`),
      stdin: () => Promise.resolve(Buffer.from(stdin)),
      readFile: (p) => import('node:fs/promises').then((fs) => fs.readFile(p)),
    }, ({ address, token }) => new RegistryClient({ address: address ?? 'unset', ...(token ? { token } : {}) }), { CONSUL_HTTP_ADDR: addr });
    return { code, out: Buffer.concat(out), err };
  }
  const text = (r: Run): string => r.out.toString();
  /** The whole tree as the API shows it: what must not change when a command is refused. */
  const tree = async (): Promise<string> => (await http(a.url, 'GET', '/v1/kv/?recurse')).text;

  it('put and get: text, @file bytes, stdin, base 64, a value that looks like a flag, an empty value', async () => {
    assert.deepEqual(await kv(['put', 'app/name', 'hello']), { code: 0, out: Buffer.from('Success! Data written to: app/name\n'), err: '' });
    assert.equal(text(await kv(['get', 'app/name'])), 'hello\n');
    // Go's flag parsing stops at KEY: "-5" is the data.
    assert.equal((await kv(['put', 'app/neg', '-5'])).code, 0);
    assert.equal(text(await kv(['get', 'app/neg'])), '-5\n');
    const bin = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x80]);
    writeFileSync(join(dir, 'bin'), bin);
    assert.equal((await kv(['put', 'app/bin', `@${join(dir, 'bin')}`])).code, 0);
    assert.deepEqual((await kv(['get', 'app/bin'])).out, Buffer.concat([bin, Buffer.from('\n')]), 'bytes come back as they went in');
    assert.equal(text(await kv(['get', '-base64', 'app/bin'])), `${bin.toString('base64')}\n`);
    assert.equal((await kv(['put', 'app/stdin', '-'], 'from stdin')).code, 0);
    assert.equal(text(await kv(['get', '/app/stdin'])), 'from stdin\n', 'a leading slash is forgiven');
    assert.equal((await kv(['put', '-base64', 'app/b64', 'aGk='])).code, 0);
    assert.equal(text(await kv(['get', 'app/b64'])), 'hi\n');
    assert.equal((await kv(['put', 'app/empty'])).code, 0);
    assert.equal(text(await kv(['get', 'app/empty'])), '\n');
    assert.deepEqual(await kv(['get', 'app/nope']), { code: 1, out: Buffer.alloc(0), err: 'Error! No key exists at: app/nope\n' });
  });

  it('get -detailed, -recurse and -keys with -separator; uint64 flags to the last digit', async () => {
    assert.equal((await kv(['put', '-flags=18446744073709551615', 'tree/x/1', 'one'])).code, 0);
    assert.equal((await kv(['put', '-flags', '0x10', 'tree/x/2', 'two'])).code, 0);
    assert.equal((await kv(['put', 'tree/y', 'why'])).code, 0);
    const d = text(await kv(['get', '-detailed', 'tree/x/1']));
    const idx = /ModifyIndex +(\d+)/.exec(d)?.[1];
    assert.equal(d, `CreateIndex      ${idx}\nFlags            18446744073709551615\nKey              tree/x/1\nLockIndex        0\nModifyIndex      ${idx}\nSession          -\nValue            one\n`);
    assert.equal(text(await kv(['get', '-recurse', 'tree/'])), 'tree/x/1:one\ntree/x/2:two\ntree/y:why\n');
    assert.equal(text(await kv(['get', '-recurse', '-base64', 'tree/y'])), 'tree/y:d2h5\n');
    assert.match(text(await kv(['get', '-detailed', 'tree/x/2'])), /\nFlags {12}16\n/);
    assert.equal(text(await kv(['get', '-keys', 'tree/'])), 'tree/x/\ntree/y\n');
    assert.equal(text(await kv(['get', '-keys', '-separator=', 'tree/'])), 'tree/x/1\ntree/x/2\ntree/y\n');
    assert.equal(text(await kv(['get', '-recurse', 'nothing/here'])), '', 'an empty prefix prints nothing and succeeds');
    assert.deepEqual(await kv(['get']), { code: 1, out: Buffer.alloc(0), err: 'Error! Missing KEY argument\n' });
  });

  it('check-and-set, locks with a session, and deletes', async () => {
    await kv(['put', 'cas/k', 'v1']);
    const index = /ModifyIndex +(\d+)/.exec(text(await kv(['get', '-detailed', 'cas/k'])))?.[1] as string;
    assert.deepEqual(await kv(['put', '-cas', `-modify-index=${Number(index) + 100}`, 'cas/k', 'v2']), { code: 1, out: Buffer.alloc(0), err: 'Error! Did not write to cas/k: CAS failed\n' });
    assert.equal(text(await kv(['put', '-cas', '-modify-index', index, 'cas/k', 'v2'])), 'Success! Data written to: cas/k\n');
    assert.equal(text(await kv(['get', 'cas/k'])), 'v2\n');
    const session = ((await http(a.url, 'PUT', '/v1/session/create', { Name: 'kv-cli' })).json as { ID: string }).ID;
    assert.equal(text(await kv(['put', '-acquire', `-session=${session}`, 'cas/lock', 'held'])), 'Success! Lock acquired on: cas/lock\n');
    assert.match(text(await kv(['get', '-detailed', 'cas/lock'])), new RegExp(`\nLockIndex        1\n.*\nSession          ${session}\n`, 's'));
    assert.equal(text(await kv(['put', '-release', `-session=${session}`, 'cas/lock'])), 'Success! Lock released on: cas/lock\n');
    assert.deepEqual(await kv(['put', '-acquire', 'cas/lock']), { code: 1, out: Buffer.alloc(0), err: 'Error! Missing -session (required with -acquire and -release)\n' });
    const mi = /ModifyIndex +(\d+)/.exec(text(await kv(['get', '-detailed', 'cas/k'])))?.[1] as string;
    assert.equal((await kv(['delete', '-cas', '-modify-index=1', 'cas/k'])).err, 'Error! Did not delete key cas/k: CAS failed\n');
    assert.equal(text(await kv(['delete', '-cas', `-modify-index=${mi}`, 'cas/k'])), 'Success! Deleted key: cas/k\n');
    assert.equal(text(await kv(['delete', 'cas/never'])), 'Success! Deleted key: cas/never\n', 'deleting what is not there succeeds, as in consul');
    assert.equal(text(await kv(['delete', '-recurse', 'cas/'])), 'Success! Deleted keys with prefix: cas/\n');
    assert.equal(text(await kv(['get', '-recurse', 'cas/'])), '');
  });

  it('refuses bad arguments with Go\'s words, exit 1, and changes nothing', async () => {
    const before = await tree();
    const cases: [string[], RegExp][] = [
      [['put', '-bogus', 'k', 'v'], /^flag provided but not defined: -bogus\n\nUsage: switchyard kv put/],
      [['put', '-flags=-1', 'k', 'v'], /^invalid value "-1" for flag -flags: parse error\n/],
      [['put', '-flags=18446744073709551616', 'k', 'v'], /^invalid value "18446744073709551616" for flag -flags: value out of range\n/],
      [['put', '-cas=maybe', 'k', 'v'], /^invalid boolean value "maybe" for -cas: parse error\n/],
      [['put', '-session'], /^flag needs an argument: -session\n/],
      [['put', '---x', 'k'], /^bad flag syntax: ---x\n/],
      [['put', 'k', 'v', 'w'], /^Error! Too many arguments \(expected 1 or 2, got 3\)\n$/],
      [['put', '-base64', 'k', 'not base64!'], /^Error! Cannot base 64 decode data: illegal base64 data at input byte 3\n$/],
      [['put', '-cas', 'k', 'v'], /^Error! Must specify -modify-index with -cas!\n$/],
      [['put', 'k', '@/nonexistent/file'], /^Error! Failed to read file: ENOENT/],
      [['delete', '-cas', '-recurse', '-modify-index=3', 'k'], /^Error! Cannot specify both -cas and -recurse!\n$/],
      [['delete', '-modify-index=3', 'k'], /^Error! Cannot specify -modify-index without -cas!\n$/],
      [['get', 'a', 'b'], /^Error! Too many arguments \(expected 1, got 2\)\n$/],
      [['frobnicate'], /^Error! Unknown subcommand "frobnicate"/],
    ];
    for (const [args, want] of cases) {
      const r = await kv(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err, want, args.join(' '));
    }
    assert.equal(await tree(), before);
    // An agent that does not answer is named.
    const out: string[] = [];
    const code = await runKv(['get', 'k'], { out: () => undefined, err: (s) => out.push(s), stdin: () => Promise.resolve(Buffer.alloc(0)), readFile: () => Promise.reject(new Error('no')) },
      () => new RegistryClient({ address: '127.0.0.1:1', timeoutMs: 2000 }));
    assert.equal(code, 1);
    assert.match(out.join(''), /^Error! GET http:\/\/127\.0\.0\.1:1\/v1\/kv\/k: /);
  });

  it('export writes consul kv export\'s JSON; import reads it, a saved ?recurse answer, and writes nothing from a bad file', async () => {
    await kv(['delete', '-recurse', 'ex/']);
    await kv(['put', '-flags=18446744073709551615', 'ex/a<b>&', 'x']);
    await kv(['put', 'ex/bin', `@${join(dir, 'bin')}`]);
    await kv(['put', 'ex/empty']);
    const exported = text(await kv(['export', 'ex/']));
    // Go's json.MarshalIndent with a tab, and Go's escapes of <, > and &.
    assert.equal(exported, `[\n\t{\n\t\t"key": "ex/a\\u003cb\\u003e\\u0026",\n\t\t"flags": 18446744073709551615,\n\t\t"value": "eA=="\n\t},\n\t{\n\t\t"key": "ex/bin",\n\t\t"flags": 0,\n\t\t"value": "AAEC//4KgA=="\n\t},\n\t{\n\t\t"key": "ex/empty",\n\t\t"flags": 0,\n\t\t"value": ""\n\t}\n]\n`);
    assert.equal(text(await kv(['export', 'no/such/prefix'])), '[]\n');
    const saved = await tree();
    const recurseAnswer = (await http(a.url, 'GET', '/v1/kv/ex/?recurse')).text;

    // Round trip: delete the tree, import the export, get the same keys, flags and bytes back.
    await kv(['delete', '-recurse', 'ex/']);
    writeFileSync(join(dir, 'export.json'), exported);
    const imp = await kv(['import', `@${join(dir, 'export.json')}`]);
    assert.deepEqual([imp.code, text(imp)], [0, 'Imported: ex/a<b>&\nImported: ex/bin\nImported: ex/empty\n']);
    assert.equal(text(await kv(['export', 'ex/'])), exported);

    // A saved /v1/kv/?recurse answer imports too (Go matches field names in any case), under a -prefix.
    const r2 = await kv(['import', '-prefix=copy/', '-'], recurseAnswer);
    assert.equal(r2.code, 0, r2.err);
    assert.equal(text(await kv(['export', 'copy/'])), exported.replace(/"ex\//g, '"copy/ex/'));
    await kv(['delete', '-recurse', 'copy/']);

    // A bad entry anywhere in the file: nothing is written, and the message names the entry.
    const before = await tree();
    const bad: [string, RegExp][] = [
      ['[{"key":"new/1","value":"aGk="},{"key":"new/2","value":"!!"}]', /^Error! entry 1 \(key "new\/2"\): "value": illegal base64 data at input byte 0; nothing was imported\n$/],
      ['[{"key":"new/1","flags":18446744073709551616}]', /^Error! entry 0 \(key "new\/1"\): "flags" 18446744073709551616 is out of range/],
      ['[{"key":"new/1","flags":"5"}]', /"flags" must be an unsigned 64-bit integer, got "5"/],
      ['[{"key":"new/1"},{"flags":1}]', /^Error! entry 1: "key" must be a string, got nothing/],
      ['{"key":"new/1"}', /^Error! Cannot unmarshal data: expected a JSON array/],
      ['[{"key":"new/1"', /^Error! Cannot unmarshal data: /],
    ];
    for (const [file, want] of bad) {
      const r = await kv(['import', '-'], file);
      assert.equal(r.code, 1, file);
      assert.match(r.err, want, file);
    }
    assert.deepEqual(await kv(['import']), { code: 1, out: Buffer.alloc(0), err: 'Error! Missing DATA argument\n' });
    assert.equal(await tree(), before);
    assert.equal(saved.length > 0, true);
  });

  it('keys are sent as written: dot segments, ?, # and % are parts of the key, also behind a path prefix', async () => {
    const keys = ['dots/a/../b', 'dots/./c', 'dots/q?x=1', 'dots/h#f', 'dots/p%20c'];
    for (const k of keys) assert.equal((await kv(['put', k, `v:${k}`])).code, 0, k);
    // Through a URL, `a/../b` would have been resolved to `b`: another key written in its place.
    assert.deepEqual((await http(a.url, 'GET', '/v1/kv/dots/?keys')).json, [...keys].sort());
    for (const k of keys) assert.equal(text(await kv(['get', k])), `v:${k}\n`, k);
    await kv(['delete', '-recurse', 'dots/']);
    // An agent behind a proxy under a path: the prefix stays, the key's segments follow it untouched.
    const seen: string[] = [];
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.end('true');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = new RegistryClient({ address: `http://127.0.0.1:${port}/consul/` });
    assert.equal(await client.put('/v1/kv/a/../b', 'x'), 'true');
    await client.close();
    server.close();
    assert.deepEqual(seen, ['/consul/v1/kv/a/../b']);
    assert.throws(() => new RegistryClient({ address: 'http://[::1' }), /registry address "http:\/\/\[::1" is not a URL or host:port/);
  });

  it('the real command: exit codes, stdout and stderr, stdin, CONSUL_HTTP_ADDR and -http-addr', async () => {
    const cli = (args: string[], input = '', env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'src/cli/main.ts'), 'kv', ...args], { cwd: REPO, env: { ...process.env, CONSUL_HTTP_ADDR: addr, ...env } });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.stdin.end(input);
      c.on('close', (code) => resolve({ code, out, err }));
    });
    assert.deepEqual(await cli(['put', 'real/k', '-'], 'piped'), { code: 0, out: 'Success! Data written to: real/k\n', err: '' });
    assert.deepEqual(await cli(['get', `-http-addr=${addr}`, 'real/k'], '', { CONSUL_HTTP_ADDR: '127.0.0.1:1' }), { code: 0, out: 'piped\n', err: '' });
    assert.deepEqual(await cli(['get', 'real/none']), { code: 1, out: '', err: 'Error! No key exists at: real/none\n' });
    const bad = await cli(['get', '-recursive', 'real/']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^flag provided but not defined: -recursive\n/);
  });
});
