// registrator flags, registry URI and the -tags Go-template subset.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SwitchyardError } from '../../src/core/errors.js';
import { parseGoInt, parseOptions, parseRegistryUri } from '../../src/registrator/options.js';
import { compileTagsTemplate } from '../../src/registrator/tags-template.js';
import { dockerEndpoint, parseEvent } from '../../src/registrator/docker.js';
import { isStopSignal, stopSignalNumber } from '../../src/registrator/sync.js';

const invalid = (re: RegExp) => (err: unknown): boolean => err instanceof SwitchyardError && err.code === 'SY_ERR_INVALID_ARGUMENT' && re.test(err.message);

describe('registrator options', () => {
  it('defaults as registrator has them', () => {
    const o = parseOptions({}, ['consul://127.0.0.1:8500']);
    assert.equal(o.hostIp, '');
    assert.equal(o.deregister, 'always');
    assert.equal(o.resyncSec, 0);
    assert.equal(o.retryAttempts, 0);
    assert.equal(o.retryIntervalMs, 2000);
    assert.equal(o.cleanup, false);
    assert.deepEqual(o.registry, { scheme: 'consul', address: 'http://127.0.0.1:8500' });
  });

  it('all flags', () => {
    const o = parseOptions({
      ip: '10.0.0.1', internal: true, explicit: true, useIpFromLabel: 'ip', tags: 'a,b', resync: '30', cleanup: true, deregister: 'on-success',
      retryAttempts: '-1', retryInterval: '500', ttl: '30', ttlRefresh: '10',
    }, ['consul://consul.local:8501']);
    assert.equal(o.hostIp, '10.0.0.1');
    assert.equal(o.internal && o.explicit && o.cleanup, true);
    assert.equal(o.resyncSec, 30);
    assert.equal(o.deregister, 'on-success');
    assert.equal(o.retryAttempts, -1);
    assert.equal(o.retryIntervalMs, 500);
    assert.equal(o.registry.address, 'http://consul.local:8501');
    assert.equal(o.tagsTemplate({}), 'a,b');
  });

  it('errors name the flag', () => {
    assert.throws(() => parseOptions({}, []), invalid(/missing required argument for registry URI/));
    assert.throws(() => parseOptions({}, ['consul://a', 'b']), invalid(/extra unparsed arguments: b/));
    assert.throws(() => parseOptions({ deregister: 'never' }, ['consul://a']), invalid(/-deregister must be "always" or "on-success"/));
    assert.throws(() => parseOptions({ stopGrace: '-1' }, ['consul://a']), invalid(/-stop-grace must be 0 … 86400 seconds, got -1/));
    assert.throws(() => parseOptions({ stopGrace: '5s' }, ['consul://a']), invalid(/invalid value "5s" for flag -stop-grace/));
    assert.equal(parseOptions({}, ['consul://a']).stopGraceSec, 30);
    assert.equal(parseOptions({ stopGrace: '0x10' }, ['consul://a']).stopGraceSec, 16);
    assert.throws(() => parseOptions({ resync: '1m' }, ['consul://a']), invalid(/invalid value "1m" for flag -resync: parse error/));
    assert.throws(() => parseOptions({ retryInterval: '0' }, ['consul://a']), invalid(/-retry-interval must be greater than 0/));
    assert.throws(() => parseOptions({ retryAttempts: '-2' }, ['consul://a']), invalid(/-retry-attempts/));
    assert.throws(() => parseOptions({ ttl: '10' }, ['consul://a']), invalid(/-ttl and -ttl-refresh must be specified together/));
    assert.throws(() => parseOptions({ ttl: '10', ttlRefresh: '10' }, ['consul://a']), invalid(/-ttl must be greater than -ttl-refresh/));
    assert.throws(() => parseOptions({ tags: '{{ if .ID }}x{{ end }}' }, ['consul://a']), invalid(/-tags template: "if" is not supported/));
  });

  it('Go integer syntax', () => {
    assert.equal(parseGoInt('n', '0x10', 0), 16);
    assert.equal(parseGoInt('n', '010', 0), 8);
    assert.equal(parseGoInt('n', '-1', 0), -1);
    assert.equal(parseGoInt('n', '1_000', 0), 1000);
    assert.equal(parseGoInt('n', undefined, 7), 7);
    assert.throws(() => parseGoInt('n', '', 0), invalid(/flag -n/));
    assert.throws(() => parseGoInt('n', '1.5', 0), invalid(/flag -n/));
  });

  it('registry URIs', () => {
    assert.deepEqual(parseRegistryUri('consul://'), { scheme: 'consul', address: 'http://127.0.0.1:8500' });
    assert.deepEqual(parseRegistryUri('consul://consul'), { scheme: 'consul', address: 'http://consul:8500' });
    assert.deepEqual(parseRegistryUri('consul://176.126.78.96:8500'), { scheme: 'consul', address: 'http://176.126.78.96:8500' });
    assert.deepEqual(parseRegistryUri('consul-tls://c.example:8501'), { scheme: 'consul-tls', address: 'https://c.example:8501' });
    assert.deepEqual(parseRegistryUri('consul://[::1]:8500'), { scheme: 'consul', address: 'http://[::1]:8500' });
    assert.throws(() => parseRegistryUri('etcd://127.0.0.1:2379/x'), invalid(/unsupported registry adapter "etcd:\/\/"/));
    assert.throws(() => parseRegistryUri('bogus://x'), invalid(/unrecognized registry adapter/));
    assert.deepEqual(parseRegistryUri('consulkv://127.0.0.1:8500/services/'), { scheme: 'consulkv', address: 'http://127.0.0.1:8500', kvPrefix: 'services' });
    assert.deepEqual(parseRegistryUri('consulkv://consul/a/b'), { scheme: 'consulkv', address: 'http://consul:8500', kvPrefix: 'a/b' });
    // registrator's adapter indexes the path and panics without one; here it is a usage error.
    assert.throws(() => parseRegistryUri('consulkv://127.0.0.1:8500'), invalid(/consulkv:\/\/ needs the KV path/));
    assert.throws(() => parseRegistryUri('consulkv-unix:///tmp/c.sock:/services'), invalid(/unsupported registry adapter "consulkv-unix:\/\/"/));
    assert.throws(() => parseRegistryUri('127.0.0.1:8500'), invalid(/registry/));
  });
});

