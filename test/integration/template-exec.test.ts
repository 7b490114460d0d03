// `switchyard template` as a long-running supervisor, against a real agent and real processes: -exec (a child
// started once the templates rendered, told of changes by its reload signal or a restart, signals passed on, its
// exit code ours), SIGHUP reloading templates and config (a broken one refused, the running one kept), the
// functions with no blocking query behind them (`node`, `datacenters`, `file`) and the environment commands get.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startTestAgent, http, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { reachesExactly, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { alive, freePort, stop, switchyard } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';

/** A child that writes what happens to it in `log`, one line per event with its PID. */
const CHILD = `#!/bin/sh
log=$1
echo "start $$ addr=$CONSUL_HTTP_ADDR out=$(cat "$2" | tr '\\n' ' ')" >> "$log"
trap 'echo "hup $$ out=$(cat "$2" | tr "\\n" " ")" >> "$log"' HUP
trap 'echo "usr1 $$" >> "$log"' USR1
trap 'echo "term $$" >> "$log"; exit 5' TERM
trap "$3" INT
while :; do sleep 0.05; done
`;

describe('switchyard template: -exec, SIGHUP, node/datacenters/file', () => {
  let agent: TestAgent;
  const procs: Proc[] = [];
  const reg = (id: string, port: number, name: string) => http(agent.url, 'PUT', '/v1/agent/service/register', { Name: name, ID: id, Address: '127.0.0.1', Port: port });
  const dereg = (id: string) => http(agent.url, 'PUT', `/v1/agent/service/deregister/${id}`);
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): Proc => {
    const p = switchyard(['template', '-consul-addr', agent.url, '-log-level', 'info', ...args], env);
    procs.push(p);
    return p;
  };
  /** A template over one service, a child script and its event log. */
  const setup = (service: string, onInt = 'echo "int $$" >> "$log"; exit 0'): { dir: string; out: string; log: string; childCmd: string; lines: () => string[] } => {
    const dir = tempDir('sy-tpl-exec-');
    writeFileSync(join(dir, 'app.ctmpl'), `{{ range service "${service}" }}{{ .Port }} {{ end }}`);
    writeFileSync(join(dir, 'child.sh'), CHILD);
    const out = join(dir, 'app.out');
    const log = join(dir, 'child.log');
    const lines = (): string[] => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : []);
    return { dir, out, log, childCmd: `sh ${join(dir, 'child.sh')} ${log} ${out} '${onInt.replace(/'/g, "'\\''")}'`, lines };
  };
  const pidOf = (line: string | undefined): number => Number(line?.split(' ')[1]);

  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await stop(p);
    await agent.stop();
  });

  it('-exec: the child starts once the templates are written, gets its reload signal on a change, other signals are passed on, and its exit code is ours', async () => {
    await reg('a1', 41001, 'exec-a');
    const s = setup('exec-a');
    const p = run(['-template', `${s.dir}/app.ctmpl:${s.out}`, '-exec', s.childCmd, '-exec-reload-signal', 'SIGHUP']);
    const started = String(await waitFor(() => s.lines().find((l) => l.startsWith('start')), () => `the child to start; stderr: ${p.stderr()}`));
    // Started after the destination was written, with the registry's address in its environment.
    assert.match(started, new RegExp(`addr=${agent.url} out=41001 $`));
    const pid = pidOf(started);

    await reg('a2', 41002, 'exec-a');
    const hup = String(await waitFor(() => s.lines().find((l) => l.startsWith('hup')), 'the reload signal'));
    // Signalled after the new file was in place, and the same process: not restarted.
    assert.equal(hup, `hup ${pid} out=41001 41002 `);
    assert.equal(s.lines().filter((l) => l.startsWith('start')).length, 1);

    // An unchanged render (a change elsewhere) does not disturb the child.
    await reg('other', 41009, 'exec-elsewhere');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(s.lines().filter((l) => l.startsWith('hup')).length, 1);

    process.kill(p.pid, 'SIGUSR1');
    await waitFor(() => s.lines().includes(`usr1 ${pid}`), 'SIGUSR1 passed on');
    // SIGTERM goes to the child too (docker stop); the child's exit (5) ends switchyard template with that code.
    process.kill(p.pid, 'SIGTERM');
    const exit = await p.exited;
    assert.equal(exit.code, 5, p.stderr());
    assert.ok(s.lines().includes(`term ${pid}`));
    assert.match(p.stderr(), /exec: child exited: stopping with its exit code/);
    for (const id of ['a1', 'a2', 'other']) await dereg(id);
  });

  it('-exec without a reload signal restarts the child on a change; SIGINT stops it with the kill signal, SIGKILL after the kill timeout', async () => {
    await reg('b1', 42001, 'exec-b');
    // This child ignores the kill signal (SIGINT): only the kill timeout ends it.
    const s = setup('exec-b', 'echo "int-ignored $$" >> "$log"');
    const p = run(['-template', `${s.dir}/app.ctmpl:${s.out}`, '-exec', s.childCmd, '-exec-kill-timeout', '400ms']);
    const first = pidOf(await waitFor(() => s.lines().find((l) => l.startsWith('start')), () => `the child to start; stderr: ${p.stderr()}`));
    await reg('b2', 42002, 'exec-b');
    const second = String(await waitFor(() => s.lines().filter((l) => l.startsWith('start'))[1], () => `a restarted child; log: ${s.lines().join(' | ')}`));
    assert.match(second, / out=42001 42002 $/);
    assert.notEqual(pidOf(second), first);
    // The first one was asked to stop (it ignores SIGINT) and was killed after the timeout.
    assert.ok(s.lines().includes(`int-ignored ${first}`), s.lines().join('\n'));
    await waitFor(() => !alive(first), 'the first child to be gone');

    const t0 = Date.now();
    process.kill(p.pid, 'SIGINT');
    const exit = await p.exited;
    assert.equal(exit.code, 0, p.stderr());
    assert.ok(Date.now() - t0 >= 350, 'the kill timeout was waited for');
    assert.ok(s.lines().includes(`int-ignored ${pidOf(second)}`));
    // Killed with its group: its shell is reaped by whoever inherits it, a moment later.
    await waitFor(() => !alive(pidOf(second)), 'no child left behind', 2_000);
    for (const id of ['b1', 'b2']) await dereg(id);
  });

  it('-once -exec renders, runs the child and exits with its code; bad -exec settings are refused before anything runs', async () => {
    await reg('c1', 43001, 'exec-c');
    const s = setup('exec-c');
    const p = run(['-once', '-template', `${s.dir}/app.ctmpl:${s.out}`, '-exec', `test "$(cat ${s.out})" = "43001 " && exit 7`]);
    assert.equal((await p.exited).code, 7, p.stderr());

    const bad = run(['-template', `${s.dir}/app.ctmpl:${s.dir}/never.out`, '-exec', 'true', '-exec-reload-signal', 'SIGNOPE']);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /exec reload signal: "SIGNOPE" is not a signal/);
    const dry = run(['-dry', '-template', `${s.dir}/app.ctmpl:${s.dir}/never.out`, '-exec', 'true']);
    assert.equal((await dry.exited).code, 2);
    assert.match(dry.stderr(), /-exec cannot be combined with -dry/);
    assert.equal(existsSync(join(s.dir, 'never.out')), false);
    await dereg('c1');
  });

  it('an exec { } block in an HCL config runs the child the same way', async () => {
    await reg('h1', 44001, 'exec-h');
    const s = setup('exec-h');
    const cfg = join(s.dir, 'ct.hcl');
    writeFileSync(cfg, `exec {\n  command = "${s.childCmd.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n  reload_signal = "SIGHUP"\n  kill_timeout = "2s"\n}\ntemplate {\n  source = "${s.dir}/app.ctmpl"\n  destination = "${s.out}"\n}\n`);
    const p = run(['-config', cfg]);
    const pid = pidOf(await waitFor(() => s.lines().find((l) => l.startsWith('start')), () => `the child to start; stderr: ${p.stderr()}`));
    await reg('h2', 44002, 'exec-h');
    await waitFor(() => s.lines().includes(`hup ${pid} out=44001 44002 `), () => `the reload signal; log: ${s.lines().join(' | ')}`);
    process.kill(p.pid, 'SIGINT');
    assert.equal((await p.exited).code, 0, p.stderr());
    assert.ok(s.lines().includes(`int ${pid}`));

    writeFileSync(cfg, 'exec {\n  command = "true"\n  reload = "SIGHUP"\n}\ntemplate {\n  source = "x"\n  destination = "y"\n}\n');
    const bad = run(['-config', cfg]);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr(), /exec/);
    assert.match(bad.stderr(), /reload/);
    for (const id of ['h1', 'h2']) await dereg(id);
  });

  it('SIGHUP reloads templates and config files; a reload that does not compile is refused and the running templates go on', async () => {
    await reg('r1', 45001, 'hup');
    const dir = tempDir('sy-tpl-hup-');
    const src = join(dir, 'r.ctmpl');
    const out = join(dir, 'r.out');
    writeFileSync(src, 'v1 {{ range service "hup" }}{{ .Port }} {{ end }}\n');
    const p = run(['-template', `${src}:${out}`]);
    await waitFor(() => existsSync(out) && readFileSync(out, 'utf8') === 'v1 45001 \n', () => `the first render; stderr: ${p.stderr()}`);

    writeFileSync(src, 'v2 {{ range service "hup" }}{{ .Port }},{{ end }}\n');
    process.kill(p.pid, 'SIGHUP');
    await waitFor(() => readFileSync(out, 'utf8') === 'v2 45001,\n', () => `the reloaded template; file: ${readFileSync(out, 'utf8')}; stderr: ${p.stderr()}`);

    writeFileSync(src, 'v3 {{ range service "hup" }\n');
    process.kill(p.pid, 'SIGHUP');
    await waitFor(() => p.stderr().includes('reload failed, still running the previous configuration'), () => `the refused reload; stderr: ${p.stderr()}`);
    assert.match(p.stderr(), /r\.ctmpl:1:\d+: unexpected "}"/);
    // Still running, with v2.
    await reg('r2', 45002, 'hup');
    await waitFor(() => readFileSync(out, 'utf8') === 'v2 45001,45002,\n', () => `a render with the previous template; file: ${readFileSync(out, 'utf8')}`);
    assert.equal(p.child.exitCode, null);
    process.kill(p.pid, 'SIGTERM');
    assert.equal((await p.exited).code, 0);
    for (const id of ['r1', 'r2']) await dereg(id);
  });

  it('node (the agent\'s own or named), datacenters and file render and follow their changes; commands get CONSUL_HTTP_ADDR', async () => {
    const dir = tempDir('sy-tpl-fns-');
    const extra = join(dir, 'extra.txt');
    writeFileSync(extra, 'first');
    await http(agent.url, 'PUT', '/v1/catalog/register', { Node: 'ext-1', Address: '10.9.0.1', Service: { ID: 'ext-b', Service: 'zeta', Port: 9, Tags: ['y', 'x'] } });
    writeFileSync(join(dir, 'f.ctmpl'), [
      '{{ with node }}own={{ .Node.Node }}{{ end }}',
      '{{ with node "ext-1" }}ext={{ .Node.Address }}{{ range .Services }} {{ .Service }}:{{ .Port }}:{{ join "," .Tags }}{{ end }}{{ end }}',
      'dcs={{ datacenters }}',
      'file={{ file "' + extra + '" }}',
      '',
    ].join('\n'));
    const out = join(dir, 'f.out');
    const p = run(['-template', `${dir}/f.ctmpl:${out}:echo "$CONSUL_HTTP_ADDR" > ${dir}/addr.txt`]);
    await waitFor(() => existsSync(out), () => `the first render; stderr: ${p.stderr()}`);
    assert.equal(readFileSync(out, 'utf8'), 'own=n1\next=10.9.0.1 zeta:9:x,y\ndcs=[dc1]\nfile=first\n');
    await waitFor(() => existsSync(join(dir, 'addr.txt')), 'the command');
    assert.equal(readFileSync(join(dir, 'addr.txt'), 'utf8'), `${agent.url}\n`);

    // A file has no blocking query: it is looked at every 2 s, as consul-template does.
    writeFileSync(extra, 'second');
    await waitFor(() => readFileSync(out, 'utf8').includes('file=second'), () => `the file's change; file: ${readFileSync(out, 'utf8')}`, 10_000);
    await http(agent.url, 'PUT', '/v1/catalog/register', { Node: 'ext-1', Address: '10.9.0.1', Service: { ID: 'ext-a', Service: 'alpha', Port: 8 } });
    await waitFor(() => readFileSync(out, 'utf8').includes('ext=10.9.0.1 alpha:8: zeta:9:x,y'), () => `the node's change; file: ${readFileSync(out, 'utf8')}`);
    process.kill(p.pid, 'SIGTERM');
    assert.equal((await p.exited).code, 0);
    await http(agent.url, 'PUT', '/v1/catalog/deregister', { Node: 'ext-1' });
  });

  it('supervises real nginx (-exec "nginx -g \'daemon off;\'", reload signal SIGHUP): traffic follows 1 → 2 → 1 backends, the same master throughout, SIGQUIT stops it gracefully', async (t) => {
    if (spawnSync('nginx', ['-v']).error) {
      if (process.env.CI === 'true') assert.fail('CI=true: nginx must be installed (.ci/run installs it)');
      t.skip('nginx is not installed');
      return;
    }
    const dir = tempDir('sy-tpl-nginx-');
    mkdirSync(join(dir, 'logs'));
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf.ctmpl'), [
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/logs/error.log warn;`,
      'worker_processes 2;',
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${dir}/tmp;`),
      '  upstream web {{ "{" }}{{ range service "exec-nginx" }}',
      '    server {{ .Address }}:{{ .Port }};{{ else }}',
      '    server 127.0.0.1:1 down;{{ end }}',
      '  }',
      `  server { listen 127.0.0.1:${port}; location / { proxy_pass http://web; } }`,
      '}',
      '',
    ].join('\n'));
    const backends: Backend[] = await Promise.all(['x1', 'x2'].map(startBackend));
    await reg('xn1', backends[0]!.port, 'exec-nginx');
    const tpl = run(['-template', `${dir}/nginx.conf.ctmpl:${dir}/nginx.conf`, '-exec', `nginx -p ${dir} -c ${dir}/nginx.conf -g 'daemon off;'`, '-exec-reload-signal', 'SIGHUP', '-exec-kill-signal', 'SIGQUIT']);
    const master = (): string => (existsSync(join(dir, 'nginx.pid')) ? readFileSync(join(dir, 'nginx.pid'), 'utf8').trim() : '');
    try {
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['x1'], 8), () => `nginx reaches x1 only; stderr: ${tpl.stderr()}`, 10_000, 100);
      const pid = master();
      assert.notEqual(pid, '');
      await reg('xn2', backends[1]!.port, 'exec-nginx');
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['x1', 'x2'], 8), 'nginx reaches both', 10_000, 100);
      await dereg('xn1');
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['x2'], 8), 'nginx reaches x2 only', 10_000, 100);
      // Reloaded in place (SIGHUP to the master; its workers ignore it), never restarted.
      assert.equal(master(), pid);
      assert.ok((tpl.stderr().match(/exec: templates changed: signalling the child/g) ?? []).length >= 2, tpl.stderr());
      // SIGQUIT is passed on: nginx shuts down gracefully and its exit (0) ends switchyard template.
      process.kill(tpl.pid, 'SIGQUIT');
      assert.equal((await tpl.exited).code, 0, tpl.stderr());
      assert.equal(alive(Number(pid)), false);
    } finally {
      if (tpl.child.exitCode === null) await stop(tpl);
      for (const b of backends) await b.close();
      await dereg('xn2');
    }
  });

  it('template blocks: backup keeps the replaced file as .bak, exec { } runs the command, error_fatal = false and create_dest_dirs = false fail alone; unsupported keys are refused, unknown top-level ones named', async () => {
    await reg('k1', 46001, 'blocks');
    const dir = tempDir('sy-tpl-blocks-');
    writeFileSync(join(dir, 'ok.ctmpl'), '{{ range service "blocks" }}{{ .Port }} {{ end }}');
    writeFileSync(join(dir, 'bad.ctmpl'), '{{ parseInt "x" }}');
    const cfg = join(dir, 'ct.hcl');
    writeFileSync(cfg, [
      'vault {\n  address = "https://vault:8200"\n}',
      `template {\n  source = "${dir}/ok.ctmpl"\n  destination = "${dir}/ok.out"\n  backup = true\n  exec {\n    command = ["sh", "-c", "echo ran >> ${dir}/ran.log"]\n    timeout = "5s"\n  }\n}`,
      `template {\n  source = "${dir}/bad.ctmpl"\n  destination = "${dir}/bad.out"\n  error_fatal = false\n}`,
      `template {\n  source = "${dir}/ok.ctmpl"\n  destination = "${dir}/missing/dir/ok.out"\n  create_dest_dirs = false\n}`,
      '',
    ].join('\n'));
    const p = run(['-config', cfg]);
    const out = join(dir, 'ok.out');
    await waitFor(() => existsSync(out) && existsSync(join(dir, 'ran.log')), () => `the first render; stderr: ${p.stderr()}`);
    assert.equal(readFileSync(out, 'utf8'), '46001 ');
    assert.equal(existsSync(`${out}.bak`), false, 'nothing to back up on the first write');
    assert.match(p.stderr(), /config keys ignored \(consul-template has them; switchyard template does not use them\): vault/);
    assert.match(p.stderr(), /bad\.ctmpl:1:\d+: executing .*parseInt: strconv\.ParseInt: parsing "x": invalid syntax/);
    assert.match(p.stderr(), /"destination":"[^"]*missing\/dir\/ok\.out","err":"ENOENT[^"]*","msg":"could not write the destination"/);
    assert.equal(existsSync(join(dir, 'missing')), false);

    await reg('k2', 46002, 'blocks');
    await waitFor(() => readFileSync(out, 'utf8') === '46001 46002 ', 'the second render');
    assert.equal(readFileSync(`${out}.bak`, 'utf8'), '46001 ');
    await reg('k3', 46003, 'blocks');
    await waitFor(() => readFileSync(out, 'utf8') === '46001 46002 46003 ', 'the third render');
    assert.equal(readFileSync(`${out}.bak`, 'utf8'), '46001 46002 ');
    assert.equal(existsSync(`${out}.old.bak`), false);
    // The command runs right after its file is written: once per change.
    await waitFor(() => readFileSync(join(dir, 'ran.log'), 'utf8') === 'ran\nran\nran\n', () => `three runs; log: ${JSON.stringify(readFileSync(join(dir, 'ran.log'), 'utf8'))}`);
    assert.equal(p.child.exitCode, null, 'error_fatal = false: still running');
    process.kill(p.pid, 'SIGTERM');
    assert.equal((await p.exited).code, 0);

    for (const [key, msg] of [['wait {\n    min = "1s"\n  }', /template\.0\.wait: a wait per template is not supported/], ['sandbox_path = "/srv"', /template\.0\.sandbox_path: a sandbox for file is not supported/], ['user = "www-data"', /template\.0\.user: setting the owner is not supported/], ['frobnicate = 1', /template\.0: .*frobnicate/i]] as const) {
      writeFileSync(cfg, `template {\n  source = "${dir}/ok.ctmpl"\n  destination = "${dir}/never.out"\n  ${key}\n}\n`);
      const bad = run(['-config', cfg]);
      assert.equal((await bad.exited).code, 2, key);
      assert.match(bad.stderr(), msg);
    }
    assert.equal(existsSync(join(dir, 'never.out')), false);
    for (const id of ['k1', 'k2', 'k3']) await dereg(id);
  });

  it('-consul-token-file reaches an agent that requires a token; -pid-file holds our PID for kill -HUP and goes when we stop', async () => {
    const secured = await startTestAgent({ 'acl-token': 'tpl-s3cret' });
    try {
      const dir = tempDir('sy-tpl-token-');
      writeFileSync(join(dir, 'token'), 'tpl-s3cret\n');
      await http(secured.url, 'PUT', '/v1/agent/service/register', { Name: 'tok', ID: 'tok1', Port: 47001 }, { 'X-Consul-Token': 'tpl-s3cret' });
      writeFileSync(join(dir, 't.ctmpl'), 'a {{ range service "tok" }}{{ .Port }}{{ end }}');
      const out = join(dir, 't.out');
      const pidFile = join(dir, 'ct.pid');
      const p = switchyard(['template', '-consul-addr', secured.url, '-consul-token-file', join(dir, 'token'), '-pid-file', pidFile, '-template', `${dir}/t.ctmpl:${out}`], { CONSUL_HTTP_TOKEN: '' });
      procs.push(p);
      await waitFor(() => existsSync(out), () => `the render through the token; stderr: ${p.stderr()}`);
      assert.equal(readFileSync(out, 'utf8'), 'a 47001');
      assert.equal(readFileSync(pidFile, 'utf8'), `${p.pid}\n`);
      writeFileSync(join(dir, 't.ctmpl'), 'b {{ range service "tok" }}{{ .Port }}{{ end }}');
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGHUP');
      await waitFor(() => readFileSync(out, 'utf8') === 'b 47001', 'the reload through the PID file');
      process.kill(p.pid, 'SIGTERM');
      assert.equal((await p.exited).code, 0, p.stderr());
      assert.equal(existsSync(pidFile), false, 'the PID file is removed');

      const missing = run(['-consul-token-file', join(dir, 'nope'), '-template', `${dir}/t.ctmpl:${dir}/never.out`]);
      assert.equal((await missing.exited).code, 2);
      assert.match(missing.stderr(), /-consul-token-file: cannot read the token file .*nope/);
    } finally {
      await secured.stop();
    }
  });
});
