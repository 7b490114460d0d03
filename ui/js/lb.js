// The load balancer's live view: routes, instances, req/s, p99, errors and ejections, pushed by Server-Sent Events.
import { apiJson, getToken } from './api.js';
import { announce, badge, errorPanel, fmtMs, fmtRate, fmtTime, h, liveIndicator, pageHeader, patch, plural } from './dom.js';
import { rolloutChanges, rolloutPanels } from './lb-rollouts.js';

const HISTORY = 60;

function sparkline(points) {
  const w = 120;
  const hgt = 30;
  const max = Math.max(1, ...points);
  const step = points.length > 1 ? w / (HISTORY - 1) : 0;
  const offset = w - step * (points.length - 1);
  const coords = points.map((v, i) => `${(offset + i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('preserveAspectRatio', 'none');
  // The baseline spans the whole minute, so a short history reads as "recent", not as a glitch.
  const base = document.createElementNS(svg.namespaceURI, 'line');
  base.setAttribute('x1', '0');
  base.setAttribute('x2', String(w));
  base.setAttribute('y1', String(hgt - 1));
  base.setAttribute('y2', String(hgt - 1));
  base.setAttribute('class', 'spark-base');
  svg.append(base);
  if (points.length > 1) {
    const area = document.createElementNS(svg.namespaceURI, 'polygon');
    area.setAttribute('points', `${offset.toFixed(1)},${hgt} ${coords} ${w},${hgt}`);
    area.setAttribute('class', 'spark-area');
    const line = document.createElementNS(svg.namespaceURI, 'polyline');
    line.setAttribute('points', coords);
    line.setAttribute('class', 'spark-line');
    svg.append(area, line);
  }
  return svg;
}

function stat(label, value, { detail, tone, extra, key } = {}) {
  return h('div', { class: `stat${tone ? ` stat-${tone}` : ''}`, 'data-stat': key },
    h('dt', null, label),
    h('dd', null, h('span', { class: 'stat-value' }, value), detail ? h('span', { class: 'stat-detail' }, detail) : null, extra ?? null));
}

function upstreamState(u) {
  if (u.ejected) return h('span', { class: 'state state-ejected' }, `Ejected until ${fmtTime(u.ejectedUntil)}`);
  if (u.draining) return h('span', { class: 'state state-draining' }, 'Draining');
  return h('span', { class: 'state state-serving' }, 'Serving');
}

function shareBar(share) {
  const bar = h('span', { class: 'share', 'aria-hidden': 'true' }, h('span', { class: 'share-fill' }));
  // CSSOM, not a style attribute: the page's CSP allows no inline styles.
  bar.firstChild.style.width = `${Math.round(Math.min(1, Math.max(0, share)) * 100)}%`;
  return bar;
}

/** `a` `b` → text with <code> for the backticked parts (the server's messages quote commands that way). */
function withCode(text) {
  return String(text).split('`').map((part, i) => (i % 2 === 1 ? h('code', null, part) : part));
}

function routeLabel(r) {
  return `${r.host === '*' ? '' : r.host}${r.path}`;
}

function groupSection(g) {
  const total = g.upstreams.reduce((n, u) => n + u.rps, 0);
  const titleId = `group-${g.key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return h('section', { class: 'panel group', 'aria-labelledby': titleId, 'data-group': g.key },
    h('header', { class: 'group-head' },
      h('h3', { id: titleId }, g.service),
      h('span', { class: 'group-meta' }, `${g.strategy.replace('_', ' ')} · ${plural(g.upstreams.length, 'instance')}`),
      h('span', { class: 'group-figures' },
        h('span', null, h('strong', null, fmtRate(g.rps)), ' req/s'),
        h('span', null, 'p99 ', h('strong', null, fmtMs(g.p99Ms))),
        h('span', { class: g.errorsPerSec > 0 ? 'bad' : '' }, h('strong', null, fmtRate(g.errorsPerSec)), ' errors/s'))),
    g.upstreams.length === 0
      ? h('p', { class: 'empty-inline' }, `No healthy instance of ${g.service}: requests are answered 503.`)
      : h('div', { class: 'table-scroll' }, h('table', { class: 'data compact' },
        h('caption', { class: 'visually-hidden' }, `Instances of ${g.service} in the balancer`),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Instance'), h('th', { scope: 'col' }, 'Health'), h('th', { scope: 'col', class: 'num' }, 'Weight'),
          h('th', { scope: 'col', class: 'num' }, 'In flight'), h('th', { scope: 'col', class: 'num' }, 'Req/s'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Share of traffic')),
          h('th', { scope: 'col', class: 'num' }, 'Errors/s'), h('th', { scope: 'col', class: 'num' }, 'Ejections'), h('th', { scope: 'col' }, 'State'))),
        h('tbody', null, g.upstreams.map((u) => h('tr', { 'data-upstream': u.address, class: u.ejected ? 'row-bad' : '' },
          h('th', { scope: 'row', class: 'mono' }, u.address, h('span', { class: 'sub' }, u.protocol ? `${u.id} · ${u.protocol}` : u.id)),
          h('td', null, badge(u.status)),
          h('td', { class: 'num' }, String(u.weight)),
          h('td', { class: 'num' }, String(u.inFlight)),
          h('td', { class: 'num', 'data-col': 'rps' }, fmtRate(u.rps)),
          h('td', { class: 'share-cell' }, shareBar(total > 0 ? u.rps / total : 0)),
          h('td', { class: `num${u.errorsPerSec > 0 ? ' bad' : ''}`, 'data-col': 'errors' }, fmtRate(u.errorsPerSec)),
          h('td', { class: `num${u.ejections > 0 ? ' warn' : ''}`, 'data-col': 'ejections' }, String(u.ejections)),
          h('td', null, upstreamState(u))))))),
    g.noInstancePerSec > 0 ? h('p', { class: 'bad small' }, `${fmtRate(g.noInstancePerSec)} req/s found no instance (503).`) : null);
}

/** What a screen-reader user needs to hear: instances joining, leaving, being ejected. */
function changes(prev, next) {
  if (!prev) return [];
  const said = [];
  const before = new Map(prev.groups.map((g) => [g.key, g]));
  for (const g of next.groups) {
    const b = before.get(g.key);
    const was = new Map((b?.upstreams ?? []).map((u) => [u.address, u]));
    for (const u of g.upstreams) {
      const old = was.get(u.address);
      if (!old && b) said.push(`${g.service}: ${u.address} joined`);
      else if (old && old.ejected !== u.ejected) said.push(`${g.service}: ${u.address} ${u.ejected ? 'ejected' : 'back in rotation'}`);
      was.delete(u.address);
    }
    for (const addr of was.keys()) said.push(`${g.service}: ${addr} left`);
  }
  if (prev.registry?.connected && next.registry && !next.registry.connected) said.push('The balancer lost its registry: serving the last table');
  return said;
}

export function renderLb(root, _params, { signal }) {
  document.title = 'Load balancer · Switchyard';
  const live = liveIndicator();
  const header = pageHeader('Load balancer', 'Connecting…', live.el);
  const summary = h('div');
  const routes = h('section', { class: 'panel group', 'aria-labelledby': 'routes-title' });
  const groups = h('section', { class: 'groups', 'aria-labelledby': 'groups-title' });
  const problems = h('div');
  const rollouts = h('div', { class: 'rollout-panels' });
  root.append(header, problems, summary, routes, rollouts, groups);
  let last = null;

  const show = (v) => {
    if (!v.attached) {
      live.set('off', v.starting ? 'Starting' : 'No balancer');
      header.querySelector('.subtitle').textContent = v.starting ? 'Starting in this process.' : 'Not running in this process.';
      routes.hidden = true;
      groups.hidden = true;
      rollouts.hidden = true;
      patch(summary, h('div', { class: 'panel empty', 'data-lb': 'absent' },
        h('p', null, withCode(v.reason)),
        h('p', null, 'A separate ', h('code', null, 'switchyard lb'), ' shows the same table on its admin address at ', h('code', null, '/routes'), ' and ', h('code', null, '/metrics'), '.')));
      return;
    }
    const said = [...changes(last, v), ...rolloutChanges(last, v)];
    if (said.length) announce(said.join('. '));
    last = v;
    live.set('live', `Live · ${fmtTime(v.sampledAt)}`);
    header.querySelector('.subtitle').textContent =
      `${v.balancer.listen ? `Listening on ${v.balancer.listen}. ` : ''}Rates over the last ${Math.round(v.windowSeconds || 0)} s, updated every second.`;
    const t = v.totals;
    const reg = v.registry;
    patch(summary, h('dl', { class: 'stats', 'aria-label': 'Balancer summary' },
      stat('Requests/s', fmtRate(t.rps), { key: 'rps', extra: sparkline(v.history ?? []) }),
      stat('p99 latency', fmtMs(t.p99Ms), { key: 'p99' }),
      stat('Errors/s', fmtRate(t.errorsPerSec), { key: 'errors', tone: t.errorsPerSec > 0 ? 'bad' : '' }),
      stat('HTTP/2 req/s', fmtRate(t.h2Rps ?? 0), { key: 'h2', detail: t.rps > 0 ? `${Math.round(((t.h2Rps ?? 0) / t.rps) * 100)} % of all` : '' }),
      stat('Instances serving', `${t.serving} of ${t.upstreams}`, { key: 'serving', tone: t.serving < t.upstreams ? 'warn' : '' }),
      stat('Routing table', `v${v.version}`, { key: 'version', detail: v.builtAt ? `built ${fmtTime(v.builtAt)}` : 'none yet' }),
      stat('Registry', reg ? (reg.connected ? 'Connected' : 'Disconnected') : '—', { key: 'registry', tone: reg && !reg.connected ? 'bad' : '', detail: reg?.lastError ?? (reg?.lastContact ? `contact ${fmtTime(reg.lastContact)}` : '') })));
    patch(problems, v.problems.length
      ? h('div', { class: 'notice', role: 'note' }, h('p', null, h('strong', null, 'Left out of the table:')), h('ul', null, v.problems.map((p) => h('li', null, p))))
      : null);
    patch(routes,
      h('header', { class: 'group-head' }, h('h2', { id: 'routes-title' }, `Routes (${v.routes.length})`), h('span', { class: 'group-meta' }, 'most specific first')),
      v.routes.length === 0
        ? h('p', { class: 'muted empty-inline' }, 'No routes: every request is answered 404. Add routes in the config, with --service, or with urlprefix- tags.')
        : h('div', { class: 'table-scroll' }, h('table', { class: 'data compact', id: 'routes-table' },
          h('caption', { class: 'visually-hidden' }, 'Routes, most specific first'),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Route'), h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Balancing'), h('th', { scope: 'col' }, 'Protocol'),
            h('th', { scope: 'col', class: 'num' }, 'Req/s'), h('th', { scope: 'col', class: 'num' }, 'p99'), h('th', { scope: 'col', class: 'num' }, 'Errors/s'))),
          h('tbody', null, v.routes.map((r) => h('tr', { 'data-route': r.origin },
            h('th', { scope: 'row' }, h('span', { class: 'mono' }, routeLabel(r)), h('span', { class: 'sub' }, r.origin)),
            h('td', null, r.service),
            h('td', null, r.balance.replace('_', ' ')),
            h('td', { 'data-col': 'protocol' }, r.protocol ?? 'http'),
            h('td', { class: 'num' }, fmtRate(r.rps)),
            h('td', { class: 'num' }, fmtMs(r.p99Ms)),
            h('td', { class: `num${r.errorsPerSec > 0 ? ' bad' : ''}` }, fmtRate(r.errorsPerSec))))))));
    patch(rollouts, ...rolloutPanels(v));
    patch(groups,
      h('h2', { id: 'groups-title' }, 'Instances by service'),
      v.groups.length === 0 ? h('p', { class: 'muted panel' }, 'No upstream groups yet.') : v.groups.map(groupSection));
  };

  void (async () => {
    try {
      // `switchyard up` answers before its balancer is attached: a starting one is asked for again each second.
      for (;;) {
        const { data } = await apiJson('/ui/api/lb', { signal });
        if (signal.aborted) return;
        show(data);
        if (data.attached) break;
        if (!data.starting) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (signal.aborted) return;
      }
    } catch (err) {
      if (signal.aborted) return;
      live.set('error', 'Unavailable');
      patch(problems, errorPanel(err, 'Could not read the balancer'));
      return;
    }
    const token = getToken();
    // EventSource cannot send headers: the token goes in the query, as Consul also accepts.
    const es = new EventSource(`/ui/api/lb/events${token ? `?token=${encodeURIComponent(token)}` : ''}`);
    signal.addEventListener('abort', () => es.close(), { once: true });
    es.addEventListener('lb', (ev) => {
      patch(problems);
      show(JSON.parse(ev.data));
    });
    es.addEventListener('open', () => live.set('live', 'Live'));
    es.addEventListener('error', () => {
      if (!signal.aborted) live.set('error', 'Reconnecting…');
    });
  })();
}
