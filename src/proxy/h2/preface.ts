/** The HTTP/2 client connection preface (RFC 9113 §3.4): how a plain connection says it speaks h2c with prior knowledge. */
import type { Socket } from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** Whether buf[start, end) is the preface ('yes'), cannot be ('no'), or is a prefix of it ('more'). */
export function prefaceState(buf: Buffer, start: number, end: number): 'yes' | 'no' | 'more' {
  const n = Math.min(end - start, PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[start + i] !== PREFACE[i]) return 'no';
  return n === PREFACE.length ? 'yes' : 'more';
}

/** An `Upgrade: h2c` request (RFC 7540 §3.2): served over HTTP/1.1 as if it had no Upgrade, as RFC 9110 §7.8 allows. */
export function isH2cUpgrade(upgrade: string | undefined): boolean {
  return upgrade !== undefined && upgrade.trim().toLowerCase() === 'h2c';
}

/**
 * For a plane that reads with Node's HTTP/1 server (`--data-plane node`): reads the first bytes of
 * an accepted (paused) socket and hands it to `h2` when they are the preface, else to `h1` with the
 * bytes put back for its parser.
 */
export function sniffPreface(socket: Socket, h2: (s: Socket, already: Buffer) => void, h1: (s: Socket) => void): void {
  let got: Buffer = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    got = got.length === 0 ? d : Buffer.concat([got, d]);
    const state = prefaceState(got, 0, got.length);
    if (state === 'more') return;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    if (state === 'yes') h2(socket, got);
    else {
      socket.unshift(got);
      h1(socket);
    }
  };
  const onEnd = (): void => {
    socket.off('data', onData);
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', () => socket.destroy());
  socket.resume();
}
