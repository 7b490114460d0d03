// dig (Debian dnsutils), the DNS client nobody here wrote. In CI it must be there; on a workstation without it the tests that need it skip.
import { execFileSync } from 'node:child_process';

function digInstalled(): boolean {
  try {
    execFileSync('dig', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A `skip` value for node:test: false when dig can run (always under CI=true), else the reason. */
export const digSkip: string | false = !digInstalled() && process.env.CI !== 'true' ? 'dig not installed (apt-get install dnsutils)' : false;
