/** The balancer's public face: strategies by configuration name, and createStrategy() to build one. */
import { SwitchyardError } from '../core/errors.js';
import { consistentHash } from './hash.js';
import { leastConn } from './least-conn.js';
import { powerOfTwoChoices } from './p2c.js';
import { weightedRandom } from './random.js';
import { roundRobin } from './round-robin.js';
import { STRATEGY_NAMES, isStrategyName } from '../config/route-spec.js';
import type { StrategyName } from '../config/route-spec.js';
import type { Strategy, StrategyDeps, StrategyFactory, Upstream } from './types.js';

export type { PickContext, Strategy, StrategyDeps, StrategyFactory, Upstream, UpstreamState } from './types.js';
export { UpstreamStates } from './state.js';
export { DEFAULT_PANIC_THRESHOLD } from './candidates.js';
export { hash32 } from './hash32.js';
export { stickyToken } from './candidates.js';

export { STRATEGY_NAMES as strategyNames, isStrategyName } from '../config/route-spec.js';
export type { StrategyName } from '../config/route-spec.js';

export const strategies: Readonly<Record<StrategyName, StrategyFactory>> = Object.freeze({
  round_robin: roundRobin,
  least_conn: leastConn,
  p2c: powerOfTwoChoices,
  random: weightedRandom,
  hash: consistentHash,
});


/** Builds the named strategy; an unknown name is a configuration error that lists the valid ones. */
export function createStrategy(name: string, upstreams: readonly Upstream[], deps: StrategyDeps): Strategy {
  if (!isStrategyName(name)) {
    throw new SwitchyardError('SY_ERR_CONFIG', `unknown balancer strategy ${JSON.stringify(name)}; valid: ${STRATEGY_NAMES.join(', ')}`);
  }
  return strategies[name](upstreams, deps);
}
