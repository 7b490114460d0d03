// DOM helpers for the Switchyard UI: element building without innerHTML, focus-keeping updates, formatting.

/**
 * h('a', { href: '/ui/kv/' }, 'Key/Value') builds an element. Strings become text nodes, so data
 * from the registry (service names, KV values, check output) can never become markup.
 */
// Elements h() gave event listeners: their handlers close over the render that built them, so an update
// replaces them rather than keeping the old element with the old handlers.
const LISTENED = new WeakSet();

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2), v);
        LISTENED.add(el);
      }
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
 * Brings a container's children to `children`, keeping every node that is still the same: a live page
 * updated each second must not drop the user's text selection, scroll anchor, keyboard focus or a screen
 * reader's place, and a test (or a script) holding an element must not find it detached. Elements match
 * by tag and key (id, data-key or their other data-* attributes), then their attributes and children are
 * brought over. Form controls, forms, dialogs and elements with listeners are replaced, not updated: their
 * state and handlers belong to the render that built them. When the focused element was replaced, focus
 * goes to its successor (matched by data-key, id or href).
 */
export function patch(container, ...children) {
  const active = document.activeElement;
  let key;
  if (active && container.contains(active)) key = focusKey(active);
  const next = [];
  append({ append: (n) => next.push(n) }, children);
  morphChildren(container, next);
  // A kept element that moved (rows reordered) lost focus in the move: give it back.
  if (key && container.contains(active)) {
    if (document.activeElement !== active) active.focus({ preventScroll: true });
  } else if (key) {
    for (const el of container.querySelectorAll('[data-key],[id],[href]')) {
      if (focusKey(el) === key) {
        el.focus({ preventScroll: true });
        break;
      }
    }
  }
}

const focusKey = (el) => el.dataset?.key ?? (el.id ? `#${el.id}` : el.getAttribute('href'));

const NEVER_KEPT = new Set(['INPUT', 'TEXTAREA', 'SELECT', 'BUTTON', 'FORM', 'DIALOG', 'OPTION']);

function matchKey(el) {
  if (el.id) return `#${el.id}`;
  let k = '';
  for (const a of el.attributes) if (a.name.startsWith('data-')) k += `${a.name}=${a.value};`;
  return k;
}

function keepable(el) {
  return !NEVER_KEPT.has(el.nodeName.toUpperCase()) && !LISTENED.has(el);
}

function sameNode(a, b) {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType === Node.TEXT_NODE) return true;
  if (a.nodeType !== Node.ELEMENT_NODE) return false;
  return a.namespaceURI === b.namespaceURI && a.nodeName === b.nodeName && keepable(a) && keepable(b) && matchKey(a) === matchKey(b);
}

function morphChildren(parent, next) {
  // Keyed children may move (a row leaving from the middle); the rest match in order.
  const keyed = new Map();
  for (let c = parent.firstChild; c; ) {
    const after = c.nextSibling;
    // What can never be kept goes first, so that it does not stand between the rest and their successors.
    if (c.nodeType === Node.ELEMENT_NODE && !keepable(c)) c.remove();
    else if (c.nodeType === Node.ELEMENT_NODE) {
      const k = matchKey(c);
      if (k && !keyed.has(k)) keyed.set(k, c);
    }
    c = after;
  }
  const wanted = new Set();
  for (const n of next) if (n.nodeType === Node.ELEMENT_NODE) wanted.add(matchKey(n));
  let cursor = parent.firstChild;
  for (const n of next) {
    let old = cursor && sameNode(cursor, n) ? cursor : undefined;
    if (!old && n.nodeType === Node.ELEMENT_NODE) {
      const k = matchKey(n);
      const candidate = k ? keyed.get(k) : undefined;
      if (candidate && candidate.parentNode === parent && sameNode(candidate, n)) {
        old = candidate;
        // Old nodes before it that no new one names (a row that left) go now, so that it need not move:
        // a moved node loses the selection and focus inside it.
        while (cursor && cursor !== candidate && !(cursor.nodeType === Node.ELEMENT_NODE && wanted.has(matchKey(cursor)))) {
          const after = cursor.nextSibling;
          cursor.remove();
          cursor = after;
        }
      }
    }
    if (old) {
      if (old.nodeType === Node.ELEMENT_NODE) keyed.delete(matchKey(old));
      if (old !== cursor) parent.insertBefore(old, cursor);
      else cursor = cursor.nextSibling;
      morphNode(old, n);
    } else {
      parent.insertBefore(n, cursor);
    }
  }
  while (cursor) {
    const after = cursor.nextSibling;
    cursor.remove();
    cursor = after;
  }
}

function morphNode(old, n) {
  if (old.nodeType === Node.TEXT_NODE) {
    if (old.nodeValue !== n.nodeValue) old.nodeValue = n.nodeValue;
    return;
  }
  for (const a of [...old.attributes]) if (!n.hasAttribute(a.name)) old.removeAttribute(a.name);
  for (const a of n.attributes) {
    if (old.getAttribute(a.name) === a.value) continue;
    // The CSP (style-src 'self') refuses a style attribute written as markup; the CSSOM is allowed.
    if (a.name === 'style') old.style.cssText = n.style.cssText;
    else old.setAttribute(a.name, a.value);
  }
  morphChildren(old, [...n.childNodes]);
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
