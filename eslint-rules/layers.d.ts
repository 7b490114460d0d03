// Types of eslint-rules/layers.js for the TypeScript that reads its table (test/unit/architecture.test.ts).
import type { ESLint } from 'eslint';

export declare const LAYERS: Readonly<Record<string, readonly string[] | '*'>>;
export declare function layerOf(relToSrc: string): string | undefined;
declare const plugin: ESLint.Plugin;
export default plugin;
