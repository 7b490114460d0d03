/** The last known ServiceSet on disk, so a restarted balancer serves its last table before the registry answers. */
import { readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { Instance, ServiceSet } from './types.js';

interface Stored {
  version: 1;
  savedAt: string;
  catalog: [string, readonly string[]][];
  instances: [string, readonly Instance[]][];
}

function encode(set: ServiceSet): string {
  const data: Stored = { version: 1, savedAt: new Date().toISOString(), catalog: [...set.catalog], instances: [...set.instances] };
  return JSON.stringify(data);
}

/**
 * Keeps the state file following the table, writing at most once per `intervalMs` and off the
 * event loop: the file holds the whole set (megabytes at 5,000 services) while swaps can come
 * hundreds of times a second, and a synchronous rewrite per swap stalled every request behind it.
 * The newest set is always the one written; close() writes whatever is still pending. A crash
 * loses at most the last interval's changes, which the registry gives back once it answers.
 */
export class StateFileWriter {
  readonly #file: string;
  readonly #intervalMs: number;
  readonly #onError: (err: Error) => void;
  #pending: ServiceSet | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #lastStart = -Infinity;
  /** Writes completed (tests read it to see bursts coalesce). */
  writes = 0;

  constructor(file: string, intervalMs: number, onError: (err: Error) => void) {
    this.#file = file;
    this.#intervalMs = intervalMs;
    this.#onError = onError;
  }

  save(set: ServiceSet): void {
    this.#pending = set;
    if (this.#timer !== undefined || this.#writing !== undefined) return;
    const wait = Math.max(0, this.#lastStart + this.#intervalMs - performance.now());
    this.#timer = setTimeout(() => this.#flush(), wait);
  }

  #flush(): void {
    this.#timer = undefined;
    const set = this.#pending;
    if (set === undefined) return;
    this.#pending = undefined;
    this.#lastStart = performance.now();
    this.#writing = this.#write(set).finally(() => {
      this.#writing = undefined;
      if (this.#pending !== undefined) this.save(this.#pending);
    });
  }

  async #write(set: ServiceSet): Promise<void> {
    const tmp = `${this.#file}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, encode(set));
      await rename(tmp, this.#file);
      this.writes++;
    } catch (err) {
      this.#onError(err as Error);
    }
  }

  /** Finishes the write in progress and writes the pending set, if any. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    await this.#writing;
    const set = this.#pending;
    this.#pending = undefined;
    if (set !== undefined) await this.#write(set);
  }
}

/** The stored set, or undefined when there is none; a damaged file is reported, never trusted. */
export function loadServiceSet(file: string): { set: ServiceSet; savedAt: string } | { error: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { error: `cannot read ${file}: ${(err as Error).message}` };
  }
  try {
    const d = JSON.parse(text) as Stored;
    if (d.version !== 1 || !Array.isArray(d.catalog) || !Array.isArray(d.instances)) return { error: `${file}: not a Switchyard state file (version ${String(d.version)})` };
    return { set: { catalog: new Map(d.catalog), instances: new Map(d.instances) }, savedAt: d.savedAt };
  } catch (err) {
    return { error: `${file}: ${(err as Error).message}` };
  }
}
