/**
 * `consul kv get|put|delete|export|import` over any Consul-compatible agent: the same arguments, output
 * and exit codes (0, or 1 with `Error! …` on stderr), so scripts written for consul keep working. Two
 * things differ on purpose: a bad `-base64` value stops `put` (consul prints the error and writes the
 * undecoded text anyway), and `import` checks the whole file before it writes a key.
 */
import { GoFlagError, goFlagUsage, parseGoFlags } from '../core/go-flagset.js';
import type { GoFlagSpec, GoFlagValues } from '../core/go-flagset.js';
import type { RegistryClient } from '../registry/api/client.js';
import { RegistryClientError } from '../registry/api/client.js';
import { kvBool, kvPath, parseKvJson } from '../registry/api/kv.js';
import { ImportError, decodeStdBase64, exportJson, parseImport } from './exchange.js';
import type { ExchangeEntry } from './exchange.js';

/** Where a command reads and writes: the process's streams in the CLI, buffers in tests. */
export interface KvIo {
  /** One line of output (consul's Info: stdout, a newline added). Values are bytes, so lines are too. */
  out(line: string | Buffer): void;
  /** One line of error (consul's Error: stderr). */
  err(line: string): void;
  stdin(): Promise<Buffer>;
  readFile(path: string): Promise<Buffer>;
}

export type KvSubcommand = 'get' | 'put' | 'delete' | 'export' | 'import';

/** The agent client a command needs, built once its flags are read (-http-addr, -token). */
export type ClientFor = (opts: { address: string | undefined; token: string | undefined }) => RegistryClient;

interface ApiKvPair {
  Key: string;
  Flags: number | string;
  Value: string | null;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Session?: string;
}

const HTTP_FLAGS: Readonly<Record<string, GoFlagSpec>> = {
  'http-addr': { kind: 'string', usage: 'The address of the agent (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500).' },
  token: { kind: 'string', usage: 'ACL token for the request (default $CONSUL_HTTP_TOKEN).' },
  datacenter: { kind: 'string', usage: 'Name of the datacenter to query (default: the agent\'s).' },
  stale: { kind: 'bool', usage: 'Let any agent answer a read, even one behind the leader (?stale).' },
};

const CAS: GoFlagSpec = { kind: 'bool', usage: 'Check-and-set: act only if the key\'s ModifyIndex is still -modify-index.' };
const MODIFY_INDEX: GoFlagSpec = { kind: 'uint64', usage: 'The ModifyIndex the key must have, with -cas.' };
const BASE64: GoFlagSpec = { kind: 'bool', usage: 'Values are base 64: shown encoded (get), given encoded (put).' };

const SPECS: Readonly<Record<KvSubcommand, { usage: string; flags: Readonly<Record<string, GoFlagSpec>> }>> = {
  get: {
    usage: 'Usage: switchyard kv get [options] [KEY_OR_PREFIX]\n\n  Prints the value at KEY (an error if there is none), or with -recurse every key:value under\n  a prefix, or with -keys the key names under it up to the next -separator.',
    flags: {
      base64: BASE64,
      detailed: { kind: 'bool', usage: 'Print the key\'s metadata too (indexes, flags, session).' },
      keys: { kind: 'bool', usage: 'List the keys under the prefix, not their values.' },
      recurse: { kind: 'bool', usage: 'Print every key under the prefix as key:value.' },
      separator: { kind: 'string', usage: 'With -keys: list names only up to this string (default "/").' },
    },
  },
  put: {
    usage: 'Usage: switchyard kv put [options] KEY [DATA]\n\n  Writes DATA at KEY: the text itself, @FILE for a file\'s bytes, - for stdin, nothing for an empty value.',
    flags: {
      acquire: { kind: 'bool', usage: 'Write and take the key\'s lock for -session (the session must exist).' },
      base64: BASE64,
      cas: CAS,
      flags: { kind: 'uint64', usage: 'An unsigned 64-bit number stored with the key, for clients to use as they like.' },
      'modify-index': MODIFY_INDEX,
      release: { kind: 'bool', usage: 'Write and release the key\'s lock held by -session.' },
      session: { kind: 'string', usage: 'The session for -acquire or -release.' },
    },
  },
  delete: {
    usage: 'Usage: switchyard kv delete [options] KEY_OR_PREFIX\n\n  Deletes KEY (nothing happens if it does not exist), or with -recurse every key under a prefix.',
    flags: { cas: CAS, 'modify-index': MODIFY_INDEX, recurse: { kind: 'bool', usage: 'Delete every key under the prefix.' } },
  },
  export: {
    usage: 'Usage: switchyard kv export [KEY_OR_PREFIX]\n\n  Prints the keys under a prefix as the JSON `consul kv export` writes, for `kv import` here or in Consul.',
    flags: {},
  },
  import: {
    usage: 'Usage: switchyard kv import [options] DATA\n\n  Writes the keys of a `kv export` (or `consul kv export`) JSON: the text itself, @FILE, or - for stdin.\n  Every entry is checked first: a bad file writes nothing.',
    flags: { prefix: { kind: 'string', usage: 'Put this in front of every imported key.' } },
  },
};

