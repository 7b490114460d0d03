/**
 * The health an alias check mirrors: the aggregate of the aliased service instance's checks and its
 * node's node-level checks (AliasService), or of a node's node-level checks alone (AliasNode only).
 * Consul's rule: any critical check makes it critical, else any warning makes it warning, else it is
 * passing; an aliased service that is not registered is critical. Two choices differ from Consul:
 * checks are taken in CheckID order, so the output names the same failing check every time (Consul
 * walks a Go map), and the alias check never counts itself (a node-level alias on its own node would
 * otherwise read its own critical start and stay critical).
 */
import type { CheckResult } from '../../../health/types.js';
import type { CatalogReader } from '../catalog-reader.js';
import type { CheckRecord } from '../model.js';

export interface AliasTarget {
  /** The node whose checks are read: AliasNode, or the alias check's own node. */
  node: string;
  /** AliasService: a service ID on that node; '' aliases the node's own health. */
  service: string;
}

export function aliasHealth(
  view: Pick<CatalogReader, 'node' | 'checksOnNode' | 'findService'>,
  self: { node: string; checkId: string },
  target: AliasTarget,
): CheckResult {
  if (target.service === '' && view.node(target.node) === undefined) {
    return { status: 'critical', output: `Node ${target.node} could not be found` };
  }
  const checks: CheckRecord[] = [];
  for (const c of view.checksOnNode(target.node)) {
    if (c.rec.Node === self.node && c.rec.CheckID === self.checkId) continue;
    if (c.rec.ServiceID !== '' && c.rec.ServiceID !== target.service) continue;
    checks.push(c.rec);
  }
  checks.sort((a, b) => (a.CheckID < b.CheckID ? -1 : a.CheckID > b.CheckID ? 1 : 0));
  let result: CheckResult = { status: 'passing', output: 'No checks found.' };
  let serviceFound = false;
  for (const chk of checks) {
    if (chk.ServiceID === target.service) serviceFound = true;
    if (chk.Status === 'critical' || chk.Status === 'warning') {
      result = { status: chk.Status, output: `Aliased check ${JSON.stringify(chk.Name)} failing: ${chk.Output}` };
      if (chk.Status === 'critical') break;
    } else if (result.status === 'passing') result = { status: 'passing', output: 'All checks passing.' };
  }
  if (!serviceFound && target.service !== '' && view.findService(target.node, target.service) === undefined) {
    return { status: 'critical', output: `Service ${target.service} could not be found on node ${target.node}` };
  }
  return result;
}
