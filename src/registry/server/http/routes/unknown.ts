/**
 * Every /v1/ path no other route serves. Consul answers an unknown path with an empty 404, which
 * clients that read X-Consul-Index from every 404 (python-consul) crash on; Switchyard says what
 * is missing, with the X-Consul-* headers: 501 for a Consul endpoint it does not implement, 404
 * with recent Consul's text for a path Consul does not have either.
 */
import type { Route } from '../context.js';
import type { ApiDeps } from '../deps.js';

/** Consul API areas Switchyard does not implement (docs/registry.md lists what it does). */
const CONSUL_ONLY = [
  '/v1/acl/', '/v1/agent/connect/', '/v1/agent/token/', '/v1/agent/monitor', '/v1/agent/join/', '/v1/agent/leave',
  '/v1/agent/force-leave/', '/v1/agent/reload', '/v1/agent/host', '/v1/agent/version', '/v1/agent/metrics/stream',
  '/v1/catalog/connect/', '/v1/catalog/gateway-services/', '/v1/catalog/node-services/', '/v1/config', '/v1/connect/',
  '/v1/coordinate/', '/v1/discovery-chain/', '/v1/exported-services', '/v1/imported-services', '/v1/health/connect/',
  '/v1/health/ingress/', '/v1/internal/', '/v1/namespace', '/v1/operator/', '/v1/partition', '/v1/peering',
  '/v1/status/', '/v1/session/', '/v1/event/',
];

/**
 * `aclToken`: whether the agent requires a token. Without one, the ACL endpoints answer as Consul's do with
 * ACLs off (401 "ACL support disabled", which python-consul turns into ACLDisabled and other clients read
 * as "nothing to manage"); with one, that would be untrue, so they answer 501 like the rest.
 */
export function unknownRoutes(deps: ApiDeps, opts: { aclToken?: boolean } = {}): Route[] {
  return [{
    path: '/v1/', prefix: true, methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH'],
    handler: (ctx) => {
      const what = `${ctx.method} ${ctx.path}`;
      if (!opts.aclToken && ctx.path.startsWith('/v1/acl/')) return { status: 401, index: deps.view.revision, text: 'ACL support disabled' };
      if (CONSUL_ONLY.some((p) => ctx.path.startsWith(p))) {
        return { status: 501, index: deps.view.revision, text: `${what} is a Consul API endpoint that Switchyard does not implement (docs/registry.md lists what it does)` };
      }
      // Consul 1.x's own wording for a path it does not know.
      return { status: 404, index: deps.view.revision, text: 'Invalid URL path: not a recognized HTTP API endpoint' };
    },
  }];
}
