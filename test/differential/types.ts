/** The corpus's vocabulary: a case (raw bytes to send) and its expected outcome per plane, as plain data. */
import type { Service } from './recorder.js';

/** What the backend must have received for one client request. */
export interface Fwd {
  readonly to: Service;
  readonly method: string;
  /** The request target the backend saw (after routing, normalisation and strip-prefix). */
  readonly target: string;
  /** The Host header the backend saw; null: none; absent: not checked. */
  readonly host?: string | null;
  /** The body the backend received (after removing chunked framing); absent: not checked. */
  readonly body?: string;
}

/** Checks on the response the client received. */
export interface RespCheck {
  /** Header values as the client got them (case-insensitive names, several fields joined with ", "); null: must be absent. */
  readonly headers?: Readonly<Record<string, string | null>>;
  /** The client saw a chunked body. */
  readonly chunked?: boolean;
  /** At least this many header fields reached the client. */
  readonly minHeaderCount?: number;
  /** The body contains this text. */
  readonly bodyIncludes?: string;
}

/**
 * One client request's outcome, in order of the responses on the connection:
 * - { status }: answered by the proxy itself; nothing reached a backend for it;
 * - { fwd, status? }: the backend received exactly this message; the client got `status` (default 200,
 *   the recorder's answer; a 502 here means the backend's answer was refused by the proxy);
 * - { backendRefused }: the proxy forwarded bytes the backend's strict parser (llhttp) refused, and the
 *   client got the backend's 400 (a finding wherever it appears; recorded for nginx, never expected of switchyard);
 * - { garbled }: the client got bytes that are not an HTTP/1.x response (nginx's HTTP/0.9 answers).
 */
export type Step =
  | { readonly status: number; readonly resp?: RespCheck }
  | { readonly fwd: Fwd; readonly status?: number; readonly resp?: RespCheck }
  | { readonly backendRefused: number }
  | { readonly garbled: true };

/** Expected steps per plane: `fast`/`node` win over `sy` (both switchyard planes), which wins over `all`. */
export interface Expectations {
  readonly all?: readonly Step[];
  readonly sy?: readonly Step[];
  readonly fast?: readonly Step[];
  readonly node?: readonly Step[];
  readonly nginx?: readonly Step[];
}

export interface Case {
  /** Unique, stable, kebab-case: test names and the report refer to it. */
  readonly id: string;
  /** One line: what the case probes and why it matters. */
  readonly about: string;
  /** Raw bytes (latin1 strings: "\xff" is the byte 0xff). Several parts are written one after the other. */
  readonly send: string | readonly string[];
  readonly expect: Expectations;
  /**
   * When nginx refuses the request for a reason that is not ambiguity (so the fast plane may forward it),
   * say why; without it, the fast plane forwarding what nginx refuses fails the case.
   */
  readonly nginxRefusalIsNotAmbiguity?: string;
  /**
   * A known limitation of the node plane (undici refusing a valid response, say): its invariant
   * violations are reported as diagnostics with this reason instead of failing the case. The
   * expectation must still say what the node plane does. Documented in docs/security.md.
   */
  readonly nodePlaneLimitation?: string;
}
