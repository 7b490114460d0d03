/**
 * The balancer's listeners: the plain one, TLS (ALPN picks HTTP/2 or HTTP/1), and TCP routes; and
 * their drain on shutdown. Which plane serves a connection is decided here, once, at accept time.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createNetServer, isIPv6 } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { UpstreamStates } from '../../balancer/index.js';
import type { LbConfig } from '../../config/lb.js';
import { splitHostPort } from '../../config/fields.js';
import type { SnapshotStore } from '../../routing/snapshot-store.js';
import { tcpGroupKey } from '../../routing/snapshot.js';
import type { HttpProxy } from '../../proxy/node/proxy.js';
import type { FastHttpProxy } from '../../proxy/fast/proxy.js';
import type { H2Plane } from '../../proxy/h2/plane.js';
import { sniffPreface } from '../../proxy/h2/preface.js';
import type { PassiveHealth } from '../../proxy/passive-health.js';
import { TcpProxy } from '../../proxy/tcp-proxy.js';
import { UdpProxy } from '../../proxy/udp-proxy.js';
import { loadTlsContexts } from '../../proxy/tls.js';
import { bindUdp, listen } from './listen.js';
import { addAcceptors, closeAcceptors } from './accept-batch.js';
import { ClientConnLimit } from '../../core/conn-limit.js';
import { ipMatcher } from '../../core/ip-list.js';
import { readProxyHeader } from '../../proxy/proxy-protocol.js';

type Address = { host: string; port: number };

export interface Planes {
  /** The fast HTTP/1 plane; undefined with --data-plane node. */
  readonly fast: FastHttpProxy | undefined;
  /** The Node HTTP/1 plane (serves when there is no fast plane). */
  readonly node: HttpProxy;
  /** The HTTP/2 plane; undefined when http2 is off. */
  readonly h2: H2Plane | undefined;
}

/** What TCP routes pick from, and the events listeners report (metrics). */
export interface ListenerDeps {
  readonly snapshots: SnapshotStore;
  readonly states: UpstreamStates;
  readonly health: PassiveHealth;
  onConnection(listen: string, service: string, connected: boolean): void;
  onIdleClose(listen: string): void;
  /** A connection refused by limits.max-conns-per-client (listener: http, tls or tcp). */
  onConnRefused(listener: string): void;
  /** A trusted sender's connection closed for its PROXY protocol header (missing, malformed, timeout, closed). */
  onProxyProtocolRefused(listener: string, reason: string): void;
  /** A UDP route's session opened, or a datagram from a new client dropped (no_instance, too_many). */
  onUdpSession(listen: string, service: string, outcome: string): void;
  onUdpDatagram(listen: string, direction: 'in' | 'out', bytes: number): void;
}

