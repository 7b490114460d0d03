/** What discovery sources produce: the whole set of healthy instances per service, never deltas. */

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
}

export interface ServiceSet {
  /** Every service the registry lists, with the union of its tags (for tag-derived routes). */
  readonly catalog: ReadonlyMap<string, readonly string[]>;
  /** Healthy instances of the services being followed, sorted by id. */
  readonly instances: ReadonlyMap<string, readonly Instance[]>;
}

export interface SourceStatus {
  /** True while the last contact with the registry succeeded. */
  readonly connected: boolean;
  /** ms since epoch of the last successful answer (0 = never). */
  readonly lastContact: number;
  readonly lastError?: string;
}

/**
 * A discovery source follows a registry and emits its whole view on every change.
 * `follow` decides which services' instances are needed (config routes, --service, tagged services).
 */
export interface Source {
  start(emit: (set: ServiceSet) => void): void;
  status(): SourceStatus;
  close(): Promise<void>;
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

export function sameServiceSet(a: ServiceSet | undefined, b: ServiceSet): boolean {
  if (!a) return false;
  return JSON.stringify([...a.catalog]) === JSON.stringify([...b.catalog]) && JSON.stringify([...a.instances]) === JSON.stringify([...b.instances]);
}
