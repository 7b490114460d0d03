// Several accepts per event-loop turn (src/cli/wiring/accept-batch.ts), on real sockets: a burst of
// connections queued while the loop was busy is taken in a few turns instead of one turn each, every
// connection reaches the original server's listener as that server would have made it, closing frees
// the port, and a helper that cannot run leaves the listener working with a warning.
import { strict as assert } from 'node:assert';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { it } from 'node:test';
import pino from 'pino';
import { addAcceptors, closeAcceptors } from '../../src/cli/wiring/accept-batch.js';
import { waitFor } from '../helpers/agent.js';

const silent = pino({ level: 'silent' });

function listening(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => resolve((server.address() as { port: number }).port));
  });
}

/** Descriptors of this process that are the socket listening on `port` (from /proc: inode of the LISTEN entry). */
function listenFds(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const line = readFileSync('/proc/net/tcp', 'utf8').split('\n').find((l) => l.trim().split(/\s+/)[1]?.endsWith(hex) && l.trim().split(/\s+/)[3] === '0A');
  const inode = line?.trim().split(/\s+/)[9];
  if (!inode) return 0;
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

/**
 * Connects `n` clients at once (all queued before the loop turns again) and counts the loop turns
 * until the server has accepted them all.
 */
async function turnsToAccept(server: Server, port: number, n: number): Promise<{ turns: number; clients: Socket[] }> {
  let accepted = 0;
  const onConn = (): void => void accepted++;
  server.on('connection', onConn);
  const clients: Socket[] = [];
  for (let i = 0; i < n; i++) clients.push(connect({ host: '127.0.0.1', port }));
  // The connects run from process.nextTick; the handshakes complete in the kernel on loopback, so
  // all n are in the accept queue before the first poll. setImmediate runs once per turn.
  let turns = 0;
  await new Promise<void>((resolve) => {
    const turn = (): void => {
      turns++;
      if (accepted >= n || turns > 10 * n) resolve();
      else setImmediate(turn);
    };
    setImmediate(turn);
  });
  server.off('connection', onConn);
  assert.equal(accepted, n, `all ${n} connections accepted`);
  return { turns, clients };
}

it('a burst queued in one turn is accepted in about n/batch turns instead of n', async () => {
  const n = 64;
  const one = createServer();
  const port1 = await listening(one);
  const single = await turnsToAccept(one, port1, n);

  const many = createServer({ pauseOnConnect: true, noDelay: true });
  const port = await listening(many);
  const added = await addAcceptors([many], 16, { logger: silent });
  assert.equal(added.length, 15);
  assert.equal(listenFds(port), 16, 'sixteen descriptors of one listening socket');
  const sockets: Socket[] = [];
  many.on('connection', (s: Socket) => sockets.push(s));
  const batched = await turnsToAccept(many, port, n);
  assert.ok(single.turns >= n / 2, `libuv alone: about one accept per turn (${single.turns} turns for ${n})`);
  assert.ok(batched.turns <= n / 8, `with 16 descriptors: ${batched.turns} turns for ${n} (one descriptor took ${single.turns})`);
  // Connections from the added descriptors are made as the original server makes them: paused, no delay.
  assert.ok(sockets.every((s) => s.isPaused()), 'pauseOnConnect carried over');
  for (const c of [...single.clients, ...batched.clients]) c.destroy();
  for (const s of sockets) s.destroy();
  one.close();

  // Closing the original and the added servers releases the port.
  await Promise.all([closeAcceptors(added), new Promise<void>((resolve) => many.close(() => resolve()))]);
  assert.equal(listenFds(port), 0);
  const again = createServer();
  assert.equal(await listening(again, port), port, 'the port is free again');
  again.close();
});

it('data flows on connections taken by an added descriptor; the helper process is gone afterwards', async () => {
  const server = createServer((s) => s.end('hello\n'));
  const port = await listening(server);
  const added = await addAcceptors([server], 4, { logger: silent });
  try {
    const answers = await Promise.all(Array.from({ length: 32 }, () => new Promise<string>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port });
      let got = '';
      c.on('data', (d) => (got += d.toString()));
      c.on('end', () => resolve(got));
      c.on('error', reject);
    })));
    assert.deepEqual(new Set(answers), new Set(['hello\n']));
    const children = (): string => readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim();
    await waitFor(() => children() === '', () => `the helper to exit (children: ${children()})`);
  } finally {
    await closeAcceptors(added);
    server.close();
  }
});

it('without its helper the listener keeps one descriptor and says why; batch 1 and round-robin workers are left alone', async () => {
  const server = createServer((s) => s.end('ok\n'));
  const port = await listening(server);
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  const added = await addAcceptors([server], 8, { logger, execPath: '/nonexistent/node' });
  assert.deepEqual(added, []);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /could not add accept descriptors \(accept-batch\)/);
  assert.match(warnings[0]!, /ENOENT/);
  assert.equal(listenFds(port), 1);
  const answer = await new Promise<string>((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    let got = '';
    c.on('data', (d) => (got += d.toString()));
    c.on('end', () => resolve(got));
  });
  assert.equal(answer, 'ok\n');
  assert.deepEqual(await addAcceptors([server], 1, { logger }), [], 'batch 1: nothing added, no helper');
  // A cluster worker under round-robin scheduling holds a stand-in handle without a descriptor.
  const standIn = createServer();
  (standIn as unknown as { _handle: object })._handle = { close() {} };
  assert.deepEqual(await addAcceptors([standIn], 8, { logger }), []);
  assert.equal(warnings.length, 1, 'neither case warns');
  server.close();
});
