/** Go's crypto/tls texts for the handshake failures Node reports, shared by the checks that speak TLS. */
import { isIP } from 'node:net';
import type { primaryError } from './tcp-check.js';

const UNKNOWN_AUTHORITY = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);

/** OpenSSL's alert names where Go's (crypto/tls alert.go) differ. */
const GO_ALERT_NAMES: Readonly<Record<string, string>> = {
  'unknown ca': 'unknown certificate authority',
  'protocol version': 'protocol version not supported',
  'decode error': 'error decoding message',
  'decrypt error': 'error decrypting message',
};

export const NOT_TLS = 'tls: first record does not look like a TLS handshake';

/** Go's crypto/tls wording for a handshake failure Node reports, or undefined if it is not one. */
export function goTlsErrorText(e: ReturnType<typeof primaryError> & { host?: string; cert?: { subjectaltname?: string } }): string | undefined {
  const code = e.code ?? '';
  if (UNKNOWN_AUTHORITY.has(code)) return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const host = e.host ?? '';
    const sans = (e.cert?.subjectaltname ?? '').split(', ').filter((s) => s !== '');
    if (isIP(host) !== 0 && !sans.some((s) => s.startsWith('IP Address:'))) {
      return `tls: failed to verify certificate: x509: cannot validate certificate for ${host} because it doesn't contain any IP SANs`;
    }
    const names = sans.map((s) => s.replace(/^(DNS|IP Address):/, ''));
    return `tls: failed to verify certificate: x509: certificate is valid for ${names.join(', ')}, not ${host}`;
  }
  // An alert the peer sent, which Go reports as `remote error: tls: <alert>` with its own names.
  const alert = /\b(?:sslv3|tlsv1|tlsv13) alert ([a-z ]+?)(?::|$)/.exec(e.message ?? '');
  if (alert !== null) return `remote error: tls: ${GO_ALERT_NAMES[alert[1] as string] ?? alert[1]}`;
  // OpenSSL's reading of a plaintext reply.
  const message = e.message ?? '';
  if (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    (code === 'EPROTO' && /wrong version number|packet length too long/.test(message))
  ) {
    return NOT_TLS;
  }
  return undefined;
}
