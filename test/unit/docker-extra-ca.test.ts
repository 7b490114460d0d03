// The image build can trust an extra CA for `npm ci` (a TLS-intercepting proxy): the Dockerfile's EXTRA_CA_CERT
// build argument goes through docker/with-extra-ca.sh, which is run here for real: npm against an HTTPS registry
// whose certificate only that CA vouches for fails without it and works with it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(REPO, 'docker', 'with-extra-ca.sh');

describe('Dockerfile EXTRA_CA_CERT: npm ci trusts an extra CA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-ca-'));
  let server: Server | undefined;
  let registry = '';
  let ca = '';
  let skipReason: string | undefined;

  before(async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=proxy-ca', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    } catch (err) {
      // CI images ship openssl: there a missing binary is a failure, not a skip.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || process.env.CI === 'true') throw err;
      skipReason = 'openssl is not installed';
      return;
    }
    ca = readFileSync(cert, 'utf8');
    // A one-package npm registry, as a TLS-intercepting proxy would present it: a certificate of its own CA.
    server = createServer({ key: readFileSync(key), cert: ca }, (req, res) => {
      if (req.url !== '/sy-ca-probe') return void res.writeHead(404).end('{}');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        name: 'sy-ca-probe', 'dist-tags': { latest: '1.2.3' },
        versions: { '1.2.3': { name: 'sy-ca-probe', version: '1.2.3', dist: { tarball: `${registry}sy-ca-probe/-/sy-ca-probe-1.2.3.tgz` } } },
      }));
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    registry = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** `npm view` through the script, with npm's and Node's CA settings of this machine left out (as in the build stage). */
  const npmView = (extraCa: string | undefined): Promise<{ code: number; out: string }> => {
    const env: NodeJS.ProcessEnv = {
      ...process.env, npm_config_globalconfig: join(dir, 'global-npmrc'), npm_config_userconfig: join(dir, 'user-npmrc'), npm_config_cache: join(dir, 'cache'),
    };
    delete env.NODE_EXTRA_CA_CERTS;
    delete env.npm_config_cafile;
    delete env.npm_config_ca;
    if (extraCa !== undefined) env.EXTRA_CA_CERT = extraCa;
    else delete env.EXTRA_CA_CERT;
    return new Promise((resolve) => {
      execFile('sh', [SCRIPT, 'npm', 'view', 'sy-ca-probe', 'version', '--registry', registry, '--fetch-retries', '0'], { env, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
      });
    });
  };

  it('without the CA npm refuses the registry; with EXTRA_CA_CERT it reads from it', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    const without = await npmView(undefined);
    assert.notEqual(without.code, 0, without.out);
    assert.match(without.out, /self[- ]signed|unable to (get|verify)|SELF_SIGNED|UNABLE_TO/i);
    const withCa = await npmView(ca);
    assert.equal(withCa.code, 0, withCa.out);
    assert.equal(withCa.out.trim(), '1.2.3');
  });

  it('the Dockerfile\'s build stage takes EXTRA_CA_CERT and runs npm ci through the script', () => {
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    const build = dockerfile.slice(dockerfile.indexOf(' AS build'));
    assert.match(build, /^ARG EXTRA_CA_CERT=$/m);
    assert.match(build, /^COPY docker\/with-extra-ca\.sh \/usr\/local\/bin\/with-extra-ca$/m);
    assert.match(build, /^RUN EXTRA_CA_CERT="\$EXTRA_CA_CERT" sh \/usr\/local\/bin\/with-extra-ca npm ci /m);
  });
});
