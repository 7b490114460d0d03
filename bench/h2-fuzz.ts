// Random HTTP/2 frame sequences against the balancer's HTTP/2 listener (src/proxy/h2/plane.ts): each
// connection sends the preface and up to 30 frames drawn from every frame type, odd flags, bad lengths,
// reused and even stream ids, pseudo-header mistakes, cut at random points. Meanwhile a well-behaved
// client asks for an answer every 50 connections. What must hold: the process lives, the good client is
// never refused, and once the fuzzing connections are gone no session stays behind for longer than
// http2.keepalive-time + keepalive-timeout. The report goes to bench/results/h2-fuzz.md.
//   BENCH_H2_FUZZ_CONNS   fuzzing connections (default 20 000)
//   BENCH_H2_FUZZ_SEED    first seed (default: random; the report names it)
import { writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { versions } from 'node:process';
import { FRAME, PREFACE, frame, headerBlock, settings } from '../test/helpers/h2-raw.js';
import { startBackend, startStaticLb } from '../test/helpers/lb.js';
import { envNum } from './lib/util.js';

const CONNS = envNum('BENCH_H2_FUZZ_CONNS', 20_000);
const SEED = process.env.BENCH_H2_FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.BENCH_H2_FUZZ_SEED);
const KEEPALIVE = { time: 1000, timeout: 2000 };

let seed = SEED;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const ri = (n: number): number => Math.floor(rnd() * n);
const pick = <T>(a: readonly T[]): T => a[ri(a.length)] as T;
const u32 = (v: number): Buffer => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(v >>> 0);
  return p;
};

function randomHeaders(stream: number): Buffer {
  const f: [string, string][] = [];
  const base: [string, string][] = [
    [':method', pick(['GET', 'POST', 'CONNECT', 'HEAD', 'get', ''])], [':scheme', pick(['http', 'https', 'ftp', ''])],
    [':path', pick(['/', '/x?y', '*', '', '//a/../b', '/%2e%2e/'])], [':authority', pick(['a', '127.0.0.1', '', 'a b'])],
  ];
  for (const b of base) if (rnd() < 0.9) f.push(b);
  if (rnd() < 0.3) {
    f.push([
      pick(['te', 'connection', 'content-length', 'transfer-encoding', 'host', 'upgrade', ':status', ':protocol', 'X-Upper', 'trailer', 'grpc-timeout', 'content-type']),
      pick(['trailers', 'close', '5', '-1', 'chunked', 'h2c', '1S', 'application/grpc', 'x'.repeat(ri(3) * 5000)]),
    ]);
  }
  if (rnd() < 0.3) f.reverse();
  const flags = (rnd() < 0.7 ? 4 : 0) | (rnd() < 0.5 ? 1 : 0) | (rnd() < 0.1 ? 0x20 : 0);
  const block = headerBlock(f);
  const payload = (flags & 0x20) !== 0 ? Buffer.concat([Buffer.from([0, 0, 0, ri(4) * 2 + 1, 16]), block]) : block;
  return frame(FRAME.HEADERS, flags, stream, payload);
}

function randomFrame(open: number[]): Buffer {
  const s = rnd() < 0.8 && open.length > 0 ? pick(open) : ri(4) * 2 + (rnd() < 0.7 ? 1 : 0);
  switch (ri(11)) {
    case 0:
    case 1: {
      const id = (open.at(-1) ?? -1) + 2;
      open.push(id);
      return randomHeaders(id);
    }
    case 2: return frame(FRAME.DATA, ri(2) | (rnd() < 0.1 ? 8 : 0), s, rnd() < 0.1 ? Buffer.from([200, 1, 2]) : Buffer.alloc(ri(3) * 300, 97));
    case 3: return frame(FRAME.RST_STREAM, 0, s, u32(ri(14)));
    case 4: return frame(FRAME.WINDOW_UPDATE, 0, pick([0, s]), u32(pick([0, 1, 65535, 0x7fffffff, 0x80000000])));
    case 5: return frame(FRAME.PRIORITY, 0, s, Buffer.concat([u32(pick([0, s, s + 2, 0x80000000 + s])), Buffer.from([ri(256)])]));
    case 6: return settings([[pick([1, 2, 3, 4, 5, 6, 8, 9, 99]), pick([0, 1, 16384, 65535, 0x7fffffff, 0xffffffff])]]);
    case 7: return frame(FRAME.CONTINUATION, rnd() < 0.5 ? 4 : 0, s, headerBlock([['x-c', 'v']]));
    case 8: return frame(FRAME.PING, ri(2), 0, Buffer.alloc(pick([8, 8, 7])));
    case 9: return frame(pick([10, 11, 12, 99, 255]), ri(256), s, Buffer.alloc(ri(20)));
    default: return frame(FRAME.GOAWAY, 0, 0, Buffer.concat([u32(s), u32(ri(14))]));
  }
}

