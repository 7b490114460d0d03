/**
 * Commander's flags to a config schema's input: a flag is the camelCase of its key
 * (`--http-addr` → httpAddr → `http-addr`), numeric keys take numbers, and the schema itself
 * validates, so every subcommand maps its flags the same way and a new key needs no new line here.
 */
import { z } from 'zod';

const camel = (key: string): string => key.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

function isNumber(field: unknown): boolean {
  let f = field;
  while (f instanceof z.ZodOptional || f instanceof z.ZodDefault) f = f.unwrap();
  return f instanceof z.ZodNumber;
}

/**
 * The schema's input from the flags given (undefined ones left out, so a file's value stays), parsed
 * by the schema: a bad flag fails with the key named. `only` limits the keys taken (`up` splits its
 * flags between the agent's and the balancer's schemas).
 */
export function flagsToConfig<S extends z.ZodObject>(schema: S, flags: object, only?: readonly (keyof z.infer<S> & string)[]): z.infer<S> {
  const given = flags as Record<string, unknown>;
  const input: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(schema.shape)) {
    if (only !== undefined && !only.includes(key as keyof z.infer<S> & string)) continue;
    const v = given[camel(key)];
    if (v === undefined) continue;
    input[key] = typeof v === 'string' && isNumber(field) ? Number(v) : v;
  }
  return schema.parse(input);
}

/** `--register-as [service]`: the flag alone means the default name. */
export function registerAsFlag(v: string | boolean | undefined): string | undefined {
  return v === true ? 'switchyard-lb' : v || undefined;
}
