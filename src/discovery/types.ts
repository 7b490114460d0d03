/** What discovery sources produce: the whole set of healthy instances per service, with a hint of which services changed. */

export interface Instance {
  /** Unique across the registry: `${node}/${serviceID}`. */
  readonly id: string;
  readonly service: string;
  readonly node: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly weights: { readonly passing: number; readonly warning: number };
  /** Critical and maintenance instances are left out by the sources. */
  readonly status: 'passing' | 'warning';
  /**
   * Set by the mass-loss guard (never by a source) on an instance it keeps in the table after it
   * left the registry: since when, and until when (ms since the epoch).
   */
  readonly held?: { readonly since: number; readonly until: number };
}

export interface ServiceSet {
  /** Every service the registry lists, with the union of its tags (for tag-derived routes). */
  readonly catalog: ReadonlyMap<string, readonly string[]>;
  /** Healthy instances of the services being followed, sorted by id. */
  readonly instances: ReadonlyMap<string, readonly Instance[]>;
  /**
   * Ids of followed instances the registry still lists but leaves out of `instances` because a
   * check says critical (or maintenance): left out on purpose, not gone (the mass-loss guard lets
   * them go at once). Absent: the source does not tell.
   */
  readonly critical?: ReadonlyMap<string, readonly string[]>;
  /** The registry change this set carries (change latency); absent on a source's first set and a state file's. */
  readonly change?: ChangeStamp;
  /**
   * The services whose catalog entry, instances or critical ids may differ from the set the same
   * producer handed on before this one (a hint that lets a change cost what it touched); absent:
   * any service may have changed. A producer that sets it hands on maps it never mutates
   * (PersistentMap), so the previous set stays what it was.
   */
  readonly changed?: ReadonlySet<string>;
}

/** When the change behind a ServiceSet was committed. */
export interface ChangeStamp {
  /** Unix ms: when the registry applied the change (clock 'registry'), or when its answer arrived here (clock 'arrival'). */
  readonly committedAt: number;
  /**
   * 'registry': our agent said when (X-Switchyard-Index-Time, or the in-process catalog);
   * 'arrival': the registry does not say (Consul), so the answer's arrival stands in for it.
   */
  readonly clock: 'registry' | 'arrival';
}

export interface SourceStatus {
  /** True while the last contact with the registry succeeded. */
  readonly connected: boolean;
  /** ms since epoch of the last successful answer (0 = never). */
  readonly lastContact: number;
  readonly lastError?: string;
  /** True while some watch has heard nothing for longer than its blocking wait plus a margin. */
  readonly stale?: boolean;
  /** The silent watches (e.g. `health/service/web`) with when each last heard from the registry (ISO time). */
  readonly staleWatches?: readonly { readonly watch: string; readonly lastHeard: string }[];
  /** How long a watch may stay silent before it counts as stale (ms). */
  readonly staleAfterMs?: number;
  /** Where change times come from (see ChangeStamp.clock); absent until the first answer. */
  readonly changeClock?: ChangeStamp['clock'];
}

/**
 * A discovery source follows a registry and emits its whole view on every change.
 * `follow` decides which services' instances are needed (config routes, --service, tagged services).
 */
export interface Source {
  start(emit: (set: ServiceSet) => void): void;
  status(): SourceStatus;
  close(): Promise<void>;
  /**
   * Its follow predicate now answers differently (the routes were reloaded): watch what it names now,
   * drop the rest. Resolves once the services it newly follows have had their first answers and a set
   * with them has been emitted (or could not be: a registry that does not answer for one).
   */
  refollow?(): Promise<void>;
}

export type FollowPredicate = (service: string, tags: readonly string[]) => boolean;

/** Consul's aggregation for one health entry: maintenance/critical drop the instance. */
export function instanceStatus(checks: readonly { CheckID: string; Status: string }[]): 'passing' | 'warning' | undefined {
  let warning = false;
  for (const c of checks) {
    if (c.CheckID === '_node_maintenance' || c.CheckID.startsWith('_service_maintenance:')) return undefined;
    if (c.Status === 'critical') return undefined;
    if (c.Status === 'warning') warning = true;
  }
  return warning ? 'warning' : 'passing';
}

/** Whether two instance lists of one service would route alike (same order, same fields). */
export function sameInstances(a: readonly Instance[] | undefined, b: readonly Instance[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (!sameInstance(a[k] as Instance, b[k] as Instance)) return false;
  return true;
}

function sameInstance(a: Instance, b: Instance): boolean {
  return a === b || (a.id === b.id && a.service === b.service && a.node === b.node && a.address === b.address && a.port === b.port && a.status === b.status
    && a.weights.passing === b.weights.passing && a.weights.warning === b.weights.warning && sameStrings(a.tags, b.tags) && sameRecord(a.meta, b.meta)
    && a.held?.since === b.held?.since && a.held?.until === b.held?.until);
}

export function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}
