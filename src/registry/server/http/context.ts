/** The request context and reply shape shared by the registry API's route handlers. */
import type { IncomingHttpHeaders } from 'node:http';
import type { Cancel } from '../catalog-reader.js';

export interface Reply {
  status?: number;
  /** JSON-encoded with Consul's rules (compact, or 4-space indent with ?pretty). */
  json?: unknown;
  /** Plain-text body (Consul's error style). */
  text?: string;
  /** Raw bytes (KV ?raw, and every cached read: see ReadCache). */
  raw?: Buffer;
  /** The raw bytes are already compressed (a snapshot file): never gzipped again for a client that asks for gzip. */
  encoded?: boolean;
  /**
   * Set on answers shared by many requests: their gzipped body, made once when a client first asks
   * for it, and whole responses as written by the raw front (per second of the Date header).
   */
  shared?: { gzipped?: Promise<Buffer>; wire?: { second: number; bytes: Map<string, Buffer> } };
  headers?: Record<string, string>;
  /** Sets X-Consul-Index / X-Consul-KnownLeader / X-Consul-LastContact. */
  index?: number;
  /** performance.now() of the change that woke this blocking query, for the wake-latency metric. */
  wokeAt?: number;
  /** Unix ms when this agent applied the change at `index`: sets X-Switchyard-Index-Time (docs/registry.md). */
  indexTime?: number;
}

export interface Ctx {
  /** As Node's IncomingMessage.headers shows them (lowercase names), whichever front read the request. */
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  /** URL-decoded path. */
  readonly path: string;
  /** URL-decoded remainder after a prefix route (the :id, :name or KV key). */
  readonly suffix: string;
  readonly query: URLSearchParams;
  /** Fires when the client goes away, so parked blocking queries let go at once. */
  readonly cancel: Cancel;
  /** Reads the body, rejecting with 413 past `limit` bytes (`tooLarge` words the message). */
  body(limit?: number, tooLarge?: (size: number, max: number) => string): Promise<Buffer>;
}

/** Consul's words for a body over the limit (413), whichever front read it. */
export const tooLargeMessage = (size: number, max: number): string => `Request body(${size} bytes) too large, max size: ${max} bytes`;

export type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

export interface Route {
  readonly path: string;
  /** When true, `path` is a prefix and the rest of the URL becomes ctx.suffix. */
  readonly prefix?: boolean;
  readonly methods: readonly string[];
  readonly handler: Handler;
  /** Exempt from ACL (Consul does not protect /v1/status/*; registrator pings it). */
  readonly public?: boolean;
}

/** Presence-based boolean flags, as Consul parses them (`?recurse`, `?recurse=false` are both on). */
export const flag = (q: URLSearchParams, name: string): boolean => q.has(name);
