// Table-driven tests for the ?filter= (go-bexpr) compiler: matching against Consul response shapes, and error messages.
import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import { DEFAULT_FILTER_LIMITS, compileFilter } from '../../src/registry/server/filter.js';
import { SwitchyardError } from '../../src/core/errors.js';

/** One entry of GET /v1/health/service/web. */
const healthEntry = {
  Node: { ID: 'a1', Node: 'n1', Address: '10.0.0.1', Datacenter: 'dc1', TaggedAddresses: { lan: '10.0.0.1' }, Meta: { rack: 'r1' } },
  Service: {
    ID: 'web-12',
    Service: 'web',
    Tags: ['primary', 'v2'],
    Address: '',
    Meta: { 'k-1': 'v', k: 'v', env: 'prod', 'my key': 'spaced' },
    Port: 80,
    EnableTagOverride: false,
    Weights: { Passing: 1, Warning: 1 },
  },
  Checks: [
    { Node: 'n1', CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '', ServiceID: '', ServiceTags: [] },
    { Node: 'n1', CheckID: 'service:web-12', Name: 'web check', Status: 'critical', Notes: 'down', ServiceID: 'web-12', ServiceTags: ['primary'] },
  ],
};

/** One entry of GET /v1/catalog/service/web. */
const catalogEntry = {
  ID: 'a1',
  Node: 'n2',
  Address: '10.0.0.2',
  Datacenter: 'dc1',
  NodeMeta: { rack: 'r2' },
  ServiceID: 'web-3',
  ServiceName: 'web',
  ServiceTags: ['primary'],
  ServiceAddress: '',
  ServiceMeta: { env: 'staging' },
  ServicePort: 8080,
  ServiceEnableTagOverride: true,
  ServiceTaggedAddresses: {},
};

/** One value of GET /v1/agent/services. */
const agentService = {
  ID: 'db-1',
  Service: 'db',
  Tags: [],
  Meta: {},
  Port: 5432,
  Address: '10.0.0.3',
  Weights: { Passing: 1, Warning: 1 },
  Kind: undefined,
};

type Row = readonly [expression: string, item: unknown, expected: boolean];

