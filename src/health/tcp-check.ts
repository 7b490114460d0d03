/**
 * The Consul TCP check (connect, then close; with TCPUseTLS, connect and complete a TLS handshake)
 * and the Go-style dial error text the other checks share.
 */
import { connect as netConnect } from 'node:net';
import type { Socket, TcpNetConnectOpts } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { goTlsErrorText } from './go-tls-errors.js';
import { oneShot } from './one-shot.js';
import type { CheckResult } from './types.js';

export interface TcpCheckDefinition {
  /** `host:port` or `[v6]:port`, as Consul's `TCP` field. */
  address: string;
  timeoutMs: number;
  /** Consul's TCPUseTLS: the check passes only once a TLS handshake completes (and verifies, unless tlsSkipVerify). */
  useTls?: boolean | undefined;
  tlsSkipVerify?: boolean | undefined;
  tlsServerName?: string | undefined;
}

/** Opens the connection; injectable because loopback cannot make a connect hang deterministically. */
export type TcpConnector = (opts: TcpNetConnectOpts) => Socket;

// Go's strerror spellings (syscall.Errno.Error()), which Consul copies into check output verbatim.
export const GO_ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ETIMEDOUT: 'connection timed out',
  EADDRNOTAVAIL: 'cannot assign requested address',
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
  EPIPE: 'broken pipe',
  EMSGSIZE: 'message too long',
};

// Go resolves these service names without /etc/services (net/lookup.go), so Consul accepts them as ports.
const GO_TCP_SERVICES: Readonly<Record<string, number>> = {
  ftp: 21, ftps: 990, gopher: 70, http: 80, https: 443, imap2: 143, imap3: 220, imaps: 993,
  pop3: 110, pop3s: 995, smtp: 25, submissions: 465, ssh: 22, telnet: 23,
};

interface NodeNetError {
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
  message?: string;
}

/** Node reports a Happy-Eyeballs failure as an AggregateError; Go reports the first attempt's error. */
export function primaryError(err: unknown): NodeNetError {
  if (err instanceof AggregateError && err.errors.length > 0) return primaryError(err.errors[0]);
  if (typeof err === 'object' && err !== null) return err as NodeNetError;
  return { message: String(err) };
}

/** Whether a failure happened while dialling (resolving or connecting), as opposed to after it (a TLS handshake, a protocol). */
export function isDialError(e: NodeNetError): boolean {
  const code = e.code ?? '';
  return e.syscall === 'connect' || e.syscall === 'getaddrinfo' || code === 'ENOTFOUND' || code.startsWith('EAI_');
}

/** Go's net.JoinHostPort: brackets an IPv6 literal. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Go's net.SplitHostPort plus port parsing, with Go's error wording (`address x: missing port in address`). */
export function splitHostPort(address: string): { host: string; port: number } | { error: string } {
  const addrErr = (why: string, addr = address): { error: string } => ({ error: `address ${addr}: ${why}` });
  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    if (end < 0) return addrErr('missing \']\' in address');
    const rest = address.slice(end + 1);
    if (rest === '') return addrErr('missing port in address');
    if (!rest.startsWith(':')) return addrErr(rest.includes(':') ? 'too many colons in address' : 'missing port in address');
    host = address.slice(1, end);
    portText = rest.slice(1);
    if (portText.includes(':')) return addrErr('too many colons in address');
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) return addrErr('missing port in address');
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) return addrErr('too many colons in address');
    if (host.includes('[') || host.includes(']')) return addrErr(`unexpected '${host.includes('[') ? '[' : ']'}' in address`);
  }
  if (/^[0-9]+$/.test(portText)) {
    const port = Number(portText);
    if (port > 65535) return addrErr('invalid port', portText);
    return { host, port };
  }
  const named = Object.hasOwn(GO_TCP_SERVICES, portText.toLowerCase()) ? GO_TCP_SERVICES[portText.toLowerCase()] : undefined;
  if (named === undefined) return { error: `lookup tcp/${portText}: unknown port` };
  return { host, port: named };
}

