/** consul-template's configuration (HCL subset, JSON or YAML) and its -template "src:dst:cmd" flag, validated. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseGoDuration } from '../core/duration.js';
import { SwitchyardError } from '../core/errors.js';
import { parseConfigText } from '../config/load.js';
import { parseHcl } from './hcl.js';
import type { TemplateSpec } from './runner.js';
import { parseSignal } from './exec-child.js';
import type { ExecSettings } from './exec-child.js';

const dur = z.union([z.string(), z.number()]);
const waitSchema = z.union([z.string(), z.strictObject({ min: dur.optional(), max: dur.optional(), enabled: z.boolean().optional() })]);

/**
 * consul-template's keys of a template block that would change what is written or read, and that this
 * implementation does not have: refused by name rather than ignored (ignoring `sandbox_path` or
 * `function_denylist` would quietly lift a restriction its author relied on).
 */
const UNSUPPORTED_TEMPLATE_KEYS: Readonly<Record<string, string>> = {
  wait: 'a wait per template is not supported; use the top-level wait, which applies to every template',
  user: 'setting the owner is not supported; the destination keeps the owner of the process that writes it',
  group: 'setting the group is not supported; the destination keeps the group of the process that writes it',
  sandbox_path: 'a sandbox for file is not supported',
  function_denylist: 'denying functions is not supported',
  function_blacklist: 'denying functions is not supported',
  source_dir: 'rendering a directory of templates is not supported',
  destination_dir: 'rendering a directory of templates is not supported',
};

/** HCL collects every block into a list; a block that may appear once is read from a list of one. */
const oneBlock = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (Array.isArray(v) && v.length === 1 ? v[0] : v), schema);

/** A command as a string (run by sh -c) or a list of arguments. */
const commandSchema = z.union([z.string().min(1), z.array(z.string()).min(1)]);

const templateExecSchema = oneBlock(z.strictObject({ command: commandSchema, timeout: dur.optional() }));

const templateSchema = z.strictObject({
  source: z.string().optional(),
  contents: z.string().optional(),
  destination: z.string().min(1),
  command: z.union([z.string(), z.array(z.string())]).optional(),
  command_timeout: dur.optional(),
  exec: templateExecSchema.optional(),
  perms: z.union([z.string().regex(/^0?[0-7]{3,4}$/), z.number().int()]).optional(),
  left_delimiter: z.string().optional(),
  right_delimiter: z.string().optional(),
  error_on_missing_key: z.boolean().optional(),
  error_fatal: z.boolean().optional(),
  create_dest_dirs: z.boolean().optional(),
  backup: z.boolean().optional(),
  ...Object.fromEntries(Object.entries(UNSUPPORTED_TEMPLATE_KEYS).map(([k, why]) => [k, z.unknown().refine(() => false, { message: why }).optional()])),
})
  .refine((t) => (t.source === undefined) !== (t.contents === undefined), { message: 'exactly one of source and contents is required' })
  .refine((t) => t.command === undefined || t.exec === undefined, { message: 'give the command either as command or in exec { }, not both' });


/**
 * The registry token as consul-template finds it, first found wins: the flag, the flag's file, the
 * config's token, its token_file, then CONSUL_HTTP_TOKEN / CONSUL_TOKEN and CONSUL_HTTP_TOKEN_FILE.
 * A token file that cannot be read is an error naming it (a silent anonymous client would get 403s).
 */
export function registryToken(c: TemplateConfig, flags: { token?: string | undefined; tokenFile?: string | undefined }, env: NodeJS.ProcessEnv): string | undefined {
  const fromFile = (what: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new SwitchyardError('SY_ERR_CONFIG', `${what}: cannot read the token file ${file}: ${(err as Error).message}`);
    }
  };
  if (flags.token) return flags.token;
  if (flags.tokenFile) return fromFile('-consul-token-file', flags.tokenFile);
  if (c.consul?.token) return c.consul.token;
  if (c.consul?.token_file) return fromFile('consul.token_file', c.consul.token_file);
  const t = env.CONSUL_HTTP_TOKEN ?? env.CONSUL_TOKEN;
  if (t) return t;
  const f = env.CONSUL_HTTP_TOKEN_FILE ?? env.CONSUL_TOKEN_FILE;
  return f ? fromFile('CONSUL_HTTP_TOKEN_FILE', f) : undefined;
}



