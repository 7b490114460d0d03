/**
 * HTTP/2 client sessions (to instances, health-checked servers and etcd members) on sockets we make
 * ourselves, so that a TLS socket is destroyed when it fails.
 *
 * Node (v20) leaves it open otherwise: when a server refuses the session after the handshake with a
 * TLS alert (TLS 1.3 checks a client certificate after the client thinks it is connected), the
 * stream fails, the session is marked destroyed, but the socket stays open and the session never
 * emits 'close'. Every refused session kept a file descriptor for good, and a pool waiting for the
 * 'close' to forget the session waited for ever.
 */
import { connect } from 'node:http2';
import type { ClientHttp2Session, ClientSessionOptions } from 'node:http2';
import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';

export interface H2Dial {
  readonly host: string;
  readonly port: number;
  /** TLS with ALPN h2; SNI is the host unless it is an IP (RFC 6066) or `tls.servername` says otherwise. Absent: h2c. */
  readonly tls?: ConnectionOptions | undefined;
  /** Nagle off: small frames (a unary call's message, its trailers) must not wait. */
  readonly noDelay?: boolean;
}

/** A client session to host:port; `session` holds the HTTP/2 settings. */
export function connectH2(d: H2Dial, session: ClientSessionOptions = {}): ClientHttp2Session {
  const authority = `${d.tls !== undefined ? 'https' : 'http'}://${isIP(d.host) === 6 ? `[${d.host}]` : d.host}:${d.port}`;
  return connect(authority, { ...session, createConnection: () => dialSocket(d) });
}

function dialSocket(d: H2Dial): Socket {
  if (d.tls === undefined) return netConnect({ host: d.host, port: d.port, noDelay: d.noDelay === true });
  const s = tlsConnect({
    host: d.host, port: d.port, ALPNProtocols: ['h2'],
    ...(isIP(d.host) === 0 ? { servername: d.host } : {}),
    ...d.tls,
  });
  if (d.noDelay === true) s.setNoDelay(true);
  s.on('error', () => s.destroy());
  return s;
}
