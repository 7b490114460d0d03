// The image's HEALTHCHECK: one image runs every subcommand, so this finds the running `switchyard`
// process, reads its subcommand and flags from /proc, and probes what that subcommand serves:
//   agent, up   GET http://<--http-addr>/v1/status/leader      (default 127.0.0.1:8500)
//   lb          GET http://<--admin-addr>/health (200 once it has a routing table), else a TCP
//               connect to --listen (default 127.0.0.1:9080)
//   others      healthy while the process runs (registrator, template, register have no port)
// SWITCHYARD_HEALTHCHECK_URL overrides the probe (for addresses set in a --config file).
// Exit 0 = healthy, 1 = unhealthy (Docker's convention). No dependencies: plain Node.
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect } from 'node:net';

const TIMEOUT_MS = 2500;

function switchyardArgs() {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(a) - Number(b))) {
    if (Number(pid) === process.pid) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    } catch {
      continue; // gone meanwhile
    }
    const main = argv.findIndex((a) => a.endsWith('/cli/main.js'));
    if (main >= 0) return argv.slice(main + 1);
  }
  return undefined;
}

/** The value of --name (as "--name v" or "--name=v"), or undefined. */
function flag(args, name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return undefined;
}

/** host:port to connect to: a wildcard listen address is reached on loopback. */
function local(addr) {
  const i = addr.lastIndexOf(':');
  let host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  if (host === '' || host === '0.0.0.0' || host === '::') host = '127.0.0.1';
  return { host, port: Number(addr.slice(i + 1)) };
}

function httpOk(url) {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      if (res.statusCode >= 200 && res.statusCode < 300) resolve();
      else reject(new Error(`${url}: HTTP ${res.statusCode}`));
    });
    req.once('timeout', () => req.destroy(new Error(`${url}: no answer within ${TIMEOUT_MS} ms`)));
    req.once('error', reject);
  });
}

function tcpOk({ host, port }) {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, timeout: TIMEOUT_MS });
    s.once('connect', () => {
      s.destroy();
      resolve();
    });
    s.once('timeout', () => {
      s.destroy();
      reject(new Error(`${host}:${port}: connect timed out`));
    });
    s.once('error', reject);
  });
}

async function probe() {
  if (process.env.SWITCHYARD_HEALTHCHECK_URL) return httpOk(process.env.SWITCHYARD_HEALTHCHECK_URL);
  const args = switchyardArgs();
  if (!args) throw new Error('no switchyard process is running');
  const sub = args.find((a) => !a.startsWith('-'));
  if (sub === 'agent' || sub === 'up') {
    const { host, port } = local(flag(args, 'http-addr') ?? '127.0.0.1:8500');
    return httpOk(`http://${host.includes(':') ? `[${host}]` : host}:${port}/v1/status/leader`);
  }
  if (sub === 'lb') {
    const admin = flag(args, 'admin-addr');
    if (admin) {
      const { host, port } = local(admin);
      return httpOk(`http://${host.includes(':') ? `[${host}]` : host}:${port}/health`);
    }
    return tcpOk(local(flag(args, 'listen') ?? '127.0.0.1:9080'));
  }
  // registrator, template, register: alive is all Docker can learn.
}

try {
  await probe();
  process.exit(0);
} catch (err) {
  process.stdout.write(`unhealthy: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
