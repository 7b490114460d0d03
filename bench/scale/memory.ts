// In-process memory budget of the registry's read and write sides: loads N instances through Registry.catalogRegister
// into an embedded store (sync none) and a CatalogView, then reads heap deltas after full GCs: the store alone (entries,
// two key indexes), the view alone (records, per-name and per-node indexes), and parked blocking-query waiters.
// Needs --expose-gc. Usage: node --expose-gc --import tsx bench/scale/memory.ts [instances] [waiters]
// The catalog has the bench's shape at any size (20 instances per service, 100 per node), so that per-service and
// per-node costs are spread as they are at a million.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../src/registry/store/embedded.js';
import { CatalogView } from '../../src/registry/server/catalog-view.js';
import { Registry } from '../../src/registry/server/registry.js';
import { loadBody } from './shape.js';
import type { Shape } from './shape.js';

export interface MemoryBudget {
  instances: number;
  /** Keys in the store after the load (nodes + services + checks). */
  keys: number;
  storeBytesPerInstance: number;
  viewBytesPerInstance: number;
  totalBytesPerInstance: number;
  waiters: number;
  bytesPerWaiter: number;
  loadSeconds: number;
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with --expose-gc');
  for (let i = 0; i < 3; i++) g();
};
/** Heap after full collections, once pending callbacks have run (they may still hold what was just dropped). */
const heap = async (): Promise<number> => {
  await new Promise((r) => setTimeout(r, 100));
  gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().external;
};

export async function memoryBudget(instances: number, waiters: number): Promise<MemoryBudget> {
  const dir = mkdtempSync(join(tmpdir(), 'sy-mem-'));
  const silent = { warn: () => undefined, info: () => undefined };
  const shape: Shape = { instances, services: Math.max(1, Math.round(instances / 20)), perNode: 100 };
  try {
    const base = await heap();
    const store = new EmbeddedStore({ dir, sync: 'none', logger: silent, snapshotEveryBytes: 2 ** 40 });
    const opened = await store.open();
    const t0 = performance.now();
    // The view and registry live only in this function's scope, so dropping the subscription frees them.
    let unsubscribe: (() => void) | undefined = await (async () => {
      const view = new CatalogView(opened);
      const unsub = store.subscribe((c) => view.apply(c));
      const registry = new Registry({ store, view, node: { name: 'mem', id: 'id', address: '127.0.0.1', datacenter: 'dc1' } });
      const BATCH = 256;
      for (let i = 0; i < instances; i += BATCH) {
        const jobs: Promise<void>[] = [];
        for (let j = i; j < Math.min(instances, i + BATCH); j++) jobs.push(registry.catalogRegister(JSON.parse(loadBody(j, shape)) as never));
        await Promise.all(jobs);
      }
      return unsub;
    })();
    const loadSeconds = (performance.now() - t0) / 1000;
    const full = await heap();
    const keys = store.stats().keys;
    unsubscribe();
    // The unsubscribe function holds the listener, and the listener the view.
    unsubscribe = undefined;
    const storeOnly = await heap();
    // Parked waiters on distinct services of a fresh view (no HTTP: the view's own cost per parked query).
    const empty = new CatalogView({ revision: 0, entries: [] });
    const before = await heap();
    const cancel = { cancelled: false, onCancel: () => () => undefined };
    const parked: Promise<unknown>[] = [];
    for (let i = 0; i < waiters; i++) parked.push(empty.wait({ topics: [`svc:svc-${i % 50_000}`] }, 600_000, cancel));
    const withWaiters = await heap();
    await store.close();
    return {
      instances,
      keys,
      storeBytesPerInstance: (storeOnly - base) / instances,
      viewBytesPerInstance: (full - storeOnly) / instances,
      totalBytesPerInstance: (full - base) / instances,
      waiters,
      bytesPerWaiter: waiters > 0 ? (withWaiters - before) / waiters : NaN,
      loadSeconds,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 100_000);
  const w = Number(process.argv[3] ?? 10_000);
  console.log(JSON.stringify(await memoryBudget(n, w)));
  process.exit(0);
}
