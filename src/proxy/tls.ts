/** TLS termination: certificates from files, chosen per connection by SNI (exact name, then wildcard, then the first). */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { SwitchyardError } from '../core/errors.js';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TlsContexts {
  readonly defaultCert: Buffer;
  readonly defaultKey: Buffer;
  readonly names: readonly string[];
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
}

export function loadTlsContexts(certs: readonly CertFiles[]): TlsContexts {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  let first: { cert: Buffer; key: Buffer } | undefined;
  let firstCtx: SecureContext | undefined;
  const names: string[] = [];
  for (const [i, c] of certs.entries()) {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(c.cert);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `tls.certs[${i}].cert: cannot read ${c.cert}: ${(err as Error).message}`);
    }
    try {
      key = readFileSync(c.key);
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `tls.certs[${i}].key: cannot read ${c.key}: ${(err as Error).message}`);
    }
    let ctx: SecureContext;
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
      ctx = createSecureContext({ cert, key });
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `tls.certs[${i}]: ${c.cert} / ${c.key} is not a usable certificate and key: ${(err as Error).message}`);
    }
    if (!first) {
      first = { cert, key };
      firstCtx = ctx;
    }
    const sans = (x509.subjectAltName ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4).toLowerCase());
    const cn = /CN=([^\n,]+)/.exec(x509.subject)?.[1]?.toLowerCase();
    for (const n of sans.length > 0 ? sans : cn ? [cn] : []) {
      names.push(n);
      if (n.startsWith('*.')) wildcard.set(n.slice(1), ctx);
      else exact.set(n, ctx);
    }
  }
  if (!first || !firstCtx) throw new SwitchyardError('SY_ERR_CONFIG', 'tls.certs: at least one certificate is needed');
  const fallback = firstCtx;
  return {
    defaultCert: first.cert,
    defaultKey: first.key,
    names,
    sniCallback(servername, cb) {
      const name = servername.toLowerCase();
      const e = exact.get(name);
      if (e) return cb(null, e);
      const dot = name.indexOf('.');
      const w = dot > 0 ? wildcard.get(name.slice(dot)) : undefined;
      cb(null, w ?? fallback);
    },
  };
}