/**
 * The text after `dial tcp` that Go's net.Dial error would carry, e.g.
 * `dial tcp 127.0.0.1:1: connect: connection refused` or `dial tcp: lookup x.invalid: no such host`.
 * `target` is the address being dialled, used when Node does not say which resolved address failed.
 */
export function dialErrorText(err: unknown, target: string, host?: string): string {
  const e = primaryError(err);
  const code = e.code ?? '';
  if (code === 'ENOTFOUND' || code === 'EAI_NONAME' || code === 'EAI_NODATA') {
    return `dial tcp: lookup ${e.hostname ?? host ?? target}: no such host`;
  }
  if (code === 'EAI_AGAIN') return `dial tcp: lookup ${e.hostname ?? host ?? target}: server misbehaving`;
  const addr = e.address !== undefined && e.port !== undefined ? joinHostPort(e.address, e.port) : target;
  const text = GO_ERRNO_TEXT[code];
  if (text !== undefined) return `dial tcp ${addr}: ${e.syscall ?? 'connect'}: ${text}`;
  return `dial tcp ${addr}: ${e.message ?? code}`;
}

/**
 * Connects to `def.address` and closes at once, as Consul's CheckTCP does. Never rejects:
 * success is passing with `TCP connect <addr>: Success`, any failure is critical with Go's dial text.
 */
export function runTcpCheck(
  def: TcpCheckDefinition,
  signal?: AbortSignal,
  connect: TcpConnector = netConnect,
): Promise<CheckResult> {
  const parsed = splitHostPort(def.address);
  if ('error' in parsed) return Promise.resolve({ status: 'critical', output: `dial tcp: ${parsed.error}` });
  const { host, port } = parsed;
  // Go dials the local system for an empty host (":80"); Node's default host is localhost too.
  const dialHost = host === '' ? 'localhost' : host;
  const target = joinHostPort(host, port);

  let resolvedTarget = target;
  const critical = (output: string): CheckResult => ({ status: 'critical', output });
  return oneShot({
    signal, timeoutMs: def.timeoutMs,
    expired: () => critical(`dial tcp ${resolvedTarget}: i/o timeout`),
    aborted: () => critical(`dial tcp ${resolvedTarget}: operation was canceled`),
  }, (settle) => {
    let socket: Socket;
    try {
      socket = def.useTls
        ? tlsConnect({
          host: dialHost, port, rejectUnauthorized: def.tlsSkipVerify !== true,
          ...(def.tlsServerName ? { servername: def.tlsServerName } : {}),
        })
        : connect({ host: dialHost, port });
    } catch (err) {
      settle(critical(dialErrorText(err, target, host)));
      return undefined;
    }
    // Go names the resolved address in its timeout text, not the host name.
    socket.on('lookup', (err: Error | null, address: string) => {
      if (err === null && typeof address === 'string') resolvedTarget = joinHostPort(address, port);
    });
    if (def.useTls) {
      socket.once('secureConnect', () => settle({ status: 'passing', output: `TCP+TLS connect ${def.address}: Success` }));
      socket.on('error', (err) => {
        const e = primaryError(err);
        settle(critical(isDialError(e) ? dialErrorText(err, resolvedTarget, host) : goTlsErrorText(e) ?? (e.message ?? String(e.code)).trim()));
      });
      // A peer that accepts and closes before the handshake ends: Go's handshake reads EOF.
      socket.once('close', () => settle(critical('EOF')));
    } else {
      socket.once('connect', () => settle({ status: 'passing', output: `TCP connect ${def.address}: Success` }));
      socket.on('error', (err) => settle(critical(dialErrorText(err, resolvedTarget, host))));
    }
    return (r) => {
      if (def.useTls && r.status === 'passing') {
        // close_notify and FIN, as Go's Close sends, so the server sees a finished handshake, not a reset.
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      } else socket.destroy();
    };
  });
}
