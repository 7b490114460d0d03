// Key/Value pages: browse by prefix, create, view and edit (compare-and-set), delete with confirmation.
import { api, decodeValue, encodePath, kvUrl, watch } from './api.js';
import { announce, breadcrumbs, errorPanel, h, liveIndicator, pageHeader, patch, plural, renderIfChanged } from './dom.js';

const folderHref = (prefix) => `/ui/kv/${encodePath(prefix)}`;
const keyHref = (key) => `/ui/kv/${encodePath(key)}`;

/** Key/Value › app › config for `app/config/` (or for the key `app/config/name`). */
function trail(path, { lastIsKey }) {
  const parts = path.split('/').filter((p) => p !== '');
  const items = [{ label: 'Key/Value', href: '/ui/kv/' }];
  let acc = '';
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    acc += last && lastIsKey ? p : `${p}/`;
    items.push({ label: p, href: last && lastIsKey ? keyHref(acc) : folderHref(acc) });
  });
  return breadcrumbs(items);
}

const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  folder: 'M1.5 3.5a1 1 0 0 1 1-1h3.6l1.6 1.6h5.8a1 1 0 0 1 1 1v7.4a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1z',
  key: 'M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3',
};

/** Decorative folder/key icon; the link text and the Kind column carry the meaning. */
function icon(folder) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'kv-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', folder ? ICONS.folder : ICONS.key);
  path.setAttribute('fill', folder ? 'currentColor' : 'none');
  path.setAttribute('stroke', 'currentColor');
  path.setAttribute('stroke-width', '1.3');
  path.setAttribute('stroke-linejoin', 'round');
  svg.append(path);
  return svg;
}

function parentOf(key) {
  const i = key.replace(/\/$/, '').lastIndexOf('/');
  return i >= 0 ? key.slice(0, i + 1) : '';
}

/** The folders and keys directly under `prefix`, from the full key list. */
function childrenOf(keys, prefix) {
  const folders = new Set();
  const items = [];
  for (const k of keys) {
    if (!k.startsWith(prefix) || k === prefix) continue;
    const rest = k.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) folders.add(rest.slice(0, slash + 1));
    else items.push(rest);
  }
  const byName = (a, b) => a.localeCompare(b);
  return [...[...folders].sort(byName).map((name) => ({ name, folder: true })), ...items.sort(byName).map((name) => ({ name, folder: false }))];
}

