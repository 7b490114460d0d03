// Lint rules: typescript-eslint's recommended set plus the import direction of ARCHITECTURE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrict = (patterns, message) => ({
  'no-restricted-imports': ['error', { patterns: patterns.map((group) => ({ group: [group], message })) }],
});

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
  // The web UI (ui/): plain ES modules run by the browser, so browser globals instead of Node's.
  {
    files: ['ui/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { window: 'readonly', document: 'readonly', location: 'readonly', history: 'readonly', localStorage: 'readonly', fetch: 'readonly', EventSource: 'readonly', URLSearchParams: 'readonly', Node: 'readonly', Element: 'readonly', performance: 'readonly', atob: 'readonly', getComputedStyle: 'readonly' } },
  },
  // Import direction (ARCHITECTURE.md): core imports nothing; nothing imports cli; tools reach a registry only via registry/api.
  { files: ['src/core/**'], rules: restrict(['../*', '!./*'], 'core/ imports nothing else in src/') },
  { files: ['src/health/**', 'src/registry/store/**'], rules: restrict(['../../cli/*', '../cli/*', '../registry/server/*', '../server/*'], 'store/ and health/ are leaves below registry/server') },
  { files: ['src/**'], ignores: ['src/cli/**'], rules: restrict(['**/cli/*'], 'nothing imports cli/: it is the composition root') },
);
