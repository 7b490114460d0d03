// DOM helpers for the Switchyard UI: element building without innerHTML, focus-keeping updates, formatting.

/**
 * h('a', { href: '/ui/kv/' }, 'Key/Value') builds an element. Strings become text nodes, so data
 * from the registry (service names, KV values, check output) can never become markup.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * Replaces a container's children, keeping keyboard focus on the "same" element when it is
 * rebuilt (matched by data-key, id or href): live updates must not throw a keyboard user out.
 */
export function patch(container, ...children) {
  const active = document.activeElement;
  let key;
  if (active && container.contains(active)) key = active.dataset.key ?? (active.id ? `#${active.id}` : active.getAttribute('href'));
  container.replaceChildren();
  append(container, children);
  if (key) {
    for (const el of container.querySelectorAll('[data-key],[id],[href]')) {
      const k = el.dataset.key ?? (el.id ? `#${el.id}` : el.getAttribute('href'));
      if (k === key) {
        el.focus({ preventScroll: true });
        break;
      }
    }
  }
}

/** Renders `fn()` into `container` only when `data` differs from what it last rendered. */
export function renderIfChanged(container, data, fn) {
  const sig = JSON.stringify(data);
  if (container.dataset.sig === sig) return false;
  container.dataset.sig = sig;
  patch(container, fn());
  return true;
}

const STATUS_LABEL = { passing: 'Passing', warning: 'Warning', critical: 'Critical', maintenance: 'Maintenance', unknown: 'Unknown' };
const STATUS_ICON = { passing: '✓', warning: '!', critical: '✕', maintenance: '⏸', unknown: '?' };

/** A health badge: the word is always there, colour only repeats it. */
export function badge(status, text) {
  const s = STATUS_LABEL[status] ? status : 'unknown';
  return h('span', { class: `badge badge-${s}` }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, STATUS_ICON[s]), ' ', text ?? STATUS_LABEL[s]);
}

export function statusWord(status) {
  return STATUS_LABEL[status] ?? STATUS_LABEL.unknown;
}

const RANK = { passing: 0, warning: 1, critical: 2, maintenance: 3 };

/** Consul's rule for an instance: its worst check, node checks included; no checks is passing. */
export function worstStatus(checks) {
  let worst = 'passing';
  for (const c of checks ?? []) {
    const maintenance = c.CheckID === '_node_maintenance' || String(c.CheckID).startsWith('_service_maintenance:');
    const s = maintenance ? 'maintenance' : c.Status in RANK ? c.Status : 'critical';
    if (RANK[s] > RANK[worst]) worst = s;
  }
  return worst;
}

export function fmtRate(v) {
  if (!Number.isFinite(v) || v === 0) return '0';
  if (v < 10) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

export function fmtMs(v) {
  if (v === null || v === undefined) return '—';
  if (v < 10) return `${v.toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false });
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Text for the visually hidden status region; set twice so a repeated message is read again. */
export function announce(message) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  setTimeout(() => (el.textContent = message), 60);
}

/** An error panel that screen readers announce; the API's own words are shown verbatim. */
export function errorPanel(err, what) {
  const status = err && err.status ? `The API answered ${err.status}${err.statusText ? ` ${err.statusText}` : ''}` : 'The request failed';
  return h('div', { class: 'error-panel', role: 'alert' },
    h('p', { class: 'error-title' }, what ? `${what}: ${status}` : status),
    err && err.body ? h('pre', { class: 'error-body' }, err.body) : h('p', null, String(err && err.message ? err.message : err)),
    err && err.status === 403 ? h('p', null, 'This agent needs an ACL token: set it with the “ACL token” button at the top right.') : null,
  );
}

/** The page heading; focus moves here after client-side navigation so screen readers announce the new page. */
export function pageHeader(title, subtitle, ...extra) {
  return h('div', { class: 'page-header' },
    h('div', { class: 'page-title' }, h('h1', { tabindex: '-1' }, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
    extra.length ? h('div', { class: 'page-tools' }, extra) : null,
  );
}

/** "Live" indicator (not itself a live region: the announcer speaks for changes that matter). */
export function liveIndicator() {
  const el = h('span', { class: 'live live-connecting' }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), h('span', { class: 'live-text' }, 'Connecting…'));
  return {
    el,
    set(state, text) {
      el.className = `live live-${state}`;
      el.querySelector('.live-text').textContent = text;
    },
  };
}

export function breadcrumbs(items) {
  return h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' },
    h('ol', null, items.map((it, i) => h('li', null,
      i === items.length - 1 ? h('span', { 'aria-current': 'page' }, it.label) : h('a', { href: it.href }, it.label)))),
  );
}
