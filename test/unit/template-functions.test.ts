// consul-template's functions: data lookups with their dependencies, the query syntax, record shapes and helpers.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { ApiHealthEntry } from '../../src/registry/api/types.js';
import type { HealthFilter, RenderEnv, TemplateData } from '../../src/template/index.js';
import { aggregatedStatus, compileTemplate, parseServiceQuery, serviceDependencyId, TemplateError, toCatalogServices, toHealthServices, toKeyPairs } from '../../src/template/index.js';
import { parseKvJson } from '../../src/registry/api/kv.js';
import type { KvEntryJson } from '../../src/template/data.js';
import { check, entry, fakeData } from '../fixtures/templates/fake-data.js';

function render(src: string, data: TemplateData = fakeData({}), env: RenderEnv = {}): string {
  return compileTemplate(src, { name: 't' }).render(data, env).output;
}

function execError(src: string, data: TemplateData = fakeData({}), env: RenderEnv = {}): string {
  try {
    compileTemplate(src, { name: 't' }).render(data, env);
  } catch (err) {
    assert.ok(err instanceof TemplateError);
    return err.message;
  }
  return assert.fail(`expected ${src} to fail`);
}

type Case = readonly [template: string, want: string];

function table(cases: readonly Case[], data?: () => TemplateData, env: RenderEnv = {}): void {
  for (const [src, want] of cases) it(src, () => assert.equal(render(src, data?.(), env), want));
}

/** Two instances named as in consul-template's own template tests. */
function webapp(a: readonly string[], b: readonly string[]): TemplateData {
  return fakeData({
    health: {
      webapp: [
        entry({ node: 'node1', id: 'webapp', service: 'webapp', address: '1.2.3.4', port: 80, tags: a }),
        entry({ node: 'node2', id: 'webapp', service: 'webapp', address: '5.6.7.8', port: 80, tags: b }),
      ],
    },
  });
}

const maint = (node: string, serviceId: string) => check(node, 'critical', serviceId, `_service_maintenance:${serviceId}`);

function mixedHealth(): TemplateData {
  return fakeData({
    health: {
      web: [
        entry({ node: 'n5', id: 'w5', service: 'web', address: '10.0.0.5', port: 5, checks: [check('n5', 'passing'), maint('n5', 'w5')] }),
        entry({ node: 'n4', id: 'w4', service: 'web', address: '10.0.0.4', port: 4, checks: [check('n4', 'critical')] }),
        entry({ node: 'n3', id: 'w3', service: 'web', address: '10.0.0.3', port: 3, checks: [check('n3', 'passing'), check('n3', 'warning', 'w3')] }),
        entry({ node: 'n1', id: 'w1b', service: 'web', address: '', nodeAddress: '10.0.0.9', port: 2, tags: ['z', 'a', 'm', 'a'] }),
        entry({ node: 'n1', id: 'w1a', service: 'web', address: '10.0.0.1', port: 1, tags: ['v1'], meta: { zone: 'east' } }),
      ],
    },
  });
}

describe('service', () => {
  table([
    ['{{ range service "web" }}{{ .ID }} {{ end }}', 'w1a w1b '],
    ['{{ range service "web|passing" }}{{ .ID }} {{ end }}', 'w1a w1b '],
    ['{{ range service "web|passing,warning" }}{{ .ID }}={{ .Status }} {{ end }}', 'w1a=passing w1b=passing w3=warning '],
    ['{{ range service "web" "warning,critical" }}{{ .ID }}={{ .Status }} {{ end }}', 'w3=warning w4=critical '],
    ['{{ range service "web|maintenance" }}{{ .ID }}={{ .Status }} {{ end }}', 'w5=maintenance '],
    ['{{ range service "web|any" }}{{ .ID }} {{ end }}', 'w1a w1b w3 w4 w5 '],
    ['{{ range service "v1.web|any" }}{{ .ID }} {{ end }}', 'w1a '],
    ['{{ with index (service "web") 1 }}{{ .Address }} {{ .NodeAddress }} {{ .Tags }} {{ .Port }}{{ end }}', '10.0.0.9 10.0.0.9 [a a m z] 2'],
    ['{{ with index (service "web") 0 }}{{ .Node }} {{ .NodeID }} {{ .Name }} {{ .ServiceMeta.zone }} {{ .NodeMeta }} {{ .NodeTaggedAddresses.lan }} {{ .Weights.Warning }}{{ end }}',
      'n1 id-n1 web east map[consul-network-segment:] 10.0.0.1 1'],
    ['{{ range (index (service "web|any") 4).Checks }}{{ .CheckID }}:{{ .Status }} {{ end }}', 'serfHealth:passing _service_maintenance:w5:critical '],
    ['{{ service "" }}{{ len (service "") }}', '[]0'],
  ], mixedHealth);

  it('records used and missing dependencies by consul-template id', () => {
    const t = compileTemplate('{{ service "web" }}{{ service "web|passing" }}{{ service "web" "warning,passing" }}{{ service "v1.web@dc2~_agent" }}', { name: 't' });
    const r = t.render(fakeData({}));
    const ids = ['health.service(web|passing)', 'health.service(web|passing,warning)', 'health.service(v1.web@dc2~_agent|passing)'];
    assert.deepEqual(r.used.map((d) => d.id), ids);
    assert.deepEqual(r.missing.map((d) => d.id), ids);
    assert.equal(r.output, '[][][][]');
  });

  it('connect uses the health.connect dependency', () => {
    const r = compileTemplate('{{ connect "web" }}', { name: 't' }).render(fakeData({}));
    assert.deepEqual(r.missing.map((d) => [d.type, d.id]), [['health.connect', 'health.connect(web|passing)']]);
  });

  it('reports malformed queries with consul-template\'s text', () => {
    assert.match(execError('{{ service "web.." }}'), /error calling service: health\.service: invalid format: "web\.\."$/);
    assert.match(execError('{{ service "web|up" }}'), /error calling service: health\.service: invalid filter: "up" in "web\|up"$/);
    assert.match(execError('{{ service "web?x=1" }}'), /invalid query parameter key "x" in query "x=1": supported keys: ns,peer,partition,sameness-group$/);
  });
});