/** Keys cannot start with a slash; like consul, forgive one. */
const trimSlash = (key: string): string => (key.startsWith('/') ? key.slice(1) : key);

class KvError extends Error {}
const fail = (message: string): never => {
  throw new KvError(message);
};

function oneArg(rest: readonly string[]): string {
  if (rest.length > 1) fail(`Too many arguments (expected 1, got ${rest.length})`);
  return rest[0] ?? '';
}

/** DATA as consul reads it: @FILE, - for stdin, else the argument's own text. */
async function dataArg(data: string, io: KvIo): Promise<Buffer> {
  if (data.startsWith('@')) {
    try {
      return await io.readFile(data.slice(1));
    } catch (err) {
      return fail(`Failed to read file: ${(err as Error).message}`);
    }
  }
  if (data === '-') return io.stdin();
  return Buffer.from(data);
}

/** The bytes of a stored value: what `get` prints, as consul prints the []byte. */
const valueBytes = (p: ApiKvPair): Buffer => (p.Value === null ? Buffer.alloc(0) : Buffer.from(p.Value, 'base64'));

/** Consul's prettyKVPair: a tabwriter column of labels, padded by 6 past the longest (CreateIndex). */
function detailed(p: ApiKvPair, base64: boolean): Buffer {
  const rows: [string, string][] = [
    ['CreateIndex', String(p.CreateIndex)], ['Flags', String(p.Flags)], ['Key', p.Key], ['LockIndex', String(p.LockIndex)],
    ['ModifyIndex', String(p.ModifyIndex)], ['Session', p.Session === undefined || p.Session === '' ? '-' : p.Session],
  ];
  const head = rows.map(([k, v]) => `${k.padEnd(17)}${v}\n`).join('');
  return Buffer.concat([Buffer.from(`${head}${'Value'.padEnd(17)}`), base64 ? Buffer.from(valueBytes(p).toString('base64')) : valueBytes(p)]);
}

async function readList(client: RegistryClient, prefix: string, params: readonly string[]): Promise<ApiKvPair[]> {
  const r = await client.blockingGet<ApiKvPair[]>(kvPath(prefix, ['recurse', ...params]), 0, 0, undefined, parseKvJson);
  return r.value ?? [];
}

/** -datacenter as a query parameter: every request names it. */
const dcParams = (v: GoFlagValues): string[] => (typeof v.datacenter === 'string' && v.datacenter !== '' ? [`dc=${encodeURIComponent(v.datacenter)}`] : []);
/** A read's parameters: -datacenter and -stale. */
const readParams = (v: GoFlagValues): string[] => [...dcParams(v), ...(v.stale === true ? ['stale'] : [])];

async function get(client: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo): Promise<number> {
  const key = trimSlash(oneArg(rest));
  if (key === '' && v.recurse !== true && v.keys !== true) fail('Missing KEY argument');
  const q = readParams(v);
  if (v.keys === true) {
    const sep = typeof v.separator === 'string' ? v.separator : '/';
    const r = await client.blockingGet<string[]>(kvPath(key, ['keys', ...(sep === '' ? [] : [`separator=${encodeURIComponent(sep)}`]), ...q]), 0, 0);
    for (const k of r.value ?? []) io.out(k);
    return 0;
  }
  if (v.recurse === true) {
    const pairs = await readList(client, key, q);
    pairs.forEach((p, i) => {
      if (v.detailed === true) {
        io.out(detailed(p, v.base64 === true));
        if (i < pairs.length - 1) io.out('');
      } else io.out(Buffer.concat([Buffer.from(`${p.Key}:`), v.base64 === true ? Buffer.from(valueBytes(p).toString('base64')) : valueBytes(p)]));
    });
    return 0;
  }
  const r = await client.blockingGet<ApiKvPair[]>(kvPath(key, q), 0, 0, undefined, parseKvJson);
  const pair = r.value?.[0];
  if (pair === undefined) return fail(`No key exists at: ${key}`);
  if (v.detailed === true) io.out(detailed(pair, v.base64 === true));
  else io.out(v.base64 === true ? valueBytes(pair).toString('base64') : valueBytes(pair));
  return 0;
}

