/** Consul's JSON encoding rules for API responses. */
import { RAW_NUMBER } from '../render.js';

/** Consul's encoding: compact without a trailing newline, or 4-space indent plus newline with ?pretty. */
export function encodeJson(value: unknown, pretty: boolean): string {
  let s = pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value);
  if (s.includes(RAW_NUMBER)) s = s.replace(new RegExp(`\\{\\s*"${RAW_NUMBER}":\\s*"(\\d+)"\\s*\\}`, 'g'), '$1');
  return s;
}
