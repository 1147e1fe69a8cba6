// ferry's dashboard: log in with the token, then one stream of server-sent events (read with fetch, so
// that the token travels in the Authorization header, never in a URL), applied to a local copy of the
// view and drawn with textContent only (names come from users: nothing is parsed as HTML).
'use strict';

const TOKEN_KEY = 'ferry-token';
const SECTIONS = ['hosts', 'volumes', 'moves', 'events', 'attention'];
const $ = (id) => document.getElementById(id);

let view = emptyView();
let stream = null; // AbortController of the open stream
let retryMs = 1000;

function emptyView() {
  return Object.fromEntries(SECTIONS.map((s) => [s, {}]));
}

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  return e;
}

/** A table cell with its column's name, which the phone layout shows beside the value. */
function td(label, ...children) {
  // One box for the value, so that on a phone it stays beside its label however many lines it has.
  return el('td', { 'data-label': label }, el('div', { class: 'value' }, ...children));
}

function setStatus(text, cls) {
  $('status').textContent = text;
  $('status').className = `status ${cls || ''}`;
}

function showLogin(message) {
  if (stream) stream.abort();
  stream = null;
  $('board').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
  setStatus('not logged in');
}

function authHeaders(token) {
  return { Authorization: `Bearer ${token}` };
}

async function login(token) {
  let r;
  try {
    r = await fetch('api/view', { headers: authHeaders(token), cache: 'no-store' });
  } catch (err) {
    return showLogin(`cannot reach ferry: ${err.message}`);
  }
  if (r.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin('Wrong token: that is not the token of this ferry.');
  }
  if (!r.ok) return showLogin(`ferry answered ${r.status}: ${await r.text()}`);
  sessionStorage.setItem(TOKEN_KEY, token);
  view = emptyView();
  apply({ set: await r.json(), del: {} });
  $('login').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  connect(token);
}

/** Opens the one stream of this page; reconnects with backoff when it ends. */
async function connect(token) {
  const ctl = new AbortController();
  stream = ctl;
  try {
    const r = await fetch('api/events', { headers: { ...authHeaders(token), Accept: 'text/event-stream' }, signal: ctl.signal, cache: 'no-store' });
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin('The token was refused: log in again.');
    }
    if (!r.ok || !r.body) throw new Error(`ferry answered ${r.status}`);
    setStatus('live', 'live');
    retryMs = 1000;
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        handle(buf.slice(0, end));
        buf = buf.slice(end + 2);
      }
    }
    throw new Error('the stream ended');
  } catch (err) {
    if (ctl.signal.aborted || stream !== ctl) return;
    setStatus(`reconnecting (${err.message})`, 'stale');
    setTimeout(() => stream === ctl && connect(token), retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  }
}

/** One server-sent event: "event: type" and "data: json" lines; comments (":") keep it alive. */
function handle(frame) {
  let type = 'message';
  let data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (!data) return;
  const body = JSON.parse(data);
  if (type === 'snapshot') {
    view = emptyView();
    apply(body);
  } else if (type === 'patch') apply(body);
  else if (type === 'problem') {
    $('problem').hidden = !body.message;
    $('problem').textContent = body.message ? `Cannot read the cluster's state: ${body.message}` : '';
    setStatus(body.message ? 'stale' : 'live', body.message ? 'stale' : 'live');
  }
}

function apply(patch) {
  for (const s of SECTIONS) {
    Object.assign(view[s], (patch.set && patch.set[s]) || {});
    for (const k of (patch.del && patch.del[s]) || []) delete view[s][k];
  }
  render();
}

function render() {
  renderAttention();
  renderHosts();
  renderMoves();
  renderVolumes();
  renderEvents();
}

function renderAttention() {
  const items = Object.entries(view.attention).sort(([a, x], [b, y]) => (x.severity === y.severity ? a.localeCompare(b) : x.severity === 'error' ? -1 : 1));
  $('attention').replaceChildren(
    ...items.map(([key, a]) => el('li', { class: `attention ${a.severity}`, 'data-key': key }, el('strong', {}, a.what), el('span', { class: 'fix' }, a.fix))),
  );
  $('attention-none').hidden = items.length > 0;
}

