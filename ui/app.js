// Entry point of the Switchyard UI: client-side routing under /ui/, the page shell, the ACL token dialog.
import { apiJson, getToken, setToken } from './js/api.js';
import { announce, h, pageHeader } from './js/dom.js';
import { renderInstance, renderService, renderServices } from './js/services.js';
import { renderKvFolder, renderKvKey } from './js/kv.js';
import { renderLb } from './js/lb.js';

const main = document.getElementById('main');
let current;
let renderedPath;

/** Path → view. Segments are decoded here once; views get plain strings. */
function resolveRoute(pathname) {
  const rest = pathname.replace(/^\/ui\/?/, '');
  const raw = rest.split('/');
  const seg = raw.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  if (rest === '') return { redirect: '/ui/services' };
  if (seg[0] === 'services') {
    if (seg.length === 1 || (seg.length === 2 && seg[1] === '')) return { nav: 'services', view: renderServices, params: {} };
    if (seg.length === 2 || (seg.length === 3 && seg[2] === '')) return { nav: 'services', view: renderService, params: { name: seg[1] } };
    if (seg.length === 5 && seg[2] === 'instances') return { nav: 'services', view: renderInstance, params: { name: seg[1], node: seg[3], id: seg[4] } };
  }
  if (seg[0] === 'kv') {
    const key = seg.slice(1).join('/');
    if (key === '' || key.endsWith('/')) return { nav: 'kv', view: renderKvFolder, params: { prefix: key } };
    return { nav: 'kv', view: renderKvKey, params: { key } };
  }
  if (seg[0] === 'lb' && (seg.length === 1 || (seg.length === 2 && seg[1] === ''))) return { nav: 'lb', view: renderLb, params: {} };
  return { nav: '', view: renderNotFound, params: { path: pathname } };
}

function renderNotFound(root, { path }) {
  document.title = 'Not found · Switchyard';
  root.append(
    pageHeader('Page not found', `Nothing in the UI lives at ${path}.`),
    h('p', null, h('a', { href: '/ui/services' }, 'Go to the services')),
  );
}

/** Shows the view for the current location; aborts the previous view's watches and streams first. */
function render({ focus }) {
  const path = location.pathname;
  const route = resolveRoute(path);
  if (route.redirect) {
    history.replaceState(null, '', route.redirect + location.search);
    render({ focus });
    return;
  }
  current?.abort();
  current = new AbortController();
  renderedPath = path + location.search;
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === route.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  const view = h('div', { class: 'view' });
  main.append(view);
  try {
    route.view(view, route.params, { signal: current.signal, navigate, search: new URLSearchParams(location.search) });
  } catch (err) {
    console.error(err);
  }
  if (focus) {
    // Move focus to the new page's heading, as a full page load would put a reader at its top.
    const h1 = main.querySelector('h1');
    (h1 ?? main).focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render({ focus: true });
}

document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target instanceof Element ? ev.target.closest('a') : null;
  if (!a) return;
  if (a.hasAttribute('data-skip')) {
    ev.preventDefault();
    main.focus();
    return;
  }
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/ui/') || a.target || a.hasAttribute('download')) return;
  ev.preventDefault();
  if (href !== location.pathname + location.search) navigate(href);
});

window.addEventListener('popstate', () => {
  if (location.pathname + location.search !== renderedPath) render({ focus: true });
});

function setupTokenDialog() {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const button = document.getElementById('token-button');
  const label = () => (button.textContent = getToken() ? 'ACL token (set)' : 'ACL token');
  label();
  button.addEventListener('click', () => {
    input.value = getToken();
    dialog.showModal();
    input.focus();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') setToken(input.value.trim());
    else if (dialog.returnValue === 'clear') setToken('');
    else return;
    label();
    announce(getToken() ? 'ACL token saved' : 'ACL token cleared');
    render({ focus: false });
    loadAgentInfo();
  });
}

async function loadAgentInfo() {
  const el = document.getElementById('agent-info');
  try {
    const { data } = await apiJson('/v1/agent/self');
    const c = data?.Config ?? {};
    el.textContent = [c.NodeName, c.Datacenter, c.Version ? `v${c.Version}` : ''].filter(Boolean).join(' · ');
    el.title = 'Agent node, datacenter and version';
  } catch {
    el.textContent = '';
  }
}

setupTokenDialog();
void loadAgentInfo();
render({ focus: false });
