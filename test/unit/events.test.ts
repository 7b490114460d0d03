// User events on a real embedded store: every buffer following the store decides for itself, the
// clock resumes after a restart, a re-delivered write is not a second event, and a value written
// under the event key by something else is skipped with a reason instead of throwing in a listener.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import pino from 'pino';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import type { StoreChange, StoreEntry } from '../../src/registry/store/types.js';
import { EVENT_KEY, EventBuffer } from '../../src/registry/server/events.js';
import type { FireInput } from '../../src/registry/server/events.js';
import { HttpError } from '../../src/core/errors.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Service { readonly ID: string; readonly Tags: readonly string[] }

function buffer(store: EmbeddedStore, initial: readonly StoreEntry[], node: string, services: Service[] = [], unreadable: string[] = []): EventBuffer {
  const b = new EventBuffer({
    node, initial, localServices: () => services, commit: async (req) => void (await store.txn(req)),
    onUnreadable: (r) => unreadable.push(r),
  });
  store.subscribe((c) => b.apply(c));
  return b;
}

const input = (name: string, filters: Partial<FireInput> = {}): FireInput => ({ name, payload: Buffer.alloc(0), node: '', service: '', tag: '', ...filters });

async function open(dir: string): Promise<{ store: EmbeddedStore; entries: readonly StoreEntry[] }> {
  const store = new EmbeddedStore({ dir, logger: pino({ level: 'silent' }) });
  const { entries } = await store.open();
  return { store, entries };
}

it('each buffer on the store keeps what its own node and services match; one clock for all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-events-'));
  dirs.push(dir);
  const { store, entries } = await open(dir);
  try {
    const web = buffer(store, entries, 'node-web', [{ ID: 'web-1', Tags: ['blue'] }]);
    const db = buffer(store, entries, 'node-db', [{ ID: 'db-1', Tags: [] }]);
    const all = await web.fire(input('all'));
    await db.fire(input('to-db-node', { node: '^node-db$' }));
    await web.fire(input('to-web-service', { service: '^web' }));
    await db.fire(input('to-blue', { service: 'web', tag: '^blue$' }));
    await db.fire(input('to-green', { service: 'web', tag: '^green$' }));
    const names = (b: EventBuffer): string[] => b.list('').map((e) => e.Name);
    assert.deepEqual(names(web), ['all', 'to-web-service', 'to-blue']);
    assert.deepEqual(names(db), ['all', 'to-db-node']);
    assert.deepEqual(web.list('all').map((e) => [e.ID, e.LTime]), db.list('all').map((e) => [e.ID, e.LTime]));
    assert.equal(all.LTime, 0, "the fire answer's LTime is 0, as Consul's");
    assert.deepEqual(web.list('').map((e) => e.LTime), [1, 3, 4]);
    assert.deepEqual(db.list('').map((e) => e.LTime), [1, 2]);
  } finally {
    await store.close();
  }
});

it('refused input writes nothing; the clock resumes after a restart with an empty ring', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-events-'));
  dirs.push(dir);
  let { store, entries } = await open(dir);
  const b = buffer(store, entries, 'n');
  await b.fire(input('one'));
  await b.fire(input('two'));
  const before = store.revision();
  for (const [bad, status, message] of [
    [input(''), 400, 'Missing name'],
    [input('x', { tag: 'a' }), 400, 'Cannot provide tag filter without service filter'],
    [input('x', { service: '(' }), 400, /^Invalid service filter: /],
    [input('x', { service: 'a', tag: '[' }), 400, /^Invalid tag filter: /],
    [input('x'.repeat(300), { payload: Buffer.alloc(300) }), 413, /exceeds configured limit of 512 bytes/],
  ] as [FireInput, number, string | RegExp][]) {
    await assert.rejects(b.fire(bad), (err: unknown) => err instanceof HttpError && err.status === status && (typeof message === 'string' ? err.message === message : message.test(err.message)));
  }
  assert.equal(store.revision(), before, 'no refused fire reached the store');
  await store.close();
  ({ store, entries } = await open(dir));
  try {
    const again = buffer(store, entries, 'n');
    assert.deepEqual(again.list(''), [], 'the ring is memory, as a Consul agent\'s');
    await again.fire(input('three'));
    assert.deepEqual(again.list('').map((e) => [e.Name, e.LTime]), [['three', 3]]);
  } finally {
    await store.close();
  }
});

it('a write seen twice is one event; an unreadable value under the key is skipped and reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-events-'));
  dirs.push(dir);
  const { store, entries } = await open(dir);
  try {
    const unreadable: string[] = [];
    const b = buffer(store, entries, 'n', [], unreadable);
    let last: StoreChange | undefined;
    store.subscribe((c) => (last = c));
    await b.fire(input('once'));
    b.apply(last!); // what an etcd resync hands listeners again
    assert.deepEqual(b.list('').map((e) => e.Name), ['once']);
    for (const value of ['not json', '[]', JSON.stringify({ ID: 'x', Name: 'n', Payload: null, NodeFilter: '', ServiceFilter: '', TagFilter: '' }),
      JSON.stringify({ ID: '00000000-0000-4000-8000-000000000000', Name: 'n', Payload: 5, NodeFilter: '', ServiceFilter: '', TagFilter: '' })]) {
      await store.txn({ success: [{ type: 'put', key: EVENT_KEY, value }] });
    }
    assert.deepEqual(unreadable.map((r) => r.replace(/revision \d+/, 'revision N')), [
      'ev/last at revision N: not JSON', 'ev/last at revision N: not an object', 'ev/last at revision N: ID is not a UUID',
      'ev/last at revision N: Payload is neither null nor a string',
    ]);
    // A filter this agent cannot compile (not one the API would have stored) matches nothing.
    await store.txn({ success: [{ type: 'put', key: EVENT_KEY, value: JSON.stringify({ ID: '00000000-0000-4000-8000-000000000001', Name: 'odd', Payload: null, NodeFilter: '(', ServiceFilter: '', TagFilter: '' }) }] });
    await b.fire(input('after'));
    assert.deepEqual(b.list('').map((e) => [e.Name, e.LTime]), [['once', 1], ['after', 7]]);
  } finally {
    await store.close();
  }
});
