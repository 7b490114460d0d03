// Go text/template semantics of the engine: exact bytes, printing, truth, scoping, builtins, parse and exec errors.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SwitchyardError } from '../../src/core/errors.js';
import type { RenderEnv, TemplateData } from '../../src/template/index.js';
import { compileTemplate, TemplateError } from '../../src/template/index.js';
import { check, entry, fakeData } from '../fixtures/templates/fake-data.js';
import { runCommand } from '../../src/template/runner.js';

/** The catalog of compat-spec 6.7's worked example: `api` without healthy instances, `web` with two. */
function exampleData(): TemplateData {
  return fakeData({
    catalog: { web: ['http'], api: [] },
    health: {
      web: [
        entry({ node: 'n2', id: 'web2', service: 'web', address: '10.0.0.2', port: 8080, tags: ['v2', 'http'], meta: { zone: 'b' } }),
        entry({ node: 'n1', id: 'web1', service: 'web', address: '10.0.0.1', port: 80, tags: ['v1', 'http'], meta: { zone: 'a' } }),
      ],
      api: [entry({
        node: 'n3', id: 'api1', service: 'api', address: '127.0.0.1', port: 9,
        checks: [check('n3', 'passing'), check('n3', 'critical', 'api1')],
      })],
    },
  });
}

function render(src: string, data: TemplateData = exampleData(), env: RenderEnv = {}): string {
  return compileTemplate(src, { name: 't' }).render(data, env).output;
}

