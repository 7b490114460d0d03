/** The byte classes and results shared by the HTTP/1 head parser (h1.ts) and the chunked-body decoder (h1-chunked.ts). */

declare global {
  interface Buffer {
    /** Node's undocumented but long-stable latin1 fast paths (what buf.toString('latin1') calls after argument checks). */
    latin1Slice(start: number, end: number): string;
    latin1Write(s: string, offset: number, length?: number): number;
  }
}

export const NEED_MORE = -1;
export const PARSE_ERROR = -2;

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;

/** Character classes: bit 1 tchar (RFC 9110 token), bit 2 field-value byte, bit 4 request-target byte, bit 8 method byte. */
export const TCHAR = 1;
export const VALUE = 2;
export const TARGET = 4;
export const METHOD = 8;
/** Bytes of a Host value (RFC 3986 host [":" port]: unreserved, pct-encoded, sub-delims, ":", "[", "]"). */
export const HOSTCHAR = 16;
export const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  let k = 0;
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9!#$%&'*+\-.^_`|~]/.test(ch)) k |= TCHAR;
  // field-value: VCHAR, obs-text, SP, HTAB; no other control characters (NUL, bare CR/LF, DEL).
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c === SP || c === HTAB) k |= VALUE;
  // request-target: visible ASCII only (llhttp in strict mode and nginx refuse raw bytes ≥ 0x80).
  if (c >= 0x21 && c <= 0x7e) k |= TARGET;
  // Methods are case-sensitive: nginx takes upper-case letters, '_' and '-' only, and Node's
  // parser a fixed list of upper-case names; `get` is not GET to either, so it is not to us.
  if ((c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d) k |= METHOD;
  if (/[A-Za-z0-9\-._~!$&'()*+,;=:[\]%]/.test(ch)) k |= HOSTCHAR;
  CLASS[c] = k;
}