describe('service query syntax (compat-spec 6.4)', () => {
  const cases: readonly (readonly [string, Record<string, unknown>, string])[] = [
    ['web', { name: 'web', tag: '', filters: ['passing'], passingOnly: true }, 'health.service(web|passing)'],
    ['web|passing', { filters: ['passing'], passingOnly: true }, 'health.service(web|passing)'],
    ['web|warning,passing', { filters: ['passing', 'warning'], passingOnly: false }, 'health.service(web|passing,warning)'],
    ['web|passing,,warning', { filters: ['passing', 'warning'] }, 'health.service(web|passing,warning)'],
    ['web|,', { filters: [], passingOnly: false }, 'health.service(web)'],
    ['a.b.web', { tag: 'a.b', name: 'web' }, 'health.service(a.b.web|passing)'],
    ['prod.web@dc1~_agent|any', { tag: 'prod', dc: 'dc1', near: '_agent', filters: ['any'] }, 'health.service(prod.web@dc1~_agent|any)'],
    ['web?ns=team&partition=p@dc1', { namespace: 'team', partition: 'p', dc: 'dc1' }, 'health.service(web@dc1@partition=p@ns=team|passing)'],
  ];
  for (const [q, fields, id] of cases) {
    it(q, () => {
      const parsed = parseServiceQuery(q);
      for (const [k, v] of Object.entries(fields)) assert.deepEqual((parsed as unknown as Record<string, unknown>)[k], v, k);
      assert.equal(serviceDependencyId(parsed), id);
    });
  }

  it('rejects what consul-template rejects', () => {
    assert.throws(() => parseServiceQuery('my.dotted.svc.'), { message: 'health.service: invalid format: "my.dotted.svc."' });
    assert.throws(() => parseServiceQuery('web|healthy'), { message: 'health.service: invalid filter: "healthy" in "web|healthy"' });
    assert.throws(() => parseServiceQuery('web?peer=a&sameness-group=b'), { message: 'health.service: cannot specify both peer and sameness-group' });
  });
});

describe('toHealthServices (the /v1/health/service conversion)', () => {
  const e = (node: string, id: string, checks: ApiHealthEntry['Checks'], address = '10.0.0.2') => entry({ node, id, service: 'web', address, nodeAddress: '10.0.0.1', port: 80, checks });

  it('aggregates check status like api.HealthChecks.AggregatedStatus', () => {
    assert.equal(aggregatedStatus([]), 'passing');
    assert.equal(aggregatedStatus([check('n', 'passing'), check('n', 'warning', 's')]), 'warning');
    assert.equal(aggregatedStatus([check('n', 'warning'), check('n', 'critical', 's')]), 'critical');
    assert.equal(aggregatedStatus([check('n', 'passing', '', '_node_maintenance'), check('n', 'critical', 's')]), 'maintenance');
    assert.equal(aggregatedStatus([check('n', 'passing'), check('n', 'unknown', 's')]), '');
  });

  it('filters on aggregated status, falls back to the node address and sorts by Node then ID', () => {
    const entries = [
      e('b', '2', [check('b', 'passing')]),
      e('a', '9', [check('a', 'warning')]),
      e('a', '1', [check('a', 'passing')], ''),
      e('c', '3', [check('c', 'passing'), check('c', 'bogus', '3')]),
    ];
    const ids = (f: readonly HealthFilter[]) => toHealthServices(entries, { filters: f }).map((s) => `${s.Node}/${s.ID}`);
    assert.deepEqual(ids(['passing']), ['a/1', 'b/2']);
    assert.deepEqual(ids(['passing', 'warning']), ['a/1', 'a/9', 'b/2']);
    // "any" even keeps the entry whose status aggregates to "" because of an unknown check status.
    assert.deepEqual(ids(['any']), ['a/1', 'a/9', 'b/2', 'c/3']);
    assert.deepEqual(toHealthServices(entries, ['any']).map((s) => s.Status), ['passing', 'warning', 'passing', '']);
    assert.equal(toHealthServices(entries, ['passing'])[0]?.Address, '10.0.0.1');
    // With ~near the server's distance order is kept.
    assert.deepEqual(toHealthServices(entries, { filters: ['any'], near: '_agent' }).map((s) => s.ID), ['2', '9', '1', '3']);
  });

  it('sorts tags (byte order, duplicates kept) without touching the input', () => {
    const input = entry({ node: 'n', id: 'x', service: 'web', address: 'a', port: 1, tags: ['b', 'B', 'a', 'b'] });
    assert.deepEqual(toHealthServices([input], ['passing'])[0]?.Tags, ['B', 'a', 'b', 'b']);
    assert.deepEqual(input.Service.Tags, ['b', 'B', 'a', 'b']);
  });
});

