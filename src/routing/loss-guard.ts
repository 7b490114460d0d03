/**
 * The mass-loss guard: when a new ServiceSet would take more than `maxDropPercent` of a service's
 * instances out of the table within `holdMs`, the lost instances stay in the table for `holdMs`
 * (a registry that empties by accident, consul-template#727, must not empty the balancer).
 * Instances that left because their checks say critical (or maintenance) are not losses: they go
 * at once. Pure bookkeeping over sets; the snapshot store calls it and owns the timer. Told which
 * services changed, it looks at those and at the ones it holds or remembers, not the whole set.
 */
import { PersistentMap } from '../core/persistent-map.js';
import { sameInstances } from '../discovery/types.js';
import type { Instance, ServiceSet } from '../discovery/types.js';

export interface GuardConfig {
  /** Share of a service's instances (percent) that may go within `holdMs`; more is held. 100: off. */
  readonly maxDropPercent: number;
  readonly holdMs: number;
}

export interface HeldInstance {
  readonly service: string;
  readonly id: string;
  readonly address: string;
  /** When it left the registry (ms since the epoch). */
  readonly since: number;
  /** When the guard lets it go unless it comes back or turns critical first. */
  readonly until: number;
}

export type GuardEvent =
  | { readonly kind: 'held'; readonly service: string; readonly ids: readonly string[]; readonly lostPercent: number; readonly before: number; readonly until: number }
  | { readonly kind: 'released'; readonly service: string; readonly ids: readonly string[]; readonly reason: 'expired' | 'critical' | 'returned' | 'recovered' };

interface Held {
  readonly instance: Instance;
  readonly since: number;
  readonly until: number;
}

interface Recent {
  readonly instance: Instance;
  readonly at: number;
}

export class LossGuard {
  readonly #cfg: GuardConfig;
  /** service → id → held instance */
  readonly #held = new Map<string, Map<string, Held>>();
  /** service → id → instances let go (not critical) within the last holdMs: a burst split over several answers still counts as one. */
  readonly #recent = new Map<string, Map<string, Recent>>();
  /** service → when its books next change with time alone (a hold ends, a loss leaves the window). */
  readonly #due = new Map<string, number>();

  constructor(cfg: GuardConfig) {
    this.#cfg = cfg;
  }

  get config(): GuardConfig {
    return this.#cfg;
  }

