/** Listening with a clear error when the address is taken (which address, who holds it, which flag changes it). */
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { SwitchyardError } from '../../core/errors.js';

/** Best effort: the PID and command holding a TCP port, from /proc (Linux only). */
export function whoListens(port: number): string | undefined {
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const inodes = new Set<string>();
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A' && cols[9]) inodes.add(cols[9]);
      }
    }
    if (inodes.size === 0) return undefined;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
          if (m && inodes.has(m[1] as string)) {
            const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
            return `pid ${pid} (${cmd.slice(0, 120)})`;
          }
        } catch {
          // The fd closed while we looked; keep going.
        }
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The error for a failed bind: which address, who holds it (TCP), which setting changes it. */
function bindFailure(err: NodeJS.ErrnoException, where: string, flag: string, who: () => string | undefined): Error {
  if (err.code === 'EADDRINUSE') {
    const holder = who();
    return new SwitchyardError('SY_ERR_ADDR_IN_USE',
      `cannot listen on ${where}: address already in use${holder ? ` by ${holder}` : ''}; stop that process or choose another address with ${flag}`);
  }
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES') {
    return new SwitchyardError('SY_ERR_CONFIG', `cannot listen on ${where}: ${err.code} (${err.message}); choose another address with ${flag}`);
  }
  return err;
}

/** `backlog`: the accept queue's length (the kernel caps it at net.core.somaxconn); Node's default is 511. */
export function listen(server: Server, host: string, port: number, flag: string, backlog?: number): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(bindFailure(err, `${host}:${port}`, flag, () => whoListens(port)));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const a = server.address();
      resolve(a && typeof a === 'object' ? { host: a.address, port: a.port } : { host, port });
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(backlog === undefined ? { port, host } : { port, host, backlog });
  });
}

/** Binds a UDP socket, with the same errors as listen(). */
export function bindUdp(socket: UdpSocket, host: string, port: number, flag: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(bindFailure(err, `UDP ${host}:${port}`, flag, () => undefined));
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      const a = socket.address();
      resolve({ host: a.address, port: a.port });
    });
  });
}