describe('services, key, keyExists, keyOrDefault, ls, tree', () => {
  const kvData = () => fakeData({
    catalog: { web: ['b', 'a'], api: [] },
    kv: {
      key: '5', empty: '', 'list/': '', 'list/foo': 'bar', 'list/zip': 'zap', 'list/nested/a': 'x', 'list2/other': 'y',
      'tree/': '', 'tree/admin/port': '1134', 'tree/maxconns': '5', 'tree/minconns': '2', 'tree/dir/': '',
    },
  });
  table([
    ['{{ range services }}{{ .Name }}:{{ join "," .Tags }} {{ end }}', 'api: web:a,b '],
    ['{{ key "key" }} {{ key "/key" }}', '5 5'],
    ['{{ keyExists "key" }} {{ keyExists "no_key" }} {{ keyExists "" }}', 'true false false'],
    ['{{ keyOrDefault "key" "100" }} {{ keyOrDefault "no_key" "200" }} {{ keyOrDefault "empty" "300" }}', '5 200 300'],
    ['{{ range ls "list" }}{{ .Key }}={{ .Value }} {{ end }}', 'foo=bar zip=zap '],
    ['{{ range tree "tree" }}{{ .Key }}={{ .Value }} {{ end }}', 'admin/port=1134 maxconns=5 minconns=2 '],
    ['{{ range tree "list" }}{{ .Path }} {{ end }}', 'list/foo list/nested/a list/zip list2/other '],
    ['{{ with index (ls "list") 0 }}{{ .Path }} {{ .Key }} {{ .CreateIndex }} {{ .Flags }} [{{ .Session }}]{{ end }}', 'list/foo foo 11 0 []'],
    // The prefix is a raw string prefix: "list" also matches list2/other, whose Key is "2/other".
    ['{{ range $key, $pairs := tree "list" | byKey }}{{ $key }}:{{ range $pairs }}{{ .Key }}={{ .Value }}{{ end }} {{ end }}', '2:other=y nested:a=x '],
    ['{{ range $k, $v := tree "list" | explode }}{{ $k }}{{ $v }} {{ end }}', '2map[other:y] foobar nestedmap[a:x] zipzap '],
  ], kvData);

  it('keeps `key` missing while the key does not exist, but not keyOrDefault/keyExists', () => {
    const r = compileTemplate('{{ key "no_key" }}{{ keyOrDefault "no_key" "d" }}{{ keyExists "no_key" }}', { name: 't' }).render(kvData());
    assert.equal(r.output, 'dfalse');
    assert.deepEqual(r.used.map((d) => d.id), ['kv.block(no_key)', 'kv.get(no_key)']);
    assert.deepEqual(r.missing.map((d) => d.id), ['kv.block(no_key)']);
  });

  it('reports everything missing before the first answer, with placeholders', () => {
    const r = compileTemplate('[{{ key "a" }}][{{ keyOrDefault "a@dc2" "def" }}][{{ keyExists "a" }}][{{ ls "p" }}][{{ tree "p" }}][{{ services }}]', { name: 't' }).render(fakeData({}));
    assert.equal(r.output, '[][def][false][[]][[]][[]]');
    assert.deepEqual(r.missing.map((d) => d.id), ['kv.block(a)', 'kv.get(a@dc2)', 'kv.get(a)', 'kv.list(p)', 'catalog.services']);
  });

  it('safeLs and safeTree refuse an empty prefix', () => {
    const r = compileTemplate('{{ safeLs "nothing" }}{{ safeTree "tree" }}', { name: 't' }).render(kvData());
    assert.deepEqual(r.missing.map((d) => d.id), ['kv.list(nothing)']);
  });

  it('converts /v1/kv JSON into KeyPairs relative to the prefix', () => {
    const pairs = toKeyPairs([
      { Key: 'app/web/', Value: null, Flags: 0, CreateIndex: 1, ModifyIndex: 1, LockIndex: 0 },
      { Key: 'app/web/port', Value: Buffer.from('8080').toString('base64'), Flags: 3, CreateIndex: 2, ModifyIndex: 4, LockIndex: 1, Session: 's1' },
      { Key: 'app/web2/x', Value: Buffer.from('y').toString('base64'), Flags: 0, CreateIndex: 5, ModifyIndex: 5, LockIndex: 0 },
    ], 'app/web');
    assert.deepEqual(pairs.map((p) => [p.Path, p.Key, p.Value]), [['app/web/', '', ''], ['app/web/port', 'port', '8080'], ['app/web2/x', '2/x', 'y']]);
    assert.equal(pairs[1]?.Session, 's1');
    assert.deepEqual(toCatalogServices({ b: ['y', 'x'], a: null }), [{ Name: 'a', Tags: [] }, { Name: 'b', Tags: ['x', 'y'] }]);
  });
});

