/** The HTTP/2 connection the gRPC and H2PING checks open: h2c, or TLS with ALPN h2 (verified unless told not to). */
import type { ClientHttp2Session } from 'node:http2';
import { connectH2 } from '../core/h2-connect.js';

export interface H2DialOptions {
  readonly useTls: boolean;
  readonly tlsSkipVerify?: boolean | undefined;
  readonly tlsServerName?: string | undefined;
}

export function dialH2(host: string, port: number, o: H2DialOptions): ClientHttp2Session {
  // Go dials the local system for an empty host (":443").
  const dialHost = host === '' ? 'localhost' : host;
  return connectH2({
    host: dialHost, port,
    ...(o.useTls ? { tls: { rejectUnauthorized: o.tlsSkipVerify !== true, ...(o.tlsServerName ? { servername: o.tlsServerName } : {}) } } : {}),
  });
}
