// dig (Debian dnsutils), the DNS client nobody here wrote. In CI it must be there; on a workstation without it the tests that need it skip.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

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

export interface Rr {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  raw: string;
  status: string;
  flags: string[];
  answer: Rr[];
  authority: Rr[];
  additional: Rr[];
  server: string;
}

/** dig @127.0.0.1 -p <port> <args>, parsed: status, header flags and sections. */
export async function dig(port: number, ...args: string[]): Promise<DigResult> {
  const { stdout } = await promisify(execFile)('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 15_000 });
  const section = (title: string): Rr[] => {
    const lines = stdout.split('\n');
    const start = lines.findIndex((l) => l.startsWith(`;; ${title} SECTION:`));
    if (start < 0) return [];
    const out: Rr[] = [];
    for (const line of lines.slice(start + 1)) {
      if (line.trim() === '') break;
      const [name, ttl, , type, ...data] = line.split(/\s+/);
      out.push({ name: name ?? '', ttl: Number(ttl), type: type ?? '', data: data.join(' ') });
    }
    return out;
  };
  return {
    raw: stdout,
    status: /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '',
    flags: (/;; flags: ([a-z ]*);/.exec(stdout)?.[1] ?? '').split(' ').filter(Boolean),
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    additional: section('ADDITIONAL'),
    server: /;; SERVER: .*\((UDP|TCP)\)/.exec(stdout)?.[1] ?? '',
  };
}
