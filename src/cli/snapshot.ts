/** `switchyard snapshot save|restore|inspect`: consul snapshot's verbs, on Switchyard's snapshot file (docs/registry.md, "Snapshots"). */
import { open, readFile, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { SwitchyardError } from '../core/errors.js';
import { RegistryClient } from '../registry/api/client.js';
import { decodeSnapshot } from '../registry/server/snapshot/format.js';
import type { Snapshot } from '../registry/server/snapshot/format.js';
import { checkEntries } from '../registry/server/snapshot/restore.js';
import { MAX_SNAPSHOT_EXPANDED } from '../registry/server/http/routes/snapshot.js';

interface Flags {
  httpAddr?: string;
  token?: string;
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
  'ld/': 'lock-delays', 'ev/': 'events', 'a/': 'agents alive (etcd)', 'm/': 'members (etcd)',
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
        const { body } = await client.bytes('GET', '/v1/snapshot', { timeoutMs: TIMEOUT_MS });
        // Verified before it replaces anything at the path: a backup that cannot be restored is worse than none.
        const snap = await decodeSnapshot(body, { maxBytes: MAX_SNAPSHOT_EXPANDED });
        await writeAtomically(file, body);
        process.stdout.write(`Saved and verified snapshot to index ${snap.header.revision} (${snap.header.keys} keys, ${body.length} bytes)\n`);
      } finally {
        await client.close();
      }
    });

  withAgent(cmd.command('restore').description('Make the registry equal to a saved snapshot, in one transaction (embedded store)').argument('<file>'))
    .action(async (file: string, flags: Flags) => {
      const { bytes, snap } = await readSnapshot(file);
      // The agent checks again; checking here says what is wrong without a round trip and names the file.
      try {
        await checkEntries(snap.entries);
      } catch (err) {
        if (err instanceof SwitchyardError) throw new SwitchyardError(err.code, `${file}: ${err.message}`);
        throw err;
      }
      const client = clientOf(flags);
      try {
        const { body } = await client.bytes('PUT', '/v1/snapshot', { body: bytes, timeoutMs: TIMEOUT_MS });
        const r = JSON.parse(body.toString()) as { revision: number; written: number; deleted: number; unchanged: number; skipped: number };
        process.stdout.write(`Restored snapshot of index ${snap.header.revision} at index ${r.revision}: ${r.written} keys written, ${r.deleted} deleted, ${r.unchanged} unchanged${r.skipped > 0 ? `, ${r.skipped} cluster membership keys left out` : ''}\n`);
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
