/**
 * The Consul H2PING check: an HTTP/2 connection to `host:port` (TLS with ALPN h2 by default, h2c
 * with H2PingUseTLS false) and one PING frame; the PING's ACK within the timeout is passing. It proves
 * the peer's HTTP/2 stack answers, which a TCP connect does not, without asking anything of the
 * application (no request, no path).
 */
import { goTlsErrorText } from './go-tls-errors.js';
import { dialH2 } from './h2-dial.js';
import { oneShot } from './one-shot.js';
import { dialErrorText, isDialError, joinHostPort, primaryError, splitHostPort } from './tcp-check.js';
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
  let connected = false;
  const critical = (output: string): CheckResult => ({ status: 'critical', output });
  const failure = (why: string): CheckResult => critical(connected ? `HTTP2 ping failed: ${why}` : `Failed to dial to ${def.address}: ${why}`);
  return oneShot({
    signal, timeoutMs: def.timeoutMs,
    expired: () => failure(connected ? 'context deadline exceeded' : `dial tcp ${addr}: i/o timeout`),
    aborted: () => failure('context canceled'),
  }, (settle) => {
    const session = dialH2(host, port, def);
    session.on('error', (err: Error) => {
      const e = primaryError(err);
      if (connected) settle(failure(err.message));
      else if (isDialError(e)) settle(failure(dialErrorText(err, addr, host)));
      else settle(failure(goTlsErrorText(e) ?? (e.message ?? String(e.code)).trim()));
    });
    // A peer that closes without an error (an HTTP/1.1 server answering the preface with a 400 and a FIN).
    session.on('close', () => settle(failure('unexpected EOF')));
    session.once('connect', () => {
      connected = true;
      session.ping((err) => {
        // Node cancels the PING when the peer closes first, as an HTTP/1.1 server does after its 400.
        if ((err as NodeJS.ErrnoException | null)?.code === 'ERR_HTTP2_PING_CANCEL') {
          settle(failure(`the connection closed before the PING was acknowledged (not an HTTP/2 ${def.useTls ? 'server' : 'cleartext (h2c) server'}?)`));
        } else if (err) settle(failure(err.message));
        else settle({ status: 'passing', output: 'HTTP2 ping was successful' });
      });
    });
    // GOAWAY, then close: the peer sees an orderly end, as Consul's Shutdown gives it.
    return (r) => (r.status === 'passing' ? session.close() : session.destroy());
  });
}
