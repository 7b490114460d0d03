// resolveLbConfig: the balancer's effective configuration from a config file's keys and flags (flags win), its
// defaults, and how routes, --service, hash-by and tcp listeners are turned into what the balancer uses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lbConfigSchema, resolveLbConfig } from '../../src/config/lb.js';

describe('resolveLbConfig', () => {
  it('without a file or flags: the documented defaults', () => {
    const c = resolveLbConfig({}, {});
    assert.deepEqual({ ...c }, {
      listen: '127.0.0.1:9080', registry: 'http://127.0.0.1:8500', token: undefined, adminAddr: undefined, adminAllowedHosts: [], registerAs: undefined,
      advertiseAddr: undefined, workers: 1, acceptBatch: 16, stateFile: undefined, logLevel: 'info', accessLog: false, routes: [],
      defaultBalance: 'round_robin', defaultHashBy: undefined, dataPlane: 'fast',
      timeouts: { connectMs: 2000, headerMs: 60_000, idleMs: 60_000, totalMs: 0, clientHeaderMs: 10_000, drainMs: 30_000, tunnelMs: 3_600_000, firstTableMs: 5000 },
      limits: { maxHeaderSize: 16384, maxHeaderCount: 1000, maxBody: 0, maxConnsPerClient: 0, maxConnsExempt: [] },
      retries: { attempts: 3, budgetPercent: 20, minConcurrency: 10 },
      passiveHealth: { maxFails: 3, failTimeoutMs: 10_000, consecutive5xx: 5, baseEjectionMs: 10_000, maxEjectionMs: 300_000, panicThreshold: 50 },
      tcp: [], tls: undefined, explainFrom: [], proxyProtocol: undefined, udp: [],
      guard: { maxDropPercent: 50, holdMs: 30_000 }, watch: { waitMs: 60_000, staleMarginMs: 5000 },
      http2: { enabled: true, maxConcurrentStreams: 128, initialWindowSize: 1024 * 1024, maxSessionMemoryMb: 32, maxResetsPerSecond: 50, maxControlFramesPerSecond: 100, keepaliveTimeMs: 5000, keepaliveTimeoutMs: 10_000 },
    });
    assert.ok(Object.isFrozen(c), 'the result is frozen');
    assert.ok(Object.isFrozen(c.timeouts) && Object.isFrozen(c.routes) && Object.isFrozen(c.passiveHealth), 'deeply: nothing downstream can change a setting in place');
  });

  it('flags win over the file key by key; a flag left undefined does not erase the file\'s value', () => {
    const c = resolveLbConfig(
      { listen: '127.0.0.1:1000', registry: 'http://a:8500', workers: 2, 'log-level': 'warn', balance: 'p2c' },
      { listen: '127.0.0.1:2000', workers: undefined, 'log-level': 'debug' },
    );
    assert.equal(c.listen, '127.0.0.1:2000');
    assert.equal(c.registry, 'http://a:8500');
    assert.equal(c.workers, 2);
    assert.equal(c.logLevel, 'debug');
    assert.equal(c.defaultBalance, 'p2c');
  });

  it('Go durations become milliseconds, the rest keeps its defaults', () => {
    const c = resolveLbConfig({
      timeouts: { connect: '250ms', total: '1m30s', drain: '0s', tunnel: '0s' },
      'passive-health': { 'fail-timeout': '2s', 'max-ejection': '1h', 'max-fails': 0 },
    }, {});
    assert.deepEqual(c.timeouts, { connectMs: 250, headerMs: 60_000, idleMs: 60_000, totalMs: 90_000, clientHeaderMs: 10_000, drainMs: 0, tunnelMs: 0, firstTableMs: 5000 });
    assert.deepEqual(c.passiveHealth, { maxFails: 0, failTimeoutMs: 2000, consecutive5xx: 5, baseEjectionMs: 10_000, maxEjectionMs: 3_600_000, panicThreshold: 50 });
  });

  it('routes: origin by position, path "/" by default, host and header names in lower case, the default balance and hash-by inherited', () => {
    const c = resolveLbConfig({
      balance: 'hash', 'hash-by': { header: 'X-User' },
      routes: [
        { host: 'API.Example.com', path: '/api', 'strip-prefix': '/api', service: 'api', headers: { 'X-Canary': 'Yes' }, tags: ['v2'] },
        { service: 'web', balance: 'least_conn', 'hash-by': { cookie: 'SID' } },
        { host: '*.shop.example.com', service: 'shop', 'hash-by': 'ip' },
      ],
    }, {});
    assert.deepEqual(c.routes, [
      { origin: 'config:routes[0]', pathPrefix: '/api', headers: [['x-canary', 'Yes']], service: 'api', tags: ['v2'], balance: 'hash', host: 'api.example.com', stripPrefix: '/api', hashBy: { kind: 'header', name: 'x-user' } },
      { origin: 'config:routes[1]', pathPrefix: '/', headers: [], service: 'web', tags: [], balance: 'least_conn', hashBy: { kind: 'cookie', name: 'SID' } },
      { origin: 'config:routes[2]', pathPrefix: '/', headers: [], service: 'shop', tags: [], balance: 'hash', host: '*.shop.example.com', hashBy: { kind: 'ip' } },
    ]);
    assert.deepEqual(c.defaultHashBy, { kind: 'header', name: 'x-user' });
  });

  it('--service adds a catch-all route after the configured ones, with the default balance and hash-by', () => {
    const c = resolveLbConfig({ routes: [{ path: '/api', service: 'api' }], 'hash-by': 'ip' }, { service: 'web', balance: 'random' });
    assert.deepEqual(c.routes.map((r) => [r.origin, r.service, r.pathPrefix, r.balance, r.hashBy]), [
      ['config:routes[0]', 'api', '/api', 'random', { kind: 'ip' }],
      ['--service', 'web', '/', 'random', { kind: 'ip' }],
    ]);
  });

  it('tcp listeners inherit the default balance unless they name one; tls is passed through', () => {
    const c = resolveLbConfig({
      balance: 'least_conn',
      tcp: [{ listen: '127.0.0.1:15432', service: 'db' }, { listen: '127.0.0.1:16379', service: 'cache', balance: 'hash' }],
      tls: { listen: '127.0.0.1:9443', certs: [{ cert: 'a.crt', key: 'a.key' }] },
    }, {});
    assert.deepEqual(c.tcp, [{ listen: '127.0.0.1:15432', service: 'db', balance: 'least_conn' }, { listen: '127.0.0.1:16379', service: 'cache', balance: 'hash' }]);
    assert.deepEqual(c.tls, { listen: '127.0.0.1:9443', certs: [{ cert: 'a.crt', key: 'a.key' }] });
  });
});

