// File-system helpers shared by the embedded store's parts: the logger shape, typed I/O errors, unlink-if-present, file-name timestamps.
import { unlink } from 'node:fs/promises';
import { SwitchyardError, errorMessage } from '../../core/errors.js';

export interface EmbeddedStoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export const stderrLogger: EmbeddedStoreLogger = {
  warn: (obj, msg) => console.warn(`switchyard store: ${msg}`, obj),
  info: () => undefined,
};

export function ioError(message: string, cause: unknown): SwitchyardError {
  if (cause instanceof SwitchyardError) return cause;
  return new SwitchyardError('SY_ERR_STORE_IO', `${message}: ${errorMessage(cause)}`, { cause });
}

export function corrupt(message: string): SwitchyardError {
  return new SwitchyardError('SY_ERR_STORE_CORRUPT', message);
}

export function errCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

export async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errCode(err) !== 'ENOENT') throw err;
  }
}

export function fileTimestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}
