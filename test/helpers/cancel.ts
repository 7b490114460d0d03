// A Cancel (src/registry/server/catalog-reader.ts) that a test fires by hand: parked queries let go when it does.
import type { Cancel } from '../../src/registry/server/catalog-reader.js';

export function manualCancel(): Cancel & { fire(): void } {
  let cancelled = false;
  const fns = new Set<() => void>();
  return {
    get cancelled() {
      return cancelled;
    },
    onCancel(fn) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
    fire() {
      cancelled = true;
      for (const fn of [...fns]) fn();
    },
  };
}
