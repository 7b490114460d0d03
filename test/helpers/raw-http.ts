/** Raw HTTP/1 over one TCP connection, for tests of what a server does with exact bytes. */
import { connect } from 'node:net';

export interface RawOptions {
  /** Stop reading (and close) once this holds for what was read so far. */
  until?: (got: string) => boolean;
  /** Pause between the parts sent (ms). */
  pauseMs?: number;
  /** Give up waiting and return what was read (ms). */
  timeoutMs?: number;
}

/** Sends `parts` on one connection (pausing between them) and returns everything read until close, `until`, or the timeout. */
export function raw(port: number, parts: (string | Buffer)[], opts: RawOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => done(), opts.timeoutMs ?? 5000);
    function done(): void {
      clearTimeout(timer);
      c.destroy();
      resolve(got);
    }
    c.on('data', (d) => {
      got += d.toString('latin1');
      if (opts.until?.(got)) done();
    });
    c.on('close', done);
    c.on('error', (err) => (got ? done() : reject(err)));
    c.on('connect', () => {
      // One part now, each next one after the pause: a request that arrives in pieces.
      const writeFrom = (i: number): void => {
        const p = parts[i];
        if (p === undefined || c.destroyed) return;
        c.write(p);
        setTimeout(() => writeFrom(i + 1), opts.pauseMs ?? 50);
      };
      writeFrom(0);
    });
  });
}

/** The status codes of the complete responses in a raw read, in order. */
export const statusLines = (s: string): string[] => [...s.matchAll(/HTTP\/1\.[01] (\d{3})[^\r]*\r\n/g)].map((m) => m[1] as string);
