/**
 * Reads of an accepted socket into a buffer we own and reuse, as `net.connect({ onread })` does for
 * the sockets we open. Node offers `onread` only to sockets it creates from options, not to the
 * ones a server accepts, so this sets the same three fields net's own constructor would set (found
 * by probing a socket built with `onread`, not by name) and switches the handle to the user buffer.
 *
 * Why: on the default readable-stream path every read allocates a Buffer and runs Readable's push
 * and 'data' machinery; that was the largest share of the fast plane's user CPU per request after
 * the syscalls themselves. If the probe finds nothing (another Node), callers fall back to 'data'.
 */
import { Socket } from 'node:net';

type SocketOptions = ConstructorParameters<typeof Socket>[0];

interface Keys {
  buffer: symbol;
  generator: symbol;
  callback: symbol;
}

function probe(): Keys | undefined {
  const buf = Buffer.alloc(1);
  const cb = (): void => undefined;
  const gen = (): Buffer => buf;
  const withBuffer = new Socket({ onread: { buffer: buf, callback: cb } } as SocketOptions);
  const withGenerator = new Socket({ onread: { buffer: gen, callback: cb } } as SocketOptions);
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  let generator: symbol | undefined;
  const a = withBuffer as unknown as Record<symbol, unknown>;
  const b = withGenerator as unknown as Record<symbol, unknown>;
  for (const k of Object.getOwnPropertySymbols(withBuffer)) {
    if (a[k] === buf) buffer = k;
    else if (a[k] === cb) callback = k;
  }
  for (const k of Object.getOwnPropertySymbols(withGenerator)) if (b[k] === gen) generator = k;
  withBuffer.destroy();
  withGenerator.destroy();
  return buffer && callback && generator ? { buffer, callback, generator } : undefined;
}

const KEYS = probe();

interface UserBufferHandle {
  useUserBuffer?: (buf: Uint8Array) => void;
}

/**
 * Switches a paused, freshly accepted socket to reads into `next()`'s buffer, delivered to
 * `onRead(n, buf)` (return false to stop reading, as with `onread`). Returns false, changing
 * nothing, when this Node does not allow it; the caller then reads with 'data' events.
 */
export function readIntoUserBuffer(socket: Socket, next: () => Buffer, onRead: (n: number, buf: Buffer) => boolean): boolean {
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (KEYS === undefined || handle == null || typeof handle.useUserBuffer !== 'function') return false;
  const s = socket as unknown as Record<symbol, unknown>;
  const first = next();
  s[KEYS.buffer] = first;
  s[KEYS.generator] = next;
  s[KEYS.callback] = onRead;
  handle.useUserBuffer(first);
  return true;
}
