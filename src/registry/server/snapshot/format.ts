/**
 * The snapshot file (GET /v1/snapshot, `switchyard snapshot save`): every store key at one
 * revision, as gzip-compressed JSON lines: a header, one line per key, and a trailer with the key
 * count and a SHA-256 of every byte before it. A file that was cut short, altered or is not a
 * snapshot at all is refused while reading, before a restore has touched anything.
 *
 *   {"switchyard-snapshot":1,"revision":R,"keys":N,"created":"…","node":"…","datacenter":"…","store":"embedded"}
 *   ["<key>","<value>",<createRevision>,<modRevision>,<version>]      (N lines)
 *   {"end":N,"sha256":"<hex>"}
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import type { Gunzip } from 'node:zlib';
import { SwitchyardError } from '../../../core/errors.js';
import type { StoreEntry } from '../../store/types.js';

export const SNAPSHOT_FORMAT = 1;

export interface SnapshotHeader {
  readonly revision: number;
  readonly keys: number;
  /** ISO time the snapshot was taken. */
  readonly created: string;
  readonly node: string;
  readonly datacenter: string;
  readonly store: string;
}

export interface Snapshot {
  readonly header: SnapshotHeader;
  readonly entries: readonly StoreEntry[];
}

export interface DecodeLimits {
  /** Largest uncompressed size accepted: a small file must not expand into the agent's whole memory. */
  readonly maxBytes: number;
}

export class SnapshotError extends SwitchyardError {
  constructor(message: string) {
    super('SY_ERR_SNAPSHOT', message);
    this.name = 'SnapshotError';
  }
}

/** The longest line read: far above any record (a KV value is at most 512 KiB by default), far below the string limit. */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** Lines per compression step: large enough to amortize the stream, small enough to yield the event loop between steps. */
const LINES_PER_STEP = 4096;

/**
 * Encodes `entries` (one consistent read of the store) to the compressed file. Compression runs in
 * libuv's thread pool, step by step, so a million keys do not hold the event loop for the whole file.
 */
export async function encodeSnapshot(header: Omit<SnapshotHeader, 'keys'>, entries: readonly StoreEntry[]): Promise<Buffer> {
  const gz = createGzip();
  const chunks: Buffer[] = [];
  gz.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    gz.once('end', resolve);
    gz.once('error', reject);
  });
  const hash = createHash('sha256');
  const write = async (text: string): Promise<void> => {
    hash.update(text);
    if (!gz.write(text)) await new Promise<void>((resolve) => gz.once('drain', resolve));
  };
  await write(`${JSON.stringify({ 'switchyard-snapshot': SNAPSHOT_FORMAT, revision: header.revision, keys: entries.length, created: header.created, node: header.node, datacenter: header.datacenter, store: header.store })}\n`);
  for (let i = 0; i < entries.length; i += LINES_PER_STEP) {
    let text = '';
    for (const e of entries.slice(i, i + LINES_PER_STEP)) text += `${JSON.stringify([e.key, e.value, e.createRevision, e.modRevision, e.version])}\n`;
    await write(text);
  }
  gz.end(`${JSON.stringify({ end: entries.length, sha256: hash.digest('hex') })}\n`);
  await ended;
  return Buffer.concat(chunks);
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function parseHeader(line: string): SnapshotHeader {
  let h: unknown;
  try {
    h = JSON.parse(line);
  } catch {
    throw new SnapshotError('line 1: not a Switchyard snapshot (the header is not JSON)');
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h) || !('switchyard-snapshot' in h)) {
    throw new SnapshotError('line 1: not a Switchyard snapshot (no "switchyard-snapshot" header)');
  }
  const r = h as Record<string, unknown>;
  if (r['switchyard-snapshot'] !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(`line 1: snapshot format ${JSON.stringify(r['switchyard-snapshot'])} is not supported (this build reads format ${SNAPSHOT_FORMAT})`);
  }
  for (const f of ['revision', 'keys'] as const) if (!isCount(r[f])) throw new SnapshotError(`line 1: header field "${f}" must be a non-negative integer, got ${JSON.stringify(r[f])}`);
  for (const f of ['created', 'node', 'datacenter', 'store'] as const) if (typeof r[f] !== 'string') throw new SnapshotError(`line 1: header field "${f}" must be a string, got ${JSON.stringify(r[f])}`);
  return { revision: r['revision'] as number, keys: r['keys'] as number, created: r['created'] as string, node: r['node'] as string, datacenter: r['datacenter'] as string, store: r['store'] as string };
}

function parseEntry(line: string, n: number): StoreEntry {
  let a: unknown;
  try {
    a = JSON.parse(line);
  } catch {
    throw new SnapshotError(`line ${n}: not JSON`);
  }
  if (!Array.isArray(a) || a.length !== 5) throw new SnapshotError(`line ${n}: a key line must be [key, value, createRevision, modRevision, version]`);
  const [key, value, create, mod, version] = a as unknown[];
  if (typeof key !== 'string' || key === '') throw new SnapshotError(`line ${n}: the key must be a non-empty string`);
  if (typeof value !== 'string') throw new SnapshotError(`line ${n}: the value of ${JSON.stringify(key)} must be a string`);
  if (!isCount(create) || create < 1 || !isCount(mod) || mod < create || !isCount(version) || version < 1) {
    throw new SnapshotError(`line ${n}: the revisions of ${JSON.stringify(key)} must be integers with 1 ≤ createRevision ≤ modRevision and version ≥ 1`);
  }
  return { key, value, createRevision: create, modRevision: mod, version };
}

