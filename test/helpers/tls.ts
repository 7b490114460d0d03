// A throwaway self-signed certificate made by openssl, for listeners under test.
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** Writes `<name>.crt` and `<name>.key` under dir; the first name is the CN, every name (DNS or IP) a SAN. */
export function selfSigned(dir: string, name: string, names: readonly string[]): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const san = names.map((n) => `${isIP(n) ? 'IP' : 'DNS'}:${n}`).join(',');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${names[0]}`,
    '-addext', `subjectAltName=${san}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}