describe('registrator -tags templates', () => {
  const container = {
    Id: 'e20f9c1a76565d62ae24a3bb877b17b862b6eab94f4e95a0e07ccf25087aaf4f',
    Name: '/web-1',
    Config: {
      Image: 'org/app:1.4',
      Env: ['ENVIRONMENT=test', 'SERVICE_8105_NAME=foo', 'HOME=/home/foobar', 'SERVICE_9404_NAME=bar'],
      Labels: { 'com.amazonaws.ecs.task-arn': 'arn:aws:ecs:region:xxxxxxxxxxxx:task/368f4403-0ee4-4f4c-b7a5-be50c57db5cf', team: 'Core' },
    },
  };
  const render = (src: string): string => compileTagsTemplate(src)(container);

  it('registrator README examples', () => {
    assert.equal(render('{{strSlice .ID 0 12}}'), 'e20f9c1a7656');
    assert.equal(render('{{ sIndex 0 .Config.Env }}'), 'ENVIRONMENT=test');
    assert.equal(render('{{ sIndex -1 .Config.Env }}'), 'SERVICE_9404_NAME=bar');
    assert.equal(render('{{ mIndex "com.amazonaws.ecs.task-arn" .Config.Labels }}'), 'arn:aws:ecs:region:xxxxxxxxxxxx:task/368f4403-0ee4-4f4c-b7a5-be50c57db5cf');
    assert.equal(render('{{toUpper "foo"}},{{toLower "FoO"}}'), 'FOO,foo');
    assert.equal(render('{{ replace -1 "=" "" "=foo=" }}'), 'foo');
    assert.equal(render('{{ join "," .Config.Env }}'), container.Config.Env.join(','));
    assert.equal(render('{{ split "," "/proc/bus,/proc/fs,/proc/irq" }}'), '[/proc/bus /proc/fs /proc/irq]');
    assert.equal(render('{{ splitIndex -1 "/" (mIndex "com.amazonaws.ecs.task-arn" .Config.Labels) }}'), '368f4403-0ee4-4f4c-b7a5-be50c57db5cf');
    assert.equal(render('{{ matchFirstElement "^SERVICE_" .Config.Env }}'), 'SERVICE_8105_NAME=foo');
    assert.equal(render('{{ matchAllElements "^SERVICE_" .Config.Env | join "," }}'), 'SERVICE_8105_NAME=foo,SERVICE_9404_NAME=bar');
    assert.equal(render('{{ split "/" "a/b/c" | sIndex 1 }}'), 'b');
  });

  it('fields, pipes, trimming and literal text', () => {
    assert.equal(render('v1,{{ .Name }}, {{- .Config.Labels.team | toLower -}} ,x'), 'v1,/web-1,core,x');
    assert.equal(render('{{ index .Config.Labels "team" }}'), 'Core');
    assert.equal(render('{{ .Config.Missing }}'), '<no value>');
    assert.equal(render('plain,tags'), 'plain,tags');
    // A label or field nobody set is absent, whatever its name: JavaScript objects all have a `constructor`.
    for (const t of ['{{ .Config.Labels.constructor }}', '{{ .Config.toString }}']) assert.equal(render(t), '<no value>', t);
    // index on a map gives Go's zero value for a key it does not have: "" in a map of strings.
    for (const k of ['constructor', 'missing']) assert.equal(render(`{{ index .Config.Labels "${k}" }}`), '', k);
  });

  it('matches with Go\'s regexp: RE2 syntax, and linear time on values any container can set', () => {
    // Env and labels belong to whoever starts the container. On a backtracking engine this pattern
    // against 40 a's and a "!" takes about 2^40 steps; the test would not end.
    const hostile = { ...container, Config: { ...container.Config, Env: [`${'a'.repeat(40)}!`, 'aaa'] } };
    assert.equal(compileTagsTemplate('{{ matchFirstElement "^(a+)+$" .Config.Env }}')(hostile), 'aaa');
    assert.equal(compileTagsTemplate('{{ matchAllElements "^(a|aa)+$" .Config.Env | join "," }}')(hostile), 'aaa');
    // Go's syntax, which JavaScript's RegExp refuses or reads otherwise.
    assert.equal(render('{{ matchFirstElement `^(?P<k>SERVICE_[0-9]+)_NAME=bar\\z` .Config.Env }}'), 'SERVICE_9404_NAME=bar');
    assert.equal(render('{{ matchFirstElement `(?i)^home=` .Config.Env }}'), 'HOME=/home/foobar');
    // What Go has not: lookaround and backreferences are refused when the flag is read, as Go's words say.
    assert.throws(() => compileTagsTemplate('{{ matchFirstElement "^(?!HOME)" .Config.Env }}'), invalid(/bad regular expression "\^\(\?!HOME\)": error parsing regexp: invalid or unsupported Perl syntax: `\(\?!`/));
    assert.throws(() => compileTagsTemplate('{{ .Config.Env | matchAllElements `(a)\\1` | join "," }}'), invalid(/invalid escape sequence: `\\1`/));
    // A pattern that only exists when the template runs is checked then, with the same words.
    const fromLabel = compileTagsTemplate('{{ matchFirstElement .Config.Labels.team .Config.Env }}');
    assert.throws(() => fromLabel({ Config: { Labels: { team: '(' }, Env: ['x'] } }), invalid(/bad regular expression "\(": error parsing regexp: missing closing \)/));
  });

  it('bad templates are rejected up front', () => {
    assert.throws(() => compileTagsTemplate('{{ nope .ID }}'), invalid(/function "nope" not defined/));
    assert.throws(() => compileTagsTemplate('{{ .ID '), invalid(/unclosed action/));
    assert.throws(() => compileTagsTemplate('{{ httpGet "http://x" }}'), invalid(/httpGet is not supported/));
    // Names every JavaScript object has are not template functions.
    assert.throws(() => compileTagsTemplate('{{ constructor }}'), invalid(/function "constructor" not defined/));
    assert.throws(() => compileTagsTemplate('{{ .ID | toString }}'), invalid(/function "toString" not defined/));
  });
});

