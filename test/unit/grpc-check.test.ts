// The Consul gRPC check (grpc.health.v1.Health/Check) against real @grpc/grpc-js servers, plain and TLS: statuses and Consul's output texts.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeHealthResponse, encodeHealthRequest, runGrpcCheck } from '../../src/health/grpc-check.js';
import { runH2PingCheck } from '../../src/health/h2ping-check.js';
import { tempDir } from '../helpers/agent.js';
import { NOT_SERVING, SERVING, grpc, startGrpcBackend } from '../helpers/grpc.js';
import type { GrpcBackend } from '../helpers/grpc.js';
import { freePort } from '../helpers/process.js';

describe('gRPC health check', () => {
  let b: GrpcBackend;
  before(async () => {
    b = await startGrpcBackend('h');
    b.health.set('pkg.Svc', SERVING);
    b.health.set('pkg.Down', NOT_SERVING);
  });
  after(() => b.close());

  it('encodes HealthCheckRequest and decodes HealthCheckResponse (unknown fields skipped, absent status is UNKNOWN)', () => {
    assert.deepEqual([...encodeHealthRequest('a.B')], [0, 0, 0, 0, 5, 0x0a, 3, 0x61, 0x2e, 0x42]);
    assert.deepEqual([...encodeHealthRequest('')], [0, 0, 0, 0, 0]);
    assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
    assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 0])), 0);
    // field 2 (string "x") before field 1 = 2
    assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 5, 0x12, 1, 0x78, 0x08, 2])), 2);
    assert.deepEqual(decodeHealthResponse(Buffer.from([1, 0, 0, 0, 0])), { error: 'compressed message' });
  });

  it('SERVING is passing, with Consul\'s output; the service name after the slash is asked for', async () => {
    assert.deepEqual(await runGrpcCheck({ target: `127.0.0.1:${b.port}`, useTls: false, timeoutMs: 5000 }), { status: 'passing', output: `gRPC check 127.0.0.1:${b.port}: success` });
    assert.deepEqual(await runGrpcCheck({ target: `127.0.0.1:${b.port}/pkg.Svc`, useTls: false, timeoutMs: 5000 }), { status: 'passing', output: `gRPC check 127.0.0.1:${b.port}/pkg.Svc: success` });
  });

  it('NOT_SERVING, an unknown service and an unreachable server are critical, worded as grpc-go words them', async () => {
    assert.deepEqual(await runGrpcCheck({ target: `127.0.0.1:${b.port}/pkg.Down`, useTls: false, timeoutMs: 5000 }), { status: 'critical', output: `gRPC 127.0.0.1:${b.port}/pkg.Down serving status: NOT_SERVING` });
    assert.deepEqual(await runGrpcCheck({ target: `127.0.0.1:${b.port}/nope`, useTls: false, timeoutMs: 5000 }), { status: 'critical', output: 'rpc error: code = NotFound desc = unknown service' });
    const port = await freePort();
    const r = await runGrpcCheck({ target: `127.0.0.1:${port}`, useTls: false, timeoutMs: 5000 });
    assert.equal(r.status, 'critical');
    assert.equal(r.output, `rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:${port}: connect: connection refused"`);
  });

  it('GRPCUseTLS: talks TLS; an untrusted certificate is critical unless TLSSkipVerify', async () => {
    const dir = tempDir('sy-grpc-tls-');
    const cert = join(dir, 'c.crt');
    const key = join(dir, 'c.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const server = new grpc.Server();
    server.addService({
      Check: {
        path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false,
        requestSerialize: (x: Buffer) => x, requestDeserialize: (x: Buffer) => x,
        responseSerialize: () => Buffer.from([0x08, 1]), responseDeserialize: (x: Buffer) => x,
      },
    }, { Check: (_c: unknown, cb: grpc.sendUnaryData<number>) => cb(null, 1) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(cert), private_key: readFileSync(key) }]), (e, p) => (e ? reject(e) : resolve(p))));
    try {
      const ok = await runGrpcCheck({ target: `127.0.0.1:${port}`, useTls: true, tlsSkipVerify: true, timeoutMs: 5000 });
      assert.deepEqual(ok, { status: 'passing', output: `gRPC check 127.0.0.1:${port}: success` });
      const bad = await runGrpcCheck({ target: `127.0.0.1:${port}`, useTls: true, timeoutMs: 5000 });
      assert.equal(bad.status, 'critical');
      assert.match(bad.output, /^rpc error: code = Unavailable desc = connection error: desc = "transport: authentication handshake failed: .*self[- ]signed/);
      const plain = await runGrpcCheck({ target: `127.0.0.1:${port}`, useTls: false, timeoutMs: 2000 });
      assert.equal(plain.status, 'critical', 'plain HTTP/2 to a TLS port fails');
    } finally {
      server.forceShutdown();
    }
  });

  it('a server that refuses the client after the TLS handshake (no client certificate) is critical and leaks no socket', async () => {
    const dir = tempDir('sy-grpc-mtls-');
    const cert = join(dir, 'c.crt');
    const key = join(dir, 'c.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const server = new grpc.Server();
    // TLS 1.3: the client finishes its handshake first; the server's "certificate required" alert comes after.
    const creds = grpc.ServerCredentials.createSsl(readFileSync(cert), [{ cert_chain: readFileSync(cert), private_key: readFileSync(key) }], true);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
    const fds = (): number => readdirSync('/proc/self/fd').length;
    try {
      const before = fds();
      for (let i = 0; i < 30; i++) {
        const grpcCheck = await runGrpcCheck({ target: `127.0.0.1:${port}`, useTls: true, tlsSkipVerify: true, timeoutMs: 5000 });
        assert.equal(grpcCheck.status, 'critical', grpcCheck.output);
        const ping = await runH2PingCheck({ address: `127.0.0.1:${port}`, useTls: true, tlsSkipVerify: true, timeoutMs: 5000 });
        assert.equal(ping.status, 'critical', ping.output);
      }
      await new Promise((r) => setTimeout(r, 200));
      // Node left each refused session's socket open (one descriptor per check run, for good).
      assert.ok(fds() - before < 10, `60 refused checks left ${fds() - before} more open descriptors`);
    } finally {
      server.forceShutdown();
    }
  });
});