const TOO_MANY_TEXT = 'switchyard: this client address already holds limits.max-conns-per-client connections\n';
/** The plain listener's refusal: an HTTP/1.1 answer, before anything reads the connection. */
const TOO_MANY = Buffer.from(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${TOO_MANY_TEXT.length}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n${TOO_MANY_TEXT}`, 'latin1');

export interface Listeners {
  readonly address: Address;
  readonly tlsAddress: Address | undefined;
  readonly tcpAddresses: readonly Address[];
  readonly udpAddresses: readonly Address[];
  /**
   * Reads the TLS certificates and keys again from their files and serves them to new connections;
   * open ones keep theirs. Throws (naming the file) and changes nothing when one does not load;
   * undefined when there is no TLS listener.
   */
  reloadTls(): { names: readonly string[] } | undefined;
  /** Stops accepting, lets open requests finish for up to drainMs, then cuts what is left. */
  close(drainMs: number): Promise<void>;
}

export async function openListeners(cfg: LbConfig, logger: Logger, planes: Planes, deps: ListenerDeps): Promise<Listeners> {
  const { fast, node, h2 } = planes;
  // One count per client address over every listener of this process (nginx's limit_conn per $binary_remote_addr).
  const limit = cfg.limits.maxConnsPerClient > 0
    ? new ClientConnLimit({ max: cfg.limits.maxConnsPerClient, exempt: cfg.limits.maxConnsExempt, logger, setting: 'limits.max-conns-per-client' })
    : undefined;
  /** A plain connection is answered 429; TLS (before its handshake) and TCP are closed without a word. */
  const admit = (listener: 'http' | 'tls' | 'tcp') => (socket: Socket): boolean => {
    if (limit === undefined || limit.admit(socket, listener === 'http' ? TOO_MANY : undefined)) return true;
    deps.onConnRefused(listener);
    return false;
  };
  const trusted = cfg.proxyProtocol ? ipMatcher(cfg.proxyProtocol.trusted) : undefined;
  /**
   * What every accepted connection goes through before a plane sees it: from a trusted sender, its
   * PROXY protocol header (required; it names the client), then the per-client limit, counted on
   * that client. Bytes read past the header are back on the socket; a refused connection is closed.
   */
  const intake = (listener: 'http' | 'tls' | 'tcp') => {
    const admitted = admit(listener);
    return (socket: Socket, proceed: () => void): void => {
      if (trusted === undefined || !trusted(socket.remoteAddress ?? '')) {
        if (admitted(socket)) proceed();
        return;
      }
      readProxyHeader(socket, cfg.timeouts.clientHeaderMs, () => {
        if (admitted(socket)) proceed();
      }, (kind, reason) => {
        deps.onProxyProtocolRefused(listener, kind);
        logger.debug({ client: socket.remoteAddress, listener, reason }, 'connection from a proxy-protocol.trusted sender closed');
        socket.destroy();
      });
    };
  };
  const intakeHttp = intake('http');
  // Node checks header deadlines on a timer (30s by default): tick often enough to honour the limit.
  const connectionsCheckingInterval = Math.max(100, Math.min(1000, cfg.timeouts.clientHeaderMs / 2));
  const nodeOptions = {
    connectionsCheckingInterval, headersTimeout: cfg.timeouts.clientHeaderMs, requestTimeout: 0, keepAliveTimeout: 65_000,
    maxHeaderSize: cfg.limits.maxHeaderSize,
  };
  /** A Node http(s) server for the Node plane, with its refusals worded like the fast plane's. */
  function nodePlane(server: Server, proto: 'http' | 'https'): Server {
    // One more than the limit, so a head over it is seen (and refused) rather than cut silently.
    server.maxHeadersCount = cfg.limits.maxHeaderCount + 1;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => node.handle(req, res, proto));
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => node.handleUpgrade(req, socket, head, proto));
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      const body = 'switchyard: CONNECT is not served: this is a reverse proxy, not a forward proxy\n';
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => node.onClientError(err, socket));
    // This server never listens (the listeners hand it their sockets), and Node starts tracking a
    // server's connections only on 'listening': without it, headersTimeout was never checked (a
    // client sending its head slowly held the connection for good) and closeIdleConnections()
    // closed nothing (a shutdown waited for every idle keep-alive client to leave).
    server.emit('listening');
    return server;
  }
  const nodePlain = fast ? undefined : nodePlane(createServer(nodeOptions), 'http');
  const toNode = (s: Socket): void => {
    nodePlain?.emit('connection', s);
    s.resume();
  };
  // Accepted paused: the fast plane starts reading once its reader is in place. The Node plane's plain
  // listener is fronted when the per-client limit counts first, or to look at the first bytes for the
  // HTTP/2 preface (h2c prior knowledge) before Node's parser does.
  const server: NetServer = fast
    ? createNetServer({ noDelay: true, pauseOnConnect: true }, (socket) => intakeHttp(socket, () => fast.accept(socket, 'http')))
    : h2 || limit || trusted ? createNetServer({ noDelay: true, pauseOnConnect: true }, (socket) => intakeHttp(socket, () => {
      if (h2) sniffPreface(socket, (s, b) => h2.accept(s, b), toNode);
      else toNode(socket);
    })) : (nodePlain as Server);
  const at = splitHostPort(cfg.listen);
  const address = await listen(server, at.host, at.port, '--listen');

  let tlsServer: NetServer | undefined;
  let nodeTls: Server | undefined;
  let tlsAddress: Address | undefined;
  let reloadTls: (() => { names: readonly string[] }) | undefined;
  if (cfg.tls) {
    const certs = cfg.tls.certs;
    let ctx = loadTlsContexts(certs);
    // SNI looks the name up in whatever set is current, so a reload needs no new server.
    const tlsOptions = { cert: ctx.defaultCert, key: ctx.defaultKey, SNICallback: (name: string, cb: (err: Error | null, c?: SecureContext) => void) => ctx.sniCallback(name, cb) };
    // ALPN picks the plane: h2 goes to the HTTP/2 plane, everything else to the HTTP/1 plane.
    const alpn = h2 ? ['h2', 'http/1.1'] : ['http/1.1'];
    nodeTls = fast ? undefined : nodePlane(createServer(nodeOptions), 'https');
    const nodeTlsServer = nodeTls;
    const tls = createTlsServer({ ...tlsOptions, ALPNProtocols: alpn }, (socket: TLSSocket) => {
      if (h2 && socket.alpnProtocol === 'h2') h2.accept(socket);
      else if (fast) fast.accept(socket, 'https');
      else nodeTlsServer?.emit('connection', socket);
    });
    // A handshake that fails is the client's problem: it must not take the listener down.
    tls.on('tlsClientError', (err: Error) => logger.debug({ err: err.message }, 'TLS handshake failed'));
    // A front reads a PROXY header before the handshake, and closes a connection over the per-client
    // limit before its handshake costs anything.
    const intakeTls = intake('tls');
    tlsServer = limit === undefined && trusted === undefined ? tls : createNetServer({ noDelay: true, pauseOnConnect: true }, (socket) => intakeTls(socket, () => {
      // The TLS socket reads what is buffered here first (its ClientHello, when it came with the header).
      tls.emit('connection', socket);
    }));
    const t = splitHostPort(cfg.tls.listen);
    tlsAddress = await listen(tlsServer, t.host, t.port, 'tls.listen');
    reloadTls = () => {
      const next = loadTlsContexts(certs);
      // The default context serves clients that send no SNI name (and any name no certificate has).
      tls.setSecureContext({ cert: next.defaultCert, key: next.defaultKey });
      ctx = next;
      return { names: next.names };
    };
    logger.info({ listen: `${tlsAddress.host}:${tlsAddress.port}`, names: ctx.names }, 'TLS listener ready');
  }

  const tcp: { proxy: TcpProxy; address: Address }[] = [];
  for (const t of cfg.tcp) {
    const tp = new TcpProxy({
      groupKey: tcpGroupKey(t.service, t.balance), snapshots: deps.snapshots, states: deps.states, health: deps.health, logger,
      connectTimeoutMs: cfg.timeouts.connectMs, idleTimeoutMs: cfg.timeouts.tunnelMs, attempts: cfg.retries.attempts, hashByClientIp: t.balance === 'hash',
      sendProxy: t.sendProxy,
      onConnection: (_u, ok) => deps.onConnection(t.listen, t.service, ok),
      onIdleClose: () => deps.onIdleClose(t.listen),
      ...(limit || trusted ? { intake: intake('tcp') } : {}),
    });
    const l = splitHostPort(t.listen);
    tcp.push({ proxy: tp, address: await listen(tp.server, l.host, l.port, `tcp listen ${t.listen}`) });
  }

  const udp: { proxy: UdpProxy; address: Address }[] = [];
  for (const u of cfg.udp) {
    const l = splitHostPort(u.listen);
    const up = new UdpProxy(isIPv6(l.host.replace(/^\[|\]$/g, '')) ? 'udp6' : 'udp4', {
      groupKey: tcpGroupKey(u.service, u.balance), snapshots: deps.snapshots, states: deps.states, health: deps.health, logger,
      idleTimeoutMs: u.idleTimeoutMs, maxSessions: u.maxSessions, hashByClientIp: u.balance === 'hash',
      onSession: (outcome) => deps.onUdpSession(u.listen, u.service, outcome),
      onDatagram: (direction, bytes) => deps.onUdpDatagram(u.listen, direction, bytes),
    });
    udp.push({ proxy: up, address: await bindUdp(up.socket, l.host, l.port, `udp listen ${u.listen}`) });
  }

  // Every TCP listener takes a burst of new connections in a few event-loop turns, not one per turn.
  const acceptors = await addAcceptors([server, ...(tlsServer ? [tlsServer] : []), ...tcp.map((t) => t.proxy.server)], cfg.acceptBatch, { logger });

  return {
    address, tlsAddress, tcpAddresses: tcp.map((t) => t.address), udpAddresses: udp.map((u) => u.address),
    reloadTls: () => reloadTls?.(),
    async close(drainMs) {
      const acceptorsClosed = closeAcceptors(acceptors);
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      const tlsDrained = tlsServer ? new Promise<void>((resolve) => tlsServer.close(() => resolve())) : Promise.resolve();
      if (fast) fast.closeIdle();
      else {
        nodePlain?.closeIdleConnections();
        nodeTls?.closeIdleConnections();
      }
      h2?.closeIdle();
      const timer = setTimeout(() => {
        if (fast) fast.destroyAll();
        else {
          nodePlain?.closeAllConnections();
          nodeTls?.closeAllConnections();
        }
        h2?.destroyAll();
      }, drainMs);
      timer.unref();
      await Promise.all([acceptorsClosed, drained, tlsDrained, ...tcp.map((t) => t.proxy.close(drainMs)), ...udp.map((u) => u.proxy.close())]);
      clearTimeout(timer);
    },
  };
}
