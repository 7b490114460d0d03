/** `switchyard snapshot save|restore|inspect`: consul snapshot's verbs, on Switchyard's snapshot file (docs/registry.md, "Snapshots"). */
import { open, readFile, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { pino } from 'pino';
import { SwitchyardError } from '../core/errors.js';
import { RegistryClient } from '../registry/api/client.js';
import { decodeSnapshot } from '../registry/server/snapshot/format.js';
import type { Snapshot } from '../registry/server/snapshot/format.js';
import { checkEntries, restoreEntries, restoreInBatches } from '../registry/server/snapshot/restore.js';
import { ALIVE_PREFIX } from '../registry/cluster/membership.js';
import { EmbeddedStore } from '../registry/store/embedded.js';
import { EtcdStore, parseEtcdUrl, readEtcdTls } from '../registry/store/etcd.js';
import { MAX_SNAPSHOT_EXPANDED } from '../registry/server/http/routes/snapshot.js';

interface Flags {
  httpAddr?: string;
  token?: string;
}

interface RestoreFlags extends Flags {
  store?: string;
  dataDir?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
}

/** What one etcd transaction of a restore holds: under etcd's defaults (--max-txn-ops 128: a compare and an op per key; 1.5 MiB a request). */
const ETCD_BATCH = { maxOps: 64, maxBytes: 1024 * 1024 };

type Summary = { revision: number; written: number; deleted: number; unchanged: number; skipped: number; transactions?: number };

const restored = (snap: Snapshot, r: Summary): string =>
  `Restored snapshot of index ${snap.header.revision} at index ${r.revision}: ${r.written} keys written, ${r.deleted} deleted, ${r.unchanged} unchanged`
  + `${r.skipped > 0 ? `, ${r.skipped} cluster membership keys left out` : ''}${r.transactions !== undefined ? ` (${r.transactions} transactions)` : ''}\n`;

/**
 * Restores straight into a store no agent is running on: an embedded data dir (its lock says whether an
 * agent holds it), or an etcd prefix (its liveness keys say whether agents are up). On etcd the restore
 * takes several transactions, which is why no agent may be serving from it meanwhile.
 */
async function restoreOffline(flags: RestoreFlags, snap: Snapshot): Promise<Summary> {
  const logger = pino({ level: 'warn' }, pino.destination(2));
  if (flags.store === 'embedded') {
    if (flags.dataDir === undefined) throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', '--store embedded needs --data-dir: the agent\'s data directory to restore into');
    const store = new EmbeddedStore({ dir: flags.dataDir, logger, sync: 'always' });
    await store.open();
    try {
      return await restoreEntries(store, snap.entries, { nowMs: Date.now() });
    } finally {
      await store.close();
    }
  }
  const tls = flags.etcdCacert ?? flags.etcdCert ?? flags.etcdKey;
  const store = new EtcdStore({
    ...parseEtcdUrl(flags.store as string), logger,
    ...(tls !== undefined ? { tls: readEtcdTls({ ...(flags.etcdCacert ? { caFile: flags.etcdCacert } : {}), ...(flags.etcdCert ? { certFile: flags.etcdCert } : {}), ...(flags.etcdKey ? { keyFile: flags.etcdKey } : {}) }) } : {}),
  });
  await store.open();
  try {
    const alive = store.range(ALIVE_PREFIX).map((e) => e.key.slice(ALIVE_PREFIX.length));
    if (alive.length > 0) {
      throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `${alive.length} agent(s) are running on ${flags.store} (${alive.slice(0, 5).join(', ')}${alive.length > 5 ? ', …' : ''}): stop them first. On etcd a restore takes several transactions, and a running agent would serve the catalog half restored`);
    }
    return await restoreInBatches(store, snap.entries, { nowMs: Date.now(), ...ETCD_BATCH });
  } finally {
    await store.close();
  }
}

/** Saving or restoring a million instances takes a while; the client's default 10 s would give up on it. */
const TIMEOUT_MS = 10 * 60_000;

function clientOf(flags: Flags): RegistryClient {
  const address = flags.httpAddr ?? process.env.CONSUL_HTTP_ADDR ?? '127.0.0.1:8500';
  const token = flags.token ?? process.env.CONSUL_HTTP_TOKEN;
  return new RegistryClient({ address, ...(token ? { token } : {}), timeoutMs: TIMEOUT_MS });
}

async function readSnapshot(file: string): Promise<{ bytes: Buffer; snap: Snapshot }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `cannot read snapshot ${file}: ${(err as Error).message}`);
  }
  try {
    return { bytes, snap: await decodeSnapshot(bytes, { maxBytes: MAX_SNAPSHOT_EXPANDED }) };
  } catch (err) {
    if (err instanceof SwitchyardError) throw new SwitchyardError(err.code, `${file}: ${err.message}`);
    throw err;
  }
}