/** One fuzzing connection: preface, random frames written in random pieces, then gone. */
function fuzzOne(port: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.on('data', () => undefined);
    sock.on('close', () => resolve());
    sock.on('connect', () => {
      const open: number[] = [];
      const parts = [PREFACE, settings()];
      for (let k = 1 + ri(30); k > 0; k--) parts.push(randomFrame(open));
      const all = Buffer.concat(parts);
      let o = 0;
      const step = (): void => {
        if (o >= all.length || sock.destroyed) {
          setTimeout(() => sock.destroy(), ri(3) * 20);
          return;
        }
        const len = 1 + ri(200);
        sock.write(all.subarray(o, o + len));
        o += len;
        if (rnd() < 0.1) setTimeout(step, 1);
        else step();
      };
      step();
    });
  });
}

const backend = await startBackend('fuzz');
const lb = await startStaticLb({ service: 'web', http2: { 'keepalive-time': `${KEEPALIVE.time}ms`, 'keepalive-timeout': `${KEEPALIVE.timeout}ms` } }, { web: [{ port: backend.port }] });
const port = lb.address.port;
const metricsText = async (): Promise<string> => (await fetch(`${lb.adminUrl}/metrics`)).text();
const sessions = async (): Promise<number> => Number(/^switchyard_lb_h2_sessions (\d+)/m.exec(await metricsText())?.[1] ?? NaN);

const good = h2connect(`http://127.0.0.1:${port}`);
good.on('error', () => undefined);
const goodAsk = (): Promise<boolean> => new Promise((resolve) => {
  const r = good.request({ ':path': '/good' });
  let status = 0;
  r.on('response', (h) => {
    status = Number(h[':status']);
  });
  r.resume();
  r.on('end', () => resolve(status === 200));
  r.on('error', () => resolve(false));
  setTimeout(() => resolve(false), 5000).unref();
});

const t0 = performance.now();
let goodAsked = 0;
let goodFailed = 0;
let peak = 0;
for (let i = 0; i < CONNS; i++) {
  await fuzzOne(port);
  if (i % 50 === 49) {
    goodAsked++;
    if (!(await goodAsk())) goodFailed++;
    peak = Math.max(peak, await sessions());
  }
  if (i % 1000 === 999) process.stdout.write(`${i + 1} connections, ${goodFailed} good-client failures\n`);
}
const fuzzSecs = (performance.now() - t0) / 1000;
const leftAt1s = await new Promise<number>((r) => setTimeout(() => void sessions().then(r), 1000));
const bound = KEEPALIVE.time + KEEPALIVE.timeout;
const leftAtBound = await new Promise<number>((r) => setTimeout(() => void sessions().then(r), bound + 2000));
const refused = [...(await metricsText()).matchAll(/^switchyard_lb_h2_refused_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => `${m[1]}: ${m[2]}`).join(', ');
good.close();
await lb.close();
await backend.close();

// The good client's own session stays open: 1 is none left behind.
const ok = goodFailed === 0 && leftAtBound <= 1;
const report = `# Fuzzing the HTTP/2 listener with random frames

\`npm run bench:h2-fuzz\` (bench/h2-fuzz.ts): ${CONNS.toLocaleString('en')} connections in ${fuzzSecs.toFixed(0)} s,
BENCH_H2_FUZZ_SEED=${SEED}, Node ${versions.node}, nghttp2 ${versions.nghttp2}; keepalive-time ${KEEPALIVE.time} ms,
keepalive-timeout ${KEEPALIVE.timeout} ms.

| what | result |
|---|---|
| the balancer process | alive (it runs in this process: a crash would have ended the run) |
| well-behaved client: answers asked / refused | ${goodAsked} / ${goodFailed} |
| HTTP/2 sessions open, peak seen | ${peak} |
| sessions open 1 s after the last fuzzing connection | ${leftAt1s} |
| sessions open ${((bound + 2000) / 1000).toFixed(0)} s after (keep-alive bound + 2 s; 1 is the good client's) | ${leftAtBound} |
| refused, by reason | ${refused || 'none'} |
| verdict | ${ok ? 'PASS' : 'FAIL'} |

Sessions still open 1 s after their clients left are the ones nghttp2 ended for a protocol error while
Node stopped reading them (docs/http2.md, "Limits and abuse"); the keep-alive PING finds them.
`;
writeFileSync(new URL('./results/h2-fuzz.md', import.meta.url), report);
process.stdout.write(report);
if (!ok) process.exitCode = 1;
