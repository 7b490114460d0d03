/**
 * The JSON of `consul kv export` and `consul kv import`: an array of {key, flags, value (base 64)}.
 * Export writes it byte for byte as Consul does (Go's MarshalIndent with a tab, Go's HTML-safe
 * escapes), so a tree moves between Consul and Switchyard either way. Import reads it as Go's
 * encoding/json would (field names in any case, so a saved `/v1/kv/?recurse` answer imports too),
 * but checks every entry before anything is written: Consul decodes and writes entry by entry, and a
 * bad value halfway leaves half a tree behind.
 */
import { SwitchyardError } from '../core/errors.js';

export interface ExchangeEntry {
  readonly key: string;
  /** uint64, as its decimal digits: a double rounds above 2^53. */
  readonly flags: string;
  readonly value: Buffer;
}

const UINT64_MAX = (1n << 64n) - 1n;
/** Marks a flags number read as text (a NUL no JSON string of a user's starts its flags with). */
const NUMBER = '\u0000';

/** Go's json.Marshal escapes <, > and & (and U+2028/U+2029) inside strings; JSON.stringify does not. */
function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `consul kv export`'s output (without the trailing newline the CLI adds). */
export function exportJson(entries: readonly ExchangeEntry[]): string {
  if (entries.length === 0) return '[]';
  const items = entries.map((e) => `\t{\n\t\t"key": ${goString(e.key)},\n\t\t"flags": ${e.flags},\n\t\t"value": ${goString(e.value.toString('base64'))}\n\t}`);
  return `[\n${items.join(',\n')}\n]`;
}

export class ImportError extends SwitchyardError {
  constructor(message: string) {
    super('SY_ERR_INVALID_ARGUMENT', message);
    this.name = 'ImportError';
  }
}

/** Go's base64.StdEncoding.DecodeString: the standard alphabet, padded to whole quanta of 4; CR and LF are skipped. */
export function decodeStdBase64(s: string): Buffer {
  const clean = s.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
    const at = /[^A-Za-z0-9+/]/.exec(clean)?.index ?? clean.length - (clean.length % 4);
    throw new ImportError(`illegal base64 data at input byte ${at}`);
  }
  return Buffer.from(clean, 'base64');
}

/** The value of `name` in `o`, matched as encoding/json matches fields: exactly first, then in any case. */
function field(o: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(o, name)) return o[name];
  const k = Object.keys(o).find((x) => x.toLowerCase() === name);
  return k === undefined ? undefined : o[k];
}

/**
 * Parses and checks a whole import: every problem names the entry (its index and key). A uint64
 * flags keeps every digit: the number is read as text before JSON.parse could round it.
 */
export function parseImport(text: string): ExchangeEntry[] {
  let doc: unknown;
  try {
    // A `"flags":` (any case) with an unescaped quote is a field name: inside a JSON string that quote is escaped.
    doc = JSON.parse(text.replace(/("flags"\s*:\s*)(\d+)(?=\s*[,}])/gi, '$1"\\u0000$2"'));
  } catch (err) {
    throw new ImportError(`Cannot unmarshal data: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new ImportError(`Cannot unmarshal data: expected a JSON array of {"key", "flags", "value"} entries, got ${doc === null ? 'null' : typeof doc}`);
  return doc.map((raw, i): ExchangeEntry => {
    const where = (key?: string): string => `entry ${i}${key === undefined ? '' : ` (key ${JSON.stringify(key)})`}`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ImportError(`${where()}: expected an object, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : typeof raw}`);
    const o = raw as Record<string, unknown>;
    const key = field(o, 'key');
    if (typeof key !== 'string') throw new ImportError(`${where()}: "key" must be a string, got ${key === undefined ? 'nothing' : JSON.stringify(key)}`);
    if (key === '') throw new ImportError(`${where()}: "key" is empty`);
    const f = field(o, 'flags');
    let flags = '0';
    if (typeof f === 'string' && f.startsWith(NUMBER)) {
      const n = BigInt(f.slice(NUMBER.length));
      if (n > UINT64_MAX) throw new ImportError(`${where(key)}: "flags" ${n} is out of range for an unsigned 64-bit integer`);
      flags = n.toString();
    } else if (f !== undefined && f !== null) throw new ImportError(`${where(key)}: "flags" must be an unsigned 64-bit integer, got ${JSON.stringify(f)}`);
    const v = field(o, 'value');
    if (v !== undefined && v !== null && typeof v !== 'string') throw new ImportError(`${where(key)}: "value" must be a base 64 string, got ${JSON.stringify(v)}`);
    let value: Buffer;
    try {
      value = typeof v === 'string' ? decodeStdBase64(v) : Buffer.alloc(0);
    } catch (err) {
      throw new ImportError(`${where(key)}: "value": ${(err as Error).message}`);
    }
    return { key, flags, value };
  });
}
