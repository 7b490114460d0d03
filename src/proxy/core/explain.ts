/**
 * "Why did this request go there": what a request asking for `X-Switchyard-Explain: 1` (from an
 * allowed address) gets back in an `x-switchyard-explain` response header — route, table version,
 * the subset a split drew, every candidate with its state, the algorithm's pick and each attempt —
 * and what the access log records at debug level.
 */
import type { Upstream, UpstreamStates } from '../../balancer/index.js';
import type { CompiledRoute, UpstreamGroup } from '../../routing/snapshot.js';

export interface ExplainCandidate {
  readonly address: string;
  readonly state: 'healthy' | 'ejected' | 'draining';
  readonly weight: number;
  readonly slowStart?: number;
  readonly inFlight: number;
}

export class ExplainTrace {
  readonly route: string;
  readonly table: number;
  subset: string | undefined;
  strategy = '';
  candidates: ExplainCandidate[] = [];
  readonly attempts: { address: string; outcome: string }[] = [];

  constructor(route: CompiledRoute, table: number) {
    this.route = route.spec.origin;
    this.table = table;
  }

  /** What the group looked like when this request first picked from it. */
  sawGroup(g: UpstreamGroup, states: UpstreamStates, split: boolean): void {
    if (this.candidates.length > 0 && this.subset === g.key) return;
    if (split) this.subset = g.key;
    this.strategy = g.strategy.name;
    const now = states.now();
    this.candidates = g.upstreams.map((u) => {
      const s = states.peek(u.id);
      const ramp = g.strategy.rampFactor?.(u.id) ?? 1;
      return {
        address: `${u.address}:${u.port}`,
        state: s?.draining ? 'draining' : s && s.ejectedUntil > now ? 'ejected' : 'healthy',
        weight: u.weight,
        ...(ramp < 1 ? { slowStart: Math.round(ramp * 100) / 100 } : {}),
        inFlight: s?.inFlight ?? 0,
      };
    });
  }

  picked(u: Upstream): void {
    this.attempts.push({ address: `${u.address}:${u.port}`, outcome: 'sent' });
  }

  /** The last attempt ended this way (a status, an error code) and was retried or answered. */
  outcome(what: string): void {
    const last = this.attempts[this.attempts.length - 1];
    if (last !== undefined) last.outcome = what;
  }

  /** One header value: `key=value` pairs separated by "; ", control characters removed. */
  header(): string {
    const parts = [
      `route=${this.route}`, `table=${this.table}`, ...(this.subset ? [`subset=${this.subset}`] : []), `strategy=${this.strategy}`,
      `candidates=${this.candidates.map((c) => `${c.address}(${c.state} w=${c.weight}${c.slowStart !== undefined ? ` ramp=${c.slowStart}` : ''} inflight=${c.inFlight})`).join(',')}`,
      `attempts=${this.attempts.map((a) => `${a.address}:${a.outcome}`).join(',')}`,
    ];
    // eslint-disable-next-line no-control-regex
    return parts.join('; ').replace(/[\x00-\x1f\x7f]/g, ' ');
  }

  record(): Record<string, unknown> {
    return { route: this.route, table: this.table, subset: this.subset ?? null, strategy: this.strategy, candidates: this.candidates, attempts: this.attempts };
  }
}
