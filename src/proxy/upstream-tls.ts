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
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
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
  /** The certificate (and chain) and key shown to an instance that asks for one. */
  readonly client: ClientCertificate | undefined;
}

export interface ClientCertificate {
  readonly cert: string;
  readonly key: string;
}

/**
 * How a flavour checks and presents, for node:tls and undici's connector alike: verification, the
 * configured server name, the CAs trusted and the client certificate shown.
 */
export function tlsCheckOptions(t: UpstreamTls): ConnectionOptions {
  return {
    rejectUnauthorized: !t.skipVerify,
    ...(t.serverName !== undefined ? { servername: t.serverName } : {}),
    ...(t.ca !== undefined ? { ca: t.ca } : {}),
    ...(t.client !== undefined ? { cert: t.client.cert, key: t.client.key } : {}),
  };
}

/** The TLS options for one connection to `host:port` speaking `alpn`. */
export function tlsConnectOptions(t: UpstreamTls, host: string, port: number, alpn: string[]): ConnectionOptions {
  // Without a configured name: SNI is the host, and none for an IP (RFC 6066 forbids it; Node then
  // checks the certificate's IP SANs against it).
  return { host, port, ALPNProtocols: alpn, ...(t.serverName === undefined && isIP(host) === 0 ? { servername: host } : {}), ...tlsCheckOptions(t) };
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function readText(file: string, where: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${where}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The certificates of a PEM file, checked: at least one, each one parseable. */
function readCertificates(file: string, where: string): X509Certificate[] {
  const blocks = readText(file, where).match(PEM_BLOCK) ?? [];
  // Node's TLS takes a CA text with no certificate in it without a word, and then trusts nothing.
  if (blocks.length === 0) throw new SwitchyardError('SY_ERR_CONFIG', `${where}: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `${where}: certificate ${i + 1} of ${file} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/** The PEM of a CA file, checked: at least one certificate, each one parseable. */
export function readCaFile(file: string, where: string): string {
  return readCertificates(file, where).map((c) => c.toString()).join('');
}

/**
 * A client certificate and its key, checked: the first certificate of `certFile` (the leaf; the
 * rest is its chain, sent along) must be the key's. An encrypted key is refused: nothing could
 * type its passphrase at a reload.
 */
export function readClientCertificate(certFile: string, keyFile: string, where: string): ClientCertificate {
  const chain = readCertificates(certFile, `${where}.tls-cert`);
  const keyText = readText(keyFile, `${where}.tls-key`);
  let key;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    const why = /ENCRYPTED/.test(keyText) ? 'it is encrypted, and a key here must not need a passphrase' : (err as Error).message;
    throw new SwitchyardError('SY_ERR_CONFIG', `${where}.tls-key: ${keyFile} holds no usable private key: ${why}`);
  }
  const leaf = chain[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key)) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${where}.tls-key: ${keyFile} is not the key of ${certFile}'s certificate (${leaf.subject.replace(/\n/g, ', ')})`);
  }
  return { cert: chain.map((c) => c.toString()).join(''), key: keyText };
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
  readonly #clients = new Map<string, { pair: ClientCertificate; digest: string }>();
  constructor(routes: readonly RouteSpec[]) {
    this.load(routes);
  }

  /**
   * Reads every CA file and client certificate `routes` name. All or nothing: a file that does not
   * do throws a config error naming its route, and the flavours stay as they were.
   */
  load(routes: readonly RouteSpec[]): void {
    const cas = new Map<string, { pem: string; digest: string }>();
    const clients = new Map<string, { pair: ClientCertificate; digest: string }>();
    for (const r of routes) {
      const where = r.origin.replace(/^config:/, '');
      if (r.tlsCaFile !== undefined && r.tlsSkipVerify !== true && !cas.has(r.tlsCaFile)) cas.set(r.tlsCaFile, this.#readCa(r.tlsCaFile, `${where}.tls-ca`));
      const c = r.tlsClientCertificate;
      if (c !== undefined && !clients.has(clientKey(c))) clients.set(clientKey(c), this.#readClient(c, where));
    }
    // Merged, not replaced: a request of the routes before, still retrying, finds its files' contents.
    for (const [file, ca] of cas) this.#cas.set(file, ca);
    for (const [k, c] of clients) this.#clients.set(k, c);
    this.#byKey = new Map();
    this.#bySpec = new WeakMap();
  }

  #readCa(file: string, where: string): { pem: string; digest: string } {
    const pem = readCaFile(file, where);
    return { pem, digest: digest(pem) };
  }

  #readClient(c: { certFile: string; keyFile: string }, where: string): { pair: ClientCertificate; digest: string } {
    const pair = readClientCertificate(c.certFile, c.keyFile, where);
    return { pair, digest: digest(pair.cert + pair.key) };
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
    let client: { pair: ClientCertificate; digest: string } | undefined;
    const c = spec.tlsClientCertificate;
    if (c !== undefined) {
      client = this.#clients.get(clientKey(c));
      if (client === undefined) this.#clients.set(clientKey(c), client = this.#readClient(c, spec.origin));
    }
    const key = `${skipVerify ? 'k' : 'v'}|${serverName ?? ''}|${ca?.digest ?? ''}|${client?.digest ?? ''}`;
    let t = this.#byKey.get(key);
    if (t === undefined) {
      t = { key, skipVerify, serverName, ca: ca?.pem, client: client?.pair };
      this.#byKey.set(key, t);
    }
    this.#bySpec.set(spec, t);
    return t;
  }
}

const digest = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);
const clientKey = (c: { certFile: string; keyFile: string }): string => `${c.certFile}\0${c.keyFile}`;
