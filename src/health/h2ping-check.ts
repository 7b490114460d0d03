/**
 * The Consul H2PING check: an HTTP/2 connection to `host:port` (TLS with ALPN h2 by default, h2c
 * with H2PingUseTLS false) and one PING frame; the PING's ACK within the timeout is passing. It proves
 * the peer's HTTP/2 stack answers, which a TCP connect does not, without asking anything of the
 * application (no request, no path).
 */
import { connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { dialErrorText, joinHostPort, primaryError, splitHostPort } from './tcp-check.js';
import { goTlsErrorText } from './go-tls-errors.js';
import { effectiveTimeoutMs } from './types.js';
import type { CheckResult } from './types.js';

export interface H2PingCheckDefinition {
  /** Consul's `H2PING`: `host:port`. */
  address: string;
  useTls: boolean;
  tlsSkipVerify?: boolean | undefined;
  tlsServerName?: string | undefined;
  timeoutMs: number;
}

/** Runs one check; never rejects. */
export function runH2PingCheck(def: H2PingCheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const parsed = splitHostPort(def.address);
  if ('error' in parsed) return Promise.resolve({ status: 'critical', output: `Failed to dial to ${def.address}: dial tcp: ${parsed.error}` });
  const { host, port } = parsed;
  const addr = joinHostPort(host, port);
  return new Promise<CheckResult>((resolve) => {
    let settled = false;
    // Declared before it is assigned: finish() may run (abort, timeout) before the connect starts.
    // eslint-disable-next-line prefer-const
    let session: ClientHttp2Session | undefined;
    let connected = false;
    const finish = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      // GOAWAY, then close: the peer sees an orderly end, as Consul's Shutdown gives it.
      if (r.status === 'passing') session?.close();
      else session?.destroy();
      resolve(r);
    };
    const critical = (output: string): void => finish({ status: 'critical', output });
    const failure = (why: string): void => critical(connected ? `HTTP2 ping failed: ${why}` : `Failed to dial to ${def.address}: ${why}`);
    function onAbort(): void {
      failure('context canceled');
    }
    const timer = setTimeout(() => failure(connected ? 'context deadline exceeded' : `dial tcp ${addr}: i/o timeout`), effectiveTimeoutMs(def.timeoutMs));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    const dialHost = host === '' ? 'localhost' : host;
    session = connect(`${def.useTls ? 'https' : 'http'}://${joinHostPort(dialHost, port)}`, {
      ...(def.useTls ? { rejectUnauthorized: def.tlsSkipVerify !== true, ALPNProtocols: ['h2'], ...(def.tlsServerName ? { servername: def.tlsServerName } : {}) } : {}),
    });
    session.on('error', (err: Error) => {
      if (connected) {
        failure(err.message);
        return;
      }
      const e = primaryError(err);
      const code = e.code ?? '';
      if (e.syscall === 'connect' || e.syscall === 'getaddrinfo' || code === 'ENOTFOUND' || code.startsWith('EAI_')) failure(dialErrorText(err, addr, host));
      else failure(goTlsErrorText(e) ?? (e.message ?? code).trim());
    });
    // A peer that closes without an error (an HTTP/1.1 server answering the preface with a 400 and a FIN).
    session.on('close', () => failure('unexpected EOF'));
    session.once('connect', () => {
      connected = true;
      if (settled) return;
      session?.ping((err) => {
        // Node cancels the PING when the peer closes first, as an HTTP/1.1 server does after its 400.
        if ((err as NodeJS.ErrnoException | null)?.code === 'ERR_HTTP2_PING_CANCEL') {
          failure(`the connection closed before the PING was acknowledged (not an HTTP/2 ${def.useTls ? 'server' : 'cleartext (h2c) server'}?)`);
        } else if (err) failure(err.message);
        else finish({ status: 'passing', output: 'HTTP2 ping was successful' });
      });
    });
  });
}
