// registrator's container → service mapping (compat-spec §5.2, §5.3), table-tested on fixture inspect objects.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  buildCheck, combineTags, defaultServiceName, mapContainer, parseEscapedComma, parseServiceId, registrationBody, serviceMetadata,
} from '../../src/registrator/mapping.js';
import { compileTagsTemplate } from '../../src/registrator/tags-template.js';
import type { ContainerInspect, HostContext, MappingConfig, PortBinding } from '../../src/registrator/types.js';

const ID = 'e20f9c1a76565d62ae24a3bb877b17b862b6eab94f4e95a0e07ccf25087aaf4f';

interface Fixture {
  name?: string;
  image?: string;
  env?: string[];
  labels?: Record<string, string>;
  exposed?: string[];
  ports?: Record<string, PortBinding[] | null>;
  networkMode?: string;
  ip?: string;
  networks?: Record<string, { IPAddress: string }>;
}

/** A Docker inspect answer as the Engine API returns it (the fields registrator reads). */
function inspect(f: Fixture): ContainerInspect {
  return {
    Id: ID,
    Name: `/${f.name ?? 'web.1'}`,
    Config: {
      Image: f.image ?? 'progrium/nginx:latest',
      Hostname: 'e20f9c1a7656',
      Env: f.env ?? ['PATH=/usr/bin'],
      Labels: f.labels ?? {},
      ExposedPorts: Object.fromEntries((f.exposed ?? []).map((p) => [p, {}])),
    },
    HostConfig: { NetworkMode: f.networkMode ?? 'default' },
    NetworkSettings: {
      IPAddress: f.ip ?? '172.17.0.5',
      Ports: f.ports ?? {},
      Networks: f.networks ?? { bridge: { IPAddress: f.ip ?? '172.17.0.5' } },
    },
    State: { Running: true, ExitCode: 0 },
  };
}

function config(over: Partial<Omit<MappingConfig, 'forceTags'>> & { tags?: string } = {}): MappingConfig {
  const { tags, ...rest } = over;
  return { hostIp: '', internal: false, explicit: false, useIpFromLabel: '', forceTags: compileTagsTemplate(tags ?? ''), ...rest };
}

const H1: HostContext = { hostname: 'h1', hostnameIp: '192.0.2.10' };
const published = (hostPort: string, hostIp = '0.0.0.0'): PortBinding[] => [{ HostIp: hostIp, HostPort: hostPort }];

describe('registrator mapping: compat-spec §8 item 20', () => {
  // 20. **Registrator mapping** — container `nginx.0` from image
  //     `progrium/nginx:latest` publishing 443→4443 and 80→8000 with env
  //     `SERVICE_443_NAME=https`, `SERVICE_TAGS=www`, `SERVICE_80_CHECK_HTTP=/health`
  //     on host `h1` with `-ip 10.1.1.1` → two registrations:
  //     `{ID:"h1:nginx.0:443",Name:"https",Port:4443,Address:"10.1.1.1",Tags:["www"]}`
  //     and `{ID:"h1:nginx.0:80",Name:"nginx-80",Port:8000,Address:"10.1.1.1",Tags:["www"],Meta:{"check_http":"/health"},Check:{HTTP:"http://10.1.1.1:8000/health",Interval:"10s"}}`;
  //     the container's `die` event → two `PUT /v1/agent/service/deregister/<id>`.
  it('maps nginx.0 to exactly the two registrations of item 20', () => {
    const c = inspect({
      name: 'nginx.0', image: 'progrium/nginx:latest',
      env: ['SERVICE_443_NAME=https', 'SERVICE_TAGS=www', 'SERVICE_80_CHECK_HTTP=/health', 'PATH=/usr/sbin:/usr/bin'],
      exposed: ['443/tcp', '80/tcp'],
      ports: { '443/tcp': published('4443'), '80/tcp': published('8000') },
    });
    const { services } = mapContainer(c, config({ hostIp: '10.1.1.1' }), H1);
    const bodies = services.map(registrationBody).sort((a, b) => String(a.ID).localeCompare(String(b.ID)));
    assert.deepEqual(bodies, [
      { ID: 'h1:nginx.0:443', Name: 'https', Port: 4443, Address: '10.1.1.1', Tags: ['www'] },
      {
        ID: 'h1:nginx.0:80', Name: 'nginx-80', Port: 8000, Address: '10.1.1.1', Tags: ['www'],
        Meta: { check_http: '/health' }, Check: { HTTP: 'http://10.1.1.1:8000/health', Interval: '10s' },
      },
    ]);
  });
});

