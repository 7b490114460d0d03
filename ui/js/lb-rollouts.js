// The balancer page's rollout panels: splits, slow-start ramps, held changes (mass-loss guard),
// the registry watch and the change-latency histogram, from the view's `rollouts` part.
import { fmtMs, fmtTime, h, plural } from './dom.js';

function bar(fraction, label) {
  const el = h('span', { class: 'share', 'aria-hidden': 'true' }, h('span', { class: 'share-fill' }));
  // CSSOM, not a style attribute: the page's CSP allows no inline styles.
  el.firstChild.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  return h('span', { class: 'bar-with-label' }, el, h('span', { class: 'num' }, label));
}

function fmtDuration(ms) {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000} min`;
  return `${Math.round(ms / 100) / 10} s`;
}

function bucketLabel(bounds, i) {
  const b = bounds[i];
  if (b === null) return `over ${fmtMs((bounds[i - 1] ?? 0) * 1000)}`;
  return `≤ ${fmtMs(b * 1000)}`;
}

function splitsPart(r) {
  if (r.splits.length === 0) return h('p', { class: 'muted small rollout-empty' }, 'No split routes: every route sends to one group.');
  return h('div', { class: 'table-scroll' }, h('table', { class: 'data compact', id: 'splits-table' },
    h('caption', null, 'Traffic splits'),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Route'), h('th', { scope: 'col' }, 'Subset'), h('th', { scope: 'col', class: 'num' }, 'Instances'),
      h('th', { scope: 'col' }, 'Share'))),
    h('tbody', null, r.splits.flatMap((s) => s.subsets.map((sub, i) => h('tr', { 'data-split': s.route, 'data-subset': sub.group },
      i === 0
        ? h('th', { scope: 'rowgroup', rowspan: String(s.subsets.length) }, h('span', { class: 'mono' }, s.path), h('span', { class: 'sub' }, s.sticky ? `${s.route} · sticky by ${s.sticky}` : s.route))
        : null,
      h('td', { 'data-col': 'subset', title: `group ${sub.group}` }, sub.label),
      h('td', { class: 'num' }, String(sub.instances)),
      h('td', { 'data-col': 'share' }, bar(sub.sharePercent / 100, `${sub.sharePercent} %`))))))));
}

function slowStartPart(r) {
  if (r.slowStart.length === 0) return h('p', { class: 'muted small rollout-empty' }, 'No instance is ramping up (slow start).');
  return h('div', { class: 'table-scroll' }, h('table', { class: 'data compact', id: 'slow-start-table' },
    h('caption', null, 'Slow start: instances ramping up to their full weight'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Instance'), h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Weight now'))),
    h('tbody', null, r.slowStart.map((u) => h('tr', { 'data-ramp': u.address },
      h('th', { scope: 'row', class: 'mono' }, u.address, h('span', { class: 'sub' }, u.id)),
      h('td', null, u.service),
      h('td', { 'data-col': 'ramp' }, bar(u.ramp, `${Math.round(u.ramp * 100)} % of full`)))))));
}

function guardPart(r) {
  const g = r.guard;
  const rule = g
    ? `Mass-loss guard: when more than ${g.maxDropPercent} % of a service's instances leave within ${fmtDuration(g.holdMs)} without failing a check, they stay in the table for ${fmtDuration(g.holdMs)}.`
    : 'Mass-loss guard: off.';
  if (r.held.length === 0) return h('div', { class: 'rollout-part', 'data-guard': 'idle' }, h('p', { class: 'muted small' }, rule), h('p', { class: 'small' }, 'No change held.'));
  return h('div', { class: 'rollout-part', 'data-guard': 'holding' },
    h('div', { class: 'notice', role: 'note' },
      h('p', null, h('strong', null, `Holding ${plural(r.held.length, 'instance')} that left the registry`), ' — they keep serving until the hold ends, unless their checks fail or they come back.'),
      h('p', { class: 'small' }, rule)),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data compact', id: 'held-table' },
      h('caption', null, 'Held changes'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Instance'), h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Left the registry'), h('th', { scope: 'col' }, 'Held until'))),
      h('tbody', null, r.held.map((x) => h('tr', { 'data-held': x.address },
        h('th', { scope: 'row', class: 'mono' }, x.address, h('span', { class: 'sub' }, x.id)),
        h('td', null, x.service),
        h('td', null, fmtTime(x.since)),
        h('td', { class: 'warn' }, fmtTime(x.until))))))));
}

