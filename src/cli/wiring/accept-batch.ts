/**
 * Several accepts per event-loop turn on one listening socket (nginx's multi_accept).
 *
 * libuv accepts ONE connection each time its poll phase finds a listening socket readable
 * (libuv#3696, in Node 20's libuv 1.46) and counts on the next turn for the rest. A balancer busy
 * with established connections turns every few milliseconds, so a burst of K new connections waits
 * up to K turns in the kernel's accept queue. Measured on the benchmark's machine: 256 clients
 * connecting at once to a loaded balancer were accepted over 400–900 ms (the first ~180 within
 * 30 ms, then one every ~5 ms), while no request took more than 25 ms inside the balancer; that
 * wait was the whole of the p99.9 and max latency wrk reported at c256 (bench/results/lb.md).
 *
 * Node has no dup(2), but a handle sent over an IPC channel arrives as a new descriptor for the
 * same socket. A helper process sends each handle straight back, which gives this process N
 * descriptors of one listening socket, each with its own poll watcher: a turn accepts up to N. The
 * helper handles raw handles only and never listens, so it cannot take a connection; it exits when
 * done. If it cannot run, the listener keeps its one descriptor and a warning says so.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import type { Logger } from 'pino';

/** What node:net keeps on a server and its handle, which the public types leave out. */
interface ServerInternals {
  _handle?: { fd?: number } | null;
  pauseOnConnect?: boolean;
  noDelay?: boolean;
}

/** Runs in the helper: every handle received goes straight back, then the helper's copy is closed. */
const MIRROR = "process.on('message',(m,h)=>{if(!h)return;process.send(m,h,()=>h.close())});process.on('disconnect',()=>process.exit(0));";

export interface AcceptBatchOptions {
  readonly logger: Logger;
  /** How long the helper may take for all of it (it answers in milliseconds). */
  readonly timeoutMs?: number;
  /** The Node binary that runs the helper (this one by default). */
  readonly execPath?: string;
}

/**
 * Gives each server `batch - 1` more descriptors of its listening socket, each a server whose
 * connections go to the original's 'connection' listeners (with its pauseOnConnect and noDelay).
 * Returns them; the caller closes them with the original. A server with no descriptor of its own
 * (a cluster worker under round-robin scheduling) is left alone.
 */
export async function addAcceptors(servers: readonly Server[], batch: number, opts: AcceptBatchOptions): Promise<Server[]> {
  const fd = (s: Server): number => (s as unknown as ServerInternals)._handle?.fd ?? -1;
  const eligible = servers.filter((s) => fd(s) >= 0);
  if (batch <= 1 || eligible.length === 0) return [];
  const added: Server[] = [];
  const timeoutMs = opts.timeoutMs ?? 5000;
  let helper: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** The one handle being waited for; a handle that comes back after we gave up is closed (it would hold the port). */
  let waiting: ((handle: object) => void) | undefined;
  try {
    // No NODE_OPTIONS (a test's --import tsx would slow the start ten-fold) and nothing inherited.
    const h = (helper = spawn(opts.execPath ?? process.execPath, ['-e', MIRROR], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: {}, serialization: 'json' }));
    h.on('message', (_m: unknown, back: { close?: () => void } | undefined) => {
      const w = waiting;
      waiting = undefined;
      if (back && w) w(back);
      else back?.close?.();
    });
    const gone = new Promise<never>((_, reject) => {
      // 'on', not 'once': a failed spawn is followed by a failed send, and an unheard 'error' would throw.
      h.on('error', (err) => reject(err));
      h.once('exit', (code, signal) => reject(new Error(`the helper exited (${signal ?? `code ${String(code)}`})`)));
      timer = setTimeout(() => reject(new Error(`the helper did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    gone.catch(() => undefined); // it also ends that way once the work is done
    const mirrored = (handle: object): Promise<object> => Promise.race([gone, new Promise<object>((resolve) => {
      waiting = resolve;
      h.send('dup', handle as never);
    })]);
    for (const server of eligible) {
      const s = server as unknown as ServerInternals;
      for (let i = 1; i < batch; i++) {
        const handle = await mirrored(s._handle as object);
        const extra = createServer({ pauseOnConnect: s.pauseOnConnect === true, noDelay: s.noDelay === true }, (socket) => server.emit('connection', socket));
        // An accept error (descriptors exhausted) must not throw here: logged, and the next turn tries again.
        extra.on('error', (err) => opts.logger.warn({ err: err.message }, 'accept failed on an added descriptor'));
        extra.listen(handle as never);
        added.push(extra);
      }
    }
    opts.logger.debug({ listeners: eligible.length, batch }, 'accepting up to `batch` connections per event-loop turn');
  } catch (err) {
    opts.logger.warn({ err: err instanceof Error ? err.message : String(err), descriptorsAdded: added.length },
      'could not add accept descriptors (accept-batch): new connections are accepted one per event-loop turn on the listeners without them');
  } finally {
    waiting = undefined;
    clearTimeout(timer);
    try {
      if (helper?.connected) helper.disconnect();
    } catch {
      // Already gone: nothing to release.
    }
  }
  return added;
}

/** Closes the added servers; resolves once their connections have closed too. */
export function closeAcceptors(added: readonly Server[]): Promise<void> {
  return Promise.all(added.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))).then(() => undefined);
}