const matching: Row[] = [
  // contains / in on arrays, strings and maps
  ['Service.Tags contains "primary"', healthEntry, true],
  ['Service.Tags contains "x"', healthEntry, false],
  ['Service.Tags not contains "x"', healthEntry, true],
  ['"primary" in Service.Tags', healthEntry, true],
  ['"x" in Service.Tags', healthEntry, false],
  ['"x" not in Service.Tags', healthEntry, true],
  ['primary in Service.Tags', healthEntry, true],
  ['v2 in Service.Tags', healthEntry, true],
  ['Service.ID contains "eb-1"', healthEntry, true],
  ['Service.Meta contains "env"', healthEntry, true],
  ['"rack" in Node.Meta', healthEntry, true],
  ['"nope" in Node.Meta', healthEntry, false],
  ['"x" in Tags', agentService, false],
  // == / != on strings, map keys and index form
  ['Service.Meta.k == "v"', healthEntry, true],
  ['Service.Meta.k != "v"', healthEntry, false],
  ['Service.Meta["k-1"] == "v"', healthEntry, true],
  ['Service.Meta.k-1 == "v"', healthEntry, true],
  ['Service.Meta[`my key`] == spaced', healthEntry, true],
  ['Service.Meta[ "k" ] == "v"', healthEntry, true],
  ['Node.Meta.rack == r1', healthEntry, true],
  ['Service.Meta.env == prod', healthEntry, true],
  ['Service.Meta.env==prod', healthEntry, true],
  ['Node.TaggedAddresses.lan == "10.0.0.1"', healthEntry, true],
  ['Node.Address == 10.0.0.1', healthEntry, true],
  ['Node.Node == "n1" or Node.Node == "n2"', healthEntry, true],
  ['Node == "n1" or Node == "n2"', catalogEntry, true],
  ['Node == "n1" or Node == "n3"', catalogEntry, false],
  ['ServiceTags contains "primary" and ServiceMeta.env != "dev"', catalogEntry, true],
  ['ServiceTags contains "primary" and ServiceMeta.env != "staging"', catalogEntry, false],
  // numbers and booleans compare by value / string form
  ['Service.Port == 80', healthEntry, true],
  ['Service.Port == "80"', healthEntry, true],
  ['Service.Port == 80.0', healthEntry, true],
  ['Service.Port != 80', healthEntry, false],
  ['Service.Port == 8080', healthEntry, false],
  ['ServicePort == 8080', catalogEntry, true],
  ['Service.Weights.Passing == 1', healthEntry, true],
  ['Service.EnableTagOverride == false', healthEntry, true],
  ['Service.EnableTagOverride == "false"', healthEntry, true],
  ['Service.EnableTagOverride == true', healthEntry, false],
  ['ServiceEnableTagOverride == true', catalogEntry, true],
  ['ServiceEnableTagOverride == T', catalogEntry, true],
  // not, parentheses, precedence (not > and > or)
  ['not (Service.Port == 80)', healthEntry, false],
  ['not(Service.Port == 8080)', healthEntry, true],
  ['not not Service.Port == 80', healthEntry, true],
  ['not Service.Port == 80 or Service.ID == "web-12"', healthEntry, true],
  ['not (Service.Port == 80 or Service.ID == "web-12")', healthEntry, false],
  ['Service.Port == 1 and Service.Port == 2 or Service.ID == "web-12"', healthEntry, true],
  ['Service.ID == "web-12" or Service.Port == 1 and Service.Port == 2', healthEntry, true],
  ['(Service.ID == "web-12" or Service.Port == 1) and Service.Port == 2', healthEntry, false],
  ['((Service.Port == 80))', healthEntry, true],
  ['\n\tService.Port == 80\n  and\r\n  Service.Meta.env == "prod" ', healthEntry, true],
  // crossing an array of objects: any element for positive forms, none for negated ones
  ['Checks.Status == "critical"', healthEntry, true],
  ['Checks.Status == "warning"', healthEntry, false],
  ['Checks.Status != "passing"', healthEntry, false],
  ['Checks.Status != "warning"', healthEntry, true],
  ['Checks.CheckID contains "web"', healthEntry, true],
  ['Checks.ServiceTags contains "primary"', healthEntry, true],
  ['Checks.Notes is empty', healthEntry, true],
  ['Checks.Notes matches "^do"', healthEntry, true],
  ['Checks.0.Status == "passing"', healthEntry, true],
  ['Checks.1.Status == "passing"', healthEntry, false],
  ['Checks.7.Status is empty', healthEntry, true],
  ['Checks.Status == "passing"', { Checks: [] }, false],
  ['Checks.Status != "passing"', { Checks: [] }, true],
  // matches (regular expressions)
  ['Service.ID matches "^web-[0-9]+$"', healthEntry, true],
  ['Service.ID matches `^web-\\d+$`', healthEntry, true],
  ['Service.ID matches "^web-\\\\d+$"', healthEntry, true],
  ['Service.ID not matches "^db-"', healthEntry, true],
  ['Service.ID matches "^WEB"', healthEntry, false],
  ['Service.ID matches "(?i)^WEB"', healthEntry, true],
  ['Service.ID matches "^(?P<name>[a-z]+)-"', healthEntry, true],
  ['Service.Port matches "^8"', healthEntry, true],
  ['Service.Tags matches "^v[0-9]$"', healthEntry, true],
  ['Service.Meta matches "."', healthEntry, false],
  // Go's RE2 syntax and flags, which JavaScript's RegExp lacks
  ['Service.ID matches "(?U)^w.+-"', healthEntry, true],
  ['Service.ID matches "^[[:alpha:]]+-[[:digit:]]+$"', healthEntry, true],
  ['Service.ID matches `^\\pL+-\\d+\\z`', healthEntry, true],
  ['Service.ID matches "(?i:WEB)-1"', healthEntry, true],
  // a pattern that backtracking engines take exponential time on (2^n paths): linear here
  ['Service.Tags matches "^(a+)+$"', { Service: { Tags: [`${'a'.repeat(4000)}!`] } }, false],
  ['Service.Tags matches "^(a|aa)+$"', { Service: { Tags: ['a'.repeat(4000)] } }, true],
  // is empty / is not empty
  ['Service.Meta is empty', healthEntry, false],
  ['Service.Meta is not empty', healthEntry, true],
  ['Meta is empty', agentService, true],
  ['Tags is empty', agentService, true],
  ['Service.Address is empty', healthEntry, true],
  ['ServiceTaggedAddresses is empty', catalogEntry, true],
  ['Kind is empty', agentService, true],
  ['Service.Port is empty', healthEntry, false],
  // missing paths are lenient
  ['Service.Nope == "x"', healthEntry, false],
  ['Service.Nope != "x"', healthEntry, true],
  ['Service.Nope is empty', healthEntry, true],
  ['Service.Nope contains "x"', healthEntry, false],
  ['"x" not in Service.Nope', healthEntry, true],
  ['Service.Nope matches "."', healthEntry, false],
  ['Service.Tags.Deep == "x"', healthEntry, false],
  ['Service.constructor is empty', healthEntry, true],
  ['Service.ID == "x"', null, false],
  ['Service.ID == "x"', 'a string item', false],
  // string literals: escapes, raw strings
  ['Service.Meta.q == "say \\"hi\\""', { Service: { Meta: { q: 'say "hi"' } } }, true],
  ['Service.Meta.q == `say "hi"`', { Service: { Meta: { q: 'say "hi"' } } }, true],
  ['Service.Meta.q == `a\\nb`', { Service: { Meta: { q: 'a\\nb' } } }, true],
  ['Service.Meta.q == "a\\tb\\\\c"', { Service: { Meta: { q: 'a\tb\\c' } } }, true],
  ['Service.Meta.q == "\\x41\\101\\u00e9\\U0001F600"', { Service: { Meta: { q: 'AAé😀' } } }, true],
  ['Service.Meta.q == ""', { Service: { Meta: { q: '' } } }, true],
  ['Service.Meta.q == "and"', { Service: { Meta: { q: 'and' } } }, true],
  ['Service.Meta.q == -1.5', { Service: { Meta: { q: '-1.5' } } }, true],
];