function renderError(src: string, opts: { errorOnMissingKey?: boolean } = {}): TemplateError {
  try {
    compileTemplate(src, { name: 't', ...opts }).render(exampleData());
  } catch (err) {
    assert.ok(err instanceof TemplateError, `expected a TemplateError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(src)} to fail`);
}

type Case = readonly [name: string, template: string, want: string];

function table(cases: readonly Case[]): void {
  for (const [name, src, want] of cases) {
    it(`${name}: ${src.length > 70 ? `${src.slice(0, 67)}...` : src}`, () => assert.equal(render(src), want));
  }
}

describe('compat-spec 6.7 worked examples', () => {
  it('renders the worked example byte for byte', () => {
    const src = '{{range services}} {{$n := .Name}}\nbackend {{$n}} {\n  {{range service $n}}server {{.Address}}:{{.Port}};\n  {{else}}server 127.0.0.1:1 down;{{end}}\n} {{end}}\n';
    assert.equal(render(src), ' \nbackend api {\n  server 127.0.0.1:1 down;\n}  \nbackend web {\n  server 10.0.0.1:80;\n  server 10.0.0.2:8080;\n  \n} \n');
  });

  it('renders the trimmed variant cleanly', () => {
    const src = 'upstream web {\n{{- range service "web"}}\n  server {{.Address}}:{{.Port}};\n{{- end}}\n}\n';
    assert.equal(render(src), 'upstream web {\n  server 10.0.0.1:80;\n  server 10.0.0.2:8080;\n}\n');
  });

  it('needs several passes for nested dependencies, like consul-template', () => {
    const src = '{{range services}}{{range service .Name}}{{.Address}} {{end}}{{end}}';
    const t = compileTemplate(src, { name: 't' });
    const first = t.render(fakeData({}));
    assert.deepEqual(first.missing.map((d) => d.id), ['catalog.services']);
    const second = t.render(fakeData({ catalog: { web: [] } }));
    assert.deepEqual(second.missing.map((d) => d.id), ['health.service(web|passing)']);
    const third = t.render(exampleData());
    assert.deepEqual(third.missing, []);
    assert.equal(third.output, '10.0.0.1 10.0.0.2 ');
    assert.deepEqual(third.used.map((d) => d.id), ['catalog.services', 'health.service(api|passing)', 'health.service(web|passing)']);
  });
});

describe('text and trim markers', () => {
  table([
    ['text is copied byte for byte', 'a\r\n\t b  \n', 'a\r\n\t b  \n'],
    ['no newline is added at the end', 'x{{"y"}}', 'xy'],
    ['both trims eat spaces, tabs and newlines', 'a  {{- "b" -}}  \n c', 'abc'],
    ['left trim only', 'a \n\t{{- "b" }} c', 'ab c'],
    ['right trim only', 'a {{ "b" -}} \n\n c', 'a bc'],
    ['a dash without space is a number', '{{-3}}', '-3'],
    ['trim marker may be followed by a newline', 'a {{-\n"b"\n-}} c', 'abc'],
    ['comments vanish', 'a{{/* note */}}b', 'ab'],
    ['trimmed comments', 'a \n{{- /* note */ -}}\n b', 'ab'],
    ['range body repeats its newlines', '{{range split "," "a,b"}}\n{{.}}\n{{end}}', '\na\n\nb\n'],
    ['actions may span lines', '{{ print\n  "a"\n  "b" }}', 'ab'],
  ]);

  it('honours custom delimiters', () => {
    const t = compileTemplate('[[ range service "web" ]][[ .Port ]] [[ end ]]{{ not an action }}', { name: 't', leftDelim: '[[', rightDelim: ']]' });
    assert.equal(t.render(exampleData()).output, '80 8080 {{ not an action }}');
  });
});

describe('printing', () => {
  table([
    ['strings raw, no HTML escaping', '{{ "<a href=\'x\'>&amp;</a>" }}', "<a href='x'>&amp;</a>"],
    ['ints', '{{ 42 }} {{ -7 }} {{ 0x1F }} {{ 017 }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ \'a\' }}', '42 -7 31 15 15 5 1000 97'],
    ['floats, shortest like %v', '{{ 1.5 }} {{ 3.0 }} {{ 1e21 }} {{ 1e6 }} {{ 123456.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.25e-7 }}', '1.5 3 1e+21 1e+06 123456 0.0001 1e-05 1.25e-07'],
    ['float arithmetic keeps its binary value', '{{ 0.3 | add 0.1 }} {{ 1.0 | divide 3 }}', '0.4 0.3333333333333333'],
    ['bools', '{{ true }} {{ false }}', 'true false'],
    ['slices', '{{ split "," "a,b,c" }} {{ split "," "" }}', '[a b c] []'],
    ['maps, sorted by key', '{{ parseJSON "{\\"b\\":2,\\"a\\":1,\\"c\\":[1,\\"x\\"]}" }}', 'map[a:1 b:2 c:[1 x]]'],
    ['nil prints <no value>', '{{ . }} {{ $ }} {{ .Missing }} {{ .A.B.C }}', '<no value> <no value> <no value> <no value>'],
    ['a struct prints its fields in order', '{{ range service "web" }}{{ .Weights }}{{ end }}', '{1 1}{1 1}'],
    ['a missing key of map[string]string is ""', '{{ range service "web" }}[{{ .NodeMeta.nope }}]{{ end }}', '[][]'],
    ['a missing key of map[string]interface{} is <no value>', '{{ (parseJSON "{}").nope }}', '<no value>'],
    ['a missing map key inside a slice map is an empty slice', '{{ index (service "web" | byTag) "nope" }}', '[]'],
  ]);
});

describe('truth', () => {
  table([
    ['false values', '{{if false}}t{{end}}{{if 0}}t{{end}}{{if 0.0}}t{{end}}{{if ""}}t{{end}}{{if .Nil}}t{{end}}{{if split "," ""}}t{{end}}{{if parseJSON "{}"}}t{{end}}', ''],
    ['true values', '{{if true}}1{{end}}{{if -1}}2{{end}}{{if "0"}}3{{end}}{{if split "," "a"}}4{{end}}{{if parseJSON "{\\"a\\":0}"}}5{{end}}{{range service "web"}}{{if .}}6{{end}}{{end}}', '1234566'],
    ['if / else if / else', '{{if eq 1 2}}a{{else if eq 1 1}}b{{else}}c{{end}}', 'b'],
    ['else if chains end with one {{end}}', '{{if false}}a{{else if false}}b{{else if true}}c{{end}}', 'c'],
    ['with rebinds dot', '{{with "z"}}{{.}}{{end}}{{with ""}}x{{else}}y{{end}}', 'zy'],
    ['else with', '{{with ""}}a{{else with "q"}}{{.}}{{end}}', 'q'],
  ]);
});

describe('range', () => {
  table([
    ['over a slice with index and element', '{{range $i, $e := split "," "a,b"}}{{$i}}={{$e}};{{end}}', '0=a;1=b;'],
    ['single variable is the element', '{{range $e := split "," "a,b"}}{{$e}}{{end}}', 'ab'],
    ['over a map in sorted key order', '{{range $k, $v := parseJSON "{\\"b\\":2,\\"a\\":1,\\"c\\":3}"}}{{$k}}={{$v}} {{end}}', 'a=1 b=2 c=3 '],
    ['else on empty', '{{range split "," ""}}x{{else}}empty{{end}}', 'empty'],
    ['else on nil', '{{range .Nothing}}x{{else}}nil{{end}}', 'nil'],
    ['break and continue', '{{range $i, $e := split "," "a,b,c,d"}}{{if eq $i 1}}{{continue}}{{end}}{{if eq $i 3}}{{break}}{{end}}{{$e}}{{end}}', 'ac'],
    ['over a loop channel', '{{range loop 2 5}}{{.}}{{end}}', '234'],
    ['dot is the element', '{{range service "web"}}{{.Name}}@{{.Node}} {{end}}', 'web@n1 web@n2 '],
  ]);
});

describe('variables', () => {
  table([
    ['declared variables persist until {{end}}', '{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}', '21'],
    ['assignment changes the outer variable', '{{$x := "a"}}{{range split "," "b,c"}}{{$x = .}}{{end}}{{$x}}', 'c'],
    ['$ is the (nil) root inside range', '{{range split "," "a"}}{{$}}{{end}}', '<no value>'],
    ['with declares a variable', '{{with $x := "hi"}}{{.}}{{$x}}{{end}}', 'hihi'],
    ['fields on variables', '{{$s := index (service "web") 0}}{{$s.Name}} {{$s.Weights.Passing}}', 'web 1'],
    ['fields on parenthesised pipelines', '{{(index (service "web") 1).Address}}', '10.0.0.2'],
    ['declaring prints nothing', '{{$x := "hidden"}}', ''],
  ]);
});

describe('pipelines and builtins', () => {
  table([
    ['previous value is the last argument', '{{ "a,b" | split "," | join "-" }}', 'a-b'],
    ['and / or return the deciding operand', '{{or "" "d"}} {{or 0 ""}}|{{and 1 0}} {{and 1 2}} {{"x" | and 1}}', 'd |0 2 x'],
    ['or short-circuits', '{{or 1 (index "" 5)}}', '1'],
    ['not', '{{not 0}} {{not "x"}} {{not .Nil}}', 'true false true'],
    ['len counts bytes of strings', '{{len "héllo"}} {{len (split "," "a,b")}} {{len (parseJSON "{\\"a\\":1}")}}', '6 2 1'],
    ['index', '{{index (split "," "a,b,c") 1}} {{index "abc" 1}} {{index (parseJSON "{\\"a\\":{\\"b\\":\\"x\\"}}") "a" "b"}}', 'b 98 x'],
    ['slice', '{{slice "abcde" 1 3}} {{slice (split "," "a,b,c") 1}} {{slice "abc"}}', 'bc [b c] abc'],
    ['print spaces only between non-strings', '{{print 1 2}}|{{print "a" "b"}}|{{print "a" 1 2 "b"}}|{{print .Nil}}', '1 2|ab|a1 2b|<nil>'],
    ['println', '{{println 1 "a"}}', '1 a\n'],
    ['printf verbs', '{{printf "%5d|%-5s|%05.1f|%x|%X|%o|%b|%c|%q|%v|%t|%%" 42 "ab" 3.14159 255 255 8 5 65 "q\\"" (split "," "a,b") true}}', '   42|ab   |003.1|ff|FF|10|101|A|"q\\""|[a b]|true|%'],
    ['printf floats', '{{printf "%e %g %.3g %8.3f %+d %.2f %.0f %.0f %.1f" 1234.5678 1234.5678 1234.5678 3.14159 5 2.675 0.5 1.5 0.25}}', '1.234568e+03 1234.5678 1.23e+03    3.142 +5 2.67 0 2 0.2'],
    ['printf %v of floats and %T', '{{printf "%v %T %T %T %T" 1e6 1 1.5 "s" (split "," "a")}}', '1e+06 int float64 string []string'],
    ['printf error forms', '{{printf "%d|%s" "x"}} {{printf "a" 1}} {{printf "%z" 1}}', '%!d(string=x)|%!s(MISSING) a%!(EXTRA int=1) %!z(int=1)'],
    ['printf width from *', '{{printf "[%*d][%-*d]" 4 7 3 1}}', '[   7][1  ]'],
    ['printf %+v of a struct', '{{printf "%+v" (index (service "web") 0).Weights}}', '{Passing:1 Warning:1}'],
    ['eq with several operands', '{{eq 1 2 1}} {{eq "a" "b"}} {{eq .Nil "x"}} {{eq .Nil .Nil}}', 'true false false true'],
    ['records keep their identity within a render, so eq compares them as Go compares pointers',
      '{{eq (index (service "web") 0) (index (service "web") 0)}} {{eq (index (service "web") 0) (index (service "web") 1)}}', 'true false'],
    ['ne lt le gt ge', '{{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}} {{lt 1.5 2.5}}', 'true true true true false true'],
    ['html', '{{html "<a href=\\"x\\">&\'"}} {{html .Nil}}', '&lt;a href=&#34;x&#34;&gt;&amp;&#39; &lt;no value&gt;'],
    ['js', '{{js "a\'b\\"c<d>=&\\\\"}}', 'a\\\'b\\"c\\u003Cd\\u003E\\u003D\\u0026\\\\'],
    ['urlquery', '{{urlquery "a b&c=d/é"}}', 'a+b%26c%3Dd%2F%C3%A9'],
  ]);
});

describe('define, template, block, executeTemplate', () => {
  table([
    ['template with dot', '{{define "T"}}[{{.}}]{{end}}{{template "T" "x"}}', '[x]'],
    ['template without pipeline gets nil', '{{define "T"}}{{.}}{{end}}{{template "T"}}', '<no value>'],
    ['block defines and runs', '{{block "B" "y"}}<{{.}}>{{end}}', '<y>'],
    ['templates see no outer variables', '{{define "T"}}{{$}}{{end}}{{$x := 1}}{{template "T" 5}}', '5'],
    ['executeTemplate returns the text', '{{define "c"}}{{.}}!{{end}}{{executeTemplate "c" "hi" | toUpper}}', 'HI!'],
    ['dependencies inside definitions count', '{{define "w"}}{{range service .}}{{.Port}}{{end}}{{end}}{{template "w" "web"}}', '808080'],
  ]);
});

describe('parse errors: Go wording, file:line:column of the offending token (column from 1)', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['upstream {\n  {{range service "web"}}\n  server {{.Address}:{{.Port}};{{end}}\n}', 'template: t:3:20: unexpected "}" in operand'],
    ['{{range .}}x', 'template: t:1:13: unexpected EOF'],
    ['a\n  {{end}}', 'template: t:2:5: unexpected {{end}}'],
    ['{{else}}', 'template: t:1:3: unexpected {{else}}'],
    ['{{ foo 1 }}', 'template: t:1:4: function "foo" not defined'],
    ['{{ $x }}', 'template: t:1:4: undefined variable "$x"'],
    ['{{if true}}{{$x := 1}}{{end}}{{$x}}', 'template: t:1:32: undefined variable "$x"'],
    ['{{if}}{{end}}', 'template: t:1:5: missing value for if'],
    ['ok\n{{ .Foo', 'template: t:2:8: unclosed action'],
    ['{{ .Foo\n\n', 'template: t:3:1: unclosed action started at t:1'],
    ['{{ .Foo\n}', 'template: t:2:1: unexpected "}" in operand'],
    ['{{ "abc }}', 'template: t:1:4: unterminated quoted string'],
    ['{{ 3 | 4 }}', 'template: t:1:8: non executable command in pipeline stage 2'],
    ['{{ (1 }}', 'template: t:1:7: unclosed left paren'],
    ['{{break}}', 'template: t:1:3: {{break}} outside {{range}}'],
    ['{{ "x".Foo }}', 'template: t:1:7: unexpected . after term "\\"x\\""'],
    ['{{ writeToFile . }}', 'template: t:1:4: function "writeToFile" is not supported by switchyard\'s template engine'],
    ['{{ "\\q" }}', 'template: t:1:4: invalid syntax'],
    ['{{ 0x }}', 'template: t:1:4: illegal number syntax: "0x"'],
    ['{{define "a"}}1{{end}}{{define "a"}}2{{end}}', 'template: t:1:32: template: multiple definition of template "a"'],
  ];
  for (const [src, message] of cases) {
    it(JSON.stringify(src), () => {
      const err = assert.throws(() => compileTemplate(src, { name: 't' }), (e: unknown) => {
        assert.ok(e instanceof TemplateError);
        assert.ok(e instanceof SwitchyardError);
        assert.equal(e.code, 'SY_ERR_TEMPLATE');
        assert.equal(e.phase, 'parse');
        assert.equal(e.message, message);
        return true;
      });
      void err;
    });
  }

  it('uses the template name given at compile time', () => {
    assert.throws(() => compileTemplate('\n\n  {{ .Address }', { name: 'nginx.ctmpl' }), { message: 'template: nginx.ctmpl:3:15: unexpected "}" in operand' });
  });
});

