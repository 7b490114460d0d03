// The catalog every scale phase builds: instance i of `instances` is service svc-<i mod services> on node n-<i div perNode>,
// registered with PUT /v1/catalog/register (node address, service with tags and meta, one passing service check),
// as a fleet of nodes would register through their agents. Shared by the load workers and the in-process memory probe.
export interface Shape {
  readonly instances: number;
  readonly services: number;
  readonly perNode: number;
}

export const DEFAULT_SHAPE: Shape = { instances: 1_000_000, services: 50_000, perNode: 100 };

export const serviceName = (i: number, services = DEFAULT_SHAPE.services): string => `svc-${i % services}`;
export const nodeName = (i: number, perNode = DEFAULT_SHAPE.perNode): string => `n-${Math.floor(i / perNode)}`;

/** The request body registering instance i (about 330 bytes). `port` varies for churn (a change to the same instance). */
export function loadBody(i: number, shape: Shape = DEFAULT_SHAPE, port = 8000 + (i % 1000)): string {
  const node = nodeName(i, shape.perNode);
  const n = Math.floor(i / shape.perNode);
  const svc = serviceName(i, shape.services);
  return `{"Node":"${node}","Address":"10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}","Service":{"ID":"i-${i}","Service":"${svc}",` +
    `"Tags":["v1","zone-${i % 3}"],"Meta":{"version":"1.0.${i % 7}"},"Port":${port}},` +
    `"Checks":[{"CheckID":"c-${i}","Name":"alive","ServiceID":"i-${i}","Status":"passing"}]}`;
}

/**
 * A churn write: instance i's service part set again with a new port, as a /v1/txn Service "set" (tags and meta as
 * loadBody, so only the instance changes). Its answer's X-Consul-Index is the write's commit index, which is what
 * lets the harness tell which write woke a watcher.
 */
export function churnBody(i: number, shape: Shape, port: number): string {
  return `[{"Service":{"Verb":"set","Node":"${nodeName(i, shape.perNode)}","Service":{"ID":"i-${i}","Service":"${serviceName(i, shape.services)}",` +
    `"Tags":["v1","zone-${i % 3}"],"Meta":{"version":"1.0.${i % 7}"},"Port":${port}}}}]`;
}
