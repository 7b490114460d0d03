/**
 * How the balancer speaks TLS to an instance (protocol https, h2, grpcs): the certificate check a
 * route asks for, as one "flavour" per distinct (verify, server name, CA) so pools never hand a
 * connection verified one way to a route that asked for another.
 *
 * Verification is on by default (Go's, Traefik's and Fabio's default; nginx's is off, which is how
 * a proxy ends up trusting whoever answers on the instance's port). A CA file is read when the
 * routes are loaded (start and SIGHUP), so a missing or empty one is a config error naming the
 * route, not a 502 on the first request.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { X509Certificate, createHash } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import type { RouteSpec } from '../config/route-spec.js';
import { SwitchyardError } from '../core/errors.js';

export interface UpstreamTls {
  /** Same key, same certificate check: connections may be shared. */
  readonly key: string;
  readonly skipVerify: boolean;
  /** SNI and the name checked; undefined: the instance's address. */
  readonly serverName: string | undefined;
  /** PEM of the CAs trusted instead of the system's. */
  readonly ca: string | undefined;
}

/** The TLS options for one connection to `host:port` speaking `alpn`. */
export function tlsConnectOptions(t: UpstreamTls, host: string, port: number, alpn: string[]): ConnectionOptions {
  // No SNI for an IP (RFC 6066 forbids it); Node then checks the certificate's IP SANs against it.
  const servername = t.serverName ?? (isIP(host) === 0 ? host : undefined);
  return {
    host, port, ALPNProtocols: alpn, rejectUnauthorized: !t.skipVerify,
    ...(servername !== undefined ? { servername } : {}),
    ...(t.ca !== undefined ? { ca: t.ca } : {}),
  };
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM of a CA file, checked: at least one certificate, each one parseable. */
export function readCaFile(file: string, where: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${where}: cannot read ${file}: ${(err as Error).message}`);
  }
  const blocks = text.match(PEM_BLOCK) ?? [];
  // Node's TLS takes a CA text with no certificate in it without a word, and then trusts nothing.
  if (blocks.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', `${where}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const [i, b] of blocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `${where}: certificate ${i + 1} of ${file} cannot be parsed: ${(err as Error).message}`);
    }
  }
  return blocks.join('\n') + '\n';
}

/**
 * The flavours of the routes in force. load() reads the routes' CA files at start and on every
 * routes reload, so a CA renewed on disk is read again by the reload that follows; the CA's digest
 * is part of the key, so connections verified against the old one are not reused for the new.
 */
export class UpstreamTlsFlavours {
  #bySpec = new WeakMap<RouteSpec, UpstreamTls>();
  #byKey = new Map<string, UpstreamTls>();
  readonly #cas = new Map<string, { pem: string; digest: string }>();
  constructor(routes: readonly RouteSpec[]) {
    this.load(routes);
  }

  /**
   * Reads every CA file `routes` name. All or nothing: a file that does not do throws a config
   * error naming its route, and the flavours stay as they were.
   */
  load(routes: readonly RouteSpec[]): void {
    const read = new Map<string, { pem: string; digest: string }>();
    for (const r of routes) {
      if (r.tlsCaFile === undefined || r.tlsSkipVerify === true || read.has(r.tlsCaFile)) continue;
      read.set(r.tlsCaFile, this.#readCa(r.tlsCaFile, `${r.origin.replace(/^config:/, '')}.tls-ca`));
    }
    // Merged, not replaced: a request of the routes before, still retrying, finds its file's CA.
    for (const [file, ca] of read) this.#cas.set(file, ca);
    this.#byKey = new Map();
    this.#bySpec = new WeakMap();
  }

  #readCa(file: string, where: string): { pem: string; digest: string } {
    const pem = readCaFile(file, where);
    return { pem, digest: createHash('sha256').update(pem).digest('hex').slice(0, 16) };
  }

  /** The flavour for a route's TLS instances (a tag route has no CA file: the system's roots). */
  for(spec: RouteSpec): UpstreamTls {
    const cached = this.#bySpec.get(spec);
    if (cached !== undefined) return cached;
    const skipVerify = spec.tlsSkipVerify === true;
    const serverName = spec.tlsServerName;
    const caFile = skipVerify ? undefined : spec.tlsCaFile;
    let ca: { pem: string; digest: string } | undefined;
    if (caFile !== undefined) {
      ca = this.#cas.get(caFile);
      // Not reached from the wiring, which load()s every route before it is served; kept so a
      // spec from elsewhere is checked the same way rather than trusted without its CA.
      if (ca === undefined) this.#cas.set(caFile, ca = this.#readCa(caFile, `${spec.origin}.tls-ca`));
    }
    const key = `${skipVerify ? 'k' : 'v'}|${serverName ?? ''}|${ca?.digest ?? ''}`;
    let t = this.#byKey.get(key);
    if (t === undefined) {
      t = { key, skipVerify, serverName, ca: ca?.pem };
      this.#byKey.set(key, t);
    }
    this.#bySpec.set(spec, t);
    return t;
  }
}
