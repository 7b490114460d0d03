/** The whole corpus: every topic's cases, in a stable order, with unique ids. */
import type { Case } from '../types.js';
import { NGINX_OBSERVED } from './nginx-observed.js';
import { cases as smoke } from './smoke.js';
import { cases as framing } from './framing.js';
import { cases as bytes } from './bytes.js';
import { cases as headers } from './headers.js';
import { cases as forms } from './forms.js';
import { cases as upgrade } from './upgrade.js';
import { cases as responses } from './responses.js';
import { cases as paths } from './paths.js';
import { cases as pipeline } from './pipeline.js';

const ALL: readonly Case[] = [
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

/** Cases with nginx's recorded behaviour filled in where a case does not state its own. */
export const CORPUS: readonly Case[] = ALL.map((c) => {
  const observed = NGINX_OBSERVED[c.id];
  return c.expect.nginx === undefined && c.expect.all === undefined && observed !== undefined ? { ...c, expect: { ...c.expect, nginx: observed } } : c;
});

const ids = new Set<string>();
for (const c of CORPUS) {
  if (ids.has(c.id)) throw new Error(`corpus: duplicate case id ${c.id}`);
  ids.add(c.id);
}