describe('env and file', () => {
  const env: RenderEnv = { env: { SET_VAR: '400', EMPTY_VAR: '' }, readFile: (p) => (p === '/etc/x' ? 'content' : undefined) };
  table([
    ['{{ env "SET_VAR" }}|{{ env "UNSET_VAR" }}', '400|'],
    ['{{ envOrDefault "SET_VAR" "100" }} {{ envOrDefault "EMPTY_VAR" "200" }} {{ envOrDefault "UNSET_VAR" "300" }}', '400  300'],
    ['{{ mustEnv "SET_VAR" }}', '400'],
    ['{{ file "/etc/x" }}', 'content'],
  ], undefined, env);

  it('mustEnv fails on an empty variable', () => {
    assert.match(execError('{{ mustEnv "EMPTY_VAR" }}', fakeData({}), env), /error calling mustEnv: required environment variable EMPTY_VAR is empty$/);
  });

  it('file is a dependency that stays missing until the reader has the contents', () => {
    const r = compileTemplate('{{ file "/etc/x" }}{{ file " /etc/y " }}', { name: 't' }).render(fakeData({}), env);
    assert.equal(r.output, 'content');
    assert.deepEqual(r.used.map((d) => d.id), ['file(/etc/x)', 'file(/etc/y)']);
    assert.deepEqual(r.missing.map((d) => d.id), ['file(/etc/y)']);
  });
});

describe('grouping and membership (consul-template test cases)', () => {
  it('byTag groups in sorted tag order', () => {
    assert.equal(
      render('{{ range $tag, $services := service "webapp" | byTag }}{{ $tag }}:{{ range $services }}{{ .Address }}{{ end }}{{ end }}', webapp(['prod', 'staging'], ['staging'])),
      'prod:1.2.3.4staging:1.2.3.45.6.7.8',
    );
    assert.equal(render('{{ range $t, $s := services | byTag }}{{ $t }}={{ len $s }} {{ end }}', fakeData({ catalog: { a: ['x', 'y'], b: ['x'] } })), 'x=2 y=1 ');
  });
  const membership: readonly (readonly [string, readonly string[], readonly string[], string])[] = [
    ['{{ if .Tags | contains "prod" }}{{ .Address }}{{ end }}', ['prod', 'staging'], ['staging'], '1.2.3.4'],
    ['{{ if "prod" | in .Tags }}{{ .Address }}{{ end }}', ['prod', 'staging'], ['staging'], '1.2.3.4'],
    ['{{ if .Tags | containsAll (parseJSON "[\\"prod\\",\\"us-realm\\"]") }}{{ .Address }}{{ end }}', ['prod', 'us-realm'], ['prod', 'ca-realm'], '1.2.3.4'],
    ['{{ if .Tags | containsAll (parseJSON "[]") }}{{ .Address }}{{ end }}', ['prod', 'us-realm'], ['prod', 'ca-realm'], '1.2.3.45.6.7.8'],
    ['{{ if .Tags | containsAny (parseJSON "[\\"v2\\",\\"v3\\"]") }}{{ .Address }}{{ end }}', ['prod', 'v1'], ['prod', 'v2'], '5.6.7.8'],
    ['{{ if .Tags | containsAny (parseJSON "[]") }}{{ .Address }}{{ end }}', ['prod', 'v1'], ['prod', 'v2'], ''],
    ['{{ if .Tags | containsNone (parseJSON "[\\"devel\\",\\"staging\\"]") }}{{ .Address }}{{ end }}', ['prod', 'v1'], ['devel', 'v2'], '1.2.3.4'],
    ['{{ if .Tags | containsNone (parseJSON "[]") }}{{ .Address }}{{ end }}', ['staging', 'v1'], ['devel', 'v2'], '1.2.3.45.6.7.8'],
    ['{{ if .Tags | containsNotAll (parseJSON "[\\"es-v1\\",\\"es-v2\\"]") }}{{ .Address }}{{ end }}', ['prod', 'es-v1'], ['prod', 'hybrid', 'es-v1', 'es-v2'], '1.2.3.4'],
    ['{{ if .Tags | containsNotAll (parseJSON "[]") }}{{ .Address }}{{ end }}', ['prod', 'es-v1'], ['prod'], ''],
  ];
  for (const [body, a, b, want] of membership) {
    it(body, () => assert.equal(render(`{{ range service "webapp" }}${body}{{ end }}`, webapp(a, b)), want));
  }

  table([
    ['{{ "foobar" | contains "oba" }} {{ "x" | in "xyz" }} {{ 2 | in (parseJSON "[1,2]") }} {{ 2 | in (split "," "2") }}', 'true true false false'],
    ['{{ 2.0 | in (parseJSON "[1,2]") }}', 'true'],
  ]);

  it('containsAll wants []interface{} as consul-template does ([]string from split is rejected)', () => {
    assert.match(execError('{{ split "," "a" | containsAll (split "," "a") }}'), /wrong type for value; expected \[\]interface \{\}; got \[\]string$/);
  });
});

