/** Paths and answers of /v1/kv, for every tool that reads or writes keys through the API. */
import type { RegistryClient } from './client.js';
import { RegistryClientError } from './client.js';

/** `/v1/kv/<key>` with each path segment escaped; `query` as given (`?cas=3`), or parameters to join. */
export function kvPath(key: string, query: string | readonly string[] = ''): string {
  const q = typeof query === 'string' ? query : query.length === 0 ? '' : `?${query.join('&')}`;
  return `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}${q}`;
}

/** A KV write answering true or false (a plain put, cas, acquire, release, a delete). */
export async function kvBool(client: RegistryClient, method: 'PUT' | 'DELETE', path: string, body: string | Buffer = '', signal?: AbortSignal): Promise<boolean> {
  const text = (method === 'PUT' ? await client.put(path, body, signal) : await client.delete(path, signal)).trim();
  if (text !== 'true' && text !== 'false') throw new RegistryClientError(`${method} ${path}: expected true or false, got ${JSON.stringify(text.slice(0, 200))}`);
  return text === 'true';
}

/**
 * JSON.parse for /v1/kv answers that keeps every digit of a uint64 Flags (a double would round it). A `"Flags":`
 * with an unescaped quote after Flags can only be the field itself: inside a JSON string that quote is escaped.
 */
export function parseKvJson(text: string): unknown {
  return JSON.parse(text.replace(/"Flags":(\d{16,})/g, '"Flags":"$1"'));
}