interface Case {
  what: string;
  fixture: Fixture;
  cfg?: Partial<Omit<MappingConfig, 'forceTags'>> & { tags?: string };
  host?: HostContext;
  /** Expected registration bodies, in port order. */
  want: Record<string, unknown>[];
  ignored?: string[];
}

const cases: Case[] = [
  {
    what: 'one published port: name = image basename, ID = host:container:port, hostname-resolved IP for 0.0.0.0',
    fixture: { name: 'web-1', image: 'gliderlabs/foobar:1.2', exposed: ['80/tcp'], ports: { '80/tcp': published('32768') } },
    want: [{ ID: 'h1:web-1:80', Name: 'foobar', Port: 32768, Address: '192.0.2.10' }],
  },
  {
    what: 'an image without a repository or tag is its own name',
    fixture: { image: 'redis', exposed: ['6379/tcp'], ports: { '6379/tcp': published('6379') } },
    want: [{ ID: 'h1:web.1:6379', Name: 'redis', Port: 6379, Address: '192.0.2.10' }],
  },
  {
    what: 'a registry host with a port in the image reference',
    fixture: { image: 'localhost:5000/team/api:3', exposed: ['80/tcp'], ports: { '80/tcp': published('1080') } },
    want: [{ ID: 'h1:web.1:80', Name: 'api', Port: 1080, Address: '192.0.2.10' }],
  },
  {
    what: 'a binding on a specific host IP keeps it; -ip replaces it',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('40000', '127.0.0.1') } },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 40000, Address: '127.0.0.1' }],
  },
  {
    what: '-ip wins over the binding',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('40000', '127.0.0.1') } },
    cfg: { hostIp: '10.0.0.9' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 40000, Address: '10.0.0.9' }],
  },
  {
    what: 'the hostname does not resolve: 0.0.0.0 stays',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('40000') } },
    host: { hostname: 'h1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 40000, Address: '0.0.0.0' }],
  },
  {
    what: 'the first binding is used (Docker lists 0.0.0.0 then ::)',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '49153' }, { HostIp: '::', HostPort: '49153' }] } },
    cfg: { hostIp: '127.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 49153, Address: '127.0.0.1' }],
  },
  {
    what: 'an exposed but unpublished port is skipped',
    fixture: { exposed: ['80/tcp', '443/tcp'], ports: { '80/tcp': published('8080'), '443/tcp': null } },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '192.0.2.10' }],
    ignored: ['443/tcp: not published on host'],
  },
  {
    what: 'nothing published: no services',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': null } },
    want: [],
    ignored: ['80/tcp: not published on host'],
  },
  {
    what: 'two ports: a group, names get -<port>; global SERVICE_NAME too',
    fixture: { env: ['SERVICE_NAME=db'], exposed: ['5432/tcp', '8080/tcp'], ports: { '5432/tcp': published('15432'), '8080/tcp': published('18080') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [
      { ID: 'h1:web.1:5432', Name: 'db-5432', Port: 15432, Address: '10.0.0.1' },
      { ID: 'h1:web.1:8080', Name: 'db-8080', Port: 18080, Address: '10.0.0.1' },
    ],
  },
  {
    what: 'SERVICE_<port>_NAME beats SERVICE_NAME whatever the order, and is not suffixed',
    fixture: { env: ['SERVICE_80_NAME=front', 'SERVICE_NAME=generic'], exposed: ['80/tcp', '81/tcp'], ports: { '80/tcp': published('1'), '81/tcp': published('2') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [
      { ID: 'h1:web.1:80', Name: 'front', Port: 1, Address: '10.0.0.1' },
      { ID: 'h1:web.1:81', Name: 'generic-81', Port: 2, Address: '10.0.0.1' },
    ],
  },
  {
    what: 'a label overrides the same env key; labels are SERVICE_* too',
    fixture: { env: ['SERVICE_NAME=from-env', 'SERVICE_REGION=eu'], labels: { SERVICE_NAME: 'from-label', 'com.example.other': 'x' }, exposed: ['80/tcp'], ports: { '80/tcp': published('9000') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'from-label', Port: 9000, Address: '10.0.0.1', Meta: { region: 'eu' } }],
  },
  {
    what: 'SERVICE_ID overrides the ID; SERVICE_TAGS are split (reversed, like master) and -tags appended',
    fixture: { env: ['SERVICE_ID=custom-id', 'SERVICE_TAGS=master,backups'], exposed: ['80/tcp'], ports: { '80/tcp': published('9000') } },
    cfg: { hostIp: '10.0.0.1', tags: 'extra' },
    want: [{ ID: 'custom-id', Name: 'nginx', Port: 9000, Address: '10.0.0.1', Tags: ['backups', 'master', 'extra'] }],
  },
  {
    what: 'SERVICE_IGNORE (any non-empty value) skips the container; SERVICE_<port>_IGNORE one port',
    fixture: { env: ['SERVICE_443_IGNORE=yes'], exposed: ['80/tcp', '443/tcp'], ports: { '80/tcp': published('8080'), '443/tcp': published('8443') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx-80', Port: 8080, Address: '10.0.0.1' }],
    ignored: ['443/tcp: ignored by SERVICE_IGNORE'],
  },
  {
    what: 'SERVICE_IGNORE with an empty value does not ignore',
    fixture: { env: ['SERVICE_IGNORE='], exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '10.0.0.1', Meta: { ignore: '' } }],
  },
  {
    what: 'UDP: ID gets :udp and a udp tag',
    fixture: { image: 'coredns', exposed: ['53/udp'], ports: { '53/udp': published('1053') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:53:udp', Name: 'coredns', Port: 1053, Address: '10.0.0.1', Tags: ['udp'] }],
  },
  {
    what: '-explicit: no SERVICE_NAME, no service',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { explicit: true },
    want: [],
    ignored: ['80/tcp: no SERVICE_NAME (-explicit)'],
  },
  {
    what: '-explicit with SERVICE_<port>_NAME',
    fixture: { env: ['SERVICE_80_NAME=web'], exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { explicit: true, hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'web', Port: 8080, Address: '10.0.0.1' }],
  },
  {
    what: '-internal: container IP and exposed port, unpublished ports included, -ip ignored',
    fixture: { exposed: ['80/tcp', '9000/tcp'], ports: { '80/tcp': published('8080'), '9000/tcp': null }, ip: '172.17.0.9' },
    cfg: { internal: true, hostIp: '10.0.0.1' },
    want: [
      { ID: 'h1:web.1:80', Name: 'nginx-80', Port: 80, Address: '172.17.0.9' },
      { ID: 'h1:web.1:9000', Name: 'nginx-9000', Port: 9000, Address: '172.17.0.9' },
    ],
  },
  {
    what: '--net=host: exposed ports count as published with host port = port',
    fixture: { exposed: ['8500/tcp'], ports: {}, networkMode: 'host', ip: '', networks: { host: { IPAddress: '' } } },
    cfg: { hostIp: '127.0.0.1' },
    want: [{ ID: 'h1:web.1:8500', Name: 'nginx', Port: 8500, Address: '127.0.0.1' }],
  },
  {
    what: 'a user-defined network: its IP replaces the binding host IP (no -ip)',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('8080') }, networkMode: 'appnet', ip: '', networks: { appnet: { IPAddress: '172.20.0.3' } } },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '172.20.0.3' }],
  },
  {
    what: '-useIpFromLabel (CIDR suffix stripped)',
    fixture: { labels: { 'ip.addr': '10.9.8.7/24' }, exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { useIpFromLabel: 'ip.addr', hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '10.9.8.7' }],
  },
  {
    what: 'attrs → Meta (lower-case keys), checks: TCP with timeout and interval',
    fixture: { env: ['SERVICE_CHECK_TCP=true', 'SERVICE_CHECK_INTERVAL=5s', 'SERVICE_CHECK_TIMEOUT=2s', 'SERVICE_Version=2'], exposed: ['6379/tcp'], ports: { '6379/tcp': published('16379') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{
      ID: 'h1:web.1:6379', Name: 'nginx', Port: 16379, Address: '10.0.0.1',
      Meta: { check_interval: '5s', check_tcp: 'true', check_timeout: '2s', version: '2' },
      Check: { TCP: '10.0.0.1:16379', Timeout: '2s', Interval: '5s' },
    }],
  },
  {
    what: 'TTL check has no interval',
    fixture: { env: ['SERVICE_CHECK_TTL=30s'], exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '10.0.0.1', Meta: { check_ttl: '30s' }, Check: { TTL: '30s' } }],
  },
  {
    what: 'a port that is not this one: SERVICE_<other>_* does not apply',
    fixture: { env: ['SERVICE_443_CHECK_HTTP=/x', 'SERVICE_443_NAME=tls'], exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } },
    cfg: { hostIp: '10.0.0.1' },
    want: [{ ID: 'h1:web.1:80', Name: 'nginx', Port: 8080, Address: '10.0.0.1' }],
  },
  {
    what: 'an empty hostname: the binding IP stands in for it in the ID',
    fixture: { exposed: ['80/tcp'], ports: { '80/tcp': published('8080', '127.0.0.1') } },
    host: { hostname: '' },
    want: [{ ID: '127.0.0.1:web.1:80', Name: 'nginx', Port: 8080, Address: '127.0.0.1' }],
  },
];

describe('registrator mapping: table', () => {
  for (const c of cases) {
    it(c.what, () => {
      const r = mapContainer(inspect(c.fixture), config(c.cfg), c.host ?? H1);
      assert.deepEqual(r.services.map(registrationBody), c.want);
      assert.deepEqual(r.ignored.map((i) => `${i.port}: ${i.reason}`), c.ignored ?? []);
    });
  }

  it('--net=container:<id> takes the other container\'s IP', () => {
    const c = inspect({ exposed: ['80/tcp'], ports: {}, networkMode: 'container:abcdef0123456789' });
    const other = inspect({ ip: '172.17.0.42' });
    const r = mapContainer(c, config({ hostIp: '10.0.0.1' }), { ...H1, networkContainer: other });
    assert.equal(r.services[0]?.ip, '172.17.0.42');
  });
});

describe('registrator Consul checks', () => {
  const svc = (attrs: Record<string, string>) => mapContainer(
    inspect({ env: Object.entries(attrs).map(([k, v]) => `SERVICE_${k}=${v}`), exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } }),
    config({ hostIp: '10.0.0.1' }), H1,
  ).services[0]!;

  it('HTTP with timeout, method, initial status and deregister-after', () => {
    assert.deepEqual(buildCheck(svc({ CHECK_HTTP: '/health', CHECK_TIMEOUT: '1s', CHECK_HTTP_METHOD: 'HEAD', CHECK_INITIAL_STATUS: 'passing', CHECK_DEREGISTER_AFTER: '10m' })), {
      Status: 'passing', HTTP: 'http://10.0.0.1:8080/health', Timeout: '1s', Method: 'HEAD', Interval: '10s', DeregisterCriticalServiceAfter: '10m',
    });
  });
  it('HTTPS', () => {
    assert.deepEqual(buildCheck(svc({ CHECK_HTTPS: '/h', CHECK_HTTPS_METHOD: 'POST' })), { HTTP: 'https://10.0.0.1:8080/h', Method: 'POST', Interval: '10s' });
  });
  it('HTTP wins over TCP and TTL (first match)', () => {
    assert.deepEqual(buildCheck(svc({ CHECK_TCP: 'x', CHECK_TTL: '5s', CHECK_HTTP: '/' })), { HTTP: 'http://10.0.0.1:8080/', Interval: '10s' });
  });
  it('cmd and script become ScriptArgs', () => {
    assert.deepEqual(buildCheck(svc({ CHECK_CMD: '/bin/check' })), { ScriptArgs: ['check-cmd', ID.slice(0, 12), '80', '/bin/check'], Interval: '10s' });
    assert.deepEqual(buildCheck(svc({ CHECK_SCRIPT: 'nc -z $SERVICE_IP $SERVICE_PORT' })), { ScriptArgs: ['nc -z 10.0.0.1 8080'], Interval: '10s' });
  });
  it('gRPC with TLS flags', () => {
    assert.deepEqual(buildCheck(svc({ CHECK_GRPC: 'y', CHECK_GRPC_USE_TLS: '1', CHECK_TLS_SKIP_VERIFY: '1' })), { GRPC: '10.0.0.1:8080', GRPCUseTLS: true, TLSSkipVerify: true, Interval: '10s' });
  });
  it('no check attrs, or only an initial status: no Check', () => {
    assert.equal(buildCheck(svc({})), undefined);
    assert.equal(buildCheck(svc({ CHECK_INITIAL_STATUS: 'passing' })), undefined);
  });
});

