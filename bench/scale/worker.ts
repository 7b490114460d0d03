// A load process of bench:scale, forked by the harness with an IPC channel: registers instances (load), parks blocking
// watchers (watch) or writes churn at a fixed rate (churn), over raw keep-alive HTTP/1.1 connections to 127.0.0.1.
// Raw records (wakes, writes) go to a binary file the harness names, so that millions of them do not cross IPC as JSON.
// Every loop is bounded: load by its instance range, watch and churn by the harness's stop message and a deadline.
import { writeFileSync } from 'node:fs';
import { Http1Conn, nowMs } from './http1.js';
import { churnBody, loadBody } from './shape.js';
import type { Shape } from './shape.js';

export type WorkerCommand =
  | { type: 'load'; port: number; from: number; to: number; conns: number; shape: Shape; path: 'catalog'; untilS?: number }
  | { type: 'watch'; port: number; firstId: number; watchers: { service: string; serviceIdx: number; count: number }[]; gzip: boolean; waitS: number; out: string; deadlineS: number }
  | { type: 'churn'; port: number; rate: number; seconds: number; conns: number; shape: Shape; plan: number[]; out: string }
  | { type: 'stop' };

export type WorkerReport =
  | { type: 'progress'; done: number }
  | { type: 'loaded'; count: number; errors: number; firstError: string; latMs: { p50: number; p99: number; max: number }; cpuS: number }
  | { type: 'parked'; count: number; errors: number; firstError: string }
  | { type: 'watched'; records: number; errors: number; firstError: string; cpuS: number }
  | { type: 'churned'; records: number; late: number; errors: number; firstError: string; cpuS: number };

const send = (m: WorkerReport): void => void process.send?.(m);
const cpuS = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function quantiles(xs: Float64Array, n: number): { p50: number; p99: number; max: number } {
  const s = xs.subarray(0, n).sort();
  const q = (p: number): number => (n === 0 ? NaN : (s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] as number));
  return { p50: q(0.5), p99: q(0.99), max: n === 0 ? NaN : (s[n - 1] as number) };
}

async function load(c: Extract<WorkerCommand, { type: 'load' }>): Promise<void> {
  let next = c.from;
  let done = 0;
  let errors = 0;
  let firstError = '';
  const lat = new Float64Array(c.to - c.from);
  const conns = Array.from({ length: c.conns }, () => new Http1Conn(c.port));
  await Promise.all(conns.map((x) => x.ready));
  const timer = setInterval(() => send({ type: 'progress', done }), 1000);
  const start = cpuS();
  const end = c.untilS === undefined ? Infinity : Date.now() + c.untilS * 1000;
  await Promise.all(conns.map(async (conn) => {
    while (next < c.to && Date.now() < end) {
      const i = next++;
      const t = nowMs();
      try {
        const r = await conn.request('PUT', '/v1/catalog/register', loadBody(i, c.shape));
        if (r.status !== 200) {
          errors++;
          firstError ||= `instance ${i}: HTTP ${r.status}`;
        }
        lat[done++] = r.at - t;
      } catch (err) {
        errors++;
        firstError ||= `instance ${i}: ${(err as Error).message}`;
        return;
      }
    }
  }));
  clearInterval(timer);
  for (const x of conns) x.close();
  send({ type: 'loaded', count: done, errors, firstError, latMs: quantiles(lat, done), cpuS: cpuS() - start });
}

/** Records per answer: watcher, serviceIdx, requested index (0: the first read), answered index, arrival (Unix ms), X-Switchyard-Index-Time, status. */
export const WAKE_FIELDS = 7;

let stopping = false;
let onStop: () => void = () => undefined;
const stopped = new Promise<void>((r) => (onStop = r));

