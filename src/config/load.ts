/** Loads a YAML/JSON config file and validates it with a zod schema; errors name file, line and field. */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { yamlDepthOverflow } from '../core/yaml-depth.js';
import type { z } from 'zod';
import { SwitchyardError, errorMessage } from '../core/errors.js';

export interface Located {
  file: string;
  line: number;
  col: number;
}

/** Finds the source position of a path in the parsed YAML document (the key if present, else the closest parent). */
function locate(doc: ReturnType<typeof parseDocument>, path: readonly PropertyKey[], lc: LineCounter): { line: number; col: number } {
  let node: unknown = doc.contents;
  let pos = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === seg);
      if (!pair) break;
      pos = (pair.key as YamlNode).range?.[0] ?? pos;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) break;
      pos = item.range?.[0] ?? pos;
      node = item;
    } else break;
  }
  const p = lc.linePos(pos);
  return { line: p.line, col: p.col };
}

export function loadConfigFile<T>(file: string, schema: z.ZodType<T>): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${file}: cannot read config file: ${errorMessage(err)}`, { cause: err });
  }
  return parseConfigText(file, text, schema);
}

/** No configuration nests anywhere near this; a deeper file would exhaust the parser's stack (core/yaml-depth.ts). */
const MAX_CONFIG_NESTING = 200;

export function parseConfigText<T>(file: string, text: string, schema: z.ZodType<T>): T {
  const deep = yamlDepthOverflow(text, MAX_CONFIG_NESTING);
  if (deep !== undefined) throw new SwitchyardError('SY_ERR_CONFIG', `${file}:${deep}: nests more than ${MAX_CONFIG_NESTING} levels deep; refused`);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const p = lc.linePos(e.pos[0]);
    throw new SwitchyardError('SY_ERR_CONFIG', `${file}:${p.line}:${p.col}: ${e.message.split('\n')[0]}`);
  }
  const value = doc.toJS() ?? {};
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
  const at = locate(doc, path, lc);
  const field = path.map(String).join('.') || '(top level)';
  const why = issue.code === 'unrecognized_keys' ? `unknown key (allowed: ${allowedKeys(schema, issue.path)})` : issue.message;
  throw new SwitchyardError('SY_ERR_CONFIG', `${file}:${at.line}:${at.col}: ${field}: ${why}`);
}

function allowedKeys(schema: unknown, path: readonly PropertyKey[]): string {
  let s = schema as { shape?: Record<string, unknown>; unwrap?: () => unknown } | undefined;
  for (const seg of path) {
    s = s?.shape?.[seg as string] as typeof s;
    while (s && !s.shape && typeof s.unwrap === 'function') s = s.unwrap() as typeof s;
  }
  return s?.shape ? Object.keys(s.shape).join(', ') : '?';
}