describe('string helpers', () => {
  table([
    ['{{ "a,b,c" | split "," | join ";" }}', 'a;b;c'],
    ['{{ "a,b,c" | split "," }} {{ "  a b  " | split " " }} {{ len ("" | split ",") }} {{ "ab" | split "" }}', '[a b c] [a b] 0 [a b]'],
    ['{{ "a:x,b:y,c:z" | splitToMap "," ":" }}', 'map[a:x b:y c:z]'],
    ['{{ "hello my hello" | replaceAll "hello" "bye" }} {{ "abc" | replaceAll "" "-" }}', 'bye my bye -a-b-c-'],
    ['{{ "hello my hello" | regexReplaceAll "hello" "bye" }} {{ "foo" | regexReplaceAll "\\\\w" "x" }}', 'bye my bye xxx'],
    ['{{ "web-01.prod" | regexReplaceAll "^([a-z]+)-(\\\\d+)\\\\..*$" "${2}_$1" }}', '01_web'],
    // $1x names a group called "1x", which does not exist: Go expands it to nothing.
    ['{{ "foo" | regexReplaceAll "(o)" "$1x" }} {{ "foo" | regexReplaceAll "(o)" "${1}x" }} {{ "a" | regexReplaceAll "a" "$$" }}', 'f foxox $'],
    // An empty match right after a match is not replaced in Go.
    ['{{ "baaac" | regexReplaceAll "a*" "-" }}', '-b-c-'],
    ['{{ "foo" | regexMatch "[a-z]+" }} {{ "foo1" | regexMatch "^[a-z]+$" }} {{ "A1" | regexMatch "(?i)^[a-z][[:digit:]]$" }}', 'true false true'],
    ['{{ "HI" | toLower }} {{ "hi ß" | toUpper }} {{ "this is a sentence" | toTitle }}', 'hi HI ß This Is A Sentence'],
    ['{{ "this is a sentence\\u2026and another sentence\\u2026with a \\xf0\\x9f\\x9a\\x80rocket" | toTitle }}', 'This Is A Sentence\u2026And Another Sentence\u2026With A \u{1F680}Rocket'],
    ['{{ "\\t hi\\n " | trimSpace }}|{{ "!!hello world!!" | trim "!!" }}|{{ "hello world!!" | trimPrefix "hello " }}|{{ "hello world!!" | trimSuffix " world!!" }}', 'hi|hello world|world!!|hello'],
    ['{{ "hello\\nhello\\r\\nHELLO\\r\\n\\nhello" | indent 4 }}', '    hello\n    hello\r\n    HELLO\r\n\n    hello'],
    ['{{ "a\\nb" | indent 0 }}', 'a\nb'],
  ]);

  it('indent refuses a negative width', () => {
    assert.match(execError('{{ "a" | indent -4 }}'), /error calling indent: indent value must be a positive integer$/);
  });

  it('matches in linear time: a catastrophic pattern against a hostile tag comes back at once (a backtracking engine took weeks)', () => {
    const tag = `${'a'.repeat(60)}!`;
    assert.equal(render(`{{ "${tag}" | regexMatch "^(a+)+$" }} {{ "${tag}" | regexReplaceAll "^(a+)+$" "x" }}`), `false ${tag}`);
  });

  it('regexReplaceAll reports RE2 syntax errors', () => {
    assert.match(execError('{{ "a" | regexReplaceAll "(" "x" }}'), /error calling regexReplaceAll: error parsing regexp: missing closing \)/);
  });
});

