/**
 * Which upstream ids and addresses the current table names, counted over its groups and kept per
 * swap from the groups that joined and left (RoutingSnapshot.changes): after a change to one
 * service, finding what left the table costs that service's groups, not the table.
 */
import type { TableChanges } from './snapshot.js';

export interface Gone {
  /** Upstream ids no group of the table names any more. */
  readonly ids: readonly string[];
  /** `address:port` keys no upstream of the table has any more (their connection pools can drain). */
  readonly addresses: readonly string[];
}

export class LiveUpstreams {
  /** id → how many groups of the table list it. */
  readonly #ids = new Map<string, number>();
  readonly #addresses = new Map<string, number>();

  /** Distinct upstream ids in the table. */
  get size(): number {
    return this.#ids.size;
  }

  has(id: string): boolean {
    return this.#ids.has(id);
  }

  /** Counts a swap in; returns what no group names any more. */
  swap(changes: TableChanges): Gone {
    for (const g of changes.added) for (const u of g.upstreams) {
      bump(this.#ids, u.id, 1);
      bump(this.#addresses, `${u.address}:${u.port}`, 1);
    }
    const maybeIds: string[] = [];
    const maybeAddresses: string[] = [];
    for (const g of changes.removed) for (const u of g.upstreams) {
      if (bump(this.#ids, u.id, -1) === 0) maybeIds.push(u.id);
      const a = `${u.address}:${u.port}`;
      if (bump(this.#addresses, a, -1) === 0) maybeAddresses.push(a);
    }
    return { ids: [...new Set(maybeIds)], addresses: [...new Set(maybeAddresses)] };
  }
}

function bump(m: Map<string, number>, k: string, by: number): number {
  const n = (m.get(k) ?? 0) + by;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
  return n;
}
