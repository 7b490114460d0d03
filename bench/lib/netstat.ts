// The kernel's listen-queue situation for the benchmarks: the sysctls that bound accept and SYN queues, the TcpExt
// counters that count what overflowed them (/proc/net/netstat), and the backlog a listening socket really got and
// which processes hold it (ss).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * TcpExt counters that show a connection waiting on a full queue or a retransmitted SYN; then what costs an
 * established connection a retransmission: RetransSegs (Tcp, /proc/net/snmp), TCPTimeouts (retransmission timer
 * expiries: at least 200 ms each, the minimum RTO, on loopback too) and SoftnetDrops (packets the kernel dropped
 * because a CPU's input backlog, net.core.netdev_max_backlog, was full: on loopback every sent packet goes through
 * it, and a drop there is only recovered by a retransmission).
 */
export const LISTEN_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPSynRetrans', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'RetransSegs', 'TCPTimeouts', 'SoftnetDrops'] as const;
export type ListenCounter = (typeof LISTEN_COUNTERS)[number];
export type ListenCounters = Record<ListenCounter, number>;

/** The counters now (NaN for one this kernel does not have). They count every socket of this network namespace. */
export function listenCounters(): ListenCounters {
  const all = new Map<string, number>();
  try {
    // The file holds pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: v1 v2 ...".
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = (lines[i] ?? '').trim().split(/\s+/);
      const values = (lines[i + 1] ?? '').trim().split(/\s+/);
      if (names[0] !== 'TcpExt:' || values[0] !== 'TcpExt:') continue;
      for (let k = 1; k < names.length; k++) all.set(names[k] as string, Number(values[k]));
    }
  } catch {
    // No /proc/net/netstat (not Linux): every counter stays NaN and the report says "–".
  }
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
    const names = (lines[0] ?? '').trim().split(/\s+/);
    const values = (lines[1] ?? '').trim().split(/\s+/);
    const i = names.indexOf('RetransSegs');
    if (i > 0) all.set('RetransSegs', Number(values[i]));
  } catch {
    // Not Linux.
  }
  try {
    // One line per CPU, hexadecimal columns; the second is the packets dropped on a full input backlog.
    let drops = 0;
    for (const line of readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) drops += parseInt(line.trim().split(/\s+/)[1] ?? 'x', 16);
    all.set('SoftnetDrops', drops);
  } catch {
    // Not Linux.
  }
  return Object.fromEntries(LISTEN_COUNTERS.map((n) => [n, all.get(n) ?? NaN])) as ListenCounters;
}

export function counterDelta(a: ListenCounters, b: ListenCounters): ListenCounters {
  return Object.fromEntries(LISTEN_COUNTERS.map((n) => [n, b[n] - a[n]])) as ListenCounters;
}

/** A sysctl read from /proc/sys ("net/core/somaxconn"); null when unreadable. */
export function sysctl(path: string): string | null {
  try {
    return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The sysctls that bound the accept queue (somaxconn caps listen()'s backlog) and the SYN queue. */
export function listenSysctls(): Record<string, string | null> {
  return {
    'net.core.somaxconn': sysctl('net/core/somaxconn'),
    'net.ipv4.tcp_max_syn_backlog': sysctl('net/ipv4/tcp_max_syn_backlog'),
    'net.ipv4.tcp_syncookies': sysctl('net/ipv4/tcp_syncookies'),
    'net.ipv4.tcp_abort_on_overflow': sysctl('net/ipv4/tcp_abort_on_overflow'),
  };
}

export interface ListenSocket {
  /** The accept-queue limit the kernel gave it (ss Send-Q of a LISTEN socket: min(listen() backlog, somaxconn)). */
  backlog: number;
  /** How many processes hold it open (ss -p): 1 when one process accepts, 1 + N when N cluster workers share it. */
  holders: number;
}

/**
 * The sockets listening on 127.0.0.1:port (several with SO_REUSEPORT). Null when ss (iproute2) is missing; holders
 * count only processes this user may inspect, which includes every process the harness started.
 */
export function listenSockets(port: number): ListenSocket[] | null {
  const r = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('LISTEN'))
    .map((l) => ({ backlog: Number(l.split(/\s+/)[2]), holders: new Set([...l.matchAll(/pid=(\d+)/g)].map((m) => m[1])).size }));
}