describe('parsing, encoding and time', () => {
  table([
    ['{{ "true" | parseBool }} {{ "" | parseBool }} {{ "T" | parseBool }}', 'true false true'],
    ['{{ "1.2" | parseFloat }} {{ "1.0" | parseFloat | printf "%.1f" }} {{ "" | parseFloat }} {{ "1e3" | parseFloat }}', '1.2 1.0 0 1000'],
    ['{{ "-1" | parseInt }} {{ "" | parseInt }} {{ "+42" | parseInt | add 1 }}', '-1 0 43'],
    ['{{ "1" | parseUint }} {{ "" | parseUint }}', '1 0'],
    ['{{ "{\\"foo\\": \\"bar\\"}" | parseJSON }}', 'map[foo:bar]'],
    ['{{ "a,b,c" | split "," | toJSON }}', '["a","b","c"]'],
    ['{{ "a?b&c,x<y>z" | split "," | toJSON }}', '["a?b\\u0026c","x\\u003cy\\u003ez"]'],
    ['{{ "a?b&c,x?y&z" | split "," | toUnescapedJSON }}', '["a?b&c","x?y&z"]'],
    ['{{ parseJSON "{\\"b\\":[1,2.5,1e21,1e-7,null,true],\\"a\\":{}}" | toJSON }}', '{"a":{},"b":[1,2.5,1e+21,1e-7,null,true]}'],
    ['{{ parseJSON "{\\"b\\":[1,{\\"c\\":\\"\\\\n\\"}],\\"a\\":[]}" | toJSONPretty }}', '{\n  "a": [],\n  "b": [\n    1,\n    {\n      "c": "\\n"\n    }\n  ]\n}'],
    ['{{ base64Encode "hello" }} {{ base64Decode "aGVsbG8=" }} {{ base64URLEncode "testing123" }} {{ base64URLDecode "dGVzdGluZzEyMw==" }}', 'aGVsbG8= hello dGVzdGluZzEyMw== testing123'],
    ['{{ sha256Hex "hello" }}', '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'],
    ['{{ md5sum "hello" }} {{ hmacSHA256Hex "somemessage" "somekey" }}', '5d41402abc4b2a76b9719d911017c592 6116e95f2827172aa6ef8b22b883f6a77e966aefc129c6b8228ebd0aac74e98d'],
  ]);

  it('toJSON of service entries: struct fields in declaration order', () => {
    const data = fakeData({ health: { web: [entry({ node: 'n1', id: 'w', service: 'web', address: '10.0.0.1', port: 80, tags: ['<b>'], meta: {} })] } });
    const json = render('{{ (index (service "web") 0).Weights | toJSON }} {{ (index (service "web") 0).Tags | toJSON }} {{ (index (service "web") 0).ServiceMeta | toJSON }}', data);
    assert.equal(json, '{"Passing":1,"Warning":1} ["\\u003cb\\u003e"] {}');
    const full = JSON.parse(render('{{ index (service "web") 0 | toJSON }}', data)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(full), ['Node', 'NodeID', 'NodeAddress', 'NodeTaggedAddresses', 'NodeMeta', 'ServiceMeta', 'Address', 'ServiceTaggedAddresses', 'ID', 'Name', 'Tags', 'Checks', 'Status', 'Port', 'Weights']);
    assert.equal(full.ServiceTaggedAddresses, null);
  });

  it('reports bad input like consul-template', () => {
    assert.match(execError('{{ "x" | parseInt }}'), /error calling parseInt: parseInt: strconv\.ParseInt: parsing "x": invalid syntax$/);
    assert.match(execError('{{ "99999999999999999999" | parseInt }}'), /parsing "99999999999999999999": value out of range$/);
    assert.match(execError('{{ "-1" | parseUint }}'), /error calling parseUint: parseUint: strconv\.ParseUint: parsing "-1": invalid syntax$/);
    assert.match(execError('{{ "yes" | parseBool }}'), /parseBool: strconv\.ParseBool: parsing "yes": invalid syntax$/);
    assert.match(execError('{{ "1.2.3" | parseFloat }}'), /parseFloat: strconv\.ParseFloat: parsing "1\.2\.3": invalid syntax$/);
    assert.match(execError('{{ base64Decode "aGVsxxbG8=" }}'), /error calling base64Decode: base64Decode: illegal base64 data at input byte \d+$/);
    assert.match(execError('{{ base64URLDecode "aGVsxxbG8=" }}'), /error calling base64URLDecode: base64URLDecode: illegal base64 data at input byte \d+$/);
    assert.match(execError('{{ 0.0 | divide 0.0 | toJSON }}'), /error calling toJSON: toJSON: json: unsupported value: NaN$/);
  });

  const clock: RenderEnv = { now: () => new Date(Date.UTC(2024, 4, 1, 12, 3, 9, 45)) };
  table([
    ['{{ timestamp }}', '2024-05-01T12:03:09Z'],
    ['{{ timestamp "unix" }}', '1714564989'],
    ['{{ timestamp "2006-01-02" }}', '2024-05-01'],
    ['{{ timestamp "Mon Jan _2 15:04:05 MST 2006" }}', 'Wed May  1 12:03:09 UTC 2024'],
    ['{{ timestamp "02/01/06 3:4:5PM .000 .999 -07:00 Z0700 January Monday 002" }}', '01/05/24 12:3:9PM .045 .045 +00:00 Z May Wednesday 122'],
  ], undefined, clock);

  it('timestamp takes at most one argument', () => {
    assert.match(execError('{{ timestamp "a" "b" }}'), /timestamp: wrong number of arguments, expected 0 or 1, but got 2$/);
  });
});

