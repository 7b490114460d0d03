/**
 * The chunked transfer coding (RFC 9112 §7.1), decoded incrementally and strictly: sizes, extensions,
 * data framing and trailers are checked byte by byte, so what passes is read the same by llhttp.
 */
import { CLASS, COLON, CR, HTAB, LF, NEED_MORE, PARSE_ERROR, SP, TCHAR, VALUE } from './h1-chars.js';

const C_SIZE_START = 0;
const C_SIZE = 1;
const C_EXT = 2;
const C_SIZE_LF = 3;
const C_DATA = 4;
const C_DATA_CR = 5;
const C_DATA_LF = 6;
const C_TRAILER_START = 7;
const C_TRAILER = 8;
const C_TRAILER_LF = 9;
const C_END_LF = 10;
export const C_DONE = 11;
const C_EXT_NAME = 12;
const C_EXT_VALUE = 13;
const C_EXT_QUOTED = 14;
const C_EXT_ESCAPE = 15;
const C_EXT_TOKEN = 16;
const C_TRAILER_NAME = 17;
const C_EXT_AFTER_QUOTE = 18;

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

/** Receives the data of a chunked body as it is decoded (ranges into the buffer being fed). */
export interface ChunkSink {
  chunkData(buf: Buffer, start: number, end: number): void;
}

/**
 * Incremental chunked-body decoder. feed() returns the offset just past the body's final CRLF,
 * NEED_MORE when it consumed everything, or PARSE_ERROR (`error` says why). With a sink it also
 * hands out the chunk data; without one it only finds the end (for forwarding bytes verbatim).
 */
export class ChunkedDecoder {
  state = C_SIZE_START;
  remaining = 0;
  digits = 0;
  lineBytes = 0;
  trailerBytes = 0;
  error = '';
  readonly maxTrailer: number;

  constructor(maxTrailer = 16 * 1024) {
    this.maxTrailer = maxTrailer;
  }

  reset(): void {
    this.state = C_SIZE_START;
    this.remaining = 0;
    this.digits = 0;
    this.lineBytes = 0;
    this.trailerBytes = 0;
    this.error = '';
  }

