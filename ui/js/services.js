// Services pages: the catalog with instance counts and health, one service's instances, one instance's checks.
import { apiJson, mapLimit, watch } from './api.js';
import { announce, badge, breadcrumbs, errorPanel, h, liveIndicator, pageHeader, patch, plural, renderIfChanged, statusWord, worstStatus } from './dom.js';

const serviceHref = (name) => `/ui/services/${encodeURIComponent(name)}`;
const instanceHref = (name, node, id) => `${serviceHref(name)}/instances/${encodeURIComponent(node)}/${encodeURIComponent(id)}`;

function liveState(live, what) {
  return (state, err) => {
    if (state === 'live') live.set('live', `Live · ${new Date().toLocaleTimeString('en-GB', { hour12: false })}`);
    else live.set('error', err && err.status ? `${what}: API error ${err.status}, retrying` : `${what}: agent unreachable, retrying`);
  };
}

function summarize(entries) {
  const counts = { passing: 0, warning: 0, critical: 0, maintenance: 0 };
  for (const e of entries) counts[worstStatus(e.Checks)]++;
  return counts;
}

function healthCell(counts, total) {
  if (total === 0) return h('span', { class: 'muted' }, 'No instances');
  return h('span', { class: 'badges' },
    ['passing', 'warning', 'critical', 'maintenance'].filter((s) => counts[s] > 0).map((s) => badge(s, `${counts[s]} ${statusWord(s).toLowerCase()}`)));
}

function tagList(tags) {
  if (!tags || tags.length === 0) return h('span', { class: 'muted' }, '—');
  return h('ul', { class: 'tags', 'aria-label': 'Tags' }, [...new Set(tags)].map((t) => h('li', { class: 'tag' }, t)));
}

function describeCounts(name, total, c) {
  const parts = [`${c.passing} passing`];
  if (c.warning) parts.push(`${c.warning} warning`);
  if (c.critical) parts.push(`${c.critical} critical`);
  if (c.maintenance) parts.push(`${c.maintenance} in maintenance`);
  return `${name}: ${plural(total, 'instance')}, ${parts.join(', ')}`;
}

export function renderServices(root, _params, { signal }) {
  document.title = 'Services · Switchyard';
  const live = liveIndicator();
  const header = pageHeader('Services', 'Everything registered in the catalog, with the health of each instance. Updates live.', live.el);
  const body = h('div', { class: 'panel' }, h('p', { class: 'loading' }, 'Loading services…'));
  const problem = h('div');
  root.append(header, problem, body);

  let catalog = null;
  let refreshing = false;
  let again = false;
  let previous = null;
  let failed = false;
  const onState = (state, err) => {
    liveState(live, 'Services')(state, err);
    // Either watch may fail (a 403 without a token, the agent gone); the panel says why until one answers again.
    if (state === 'error') {
      failed = true;
      patch(problem, errorPanel(err, 'Could not read the catalog'));
    } else if (failed) {
      failed = false;
      patch(problem);
    }
  };

  const refresh = async () => {
    if (catalog === null) return;
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      do {
        again = false;
        const names = Object.keys(catalog).sort((a, b) => a.localeCompare(b));
        const entries = await mapLimit(names, 4, async (n) => (await apiJson(`/v1/health/service/${encodeURIComponent(n)}`, { signal })).data ?? []);
        if (signal.aborted) return;
        const rows = names.map((name, i) => {
          const list = entries[i];
          return { name, tags: catalog[name] ?? [], total: list.length, counts: summarize(list) };
        });
        patch(problem);
        show(rows);
      } while (again && !signal.aborted);
    } catch (err) {
      if (!signal.aborted) patch(problem, errorPanel(err, 'Could not read service health'));
    } finally {
      refreshing = false;
    }
  };

  const show = (rows) => {
    // Tell screen-reader users what changed, not the whole table again.
    if (previous) {
      const before = new Map(previous.map((r) => [r.name, r]));
      const said = [];
      for (const r of rows) {
        const b = before.get(r.name);
        if (!b) said.push(`New service ${describeCounts(r.name, r.total, r.counts)}`);
        else if (JSON.stringify([b.total, b.counts]) !== JSON.stringify([r.total, r.counts])) said.push(describeCounts(r.name, r.total, r.counts));
        before.delete(r.name);
      }
      for (const name of before.keys()) said.push(`Service ${name} removed`);
      if (said.length) announce(said.join('. '));
    }
    previous = rows;
    const instances = rows.reduce((n, r) => n + r.total, 0);
    header.querySelector('.subtitle').textContent = `${plural(rows.length, 'service')}, ${plural(instances, 'instance')}. Updates live.`;
    renderIfChanged(body, rows, () => {
      if (rows.length === 0) {
        return h('div', { class: 'empty' },
          h('p', null, 'No services are registered yet.'),
          h('p', null, 'Register one with the Consul API, for example:'),
          h('pre', { class: 'code' }, `curl -X PUT ${location.origin}/v1/agent/service/register \\\n  -d '{"name":"web","port":8080,"checks":[{"http":"http://127.0.0.1:8080/","interval":"5s"}]}'`));
      }
      return h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'services-table' },
        h('caption', { class: 'visually-hidden' }, 'Services, with instance counts and health'),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col', class: 'num' }, 'Instances'),
          h('th', { scope: 'col' }, 'Health'), h('th', { scope: 'col' }, 'Tags'))),
        h('tbody', null, rows.map((r) => h('tr', { 'data-service': r.name },
          h('th', { scope: 'row' }, h('a', { href: serviceHref(r.name), class: 'strong-link' }, r.name)),
          h('td', { class: 'num', 'data-col': 'instances' }, String(r.total)),
          h('td', { 'data-col': 'health' }, healthCell(r.counts, r.total)),
          h('td', null, tagList(r.tags)))))));
    });
  };

  // Registrations wake the catalog watch, check results the checks watch: either one re-reads health.
  void watch('/v1/catalog/services', {
    signal, onState,
    onData: (data) => {
      catalog = data ?? {};
      void refresh();
    },
  });
  void watch('/v1/health/state/any', { signal, onState, onData: () => void refresh() });
}

