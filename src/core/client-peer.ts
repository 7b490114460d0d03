/**
 * The client a connection speaks for. Usually the socket's peer; behind a trusted proxy that sends
 * a PROXY protocol header, the address that header names. Everything that keys on "the client"
 * (per-client limits, hashing by client IP, X-Forwarded-For, access logs) asks here, not the socket.
 */
import type { Socket } from 'node:net';

const PEER = Symbol('switchyard.clientPeer');

export interface ClientPeer {
  readonly address: string;
  readonly port: number;
}

type Marked = { [PEER]?: ClientPeer; _parent?: unknown };

/** Records the client a proxy in front named for this connection. */
export function setClientPeer(socket: Socket, peer: ClientPeer): void {
  (socket as unknown as Marked)[PEER] = peer;
}

function peerOf(socket: object): ClientPeer | undefined {
  const s = socket as Marked;
  // A TLS socket built over an accepted socket keeps it as _parent (Node has since v0.11): the
  // header was read from that one, before the handshake. HTTP/2 hands out a proxy of its socket,
  // which forwards property reads, symbols included.
  return s[PEER] ?? (typeof s._parent === 'object' && s._parent !== null ? (s._parent as Marked)[PEER] : undefined);
}

/** The client's IP address ('' when the socket no longer knows it). */
export function clientIp(socket: Socket): string {
  return peerOf(socket)?.address ?? socket.remoteAddress ?? '';
}

/** The client's port (0 when unknown). */
export function clientPort(socket: Socket): number {
  return peerOf(socket)?.port ?? socket.remotePort ?? 0;
}
