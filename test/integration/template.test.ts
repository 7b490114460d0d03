// `switchyard template` against a real agent: seed 000's template, change-only writes and commands, errors,
// -dry, HCL config, and the seed's whole loop with real nginx reloading on every change.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startTestAgent, http, negativeWindow, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { reachesExactly, startBackend } from '../helpers/lb.js';
import type { Backend } from '../helpers/lb.js';
import { freePort, stop, switchyard } from '../helpers/process.js';

const SEED = readFileSync(new URL('../fixtures/templates/nginx.conf.ctmpl', import.meta.url), 'utf8');

describe('switchyard template', () => {
  let agent: TestAgent;
  const reg = (id: string, port: number, name = 'nginx') => http(agent.url, 'PUT', '/v1/agent/service/register', { Name: name, ID: id, Address: '127.0.0.1', Port: port });
  const dereg = (id: string) => http(agent.url, 'PUT', `/v1/agent/service/deregister/${id}`);
  before(async () => {
    agent = await startTestAgent();
  });
  after(async () => {
    await agent.stop();
  });

  it('renders seed 000\'s template once (-once), byte for byte as consul-template would', async () => {
    const dir = tempDir('sy-tpl-');
    writeFileSync(join(dir, 'nginx.conf.ctmpl'), SEED);
    for (const [id, port] of [['web3', 49187], ['web1', 49185], ['web2', 49186]] as const) await reg(id, port);
    const p = switchyard(['template', '-once', '-consul-addr', agent.url, '-template', `${dir}/nginx.conf.ctmpl:${dir}/default.conf`]);
    assert.equal((await p.exited).code, 0, p.stderr());
    assert.equal(readFileSync(join(dir, 'default.conf'), 'utf8'), [
      'upstream web {',
      '  server 127.0.0.1:49185 max_fails=3 fail_timeout=60 weight=1;',
      '  server 127.0.0.1:49186 max_fails=3 fail_timeout=60 weight=1;',
      '  server 127.0.0.1:49187 max_fails=3 fail_timeout=60 weight=1;',
      '  ',
      '}',
      '',
      'server {',
      '  listen 80 default_server;',
      '',
      '  location / {',
      '    proxy_pass http://web;',
      '  }',
      '}',
      '',
    ].join('\n'));
    for (const id of ['web1', 'web2', 'web3']) await dereg(id);
  });

  it('a template reading more than ten dependencies says nothing but its own log lines (no leak warning from Node)', async () => {
    const dir = tempDir('sy-tpl-');
    // The seeds' shape, one upstream per service: twelve services, so thirteen watches (services + each service).
    writeFileSync(join(dir, 'all.ctmpl'), '{{range services}}{{$n := .Name}}{{range service $n}}{{$n}} {{.Address}}:{{.Port}}\n{{end}}{{end}}');
    for (let i = 0; i < 12; i++) await reg(`many${i}`, 41000 + i, `many${i}`);
    try {
      const p = switchyard(['template', '-once', '-consul-addr', agent.url, '-template', `${dir}/all.ctmpl:${dir}/all.out`]);
      assert.equal((await p.exited).code, 0, p.stderr());
      assert.equal(readFileSync(join(dir, 'all.out'), 'utf8').split('\n').filter((l) => l.startsWith('many')).length, 12);
      const foreign = p.stderr().split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
      assert.deepEqual(foreign, [], 'stderr holds only JSON log lines');
    } finally {
      for (let i = 0; i < 12; i++) await dereg(`many${i}`);
    }
  });

  it('re-renders on change only, keeps the file mode, runs the command only when the content changed, and retries a failed command', async () => {
    const dir = tempDir('sy-tpl-');
    writeFileSync(join(dir, 't.ctmpl'), '{{range service "svc"}}{{.Port}} {{end}}\n');
    writeFileSync(join(dir, 'out.txt'), 'old\n');
    chmodSync(join(dir, 'out.txt'), 0o600);
    const log = join(dir, 'runs.log');
    const flag = join(dir, 'fail');
    const cmd = `test ! -e ${flag} && echo ran >> ${log}`;
    await reg('s1', 1001, 'svc');
    const p = switchyard(['template', '-consul-addr', agent.url, '-template', `${dir}/t.ctmpl:${dir}/out.txt:${cmd}`, '-log-level', 'info']);
    try {
      await waitFor(() => existsSync(log) && readFileSync(log, 'utf8') === 'ran\n', 'first render ran the command', 10_000);
      assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), '1001 \n');
      assert.equal(statSync(join(dir, 'out.txt')).mode & 0o777, 0o600, 'the destination keeps its mode');
      // A change elsewhere in the catalog wakes nothing here; an identical re-registration writes nothing.
      await reg('other', 5, 'unrelated');
      await reg('s1', 1001, 'svc');
      // The runner has nothing to show that it saw these changes and did nothing, so the absence of a
      // run is checked over a window (its blocking query wakes in milliseconds when its data changes).
      await negativeWindow(500, 'a render or command run for an unrelated or identical change');
      assert.equal(readFileSync(log, 'utf8'), 'ran\n');
      await reg('s2', 1002, 'svc');
      await waitFor(() => readFileSync(join(dir, 'out.txt'), 'utf8') === '1001 1002 \n', 're-render', 10_000);
      await waitFor(() => readFileSync(log, 'utf8') === 'ran\nran\n', 'command ran again', 10_000);
      // The command fails: reported, and retried on the next change.
      writeFileSync(flag, '');
      await reg('s3', 1003, 'svc');
      await waitFor(() => /command failed: will run again on the next change/.test(p.stderr()), 'failure reported', 10_000);
      assert.equal(readFileSync(log, 'utf8'), 'ran\nran\n');
      spawnSync('rm', ['-f', flag]);
      await reg('s4', 1004, 'svc');
      await waitFor(() => readFileSync(log, 'utf8') === 'ran\nran\nran\n', 'command retried on the next change', 10_000);
    } finally {
      await stop(p);
      for (const id of ['s1', 's2', 's3', 's4', 'other']) await dereg(id);
    }
  });

  it('logs each render and command run at info (path, exit code), and follows an agent that lost its data and came back on the same port', async () => {
    // Its own agent on the embedded store: this is about one agent's index going backwards.
    let a = await startTestAgent({ store: 'embedded' });
    const port = new URL(a.url).port;
    const dir = tempDir('sy-tpl-');
    const out = join(dir, 'out.txt');
    writeFileSync(join(dir, 't.ctmpl'), '{{range service "svc"}}{{.ID}} {{end}}\n');
    for (let i = 0; i < 20; i++) await http(a.url, 'PUT', `/v1/kv/history/${i}`, 'x');
    await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'svc', ID: 'before', Port: 1 });
    const p = switchyard(['template', '-consul-addr', a.url, '-template', `${dir}/t.ctmpl:${out}:true`, '-log-level', 'info']);
    const logs = (): { msg: string; destination?: string; code?: number }[] => p.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
    try {
      await waitFor(() => existsSync(out) && readFileSync(out, 'utf8') === 'before \n', 'first render', 10_000);
      await waitFor(() => logs().some((l) => l.msg === 'command ran'), 'the command run is logged', 5000);
      const rendered = logs().find((l) => l.msg === 'rendered');
      const ran = logs().find((l) => l.msg === 'command ran');
      assert.equal(rendered?.destination, out, 'the render names the file it wrote');
      assert.equal(ran?.destination, out);
      assert.equal(ran?.code, 0, 'the command run carries its exit code');

      const before = Number((await http(a.url, 'GET', '/v1/health/service/svc')).headers.get('x-consul-index'));
      await waitFor(() => a.view.waiterCount() >= 1, 'the template\'s blocking read is parked', 5000);
      await a.stop(); // closes it and deletes its data dir
      a = await startTestAgent({ store: 'embedded', 'http-addr': `127.0.0.1:${port}` });
      await http(a.url, 'PUT', '/v1/agent/service/register', { Name: 'svc', ID: 'after', Port: 2 });
      const after = Number((await http(a.url, 'GET', '/v1/health/service/svc')).headers.get('x-consul-index'));
      assert.ok(after < before, `the restarted agent's index went backwards (${before} → ${after})`);
      // The template's blocking wait is 60 s: far longer than this.
      await waitFor(() => readFileSync(out, 'utf8') === 'after \n', 'the registration after the restart is rendered', 10_000);
    } finally {
      await stop(p);
      await a.stop();
    }
  });

  it('a template error names file:line:col, exits non-zero and writes nothing', async () => {
    const dir = tempDir('sy-tpl-');
    writeFileSync(join(dir, 'bad.ctmpl'), 'ok\n{{range service "x"}}\n  {{.Port}\n{{end}}\n');
    const p = switchyard(['template', '-once', '-consul-addr', agent.url, '-template', `${dir}/bad.ctmpl:${dir}/out`]);
    const r = await p.exited;
    assert.notEqual(r.code, 0);
    assert.match(p.stderr(), new RegExp(`${dir.replace(/[.]/g, '\\.')}/bad\\.ctmpl:3:\\d+: `));
    assert.ok(!existsSync(join(dir, 'out')));
    const bad = switchyard(['template', '-once', '-consul-addr', agent.url, '-template', `${dir}/bad.ctmpl`]);
    assert.notEqual((await bad.exited).code, 0);
    assert.match(bad.stderr(), /a destination is required/);
  });

  it('-dry prints the destination and contents; an HCL config with consul {} and template {} blocks works', async () => {
    const dir = tempDir('sy-tpl-');
    await reg('d1', 2001, 'dry');
    await http(agent.url, 'PUT', '/v1/kv/app/greeting', 'hello');
    writeFileSync(join(dir, 'dry.ctmpl'), '{{key "app/greeting"}} {{range service "dry"}}{{.Port}}{{end}}\n');
    const p = switchyard(['template', '-once', '-dry', '-consul-addr', agent.url, '-template', `${dir}/dry.ctmpl:${dir}/never`]);
    assert.equal((await p.exited).code, 0, p.stderr());
    assert.equal(p.stdout(), `> ${dir}/never\nhello 2001\n`);
    assert.ok(!existsSync(join(dir, 'never')));
    writeFileSync(join(dir, 'ct.hcl'), `
# consul-template's documented format
consul {
  address = "${agent.url.replace('http://', '')}"
}
template {
  source      = "${dir}/dry.ctmpl"
  destination = "${dir}/from-hcl.txt"
  perms       = 0640
}
`);
    const h = switchyard(['template', '-once', '-config', join(dir, 'ct.hcl')]);
    assert.equal((await h.exited).code, 0, h.stderr());
    assert.equal(readFileSync(join(dir, 'from-hcl.txt'), 'utf8'), 'hello 2001\n');
    assert.equal(statSync(join(dir, 'from-hcl.txt')).mode & 0o777, 0o640);
    await dereg('d1');
  });

  it('drives real nginx: 1 → 3 → 2 backends, each change re-rendered and reloaded, traffic reaches exactly the registered ones', async (t) => {
    if (spawnSync('nginx', ['-v']).error) {
      if (process.env.CI === 'true') assert.fail('CI=true: nginx must be installed (.ci/run installs it)');
      t.skip('nginx is not installed');
      return;
    }
    const dir = tempDir('sy-nginx-');
    mkdirSync(join(dir, 'conf.d'));
    mkdirSync(join(dir, 'logs'));
    const port = await freePort();
    // Seed 000's template, but listening on loopback only (this test never binds 0.0.0.0:80).
    writeFileSync(join(dir, 'nginx.conf.ctmpl'), SEED.replace('listen 80 default_server;', `listen 127.0.0.1:${port} default_server;`));
    writeFileSync(join(dir, 'nginx.conf'), `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/logs/error.log warn;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/tmp;\n  proxy_temp_path ${dir}/tmp;\n  fastcgi_temp_path ${dir}/tmp;\n  uwsgi_temp_path ${dir}/tmp;\n  scgi_temp_path ${dir}/tmp;\n  include ${dir}/conf.d/*.conf;\n}\n`);
    const backends: Backend[] = await Promise.all(['n1', 'n2', 'n3'].map(startBackend));
    await reg('web-n1', backends[0]!.port, 'nginx');
    // Render once, then start nginx on it (as the seed's Dockerfile does), then follow changes with reloads.
    const once = switchyard(['template', '-once', '-consul-addr', agent.url, '-template', `${dir}/nginx.conf.ctmpl:${dir}/conf.d/default.conf`]);
    assert.equal((await once.exited).code, 0, once.stderr());
    const nginx = spawn('nginx', ['-p', dir, '-c', `${dir}/nginx.conf`], { stdio: 'ignore' });
    const reload = `nginx -p ${dir} -c ${dir}/nginx.conf -s reload`;
    const tpl = switchyard(['template', '-consul-addr', agent.url, '-template', `${dir}/nginx.conf.ctmpl:${dir}/conf.d/default.conf:${reload}`, '-log-level', 'info']);
    try {
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['n1']), 'nginx reaches n1 only', 10_000, 100);
      await reg('web-n2', backends[1]!.port, 'nginx');
      await reg('web-n3', backends[2]!.port, 'nginx');
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['n1', 'n2', 'n3']), 'nginx reaches all three', 10_000, 100);
      await dereg('web-n1');
      await waitFor(async () => reachesExactly(`http://127.0.0.1:${port}/`, ['n2', 'n3']), 'nginx reaches n2 and n3 only', 10_000, 100);
      assert.match(readFileSync(`${dir}/conf.d/default.conf`, 'utf8'), new RegExp(`server 127\\.0\\.0\\.1:${backends[1]!.port} max_fails=3`));
      assert.ok((tpl.stderr().match(/"msg":"command ran"/g) ?? []).length >= 2, 'nginx -s reload ran on the changes');
    } finally {
      await stop(tpl);
      nginx.kill('SIGQUIT');
      await new Promise((r) => nginx.once('exit', r));
      for (const b of backends) await b.close();
      for (const id of ['web-n2', 'web-n3']) await dereg(id);
    }
  });
});
