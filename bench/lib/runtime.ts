// Reads a balancer's GET /debug/runtime (GC pauses and event-loop delay per process, src/core/runtime-stats.ts)
// for the benchmarks' attribution, validating the shape so that a changed endpoint fails loudly, not as zeros.
import { request } from 'undici';
import { z } from 'zod';
import type { RuntimeReport } from '../../src/core/runtime-stats.js';

// monitorEventLoopDelay's mean is NaN before the first sample, which JSON turns into null.
const num = z.union([z.number(), z.null()]).transform((v) => v ?? NaN);
const pauseSchema = z.object({ count: num, totalMs: num, p50Ms: num, p99Ms: num, maxMs: num });
const reportSchema = z.object({
  seconds: num,
  gc: z.record(z.string(), pauseSchema),
  eventLoopDelay: z.object({ p50Ms: num, p99Ms: num, p999Ms: num, maxMs: num, meanMs: num }),
  heapUsedBytes: num,
  rssBytes: num,
});
const dumpSchema = z.object({ self: reportSchema, workers: z.array(reportSchema) });

/** `self`: the process serving admin (with --workers N the primary, which does not proxy); `workers`: one per worker. */
export interface RuntimeDump {
  self: RuntimeReport;
  workers: RuntimeReport[];
}

function parseJson(url: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`GET ${url}: not JSON (${err instanceof Error ? err.message : String(err)}): ${text.slice(0, 200)}`);
  }
}

/** GET <admin>/debug/runtime; `reset` reports and starts a new window. */
export async function readRuntime(adminUrl: string, reset: boolean): Promise<RuntimeDump> {
  const url = `${adminUrl}/debug/runtime${reset ? '?reset=1' : ''}`;
  const r = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  const parsed = dumpSchema.safeParse(parseJson(url, text));
  if (!parsed.success) throw new Error(`GET ${url}: unexpected shape: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * GET <agent>/debug/runtime: the agent's own report (one process, so no workers); `reset` reports and
 * starts a new window. An agent without the endpoint (an older build as SY_MAIN) gives undefined.
 */
export async function readAgentRuntime(agentUrl: string, reset: boolean): Promise<RuntimeReport | undefined> {
  const url = `${agentUrl}/debug/runtime${reset ? '?reset=1' : ''}`;
  const r = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode === 404) return undefined;
  if (r.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  const parsed = reportSchema.safeParse(parseJson(url, text));
  if (!parsed.success) throw new Error(`GET ${url}: unexpected shape: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export interface GcTotals {
  /** Pauses of every kind. */
  count: number;
  totalMs: number;
  maxMs: number;
  /** Mark-compact (major) collections alone: the long ones. */
  major: number;
}

export function gcTotals(r: RuntimeReport): GcTotals {
  const kinds = Object.values(r.gc);
  return {
    count: kinds.reduce((s, k) => s + k.count, 0),
    totalMs: kinds.reduce((s, k) => s + k.totalMs, 0),
    maxMs: Math.max(0, ...kinds.map((k) => k.maxMs)),
    major: r.gc.major?.count ?? 0,
  };
}

/** The balancer's own request-latency histogram (switchyard_lb_request_seconds), summed over its series: le (seconds) → cumulative count. */
export async function readInProxyHistogram(adminUrl: string): Promise<Map<number, number>> {
  const url = `${adminUrl}/metrics`;
  const r = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${r.statusCode}: ${text.slice(0, 200)}`);
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^switchyard_lb_request_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\d+(?:\.\d+)?(?:e\+?\d+)?)$/gm)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    out.set(le, (out.get(le) ?? 0) + Number(m[2]));
  }
  if (out.size === 0) throw new Error(`GET ${url}: no switchyard_lb_request_seconds_bucket series`);
  return out;
}

/**
 * From two histogram readings: the bucket bounds (ms) under which the window's p99.9 and its slowest
 * request fell, as the balancer itself timed them (from the request head to the last byte written).
 * Against wrk's figures this tells time spent inside the balancer from time spent before it (the accept
 * queue, the client's socket) or after it.
 */
export function inProxyBounds(before: Map<number, number>, after: Map<number, number>): { p999LeMs: number; maxLeMs: number; count: number } {
  const les = [...after.keys()].sort((a, b) => a - b);
  const delta = les.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const count = delta[delta.length - 1] ?? 0;
  const first = (target: number): number => les[delta.findIndex((d) => d >= target)] ?? NaN;
  return { p999LeMs: first(count * 0.999) * 1000, maxLeMs: first(count) * 1000, count };
}