describe('registrator Docker plumbing', () => {
  it('DOCKER_HOST, else /var/run/docker.sock, else /tmp/docker.sock', () => {
    assert.deepEqual(dockerEndpoint({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, () => false), { endpoint: 'tcp://127.0.0.1:2375' });
    assert.deepEqual(dockerEndpoint({}, (p) => p === '/var/run/docker.sock'), { endpoint: 'unix:///var/run/docker.sock', socketPath: '/var/run/docker.sock' });
    assert.deepEqual(dockerEndpoint({}, (p) => p === '/tmp/docker.sock'), { endpoint: 'unix:///tmp/docker.sock', socketPath: '/tmp/docker.sock' });
  });

  it('event lines (new and old API shapes)', () => {
    assert.deepEqual(parseEvent('{"status":"die","id":"abc","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"0"}}}'), { action: 'die', id: 'abc', exitCode: '0', signal: undefined });
    assert.deepEqual(parseEvent('{"status":"kill","id":"abc","Type":"container","Action":"kill","Actor":{"ID":"abc","Attributes":{"signal":"15"}}}'), { action: 'kill', id: 'abc', exitCode: undefined, signal: '15' });
    assert.deepEqual(parseEvent('{"status":"start","id":"abc"}'), { action: 'start', id: 'abc', exitCode: undefined, signal: undefined });
    assert.equal(parseEvent('not json'), undefined);
  });

  it('which kill signals stop a container: SIGKILL, SIGTERM and its own StopSignal, in any spelling', () => {
    assert.equal(stopSignalNumber(undefined), 15);
    assert.equal(stopSignalNumber(''), 15);
    assert.equal(stopSignalNumber('SIGQUIT'), 3);
    assert.equal(stopSignalNumber('quit'), 3);
    assert.equal(stopSignalNumber('28'), 28);
    assert.equal(stopSignalNumber('SIGNOPE'), undefined);
    assert.equal(isStopSignal(15, undefined), true);
    assert.equal(isStopSignal(9, 'SIGQUIT'), true);
    assert.equal(isStopSignal(3, 'SIGQUIT'), true);
    assert.equal(isStopSignal(28, 'SIGWINCH'), true, 'httpd images stop on SIGWINCH');
    assert.equal(isStopSignal(1, undefined), false, 'SIGHUP reloads');
    assert.equal(isStopSignal(3, undefined), false, 'SIGQUIT is a thread dump for a JVM whose stop signal is TERM');
    assert.equal(isStopSignal(10, 'SIGNOPE'), false);
  });
});