/** Written beside the target and renamed over it once complete and flushed: an interrupted save never leaves half a file under the name. */
async function writeAtomically(file: string, bytes: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `cannot write snapshot ${file}: ${(err as Error).message}`);
  }
}

const kindOf = (key: string): string => {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash + 1);
};

const KIND_NAMES: Readonly<Record<string, string>> = {
  'n/': 'nodes', 's/': 'services', 'c/': 'checks', 'k/': 'kv', 'sess/': 'sessions', 'sttl/': 'session TTLs', 'sl/': 'session locks',
  'ld/': 'lock-delays', 'ev/': 'events', 'pq/': 'prepared queries', 'pqn/': 'prepared query names',
  'a/': 'agents alive (etcd)', 'm/': 'members (etcd)',
};

export function registerSnapshotCommand(program: Command): void {
  const cmd = program.command('snapshot').description('Save, restore or inspect a point-in-time copy of the registry (consul snapshot)');
  const withAgent = (c: Command): Command => c
    .option('--http-addr <addr>', 'agent address (default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)')
    .option('--token <token>', 'ACL token (default $CONSUL_HTTP_TOKEN)');

  withAgent(cmd.command('save').description('Save every key of the registry at one index to a file, then verify the file').argument('<file>'))
    .action(async (file: string, flags: Flags) => {
      const client = clientOf(flags);
      try {
        const body = await client.bytes('GET', '/v1/snapshot', { timeoutMs: TIMEOUT_MS });
        // Verified before it replaces anything at the path: a backup that cannot be restored is worse than none.
        const snap = await decodeSnapshot(body, { maxBytes: MAX_SNAPSHOT_EXPANDED });
        await writeAtomically(file, body);
        process.stdout.write(`Saved and verified snapshot to index ${snap.header.revision} (${snap.header.keys} keys, ${body.length} bytes)\n`);
      } finally {
        await client.close();
      }
    });

  withAgent(cmd.command('restore').description('Make the registry equal to a saved snapshot: through a running agent (embedded store, one transaction), or straight into a store no agent runs on (--store)').argument('<file>'))
    .option('--store <url>', 'restore into this store with no agent running: "embedded" (with --data-dir) or etcd://host:port[,host:port...][/prefix]')
    .option('--data-dir <dir>', 'with --store embedded: the stopped agent\'s data directory')
    .option('--etcd-cacert <file>', 'with --store etcd://: CA certificate of the members (PEM)')
    .option('--etcd-cert <file>', 'with --store etcd://: client certificate (PEM)')
    .option('--etcd-key <file>', 'with --store etcd://: client private key (PEM)')
    .action(async (file: string, flags: RestoreFlags) => {
      const { bytes, snap } = await readSnapshot(file);
      // The agent checks again; checking here says what is wrong without a round trip and names the file.
      try {
        await checkEntries(snap.entries);
      } catch (err) {
        if (err instanceof SwitchyardError) throw new SwitchyardError(err.code, `${file}: ${err.message}`);
        throw err;
      }
      if (flags.store !== undefined) {
        process.stdout.write(restored(snap, await restoreOffline(flags, snap)));
        return;
      }
      const client = clientOf(flags);
      try {
        const body = await client.bytes('PUT', '/v1/snapshot', { body: bytes, timeoutMs: TIMEOUT_MS });
        process.stdout.write(restored(snap, JSON.parse(body.toString()) as Summary));
      } finally {
        await client.close();
      }
    });

  cmd.command('inspect').description('Verify a snapshot file and show what it holds').argument('<file>')
    .action(async (file: string) => {
      const { bytes, snap } = await readSnapshot(file);
      const h = snap.header;
      const kinds = new Map<string, { n: number; bytes: number }>();
      for (const e of snap.entries) {
        const k = kindOf(e.key);
        const c = kinds.get(k) ?? { n: 0, bytes: 0 };
        c.n++;
        c.bytes += e.key.length + e.value.length;
        kinds.set(k, c);
      }
      const rows: [string, string][] = [
        ['Index', String(h.revision)], ['Created', h.created], ['Node', h.node], ['Datacenter', h.datacenter], ['Store', h.store],
        ['Keys', String(h.keys)], ['Size', `${bytes.length} bytes`],
      ];
      let out = rows.map(([k, v]) => ` ${k.padEnd(11)}${v}\n`).join('');
      out += `\n ${'Kind'.padEnd(24)}${'Count'.padStart(10)}${'Size'.padStart(14)}\n`;
      for (const [k, c] of [...kinds].sort((a, b) => b[1].bytes - a[1].bytes)) {
        out += ` ${(KIND_NAMES[k] ?? k).padEnd(24)}${String(c.n).padStart(10)}${`${c.bytes} B`.padStart(14)}\n`;
      }
      process.stdout.write(out);
    });
}
