// The error every template failure surfaces as: parse errors and execution errors with file:line:col.
import { SwitchyardError } from '../core/errors.js';

export type TemplatePhase = 'parse' | 'exec';

/**
 * A template that cannot be parsed or executed. `message` is the full text, e.g.
 * `template: nginx.ctmpl:3:15: unexpected "}" in operand`. Parse errors count the column in characters from 1
 * (Go reports no column there); execution errors keep Go's own convention, the byte offset within the line
 * counted from 0, so they read exactly as consul-template prints them.
 */
export class TemplateError extends SwitchyardError {
  readonly phase: TemplatePhase;
  readonly template: string;
  readonly line: number;
  readonly column: number;

  constructor(phase: TemplatePhase, message: string, where: { template: string; line: number; column: number }) {
    super('SY_ERR_TEMPLATE', message);
    this.name = 'TemplateError';
    this.phase = phase;
    this.template = where.template;
    this.line = where.line;
    this.column = where.column;
  }
}

/** Line (from 1) of a UTF-16 offset. */
export function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Column in characters (code points) from 1, for parse errors. */
export function charColumnAt(text: string, pos: number): number {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  return [...text.slice(lineStart, pos)].length + 1;
}

/** Go's ErrorContext column: bytes since the last newline, from 0. */
export function byteColumnAt(text: string, pos: number): number {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  return Buffer.byteLength(text.slice(lineStart, pos), 'utf8');
}