function createForm(prefix, { signal }) {
  const note = h('div', { class: 'form-note' });
  const name = h('input', { id: 'kv-new-name', name: 'name', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'kv-new-name-hint' });
  const value = h('textarea', { id: 'kv-new-value', name: 'value', rows: '4', spellcheck: 'false' });
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Create key');
  const form = h('form', { class: 'panel form', 'aria-labelledby': 'kv-create-title' },
    h('h2', { id: 'kv-create-title' }, prefix ? `Create a key in ${prefix}` : 'Create a key'),
    h('div', { class: 'field' },
      h('label', { for: 'kv-new-name' }, 'Key name'),
      h('div', { class: 'input-group' }, prefix ? h('span', { class: 'input-prefix', 'aria-hidden': 'true' }, prefix) : null, name),
      h('p', { class: 'hint', id: 'kv-new-name-hint' }, prefix ? `Created under ${prefix}. ` : '', 'End the name with / to make a folder; slashes inside make nested folders.')),
    h('div', { class: 'field' }, h('label', { for: 'kv-new-value' }, 'Value'), value),
    h('div', { class: 'actions' }, submit),
    note);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const rel = name.value.trim().replace(/^\/+/, '');
    if (!rel) {
      patch(note, h('p', { class: 'error-text', role: 'alert' }, 'Give the key a name.'));
      name.focus();
      return;
    }
    const key = prefix + rel;
    submit.disabled = true;
    try {
      // cas=0 creates only: an existing key is never overwritten from the create form.
      const res = await api(`${kvUrl(key)}?cas=0`, { method: 'PUT', body: rel.endsWith('/') ? '' : value.value, signal });
      const ok = (await res.text()).trim() === 'true';
      if (!ok) {
        patch(note, h('p', { class: 'error-text', role: 'alert' }, `A key named ${key} already exists. `, h('a', { href: keyHref(key) }, 'Open it to edit it.')));
        return;
      }
      form.reset();
      patch(note, h('p', { class: 'success-text' }, `Created ${key}.`));
      announce(`Created ${rel.endsWith('/') ? 'folder' : 'key'} ${key}`);
      name.focus();
    } catch (err) {
      if (!signal.aborted) patch(note, errorPanel(err, `Could not create ${key}`));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export function renderKvFolder(root, { prefix }, ctx) {
  const { signal } = ctx;
  document.title = prefix ? `${prefix} · Key/Value · Switchyard` : 'Key/Value · Switchyard';
  const live = liveIndicator();
  const header = pageHeader(prefix || 'Key/Value', 'Loading…', live.el);
  const list = h('div', { class: 'panel' }, h('p', { class: 'loading' }, 'Loading keys…'));
  const problem = h('div');
  root.append(trail(prefix, { lastIsKey: false }), header, problem, h('div', { class: 'split' }, list, createForm(prefix, ctx)));

  // The whole key list: a non-root prefix with no keys answers 404, the root never does.
  void watch('/v1/kv/?keys', {
    signal,
    onState: (state, err) => {
      if (state === 'live') {
        live.set('live', `Live · ${new Date().toLocaleTimeString('en-GB', { hour12: false })}`);
        patch(problem);
      } else {
        live.set('error', 'Retrying…');
        patch(problem, errorPanel(err, 'Could not list keys'));
      }
    },
    onData: (keys) => {
      const items = childrenOf(keys ?? [], prefix);
      const folders = items.filter((i) => i.folder).length;
      header.querySelector('.subtitle').textContent = `${plural(folders, 'folder')} and ${plural(items.length - folders, 'key')}${prefix ? ` in ${prefix}` : ''}. Updates live.`;
      renderIfChanged(list, items, () => items.length === 0
        ? h('div', { class: 'empty' }, h('p', null, prefix ? `${prefix} is empty.` : 'The KV store is empty.'), h('p', null, 'Create a key with the form.'))
        : h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'kv-table' },
          h('caption', { class: 'visually-hidden' }, prefix ? `Folders and keys in ${prefix}` : 'Folders and keys'),
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Kind'))),
          h('tbody', null, items.map((it) => h('tr', null,
            h('th', { scope: 'row' }, h('a', { href: it.folder ? folderHref(prefix + it.name) : keyHref(prefix + it.name), class: `strong-link kv-${it.folder ? 'folder' : 'key'}` },
              icon(it.folder), it.name)),
            h('td', { class: 'muted' }, it.folder ? 'Folder' : 'Key')))))));
    },
  });
}

