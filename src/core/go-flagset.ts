/**
 * Go's flag package, for commands that must read their arguments exactly as a Go tool does (the
 * consul CLI): flags come first, `-name`, `--name`, `-name=value` or `-name value` (booleans take
 * no separate value), and parsing stops at the first argument that is not a flag, at a lone `-`,
 * or after `--`. So `kv put key -5` stores "-5", where an option parser that reads options anywhere
 * would refuse it. Errors carry Go's words.
 */
import { SwitchyardError } from './errors.js';

export type GoFlagKind = 'bool' | 'string' | 'uint64';

export interface GoFlagSpec {
  readonly kind: GoFlagKind;
  readonly usage: string;
}

export type GoFlagValues = Record<string, boolean | string | bigint | undefined>;

const UINT64_MAX = (1n << 64n) - 1n;
const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export class GoFlagError extends SwitchyardError {
  constructor(message: string) {
    super('SY_ERR_INVALID_ARGUMENT', message);
    this.name = 'GoFlagError';
  }
}

/** strconv.ParseUint(s, 0, 64): decimal, 0x/0o/0b or a leading 0 for octal, underscores between digits. */
function parseUint64(name: string, s: string): bigint {
  const invalid = (why: string): never => {
    throw new GoFlagError(`invalid value ${JSON.stringify(s)} for flag -${name}: ${why}`);
  };
  const m = /^(0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|0[oO]?[0-7](?:_?[0-7])*|0[bB][01](?:_?[01])*|[1-9](?:_?[0-9])*|0)$/.exec(s);
  if (!m) return invalid('parse error');
  const digits = s.replace(/_/g, '');
  const v = /^0[0-7]/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : /^0[oO]/.test(digits) ? BigInt(`0o${digits.slice(2)}`) : BigInt(digits);
  return v > UINT64_MAX ? invalid('value out of range') : v;
}

/**
 * Parses `args` against `specs`; returns the values set (unset flags are absent) and the arguments
 * after the flags. `-h`/`-help` ask for help (`help: true`) unless a flag of that name is defined.
 */
export function parseGoFlags(args: readonly string[], specs: Readonly<Record<string, GoFlagSpec>>): { values: GoFlagValues; rest: string[]; help: boolean } {
  const values: GoFlagValues = Object.create(null) as GoFlagValues;
  let i = 0;
  while (i < args.length) {
    const a = args[i] as string;
    if (a.length < 2 || a[0] !== '-') break;
    if (a === '--') {
      i++;
      break;
    }
    const body = a.slice(a[1] === '-' ? 2 : 1);
    if (body === '' || body[0] === '-' || body[0] === '=') throw new GoFlagError(`bad flag syntax: ${a}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    i++;
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined) {
      if (name === 'h' || name === 'help') return { values, rest: [], help: true };
      throw new GoFlagError(`flag provided but not defined: -${name}`);
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else if (i < args.length) value = args[i++] as string;
    else throw new GoFlagError(`flag needs an argument: -${name}`);
    if (spec.kind === 'bool') {
      if (!TRUE.has(value) && !FALSE.has(value)) throw new GoFlagError(`invalid boolean value ${JSON.stringify(value)} for -${name}: parse error`);
      values[name] = TRUE.has(value);
    } else values[name] = spec.kind === 'uint64' ? parseUint64(name, value) : value;
  }
  return { values, rest: args.slice(i), help: false };
}

/** The flag list as Go's PrintDefaults shows it: `  -name kind` then the usage, indented. */
export function goFlagUsage(specs: Readonly<Record<string, GoFlagSpec>>): string {
  return Object.keys(specs).sort().map((name) => {
    const spec = specs[name] as GoFlagSpec;
    const kind = spec.kind === 'bool' ? '' : ` ${spec.kind === 'uint64' ? 'uint' : 'string'}`;
    return `  -${name}${kind}\n    \t${spec.usage}`;
  }).join('\n');
}