function watchPart(r) {
  const w = r.watch;
  if (!w) return h('p', { class: 'muted small' }, 'Registry watch: none (a fixed table).');
  if (w.staleAfterMs === null) return h('p', { class: 'small', 'data-watch': 'in-process' }, h('span', { class: 'state state-serving' }, 'Registry watch: in-process'), ' — the balancer reads the catalog directly; it cannot go stale.');
  if (!w.stale) return h('p', { class: 'small', 'data-watch': 'fresh' }, h('span', { class: 'state state-serving' }, 'Registry watch: answering'), ` — stale after ${fmtDuration(w.staleAfterMs)} without an answer.`);
  return h('div', { class: 'notice notice-bad', role: 'alert', 'data-watch': 'stale' },
    h('p', null, h('strong', null, 'Registry watch stale'), ` — no answer within ${fmtDuration(w.staleAfterMs)}: the table may be out of date.`),
    h('ul', null, w.staleWatches.map((x) => h('li', null, h('code', null, x.watch), ` — last heard ${fmtTime(x.lastHeard)}`))));
}

function latencyPart(r) {
  const c = r.changeLatency;
  const last = c.last
    ? h('p', { class: 'small', 'data-last-change': String(c.last.version) },
      `Last change (table v${c.last.version}), committed ${fmtTime(c.last.committedAt)}${c.last.clock === 'arrival' ? ' (registry gave no commit time: measured from arrival)' : ''}: `,
      h('strong', null, `swap ${fmtMs(c.last.swapMs)}`), ', ',
      h('strong', null, c.last.firstRequestMs === null ? 'no request routed yet' : `first request ${fmtMs(c.last.firstRequestMs)}`), '.')
    : h('p', { class: 'muted small' }, 'No registry change since the balancer started.');
  const swap = c.stages.swap;
  const first = c.stages.first_request;
  if (swap.total === 0 && first.total === 0) return h('div', { class: 'rollout-part' }, last);
  const max = Math.max(1, ...swap.counts, ...first.counts);
  const mean = (s) => (s.total > 0 ? fmtMs((s.sumSeconds / s.total) * 1000) : '—');
  // Only the range that holds changes, so the table stays short.
  const used = c.bounds.map((_, i) => i).filter((i) => (swap.counts[i] ?? 0) > 0 || (first.counts[i] ?? 0) > 0);
  const from = Math.max(0, Math.min(...used) - 1);
  const to = Math.min(c.bounds.length - 1, Math.max(...used) + 1);
  const rows = [];
  for (let i = from; i <= to; i++) {
    rows.push(h('tr', { 'data-bucket': String(c.bounds[i] ?? 'inf') },
      h('th', { scope: 'row', class: 'num' }, bucketLabel(c.bounds, i)),
      h('td', { 'data-col': 'swap' }, bar((swap.counts[i] ?? 0) / max, String(swap.counts[i] ?? 0))),
      h('td', { 'data-col': 'first' }, bar((first.counts[i] ?? 0) / max, String(first.counts[i] ?? 0)))));
  }
  return h('div', { class: 'rollout-part' }, last,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data compact', id: 'change-latency-table' },
      h('caption', null, `Change latency: from the registry's commit to the table swap (${swap.total}, mean ${mean(swap)}) and to the first request it routed (${first.total}, mean ${mean(first)})`),
      h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, 'Latency'), h('th', { scope: 'col' }, 'Table swap'), h('th', { scope: 'col' }, 'First request'))),
      h('tbody', null, rows))));
}

/** The two panels' contents for the view `v` (attached). */
export function rolloutPanels(v) {
  const r = v.rollouts;
  if (!r) return [];
  return [
    h('section', { class: 'panel group rollouts', 'aria-labelledby': 'rollouts-title', id: 'rollouts' },
      h('header', { class: 'group-head' }, h('h2', { id: 'rollouts-title' }, 'Rollouts'), h('span', { class: 'group-meta' }, 'splits, slow start, held changes')),
      h('div', { class: 'rollout-body' }, splitsPart(r), slowStartPart(r), guardPart(r))),
    h('section', { class: 'panel group rollouts', 'aria-labelledby': 'changes-title', id: 'registry-changes' },
      h('header', { class: 'group-head' }, h('h2', { id: 'changes-title' }, 'Registry changes'), h('span', { class: 'group-meta' }, 'watch and change latency')),
      h('div', { class: 'rollout-body' }, watchPart(r), latencyPart(r))),
  ];
}

/** What a screen-reader user should hear about rollouts between two views. */
export function rolloutChanges(prev, next) {
  const said = [];
  const a = prev?.rollouts;
  const b = next.rollouts;
  if (!a || !b) return said;
  if (b.held.length > 0 && a.held.length === 0) said.push(`Mass-loss guard holding ${plural(b.held.length, 'instance')}`);
  if (b.held.length === 0 && a.held.length > 0) said.push('Mass-loss guard released the held instances');
  if (b.watch?.stale && !a.watch?.stale) said.push('The registry watch is stale');
  if (!b.watch?.stale && a.watch?.stale) said.push('The registry watch answers again');
  return said;
}