async function put(client: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo): Promise<number> {
  if (rest.length === 0) fail('Missing KEY argument');
  if (rest.length > 2) fail(`Too many arguments (expected 1 or 2, got ${rest.length})`);
  const key = rest[0] as string;
  let data = rest.length === 2 && rest[1] !== '' ? await dataArg(rest[1] as string, io) : Buffer.alloc(0);
  if (v.base64 === true) {
    try {
      data = decodeStdBase64(data.toString('latin1'));
    } catch (err) {
      return fail(`Cannot base 64 decode data: ${(err as Error).message}`);
    }
  }
  const session = typeof v.session === 'string' ? v.session : '';
  if ((v.acquire === true || v.release === true) && session === '') fail('Missing -session (required with -acquire and -release)');
  const index = typeof v['modify-index'] === 'bigint' ? v['modify-index'] : 0n;
  if (v.cas === true && index === 0n) return fail('Must specify -modify-index with -cas!');
  const q = dcParams(v);
  if (typeof v.flags === 'bigint' && v.flags !== 0n) q.push(`flags=${v.flags}`);
  if (v.cas === true) q.push(`cas=${index}`);
  if (v.acquire === true) q.push(`acquire=${encodeURIComponent(session)}`);
  else if (v.release === true) q.push(`release=${encodeURIComponent(session)}`);
  const ok = await kvBool(client, 'PUT', kvPath(key, q), data);
  if (v.cas === true) {
    if (!ok) return fail(`Did not write to ${key}: CAS failed`);
  } else if (v.acquire === true) {
    if (!ok) return fail('Did not acquire lock');
    io.out(`Success! Lock acquired on: ${key}`);
    return 0;
  } else if (v.release === true) {
    if (!ok) return fail('Did not release lock');
    io.out(`Success! Lock released on: ${key}`);
    return 0;
  }
  io.out(`Success! Data written to: ${key}`);
  return 0;
}

async function del(client: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo): Promise<number> {
  const key = trimSlash(oneArg(rest));
  if (key === '' && v.recurse !== true) fail('Missing KEY argument');
  const index = typeof v['modify-index'] === 'bigint' ? v['modify-index'] : 0n;
  if (v.cas === true && index === 0n) fail('Cannot delete a key that does not exist. Provide a -modify-index greater than than 0.');
  if (index !== 0n && v.cas !== true) fail('Cannot specify -modify-index without -cas!');
  if (v.recurse === true && v.cas === true) fail('Cannot specify both -cas and -recurse!');
  const dc = dcParams(v);
  if (v.recurse === true) {
    await kvBool(client, 'DELETE', kvPath(key, ['recurse', ...dc]));
    io.out(`Success! Deleted keys with prefix: ${key}`);
    return 0;
  }
  const ok = await kvBool(client, 'DELETE', kvPath(key, v.cas === true ? [`cas=${index}`, ...dc] : dc));
  if (v.cas === true && !ok) return fail(`Did not delete key ${key}: CAS failed`);
  io.out(`Success! Deleted key: ${key}`);
  return 0;
}

async function exportTree(client: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo): Promise<number> {
  const prefix = trimSlash(oneArg(rest));
  const pairs = await readList(client, prefix, readParams(v));
  const entries: ExchangeEntry[] = pairs.map((p) => ({ key: p.Key, flags: String(p.Flags), value: valueBytes(p) }));
  io.out(exportJson(entries));
  return 0;
}

/** Writes at most this many keys at once: a large import goes in parallel, without a request per key in flight. */
const IMPORT_CONCURRENCY = 8;

