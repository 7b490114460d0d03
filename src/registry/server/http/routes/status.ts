/** /v1/status/*: leader and peers (registrator's ping); not ACL-protected in Consul. */
import type { Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

export function statusRoutes(deps: ApiDeps): Route[] {
  const rpcAddr = () => `${deps.registry.node.address}:8300`;
  return [
    { path: '/v1/status/leader', methods: ['GET'], public: true, handler: () => ({ json: rpcAddr() }) },
    { path: '/v1/status/peers', methods: ['GET'], public: true, handler: () => ({ json: [rpcAddr()] }) },
  ];
}
