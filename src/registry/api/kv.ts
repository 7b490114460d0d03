/** Paths and answers of /v1/kv, for every tool that reads or writes keys through the API. */

/** `/v1/kv/<key>` with each path segment escaped. */
export const kvPath = (key: string, query = ''): string => `/v1/kv/${key.split('/').map(encodeURIComponent).join('/')}${query}`;

/**
 * JSON.parse for /v1/kv answers that keeps every digit of a uint64 Flags (a double would round it). A `"Flags":`
 * with an unescaped quote after Flags can only be the field itself: inside a JSON string that quote is escaped.
 */
export function parseKvJson(text: string): unknown {
  return JSON.parse(text.replace(/"Flags":(\d{16,})/g, '"Flags":"$1"'));
}