describe('arithmetic and loop', () => {
  table([
    ['{{ 2 | add 2 }} {{ 2 | subtract 2 }} {{ 2 | multiply 2 }} {{ 2 | divide 2 }} {{ 3 | modulo 2 }} {{ 3 | minimum 2 }} {{ 3 | maximum 2 }}', '4 0 4 1 1 2 3'],
    // The piped (last) argument is the left operand.
    ['{{ 10 | subtract 2 }} {{ subtract 2 10 }} {{ 10 | divide 2 }} {{ 7 | divide 2 }} {{ -7 | divide 2 }} {{ -7 | modulo 2 }}', '8 8 5 3 -3 -1'],
    ['{{ 7.0 | divide 2 }} {{ 1 | add 0.5 }} {{ 1.5 | multiply 2 }} {{ 2 | minimum 2.5 }}', '3.5 1.5 3 2'],
    ['{{ range loop 3 }}1{{ end }} {{ range $i := loop 3 }}{{ $i }}{{ end }} {{ range loop 1 3 }}1{{ end }} {{ range loop 1 "3" }}1{{ end }}', '111 012 11 11'],
    ['{{ $i := print "3" | parseInt }}{{ range loop 1 $i }}1{{ end }} {{ $n := 3 }}{{ range $i := loop $n }}{{ $i }}{{ end }}', '11 012'],
    ['{{ range loop 0 }}x{{ else }}none{{ end }}', 'none'],
  ]);

  it('reports Go\'s errors for bad operands', () => {
    assert.match(execError('{{ 1 | divide 0 }}'), /error calling divide: runtime error: integer divide by zero$/);
    assert.match(execError('{{ "a" | add 1 }}'), /error calling add: add: unknown type for "a" \(string\)$/);
    assert.match(execError('{{ 1.5 | modulo 2 }}'), /error calling modulo: modulo: unknown type for %!q\(float64=1\.5\) \(float64\)$/);
    assert.match(execError('{{ loop 1 2 3 }}'), /loop: wrong number of arguments, expected 1 or 2, but got 3$/);
  });
});

describe('integers beyond 2^53: exact, with Go\'s types and wrap-around', () => {
  // consul-template's parseInt/parseUint return int64/uint64 and its math helpers (template/funcs.go) compute in
  // int64, or uint64 when both operands are unsigned; Go's integers wrap around on overflow.
  table([
    // Through a double, the largest uint64 printed as 18446744073709551616.
    ['{{ parseUint "18446744073709551615" }} {{ parseInt "-9223372036854775808" }} {{ parseInt "9007199254740993" }}', '18446744073709551615 -9223372036854775808 9007199254740993'],
    ['{{ printf "%T %T %T %T" (parseInt "1") (parseUint "1") (add 1 2) (parseUint "2" | add (parseUint "1")) }}', 'int64 uint64 int64 uint64'],
    ['{{ printf "%d %x %#v %v" (parseUint "18446744073709551615") (parseUint "18446744073709551615") (parseUint "255") (parseInt "-9007199254740993") }}', '18446744073709551615 ffffffffffffffff 0xff -9007199254740993'],
    ['{{ parseInt "9007199254740993" | add 2 }} {{ parseInt "9223372036854775807" | add 1 }} {{ parseUint "18446744073709551615" | add (parseUint "1") }}', '9007199254740995 -9223372036854775808 0'],
    ['{{ parseInt "3037000500" | multiply (parseInt "3037000500") }} {{ parseInt "-9223372036854775807" | modulo 10 }} {{ parseInt "9007199254740993" | divide 1 }}', '-9223372036709301616 -7 9007199254740993'],
    ['{{ parseUint "18446744073709551615" | subtract (parseUint "1") }} {{ parseUint "18446744073709551615" | add 1 }}', '18446744073709551614 0'],
    ['{{ minimum (parseUint "18446744073709551615") (parseUint "18446744073709551614") }} {{ maximum (parseInt "9007199254740993") (parseInt "9007199254740992") }}', '18446744073709551614 9007199254740993'],
    ['{{ eq (parseInt "9007199254740993") (parseInt "9007199254740992") }} {{ lt (parseInt "9007199254740992") (parseInt "9007199254740993") }} {{ eq (parseUint "5") 5 }} {{ lt -1 (parseUint "0") }}', 'false true true true'],
    ['{{ 9007199254740993 }} {{ -9223372036854775808 }} {{ printf "%T" 9007199254740993 }}', '9007199254740993 -9223372036854775808 int'],
    ['{{ parseUint "18446744073709551615" | toJSON }} {{ parseInt "-9007199254740993" | toJSON }}', '18446744073709551615 -9007199254740993'],
    ['{{ range loop (parseInt "9007199254740993") (parseInt "9007199254740995") }}{{ . }} {{ printf "%T" . }} {{ end }}', '9007199254740993 int64 9007199254740994 int64 '],
    ['{{ index (split "," "a,b,c") (parseInt "1") }} {{ index (split "," "a,b,c") (parseUint "2") }} {{ if parseUint "0" }}t{{ else }}f{{ end }}', 'b c f'],
    ['{{ range $i := parseInt "3" }}{{ $i }}{{ printf "%T" $i }} {{ end }}', '0int64 1int64 2int64 '],
    ['{{ contains (parseInt "9007199254740993") (split "," "x") }} {{ printf "%[2]s-%[1]s" "a" "b" }}', 'false b-a'],
  ]);

  it('an int64 is not an int parameter, as in Go', () => {
    assert.match(execError('{{ "x" | indent (parseInt "2") }}'), /wrong type for value; expected int; got int64$/);
  });

  it('KV flags past 2^53 arrive exactly (parseKvJson keeps the digits JSON.parse would round)', () => {
    const text = '[{"Key":"a\\"Flags\\":9","Flags":18446744073709551615,"Value":null,"CreateIndex":1,"ModifyIndex":2,"LockIndex":0}]';
    const pairs = toKeyPairs(parseKvJson(text) as KvEntryJson[], '');
    const data: TemplateData = { ...fakeData({}), ls: () => pairs };
    assert.equal(render('{{ range ls "p" }}{{ .Key }} {{ .Flags }} {{ printf "%T" .ModifyIndex }}{{ end }}', data), 'a"Flags":9 18446744073709551615 uint64');
  });
});