describe('lbConfigSchema: what reaches resolveLbConfig', () => {
  const problem = (input: unknown): string => {
    const r = lbConfigSchema.safeParse(input);
    assert.equal(r.success, false, `${JSON.stringify(input)} is refused`);
    return r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? '';
  };

  it('refuses unknown keys, unknown strategies, bad durations, addresses and paths, with the key named', () => {
    assert.match(problem({ lsiten: '127.0.0.1:1' }), /lsiten|Unrecognized key/);
    assert.match(problem({ balance: 'fastest' }), /^balance: /);
    assert.match(problem({ timeouts: { connect: '10 seconds' } }), /^timeouts\.connect: must be a Go duration/);
    // Every duration becomes a timer, and Node arms one above 2^31 - 1 ms for 1 ms: a 700h total timeout
    // would have ended every request at once.
    assert.equal(problem({ timeouts: { total: '700h' } }), 'timeouts.total: must be at most 596h (a Node.js timer holds about 24.8 days; a longer one would fire at once)');
    assert.match(problem({ 'passive-health': { 'max-ejection': '9999h' } }), /^passive-health\.max-ejection: must be at most 596h/);
    assert.equal(resolveLbConfig({ timeouts: { total: '596h' } }, {}).timeouts.totalMs, 596 * 3600e3);
    assert.match(problem({ listen: 'localhost' }), /^listen: must be host:port/);
    assert.match(problem({ listen: '127.0.0.1:70000' }), /^listen: port must be 0-65535/);
    assert.match(problem({ routes: [{ path: 'api', service: 'x' }] }), /^routes\.0\.path: must start with "\/"/);
    assert.match(problem({ routes: [{ path: '/' }] }), /^routes\.0\.service: /);
    assert.match(problem({ retries: { attempts: 11 } }), /^retries\.attempts: /);
    assert.match(problem({ http2: { 'keepalive-time': '10ms' } }), /^http2\.keepalive-time: must be a Go duration from 100ms to 1h/);
    assert.match(problem({ http2: { 'keepalive-timeout': 'soon' } }), /^http2\.keepalive-timeout: must be a Go duration/);
    assert.match(problem({ limits: { 'max-conns-per-client': -1 } }), /^limits\.max-conns-per-client: /);
    assert.match(problem({ limits: { 'max-conns-exempt': ['10.0.0.0/8', 'proxy.local'] } }), /^limits\.max-conns-exempt\.1: must be an IP address or a CIDR block/);
    assert.deepEqual(resolveLbConfig({ limits: { 'max-conns-per-client': 50, 'max-conns-exempt': ['10.0.0.0/8'] } }, {}).limits,
      { maxHeaderSize: 16384, maxHeaderCount: 1000, maxBody: 0, maxConnsPerClient: 50, maxConnsExempt: ['10.0.0.0/8'] });
    assert.match(problem({ 'proxy-protocol': { trusted: [] } }), /^proxy-protocol\.trusted: /);
    assert.match(problem({ 'proxy-protocol': { trusted: ['lb.local'] } }), /^proxy-protocol\.trusted\.0: must be an IP address or a CIDR block/);
    assert.match(problem({ 'proxy-protocol': { trusted: ['10.0.0.1'], version: 2 } }), /^proxy-protocol: .*version/);
    assert.deepEqual(resolveLbConfig({ 'proxy-protocol': { trusted: ['10.0.0.0/8', '::1'] } }, {}).proxyProtocol, { trusted: ['10.0.0.0/8', '::1'] });
    assert.match(problem({ tcp: [{ listen: '127.0.0.1:1', service: 'db', 'send-proxy': 'v3' }] }), /^tcp\.0\.send-proxy: /);
    assert.match(problem({ udp: [{ listen: '127.0.0.1:53', service: 'dns', 'idle-timeout': '10ms' }] }), /^udp\.0\.idle-timeout: must be a Go duration from 100ms to 1h/);
    assert.match(problem({ udp: [{ listen: '127.0.0.1:53', service: 'dns', 'max-sessions': 0 }] }), /^udp\.0\.max-sessions: /);
    assert.match(problem({ udp: [{ listen: 'nowhere', service: 'dns' }] }), /^udp\.0\.listen: /);
    assert.deepEqual(resolveLbConfig({ udp: [{ listen: '127.0.0.1:53', service: 'dns' }] }, {}).udp,
      [{ listen: '127.0.0.1:53', service: 'dns', balance: 'round_robin', idleTimeoutMs: 30_000, maxSessions: 1024 }]);
    assert.equal(resolveLbConfig({ tcp: [{ listen: '127.0.0.1:1', service: 'db', 'send-proxy': 'v2' }] }, {}).tcp[0]?.sendProxy, 'v2');
  });

  it('refuses bad rollout settings with the key named: split weights, mirror share, limits, explain addresses', () => {
    assert.match(problem({ routes: [{ service: 'x', split: [{ weight: 0 }] }] }), /^routes\.0\.split\.0\.weight: must be more than 0/);
    assert.match(problem({ routes: [{ service: 'x', split: [] }] }), /^routes\.0\.split: /);
    assert.match(problem({ routes: [{ service: 'x', mirror: { service: 'y', percent: 150 } }] }), /^routes\.0\.mirror\.percent: /);
    assert.match(problem({ routes: [{ service: 'x', limits: { 'max-concurrent': 0 } }] }), /^routes\.0\.limits\.max-concurrent: /);
    assert.match(problem({ routes: [{ service: 'x', limits: { rate: { 'per-second': 0 } } }] }), /^routes\.0\.limits\.rate\.per-second: must be more than 0/);
    assert.match(problem({ routes: [{ service: 'x', 'slow-start': 'soon' }] }), /^routes\.0\.slow-start: must be a Go duration/);
    for (const bad of ['localhost', '10.0.0.0/33', '::1/129', '1.2.3.4/8/1', '']) assert.match(problem({ explain: { from: [bad] } }), /^explain\.from\.0: must be an IP address or a CIDR block/);
  });
});

