/** `switchyard up`: the whole system in one process on the embedded store (agent + balancer, the default for one machine). */
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { agentConfigSchema, resolveAgentConfig } from '../config/agent.js';
import { l4Routes, lbConfigSchema, resolveLbConfig } from '../config/lb.js';
import { loadConfigFile } from '../config/load.js';
import { upConfigSchema } from '../config/up.js';
import type { DnsConfigInput, UpConfigInput } from '../config/up.js';
import { LocalSource } from '../discovery/local-source.js';
import { FollowedServices } from '../discovery/follow.js';
import { createLogger } from './wiring/logger.js';
import { startAgent } from './wiring/agent.js';
import type { RunningAgent } from './wiring/agent.js';
import { checkConfigFiles, reloadCertificates, startLb } from './wiring/lb.js';
import type { RunningLb } from './wiring/lb.js';
import { RouteReloader } from './wiring/lb-reload.js';
import type { ReadConfig } from './wiring/lb-reload.js';
import { catchHangup, runUntilSignal } from './wiring/signals.js';
import { selfRegistration } from './wiring/self-registration.js';
import { flagsToConfig, registerAsFlag } from './flags.js';
import { startDns } from './wiring/dns.js';
import type { RunningDns } from './wiring/dns.js';
import { maybeStartRegistrator } from './wiring/registrator.js';
import type { RunningUpRegistrator } from './wiring/registrator.js';

interface UpFlags {
  config?: string;
  check?: boolean;
  httpAddr?: string;
  dataDir?: string;
  node?: string;
  datacenter?: string;
  aclToken?: string;
  allowedHosts?: string[];
  enableScriptChecks?: boolean;
  listen?: string;
  dnsAddr?: string;
  dnsUdpMaxSize?: string;
  service?: string;
  adminAddr?: string;
  stateFile?: string;
  balance?: string;
  accessLog?: boolean;
  logLevel?: string;
  /** false with --no-registrator. */
  registrator?: boolean;
  store?: string;
  leaseTtl?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  registerAs?: string | boolean;
  advertiseAddr?: string;
  dataPlane?: string;
}

