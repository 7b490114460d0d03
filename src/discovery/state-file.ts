/** The last known ServiceSet on disk, so a restarted balancer serves its last table before the registry answers. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Instance, ServiceSet } from './types.js';

interface Stored {
  version: 1;
  savedAt: string;
  catalog: [string, readonly string[]][];
  instances: [string, readonly Instance[]][];
}

export function saveServiceSet(file: string, set: ServiceSet): void {
  const data: Stored = { version: 1, savedAt: new Date().toISOString(), catalog: [...set.catalog], instances: [...set.instances] };
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data));
  renameSync(tmp, file);
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
