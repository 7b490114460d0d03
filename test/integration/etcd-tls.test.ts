// Cluster mode on etcd members that speak TLS and require client certificates (--client-cert-auth), as production
// etcd runs: agents with --etcd-cacert/--etcd-cert/--etcd-key register, guard KV writes and see each other's
// changes (transactions over etcd-txn.ts, reads and the watch over etcd3, both on TLS); an agent with the wrong CA
// or without a client certificate is refused with a clear error and writes nothing; bad flags are named.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { http, startTestAgent, tempDir, waitFor } from '../helpers/agent.js';
import type { TestAgent } from '../helpers/agent.js';
import { etcdAvailable, startEtcd } from '../helpers/etcd.js';
import type { EtcdCluster } from '../helpers/etcd.js';
import { switchyard } from '../helpers/process.js';
import { makeCa, signedBy } from '../helpers/tls.js';

const CI = process.env.CI === 'true';

describe('cluster mode over TLS to etcd', { skip: !etcdAvailable() && !CI && 'etcd not installed' }, () => {
  const dir = tempDir('sy-etcd-tls-');
  let etcd: EtcdCluster;
  let ca: { cert: string; key: string };
  let client: { cert: string; key: string };
  const agents: TestAgent[] = [];
  before(async () => {
    ca = makeCa(dir, 'ca');
    const server = signedBy(ca, dir, 'member', ['localhost', '127.0.0.1']);
    client = signedBy(ca, dir, 'agent', ['agent']);
    etcd = await startEtcd(3, { tls: { ca: ca.cert, cert: server.cert, key: server.key, clientCertAuth: true } });
  });
  after(async () => {
    for (const a of agents) await a.stop();
    await etcd?.stop();
  });

  it('two agents with the CA and a client certificate: registrations, a guarded KV write and each other\'s changes', async () => {
    const tls = { 'etcd-cacert': ca.cert, 'etcd-cert': client.cert, 'etcd-key': client.key };
    const a = await startTestAgent({ store: etcd.url('tls1'), node: 'a', ...tls });
    agents.push(a);
    const b = await startTestAgent({ store: etcd.url('tls1'), node: 'b', ...tls });
    agents.push(b);
    const reg = await http(a.url, 'PUT', '/v1/catalog/register', { Node: 'web-1', Address: '10.0.0.1', Service: { ID: 'web-1', Service: 'web', Port: 80 } });
    assert.equal(reg.status, 200, reg.text);
    // Read your write on the agent that wrote it; the other sees it through its watch.
    assert.equal(((await http(a.url, 'GET', '/v1/catalog/service/web')).json as unknown[]).length, 1);
    await waitFor(async () => ((await http(b.url, 'GET', '/v1/catalog/service/web')).json as unknown[]).length === 1, 'agent b sees the registration');
    const put = await http(b.url, 'PUT', '/v1/kv/cfg?cas=0', 'v1');
    assert.equal(put.text, 'true');
    assert.equal((await http(a.url, 'PUT', '/v1/kv/cfg?cas=0', 'v2')).text, 'false', 'the guard holds across agents');
    await waitFor(async () => (await http(a.url, 'GET', '/v1/kv/cfg?raw')).text === 'v1', 'agent a reads b\'s value');
  });

  it('the wrong CA, or no client certificate: the agent does not start, and says why', async () => {
    const other = makeCa(dir, 'other-ca');
    const attempt = (cfg: Parameters<typeof startTestAgent>[0]): Promise<TestAgent | Error> =>
      startTestAgent(cfg).then((a) => a, (err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    const wrongCa = await attempt({ store: etcd.url('tls2'), node: 'x', 'store-timeout': '1s', 'etcd-cacert': other.cert, 'etcd-cert': client.cert, 'etcd-key': client.key });
    if (!(wrongCa instanceof Error)) {
      agents.push(wrongCa);
      assert.fail('an agent that cannot verify the members started');
    }
    assert.match(wrongCa.message, /SY_ERR_STORE_UNAVAILABLE|etcd/i);
    assert.match(wrongCa.message, /certificate/i, 'the cause: the members\' certificate does not verify');
    const noCert = await attempt({ store: etcd.url('tls2'), node: 'y', 'store-timeout': '1s', 'etcd-cacert': ca.cert });
    if (!(noCert instanceof Error)) {
      agents.push(noCert);
      assert.fail('an agent without a client certificate started against --client-cert-auth members');
    }
    assert.match(noCert.message, /etcd/i);
    assert.match(noCert.message, /certificate|handshake|alert|reset|closed/i, 'the cause: the TLS handshake was refused');
  });

  it('bad TLS flags are named with the file and reason, exit code 2', async () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const cases: [string[], RegExp][] = [
      [['--etcd-cert', client.cert], /--etcd-cert needs --etcd-key/],
      [['--etcd-key', client.key], /--etcd-key needs --etcd-cert/],
      [['--etcd-cacert', join(dir, 'missing.crt')], /--etcd-cacert .*missing\.crt: cannot read it: ENOENT/],
      [['--etcd-cacert', notPem], /--etcd-cacert .*not\.pem: not a PEM file/],
      [['--etcd-cert', client.cert, '--etcd-key', notPem], /--etcd-key .*not\.pem: not a PEM file/],
    ];
    for (const [flags, want] of cases) {
      const p = switchyard(['agent', '--http-addr', '127.0.0.1:0', '--data-dir', tempDir('sy-etcd-tls-bad-'), '--store', etcd.url('tls3'), ...flags]);
      const t = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
      const { code } = await p.exited;
      clearTimeout(t);
      assert.equal(code, 2, `${flags.join(' ')}: exit ${code}\n${p.stderr()}`);
      assert.match(p.stderr(), want);
    }
  });
});