describe('compileFilter: matching', () => {
  for (const [expression, item, expected] of matching) {
    it(`${JSON.stringify(expression)} → ${expected}`, () => {
      assert.equal(compileFilter(expression)(item), expected);
    });
  }

  it('compiles once and evaluates many items (usable with Array.prototype.filter)', () => {
    const items = [healthEntry, { ...healthEntry, Service: { ...healthEntry.Service, Tags: ['canary'] } }];
    const pred = compileFilter('Service.Tags contains "primary"');
    assert.deepEqual(items.filter(pred), [healthEntry]);
    assert.deepEqual(items.filter(pred), [healthEntry]);
  });
});

/** [expression, column (1-based) the message must point at, words the reason must contain] */
type ErrorRow = readonly [expression: string, where: string, reason: RegExp];

const errors: ErrorRow[] = [
  ['', '1:1 (0)', /empty expression/],
  ['   ', '1:1 (0)', /empty expression/],
  ['(Service.ID == "a"', '1:19 (18)', /unmatched parentheses: "\(" at 1:1 is never closed, expected "\)"/],
  ['((Service.ID == "a")', '1:21 (20)', /"\(" at 1:1 is never closed/],
  ['Service.ID == "a")', '1:18 (17)', /unmatched parentheses: "\)" has no opening "\("/],
  ['()', '1:2 (1)', /unexpected "\)", expected a match expression after "\("/],
  ['(Service.ID == "a" foo)', '1:20 (19)', /unexpected "foo", expected "and", "or" or "\)" to close "\(" at 1:1/],
  ['Service.ID ==', '1:14 (13)', /missing value after "==", found end of input/],
  ['Service.ID == and Service.Port == 80', '1:15 (14)', /missing value after "==", found "and"/],
  ['Service.Tags contains', '1:22 (21)', /missing value after "contains"/],
  ['Service.ID', '1:11 (10)', /missing operator after selector Service.ID/],
  ['Service.ID = "a"', '1:12 (11)', /unsupported operator "=" after selector Service.ID, expected one of "==", "!="/],
  ['Service.Port >= 80', '1:14 (13)', /unsupported operator ">="/],
  ['Service.ID equals "a"', '1:12 (11)', /unexpected "equals" after selector Service.ID, expected an operator/],
  ['Service.Meta is nothing', '1:17 (16)', /unexpected "nothing" after "is", expected "empty" or "not empty"/],
  ['Service.Tags not has "a"', '1:18 (17)', /unexpected "has" after "not", expected "in", "contains" or "matches"/],
  ['Service.ID == "a" foo', '1:19 (18)', /unexpected "foo" after a complete expression, expected "and", "or" or end of input/],
  ['Service.ID == "a" and', '1:22 (21)', /expected a match expression after "and", found end of input/],
  ['Service.ID == "a" or or', '1:22 (21)', /unexpected "or", expected a match expression after "or"/],
  ['not', '1:4 (3)', /expected a match expression after "not", found end of input/],
  ['== "a"', '1:1 (0)', /unexpected "==", expected a match expression at the start/],
  ['"x" == Service.ID', '1:5 (4)', /unexpected "==" after the value "x": a value on the left must be followed by "in" or "not in"/],
  ['"x" in', '1:7 (6)', /invalid selector after "in"/],
  ['"x" in "Service.Tags"', '1:8 (7)', /invalid selector after "in"/],
  ['Service.ID matches "("', '1:20 (19)', /invalid regular expression "\(" after "matches" \(Go RE2 syntax\): error parsing regexp: missing closing \): `\(`/],
  ['Service.ID not matches "[a-"', '1:24 (23)', /invalid regular expression "\[a-" after "not matches" \(Go RE2 syntax\): error parsing regexp: missing closing \]/],
  ['Service.ID matches "a(?=b)"', '1:20 (19)', /invalid or unsupported Perl syntax: `\(\?=`/],
  ['Service.ID matches `(a)\\1`', '1:20 (19)', /invalid escape sequence: `\\1`/],
  ['Service.ID matches "a{1001}"', '1:20 (19)', /invalid repeat count: `\{1001\}`/],
  ['Service.ID == "abc', '1:15 (14)', /unterminated string literal/],
  ['Service.ID == "abc\\', '1:15 (14)', /unterminated string literal/],
  ['Service.ID == `abc', '1:15 (14)', /unterminated string literal: expected a closing "`"/],
  ['Service.ID == "a\\qb"', '1:17 (16)', /invalid escape sequence "\\\\q" in string literal/],
  ['Service.ID == "\\xZZ"', '1:16 (15)', /invalid escape sequence "\\\\xZZ"/],
  ['Service.Meta[k] == "v"', '1:14 (13)', /invalid index: expected a quoted string/],
  ['Service.Meta["k" == "v"', '1:18 (17)', /unclosed index expression: expected "\]", found "=="/],
  ['Service. == "v"', '1:9 (8)', /invalid selector: expected a field name or map key after "\.", found whitespace/],
  ['Service.ID == "a" or\n  Service.Port ~= 2', '2:16 (36)', /unsupported operator "~="/],
  ['Service.Meta.q == "é" foo', '1:23 (23)', /unexpected "foo"/],
];