describe('nodes and node', () => {
  const data = () => fakeData({
    nodes: [{ ID: 'i1', Node: 'a', Address: '10.0.0.1', Datacenter: 'dc1', TaggedAddresses: null, Meta: { rack: 'r1' } }],
    node: {
      Node: { ID: 'i1', Node: 'a', Address: '10.0.0.1', Datacenter: 'dc1', TaggedAddresses: null, Meta: null },
      Services: [{ ID: 'w1', Service: 'web', Tags: ['x'], Meta: null, Port: 80, Address: '', EnableTagOverride: false }],
    },
  });
  table([
    ['{{ range nodes }}{{ .Node }}@{{ .Address }} {{ .Meta.rack }}{{ end }}', 'a@10.0.0.1 r1'],
    ['{{ with node }}{{ .Node.Node }}{{ range .Services }} {{ .Service }}:{{ .Port }}{{ end }}{{ end }}', 'a web:80'],
  ], data);

  it('records catalog.node and catalog.nodes ids', () => {
    const r = compileTemplate('{{ node }}{{ node "b@dc2" }}{{ nodes "@dc2~a" }}', { name: 't' }).render(fakeData({}));
    assert.deepEqual(r.used.map((d) => d.id), ['catalog.node', 'catalog.node(b@dc2)', 'catalog.nodes(@dc2~a)']);
  });
});

describe('scratch and methods', () => {
  const data = () => webapp(['a', 'b'], ['c']);
  table([
    // Set answers "" (it is written into the output), Get the value, Key whether it is there.
    ['{{ scratch.Key "a" }} {{ scratch.Set "a" "1" }}{{ scratch.Get "a" }} {{ scratch.Key "a" }}', 'false 1 true'],
    ['{{ scratch.Set "a" 1 }}{{ scratch.SetX "a" 2 }}{{ scratch.SetX "b" 3 }}{{ scratch.Get "a" }}{{ scratch.Get "b" }}', '13'],
    ['{{ scratch.Get "nothing" }}', '<no value>'],
    // consul-template's grouping idiom: a map by key, read back sorted by key.
    ['{{ range service "webapp" }}{{ scratch.MapSet "by" .Node .Address }}{{ end }}{{ range scratch.MapValues "by" }}{{ . }} {{ end }}', '1.2.3.4 5.6.7.8 '],
    ['{{ scratch.MapSetX "m" "k" 1 }}{{ scratch.MapSetX "m" "k" 2 }}{{ scratch.MapSet "m" "a" 0 }}{{ scratch.MapValues "m" }}', '[0 1]'],
    // A map read with Get is the live one (Go maps are references).
    ['{{ scratch.MapSet "m" "b" 2 }}{{ $m := scratch.Get "m" }}{{ scratch.MapSet "m" "a" 1 }}{{ $m }} {{ printf "%T" $m }}', 'map[a:1 b:2] map[string]interface {}'],
    ['{{ scratch.MapValues "none" }} {{ len (scratch.MapValues "none") }} {{ printf "%T" (scratch.MapValues "none") }}', '[] 0 []interface {}'],
    // Through a variable, with the dot as an argument, and as the last command of a pipeline.
    ['{{ $s := scratch }}{{ range service "webapp" }}{{ $s.Set .Node .Port }}{{ end }}{{ $s.Get "node2" }}', '80'],
    ['{{ "v" | scratch.Set "k" }}{{ scratch.Get "k" }}', 'v'],
    ['{{ printf "%T" scratch }}', '*template.Scratch'],
    // ServiceTags.Contains (deprecated in consul-template, still in templates).
    ['{{ range service "webapp" }}{{ .Tags.Contains "a" }} {{ end }}', 'true false '],
    ['{{ range service "webapp" }}{{ if .Tags.Contains "c" }}{{ .Node }}{{ end }}{{ end }}', 'node2'],
  ], data);

  it('is new for every render of a compiled template', () => {
    const t = compileTemplate('{{ scratch.Key "seen" }}{{ scratch.Set "seen" true }}', { name: 't' });
    assert.equal(t.render(data()).output, 'false');
    assert.equal(t.render(data()).output, 'false');
  });

  it('fails as Go fails', () => {
    assert.match(execError('{{ scratch.Set "x" 1 }}{{ scratch.MapSet "x" "k" 2 }}'), /executing "t" at <scratch\.MapSet>: error calling MapSet: "x" is not a map$/);
    assert.match(execError('{{ scratch.Set "a" }}'), /wrong number of args for Set: want 2 got 1$/);
    assert.match(execError('{{ scratch.Set 1 2 }}'), /expected string; found 1$/);
    assert.match(execError('{{ scratch.Nope }}'), /can't evaluate field Nope in type \*template\.Scratch$/);
    assert.match(execError('{{ range service "webapp" }}{{ .Tags.Nope "a" }}{{ end }}', data()), /can't evaluate field Nope in type dependency\.ServiceTags$/);
  });
});
