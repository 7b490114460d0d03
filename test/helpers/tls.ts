// Throwaway certificates made by openssl, for listeners under test: self-signed, or a small CA and what it signs.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** Writes `<name>.crt` and `<name>.key` under dir; the first name is the CN, every name (DNS or IP) a SAN. */
export function selfSigned(dir: string, name: string, names: readonly string[]): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${names[0]}`,
    '-addext', `subjectAltName=${sans(names)}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

const sans = (names: readonly string[]): string => names.map((n) => `${isIP(n) ? 'IP' : 'DNS'}:${n}`).join(',');
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA (`<name>.crt`, `<name>.key`) that can sign certificates with signedBy. */
export function makeCa(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', ...EC, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** A certificate for `names` signed by `ca`, good for both server and client authentication. */
export function signedBy(ca: { cert: string; key: string }, dir: string, name: string, names: readonly string[]): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${sans(names)}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  execFileSync('openssl', ['req', ...EC, '-subj', `/CN=${names[0]}`, '-keyout', key, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}