function instanceRow(name, e) {
  const s = e.Service;
  const status = worstStatus(e.Checks);
  const passing = (e.Checks ?? []).filter((c) => c.Status === 'passing').length;
  const total = (e.Checks ?? []).length;
  return h('tr', { 'data-instance': s.ID },
    h('th', { scope: 'row' }, h('a', { href: instanceHref(name, e.Node.Node, s.ID), class: 'strong-link' }, s.ID)),
    h('td', { class: 'mono' }, `${s.Address || e.Node.Address}:${s.Port}`),
    h('td', null, e.Node.Node),
    h('td', { 'data-col': 'health' }, badge(status)),
    h('td', null, total === 0 ? h('span', { class: 'muted' }, 'No checks') : `${passing} of ${plural(total, 'check')} passing`),
    h('td', null, tagList(s.Tags)));
}

export function renderService(root, { name }, { signal }) {
  document.title = `${name} · Services · Switchyard`;
  const live = liveIndicator();
  const header = pageHeader(name, 'Instances of this service and their health. Updates live.', live.el);
  const body = h('div', { class: 'panel' }, h('p', { class: 'loading' }, 'Loading instances…'));
  const problem = h('div');
  root.append(breadcrumbs([{ label: 'Services', href: '/ui/services' }, { label: name }]), header, problem, body);
  let previous = null;

  void watch(`/v1/health/service/${encodeURIComponent(name)}`, {
    signal,
    onState: (state, err) => {
      liveState(live, name)(state, err);
      if (state === 'error') patch(problem, errorPanel(err, `Could not read ${name}`));
      else patch(problem);
    },
    onData: (entries) => {
      const list = (entries ?? []).slice().sort((a, b) => a.Service.ID.localeCompare(b.Service.ID));
      const counts = summarize(list);
      header.querySelector('.subtitle').textContent = `${plural(list.length, 'instance')}: ${counts.passing} passing${counts.warning ? `, ${counts.warning} warning` : ''}${counts.critical + counts.maintenance ? `, ${counts.critical + counts.maintenance} not serving` : ''}. Updates live.`;
      const sig = list.map((e) => [e.Node.Node, e.Service.ID, e.Service.Address, e.Service.Port, e.Service.Tags, (e.Checks ?? []).map((c) => [c.CheckID, c.Status])]);
      if (previous !== null && JSON.stringify(previous) !== JSON.stringify(sig)) announce(describeCounts(name, list.length, counts));
      previous = sig;
      renderIfChanged(body, sig, () => list.length === 0
        ? h('div', { class: 'empty' }, h('p', null, `No instances of ${name} are registered right now.`), h('p', null, h('a', { href: '/ui/services' }, 'Back to all services')))
        : h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'instances-table' },
          h('caption', { class: 'visually-hidden' }, `Instances of ${name}`),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Instance'), h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Node'),
            h('th', { scope: 'col' }, 'Health'), h('th', { scope: 'col' }, 'Checks'), h('th', { scope: 'col' }, 'Tags'))),
          h('tbody', null, list.map((e) => instanceRow(name, e))))));
    },
  });
}

