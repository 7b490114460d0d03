// The import rule of docs/architecture.md as an ESLint rule: each layer of src/ imports only the layers it lists.
// Imports are resolved as paths (no module resolution needed: every import inside src/ is relative), so an
// import is judged by the layer of the file it names, whatever its extension.
import { dirname, relative, resolve, sep } from 'node:path';

/**
 * What each layer may import besides itself ('*': anything). A layer is a folder of src/, and each folder of
 * src/registry/ is a layer of its own. docs/architecture.md shows this table; a test keeps the two equal.
 */
export const LAYERS = Object.freeze({
  core: [],
  config: ['core'],
  health: ['core'],
  balancer: ['core', 'config'],
  'registry/store': ['core'],
  'registry/api': ['core'],
  'registry/server': ['core', 'config', 'health', 'registry/store'],
  'registry/cluster': ['core', 'config', 'registry/server', 'registry/store'],
  dns: ['core', 'config', 'registry/server'],
  discovery: ['core', 'config', 'registry/api', 'registry/server'],
  routing: ['core', 'config', 'balancer', 'discovery'],
  proxy: ['core', 'config', 'balancer', 'routing'],
  template: ['core', 'config', 'registry/api'],
  registrator: ['core', 'config', 'registry/api'],
  register: ['core', 'config', 'registry/api'],
  lock: ['core', 'config', 'registry/api'],
  kv: ['core', 'registry/api'],
  ui: ['core', 'config', 'balancer', 'discovery', 'routing', 'proxy'],
  cli: '*',
});

/** The layer of a path relative to src/: its first folder, or for src/registry/ its first two. */
export function layerOf(relToSrc) {
  const parts = relToSrc.split(sep);
  if (parts.length < 2) return undefined;
  return parts[0] === 'registry' && parts.length > 2 ? `registry/${parts[1]}` : parts[0];
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'each layer of src/ imports only what docs/architecture.md allows it' },
    schema: [{
      type: 'object',
      properties: {
        srcDir: { type: 'string' },
        layers: { type: 'object', additionalProperties: { anyOf: [{ const: '*' }, { type: 'array', items: { type: 'string' } }] } },
      },
      required: ['srcDir', 'layers'],
      additionalProperties: false,
    }],
    messages: {
      forbidden: '{{from}} must not import {{to}} ({{source}}): {{from}} may import {{allowed}} (docs/architecture.md)',
      unknownLayer: 'src/{{from}} is not in the layer table (eslint-rules/layers.js, docs/architecture.md): add it with what it may import',
    },
  },
  create(context) {
    const { srcDir, layers } = context.options[0];
    const file = context.filename;
    const rel = relative(srcDir, file);
    if (rel.startsWith('..') || rel === '') return {};
    const from = layerOf(rel);
    if (from === undefined) return {};
    const allowed = layers[from];
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.') || allowed === '*') return;
      const target = relative(srcDir, resolve(dirname(file), source));
      if (target.startsWith('..')) return;
      const to = layerOf(target);
      if (to === undefined || to === from || allowed.includes(to)) return;
      context.report({ node, messageId: 'forbidden', data: { from, to, source, allowed: allowed.length === 0 ? 'nothing else in src/' : allowed.join(', ') } });
    };
    return {
      Program(node) {
        if (allowed === undefined) context.report({ node, messageId: 'unknownLayer', data: { from } });
      },
      ImportDeclaration: (node) => allowed !== undefined && check(node, node.source.value),
      ExportNamedDeclaration: (node) => allowed !== undefined && node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => allowed !== undefined && check(node, node.source.value),
      ImportExpression: (node) => allowed !== undefined && node.source.type === 'Literal' && check(node, node.source.value),
      TSImportType: (node) => allowed !== undefined && check(node, node.argument?.literal?.value ?? node.argument?.value),
    };
  },
};

export default { meta: { name: 'switchyard-layers' }, rules: { imports: rule } };
