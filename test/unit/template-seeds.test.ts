// The two seed templates rendered against the catalogs their posts show, compared byte for byte with Go's output.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { compileTemplate } from '../../src/template/index.js';
import { check, entry, fakeData } from '../fixtures/templates/fake-data.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/templates/${name}`, import.meta.url), 'utf8');

describe('seed 000: nginx.conf.ctmpl (registrator + consul-template 0.20)', () => {
  const template = compileTemplate(fixture('nginx.conf.ctmpl'), { name: 'nginx.conf.ctmpl' });
  // registrator (-ip 176.126.78.96, hostname registrator-master) registers each nginx container on the
  // consul-master node with ID <registrator hostname>:<container name>:<exposed port>; listed here in the
  // `docker ps` order of the post, so the ascending 49185/49186/49187 order comes from consul-template's
  // sort by Node then ID (test_web_1 < test_web_2 < test_web_3).
  const web = (n: number, port: number) => entry({
    node: 'consul-master', nodeAddress: '172.17.0.2', id: `registrator-master:test_web_${n}:80`, service: 'nginx',
    address: '176.126.78.96', port,
  });
  const scaled = fakeData({ health: { nginx: [web(2, 49186), web(3, 49187), web(1, 49185)] } });

  it('renders exactly the file the post printed after `docker-compose scale web=3`', () => {
    const r = template.render(scaled);
    assert.deepEqual(r.missing, []);
    // The post's file, whitespace included, is exactly what Go produces: the range body repeats
    // "server …;\n  " per instance, so after the last instance the two spaces of indentation remain
    // on a line of their own, and the template's final newline ends the file.
    assert.equal(r.output, fixture('nginx.conf.blog-output'));
    assert.equal(r.output, [
      'upstream web {',
      '  server 176.126.78.96:49185 max_fails=3 fail_timeout=60 weight=1;',
      '  server 176.126.78.96:49186 max_fails=3 fail_timeout=60 weight=1;',
      '  server 176.126.78.96:49187 max_fails=3 fail_timeout=60 weight=1;',
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
    assert.deepEqual(r.used.map((d) => d.id), ['health.service(nginx|passing)']);
  });

  it('takes the {{else}} branch when no instance is healthy: a 502 upstream', () => {
    const down = entry({
      node: 'consul-master', id: 'registrator-master:test_web_1:80', service: 'nginx', address: '176.126.78.96', port: 49185,
      checks: [check('consul-master', 'passing'), check('consul-master', 'critical', 'registrator-master:test_web_1:80')],
    });
    for (const data of [fakeData({ health: { nginx: [] } }), fakeData({ health: { nginx: [down] } })]) {
      const r = template.render(data);
      assert.deepEqual(r.missing, []);
      assert.equal(r.output, [
        'upstream web {',
        '  server 127.0.0.1:65535 down; # force a 502',
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
    }
  });

  it('reports the service as missing before the first answer (the runner must not write that output)', () => {
    const r = template.render(fakeData({}));
    assert.deepEqual(r.missing.map((d) => d.id), ['health.service(nginx|passing)']);
    assert.deepEqual(r.used.map((d) => d.id), ['health.service(nginx|passing)']);
    const dep = r.missing[0];
    assert.equal(dep?.type, 'health.service');
    if (dep?.type === 'health.service') {
      assert.equal(dep.query.name, 'nginx');
      assert.equal(dep.query.passingOnly, true);
    }
  });
});

describe('seed 001: load-balancer.tpl (per-container Consul agents + consul-template 0.19.5)', () => {
  const template = compileTemplate(fixture('load-balancer.tpl'), { name: 'load-balancer.tpl' });
  // Each API container runs its own agent, so its node is named after the container's hostname and the service
  // ID is just "api". The hostnames are the ones the post's curl calls returned after scaling to three
  // (6215fd5a5651, 16f52ff4f50e, ef97072c7cca); ef97072c7cca, the survivor of the later scale-down, is taken
  // to be the first container, 172.19.0.3. Sorting by node name then gives the printed order .9, .8, .3.
  const api = (node: string, ip: string) => entry({ node, id: 'api', service: 'api', address: '', nodeAddress: ip, port: 5000, tags: ['flask'] });
  const tail = ['', 'server {', '   listen 5000;', '   server_name localhost;', '', '   location / {', '      proxy_pass http://backend;', '   }', '}', ''];

  it('renders one instance as Go does; the post shows the same text with trailing blanks stripped', () => {
    const r = template.render(fakeData({ health: { api: [api('ef97072c7cca', '172.19.0.3')] } }));
    assert.deepEqual(r.missing, []);
    // Go emits the three spaces that precede {{ range }} on a line of their own ("   \n"); the post prints that
    // line empty and adds a space after the final "}", the page's whitespace normalisation that every code
    // block of the post shows (see test/fixtures/templates/README.md). Go's bytes are the reference.
    const expected = ['upstream backend {', '   least_conn;', '   ', '   server 172.19.0.3:5000;', '}', ...tail].join('\n');
    assert.equal(r.output, expected);
    const blog = [
      'upstream backend {', '   least_conn;', '', '   server 172.19.0.3:5000;', '}', '', 'server {', '   listen 5000;',
      '   server_name localhost;', '', '   location / {', '      proxy_pass http://backend;', '   }', '} ',
    ];
    assert.deepEqual(r.output.trimEnd().split('\n').map((l) => l.trimEnd()), blog.map((l) => l.trimEnd()));
    assert.deepEqual(r.used.map((d) => d.id), ['health.service(api|passing)']);
  });

  it('renders three instances in node-name order, matching the post after `--scale api=3`', () => {
    const data = fakeData({
      health: {
        api: [api('ef97072c7cca', '172.19.0.3'), api('6215fd5a5651', '172.19.0.8'), api('16f52ff4f50e', '172.19.0.9')],
      },
    });
    const r = template.render(data);
    const expected = [
      'upstream backend {', '   least_conn;', '   ', '   server 172.19.0.9:5000;', '   server 172.19.0.8:5000;',
      '   server 172.19.0.3:5000;', '}', ...tail,
    ].join('\n');
    assert.equal(r.output, expected);
    // The post elides everything after the upstream block with "[...]".
    const blogHead = ['upstream backend {', '   least_conn;', '', '   server 172.19.0.9:5000;', '   server 172.19.0.8:5000;', '   server 172.19.0.3:5000;', '}'];
    assert.deepEqual(r.output.split('\n').slice(0, blogHead.length).map((l) => l.trimEnd()), blogHead);
  });

  it('drops an instance whose own check fails (the "api|passing" filter)', () => {
    const failing = entry({
      node: '6215fd5a5651', id: 'api', service: 'api', address: '', nodeAddress: '172.19.0.8', port: 5000,
      checks: [check('6215fd5a5651', 'passing'), check('6215fd5a5651', 'critical', 'api')],
    });
    const r = template.render(fakeData({ health: { api: [api('ef97072c7cca', '172.19.0.3'), failing] } }));
    assert.ok(r.output.includes('   least_conn;\n   \n   server 172.19.0.3:5000;\n}'));
    assert.ok(!r.output.includes('172.19.0.8'));
  });

  it('renders an empty upstream while the service has no instance (nginx would reject it, as with consul-template)', () => {
    const r = template.render(fakeData({ health: { api: [] } }));
    assert.equal(r.output, ['upstream backend {', '   least_conn;', '   ', '}', ...tail].join('\n'));
  });
});