function checkCard(c) {
  const headingId = `check-${c.CheckID.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return h('article', { class: `check check-${c.Status}`, 'aria-labelledby': headingId, 'data-check': c.CheckID },
    h('header', { class: 'check-head' },
      h('h3', { id: headingId }, c.Name || c.CheckID),
      badge(c.Status)),
    h('dl', { class: 'meta-inline' },
      h('div', null, h('dt', null, 'Check ID'), h('dd', { class: 'mono' }, c.CheckID)),
      h('div', null, h('dt', null, 'Type'), h('dd', null, c.Type || (c.ServiceID ? 'service' : 'node'))),
      c.ServiceID ? null : h('div', null, h('dt', null, 'Scope'), h('dd', null, 'Node check (applies to every service on the node)')),
      c.Notes ? h('div', null, h('dt', null, 'Notes'), h('dd', null, c.Notes)) : null),
    h('div', { class: 'output' },
      h('p', { class: 'output-label', id: `${headingId}-out` }, 'Output'),
      c.Output
        // Scrollable, so reachable by keyboard; labelled so a screen reader says whose output it is.
        ? h('pre', { tabindex: '0', 'aria-labelledby': `${headingId}-out ${headingId}` }, c.Output)
        : h('p', { class: 'muted' }, 'No output yet.')));
}

export function renderInstance(root, { name, node, id }, { signal }) {
  document.title = `${id} · ${name} · Switchyard`;
  const live = liveIndicator();
  const header = pageHeader(id, `Instance of ${name} on node ${node}. Updates live.`, live.el);
  const details = h('div', { class: 'panel' }, h('p', { class: 'loading' }, 'Loading instance…'));
  const checks = h('section', { class: 'checks', 'aria-labelledby': 'checks-title' });
  const problem = h('div');
  root.append(breadcrumbs([{ label: 'Services', href: '/ui/services' }, { label: name, href: serviceHref(name) }, { label: id }]), header, problem, details, checks);
  let previous = null;

  void watch(`/v1/health/service/${encodeURIComponent(name)}`, {
    signal,
    onState: (state, err) => {
      liveState(live, id)(state, err);
      if (state === 'error') patch(problem, errorPanel(err, `Could not read ${name}`));
      else patch(problem);
    },
    onData: (entries) => {
      const e = (entries ?? []).find((x) => x.Node.Node === node && x.Service.ID === id);
      if (!e) {
        if (previous !== 'gone' && previous !== null) announce(`Instance ${id} is no longer registered`);
        previous = 'gone';
        renderIfChanged(details, 'gone', () => h('div', { class: 'empty' },
          h('p', null, `Instance ${id} of ${name} is not registered on node ${node}.`),
          h('p', null, h('a', { href: serviceHref(name) }, `See the instances of ${name}`))));
        patch(checks);
        checks.dataset.sig = '';
        return;
      }
      const s = e.Service;
      const status = worstStatus(e.Checks);
      const statusSig = (e.Checks ?? []).map((c) => `${c.Name}: ${c.Status}`).join(', ');
      if (previous !== null && previous !== statusSig) announce(`${id} is ${statusWord(status).toLowerCase()}. ${statusSig}`);
      previous = statusSig;
      renderIfChanged(details, s, () => h('dl', { class: 'facts' },
        h('div', null, h('dt', null, 'Health'), h('dd', null, badge(status))),
        h('div', null, h('dt', null, 'Service'), h('dd', null, h('a', { href: serviceHref(name) }, s.Service))),
        h('div', null, h('dt', null, 'Address'), h('dd', { class: 'mono' }, `${s.Address || e.Node.Address}:${s.Port}`)),
        h('div', null, h('dt', null, 'Node'), h('dd', null, `${e.Node.Node} (${e.Node.Address})`)),
        h('div', null, h('dt', null, 'Weights'), h('dd', null, s.Weights ? `passing ${s.Weights.Passing}, warning ${s.Weights.Warning}` : '—')),
        h('div', null, h('dt', null, 'Tags'), h('dd', null, tagList(s.Tags))),
        s.Meta && Object.keys(s.Meta).length
          ? h('div', null, h('dt', null, 'Meta'), h('dd', null, h('ul', { class: 'tags' }, Object.entries(s.Meta).map(([k, v]) => h('li', { class: 'tag' }, `${k}=${v}`)))))
          : null));
      const list = (e.Checks ?? []).slice().sort((a, b) => (a.ServiceID ? 1 : 0) - (b.ServiceID ? 1 : 0) || a.CheckID.localeCompare(b.CheckID));
      renderIfChanged(checks, list.map((c) => [c.CheckID, c.Name, c.Status, c.Output, c.Notes, c.Type]), () => [
        h('h2', { id: 'checks-title' }, `Health checks (${list.length})`),
        list.length === 0 ? h('p', { class: 'muted' }, 'This instance has no checks: Consul treats it as passing.') : list.map(checkCard),
      ]);
    },
  });
}