describe('compileFilter: errors', () => {
  for (const [expression, where, reason] of errors) {
    it(`rejects ${JSON.stringify(expression)} at ${where}`, () => {
      assert.throws(
        () => compileFilter(expression),
        (err: unknown) => {
          assert.ok(err instanceof SwitchyardError);
          assert.equal(err.code, 'SY_ERR_FILTER');
          const prefix = `Failed to create boolean expression evaluator: ${where}: `;
          assert.ok(err.message.startsWith(prefix), `${err.message}\n  should start with\n${prefix}`);
          assert.match(err.message.slice(prefix.length), reason);
          return true;
        },
      );
    });
  }
});

describe('compileFilter: limits (one request cannot stall the agent)', () => {
  const limitError = (where: RegExp | string) => (err: unknown): boolean => {
    assert.ok(err instanceof SwitchyardError);
    assert.equal(err.code, 'SY_ERR_FILTER_LIMIT');
    if (typeof where === 'string') assert.ok(err.message.includes(where), err.message);
    else assert.match(err.message, where);
    return true;
  };

  it('refuses an expression longer than maxLength, naming the limit', () => {
    const long = `Service.ID == "${'x'.repeat(DEFAULT_FILTER_LIMITS.maxLength)}"`;
    assert.throws(() => compileFilter(long), limitError(`filter too long: ${long.length} characters, the limit is ${DEFAULT_FILTER_LIMITS.maxLength}`));
    assert.equal(compileFilter(long.slice(0, DEFAULT_FILTER_LIMITS.maxLength - 1) + '"')(healthEntry), false, 'just under the limit compiles');
  });

  it('refuses nesting deeper than maxDepth (parentheses or not), where it happens', () => {
    const depth = DEFAULT_FILTER_LIMITS.maxDepth;
    const ok = `${'('.repeat(depth)}Service.Port == 80${')'.repeat(depth)}`;
    assert.equal(compileFilter(ok)(healthEntry), true);
    assert.throws(() => compileFilter(`${'('.repeat(depth + 1)}Service.Port == 80${')'.repeat(depth + 1)}`),
      limitError(new RegExp(`^Failed to create boolean expression evaluator: 1:${depth + 1} \\(${depth}\\): expression nested too deeply: more than ${depth} levels`)));
    assert.throws(() => compileFilter(`${'not '.repeat(depth + 1)}Service.Port == 80`), limitError(/nested too deeply/));
    // Thousands of "(" would have overflowed the parser's stack; now they stop at the limit.
    assert.throws(() => compileFilter('('.repeat(4000)), limitError(/nested too deeply/));
  });

  it('refuses a regular expression whose compiled program exceeds maxRegexProgram', () => {
    assert.throws(() => compileFilter('Service.ID matches "[a-z]{1000}[a-z]{1000}[0-9]{1000}"', { ...DEFAULT_FILTER_LIMITS, maxRegexProgram: 2000 }),
      limitError(/1:20 \(19\): regular expression "\[a-z\]\{1000\}.*" after "matches" is too large: 300\d instructions compiled, the limit is 2000/));
  });

  it('stops evaluating once a request has spent its step budget, and names the budget', () => {
    const limits = { ...DEFAULT_FILTER_LIMITS, maxSteps: 10_000 };
    const items = Array.from({ length: 100 }, (_, i) => ({ Service: { ID: `web-${i}`, Tags: ['x'.repeat(100)] } }));
    const cheap = compileFilter('Service.ID == "web-7"', limits);
    assert.equal(items.filter(cheap).length, 1, 'a cheap filter over the same items fits the budget');
    const costly = compileFilter('Service.Tags matches "^x+y"', limits);
    assert.throws(() => items.filter(costly), limitError('filter evaluation exceeded its budget of 10000 steps'));
  });

  it('gives every compiled filter its own budget (one per request)', () => {
    const limits = { ...DEFAULT_FILTER_LIMITS, maxSteps: 500 };
    const item = { Service: { Tags: ['y'.repeat(50)] } };
    for (let i = 0; i < 3; i++) assert.equal(compileFilter('Service.Tags matches "y$"', limits)(item), true);
  });
});
