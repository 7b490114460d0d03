/** Case-insensitive lookup of catalog service and node names, since DNS names are case-insensitive and the view's maps are not. */
import type { CatalogReader } from '../registry/server/catalog-reader.js';
import { topics } from '../registry/server/catalog-reader.js';

export interface NameLookup {
  /** Catalog service names equal to `lower` ignoring case (usually one). */
  services(lower: string): readonly string[];
  /** Catalog node names equal to `lower` ignoring case. */
  nodes(lower: string): readonly string[];
}

/** No cache: scans the view on every call. Fine for tests and small catalogs. */
export function scanNames(view: CatalogReader): NameLookup {
  const scan = (keys: Iterable<string>, lower: string): string[] => {
    const out: string[] = [];
    for (const k of keys) if (k.toLowerCase() === lower) out.push(k);
    return out;
  };
  return {
    services: (lower) => scan(view.serviceNames(), lower),
    nodes: (lower) => scan(nodeNames(view), lower),
  };
}

/**
 * A lower-cased index rebuilt lazily after a change adds or removes services or nodes, so a query
 * costs a map lookup instead of a scan of the catalog.
 */
export class NameIndex implements NameLookup {
  readonly #view: CatalogReader;
  #services: Map<string, string[]> | undefined;
  #nodes: Map<string, string[]> | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(view: CatalogReader) {
    this.#view = view;
    this.#unsubscribe = view.onChange((touched) => {
      // Only a change to the set of names matters, not every instance written.
      if (touched.has(topics.SERVICE_NAMES)) this.#services = undefined;
      if (touched.has(topics.NODES)) this.#nodes = undefined;
    });
  }

  services(lower: string): readonly string[] {
    this.#services ??= build(this.#view.serviceNames());
    return this.#services.get(lower) ?? [];
  }

  nodes(lower: string): readonly string[] {
    this.#nodes ??= build(nodeNames(this.#view));
    return this.#nodes.get(lower) ?? [];
  }

  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

function* nodeNames(view: CatalogReader): Iterable<string> {
  for (const n of view.nodes()) yield n.rec.Node;
}

function build(keys: Iterable<string>): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const k of keys) {
    const l = k.toLowerCase();
    const list = m.get(l);
    if (list) list.push(k);
    else m.set(l, [k]);
  }
  return m;
}
