// What one etcd transaction costs the agent: the same registration-shaped KV.Txn (create-if-absent on the
// service key, two puts) sent through etcd3 (grpc-js) and through src/registry/store/etcd-txn.ts (node:http2,
// hand-encoded protobuf), each in its own child process after a warm-up, alternated, against one real etcd
// member (test/helpers/etcd.ts). Reports the client's CPU per transaction and transactions per second to
// bench/results/etcd-txn.md.
//   BENCH_ETCD_TXNS      transactions per measured run (default 8000)
//   BENCH_ETCD_INFLIGHT  transactions in flight (default 64)
//   BENCH_ETCD_ROUNDS    alternated rounds (default 3)
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CompareResult, CompareTarget, Etcd3 } from 'etcd3';
import { EtcdTxnChannel, encodeTxn } from '../src/registry/store/etcd-txn.js';
import { memberUnreachable } from '../src/registry/store/etcd.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { envNum } from './lib/util.js';

const TXNS = envNum('BENCH_ETCD_TXNS', 8000);
const INFLIGHT = envNum('BENCH_ETCD_INFLIGHT', 64);
const ROUNDS = envNum('BENCH_ETCD_ROUNDS', 3);
const VALUE = Buffer.from(JSON.stringify({ Service: 'web', Tags: ['a', 'b'], Meta: { k: 'v' }, Port: 8080, Address: '10.0.0.1' }));
type Mode = 'etcd3' | 'channel';
interface Result { mode: Mode; txns: number; ms: number; cpuUs: number }

/** Child: `n` transactions with `inflight` at a time after a warm-up of 500; prints one JSON result line. */
async function child(mode: Mode, endpoint: string, prefix: string): Promise<void> {
  const deadline = (): Date => new Date(Date.now() + 5000);
  let send: (i: number) => Promise<unknown>;
  let close: () => void;
  if (mode === 'etcd3') {
    const c = new Etcd3({ hosts: `http://${endpoint}` });
    send = (i) => {
      const key = Buffer.from(`${prefix}/${i}`);
      return c.kv.txn({
        compare: [{ key, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
        success: [{ request_put: { key, value: VALUE } }, { request_put: { key: Buffer.concat([key, Buffer.from('/c')]), value: VALUE } }],
        failure: [],
      }, { deadline: deadline() });
    };
    close = () => c.close();
  } else {
    const ch = new EtcdTxnChannel([`http://${endpoint}`], memberUnreachable);
    send = (i) => {
      const key = Buffer.from(`${prefix}/${i}`);
      return ch.txn(encodeTxn([{ key, target: 1, result: 0, create_revision: 0 }],
        [{ request_put: { key, value: VALUE } }, { request_put: { key: Buffer.concat([key, Buffer.from('/c')]), value: VALUE } }], []), deadline());
    };
    close = () => ch.close();
  }
  const run = async (from: number, n: number): Promise<void> => {
    let next = from;
    await Promise.all(Array.from({ length: INFLIGHT }, async () => {
      while (next < from + n) await send(next++);
    }));
  };
  await run(0, 500);
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  await run(500, TXNS);
  const cpu = process.cpuUsage(t0);
  const ms = performance.now() - w0;
  close();
  console.log(JSON.stringify({ mode, txns: TXNS, ms, cpuUs: cpu.user + cpu.system } satisfies Result));
}

function runChild(mode: Mode, endpoint: string, prefix: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', mode, endpoint, prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop() as string) as Result) : reject(new Error(`${mode} child exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const etcd = await startEtcd(1);
  const results: Result[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of (r % 2 === 0 ? ['etcd3', 'channel'] : ['channel', 'etcd3']) as Mode[]) {
        const res = await runChild(mode, etcd.endpoints[0] as string, `bench/${mode}/${r}`);
        results.push(res);
        console.log(`${mode}: ${res.txns} txns in ${res.ms.toFixed(0)} ms, ${(res.cpuUs / res.txns).toFixed(0)} µs CPU/txn`);
      }
    }
  } finally {
    await etcd.stop();
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const row = (mode: Mode): { cpu: number; rate: number; runs: string } => {
    const rs = results.filter((x) => x.mode === mode);
    return {
      cpu: median(rs.map((x) => x.cpuUs / x.txns)), rate: median(rs.map((x) => (x.txns * 1000) / x.ms)),
      runs: rs.map((x) => `${(x.cpuUs / x.txns).toFixed(0)}`).join(', '),
    };
  };
  const a = row('etcd3');
  const b = row('channel');
  let commit = '?';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    // not a checkout
  }
  const etcdVersion = execFileSync(process.env.SY_ETCD ?? '/usr/bin/etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const md = [
    '# etcd transaction cost on the agent\'s side',
    '',
    `Run ${new Date().toISOString()} at commit ${commit} on ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, ${etcdVersion}; load average ${loadavg().map((x) => x.toFixed(2)).join(' / ')} at the end.`,
    '',
    `One etcd member (test/helpers/etcd.ts). Each run is a child process: 500 transactions of warm-up, then ${TXNS} measured, ${INFLIGHT} in flight; each is a registration's shape (create-if-absent compare on the service key, two puts of a ${VALUE.length}-byte value). CPU is the child's user + system time over the measured part. ${ROUNDS} rounds, the order alternated; medians.`,
    '',
    '| client | CPU µs per txn (median) | runs | txn/s (median) |',
    '|---|---:|---|---:|',
    `| etcd3 (grpc-js) | ${a.cpu.toFixed(0)} | ${a.runs} | ${a.rate.toFixed(0)} |`,
    `| src/registry/store/etcd-txn.ts (node:http2) | ${b.cpu.toFixed(0)} | ${b.runs} | ${b.rate.toFixed(0)} |`,
    '',
    `Ratio: ${(b.cpu / a.cpu).toFixed(2)} × the CPU per transaction, ${(b.rate / a.rate).toFixed(2)} × the rate.`,
    '',
  ].join('\n');
  writeFileSync('bench/results/etcd-txn.md', md);
  console.log(md);
}

if (process.argv[2] === 'child') await child(process.argv[3] as Mode, process.argv[4] as string, process.argv[5] as string);
else await main();
