/** The whole corpus: every topic's cases, in a stable order, with unique ids. */
import type { Case } from '../types.js';
import { cases as smoke } from './smoke.js';
import { cases as framing } from './framing.js';
import { cases as bytes } from './bytes.js';
import { cases as headers } from './headers.js';
import { cases as forms } from './forms.js';
import { cases as upgrade } from './upgrade.js';
import { cases as responses } from './responses.js';
import { cases as paths } from './paths.js';
import { cases as pipeline } from './pipeline.js';

export const CORPUS: readonly Case[] = [
  ...smoke,
  ...framing,
  ...bytes,
  ...headers,
  ...forms,
  ...upgrade,
  ...responses,
  ...paths,
  ...pipeline,
];

const ids = new Set<string>();
for (const c of CORPUS) {
  if (ids.has(c.id)) throw new Error(`corpus: duplicate case id ${c.id}`);
  ids.add(c.id);
}
