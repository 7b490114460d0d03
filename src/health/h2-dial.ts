/** The HTTP/2 connection the gRPC and H2PING checks open: h2c, or TLS with ALPN h2 (verified unless told not to). */
import { connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { joinHostPort } from './tcp-check.js';

export interface H2DialOptions {
  readonly useTls: boolean;
  readonly tlsSkipVerify?: boolean | undefined;
  readonly tlsServerName?: string | undefined;
}

export function dialH2(host: string, port: number, o: H2DialOptions): ClientHttp2Session {
  // Go dials the local system for an empty host (":443").
  const dialHost = host === '' ? 'localhost' : host;
  return connect(`${o.useTls ? 'https' : 'http'}://${joinHostPort(dialHost, port)}`, {
    ...(o.useTls ? { rejectUnauthorized: o.tlsSkipVerify !== true, ALPNProtocols: ['h2'], ...(o.tlsServerName ? { servername: o.tlsServerName } : {}) } : {}),
  });
}