  /**
   * The set to build the table from: `raw` plus the instances held back. `prev` is the set the
   * current table was built from (held instances included); undefined for the first table.
   * `changed`: the services of `raw` that may differ from `prev` (undefined: any). `touched`: the
   * services whose entries in the result may differ from `raw`'s because of what is held.
   */
  apply(prev: ServiceSet | undefined, raw: ServiceSet, now: number, changed?: ReadonlySet<string>): { set: ServiceSet; events: GuardEvent[]; touched: Set<string> } {
    const events: GuardEvent[] = [];
    const touched = new Set<string>();
    if (prev === undefined || this.#cfg.maxDropPercent >= 100) return { set: raw, events, touched };
    if (changed === undefined) {
      // A service whose instances are as they were, nothing held and nothing due, has nothing to look at (looking
      // anyway would count a replaced instance against its replacement: a redeploy held on the next unrelated change).
      const services = new Set([...prev.instances.keys()].filter((s) => !sameInstances(prev.instances.get(s), raw.instances.get(s))));
      for (const service of this.#held.keys()) services.add(service);
      for (const [service, at] of this.#due) if (at <= now) services.add(service);
      const r = this.#evaluate(services, prev, raw, now, events, touched);
      if (r.instances.length === 0) return { set: raw, events, touched };
      const cat = r.catalog.length > 0 ? PersistentMap.of(raw.catalog).update(r.catalog) : raw.catalog;
      return { set: { ...raw, catalog: cat, instances: PersistentMap.of(raw.instances).update(r.instances) }, events, touched };
    }
    // Told what changed: those services, and the ones whose books have something due. A held service not looked at
    // keeps the entry it had in `prev` (raw's unchanged instances plus the same held ones); the rest is raw's.
    const services = new Set([...changed].filter((s) => prev.instances.has(s) && !sameInstances(prev.instances.get(s), raw.instances.get(s))));
    for (const [service, at] of this.#due) if (at <= now) services.add(service);
    const r = this.#evaluate(services, prev, raw, now, events, touched);
    for (const service of this.#held.keys()) {
      if (services.has(service)) continue;
      const list = prev.instances.get(service);
      if (list !== undefined) r.instances.push([service, list]);
      const tags = prev.catalog.get(service);
      if (!raw.catalog.has(service) && tags !== undefined) r.catalog.push([service, tags]);
    }
    if (r.instances.length === 0) return { set: raw, events, touched };
    const cat = r.catalog.length > 0 ? PersistentMap.of(raw.catalog).update(r.catalog) : raw.catalog;
    return { set: { ...raw, catalog: cat, instances: PersistentMap.of(raw.instances).update(r.instances) }, events, touched };
  }

  /** The held entries of `services` (raw's instances plus the ones kept), and which services' entries the books change. */
  #evaluate(services: Iterable<string>, prev: ServiceSet, raw: ServiceSet, now: number, events: GuardEvent[], touched: Set<string>): { instances: [string, readonly Instance[]][]; catalog: [string, readonly string[]][] } {
    const instances: [string, readonly Instance[]][] = [];
    const catalog: [string, readonly string[]][] = [];
    for (const service of services) {
      const heldBefore = this.#held.has(service);
      const kept = this.#service(service, prev.instances.get(service) ?? [], raw, now, events);
      if (kept.length > 0 || heldBefore) touched.add(service);
      if (kept.length === 0) continue;
      instances.push([service, [...(raw.instances.get(service) ?? []), ...kept].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))]);
      // A service that left the catalog altogether keeps its tags while held: its tag routes stay.
      if (!raw.catalog.has(service)) catalog.push([service, prev.catalog.get(service) ?? [...new Set(kept.flatMap((i) => i.tags))]]);
    }
    return { instances, catalog };
  }

  /** The instances of `service` to keep beyond what `raw` has (the held ones), updating the books. */
  #service(service: string, before: readonly Instance[], raw: ServiceSet, now: number, events: GuardEvent[]): Instance[] {
    const present = new Set((raw.instances.get(service) ?? []).map((i) => i.id));
    const critical = new Set(raw.critical?.get(service) ?? []);
    const held = this.#held.get(service) ?? new Map<string, Held>();
    const recent = this.#recent.get(service) ?? new Map<string, Recent>();
    for (const [id, r] of recent) if (now - r.at >= this.#cfg.holdMs || present.has(id) || critical.has(id)) recent.delete(id);

    // Held instances that come back, turn critical or have served their time leave the books.
    const expired = new Set<string>();
    const release = (reason: 'expired' | 'critical' | 'returned', ids: string[]): void => {
      if (ids.length > 0) events.push({ kind: 'released', service, ids, reason });
    };
    const returned: string[] = [];
    const turnedCritical: string[] = [];
    for (const [id, h] of held) {
      if (present.has(id)) returned.push(id);
      else if (critical.has(id)) turnedCritical.push(id);
      else if (now >= h.until) expired.add(id);
      else continue;
      held.delete(id);
    }
    release('returned', returned);
    release('critical', turnedCritical);
    release('expired', [...expired]);

    // The instances the table had within the window, and those of them lost without a critical check.
    const had = new Map<string, Instance>();
    for (const i of before) if (!expired.has(i.id)) had.set(i.id, i);
    for (const [id, r] of recent) if (!had.has(id)) had.set(id, r.instance);
    const lost: Instance[] = [];
    let excused = 0;
    for (const [id, i] of had) {
      if (critical.has(id)) excused++;
      else if (!present.has(id)) lost.push(i);
    }
    const base = had.size;
    // Net loss: instances replaced by new ones (a redeploy under new IDs) are no loss.
    const lostShare = base === 0 ? 0 : Math.max(0, base - excused - present.size) / base;
    const kept: Instance[] = [];
    if (lost.length > 0 && lostShare * 100 > this.#cfg.maxDropPercent) {
      const fresh: string[] = [];
      let until = 0;
      for (const i of lost) {
        let h = held.get(i.id);
        if (!h) {
          const since = recent.get(i.id)?.at ?? now;
          const { held: _marker, ...instance } = i;
          h = { instance, since, until: since + this.#cfg.holdMs };
          held.set(i.id, h);
          recent.delete(i.id);
          fresh.push(i.id);
        }
        until = Math.max(until, h.until);
        kept.push({ ...h.instance, held: { since: h.since, until: h.until } });
      }
      if (fresh.length > 0) events.push({ kind: 'held', service, ids: fresh.sort(), lostPercent: Math.round(lostShare * 1000) / 10, before: base, until });
    } else {
      // Under the limit (again): the losses go, and count against the window.
      const recovered = [...held.keys()];
      for (const [id, h] of held) recent.set(id, { instance: h.instance, at: h.since });
      held.clear();
      if (recovered.length > 0) events.push({ kind: 'released', service, ids: recovered, reason: 'recovered' });
      for (const i of lost) if (!recent.has(i.id)) recent.set(i.id, { instance: i, at: now });
    }
    this.#store(this.#held, service, held);
    this.#store(this.#recent, service, recent);
    // When this service's books next need a look without a change to it: a hold ends or a loss leaves the window.
    let due = Infinity;
    for (const h of held.values()) due = Math.min(due, h.until);
    for (const r of recent.values()) due = Math.min(due, r.at + this.#cfg.holdMs);
    if (due === Infinity) this.#due.delete(service);
    else this.#due.set(service, due);
    return kept;
  }

  #store<V>(m: Map<string, Map<string, V>>, service: string, v: Map<string, V>): void {
    if (v.size === 0) m.delete(service);
    else m.set(service, v);
  }

  /** When the next held instance is due to go (ms since the epoch), if any is held. */
  nextRelease(): number | undefined {
    let next: number | undefined;
    for (const m of this.#held.values()) for (const h of m.values()) if (next === undefined || h.until < next) next = h.until;
    return next;
  }

  /** Everything held now, by service then id. */
  held(): HeldInstance[] {
    const out: HeldInstance[] = [];
    for (const [service, m] of [...this.#held].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const [id, h] of [...m].sort(([a], [b]) => (a < b ? -1 : 1))) {
        out.push({ service, id, address: `${h.instance.address}:${h.instance.port}`, since: h.since, until: h.until });
      }
    }
    return out;
  }
}
