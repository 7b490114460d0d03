// The kernel's listen-queue situation for the benchmarks: the sysctls that bound accept and SYN queues, the TcpExt
// counters that count what overflowed them (/proc/net/netstat), and the backlog a listening socket really got (ss).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** TcpExt counters that show a connection waiting on a full queue or a retransmitted SYN. */
export const LISTEN_COUNTERS = ['ListenOverflows', 'ListenDrops', 'TCPSynRetrans', 'TCPReqQFullDrop', 'TCPReqQFullDoCookies'] as const;
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

/**
 * The accept-queue limit the kernel gave the socket listening on 127.0.0.1:port (ss shows it as Send-Q of a
 * LISTEN socket: min(backlog passed to listen(), somaxconn)); one entry per listening socket (SO_REUSEPORT gives
 * several). Null when ss (iproute2) is missing.
 */
export function listenBacklogs(port: number): number[] | null {
  const r = spawnSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || typeof r.stdout !== 'string') return null;
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === 'LISTEN' && f.length >= 4)
    .map((f) => Number(f[2]));
}