describe('registrator helpers', () => {
  it('escaped-comma tag parsing (registrator master: pieces in reverse order, empties dropped)', () => {
    const table: [string, string[]][] = [
      ['', []],
      ['foobar', ['foobar']],
      ['foo,bar', ['bar', 'foo']],
      ['foo\\,bar', ['foo,bar']],
      ['foo,bar\\,baz', ['bar,baz', 'foo']],
      ['\\,foobar\\,', [',foobar,']],
      [',,,,foo,,,bar,,,', ['bar', 'foo']],
      [',,,,', []],
      [',,\\,,', [',']],
    ];
    for (const [input, want] of table) assert.deepEqual(parseEscapedComma(input), want, input);
    assert.deepEqual(combineTags('a,b', '', 'udp'), ['b', 'a', 'udp']);
  });

  it('default names', () => {
    assert.equal(defaultServiceName('gliderlabs/foobar:1.2'), 'foobar');
    assert.equal(defaultServiceName('redis'), 'redis');
    assert.equal(defaultServiceName('registry:5000/x/y'), 'y');
    assert.equal(defaultServiceName('sha256:abcdef'), 'sha256');
  });

  it('metadata: numeric prefix must be the port; port keys beat globals both ways', () => {
    const c = inspect({ env: ['SERVICE_NAME=a', 'SERVICE_80_NAME=b', 'SERVICE_8080_NAME=c', 'SERVICE_x_y=z', 'NOT_SERVICE=1', 'SERVICE_BAD'] });
    const { metadata, fromPort } = serviceMetadata(c, '80');
    assert.deepEqual(Object.fromEntries(metadata), { name: 'b', x_y: 'z' });
    assert.deepEqual([...fromPort], ['name']);
    const rev = serviceMetadata(inspect({ env: ['SERVICE_80_NAME=b', 'SERVICE_NAME=a'] }), '80');
    assert.equal(rev.metadata.get('name'), 'b');
  });

  it('registrator-shaped service IDs (for -cleanup)', () => {
    assert.deepEqual(parseServiceId('h1:nginx.0:80'), { hostname: 'h1', containerName: 'nginx.0' });
    assert.deepEqual(parseServiceId('h1:web_1:53:udp'), { hostname: 'h1', containerName: 'web_1' });
    assert.deepEqual(parseServiceId('host:with:colons:web-1:80'), { hostname: 'host:with:colons', containerName: 'web-1' });
    assert.equal(parseServiceId('web'), undefined);
    assert.equal(parseServiceId('h1:web:http'), undefined);
    assert.equal(parseServiceId('h1:-web:80'), undefined);
  });
});