describe('resolveLbConfig: rollout settings', () => {
  it('maps split, sticky, slow start, mirror, limits and explain onto the route specs', () => {
    const c = resolveLbConfig({
      explain: { from: ['127.0.0.1', '10.0.0.0/8', '::1'] },
      routes: [{
        service: 'web', split: [{ tags: ['v1'], weight: 90 }, { meta: { version: 'v2' }, weight: 10 }], sticky: { cookie: 'sid' }, 'slow-start': '30s',
        mirror: { service: 'shadow', percent: 5 }, limits: { 'max-concurrent': 100, rate: { 'per-second': 2.5, by: { header: 'X-Api-Key' } } },
      }],
    }, {});
    const r = c.routes[0]!;
    assert.deepEqual(r.split, [{ tags: ['v1'], meta: [], weight: 90 }, { tags: [], meta: [['version', 'v2']], weight: 10 }]);
    assert.deepEqual(r.sticky, { kind: 'cookie', name: 'sid' });
    assert.equal(r.slowStartMs, 30_000);
    assert.deepEqual(r.mirror, { service: 'shadow', percent: 5 });
    // Burst defaults to one second's worth (rounded up); header names in lower case.
    assert.deepEqual(r.limits, { maxConcurrent: 100, rate: { perSecond: 2.5, burst: 3, by: { kind: 'header', name: 'x-api-key' } } });
    assert.deepEqual(c.explainFrom, ['127.0.0.1', '10.0.0.0/8', '::1']);
  });
});

describe('config files: nesting', () => {
  it('a file nesting past 200 levels is refused with its line, every time, and the next file still parses', async () => {
    const { parseConfigText } = await import('../../src/config/load.js');
    const deep = `listen: 127.0.0.1:0\nroutes: ${'['.repeat(3000)}${']'.repeat(3000)}\n`;
    // Twice: a parser that had run out of stack once could abort the process on its next regular expression.
    for (let i = 0; i < 2; i++) assert.throws(() => parseConfigText('lb.yaml', deep, lbConfigSchema), /^SwitchyardError: lb\.yaml:2: nests more than 200 levels deep; refused/);
    const block = `${Array.from({ length: 150 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')} x\n`;
    assert.throws(() => parseConfigText('lb.yaml', block, lbConfigSchema), /lb\.yaml:\d+: nests more than 200 levels deep/);
    assert.equal(parseConfigText('lb.yaml', 'listen: 127.0.0.1:0\nroutes: [{ path: /, service: web, tags: [a] }]\n', lbConfigSchema).routes?.[0]?.service, 'web');
  });
});
