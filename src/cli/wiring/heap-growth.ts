/**
 * How far V8 lets the old generation grow past what its last full collection kept before it
 * collects again. V8 picks a factor of up to 4 on its own; with a million instances (about 1.1 GB
 * live) the agent's RSS then peaked at 2.1 GB during a bulk load. At 40 % it peaked at 1.6 and
 * 1.85 GB in two runs, with registrations per second within the runs' noise: most garbage dies
 * young, so the old generation grows slowly and the extra full collections are few. The default
 * is 30 % to keep a margin under 2 GB (bench/results/scale.md has the run that measures it).
 */
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';

const V8_FLAG = '--heap-growing-percent';

/** Applies `percent` (0: V8's own choice), unless the node command line already sets the flag (that wins). */
export function applyHeapGrowth(percent: number, logger: Logger): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].find((a) => a.startsWith(V8_FLAG));
  if (given !== undefined) {
    logger.debug({ given }, 'heap growth left as the node command line sets it');
    return;
  }
  if (percent > 0) setFlagsFromString(`${V8_FLAG}=${percent}`);
}