export function renderKvKey(root, { key }, { signal, navigate }) {
  document.title = `${key} · Key/Value · Switchyard`;
  // Deleting stops this page's watch first: a parked query on a key we delete would answer 404.
  const own = new AbortController();
  signal.addEventListener('abort', () => own.abort(), { once: true });

  const live = liveIndicator();
  const header = pageHeader(key, 'Loading…', live.el);
  const problem = h('div');
  const changed = h('div');
  const note = h('div', { class: 'form-note' });
  const meta = h('dl', { class: 'meta-inline' });
  const textarea = h('textarea', { id: 'kv-value', name: 'value', rows: '12', spellcheck: 'false', 'aria-describedby': 'kv-value-hint' });
  const hint = h('p', { class: 'hint', id: 'kv-value-hint' }, 'Saving only succeeds if nobody changed the key since it was loaded.');
  const save = h('button', { type: 'submit', class: 'button button-primary' }, 'Save');
  const del = h('button', { type: 'button', class: 'button button-danger' }, 'Delete');
  const form = h('form', { class: 'panel form', 'aria-labelledby': 'kv-edit-title' },
    h('h2', { id: 'kv-edit-title', class: 'visually-hidden' }, `Edit ${key}`),
    meta,
    h('div', { class: 'field' }, h('label', { for: 'kv-value' }, 'Value'), textarea, hint),
    changed,
    h('div', { class: 'actions' }, save, del),
    note);
  const missing = h('div');
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'kv-delete-title', 'aria-describedby': 'kv-delete-desc' },
    h('form', { method: 'dialog' },
      h('h2', { id: 'kv-delete-title' }, 'Delete this key?'),
      h('p', { id: 'kv-delete-desc' }, `${key} will be removed from the KV store. This cannot be undone.`),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'button button-danger', value: 'delete' }, 'Delete key'),
        h('button', { type: 'submit', class: 'button', value: 'cancel', autofocus: true }, 'Cancel'))));
  root.append(trail(key, { lastIsKey: true }), header, problem, missing, form, dialog);

  let loaded = null; // { value, modifyIndex }
  let remote = null;
  const dirty = () => loaded !== null && textarea.value !== loaded.value;

  const showEntry = (e) => {
    const v = decodeValue(e.Value);
    remote = { value: v.text, modifyIndex: e.ModifyIndex, binary: v.binary };
    header.querySelector('.subtitle').textContent = v.binary ? `Binary value, ${plural(v.bytes, 'byte')}.` : `${plural(v.bytes, 'byte')}. Updates live.`;
    patch(meta,
      h('div', null, h('dt', null, 'Modify index'), h('dd', { class: 'mono' }, String(e.ModifyIndex))),
      h('div', null, h('dt', null, 'Create index'), h('dd', { class: 'mono' }, String(e.CreateIndex))),
      h('div', null, h('dt', null, 'Flags'), h('dd', { class: 'mono' }, String(e.Flags))),
      e.Session ? h('div', null, h('dt', null, 'Locked by session'), h('dd', { class: 'mono' }, e.Session)) : null);
    textarea.disabled = v.binary;
    save.disabled = v.binary;
    if (v.binary) patch(changed, h('p', { class: 'notice' }, 'This value is not UTF-8 text, so it cannot be edited here.'));
    if (loaded === null || !dirty()) {
      loaded = { value: v.text, modifyIndex: e.ModifyIndex };
      if (textarea.value !== v.text) textarea.value = v.text;
      if (!v.binary) patch(changed);
    } else if (v.text === loaded.value) {
      // Our own save coming back while the user already typed on: just take the new index.
      loaded.modifyIndex = e.ModifyIndex;
    } else if (loaded.modifyIndex !== e.ModifyIndex) {
      // Never overwrite what someone is typing; tell them and let them choose.
      patch(changed, h('div', { class: 'notice', role: 'alert' },
        h('p', null, `Someone else changed ${key} while you were editing (modify index ${e.ModifyIndex}). Saving now would be refused.`),
        h('button', { type: 'button', class: 'button', onclick: () => {
          loaded = { value: remote.value, modifyIndex: remote.modifyIndex };
          textarea.value = remote.value;
          patch(changed);
          textarea.focus();
        } }, 'Load their value (drops your edit)')));
    }
  };

  void watch(kvUrl(key), {
    signal: own.signal,
    allow: [404],
    onState: (state, err) => {
      if (state === 'live') {
        live.set('live', `Live · ${new Date().toLocaleTimeString('en-GB', { hour12: false })}`);
        patch(problem);
      } else {
        live.set('error', 'Retrying…');
        patch(problem, errorPanel(err, `Could not read ${key}`));
      }
    },
    onData: (data) => {
      const e = Array.isArray(data) ? data[0] : null;
      if (!e) {
        if (loaded !== null) announce(`${key} was deleted`);
        loaded = null;
        form.hidden = true;
        header.querySelector('.subtitle').textContent = 'Not found.';
        renderIfChanged(missing, 'missing', () => h('div', { class: 'panel empty' },
          h('p', null, `There is no key ${key}.`),
          h('p', null, h('a', { href: folderHref(parentOf(key)) }, `Go to ${parentOf(key) || 'the KV root'}`), ' to create it.')));
        return;
      }
      form.hidden = false;
      renderIfChanged(missing, null, () => []);
      showEntry(e);
    },
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!loaded) return;
    save.disabled = true;
    const value = textarea.value;
    try {
      const res = await api(`${kvUrl(key)}?cas=${loaded.modifyIndex}`, { method: 'PUT', body: value, signal });
      if ((await res.text()).trim() !== 'true') {
        patch(note, h('p', { class: 'error-text', role: 'alert' }, `Not saved: ${key} changed since it was loaded (check-and-set on index ${loaded.modifyIndex} failed). Load the new value and try again.`));
        return;
      }
      // The watch brings the new modify index; until then this is what the store holds.
      loaded = { value, modifyIndex: loaded.modifyIndex };
      patch(changed);
      patch(note, h('p', { class: 'success-text' }, `Saved at ${new Date().toLocaleTimeString('en-GB', { hour12: false })}.`));
      announce(`Saved ${key}`);
    } catch (err) {
      if (!signal.aborted) patch(note, errorPanel(err, `Could not save ${key}`));
    } finally {
      save.disabled = remote?.binary ?? false;
    }
  });

  del.addEventListener('click', () => dialog.showModal());
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'delete') {
      del.focus();
      return;
    }
    own.abort();
    try {
      await api(kvUrl(key), { method: 'DELETE', signal });
      announce(`Deleted ${key}`);
      navigate(folderHref(parentOf(key)));
    } catch (err) {
      if (!signal.aborted) patch(note, errorPanel(err, `Could not delete ${key}`));
    }
  });
}