const execSchema = z.strictObject({
  command: commandSchema,
  reload_signal: z.string().optional(),
  kill_signal: z.string().optional(),
  kill_timeout: dur.optional(),
  splay: dur.optional(),
});

export const templateConfigSchema = z.object({
  consul: z.object({ address: z.string().optional(), token: z.string().optional(), token_file: z.string().optional() }).passthrough().optional(),
  pid_file: z.string().min(1).optional(),
  // One block or a list of them, read as a list so that an error names the template by its place (template.1.perms).
  template: z.preprocess((v) => (v === undefined || Array.isArray(v) ? v : [v]), z.array(templateSchema)).optional(),
  wait: waitSchema.optional(),
  once: z.boolean().optional(),
  log_level: z.string().optional(),
  max_stale: dur.optional(),
  block_query_wait: dur.optional(),
  exec: execSchema.optional(),
}).passthrough();

export type TemplateConfig = z.infer<typeof templateConfigSchema>;

/** The top-level keys the schema reads; any other (vault, syslog, …) passes through and is named as ignored. */
const KNOWN_TOP_LEVEL_KEYS: ReadonlySet<string> = new Set(Object.keys(templateConfigSchema.shape));

/** Top-level keys of `c` that are not read (consul-template has them; they change nothing here). */
export function ignoredKeys(c: TemplateConfig): string[] {
  return Object.keys(c).filter((k) => !KNOWN_TOP_LEVEL_KEYS.has(k));
}

const toMs = (what: string, v: string | number): number => {
  if (typeof v === 'number') return v / 1e6;
  try {
    return parseGoDuration(v) / 1e6;
  } catch (err) {
    throw new SwitchyardError('SY_ERR_BAD_DURATION', `${what}: ${(err as Error).message}`);
  }
};

/** `-wait min[:max]`: a single value means max = 4 × min (consul-template). */
export function parseWait(v: z.infer<typeof waitSchema>, what = '-wait'): { minMs: number; maxMs: number } {
  let min: number;
  let max: number;
  if (typeof v === 'string') {
    const [a, b] = v.split(':');
    min = toMs(what, a ?? '');
    max = b === undefined ? min * 4 : toMs(what, b);
  } else {
    min = v.min === undefined ? 0 : toMs(`${what}.min`, v.min);
    max = v.max === undefined ? min * 4 : toMs(`${what}.max`, v.max);
  }
  if (min < 0 || max < min) throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `${what}: min must be ≥ 0 and ≤ max`);
  return { minMs: min, maxMs: max };
}

/** `src[:dst[:command]]`; parts past the third are rejoined with ':' (the command may contain colons). */
export function parseTemplateFlag(v: string): TemplateSpec {
  if (v.trim() === '') throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', '-template: empty value (expected "source:destination[:command]")');
  let parts = v.split(':');
  // A Windows drive letter ("C:\x") stays with its path, as consul-template does.
  if (/^[A-Za-z]$/.test(parts[0] ?? '') && parts.length > 1 && /^[\\/]/.test(parts[1] ?? '')) parts = [`${parts[0]}:${parts[1]}`, ...parts.slice(2)];
  const [source = '', destination, ...rest] = parts;
  if (!destination) throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', `-template ${JSON.stringify(v)}: a destination is required (source:destination[:command])`);
  const command = rest.join(':');
  return { source, destination, ...(command ? { command } : {}) };
}

