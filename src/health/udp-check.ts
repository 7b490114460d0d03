/**
 * The Consul UDP check: one empty datagram to `host:port` on a connected socket, then a wait of up
 * to the timeout. A reply, or silence until the timeout, is passing (`UDP connect <addr>: Success`):
 * UDP has no handshake, and a service that does not answer unknown datagrams is still up. What makes
 * it critical is the ICMP "port unreachable" a closed port draws, which a connected socket receives
 * as ECONNREFUSED, or an address that cannot be resolved or used.
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import { GO_ERRNO_TEXT, joinHostPort, primaryError, splitHostPort } from './tcp-check.js';
import { oneShot } from './one-shot.js';
import type { CheckResult } from './types.js';

export interface UdpCheckDefinition {
  /** `host:port` or `[v6]:port`, as Consul's `UDP` field. */
  address: string;
  timeoutMs: number;
}

/** Never rejects; see the module comment for what is passing. */
export function runUdpCheck(def: UdpCheckDefinition, signal?: AbortSignal): Promise<CheckResult> {
  const parsed = splitHostPort(def.address);
  if ('error' in parsed) return Promise.resolve({ status: 'critical', output: `dial udp: ${parsed.error.replace('lookup tcp/', 'lookup udp/')}` });
  const { host, port } = parsed;
  const passing: CheckResult = { status: 'passing', output: `UDP connect ${def.address}: Success` };
  const critical = (output: string): CheckResult => ({ status: 'critical', output });
  let remote = def.address;
  let ends = remote;
  return oneShot({
    signal, timeoutMs: def.timeoutMs,
    // Silence for the whole timeout is the usual passing case, as in Consul (its read times out).
    expired: () => passing,
    aborted: () => critical(`dial udp ${def.address}: operation was canceled`),
  }, (settle, done) => {
    let socket: Socket | undefined;
    // Go's wording: `dial udp <remote>: connect: …`, `write|read udp <local>-><remote>: read: …`.
    const failed = (err: unknown): void => {
      const e = primaryError(err);
      const text = GO_ERRNO_TEXT[e.code ?? ''] ?? (e.message ?? String(e.code));
      if (e.syscall === 'connect') settle(critical(`dial udp ${remote}: connect: ${text}`));
      else {
        const op = e.syscall === 'send' ? 'write' : 'read';
        settle(critical(`${op} udp ${ends}: ${op}: ${text}`));
      }
    };
    void (async () => {
      let address: string;
      let family: number;
      try {
        // Go dials the local system for an empty host (":53").
        const name = host === '' ? 'localhost' : host;
        const found = isIP(name) !== 0 ? { address: name, family: isIP(name) } : await lookup(name);
        address = found.address;
        family = found.family;
      } catch {
        settle(critical(`dial udp: lookup ${host}: no such host`));
        return;
      }
      if (done()) return;
      const s = createSocket(family === 6 ? 'udp6' : 'udp4');
      socket = s;
      remote = joinHostPort(address, port);
      ends = remote;
      s.on('message', () => settle(passing));
      // A connected UDP socket reports the ICMP error of an earlier datagram on its next receive.
      s.on('error', failed);
      s.connect(port, address, (err?: Error) => {
        if (done()) return;
        // Unconnected, the socket could not send without an address: a throw here would reach the agent's top.
        if (err) {
          failed(err);
          return;
        }
        const local = s.address();
        ends = `${joinHostPort(local.address, local.port)}->${remote}`;
        s.send(Buffer.alloc(0), (sendErr) => {
          if (sendErr) failed(sendErr);
        });
      });
    })();
    return () => {
      try {
        socket?.close();
      } catch {
        // already closed
      }
    };
  });
}
