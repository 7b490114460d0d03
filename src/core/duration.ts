/** Go time.ParseDuration / Duration.String compatible durations (Consul and consul-template speak them). */
import { SwitchyardError } from './errors.js';

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const GROUP = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses a Go duration ("10s", "1m30s", "1.5h", "-250ms") into nanoseconds.
 * Like Go, "0" is the only unit-less value and an empty string is an error.
 */
export function parseGoDuration(input: string): number {
  const fail = (why: string): never => {
    throw new SwitchyardError('SY_ERR_BAD_DURATION', `invalid duration ${JSON.stringify(input)}: ${why}`);
  };
  let s = input;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') fail('empty');
  let total = 0;
  while (s.length > 0) {
    const m = GROUP.exec(s);
    if (!m) {
      if (/^[0-9.]+$/.test(s)) fail('missing unit');
      fail(/^[0-9.]/.test(s) ? `unknown unit in "${s}"` : `expected a number at "${s}"`);
    }
    const [whole, num, unit] = m as unknown as [string, string, string];
    if (num === '' || num === '.') fail(`expected a number at "${s}"`);
    total += Number(num) * (UNIT_NS[unit] as number);
    s = s.slice(whole.length);
  }
  if (!Number.isFinite(total) || total > 9.223372036854776e18) fail('overflow');
  return sign * Math.round(total);
}

/** Milliseconds from a Go duration string, or from a number of nanoseconds (Consul accepts both in JSON). */
export function durationToMs(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new SwitchyardError('SY_ERR_BAD_DURATION', `invalid duration ${value}`);
    return value / 1e6;
  }
  return parseGoDuration(value) / 1e6;
}

/** Formats nanoseconds the way Go's Duration.String does: "10s", "1m30s", "1h0m0s", "500ms", "0s". */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(Math.round(ns));
  const sign = neg ? '-' : '';
  if (u < 1e9) {
    // Sub-second values use the largest unit that keeps an integer part.
    if (u < 1e3) return `${sign}${u}ns`;
    if (u < 1e6) return `${sign}${trimFrac(u / 1e3)}µs`;
    return `${sign}${trimFrac(u / 1e6)}ms`;
  }
  const h = Math.floor(u / 3600e9);
  u -= h * 3600e9;
  const m = Math.floor(u / 60e9);
  u -= m * 60e9;
  const sec = `${trimFrac(u / 1e9)}s`;
  if (h > 0) return `${sign}${h}h${m}m${sec}`;
  if (m > 0) return `${sign}${m}m${sec}`;
  return `${sign}${sec}`;
}

function trimFrac(v: number): string {
  // Go prints up to 9 fractional digits and trims trailing zeros.
  return Number(v.toFixed(9)).toString();
}