export function loadTemplateConfig(file: string): TemplateConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SwitchyardError('SY_ERR_CONFIG', `${file}: cannot read config file: ${(err as Error).message}`);
  }
  if (/\.(json|ya?ml)$/i.test(file)) return parseConfigText(file, text, templateConfigSchema);
  const raw = parseHcl(text, file);
  // HCL blocks collect into lists; only `template` may repeat, the others are single blocks.
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'template' && Array.isArray(v)) {
      if (v.length !== 1) throw new SwitchyardError('SY_ERR_CONFIG', `${file}: the ${k} block may appear only once`);
      raw[k] = v[0] as (typeof raw)[string];
    }
  }
  const r = templateConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SwitchyardError('SY_ERR_CONFIG', `${file}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

/** block_query_wait (consul-template's default 60 s), in ms; undefined when not set. */
export function blockQueryWaitMs(c: TemplateConfig): number | undefined {
  if (c.block_query_wait === undefined) return undefined;
  const ms = toMs('block_query_wait', c.block_query_wait);
  if (ms < 1_000 || ms > 600_000) throw new SwitchyardError('SY_ERR_CONFIG', `block_query_wait: ${ms / 1000}s is outside 1s … 10m (the registry caps a blocking query at 10 minutes)`);
  return ms;
}

/** A command given as a list, joined into one `sh -c` string with each argument quoted where it needs it. */
function shellCommand(command: string | readonly string[]): string {
  return Array.isArray(command) ? command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ') : (command as string);
}

/** What -exec flags and an `exec { }` block say, flags first; undefined when there is no command. */
export function execSettings(c: TemplateConfig, flags: { exec?: string | undefined; reloadSignal?: string | undefined; killSignal?: string | undefined; killTimeout?: string | undefined; splay?: string | undefined }): ExecSettings | undefined {
  const e = c.exec;
  const command = flags.exec ?? (e ? shellCommand(e.command) : undefined);
  if (command === undefined) return undefined;
  if (command.trim() === '') throw new SwitchyardError('SY_ERR_INVALID_ARGUMENT', '-exec: empty command');
  const reload = flags.reloadSignal ?? e?.reload_signal;
  const kill = flags.killSignal ?? e?.kill_signal;
  const killTimeout = flags.killTimeout ?? e?.kill_timeout;
  const splay = flags.splay ?? e?.splay;
  return {
    command,
    // An empty reload signal is consul-template's way to say "restart the child".
    ...(reload !== undefined && reload !== '' ? { reloadSignal: parseSignal('exec reload signal', reload) } : {}),
    killSignal: kill !== undefined && kill !== '' ? parseSignal('exec kill signal', kill) : 'SIGINT',
    killTimeoutMs: killTimeout === undefined ? 30_000 : toMs('exec kill timeout', killTimeout),
    splayMs: splay === undefined ? 0 : toMs('exec splay', splay),
  };
}

export function templatesFromConfig(c: TemplateConfig): TemplateSpec[] {
  const list = c.template ?? [];
  return list.map((t, i) => {
    const given = t.exec?.command ?? t.command;
    const command = given === undefined ? undefined : shellCommand(given);
    const timeout = t.exec?.timeout ?? t.command_timeout;
    return {
      source: t.source ?? `template[${i}]`,
      destination: t.destination,
      ...(t.contents !== undefined ? { contents: t.contents } : {}),
      ...(command ? { command } : {}),
      ...(timeout !== undefined ? { commandTimeoutMs: toMs(`template[${i}].${t.exec?.timeout !== undefined ? 'exec.timeout' : 'command_timeout'}`, timeout) } : {}),
      ...(t.create_dest_dirs === false ? { createDestDirs: false } : {}),
      ...(t.backup ? { backup: true } : {}),
      ...(t.error_fatal === false ? { errorFatal: false } : {}),
      ...(t.perms !== undefined ? { perms: typeof t.perms === 'number' ? t.perms : parseInt(t.perms, 8) } : {}),
      ...(t.left_delimiter ? { leftDelim: t.left_delimiter } : {}),
      ...(t.right_delimiter ? { rightDelim: t.right_delimiter } : {}),
      ...(t.error_on_missing_key ? { errorOnMissingKey: true } : {}),
    };
  });
}
