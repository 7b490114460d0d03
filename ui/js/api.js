// The UI's HTTP client: Consul API calls with the ACL token, clear errors, and blocking-query watches.

const TOKEN_KEY = 'switchyard.aclToken';

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled; the token then lasts until the page is closed.
  }
}

/** An API answer that was not 2xx, with the body the agent sent (Consul puts the reason there). */
export class ApiError extends Error {
  constructor(status, statusText, body, url) {
    super(`${status} ${statusText}${body ? `: ${body}` : ''}`);
    this.name = 'ApiError';
    this.status = status;
    this.statusText = statusText;
    this.body = body;
    this.url = url;
  }
}

/**
 * fetch() with the token and the agent's error text. `allow` lists non-2xx statuses that are
 * answers rather than failures (KV's 404 for a missing key).
 */
export async function api(path, { method = 'GET', body, signal, allow = [] } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers['X-Consul-Token'] = token;
  if (body !== undefined) headers['Content-Type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    signal,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    cache: 'no-store',
  });
  if (!res.ok && !allow.includes(res.status)) {
    const text = (await res.text().catch(() => '')).trim();
    throw new ApiError(res.status, res.statusText, text, path);
  }
  return res;
}

export async function apiJson(path, opts) {
  const res = await api(path, opts);
  if (res.status === 404) return { res, data: null };
  const text = await res.text();
  return { res, data: text ? JSON.parse(text) : null };
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => {
    clearTimeout(t);
    resolve();
  }, { once: true });
});

/**
 * Follows `path` with Consul blocking queries: each answer's X-Consul-Index is sent back as
 * ?index=, so the agent answers only when the data changed. Calls onData(data, res) for every
 * answer and onState('live' | 'error', err) as the connection comes and goes; stops on abort.
 */
export async function watch(path, { signal, onData, onState, allow = [], wait = '55s' }) {
  let index = 0;
  let failures = 0;
  const sep = path.includes('?') ? '&' : '?';
  while (!signal.aborted) {
    const started = performance.now();
    const before = index;
    try {
      const { res, data } = await apiJson(`${path}${sep}index=${index}&wait=${wait}`, { signal, allow });
      const next = Number(res.headers.get('X-Consul-Index'));
      // Consul's rule: an index that goes backwards (a restore, a new agent) means start over.
      index = Number.isFinite(next) && next >= index ? next : 0;
      failures = 0;
      onState?.('live');
      onData(data, res);
      // An unchanged index answered at once would spin: pause rather than hammer the agent.
      if (index === before && performance.now() - started < 50) await sleep(1000, signal);
    } catch (err) {
      if (signal.aborted) return;
      failures++;
      onState?.('error', err);
      // 403s wait for a token; everything else backs off up to 15 s.
      await sleep(err instanceof ApiError && err.status === 403 ? 5000 : Math.min(15000, 500 * 2 ** failures), signal);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` at a time (browsers allow six connections per host). */
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** `a/b c/` → `/a/b%20c/`: each path segment encoded, slashes kept. */
export function encodePath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

export function kvUrl(key) {
  return `/v1/kv/${encodePath(key)}`;
}

/** KV values arrive base64; most are UTF-8 text, some are not. */
export function decodeValue(b64) {
  if (b64 === null || b64 === undefined) return { text: '', binary: false, bytes: 0 };
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), binary: false, bytes: bytes.length };
  } catch {
    return { text: '', binary: true, bytes: bytes.length };
  }
}
