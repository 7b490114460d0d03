/** `switchyard agent`: the Consul-compatible registry on the embedded store. */
import type { Command } from 'commander';
import { agentConfigSchema, resolveAgentConfig } from '../config/agent.js';
import type { AgentConfigInput } from '../config/agent.js';
import { loadConfigFile } from '../config/load.js';
import { flagsToConfig } from './flags.js';
import { createLogger } from './wiring/logger.js';
import { startAgent } from './wiring/agent.js';
import { catchHangup, runUntilSignal } from './wiring/signals.js';

interface AgentFlags {
  config?: string;
  httpAddr?: string;
  dataDir?: string;
  node?: string;
  datacenter?: string;
  aclToken?: string;
  advertiseAddr?: string;
  logLevel?: string;
  sync?: string;
  checkMinInterval?: string;
  checkReapInterval?: string;
  checkDeregisterMin?: string;
  store?: string;
  leaseTtl?: string;
  storeTimeout?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  dnsAddr?: string;
  sessionTtlMin?: string;
  dnsUdpMaxSize?: string;
  heapGrowth?: string;
  httpMaxConnsPerClient?: string;
  allowedHosts?: string[];
  enableScriptChecks?: boolean;
  dnsRecursors?: string[];
  dnsRecursorTimeout?: string;
  dnsDomain?: string;
  dnsOnlyPassing?: boolean;
  dnsNodeTtl?: string;
  dnsUdpAnswerLimit?: string;
}

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('Run the registry: Consul\'s HTTP API (catalog, health checks, KV, blocking queries) on durable embedded storage, or on etcd (--store) for a cluster')
    .option('-c, --config <file>', 'YAML or JSON config file with the same keys as the flags (e.g. http-addr: 127.0.0.1:8500)')
    .option('--http-addr <host:port>', 'HTTP API listen address (default 127.0.0.1:8500)')
    .option('--data-dir <dir>', 'where the write-ahead log and snapshots live (default ./switchyard-data)')
    .option('--node <name>', 'this agent\'s node name (default: the hostname)')
    .option('--datacenter <dc>', 'datacenter name (default dc1)')
    .option('--acl-token <token>', 'require this token on every API request (X-Consul-Token, Authorization: Bearer, or ?token=)')
    .option('--advertise-addr <ip>', 'address other parties use to reach this node (default: the http-addr host)')
    .option('--store <url>', '"embedded" (default) or etcd://host:port[,host:port...][/prefix]: catalog and KV in an etcd v3 cluster shared by any number of agents')
    .option('--lease-ttl <duration>', 'cluster mode: a dead agent\'s node goes critical this long after its last lease renewal (default 10s)')
    .option('--store-timeout <duration>', 'cluster mode: a write waiting longer than this for etcd fails with 503 (default 5s)')
    .option('--etcd-cacert <file>', 'cluster mode: speak TLS to etcd, trusting this CA (PEM), as etcdctl --cacert')
    .option('--etcd-cert <file>', 'cluster mode: client certificate for etcd (PEM), with --etcd-key, as etcdctl --cert')
    .option('--etcd-key <file>', 'cluster mode: the client certificate\'s private key (PEM), as etcdctl --key')
    .option('--dns-addr <host:port>', 'also serve the DNS interface (UDP and TCP) here, e.g. 127.0.0.1:8600')
    .option('--session-ttl-min <duration>', 'shortest session TTL accepted (default 10s, Consul\'s session_ttl_min)')
    .option('--dns-recursors <addrs...>', 'with --dns-addr: send queries for names outside the domain to these resolvers, in order (IP[:port], as Consul\'s recursors; default: refuse them)')
    .option('--dns-recursor-timeout <duration>', 'how long each recursor gets to answer before the next is tried (default 2s; none answering: SERVFAIL)')
    .option('--dns-domain <domain>', 'with --dns-addr: the domain answered (Consul\'s -domain; default consul)')
    .option('--dns-only-passing', 'with --dns-addr: leave out instances whose checks warn, not only critical ones (Consul\'s dns_config.only_passing)')
    .option('--dns-node-ttl <duration>', 'with --dns-addr: TTL of node answers, e.g. 10s, or seconds (default 0: not cached, as Consul); per-service TTLs are dns-service-ttl in the config file')
    .option('--dns-udp-answer-limit <n>', 'with --dns-addr: most records in one UDP answer, shuffled (Consul\'s dns_config.udp_answer_limit; default 3)')
    .option('--dns-udp-max-size <bytes>', 'largest DNS answer over UDP, whatever the client advertises; larger ones are cut with TC set (default 1232)')
    .option('--http-max-conns-per-client <n>', 'connections one client address may hold open to the HTTP API; more get 429 (default 200 as Consul; 0: no limit; loopback clients are never limited)')
    .option('--allowed-hosts <names...>', 'with the API on loopback, also answer requests whose Host is one of these names (default: only localhost, IP addresses and single-label names, against DNS rebinding; *.domain by suffix, * for any)')
    .option('--enable-script-checks', 'run script checks (Args) and Docker checks (DockerContainerID) registered through the API, as Consul\'s enable_script_checks; anyone who may register can then run commands on this host, so pair it with --acl-token (default off: such checks are refused)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .option('--sync <mode>', '"always" fsyncs each commit batch (default); "none" only writes (survives kill -9, not power loss)')
    .option('--check-min-interval <duration>', 'shortest health-check interval honoured (default 1s, as Consul)')
    .option('--check-reap-interval <duration>', 'how often DeregisterCriticalServiceAfter is enforced (default 30s)')
    .option('--check-deregister-min <duration>', 'smallest DeregisterCriticalServiceAfter honoured (default 1m, as Consul)')
    .option('--heap-growth <percent>', 'how far the JS heap may grow past what the last full GC kept before the next one (default 30; 0: V8\'s own choice, faster to grow, higher RSS)')
    .action(async (flags: AgentFlags) => {
      const fromFile: AgentConfigInput = flags.config ? loadConfigFile(flags.config, agentConfigSchema) : {};
      const fromFlags = flagsToConfig(agentConfigSchema, flags);
      const cfg = resolveAgentConfig(fromFile, fromFlags);
      const logger = createLogger(cfg.logLevel, 'agent');
      // Consul's agent reloads its configuration on SIGHUP; this one cannot yet, and must not die of it either.
      catchHangup(logger).set(() => logger.warn('SIGHUP: the agent does not reload its configuration; restart it to change settings (the catalog and KV are kept)'));
      const agent = await startAgent(cfg, logger);
      await runUntilSignal(logger, () => agent.close());
    });
}