describe('-healthcheck (Docker HEALTHCHECK as a TTL check)', () => {
  const withHealth = (): ContainerInspect => {
    const c = inspect({ name: 'api.1', env: ['SERVICE_NAME=api', 'SERVICE_CHECK_TCP=true'], exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } });
    c.Config.Healthcheck = { Test: ['CMD-SHELL', 'curl -f localhost/health'], Interval: 5e9, Retries: 3 };
    return c;
  };

  it('adds the Docker check only when asked and when the container has a HEALTHCHECK; the other check keeps its ID', () => {
    const off = mapContainer(withHealth(), config({ hostIp: '10.1.1.1' }), H1).services.map(registrationBody);
    assert.equal(off[0]?.Checks, undefined, 'off by default: the body is Registrator\'s');
    assert.equal((off[0]?.Check as Record<string, unknown>).CheckID, undefined);
    const on = mapContainer(withHealth(), config({ hostIp: '10.1.1.1', healthcheck: true }), H1).services.map(registrationBody);
    assert.deepEqual(on[0]?.Check, { CheckID: 'service:h1:api.1:80', TCP: '10.1.1.1:8080', Interval: '10s' });
    assert.deepEqual(on[0]?.Checks, [{
      CheckID: 'service:h1:api.1:80:docker-health', Name: 'Docker HEALTHCHECK', TTL: '25s',
      Notes: 'The Docker health status of container api.1, pushed by switchyard registrator -healthcheck',
    }]);
    const none = withHealth();
    none.Config.Healthcheck = { Test: ['NONE'] };
    assert.equal(mapContainer(none, config({ healthcheck: true }), H1).services.map(registrationBody)[0]?.Checks, undefined, 'HEALTHCHECK NONE');
    const plain = inspect({ exposed: ['80/tcp'], ports: { '80/tcp': published('8080') } });
    assert.equal(mapContainer(plain, config({ healthcheck: true }), H1).services.map(registrationBody)[0]?.Checks, undefined, 'no HEALTHCHECK');
  });
});