async function importTree(client: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo): Promise<number> {
  if (rest.length === 0) fail('Missing DATA argument');
  const arg = oneArg(rest);
  if (arg === '') fail('Empty DATA argument');
  const prefix = typeof v.prefix === 'string' ? v.prefix : '';
  let entries: ExchangeEntry[];
  try {
    entries = parseImport((await dataArg(arg, io)).toString('utf8'));
  } catch (err) {
    if (err instanceof ImportError) return fail(`${err.message}; nothing was imported`);
    throw err;
  }
  const dc = dcParams(v);
  // Written in order of the file, IMPORT_CONCURRENCY at a time; each key is reported once written.
  let next = 0;
  let failed: string | undefined;
  const done: boolean[] = entries.map(() => false);
  let reported = 0;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < entries.length) {
      const i = next++;
      const e = entries[i] as ExchangeEntry;
      const key = prefix + e.key;
      try {
        await kvBool(client, 'PUT', kvPath(key, e.flags === '0' ? dc : [`flags=${e.flags}`, ...dc]), e.value);
      } catch (err) {
        failed ??= `Failed writing data for key ${key}: ${(err as Error).message}`;
        return;
      }
      done[i] = true;
      while (reported < entries.length && done[reported]) io.out(`Imported: ${prefix + (entries[reported++] as ExchangeEntry).key}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IMPORT_CONCURRENCY, entries.length) }, worker));
  if (failed !== undefined) return fail(failed);
  return 0;
}

const RUN: Readonly<Record<KvSubcommand, (c: RegistryClient, v: GoFlagValues, rest: string[], io: KvIo) => Promise<number>>> = {
  get, put, delete: del, export: exportTree, import: importTree,
};

export const KV_SUBCOMMANDS: readonly KvSubcommand[] = ['get', 'put', 'delete', 'export', 'import'];

const isSubcommand = (s: string | undefined): s is KvSubcommand => s !== undefined && (KV_SUBCOMMANDS as readonly string[]).includes(s);

/** Usage of `kv` or of one subcommand, with its flags. */
export function kvUsage(sub?: KvSubcommand): string {
  if (sub === undefined) {
    return 'Usage: switchyard kv <subcommand> [options] [args]\n\n  Reads and writes the registry\'s KV store as `consul kv` does.\n\nSubcommands:\n'
      + '    delete    Removes data from the KV store\n    export    Exports a tree from the KV store as JSON\n    get       Retrieves or lists data from the KV store\n'
      + '    import    Imports a tree stored as JSON to the KV store\n    put       Sets or updates data in the KV store';
  }
  const spec = SPECS[sub];
  return `${spec.usage}\n\nHTTP API options:\n${goFlagUsage(HTTP_FLAGS)}${Object.keys(spec.flags).length > 0 ? `\n\nCommand options:\n${goFlagUsage(spec.flags)}` : ''}`;
}

/** Runs `kv <args>`; returns the exit code. */
export async function runKv(args: readonly string[], io: KvIo, clientFor: ClientFor, env: NodeJS.ProcessEnv = {}): Promise<number> {
  const sub = args[0];
  if (!isSubcommand(sub)) {
    if (sub === undefined || sub === '-h' || sub === '-help' || sub === '--help') {
      io.out(kvUsage());
      return sub === undefined ? 1 : 0;
    }
    io.err(`Error! Unknown subcommand ${JSON.stringify(sub)}\n\n${kvUsage()}`);
    return 1;
  }
  let parsed: ReturnType<typeof parseGoFlags>;
  try {
    parsed = parseGoFlags(args.slice(1), { ...HTTP_FLAGS, ...SPECS[sub].flags });
  } catch (err) {
    if (!(err instanceof GoFlagError)) throw err;
    io.err(`${err.message}\n\n${kvUsage(sub)}`);
    return 1;
  }
  if (parsed.help) {
    io.out(kvUsage(sub));
    return 0;
  }
  const v = parsed.values;
  const address = typeof v['http-addr'] === 'string' ? v['http-addr'] : env.CONSUL_HTTP_ADDR;
  const token = typeof v.token === 'string' ? v.token : env.CONSUL_HTTP_TOKEN;
  let client: RegistryClient | undefined;
  try {
    client = clientFor({ address: address === '' ? undefined : address, token: token === '' ? undefined : token });
    return await RUN[sub](client, v, parsed.rest, io);
  } catch (err) {
    if (err instanceof KvError) io.err(`Error! ${err.message}`);
    else if (err instanceof RegistryClientError) io.err(`Error! ${err.message}`);
    else throw err;
    return 1;
  } finally {
    await client?.close();
  }
}
