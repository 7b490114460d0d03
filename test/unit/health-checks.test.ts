// Tests for the one-shot HTTP/TCP check runners and Consul-style output truncation, against real loopback servers.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import { Socket, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { runHttpCheck } from '../../src/health/http-check.js';
import fc from 'fast-check';
import { OutputTail, truncateOutput } from '../../src/health/output.js';
import { runTcpCheck } from '../../src/health/tcp-check.js';
import { waitFor } from '../helpers/agent.js';

// Generous enough for a loaded CI box, small enough to prove the timeout is what ended the check.
const SLACK_MS = 400;

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: string;
  servername?: string | false | null;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function listen(server: HttpServer | HttpsServer | NetServer, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: HttpServer | HttpsServer | NetServer): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Serves `handler` and records every request it saw, in order. */
function recordingServer(handler: Handler, server: HttpServer | HttpsServer = createHttpServer()): { server: typeof server; seen: Seen[] } {
  const seen: Seen[] = [];
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const tlsSocket = req.socket as Partial<TLSSocket>;
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
        ...(tlsSocket.servername !== undefined ? { servername: tlsSocket.servername } : {}),
      });
      handler(req, res, body);
    });
  });
  return { server, seen };
}

/** A loopback port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  const port = await listen(s);
  await closeServer(s);
  return port;
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await p;
  return { value, ms: performance.now() - start };
}

describe('runHttpCheck', () => {
  let port = 0;
  let base = '';
  const { server, seen } = recordingServer((req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (path === '/ok') {
      res.end('all good');
    } else if (path === '/nocontent') {
      res.writeHead(204).end();
    } else if (path === '/busy') {
      res.writeHead(429).end('slow down');
    } else if (path === '/boom') {
      res.writeHead(500).end('exploded');
    } else if (path === '/custom-reason') {
      res.writeHead(503, 'Draining Now').end('bye');
    } else if (path === '/echo') {
      res.end(`${req.method} ${body}`);
    } else if (path === '/big') {
      res.writeHead(200, { 'Content-Length': String(1024 * 1024) });
      res.end(Buffer.alloc(1024 * 1024, 'a'));
    } else if (path === '/endless') {
      // Writes for as long as the client reads: only a client that stops reading ends this early.
      const chunk = Buffer.alloc(64 * 1024, 'b');
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    } else if (path === '/utf8') {
      res.end('ééé'); // 6 bytes: a 5-byte cap must not split the third character
    } else if (path === '/gzip') {
      const gz = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
      res.writeHead(200, gz ? { 'Content-Encoding': 'gzip' } : {});
      res.end(gz ? gzipSync('unzipped text') : 'plain text');
    } else if (path === '/hang') {
      // Never answers: the client's timeout alone must end the check.
    } else if (path === '/trickle') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('x');
      const t = setInterval(() => {
        if (res.destroyed) clearInterval(t);
        else res.write('x');
      }, 50);
      res.on('close', () => clearInterval(t));
    } else if (path.startsWith('/chain/')) {
      const n = Number(path.slice('/chain/'.length));
      if (n === 0) res.end('chain end');
      else res.writeHead(302, { Location: `/chain/${n - 1}` }).end();
    } else if (path === '/see-other') {
      res.writeHead(303, { Location: '/echo' }).end();
    } else if (path === '/temporary') {
      res.writeHead(307, { Location: '/echo' }).end();
    } else if (path === '/found-no-location') {
      res.writeHead(302).end('nowhere to go');
    } else {
      res.writeHead(404).end('not here');
    }
  });

  before(async () => {
    port = await listen(server);
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await closeServer(server);
  });

  const lastSeen = (): Seen => {
    const s = seen.at(-1);
    assert.ok(s, 'the server saw no request');
    return s;
  };

  it('reports 200 as passing with Consul output text', async () => {
    const r = await runHttpCheck({ url: `${base}/ok`, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'passing', output: `HTTP GET ${base}/ok: 200 OK Output: all good` });
  });

  it('reports 204 as passing with an empty body', async () => {
    const r = await runHttpCheck({ url: `${base}/nocontent`, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'passing', output: `HTTP GET ${base}/nocontent: 204 No Content Output: ` });
  });

  it('reports 429 as warning', async () => {
    const r = await runHttpCheck({ url: `${base}/busy`, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'warning', output: `HTTP GET ${base}/busy: 429 Too Many Requests Output: slow down` });
  });

  it('reports 500 and 404 as critical', async () => {
    assert.deepEqual(await runHttpCheck({ url: `${base}/boom`, timeoutMs: 2000 }), {
      status: 'critical',
      output: `HTTP GET ${base}/boom: 500 Internal Server Error Output: exploded`,
    });
    assert.deepEqual(await runHttpCheck({ url: `${base}/missing`, timeoutMs: 2000 }), {
      status: 'critical',
      output: `HTTP GET ${base}/missing: 404 Not Found Output: not here`,
    });
  });

  it("uses the server's own reason phrase, as Go's resp.Status does", async () => {
    const r = await runHttpCheck({ url: `${base}/custom-reason`, timeoutMs: 2000 });
    assert.equal(r.output, `HTTP GET ${base}/custom-reason: 503 Draining Now Output: bye`);
  });

  it('sends the default User-Agent and Accept, no keep-alive, and no body', async () => {
    await runHttpCheck({ url: `${base}/ok`, timeoutMs: 2000 });
    const s = lastSeen();
    assert.equal(s.method, 'GET');
    assert.equal(s.headers['user-agent'], 'Consul Health Check');
    assert.equal(s.headers.accept, 'text/plain, text/*, */*');
    assert.equal(s.headers.connection, 'close');
    assert.equal(s.headers.host, `127.0.0.1:${port}`);
    assert.equal(s.body, '');
  });

  it('sends method, body and user headers; user headers override defaults and Host sets the host', async () => {
    const r = await runHttpCheck({
      url: `${base}/echo`,
      method: 'PUT',
      body: '{"ping":true}',
      header: { 'User-Agent': ['probe/1'], 'X-Multi': ['a', 'b'], Host: ['svc.example'], 'Content-Type': ['application/json'] },
      timeoutMs: 2000,
    });
    assert.deepEqual(r, { status: 'passing', output: `HTTP PUT ${base}/echo: 200 OK Output: PUT {"ping":true}` });
    const s = lastSeen();
    assert.equal(s.method, 'PUT');
    assert.equal(s.body, '{"ping":true}');
    assert.equal(s.headers['user-agent'], 'probe/1');
    assert.equal(s.headers.accept, 'text/plain, text/*, */*');
    assert.equal(s.headers.host, 'svc.example');
    assert.equal(s.headers['content-type'], 'application/json');
    const multi = s.rawHeaders.filter((_, i) => i % 2 === 1 && s.rawHeaders[i - 1]?.toLowerCase() === 'x-multi');
    assert.deepEqual(multi, ['a', 'b']);
    assert.equal(s.rawHeaders.filter((h) => h.toLowerCase() === 'user-agent').length, 1);
  });

  it('frames a GET body with Content-Length so the server reads it', async () => {
    const r = await runHttpCheck({ url: `${base}/echo`, body: 'hello', timeoutMs: 2000 });
    assert.equal(r.output, `HTTP GET ${base}/echo: 200 OK Output: GET hello`);
    assert.equal(lastSeen().headers['content-length'], '5');
  });

  it('asks for gzip and decodes it like Go, unless the caller picked an encoding', async () => {
    const r = await runHttpCheck({ url: `${base}/gzip`, timeoutMs: 2000 });
    assert.equal(r.output, `HTTP GET ${base}/gzip: 200 OK Output: unzipped text`);
    const own = await runHttpCheck({ url: `${base}/gzip`, header: { 'Accept-Encoding': ['identity'] }, timeoutMs: 2000 });
    assert.equal(own.output, `HTTP GET ${base}/gzip: 200 OK Output: plain text`);
  });

  it('reports HEAD with an empty output', async () => {
    const r = await runHttpCheck({ url: `${base}/ok`, method: 'HEAD', timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'passing', output: `HTTP HEAD ${base}/ok: 200 OK Output: ` });
  });

  it('keeps only the first 4096 bytes of a 1 MB body and finishes quickly', async () => {
    const { value: r, ms } = await timed(runHttpCheck({ url: `${base}/big`, timeoutMs: 5000 }));
    const prefix = `HTTP GET ${base}/big: 200 OK Output: `;
    assert.equal(r.status, 'passing');
    assert.ok(r.output.startsWith(prefix));
    assert.equal(r.output.length, prefix.length + 4096);
    assert.equal(r.output.slice(prefix.length), 'a'.repeat(4096));
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('stops reading an endless body at outputMaxSize instead of waiting for the timeout', async () => {
    const { value: r, ms } = await timed(runHttpCheck({ url: `${base}/endless`, timeoutMs: 5000, outputMaxSize: 10 }));
    assert.deepEqual(r, { status: 'passing', output: `HTTP GET ${base}/endless: 200 OK Output: bbbbbbbbbb` });
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('does not split a UTF-8 character at the output cap', async () => {
    const r = await runHttpCheck({ url: `${base}/utf8`, timeoutMs: 2000, outputMaxSize: 5 });
    assert.equal(r.output, `HTTP GET ${base}/utf8: 200 OK Output: éé`);
  });

  it("reports a refused connection with Go's text", async () => {
    const closed = await closedPort();
    const url = `http://127.0.0.1:${closed}/health`;
    const r = await runHttpCheck({ url, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'critical', output: `Get "${url}": dial tcp 127.0.0.1:${closed}: connect: connection refused` });
    const post = await runHttpCheck({ url, method: 'POST', timeoutMs: 2000 });
    assert.equal(post.output, `Post "${url}": dial tcp 127.0.0.1:${closed}: connect: connection refused`);
  });

  it('fails a server that never answers within the timeout', async () => {
    const { value: r, ms } = await timed(runHttpCheck({ url: `${base}/hang`, timeoutMs: 300 }));
    assert.deepEqual(r, {
      status: 'critical',
      output: `Get "${base}/hang": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    });
    assert.ok(ms >= 290 && ms < 300 + SLACK_MS, `took ${ms} ms`);
  });

  it('fails a raw TCP peer that accepts and stays silent within the timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createNetServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    const silentPort = await listen(silent);
    try {
      const { value: r, ms } = await timed(runHttpCheck({ url: `http://127.0.0.1:${silentPort}/`, timeoutMs: 300 }));
      assert.equal(r.status, 'critical');
      assert.match(r.output, /Client\.Timeout exceeded while awaiting headers/);
      assert.ok(ms < 300 + SLACK_MS, `took ${ms} ms`);
    } finally {
      for (const s of sockets) s.destroy();
      await closeServer(silent);
    }
  });

  it('settles by the timeout when the body trickles forever, judging by the status code as Consul does', async () => {
    const { value: r, ms } = await timed(runHttpCheck({ url: `${base}/trickle`, timeoutMs: 400 }));
    assert.ok(ms < 400 + SLACK_MS, `took ${ms} ms`);
    assert.equal(r.status, 'passing');
    assert.match(r.output, new RegExp(`^HTTP GET ${base}/trickle: 200 OK Output: x+$`));
  });

  it('ends with a critical result when the caller aborts', async () => {
    const ac = new AbortController();
    const hangs = seen.filter((x) => x.url === '/hang').length;
    const pending = timed(runHttpCheck({ url: `${base}/hang`, timeoutMs: 5000 }, ac.signal));
    // Aborted while the request is at the server (awaiting headers), as a check stopped mid-run is.
    await waitFor(() => seen.filter((x) => x.url === '/hang').length > hangs, 'the check\'s request at the server', 5000, 5);
    ac.abort();
    const { value: r, ms } = await pending;
    assert.deepEqual(r, { status: 'critical', output: `Get "${base}/hang": context canceled` });
    assert.ok(ms < 1000, `took ${ms} ms`);
    const pre = await runHttpCheck({ url: `${base}/ok`, timeoutMs: 5000 }, AbortSignal.abort());
    assert.equal(pre.status, 'critical');
  });

  it('follows up to 9 redirects, like Go stopping after 10 requests', async () => {
    const r = await runHttpCheck({ url: `${base}/chain/9`, timeoutMs: 3000 });
    assert.deepEqual(r, { status: 'passing', output: `HTTP GET ${base}/chain/9: 200 OK Output: chain end` });
    assert.equal(lastSeen().headers.referer, `${base}/chain/1`);
    const tooMany = await runHttpCheck({ url: `${base}/chain/10`, timeoutMs: 3000 });
    assert.deepEqual(tooMany, { status: 'critical', output: 'Get "/chain/0": stopped after 10 redirects' });
  });

  it('returns the redirect itself when redirects are disabled', async () => {
    const before = seen.length;
    const r = await runHttpCheck({ url: `${base}/chain/1`, timeoutMs: 2000, disableRedirects: true });
    assert.deepEqual(r, { status: 'critical', output: `HTTP GET ${base}/chain/1: 302 Found Output: ` });
    assert.equal(seen.length, before + 1);
  });

  it('treats a 3xx without Location as the final response', async () => {
    const r = await runHttpCheck({ url: `${base}/found-no-location`, timeoutMs: 2000 });
    assert.equal(r.output, `HTTP GET ${base}/found-no-location: 302 Found Output: nowhere to go`);
  });

  it("switches to GET on 303 but keeps method and body on 307, as Go's client does", async () => {
    const seeOther = await runHttpCheck({ url: `${base}/see-other`, method: 'POST', body: 'data', timeoutMs: 2000 });
    assert.deepEqual(seeOther, { status: 'passing', output: `HTTP POST ${base}/see-other: 200 OK Output: GET ` });
    const temporary = await runHttpCheck({ url: `${base}/temporary`, method: 'POST', body: 'data', timeoutMs: 2000 });
    assert.deepEqual(temporary, { status: 'passing', output: `HTTP POST ${base}/temporary: 200 OK Output: POST data` });
  });

  it('explains an https check answered in plain http the way Go does', async () => {
    const url = `https://127.0.0.1:${port}/ok`;
    const r = await runHttpCheck({ url, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'critical', output: `Get "${url}": http: server gave HTTP response to HTTPS client` });
  });

  it('turns malformed definitions into critical results instead of throwing', async () => {
    assert.deepEqual(await runHttpCheck({ url: 'ftp://127.0.0.1/x', timeoutMs: 500 }), {
      status: 'critical',
      output: 'Get "ftp://127.0.0.1/x": unsupported protocol scheme "ftp"',
    });
    assert.deepEqual(await runHttpCheck({ url: '127.0.0.1/x', timeoutMs: 500 }), {
      status: 'critical',
      output: 'Get "127.0.0.1/x": unsupported protocol scheme ""',
    });
    assert.deepEqual(await runHttpCheck({ url: `${base}/ok`, method: 'BAD METHOD', timeoutMs: 500 }), {
      status: 'critical',
      output: 'net/http: invalid method "BAD METHOD"',
    });
    const badHeader = await runHttpCheck({ url: `${base}/ok`, header: { 'X-Bad': ['a\nb'] }, timeoutMs: 500 });
    assert.deepEqual(badHeader, { status: 'critical', output: `Get "${base}/ok": net/http: invalid header field value for "X-Bad"` });
  });
});

describe('runHttpCheck over https', () => {
  let dir = '';
  let port = 0;
  let skipReason: string | undefined;
  let tls: ReturnType<typeof recordingServer> | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sy-health-tls-'));
    const key = join(dir, 'k');
    const cert = join(dir, 'c');
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      // CI images are expected to ship openssl, so there a missing binary is a failure, not a skip.
      if (!missing || process.env.CI === 'true') throw err;
      skipReason = 'openssl is not installed';
      return;
    }
    tls = recordingServer((_req, res) => res.end('secure ok'), createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }));
    port = await listen(tls.server);
  });
  after(async () => {
    if (tls) await closeServer(tls.server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes with tlsSkipVerify against a self-signed certificate', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    const url = `https://127.0.0.1:${port}/health`;
    const r = await runHttpCheck({ url, tlsSkipVerify: true, timeoutMs: 3000 });
    assert.deepEqual(r, { status: 'passing', output: `HTTP GET ${url}: 200 OK Output: secure ok` });
    // Go sends no SNI for an IP-literal URL.
    assert.equal(tls?.seen.at(-1)?.servername, false);
  });

  it('sends tlsServerName as SNI rather than the Host header', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    const url = `https://127.0.0.1:${port}/health`;
    const r = await runHttpCheck({ url, tlsSkipVerify: true, tlsServerName: 'localhost', header: { Host: ['other.example'] }, timeoutMs: 3000 });
    assert.equal(r.status, 'passing');
    assert.equal(tls?.seen.at(-1)?.servername, 'localhost');
    assert.equal(tls?.seen.at(-1)?.headers.host, 'other.example');
  });

  it('fails certificate verification with Go-like text when tlsSkipVerify is off', async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    const url = `https://127.0.0.1:${port}/health`;
    const r = await runHttpCheck({ url, timeoutMs: 3000 });
    assert.deepEqual(r, {
      status: 'critical',
      output: `Get "${url}": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
    });
  });
});

describe('runTcpCheck', () => {
  const accepted: Socket[] = [];
  const server = createNetServer((s) => {
    accepted.push(s);
    s.on('error', () => undefined);
  });
  let port = 0;
  before(async () => {
    port = await listen(server);
  });
  after(async () => {
    for (const s of accepted) s.destroy();
    await closeServer(server);
  });

  it('passes when the connect succeeds, and closes the socket at once', async () => {
    const addr = `127.0.0.1:${port}`;
    const r = await runTcpCheck({ address: addr, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'passing', output: `TCP connect ${addr}: Success` });
    const peer = accepted.at(-1);
    assert.ok(peer);
    // The peer sees the close without sending anything, so the check did not linger on the connection.
    const closedSoon = await new Promise<boolean>((resolve) => {
      if (peer.readableEnded || peer.closed) return resolve(true);
      const t = setTimeout(() => resolve(false), 1000);
      peer.once('end', () => {
        clearTimeout(t);
        resolve(true);
      });
      peer.resume();
    });
    assert.ok(closedSoon, 'the check left its connection open');
  });

  it('accepts a bracketed IPv6 literal', async (t) => {
    const v6 = createNetServer((s) => s.destroy());
    let v6Port: number;
    try {
      v6Port = await listen(v6, '::1');
    } catch {
      return t.skip('no IPv6 loopback here');
    }
    try {
      const r = await runTcpCheck({ address: `[::1]:${v6Port}`, timeoutMs: 2000 });
      assert.deepEqual(r, { status: 'passing', output: `TCP connect [::1]:${v6Port}: Success` });
    } finally {
      await closeServer(v6);
    }
  });

  it("reports a refused connection with Go's text", async () => {
    const closed = await closedPort();
    const r = await runTcpCheck({ address: `127.0.0.1:${closed}`, timeoutMs: 2000 });
    assert.deepEqual(r, { status: 'critical', output: `dial tcp 127.0.0.1:${closed}: connect: connection refused` });
  });

  it('reports an i/o timeout when the connect never completes', async () => {
    // A socket that is never told to connect stands in for a SYN into the void, without leaving loopback.
    let dialled: unknown;
    const never = (opts: unknown): Socket => {
      dialled = opts;
      return new Socket();
    };
    const { value: r, ms } = await timed(runTcpCheck({ address: '127.0.0.1:9', timeoutMs: 200 }, undefined, never));
    assert.deepEqual(r, { status: 'critical', output: 'dial tcp 127.0.0.1:9: i/o timeout' });
    assert.deepEqual(dialled, { host: '127.0.0.1', port: 9 });
    assert.ok(ms >= 190 && ms < 200 + SLACK_MS, `took ${ms} ms`);
  });

  it('reports cancellation when the caller aborts', async () => {
    const r = await runTcpCheck({ address: `127.0.0.1:${port}`, timeoutMs: 2000 }, AbortSignal.abort());
    assert.deepEqual(r, { status: 'critical', output: `dial tcp 127.0.0.1:${port}: operation was canceled` });
    const ac = new AbortController();
    const pending = runTcpCheck({ address: '127.0.0.1:9', timeoutMs: 5000 }, ac.signal, () => new Socket());
    ac.abort();
    assert.deepEqual(await pending, { status: 'critical', output: 'dial tcp 127.0.0.1:9: operation was canceled' });
  });

  it("rejects malformed addresses with Go's wording", async () => {
    assert.deepEqual(await runTcpCheck({ address: '127.0.0.1', timeoutMs: 500 }), {
      status: 'critical',
      output: 'dial tcp: address 127.0.0.1: missing port in address',
    });
    assert.deepEqual(await runTcpCheck({ address: '::1:80', timeoutMs: 500 }), {
      status: 'critical',
      output: 'dial tcp: address ::1:80: too many colons in address',
    });
    assert.deepEqual(await runTcpCheck({ address: '127.0.0.1:99999', timeoutMs: 500 }), {
      status: 'critical',
      output: 'dial tcp: address 99999: invalid port',
    });
  });
});

describe('truncateOutput', () => {
  it('leaves output within the limit untouched', () => {
    assert.equal(truncateOutput('short'), 'short');
    assert.equal(truncateOutput('x'.repeat(4096)), 'x'.repeat(4096));
    assert.equal(truncateOutput('abcde', 5), 'abcde');
    assert.equal(truncateOutput('', 0), '');
  });

  it('cuts to the first max bytes and says how much was captured', () => {
    assert.equal(truncateOutput('x'.repeat(5000)), `${'x'.repeat(4096)} ... (captured 4096 of 5000 bytes)`);
    assert.equal(truncateOutput('abcdef', 3), 'abc ... (captured 3 of 6 bytes)');
  });

  it('counts UTF-8 bytes, not UTF-16 units', () => {
    // Three characters but six bytes: over a five-byte limit although .length is 3.
    assert.equal(truncateOutput('ééé', 5), 'éé ... (captured 5 of 6 bytes)');
    assert.equal(truncateOutput('ééé', 6), 'ééé');
  });

  it('never splits a multibyte character or a surrogate pair', () => {
    assert.equal(truncateOutput('€€', 4), '€ ... (captured 4 of 6 bytes)');
    assert.equal(truncateOutput('😀😀', 5), '😀 ... (captured 5 of 8 bytes)');
    assert.equal(truncateOutput('😀😀', 3), ' ... (captured 3 of 8 bytes)');
    assert.equal(truncateOutput('a😀', 4), 'a ... (captured 4 of 5 bytes)');
  });
});

describe('OutputTail (a script check\'s output: its last OutputMaxSize bytes)', () => {
  it('keeps exactly the last bytes over any split of the writes, and counts them all', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }), fc.integer({ min: 1, max: 64 }), (chunks, cap) => {
      // Printable ASCII, so the text is the bytes: the UTF-8 cut at the start is checked below.
      const ascii = chunks.map((c) => Buffer.from(c.map((b) => 0x20 + (b % 90))));
      const all = Buffer.concat(ascii);
      const tail = new OutputTail(cap);
      for (const c of ascii) tail.write(c);
      const kept = all.subarray(Math.max(0, all.length - cap)).toString('latin1');
      assert.equal(tail.total, all.length);
      assert.equal(tail.text(), all.length > cap ? `Captured ${cap} of ${all.length} bytes\n...\n${kept}` : kept);
    }), { numRuns: 500 });
  });

  it('leaves out a character cut at the start instead of showing U+FFFD', () => {
    const tail = new OutputTail(5);
    tail.write(Buffer.from('ab😀cd'));
    assert.equal(tail.text(), 'Captured 5 of 8 bytes\n...\ncd');
    const whole = new OutputTail(6);
    whole.write(Buffer.from('ab😀cd'));
    assert.equal(whole.text(), 'Captured 6 of 8 bytes\n...\n😀cd');
  });
});
