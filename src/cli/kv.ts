/** `switchyard kv`: consul kv (get, put, delete, export, import) against any Consul-compatible agent. */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { RegistryClient } from '../registry/api/client.js';
import { runKv } from '../kv/commands.js';
import type { KvIo } from '../kv/commands.js';

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const line = (s: string | Buffer): Buffer => Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from('\n')]);

export function registerKvCommand(program: Command): void {
  program
    .command('kv')
    .description('Read and write the KV store as consul kv does: get, put, delete, export, import (Go-style flags, e.g. kv get -recurse app/)')
    .argument('[args...]', 'subcommand, its flags and arguments')
    // The consul CLI's flags are Go's: read by runKv itself, where parsing stops at the first argument.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (args: string[]) => {
      const io: KvIo = {
        out: (s) => void process.stdout.write(line(s)),
        err: (s) => void process.stderr.write(line(s)),
        stdin: readStdin,
        readFile: (p) => readFile(p),
      };
      const code = await runKv(args, io, ({ address, token }) => new RegistryClient({ address: address ?? '127.0.0.1:8500', ...(token ? { token } : {}) }), process.env);
      process.exitCode = code;
    });
}
