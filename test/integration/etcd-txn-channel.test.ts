// The etcd Txn channel (src/registry/store/etcd-txn.ts) against members that misbehave: real HTTP/2 servers on
// 127.0.0.1 standing in for etcd, answering with gRPC errors, bad frames, silence or nothing at all. What it
// reports must be classified exactly as the store's rules read grpc-js's errors (neverSent: may go to another
// member; memberUnreachable: counts against the member; a member's own words: kept), and nothing may throw
// outside the returned promise. Real etcd behind it: the cluster suites and the registry suites' etcd pass.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http2';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { GRPCDeadlineExceededError, GRPCInternalError, GRPCInvalidArgumentError, GRPCUnavailableError } from 'etcd3';
import { EtcdTxnChannel, encodeTxn } from '../../src/registry/store/etcd-txn.js';
import { memberUnreachable, neverSent } from '../../src/registry/store/etcd.js';

const BODY = encodeTxn([{ key: Buffer.from('k'), target: 1, result: 0, create_revision: 0 }], [{ request_put: { key: Buffer.from('k'), value: Buffer.from('v') } }], []);
/** TxnResponse { header { revision: 42 }, succeeded: true } framed as one gRPC message. */
const OK_ANSWER = Buffer.from([0, 0, 0, 0, 6, 0x0a, 0x02, 0x18, 42, 0x10, 0x01]);

const servers: { close(): void }[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function member(handle: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void): Promise<string> {
  const s: Http2Server = createServer();
  s.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    // The member's own side of a stream it resets or that the client cancels: not what is tested.
    stream.on('error', () => undefined);
    handle(stream, headers);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<string> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

const soon = (ms = 2000): Date => new Date(Date.now() + ms);

function grpcAnswer(stream: ServerHttp2Stream, status: number, message: string, body?: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(status), 'grpc-message': message }));
  stream.end(body);
}

describe('etcd Txn channel: what misbehaving members are reported as', () => {
  it('answers: the revision and outcome; the request reaches the member as etcd\'s Txn', async () => {
    let seen: { path: string | undefined; type: string | undefined; te: string | undefined; body: Buffer } | undefined;
    const url = await member((stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('end', () => {
        seen = { path: headers[':path'], type: headers['content-type'], te: headers.te as string | undefined, body: Buffer.concat(chunks) };
        grpcAnswer(stream, 0, '', OK_ANSWER);
      });
    });
    const ch = new EtcdTxnChannel([url], memberUnreachable);
    const a = await ch.txn(BODY, soon());
    assert.deepEqual(a, { header: { revision: 42 }, succeeded: true, responses: [] });
    assert.deepEqual([seen?.path, seen?.type, seen?.te], ['/etcdserverpb.KV/Txn', 'application/grpc', 'trailers']);
    assert.equal(seen?.body.readUInt32BE(1), BODY.length, 'one length-prefixed message');
    assert.deepEqual(seen?.body.subarray(5), BODY);
    ch.close();
  });

  it('a member\'s refusal keeps its words and type; a malformed grpc-message escape does not throw', async () => {
    const url = await member((stream) => grpcAnswer(stream, 14, 'etcdserver: leader changed'));
    const ch = new EtcdTxnChannel([url], memberUnreachable);
    const err = await ch.txn(BODY, soon()).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof GRPCUnavailableError, String(err));
    assert.match(String(err), /etcdserver: leader changed/);
    assert.equal(neverSent(err), false);
    assert.equal(memberUnreachable(err), false, 'an election is not the member\'s failure');
    const url2 = await member((stream) => grpcAnswer(stream, 3, 'etcdserver: duplicate key %zz given'));
    const ch2 = new EtcdTxnChannel([url2], memberUnreachable);
    const err2 = await ch2.txn(BODY, soon()).then(() => undefined, (e: unknown) => e);
    assert.ok(err2 instanceof GRPCInvalidArgumentError, String(err2));
    assert.match(String(err2), /duplicate key %zz given/);
    ch.close();
    ch2.close();
  });

  it('no connection: never sent (another member may take it), and counted against the member', async () => {
    const ch = new EtcdTxnChannel([await closedPort()], memberUnreachable);
    const err = await ch.txn(BODY, soon()).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof GRPCUnavailableError, String(err));
    assert.equal(neverSent(err), true);
    assert.equal(memberUnreachable(err), true);
    ch.close();
  });

  it('a member that takes the call and never answers: a deadline, not "never sent" (a guarded write\'s outcome is unknown)', async () => {
    const url = await member(() => undefined);
    const ch = new EtcdTxnChannel([url], memberUnreachable);
    const started = Date.now();
    const err = await ch.txn(BODY, soon(300)).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof GRPCDeadlineExceededError, String(err));
    assert.ok(Date.now() - started < 2000);
    assert.equal(neverSent(err), false);
    ch.close();
  });

  it('a member that accepts TCP but never speaks HTTP/2: a deadline that says nothing was sent', async () => {
    const mute = createNetServer(() => undefined);
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    servers.push(mute);
    const ch = new EtcdTxnChannel([`http://127.0.0.1:${(mute.address() as AddressInfo).port}`], memberUnreachable);
    const err = await ch.txn(BODY, soon(300)).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof GRPCDeadlineExceededError, String(err));
    assert.equal(neverSent(err), true);
    ch.close();
  });

  it('a stream reset or closed before a status, or a broken answer: errors of the call, never a throw', async () => {
    const reset = await member((stream) => stream.close(2));
    const bad = await member((stream) => grpcAnswer(stream, 0, '', Buffer.from([0, 0, 0, 0, 9, 1, 2])));
    const garbage = await member((stream) => grpcAnswer(stream, 0, '', Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x7f])));
    for (const [url, type] of [[reset, GRPCUnavailableError], [bad, GRPCInternalError], [garbage, GRPCInternalError]] as const) {
      const ch = new EtcdTxnChannel([url], memberUnreachable);
      const err = await ch.txn(BODY, soon()).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof type, `${url}: ${String(err)}`);
      assert.equal(neverSent(err), false, 'it was sent');
      ch.close();
    }
  });

  it('members in turn; one failing three calls in a row for being unreachable sits out, then every member out is a broken circuit', async () => {
    let hits = 0;
    const good = await member((stream) => {
      hits++;
      grpcAnswer(stream, 0, '', OK_ANSWER);
    });
    const down = await closedPort();
    const ch = new EtcdTxnChannel([good, down], memberUnreachable);
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(await ch.txn(BODY, soon()).then(() => 'ok', () => 'err'));
    // good, down (1), good, down (2), good, down (3: out for a second), then good every time.
    assert.deepEqual(outcomes, ['ok', 'err', 'ok', 'err', 'ok', 'err', 'ok', 'ok']);
    assert.equal(hits, 5);
    const alone = new EtcdTxnChannel([down], memberUnreachable);
    for (let i = 0; i < 3; i++) await alone.txn(BODY, soon()).catch(() => undefined);
    const err = await alone.txn(BODY, soon()).then(() => undefined, (e: unknown) => e);
    assert.equal(neverSent(err), true, `every member out: ${String(err)}`);
    ch.close();
    alone.close();
  });
});