  #fail(reason: string): number {
    this.error = reason;
    return PARSE_ERROR;
  }

  feed(buf: Buffer, start: number, end: number, sink: ChunkSink | null): number {
    let pos = start;
    while (pos < end) {
      switch (this.state) {
        case C_DATA: {
          const n = Math.min(this.remaining, end - pos);
          if (sink !== null) sink.chunkData(buf, pos, pos + n);
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = C_DATA_CR;
          break;
        }
        case C_SIZE_START: {
          const v = HEX[buf[pos]!]!;
          if (v < 0) return this.#fail('invalid chunk size');
          this.remaining = v;
          this.digits = 1;
          this.state = C_SIZE;
          pos++;
          break;
        }
        case C_SIZE: {
          const c = buf[pos]!;
          const v = HEX[c]!;
          if (v >= 0) {
            // 12 hex digits is 256 TiB: anything longer is an overflow attempt, not a body.
            if (++this.digits > 12) return this.#fail('chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (c === CR) this.state = C_SIZE_LF;
          else if (c === 0x3b) {
            this.state = C_EXT_NAME;
            this.lineBytes = 0;
          } else return this.#fail(c === LF ? 'bare LF after chunk size' : 'invalid chunk size');
          pos++;
          break;
        }
        // chunk-ext = *( ";" name [ "=" ( token / quoted-string ) ] ), no whitespace (RFC 9112 §7.1.1;
        // llhttp refuses whitespace and stray bytes there, and a proxy must not pass on what others read differently).
        case C_EXT_NAME: {
          if (++this.lineBytes > 4096) return this.#fail('chunk extension too long');
          if ((CLASS[buf[pos]!]! & TCHAR) === 0) return this.#fail('invalid chunk extension');
          this.state = C_EXT;
          pos++;
          break;
        }
        case C_EXT:
        case C_EXT_TOKEN: {
          // Inside a name (C_EXT) or a token value (C_EXT_TOKEN).
          const c = buf[pos]!;
          if (++this.lineBytes > 4096) return this.#fail('chunk extension too long');
          if ((CLASS[c]! & TCHAR) !== 0) pos++;
          else if (c === 0x3d && this.state === C_EXT) {
            this.state = C_EXT_VALUE;
            pos++;
          } else if (c === 0x3b) {
            this.state = C_EXT_NAME;
            pos++;
          } else if (c === CR) {
            this.state = C_SIZE_LF;
            pos++;
          } else return this.#fail('invalid chunk extension');
          break;
        }
        case C_EXT_VALUE: {
          const c = buf[pos]!;
          if (++this.lineBytes > 4096) return this.#fail('chunk extension too long');
          if ((CLASS[c]! & TCHAR) !== 0) this.state = C_EXT_TOKEN;
          else if (c === 0x22) this.state = C_EXT_QUOTED;
          else return this.#fail('invalid chunk extension');
          pos++;
          break;
        }
        case C_EXT_QUOTED: {
          const c = buf[pos]!;
          if (++this.lineBytes > 4096) return this.#fail('chunk extension too long');
          if (c === 0x22) this.state = C_EXT_AFTER_QUOTE;
          else if (c === 0x5c) this.state = C_EXT_ESCAPE;
          else if ((CLASS[c]! & VALUE) === 0) return this.#fail('invalid character in a chunk extension');
          pos++;
          break;
        }
        case C_EXT_ESCAPE: {
          if (++this.lineBytes > 4096) return this.#fail('chunk extension too long');
          if ((CLASS[buf[pos]!]! & VALUE) === 0) return this.#fail('invalid character in a chunk extension');
          this.state = C_EXT_QUOTED;
          pos++;
          break;
        }
        case C_EXT_AFTER_QUOTE: {
          const c = buf[pos]!;
          if (c === 0x3b) this.state = C_EXT_NAME;
          else if (c === CR) this.state = C_SIZE_LF;
          else return this.#fail('invalid chunk extension');
          pos++;
          break;
        }
        case C_SIZE_LF:
          if (buf[pos] !== LF) return this.#fail('CR not followed by LF in chunk header');
          pos++;
          this.state = this.remaining === 0 ? C_TRAILER_START : C_DATA;
          break;
        case C_DATA_CR:
          if (buf[pos] !== CR) return this.#fail('chunk data longer than its size');
          pos++;
          this.state = C_DATA_LF;
          break;
        case C_DATA_LF:
          if (buf[pos] !== LF) return this.#fail('CR not followed by LF after chunk data');
          pos++;
          this.state = C_SIZE_START;
          break;
        case C_TRAILER_START: {
          const c = buf[pos]!;
          if (c === CR) this.state = C_END_LF;
          else if (c === SP || c === HTAB) return this.#fail('obsolete line folding in trailer');
          else if ((CLASS[c]! & TCHAR) === 0) return this.#fail('invalid trailer field');
          else this.state = C_TRAILER_NAME;
          if (++this.trailerBytes > this.maxTrailer) return this.#fail('trailer section too large');
          pos++;
          break;
        }
        case C_TRAILER_NAME: {
          // A trailer field is "name: value", like a header: a line without the colon is not one.
          const c = buf[pos]!;
          if (c === COLON) this.state = C_TRAILER;
          else if ((CLASS[c]! & TCHAR) === 0) return this.#fail(c === CR || c === LF ? 'trailer line without a colon' : 'invalid character in a trailer name');
          if (++this.trailerBytes > this.maxTrailer) return this.#fail('trailer section too large');
          pos++;
          break;
        }
        case C_TRAILER: {
          const c = buf[pos]!;
          if (c === CR) this.state = C_TRAILER_LF;
          else if ((CLASS[c]! & VALUE) === 0) return this.#fail('invalid character in trailer');
          if (++this.trailerBytes > this.maxTrailer) return this.#fail('trailer section too large');
          pos++;
          break;
        }
        case C_TRAILER_LF:
          if (buf[pos] !== LF) return this.#fail('CR not followed by LF in trailer');
          pos++;
          this.state = C_TRAILER_START;
          break;
        case C_END_LF:
          if (buf[pos] !== LF) return this.#fail('CR not followed by LF at the end of the body');
          this.state = C_DONE;
          return pos + 1;
        default:
          return this.#fail('data after the end of the body');
      }
    }
    return NEED_MORE;
  }
}
