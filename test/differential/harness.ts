/** Runs one corpus case against one front: sends the raw bytes, collects what the client and the backend saw, and checks the invariants and the expectations. */
import { connect } from 'node:net';
import type { Front, Plane } from './fronts.js';
import { parseRequests, parseResponses, headerValue } from '../helpers/llhttp.js';
import type { RefMessage } from '../helpers/llhttp.js';
import { BAD_RESPONSES } from './recorder.js';
import type { RecMessage } from './recorder.js';
import type { Case, Step } from './types.js';

/** How long a client waits, with no new byte, for answers it still expects before it ends its side anyway. */
const QUIET_MS = 3000;
/** How long, after the client's FIN, the front has to close the connection. */
const CLOSE_MS = 3000;
/** How long an upstream connection may hold part of a message after the case before it counts as residue. */
const RESIDUE_MS = 1000;

export interface ClientResponse {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Buffer;
  readonly chunked: boolean;
  readonly recId: string | undefined;
  /** The backend's own refusal (x-rec-refused): the proxy forwarded bytes llhttp refuses. */
  readonly recRefused: boolean;
}

export interface Observation {
  readonly plane: Plane;
  readonly caseId: string;
  /** Final responses the client got, in order (1xx left out). */
  readonly responses: ClientResponse[];
  /** The client-side response stream did not parse (reason and the bytes around it). */
  readonly garbled: string | undefined;
  readonly steps: Step[];
  /** Messages the backends parsed during the case. */
  readonly backend: RecMessage[];
  /** Invariant violations: each fails the case whatever it expects. */
  readonly violations: string[];
  /** The client gave up waiting (no FIN-close from the front in time). */
  readonly hung: boolean;
  readonly clientBytes: Buffer;
}

const toBuf = (s: string): Buffer => Buffer.from(s, 'latin1');
export const sendParts = (c: Case): Buffer[] => (typeof c.send === 'string' ? [toBuf(c.send)] : c.send.map(toBuf));

/** The expected steps for a plane (undefined when the case leaves that plane unspecified). */
export function expected(c: Case, plane: Plane): readonly Step[] | undefined {
  const e = c.expect;
  if (plane === 'nginx') return e.nginx ?? e.all;
  return (plane === 'fast' ? e.fast : e.node) ?? e.sy ?? e.all;
}

/** The client: writes the parts, reads until `want` final answers are in (or the front closes, or it goes quiet), then FIN and read to the close. */
function exchange(port: number, parts: Buffer[], want: number, methods: string[]): Promise<{ bytes: Buffer; hung: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let finSent = false;
    let hung = false;
    let quiet: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let written = false;
    const fin = (): void => {
      if (finSent) return;
      finSent = true;
      if (quiet) clearTimeout(quiet);
      s.end();
      closeTimer = setTimeout(() => {
        hung = true;
        s.destroy();
      }, CLOSE_MS);
    };
    const armQuiet = (): void => {
      if (finSent) return;
      if (quiet) clearTimeout(quiet);
      quiet = setTimeout(fin, QUIET_MS);
    };
    const answered = (): number => {
      const p = parseResponses(Buffer.concat(chunks), methods, false);
      return p.messages.filter((m) => m.status >= 200 || m.status === 101).length;
    };
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      armQuiet();
      if (written && answered() >= want) fin();
    });
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (quiet) clearTimeout(quiet);
      if (closeTimer) clearTimeout(closeTimer);
      resolve({ bytes: Buffer.concat(chunks), hung });
    });
    s.on('connect', () => {
      // Each part is written once the one before is flushed, a turn of the event loop apart.
      const writeFrom = (i: number): void => {
        if (s.destroyed) return;
        const p = parts[i];
        if (p === undefined) {
          written = true;
          if (answered() >= want) fin();
          else armQuiet();
          return;
        }
        s.write(p, () => setImmediate(() => writeFrom(i + 1)));
      };
      writeFrom(0);
    });
  });
}

