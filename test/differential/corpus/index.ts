/** The whole corpus: every topic's cases, in a stable order, with unique ids. */
import type { Case } from '../types.js';
import { cases as smoke } from './smoke.js';

export const CORPUS: readonly Case[] = [
  ...smoke,
];

const ids = new Set<string>();
for (const c of CORPUS) {
  if (ids.has(c.id)) throw new Error(`corpus: duplicate case id ${c.id}`);
  ids.add(c.id);
}