async function watch(c: Extract<WorkerCommand, { type: 'watch' }>): Promise<void> {
  const total = c.watchers.reduce((s, w) => s + w.count, 0);
  let recs = new Float64Array(Math.max(1024, total * 8 * WAKE_FIELDS));
  let n = 0;
  const record = (id: number, svc: number, asked: number, got: number, at: number, t: number, status: number): void => {
    if (n + WAKE_FIELDS > recs.length) {
      const bigger = new Float64Array(recs.length * 2);
      bigger.set(recs);
      recs = bigger;
    }
    recs.set([id, svc, asked, got, at, t, status], n);
    n += WAKE_FIELDS;
  };
  let errors = 0;
  let firstError = '';
  let parked = 0;
  const start = cpuS();
  const conns: Http1Conn[] = [];
  const loops: Promise<void>[] = [];
  let nextId = c.firstId;
  for (const w of c.watchers) {
    for (let k = 0; k < w.count; k++) {
      const id = nextId++;
      const conn = new Http1Conn(c.port);
      conns.push(conn);
      const base = `/v1/health/service/${encodeURIComponent(w.service)}`;
      loops.push((async () => {
        try {
          await conn.ready;
          const first = await conn.request('GET', base, undefined, { gzip: c.gzip });
          let index = first.index;
          record(id, w.serviceIdx, 0, first.index, first.at, first.indexTime, first.status);
          parked++;
          while (!stopping) {
            const r = await conn.request('GET', `${base}?index=${index}&wait=${c.waitS}s`, undefined, { gzip: c.gzip });
            if (stopping) break;
            record(id, w.serviceIdx, index, r.index, r.at, r.indexTime, r.status);
            if (r.index > 0) index = r.index;
          }
        } catch (err) {
          if (stopping) return;
          errors++;
          firstError ||= (err as Error).message;
        }
      })());
    }
  }
  // Tell the harness once every watcher has its first answer and has sent its blocking request (bounded wait).
  const deadline = Date.now() + c.deadlineS * 1000;
  while (parked + errors < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  send({ type: 'parked', count: parked, errors, firstError });
  await Promise.race([stopped, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())))]);
  stopping = true;
  for (const x of conns) x.close();
  await Promise.allSettled(loops);
  writeFileSync(c.out, Buffer.from(recs.buffer, 0, n * 8));
  send({ type: 'watched', records: n / WAKE_FIELDS, errors, firstError, cpuS: cpuS() - start });
}

/** Records per write: instance, serviceIdx, send (Unix ms), ack (Unix ms), status, commit index (X-Consul-Index of the txn answer). */
export const WRITE_FIELDS = 6;

/**
 * Open loop: write k is due at start + k / rate whether or not earlier ones have answered, on the first idle
 * connection; when every connection is busy the write is sent as soon as one frees (and counted late).
 */
async function churn(c: Extract<WorkerCommand, { type: 'churn' }>): Promise<void> {
  const total = Math.min(c.plan.length, Math.round(c.rate * c.seconds));
  const recs = new Float64Array(total * WRITE_FIELDS);
  const conns = Array.from({ length: c.conns }, () => new Http1Conn(c.port));
  await Promise.all(conns.map((x) => x.ready));
  const idle = [...conns];
  const waiting: ((conn: Http1Conn) => void)[] = [];
  const release = (conn: Http1Conn): void => {
    const w = waiting.shift();
    if (w) w(conn);
    else idle.push(conn);
  };
  let errors = 0;
  let late = 0;
  let firstError = '';
  let written = 0;
  const start = cpuS();
  const t0 = nowMs() + 20;
  const inflight: Promise<void>[] = [];
  for (let k = 0; k < total && !stopping; k++) {
    const due = t0 + (k * 1000) / c.rate;
    const wait = due - nowMs();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait - 0.5));
    while (nowMs() < due) {
      // spin out the last fraction of a millisecond (bounded by `due`)
    }
    let conn = idle.pop();
    if (!conn) {
      late++;
      conn = await new Promise<Http1Conn>((r) => waiting.push(r));
    }
    const inst = c.plan[k] as number;
    const svc = inst % c.shape.services;
    const port = 20_000 + (k % 40_000);
    const sentAt = nowMs();
    const x = conn;
    inflight.push(x.request('PUT', '/v1/txn', churnBody(inst, c.shape, port)).then((r) => {
      recs.set([inst, svc, sentAt, r.at, r.status, r.index], k * WRITE_FIELDS);
      if (r.status !== 200) {
        errors++;
        firstError ||= `write ${k}: HTTP ${r.status}`;
      }
      written = Math.max(written, k + 1);
      release(x);
    }, (err: Error) => {
      errors++;
      firstError ||= `write ${k}: ${err.message}`;
      recs.set([inst, svc, sentAt, NaN, 0, -1], k * WRITE_FIELDS);
      written = Math.max(written, k + 1);
    }));
  }
  await Promise.allSettled(inflight);
  for (const x of conns) x.close();
  writeFileSync(c.out, Buffer.from(recs.buffer, 0, written * WRITE_FIELDS * 8));
  send({ type: 'churned', records: written, late, errors, firstError, cpuS: cpuS() - start });
}

process.on('message', (m: WorkerCommand) => {
  const fail = (err: unknown): void => {
    process.stderr.write(`worker ${m.type} failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  };
  if (m.type === 'load') load(m).catch(fail);
  else if (m.type === 'watch') watch(m).catch(fail);
  else if (m.type === 'churn') churn(m).catch(fail);
  else {
    stopping = true;
    onStop();
  }
});
process.on('disconnect', () => process.exit(0));