async function settle(front: Front): Promise<string[]> {
  // Let bytes already on their way be read before judging what is left over.
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  const deadline = Date.now() + RESIDUE_MS;
  const problems: string[] = [];
  for (;;) {
    const left = front.recorder.residue();
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      for (const c of left) {
        const bytes = Buffer.concat(c.chunks).subarray(c.parser.boundary);
        problems.push(`upstream connection ${c.service}#${c.id} holds ${bytes.length} bytes of an unfinished message after the exchange (a later request on it would be glued to them): ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`);
        c.socket.destroy();
      }
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // Tunnels end with their case.
  for (const c of front.recorder.conns) if (c.tunnel && !c.closed) c.socket.destroy();
  return problems;
}

/** Runs one case on one front. */
export async function runCase(front: Front, c: Case): Promise<Observation> {
  const rec = front.recorder;
  rec.caseTag = c.id;
  const parts = sendParts(c);
  const all = Buffer.concat(parts);
  const ref = parseRequests(all);
  const methods = ref.messages.map((m) => m.method);
  const exp = expected(c, front.plane);
  const want = exp ? exp.filter((s) => !('garbled' in s)).length : ref.messages.length;
  const health0 = healthOf(front);
  const errorsBefore = new Set(rec.conns.filter((x) => x.error).map((x) => x.id));
  const { bytes, hung } = await exchange(front.port, parts, want, methods);
  const violations = await settle(front);
  const backend = rec.messages.filter((m) => m.caseTag === c.id);

  // The client's side: every final response, with the backend message it names.
  const resp = parseResponses(bytes, methods, true);
  const responses: ClientResponse[] = resp.messages.filter((m) => m.status >= 200 || m.status === 101).map((m) => ({
    status: m.status, headers: m.headers, body: m.body, chunked: m.framing.kind === 'chunked', recId: headerValue(m, 'x-rec-id'),
    recRefused: headerValue(m, 'x-rec-refused') !== undefined,
  }));
  let garbled: string | undefined;
  if (resp.error) {
    garbled = `${resp.error.code} (${resp.error.reason}) at byte ${resp.error.at} of ${bytes.length}: ${JSON.stringify(bytes.subarray(Math.max(0, resp.error.at - 40), resp.error.at + 40).toString('latin1'))}`;
  }
  const byId = new Map(backend.map((m) => [m.id, m]));
  const allById = new Map(rec.messages.map((m) => [m.id, m]));
  // A proxy-made answer standing for a backend answer it refused (a BAD_RESPONSES variant) is that forward.
  const refusedAnswers = backend.filter((m) => BAD_RESPONSES.has(m.variant));
  const steps: Step[] = responses.map((r): Step => {
    if (r.recRefused) return { backendRefused: r.status };
    let m = r.recId === undefined ? undefined : allById.get(r.recId);
    if (m === undefined && r.recId === undefined) m = refusedAnswers.shift();
    if (m === undefined) return { status: r.status };
    return { fwd: { to: m.service, method: m.method, target: m.url, host: headerValue(m, 'host') ?? null, body: m.body.toString('latin1') }, status: r.status };
  });
  if (garbled !== undefined) steps.push({ garbled: true });

  // Invariants.
  const seen = new Map<string, number>();
  for (const r of responses) if (r.recId !== undefined) seen.set(r.recId, (seen.get(r.recId) ?? 0) + 1);
  // An answer the client could not parse as a response (an HTTP/0.9 answer is a bare body) still reached it.
  const delivered = new Set(seen.keys());
  for (const m of bytes.toString('latin1').matchAll(/"id":"([^"]+)"/g)) delivered.add(m[1] as string);
  for (const [id, n] of seen) {
    if (!byId.has(id)) violations.push(`the client got the answer to backend message ${id}, which belongs to another exchange (${allById.get(id)?.caseTag ?? 'unknown'}): responses crossed between requests`);
    if (n > 1) violations.push(`the answer to backend message ${id} reached the client ${n} times`);
  }
  for (const m of backend) {
    if (BAD_RESPONSES.has(m.variant)) continue;
    if (!delivered.has(m.id)) {
      violations.push(`the backend answered a message whose answer never reached the client (a boundary the proxy did not mean, or a valid answer it dropped): ${describeMsg(m)} at bytes ${m.start}-${m.end} of upstream connection ${m.service}#${m.conn}`);
    }
  }
  // What reached the backend must be framed as the client's request was: same method, same body bytes.
  responses.forEach((r, i) => {
    const m = r.recId === undefined ? undefined : byId.get(r.recId);
    const q: RefMessage | undefined = ref.messages[i];
    if (m === undefined || q === undefined) return;
    if (m.method !== q.method) violations.push(`request ${i + 1}: the client sent ${q.method}, the backend got ${m.method}`);
    if (!m.body.equals(q.body)) {
      violations.push(`request ${i + 1}: the backend got a ${m.body.length}-byte body (${JSON.stringify(m.body.subarray(0, 60).toString('latin1'))}) for a request whose body is ${q.body.length} bytes (${JSON.stringify(q.body.subarray(0, 60).toString('latin1'))}): framing changed on the way`);
    }
  });
  for (const x of rec.conns) {
    if (x.error && !errorsBefore.has(x.id)) {
      const b = Buffer.concat(x.chunks);
      // A method the policy allows (uppercase, '_', '-') that llhttp does not know: the backend refuses the
      // whole request, nothing is misread (the step records it as backendRefused).
      const methodAt = b.subarray(x.parser.boundary, x.parser.boundary + 200).toString('latin1');
      if (x.error.code === 'HPE_INVALID_METHOD' && /^[A-Z_-]+ /.test(methodAt)) continue;
      violations.push(`the proxy sent bytes llhttp refuses on upstream connection ${x.service}#${x.id}: ${x.error.code} (${x.error.reason}) at byte ${x.error.at}: ${JSON.stringify(b.subarray(Math.max(0, x.error.at - 60), x.error.at + 20).toString('latin1'))}`);
    }
  }
  if (garbled !== undefined && !(exp ?? []).some((s) => 'garbled' in s)) violations.push(`the client got a response stream llhttp cannot parse: ${garbled}`);
  if (front.lb !== undefined) {
    const badAsked = backend.some((m) => BAD_RESPONSES.has(m.variant));
    const health1 = healthOf(front);
    for (const [service, h] of health1) {
      const before = health0.get(service) ?? { fails: 0, ejected: false };
      if (!badAsked && (h.fails > before.fails || (h.ejected && !before.ejected))) {
        violations.push(`passive health charged the ${service} instance (consecutive failures ${before.fails} → ${h.fails}${h.ejected ? ', ejected' : ''}) although no backend answer was bad`);
      }
    }
  }
  if (violations.length > 0) {
    // Contain the damage: whatever is left on the upstream connections must not leak into the next case.
    rec.dropAll();
    await new Promise((r) => setTimeout(r, 20));
  }
  return { plane: front.plane, caseId: c.id, responses, garbled, steps, backend, violations, hung, clientBytes: bytes };
}

function healthOf(front: Front): Map<string, { fails: number; ejected: boolean }> {
  const out = new Map<string, { fails: number; ejected: boolean }>();
  const lb = front.lb;
  if (!lb) return out;
  for (const [service, id] of front.instanceIds) {
    const s = lb.states.peek(id);
    out.set(service, { fails: s?.consecutiveFailures ?? 0, ejected: (s?.ejectedUntil ?? 0) > Date.now() });
  }
  return out;
}

const describeMsg = (m: RecMessage): string => `${m.method} ${m.url} (host ${JSON.stringify(headerValue(m, 'host') ?? null)}, ${m.body.length}-byte body)`;

/** A readable one-line form of steps, for messages and the observe tool. */
export function describeSteps(steps: readonly Step[]): string {
  if (steps.length === 0) return '(no answer)';
  return steps.map((s) => {
    if ('garbled' in s) return 'garbled';
    if ('backendRefused' in s) return `backend refused ${s.backendRefused}`;
    if ('fwd' in s) return `${s.fwd.to} ← ${s.fwd.method} ${s.fwd.target}${s.fwd.host === undefined ? '' : ` [host ${s.fwd.host === null ? '-' : s.fwd.host}]`} → ${s.status ?? 200}`;
    return `proxy ${s.status}`;
  }).join(' | ');
}

const isRefusal = (s: Step | undefined): boolean => s !== undefined && 'status' in s && !('fwd' in s) && s.status >= 400 && ![502, 503, 504].includes(s.status);

/** Compares observed steps with the expected ones; returns the differences (empty: as expected). */
export function compare(obs: Observation, exp: readonly Step[]): string[] {
  const out: string[] = [];
  const got = obs.steps;
  if (got.length !== exp.length) out.push(`expected ${exp.length} answer(s), got ${got.length}`);
  const n = Math.min(got.length, exp.length);
  for (let i = 0; i < n; i++) {
    const e = exp[i] as Step;
    const g = got[i] as Step;
    const at = `answer ${i + 1}`;
    if ('garbled' in e || 'garbled' in g || 'backendRefused' in e || 'backendRefused' in g) {
      if (describeSteps([e]) !== describeSteps([g])) out.push(`${at}: expected ${describeSteps([e])}, got ${describeSteps([g])}`);
      continue;
    }
    if ('fwd' in e) {
      if (!('fwd' in g)) {
        out.push(`${at}: expected a forward (${describeSteps([e])}), got ${describeSteps([g])}`);
        continue;
      }
      const f = e.fwd;
      const h = g.fwd;
      if (f.to !== h.to || f.method !== h.method || f.target !== h.target) out.push(`${at}: expected ${describeSteps([e])}, got ${describeSteps([g])}`);
      else if (f.host !== undefined && f.host !== h.host) out.push(`${at}: expected Host ${JSON.stringify(f.host)} at the backend, got ${JSON.stringify(h.host)}`);
      else if (f.body !== undefined && f.body !== h.body) out.push(`${at}: expected body ${JSON.stringify(f.body)} at the backend, got ${JSON.stringify(h.body)}`);
      if ((e.status ?? 200) !== (g.status ?? 200)) out.push(`${at}: expected status ${e.status ?? 200}, got ${g.status ?? 200}`);
    } else {
      if ('fwd' in g) out.push(`${at}: expected the proxy to answer ${e.status} itself, but it forwarded: ${describeSteps([g])}`);
      else if (e.status !== g.status) out.push(`${at}: expected status ${e.status}, got ${g.status}`);
    }
    const rc = e.resp;
    const r = obs.responses[i];
    if (rc && r) {
      for (const [name, want] of Object.entries(rc.headers ?? {})) {
        const have = headerValue(r, name) ?? null;
        if (have !== want) out.push(`${at}: header ${name}: expected ${JSON.stringify(want)}, got ${JSON.stringify(have)}`);
      }
      if (rc.chunked !== undefined && rc.chunked !== r.chunked) out.push(`${at}: expected a ${rc.chunked ? 'chunked' : 'non-chunked'} body`);
      if (rc.minHeaderCount !== undefined && r.headers.length < rc.minHeaderCount) out.push(`${at}: expected at least ${rc.minHeaderCount} header fields, got ${r.headers.length}`);
      if (rc.bodyIncludes !== undefined && !r.body.toString('latin1').includes(rc.bodyIncludes)) out.push(`${at}: expected the body to include ${JSON.stringify(rc.bodyIncludes)}, got ${JSON.stringify(r.body.subarray(0, 120).toString('latin1'))}`);
    }
  }
  return out;
}

/**
 * Cross-plane invariants, once every plane ran the case: the fast plane never forwards a request nginx
 * refuses (unless the case says why nginx's refusal is not about ambiguity), and a switchyard plane never
 * answers a client's own bad request (one llhttp or nginx refuses) with 502/503/504.
 */
export function crossCheck(c: Case, obs: ReadonlyMap<Plane, Observation>): string[] {
  const out: string[] = [];
  const nginx = obs.get('nginx');
  const fast = obs.get('fast');
  const ref = parseRequests(Buffer.concat(sendParts(c)));
  if (nginx && fast && c.nginxRefusalIsNotAmbiguity === undefined) {
    // Index of nginx's first refusal (it serves nothing after it); a request nginx neither answered nor
    // forwarded counts as refused too.
    const k = nginx.steps.findIndex((s) => isRefusal(s));
    const silent = nginx.steps.length < ref.messages.length + (ref.error ? 1 : 0) && nginx.backend.length <= nginx.steps.length && !nginx.steps.some((s) => 'garbled' in s);
    const cut = k >= 0 ? k : silent ? nginx.steps.length : -1;
    if (cut >= 0) {
      fast.steps.forEach((s, i) => {
        if (i >= cut && 'fwd' in s) out.push(`fast plane forwarded request ${i + 1} (${describeSteps([s])}), which nginx refused (${k >= 0 ? describeSteps([nginx.steps[k] as Step]) : 'no answer'})`);
      });
    }
  }
  for (const plane of ['fast', 'node'] as const) {
    const o = obs.get(plane);
    if (!o) continue;
    o.steps.forEach((s, i) => {
      if (!('status' in s) || 'fwd' in s || ![502, 503, 504].includes(s.status)) return;
      const clientBad = (ref.error !== undefined && i >= ref.messages.length) || (nginx !== undefined && isRefusal(nginx.steps[i]));
      if (clientBad) out.push(`${plane} plane answered the client's own bad request ${i + 1} with ${s.status}, an upstream failure status`);
    });
  }
  return out;
}