/** Reads lines out of the decompressed stream, checking everything the trailer vouches for. */
class Reader {
  #line = 0;
  #header: SnapshotHeader | undefined;
  #entries: StoreEntry[] = [];
  #seen = new Set<string>();
  #hash = createHash('sha256');
  #done = false;

  /** Lines read so far. */
  get lines(): number {
    return this.#line;
  }

  feed(line: string): void {
    this.#line++;
    if (this.#done) {
      if (line === '') return;
      throw new SnapshotError(`line ${this.#line}: data after the trailer`);
    }
    if (this.#header === undefined) {
      this.#header = parseHeader(line);
      this.#hash.update(`${line}\n`);
      return;
    }
    if (line.startsWith('{')) return this.#trailer(line);
    const e = parseEntry(line, this.#line);
    if (this.#seen.has(e.key)) throw new SnapshotError(`line ${this.#line}: key ${JSON.stringify(e.key)} appears twice`);
    if (e.modRevision > this.#header.revision) throw new SnapshotError(`line ${this.#line}: key ${JSON.stringify(e.key)} was written at revision ${e.modRevision}, after the snapshot's revision ${this.#header.revision}`);
    this.#seen.add(e.key);
    this.#entries.push(e);
    this.#hash.update(`${line}\n`);
  }

  #trailer(line: string): void {
    let t: unknown;
    try {
      t = JSON.parse(line);
    } catch {
      throw new SnapshotError(`line ${this.#line}: not JSON`);
    }
    const r = t as Record<string, unknown>;
    if (!isCount(r['end']) || typeof r['sha256'] !== 'string') throw new SnapshotError(`line ${this.#line}: the trailer must be {"end": <keys>, "sha256": "<hex>"}`);
    const header = this.#header as SnapshotHeader;
    if (r['end'] !== this.#entries.length || header.keys !== this.#entries.length) {
      throw new SnapshotError(`line ${this.#line}: the snapshot holds ${this.#entries.length} keys, its header says ${header.keys} and its trailer ${String(r['end'])}`);
    }
    if (this.#hash.digest('hex') !== r['sha256']) throw new SnapshotError(`line ${this.#line}: the SHA-256 of the snapshot does not match its trailer: the file was altered`);
    this.#done = true;
  }

  finish(): Snapshot {
    if (this.#header === undefined) throw new SnapshotError('the snapshot is empty');
    if (!this.#done) throw new SnapshotError(`the snapshot ends at line ${this.#line} without its trailer: the file is truncated`);
    return { header: this.#header, entries: this.#entries };
  }
}

/** Decodes and verifies a snapshot file; every problem is a SnapshotError naming the line and what is wrong. */
export function decodeSnapshot(file: Buffer, limits: DecodeLimits): Promise<Snapshot> {
  if (file.length < 2 || file[0] !== 0x1f || file[1] !== 0x8b) return Promise.reject(new SnapshotError('not a Switchyard snapshot: the file is not gzip-compressed'));
  return new Promise<Snapshot>((resolve, reject) => {
    const gunzip: Gunzip = createGunzip();
    const decoder = new StringDecoder('utf8');
    const reader = new Reader();
    // The start of a line still being read, in pieces: joined once its end comes, so a long line costs
    // its length once (appending each piece and searching the whole of it again was quadratic: a
    // 64 MiB line without a newline took over two minutes).
    let pending: string[] = [];
    let pendingChars = 0;
    let size = 0;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      gunzip.destroy();
      reject(err instanceof SnapshotError ? err : new SnapshotError(`the compressed data is damaged: ${(err as Error).message}`));
    };
    gunzip.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limits.maxBytes) return fail(new SnapshotError(`the snapshot expands to more than ${limits.maxBytes} bytes, the most Switchyard reads`));
      const text = decoder.write(chunk);
      let start = 0;
      try {
        for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
          const piece = text.slice(start, nl);
          reader.feed(pending.length === 0 ? piece : pending.join('') + piece);
          pending = [];
          pendingChars = 0;
          start = nl + 1;
        }
        if (start < text.length) {
          pending.push(text.slice(start));
          pendingChars += text.length - start;
          if (pendingChars > MAX_LINE_CHARS) throw new SnapshotError(`line ${reader.lines + 1} is longer than ${MAX_LINE_CHARS} characters: not a snapshot line`);
        }
      } catch (err) {
        return fail(err);
      }
    });
    gunzip.on('error', (err) => fail(/unexpected end/i.test(err.message) ? new SnapshotError('the compressed stream is truncated') : err));
    gunzip.on('end', () => {
      if (failed) return;
      try {
        const rest = pending.join('') + decoder.end();
        if (rest !== '') reader.feed(rest);
        resolve(reader.finish());
      } catch (err) {
        fail(err);
      }
    });
    gunzip.end(file);
  });
}