describe('execution errors: Go wording with file:line:byte-offset and the failing node', () => {
  const cases: readonly (readonly [string, string])[] = [
    ['{{ range service "web" }}{{ .Foo }}{{ end }}', 'template: t:1:28: executing "t" at <.Foo>: can\'t evaluate field Foo in type *dependency.HealthService'],
    // Like Go, a field chain is positioned at its first trailing field and columns count bytes (é is two).
    ['{{ $x := 1 }}\né {{ $x.Foo }}', 'template: t:2:8: executing "t" at <$x.Foo>: can\'t evaluate field Foo in type int'],
    ['{{ index "abc" 5 }}', 'template: t:1:3: executing "t" at <index "abc" 5>: error calling index: index out of range: 5'],
    ['{{ index "abc" 3 }}', 'template: t:1:3: executing "t" at <index "abc" 3>: error calling index: reflect: string index out of range'],
    ['{{ service "web|bogus" }}', 'template: t:1:3: executing "t" at <service "web|bogus">: error calling service: health.service: invalid filter: "bogus" in "web|bogus"'],
    ['{{ join "," "x" }}', 'template: t:1:12: executing "t" at <"x">: can\'t handle "x" for arg of type []string'],
    // Go reports the last node it evaluated, here the argument of parseJSON, not the parenthesised pipeline.
    ['{{ join "," (parseJSON "[1]") }}', 'template: t:1:23: executing "t" at <"[1]">: wrong type for value; expected []string; got []interface {}'],
    ['{{ 1 2 }}', 'template: t:1:3: executing "t" at <1>: can\'t give argument to non-function 1'],
    ['{{ eq 1 1.0 }}', 'template: t:1:3: executing "t" at <eq 1 1.0>: error calling eq: incompatible types for comparison: int and float64'],
    ['{{ lt true false }}', 'template: t:1:3: executing "t" at <lt true false>: error calling lt: invalid type for comparison'],
    ['{{ and }}', 'template: t:1:3: executing "t" at <and>: wrong number of args for and: want at least 1 got 0'],
    ['{{ split "," }}', 'template: t:1:3: executing "t" at <split>: wrong number of args for split: want 2 got 1'],
    ['{{ template "nope" }}', 'template: t:1:12: executing "t" at <{{template "nope"}}>: template "nope" not defined'],
    ['{{ range "abc" }}{{ end }}', 'template: t:1:9: executing "t" at <"abc">: range can\'t iterate over abc'],
    ['{{ loop 3 }}', 'template: t:1:3: executing "t" at <{{loop 3}}>: can\'t print {{loop 3}} of type <-chan int64'],
    ['{{ len .Nil }}', 'template: t:1:3: executing "t" at <len .Nil>: error calling len: reflect: call of reflect.Value.Type on zero Value'],
    ['{{define "d"}}{{ .Foo }}{{end}}{{ template "d" 1 }}', 'template: t:1:17: executing "d" at <.Foo>: can\'t evaluate field Foo in type int'],
  ];
  for (const [src, message] of cases) {
    it(JSON.stringify(src), () => {
      const err = renderError(src);
      assert.equal(err.phase, 'exec');
      assert.equal(err.code, 'SY_ERR_TEMPLATE');
      assert.equal(err.message, message);
    });
  }

  it('missingkey=error (error_on_missing_key) turns absent keys into errors', () => {
    assert.equal(renderError('{{ .Data.Foo }}', { errorOnMissingKey: true }).message, 'template: t:1:8: executing "t" at <.Data.Foo>: nil data; no entry for key "Data"');
    assert.equal(
      renderError('{{ (parseJSON "{}").nope }}', { errorOnMissingKey: true }).message,
      'template: t:1:14: executing "t" at <"{}">: map has no entry for key "nope"',
    );
    assert.equal(render('{{ .Data.Foo }}'), '<no value>');
  });

  it('loop is lazy, as a Go channel is: a hundred million iterations that stop early cost nothing', () => {
    // Before: loop built every value first, and `loop 100000000` exhausted the heap (the process aborted).
    assert.equal(render('{{ range $i := loop 100000000 }}{{ if eq $i 3 }}{{ break }}{{ end }}{{ $i }},{{ end }}'), '0,1,2,');
    assert.equal(render('{{ range loop 5 3 }}x{{ else }}empty{{ end }}'), 'empty');
  });

  it('refuses to render more than MAX_OUTPUT characters, with an error instead of an exhausted heap', () => {
    const mib = 'x'.repeat(1024 * 1024);
    const err = renderError(`{{ range loop 200 }}${mib}{{ end }}`);
    assert.match(err.message, /output is over 134217728 characters: refusing to render it/);
  });

  it('stops runaway recursion with an error instead of a stack overflow', () => {
    const err = renderError('{{define "r"}}{{template "r" .}}{{end}}{{template "r" 1}}');
    assert.match(err.message, /exceeded maximum template depth/);
  });
});

describe('compile once, render many', () => {
  it('renders the same compiled template against changing data', () => {
    const t = compileTemplate('{{range service "web"}}{{.Port}} {{end}}', { name: 't' });
    assert.equal(t.render(exampleData()).output, '80 8080 ');
    assert.equal(t.render(fakeData({ health: { web: [entry({ node: 'x', id: 'w', service: 'web', address: '1.1.1.1', port: 1 })] } })).output, '1 ');
    assert.equal(t.render(exampleData()).output, '80 8080 ');
  });
});

describe('the reload command (command_timeout)', () => {
  it('is killed at its timeout, and a timeout past one Node timer (1000h) lets it finish', async () => {
    const slow = await runCommand('sleep 5', 100);
    assert.equal(slow.timedOut, true);
    assert.ok(slow.ms < 3000, `killed after ${slow.ms} ms`);
    // A timer above 2^31 - 1 ms fires after 1 ms: this command used to be killed at once.
    const long = await runCommand('sleep 0.3; echo done', 1000 * 3_600_000);
    assert.deepEqual([long.ok, long.timedOut, long.output.trim()], [true, false, 'done']);
  });
});