function renderHosts() {
  const hosts = Object.values(view.hosts).sort((a, b) => a.name.localeCompare(b.name));
  $('hosts').replaceChildren(
    ...hosts.map((h) =>
      el(
        'tr',
        { 'data-host': h.name },
        td('Host', el('strong', {}, h.name)),
        td('State', el('span', { class: `badge ${h.state}` }, h.state)),
        td(
          'Pools',
          h.pools === null
            ? el('span', { class: 'quiet' }, 'not reported yet')
            : [
                ...h.pools.map((p) =>
                  el('div', { class: 'pool' }, `${p.kind}: `, p.ok ? `${p.free} of ${p.total}` : el('span', { class: 'error' }, p.error || 'unavailable'),
                    p.ok ? el('meter', { min: 0, max: 100, low: 10, optimum: 100, value: p.freePercent, title: `${p.freePercent}% free` }) : null),
                ),
                el('div', { class: 'quiet' }, `as of ${new Date(h.reportedAt).toLocaleTimeString()}`),
              ],
        ),
        td('Primary for', `${h.primaries} volume${h.primaries === 1 ? '' : 's'}`),
        td('Last heartbeat', h.lastHeartbeat ? new Date(h.lastHeartbeat).toLocaleTimeString() : '—'),
      ),
    ),
  );
}

function renderMoves() {
  const moves = Object.values(view.moves).sort((a, b) => b.id - a.id);
  $('moves').replaceChildren(
    ...moves.map((m) =>
      el(
        'tr',
        { 'data-move': m.id, class: m.active ? 'active' : '' },
        td('Move', `#${m.id}`),
        td('Volume', m.volume),
        td('From → to', `${m.source} → ${m.target}`),
        td('State', el('span', { class: `badge ${m.state}` }, m.state)),
        td(
          'Progress',
          el('progress', { max: 100, value: m.percent ?? undefined }),
          ' ',
          el('span', { class: 'progress-text' }, m.progress),
          m.error ? el('div', { class: 'error' }, m.error) : null,
        ),
      ),
    ),
  );
  $('moves-none').hidden = moves.length > 0;
}

function renderVolumes() {
  const volumes = Object.values(view.volumes).sort((a, b) => a.name.localeCompare(b.name));
  $('volumes').replaceChildren(
    ...volumes.map((v) =>
      el(
        'tr',
        { 'data-volume': v.name },
        td('Volume', el('strong', {}, v.name), el('div', { class: 'quiet' }, `${v.backend}, generation ${v.generation}`)),
        td('State', el('span', { class: `badge ${v.state}` }, v.moving ? `moving (#${v.moving})` : v.state)),
        td('Primary', v.primary),
        td('Replicas', v.replicas.length ? v.replicas.join(', ') : '—', v.dropping.length ? el('div', { class: 'quiet' }, `dropping on ${v.dropping.join(', ')}`) : null),
        td('Size', v.size),
        td('Used', v.used),
        td(
          'Mounts',
          v.mounts.length
            ? v.mounts.map((m) => el('div', {}, `${m.node} ×${m.count}`, m.containers.length ? ` (${m.containers.join(', ')})` : ''))
            : '—',
        ),
      ),
    ),
  );
  $('volumes-none').hidden = volumes.length > 0;
}

function renderEvents() {
  const events = Object.values(view.events).sort((a, b) => b.id - a.id);
  $('events').replaceChildren(
    ...events.map((e) =>
      el(
        'li',
        { 'data-event': e.id },
        el('time', { dateTime: e.at }, new Date(e.at).toLocaleTimeString()),
        ' ',
        el('span', { class: 'kind' }, e.kind),
        e.volume ? ` ${e.volume}` : '',
        e.node ? ` on ${e.node}` : '',
        e.detail ? el('span', { class: 'quiet' }, ` — ${e.detail}`) : null,
      ),
    ),
  );
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    $('token').value = '';
    if (token) login(token);
  });
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) login(saved);
  else showLogin();
});