export interface RunningUp {
  readonly agent: RunningAgent;
  readonly lb: RunningLb;
  readonly dns: RunningDns | undefined;
  readonly registrator: RunningUpRegistrator | undefined;
  /** SIGHUP: the config file's lb routes are read again and swapped in (as `switchyard lb` does); true when they went live. */
  reloadRoutes(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The balancer's part of an `up` configuration, as RouteReloader compares it: the lb section's keys
 * (named `lb.<key>`, as the user finds them in the file) and its routes, and the other sections
 * whole, since a change to any of them takes a restart.
 */
function readUpLb(file: UpConfigInput, flags: UpFlags): ReadConfig {
  const fromFlags = flagsToConfig(lbConfigSchema, { ...flags, registerAs: registerAsFlag(flags.registerAs) }, [
    'listen', 'service', 'admin-addr', 'state-file', 'balance', 'access-log', 'log-level', 'register-as', 'advertise-addr', 'data-plane',
  ]);
  const lb: Record<string, unknown> = { ...(file.lb ?? {}), ...Object.fromEntries(Object.entries(fromFlags).filter(([, v]) => v !== undefined)) };
  const input: Record<string, unknown> = { agent: file.agent, dns: file.dns, registrator: file.registrator, routes: lb.routes };
  for (const [k, v] of Object.entries(lb)) if (k !== 'routes') input[`lb.${k}`] = v;
  return { input, cfg: resolveLbConfig(file.lb ?? {}, fromFlags) };
}

/** The agent's part of an `up` configuration: one flag set, two parts, each taking its own keys (--advertise-addr is the balancer's here). */
function upAgentConfig(file: UpConfigInput, flags: UpFlags): ReturnType<typeof resolveAgentConfig> {
  return resolveAgentConfig(file.agent ?? {}, flagsToConfig(agentConfigSchema, flags, [
    'http-addr', 'data-dir', 'node', 'datacenter', 'acl-token', 'allowed-hosts', 'enable-script-checks', 'log-level', 'store', 'lease-ttl', 'etcd-cacert', 'etcd-cert', 'etcd-key',
  ]));
}

/** `up --check`: every section resolved as a start resolves it, and the files the balancer's part names read; the summary, or a thrown config error. */
export function checkUp(file: UpConfigInput, flags: UpFlags): string {
  const agentCfg = upAgentConfig(file, flags);
  const lbCfg = readUpLb(file, flags).cfg;
  checkConfigFiles(lbCfg);
  return `configuration OK: registry ${agentCfg.httpAddr}, ${lbCfg.routes.length} route(s), listen ${lbCfg.listen}`;
}

/** Starts every part; if one cannot start (a port is taken), the ones already up are stopped again. */
export async function startUp(file: UpConfigInput, flags: UpFlags, logger: Logger): Promise<RunningUp> {
  const agentCfg = upAgentConfig(file, flags);
  const current = readUpLb(file, flags);
  const lbCfg = current.cfg;
  const agent = await startAgent(agentCfg, logger.child({ part: 'agent' }), { lbStarting: true });
  // The balancer reads the in-process catalog directly: no HTTP polling, no blocking queries.
  const services = new FollowedServices(lbCfg.routes, l4Routes(lbCfg).map((t) => t.service));
  const source = new LocalSource(agent.view, services.predicate);
  let lb: RunningLb | undefined;
  let dns: RunningDns | undefined;
  let registrator: RunningUpRegistrator | undefined;
  // The flag is the agent's --dns-udp-max-size, validated (and named in errors) as the agent validates it.
  const udpMax = agentConfigSchema.pick({ 'dns-udp-max-size': true })
    .parse({ 'dns-udp-max-size': flags.dnsUdpMaxSize === undefined ? undefined : Number(flags.dnsUdpMaxSize) })['dns-udp-max-size'];
  const dnsCfg: DnsConfigInput = {
    ...(file.dns ?? {}), ...(flags.dnsAddr ? { addr: flags.dnsAddr } : {}), ...(udpMax !== undefined ? { 'udp-max-size': udpMax } : {}),
  };
  try {
    lb = await startLb(lbCfg, logger.child({ part: 'lb' }), { source, processMetrics: false });
    if (dnsCfg.enabled !== false) {
      dns = await startDns(dnsCfg, agent.view, { name: agentCfg.node, datacenter: agentCfg.datacenter }, logger.child({ part: 'dns' }), agent.preparedQuery);
    }
    const regCfg = flags.registrator === false ? { ...file.registrator, enabled: false } : (file.registrator ?? {});
    registrator = await maybeStartRegistrator(regCfg, agent.url, agentCfg.aclToken, logger.child({ part: 'registrator' }));
  } catch (err) {
    await dns?.close();
    await lb?.close();
    await agent.close();
    throw err;
  }
  // The balancer registers through this process's own agent.
  const self = selfRegistration({ ...lbCfg, registry: agent.url, token: agentCfg.aclToken }, logger, lb.address.port, lb.adminAddress);
  agent.addMetrics(lb.metrics);
  if (dns) agent.addMetrics(dns.metrics);
  agent.attachLb(lb, source);
  const running = lb;
  const lbLogger = logger.child({ part: 'lb' });
  const routes = new RouteReloader({
    current, logger: lbLogger, apply: (specs) => running.setRoutes(specs), follow: { services, source },
    // The same file and flags as at start; without a file there is nothing to read again.
    read: () => readUpLb(flags.config ? loadConfigFile(flags.config, upConfigSchema) : {}, flags),
  });
  logger.info({
    api: agent.url, ui: `${agent.url}/ui/`, lb: `http://${lb.address.host}:${lb.address.port}`,
    dns: dns ? `${dns.udp.host}:${dns.udp.port}` : null, registrator: registrator?.endpoint ?? null,
  }, 'switchyard is up');
  return {
    agent, lb, dns, registrator,
    reloadRoutes: () => routes.reload(),
    async close() {
      // Stop writers first, drain the data plane, stop answering DNS, then flush and close the registry.
      await registrator?.close();
      await self?.close();
      await running.close();
      await dns?.close();
      await agent.close();
    },
  };
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('Run everything on one machine: registry (API and UI on :8500), DNS (:8600), balancer (:9080) and, when Docker answers, the registrator, in one process on the embedded store')
    .option('-c, --config <file>', 'YAML/JSON file with agent:, lb: and dns: sections (each takes that part\'s keys)')
    .option('--http-addr <host:port>', 'registry API (and /metrics) address (default 127.0.0.1:8500)')
    .option('--data-dir <dir>', 'where the registry keeps its data (default ./switchyard-data)')
    .option('--node <name>', 'node name (default: the hostname)')
    .option('--datacenter <dc>', 'datacenter name (default dc1)')
    .option('--acl-token <token>', 'require this token on every registry API request')
    .option('--allowed-hosts <names...>', 'with the registry on loopback, also answer requests whose Host is one of these names (DNS-rebinding defence; see the agent\'s flag)')
    .option('--enable-script-checks', 'run script and Docker checks registered through the API (see the agent\'s flag; pair it with --acl-token)')
    .option('--listen <host:port>', 'balancer listen address (default 127.0.0.1:9080)')
    .option('--dns-addr <host:port>', 'DNS interface, UDP and TCP (default 127.0.0.1:8600)')
    .option('--dns-udp-max-size <bytes>', 'largest DNS answer over UDP, whatever the client advertises; larger ones are cut with TC set (default 1232)')
    .option('--service <name>', 'send all balancer traffic to this service (otherwise routes come from the config and urlprefix- tags)')
    .option('--admin-addr <host:port>', 'balancer admin address (/routes, /metrics, /health)')
    .option('--state-file <file>', 'balancer state file')
    .option('--balance <strategy>', 'round_robin (default), least_conn, p2c, random or hash')
    .option('--access-log', 'log one JSON line per proxied request')
    .option('--data-plane <plane>', 'fast (own HTTP/1.1 parser on raw sockets, the default) or node (Node http server + undici)')
    .option('--store <url>', '"embedded" (default) or etcd://host:port[,host:port...][/prefix] to join a cluster')
    .option('--lease-ttl <duration>', 'cluster mode: a dead node goes critical this long after its last lease renewal (default 10s)')
    .option('--etcd-cacert <file>', 'cluster mode: speak TLS to etcd, trusting this CA (PEM)')
    .option('--etcd-cert <file>', 'cluster mode: client certificate for etcd (PEM), with --etcd-key')
    .option('--etcd-key <file>', 'cluster mode: the client certificate\'s private key (PEM)')
    .option('--register-as [service]', 'register the balancer as this service (default switchyard-lb), health-checked')
    .option('--advertise-addr <ip>', 'address registered for the balancer (default: the listen host)')
    .option('--no-registrator', 'do not follow Docker even when an engine answers')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .option('--check', 'validate the configuration and the files it names, and exit')
    .action(async (flags: UpFlags) => {
      const file: UpConfigInput = flags.config ? loadConfigFile(flags.config, upConfigSchema) : {};
      if (flags.check) {
        process.stdout.write(`${checkUp(file, flags)}\n`);
        return;
      }
      const logger = createLogger(flags.logLevel ?? file.agent?.['log-level'] ?? 'info', 'switchyard');
      const hangup = catchHangup(logger);
      const up = await startUp(file, flags, logger);
      // The balancer's certificates and routes can change under a running `up`; the rest takes a restart.
      hangup.set(() => {
        reloadCertificates(up.lb, logger);
        void up.reloadRoutes();
      });
      await runUntilSignal(logger, () => up.close());
    });
}
