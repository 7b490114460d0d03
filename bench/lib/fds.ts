// What a process's open file descriptors are: its TCP sockets sorted by the ports they connect (from /proc/net/tcp
// and tcp6, matched by inode), other sockets, pipes and the rest; so that a growing fd count can be told apart as
// client connections, upstream pool connections or something else.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

interface TcpSock {
  localPort: number;
  remotePort: number;
  /** Kernel TCP state, hex as in the file: 01 ESTABLISHED, 0A LISTEN, 06 TIME_WAIT, 08 CLOSE_WAIT, … */
  state: string;
}

function tcpTable(): Map<string, TcpSock> {
  const byInode = new Map<string, TcpSock>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n').slice(1)) {
      const f = l.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (addr: string | undefined): number => parseInt(addr?.split(':')[1] ?? '', 16);
      byInode.set(f[9] as string, { localPort: port(f[1]), remotePort: port(f[2]), state: f[3] as string });
    }
  }
  return byInode;
}

export interface FdKinds {
  total: number;
  /** Accepted connections on the listen port (client side of the proxy). */
  clients: number;
  /** Connections to one of the upstream ports (the proxy's pools). */
  upstream: number;
  /** Of those, in CLOSE_WAIT: the peer closed and the process has not (a leak if it grows). */
  closeWait: number;
  otherTcp: number;
  otherSockets: number;
  pipes: number;
  other: number;
}

/** Counts a process's fds by kind; NaN everywhere when the process is gone. */
export function fdKinds(pid: number, o: { listenPort: number; upstreamPorts: readonly number[] }): FdKinds {
  const k: FdKinds = { total: 0, clients: 0, upstream: 0, closeWait: 0, otherTcp: 0, otherSockets: 0, pipes: 0, other: 0 };
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { total: NaN, clients: NaN, upstream: NaN, closeWait: NaN, otherTcp: NaN, otherSockets: NaN, pipes: NaN, other: NaN };
  }
  const tcp = tcpTable();
  const upstream = new Set(o.upstreamPorts);
  for (const n of names) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${n}`);
    } catch {
      continue; // closed between the listing and the read
    }
    k.total++;
    const sock = /^socket:\[(\d+)\]$/.exec(target);
    if (sock) {
      const t = tcp.get(sock[1] as string);
      if (!t) k.otherSockets++;
      else if (t.localPort === o.listenPort && t.state !== '0A') k.clients++;
      else if (upstream.has(t.remotePort)) {
        k.upstream++;
        if (t.state === '08') k.closeWait++;
      } else k.otherTcp++;
    } else if (target.startsWith('pipe:')) k.pipes++;
    else k.other++;
  }
  return k;
}
