/** Byte-accurate, UTF-8-safe truncation of check output, worded the way Consul words it. */
import { formatGoDuration } from '../core/duration.js';
import { DEFAULT_OUTPUT_MAX_SIZE } from './types.js';
import type { CheckResult, CheckStatus } from './types.js';

/**
 * Length of the longest prefix of `bytes` that is at most `max` bytes and does not end inside
 * a multibyte UTF-8 sequence (cutting there would decode to a trailing U+FFFD).
 */
function utf8Boundary(bytes: Uint8Array, max: number): number {
  if (bytes.length <= max) return bytes.length;
  let cut = max;
  // 0b10xxxxxx marks a continuation byte: the character started before `cut`.
  while (cut > 0 && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut--;
  return cut;
}

/** Decodes at most `max` leading bytes of `bytes` as UTF-8 without splitting a character. */
export function decodeUtf8Prefix(bytes: Uint8Array, max: number): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.toString('utf8', 0, utf8Boundary(buf, Math.max(0, Math.floor(max))));
}

/**
 * Consul's TTL-update truncation: output over `max` bytes becomes its first `max` bytes followed by
 * ` ... (captured <max> of <N> bytes)`. Consul slices a Go string and may split a character; here the
 * cut backs off to a character boundary, but the note still says `max` so the text matches Consul's.
 */
export function truncateOutput(s: string, max: number = DEFAULT_OUTPUT_MAX_SIZE): string {
  const limit = Math.max(0, Math.floor(max));
  // UTF-16 units never take more than 3 UTF-8 bytes, so short strings skip the byte count.
  if (s.length * 3 <= limit) return s;
  const total = Buffer.byteLength(s, 'utf8');
  if (total <= limit) return s;
  // Every UTF-16 unit is at least one byte, so the first `limit` bytes come from the first `limit` units;
  // a high surrogate left alone at the end would encode as U+FFFD, so it is dropped.
  let head = s.slice(0, limit);
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  return `${decodeUtf8Prefix(Buffer.from(head, 'utf8'), limit)} ... (captured ${limit} of ${total} bytes)`;
}

/**
 * The last `max` bytes a check's command wrote (stdout and stderr interleaved as they arrived) and how
 * many it wrote in all: Consul keeps a script's output in a circular buffer of OutputMaxSize bytes, so
 * a long output shows its end, where the error usually is.
 */
export class OutputTail {
  readonly #buf: Buffer;
  #start = 0;
  #length = 0;
  #total = 0;

  constructor(max: number = DEFAULT_OUTPUT_MAX_SIZE) {
    this.#buf = Buffer.alloc(Math.max(0, Math.floor(max)));
  }

  write(chunk: Uint8Array): void {
    this.#total += chunk.length;
    const cap = this.#buf.length;
    if (cap === 0) return;
    // Only the last `cap` bytes of a chunk can survive it.
    const src = chunk.length > cap ? chunk.subarray(chunk.length - cap) : chunk;
    for (let i = 0; i < src.length;) {
      const at = (this.#start + this.#length) % cap;
      const n = Math.min(src.length - i, cap - at);
      Buffer.from(src.buffer, src.byteOffset + i, n).copy(this.#buf, at);
      i += n;
      const over = this.#length + n - cap;
      if (over > 0) {
        this.#start = (this.#start + over) % cap;
        this.#length = cap;
      } else this.#length += n;
    }
  }

  get total(): number {
    return this.#total;
  }

  /**
   * What Consul reports: the kept bytes, and when some were dropped, `Captured <kept> of <total> bytes`
   * and an ellipsis line before them. A character cut at the start of the kept bytes is left out
   * rather than shown as U+FFFD.
   */
  text(): string {
    const cap = this.#buf.length;
    const kept = Buffer.concat([this.#buf.subarray(this.#start, Math.min(cap, this.#start + this.#length)), this.#buf.subarray(0, Math.max(0, this.#start + this.#length - cap))]);
    if (this.#total <= kept.length) return kept.toString('utf8');
    let from = 0;
    // 0b10xxxxxx is a continuation byte: its character began in the bytes that were dropped.
    while (from < kept.length && from < 3 && ((kept[from] ?? 0) & 0xc0) === 0x80) from++;
    return `Captured ${kept.length} of ${this.#total} bytes\n...\n${kept.toString('utf8', from)}`;
  }
}

/** Consul's rule for a script or Docker check's exit code: 0 passing, 1 warning, anything else (or none: a signal) critical. */
export function exitStatus(code: number | null | undefined): CheckStatus {
  return code === 0 ? 'passing' : code === 1 ? 'warning' : 'critical';
}

/** A command past its timeout, worded as Consul words it, with what it wrote until then. */
export function timedOut(timeoutMs: number, tail: OutputTail): CheckResult {
  const out = tail.text();
  return { status: 'critical', output: `Timed out (${formatGoDuration(timeoutMs * 1e6)}) running check${out === '' ? '' : `\n\n${out}`}` };
}
