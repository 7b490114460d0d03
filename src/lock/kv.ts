/** KV helpers for the lock tools: paths, the magic flags Consul's lock and semaphore mark their keys with, and small typed calls. */
import type { RegistryClient } from '../registry/api/client.js';
import { RegistryClientError } from '../registry/api/client.js';
import type { ApiKvEntry } from '../registry/api/types.js';
import { kvBool, kvPath } from '../registry/api/kv.js';

/** Consul's api.LockFlagValue (0x2ddccbc058a50c18): a key used as a lock. */
export const LOCK_FLAG = 0x2ddccbc058a50c18n;
/** Consul's api.SemaphoreFlagValue (0xe0f69a2baa414de0): a key used by a semaphore. */
export const SEMAPHORE_FLAG = 0xe0f69a2baa414de0n;
/** Consul's api.DefaultSemaphoreKey: the lock key (n=1) and the semaphore's coordination key live here. */
export const LOCK_KEY = '.lock';

/** Flags arrive through JSON.parse, rounded past 2^53: compare them the same way. */
export const hasFlag = (e: ApiKvEntry, flag: bigint): boolean => e.Flags === Number(flag);


export const joinKey = (prefix: string, name: string): string => (prefix === '' ? name : `${prefix.replace(/\/+$/, '')}/${name}`);

/** The entry (undefined when absent) and the index to block on next. */
export async function readKey(client: RegistryClient, key: string, index: number, waitMs: number, signal?: AbortSignal): Promise<{ entry: ApiKvEntry | undefined; index: number }> {
  const r = await client.blockingGet<ApiKvEntry[]>(kvPath(key), index, waitMs, signal);
  return { entry: r.value?.[0], index: r.index };
}

export async function readPrefix(client: RegistryClient, prefix: string, index: number, waitMs: number, signal?: AbortSignal): Promise<{ entries: ApiKvEntry[]; index: number }> {
  const r = await client.blockingGet<ApiKvEntry[]>(kvPath(`${prefix.replace(/\/+$/, '')}/`, '?recurse'), index, waitMs, signal);
  return { entries: r.value ?? [], index: r.index };
}

/** A PUT answering true/false (acquire, release, cas). */
export const putBool = (client: RegistryClient, path: string, body: string | Buffer = '', signal?: AbortSignal): Promise<boolean> => kvBool(client, 'PUT', path, body, signal);

/** A 5xx from the agent (Consul's api.IsServerError): worth riding out for a while. */
export const isServerError = (err: unknown): boolean => err instanceof RegistryClientError && err.status !== undefined && err.status >= 500;
