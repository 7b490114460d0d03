/**
 * A raw HTTP/2 client over a plain socket, for the abuse tests: it writes frames exactly as told
 * (floods, resets right after HEADERS, a zero window, oversized header lists), which well-behaved
 * clients refuse to do, and reads back the frames the server sends (RST_STREAM, GOAWAY, …).
 */
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 } as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
function hpackInt(v: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (v < max) return [first | v];
  const out = [first | max];
  let rest = v - max;
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  out.push(rest);
  return out;
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  return Buffer.concat([Buffer.from(hpackInt(b.length, 7, 0)), b]);
}

/** A header block of literal fields without indexing (no Huffman): simple and always valid. */
export function headerBlock(fields: [string, string][]): Buffer {
  return Buffer.concat(fields.map(([n, v]) => Buffer.concat([Buffer.from([0]), hpackString(n), hpackString(v)])));
}

export function settings(values: [number, number][] = []): Buffer {
  const p = Buffer.alloc(values.length * 6);
  values.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, p);
}

export function rstStream(stream: number, code = 8): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, stream, p);
}

export function ping(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n, 4);
  return frame(FRAME.PING, 0, 0, p);
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

export interface RawConn {
  readonly socket: Socket;
  readonly frames: Frame[];
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  write(b: Buffer): boolean;
  /** The GOAWAY's error code, once one arrived. */
  goawayCode(): number | undefined;
  /** Waits until `pred` holds for the frames read so far (or the connection closed). */
  until(pred: (frames: Frame[]) => boolean): Promise<boolean>;
}

/** Connects, sends the preface and an empty SETTINGS (or `first`), and collects every frame the server sends. */
export function rawH2(port: number, first: Buffer = settings()): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const frames: Frame[] = [];
    let buf: Buffer = Buffer.alloc(0);
    const waiters = new Set<() => void>();
    let isClosed = false;
    const closed = new Promise<void>((r) => socket.once('close', () => {
      isClosed = true;
      for (const w of waiters) w();
      r();
    }));
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        frames.push({ type: buf[3] as number, flags: buf[4] as number, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
        buf = buf.subarray(9 + len);
      }
      for (const w of waiters) w();
    });
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, first]));
      resolve({
        socket, frames, closed,
        write: (b) => socket.write(b),
        goawayCode: () => {
          const g = frames.find((f) => f.type === FRAME.GOAWAY);
          return g === undefined ? undefined : g.payload.readUInt32BE(4);
        },
        until: (pred) => new Promise((r) => {
          const check = (): void => {
            if (pred(frames)) {
              waiters.delete(check);
              r(true);
            } else if (isClosed) {
              waiters.delete(check);
              r(false);
            }
          };
          waiters.add(check);
          check();
        }),
      });
    });
    socket.once('error', reject);
  });
}

/** A GET on `stream`: HEADERS (END_STREAM), then CONTINUATION frames when the block exceeds 16 KiB. */
export function getRequest(stream: number, path: string, authority: string, extra: [string, string][] = []): Buffer {
  const block = headerBlock([[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', authority], ...extra]);
  const max = 16_384;
  if (block.length <= max) return frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, stream, block);
  const parts = [frame(FRAME.HEADERS, FLAG.END_STREAM, stream, block.subarray(0, max))];
  for (let o = max; o < block.length; o += max) parts.push(frame(FRAME.CONTINUATION, o + max >= block.length ? FLAG.END_HEADERS : 0, stream, block.subarray(o, o + max)));
  return Buffer.concat(parts);
}

export interface ProtocolBreaker {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  close(): void;
}

/**
 * An "instance" that speaks HTTP/2 until a request arrives, then answers it with a PRIORITY frame
 * making the stream depend on itself: a protocol error that makes nghttp2 end the session.
 */
export function startProtocolBreaker(): Promise<ProtocolBreaker> {
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    let buf = Buffer.alloc(0);
    let preface = false;
    sock.on('error', () => undefined);
    sock.write(settings());
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < PREFACE.length) return;
        buf = buf.subarray(PREFACE.length);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4] as number;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + len);
        if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) sock.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (type === FRAME.HEADERS) sock.write(selfPriority(stream));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () => {
      server.close();
    },
  })));
}

/** A PRIORITY frame making `stream` depend on itself (RFC 9113 §5.3.1: a PROTOCOL_ERROR). */
export function selfPriority(stream: number): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt32BE(stream);
  p[4] = 15;
  return frame(FRAME.PRIORITY, 0, stream, p);
}
