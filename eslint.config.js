// Lint rules: typescript-eslint's recommended set, typed rules for promises, and the import rules of docs/architecture.md.
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers, { LAYERS } from './eslint-rules/layers.js';

const SRC = join(import.meta.dirname, 'src');

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // Typed rules (the TypeScript program of tsconfig.json): a promise is awaited, or explicitly `void` where
  // fire-and-forget is meant, and never handed to a callback that ignores what it returns.
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's it/describe/before… return promises its runner awaits itself.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['it', 'describe', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // The web UI (ui/): plain ES modules run by the browser, so browser globals instead of Node's.
  {
    files: ['ui/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly', localStorage: 'readonly', fetch: 'readonly', EventSource: 'readonly', URLSearchParams: 'readonly', Node: 'readonly', Element: 'readonly', performance: 'readonly', atob: 'readonly', getComputedStyle: 'readonly' } },
  },
  // Import direction (docs/architecture.md, "Layers and imports"): every layer of src/ imports only what it lists.
  {
    files: ['src/**/*.ts'],
    plugins: { switchyard: layers },
    rules: { 'switchyard/imports': ['error', { srcDir: SRC, layers: LAYERS }] },
  },
  // Tools reach a registry only through registry/api: the remote source is one (the in-process local source is not).
  {
    files: ['src/discovery/remote-source.ts'],
    rules: { 'switchyard/imports': ['error', { srcDir: SRC, layers: { ...LAYERS, discovery: LAYERS.discovery.filter((l) => l !== 'registry/server') } }] },
  },
);
