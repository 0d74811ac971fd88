// The registry usage dashboard: plain JavaScript, no framework, no build step.
// It reads the same JSON API as any other client and asks only for what it shows
// (sort, limit, embed, q); the token lives in sessionStorage (never a cookie).
// The view is in the URL fragment: #ns=<path> | #repo=<name>[&tag=<tag>], plus
// m=<measure> (treemap area) and s=<sort> (table order), so reload and links work.
'use strict';

(function () {
  const BASE = document.querySelector('meta[name="api-base"]').content;
  const TOKEN_KEY = 'grur.token';
  const ROWS = 50; // table rows shown first, and added by "show more"
  const TILES = 60; // treemap tiles at most
  const MEASURES = {
    exclusive_size: 'exclusive',
    deduplicated_size: 'deduplicated',
    size: 'logical',
    disk_size: 'disk_size',
  };
  const $ = (id) => document.getElementById(id);

  // ---- formatting -------------------------------------------------------------------

  const UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function human(n) {
    if (n === null || n === undefined) return '—';
    if (n < 1024) return n + ' ' + (n === 1 ? 'byte' : 'bytes');
    let i = 0;
    let v = n;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ' + UNITS[i];
  }
  const exact = (n) => (n === null || n === undefined ? 'unknown' : n.toLocaleString('en-US') + ' bytes');
  const count = (n) => (n === null || n === undefined ? '—' : n.toLocaleString('en-US'));
  function ago(seconds) {
    const s = Math.max(0, Math.round(Date.now() / 1000 - seconds));
    if (s < 45) return 'just now';
    const units = [[86400, 'day'], [3600, 'hour'], [60, 'minute']];
    for (const [size, name] of units) {
      const k = Math.round(s / size);
      if (k >= 1 && s >= size * 0.75) return k + ' ' + name + (k === 1 ? '' : 's') + ' ago';
    }
    return s + ' seconds ago';
  }
  const exactTime = (seconds) => new Date(seconds * 1000).toString();
  function growth(item) {
    const g = item.growth_30d;
    if (g === null || g === undefined) return '—';
    return (g > 0 ? '+' : g < 0 ? '−' : '±') + human(Math.abs(g));
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // ---- the API ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }
  class NeedLogin extends Error {}

  async function messageOf(response) {
    try {
      const j = await response.json();
      return j.message || j.msg || '';
    } catch (_) {
      return '';
    }
  }

  // GET a JSON document; 401 means the token is gone or expired.
  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new NeedLogin('');
    let r;
    try {
      r = await fetch(BASE + path, {
        headers: { Accept: 'application/hal+json', Authorization: 'Bearer ' + token },
        credentials: 'omit',
      });
    } catch (e) {
      throw new ApiError(0, 'The service did not answer: ' + e.message);
    }
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      throw new NeedLogin('Your session has expired: log in again to go on where you were.');
    }
    if (!r.ok) {
      const msg = await messageOf(r);
      throw new ApiError(r.status, msg || 'HTTP ' + r.status + ' for ' + path, r.headers.get('Retry-After'));
    }
    return r.json();
  }

  // The same, but a 404 (a route this server does not have yet) is null.
  async function optional(path) {
    try {
      return await api(path);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  const enc = encodeURIComponent;
  const embedded = (doc, key) => (doc && doc._embedded && doc._embedded[key]) || [];
  function listQuery(sort, limit, q) {
    let s = 'sort=' + enc(sort) + '&limit=' + limit;
    if (q) s += '&q=' + enc(q);
    return s;
  }

  // One level of the tree, as the treemap and the table show it.
  function item(kind, doc, parent) {
    const name = doc.name;
    const label = parent && name.startsWith(parent + '/') ? name.slice(parent.length + 1) : name;
    return {
      kind,
      name,
      label,
      size: doc.size,
      disk_size: doc.disk_size,
      deduplicated_size: doc.deduplicated_size,
      exclusive_size: doc.exclusive_size,
      tag_count: kind === 'tag' ? null : doc.tag_count,
      repository_count: doc.repository_count,
      failed_repository_count: doc.failed_repository_count,
      growth_30d: doc.growth_30d,
      error: doc.error,
      digest: doc.digest,
      // RFC 3339 in the API; unix seconds here, as the other times.
      created: doc.created ? Date.parse(doc.created) / 1000 : null,
    };
  }

  function sortItems(items, sort) {
    const desc = sort.startsWith('-');
    const key = desc ? sort.slice(1) : sort;
    const value = (i) => (key === 'name' ? i.name : i[key] === null || i[key] === undefined ? -1 : i[key]);
    items.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return (desc ? -c : c) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
    return items;
  }

  // Registry totals (the collection without its items; `sort` asks for the usage fields).
  function loadTotals() {
    return api('/repositories?sort=-exclusive_size&limit=1');
  }

  // Children of the root or of a namespace: namespaces and repositories, sorted by `sort`,
  // at most `limit` of each kind (so the first `limit` of the merged list are right).
  async function loadChildren(view, sort, limit, q) {
    const qs = listQuery(sort, limit, q);
    if (!view.ns) {
      const [ns, repos] = await Promise.all([
        api('/namespaces?embed=1&' + qs),
        api('/repositories?embed=1&' + qs),
      ]);
      const nsItems = embedded(ns, 'items').map((d) => item('namespace', d, ''));
      // Repositories outside every namespace (a name without "/"), among the registry's top.
      const repoItems = embedded(repos, 'items')
        .filter((d) => !d.name.includes('/'))
        .map((d) => item('repository', d, ''));
      const all = sortItems(nsItems.concat(repoItems), sort);
      return { self: null, items: all, more: nsItems.length >= limit || embedded(repos, 'items').length >= limit };
    }
    const doc = await api('/namespaces/' + enc(view.ns) + '?embed=1&' + qs);
    const nsItems = embedded(doc, 'namespaces').map((d) => item('namespace', d, view.ns));
    const repoItems = embedded(doc, 'repositories').map((d) => item('repository', d, view.ns));
    return {
      self: item('namespace', doc, ''),
      items: sortItems(nsItems.concat(repoItems), sort),
      // The children are one list (cut to `limit`) split into the two embedded lists.
      more: nsItems.length + repoItems.length >= limit,
    };
  }

  async function loadTags(view, sort, limit, q) {
    const [repo, tags] = await Promise.all([
      api('/repositories/' + enc(view.repo) + '?sort=-exclusive_size'),
      api('/repositories/' + enc(view.repo) + '/tags?embed=1&' + listQuery(sort, limit, q)),
    ]);
    const items = embedded(tags, 'items').map((d) => item('tag', d, ''));
    return { self: item('repository', repo, ''), items: sortItems(items, sort), more: items.length >= limit };
  }

  function historyPath(view) {
    if (view.repo) return '/repositories/' + enc(view.repo) + '/history';
    if (view.ns) return '/namespaces/' + enc(view.ns) + '/history';
    return '/history';
  }

  // ---- the view in the URL fragment -----------------------------------------------------

  function readView() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ''));
    const m = MEASURES[p.get('m')] ? p.get('m') : 'exclusive_size';
    return {
      ns: p.get('repo') ? null : p.get('ns') || null,
      repo: p.get('repo') || null,
      tag: p.get('repo') ? p.get('tag') || null : null,
      m,
      s: /^-?[a-z_0-9]+$/.test(p.get('s') || '') ? p.get('s') : '-' + m,
      q: p.get('q') || '',
    };
  }

  function viewHash(v) {
    const p = new URLSearchParams();
    if (v.repo) p.set('repo', v.repo);
    else if (v.ns) p.set('ns', v.ns);
    if (v.repo && v.tag) p.set('tag', v.tag);
    if (v.m !== 'exclusive_size') p.set('m', v.m);
    if (v.s !== '-' + v.m) p.set('s', v.s);
    if (v.q) p.set('q', v.q);
    const s = p.toString();
    return '#' + s;
  }

  function go(change) {
    const v = Object.assign(readView(), change);
    location.hash = viewHash(v);
  }

  // The view one level up: a tag → its repository → its namespace → ... → the root.
  function parentOf(v) {
    const keep = { m: v.m, s: '-' + v.m, q: '' };
    if (v.tag) return Object.assign({ repo: v.repo, tag: null }, keep, { s: v.s });
    const name = v.repo || v.ns;
    if (!name) return null;
    const i = name.lastIndexOf('/');
    return Object.assign({ repo: null, tag: null, ns: i > 0 ? name.slice(0, i) : null }, keep);
  }

  // ---- login ------------------------------------------------------------------------

  function showLogin(note) {
    $('app').hidden = true;
    $('logout').hidden = true;
    $('measure-box').hidden = true;
    $('scan').hidden = true;
    $('login').hidden = false;
    $('login-note').textContent = note || '';
    $('login-error').textContent = '';
    $('password').value = '';
    ($('user').value ? $('password') : $('user')).focus();
    document.body.dataset.ready = 'login';
  }

  function basic(user, password) {
    const bytes = new TextEncoder().encode(user + ':' + password);
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return 'Basic ' + btoa(s);
  }

  async function login(ev) {
    ev.preventDefault();
    const user = $('user').value;
    const password = $('password').value;
    const error = $('login-error');
    if (!user || !password) {
      error.textContent = 'Enter a user name and a password.';
      return;
    }
    $('login-submit').disabled = true;
    error.textContent = '';
    document.body.dataset.ready = 'logging-in';
    try {
      let r;
      try {
        r = await fetch(BASE + '/auth_token', {
          method: 'POST',
          headers: { Authorization: basic(user, password), Accept: 'application/json' },
          credentials: 'omit',
          cache: 'no-store',
        });
      } catch (e) {
        error.textContent = 'The service did not answer: ' + e.message;
        return;
      }
      if (r.ok) {
        const j = await r.json();
        sessionStorage.setItem(TOKEN_KEY, j.auth_token);
        $('password').value = '';
        $('login').hidden = true;
        await render();
        return;
      }
      const msg = await messageOf(r);
      const wait = r.headers.get('Retry-After');
      const seconds = Number(wait) >= 1 ? Number(wait) : null;
      const inSeconds = seconds ? seconds + ' second' + (seconds === 1 ? '' : 's') : 'a few seconds';
      if (r.status === 401) error.textContent = 'Wrong user name or password.';
      else if (r.status === 429) error.textContent = 'Too many attempts: wait ' + inSeconds + ' before trying again.';
      else if (r.status === 503)
        // The directory (LDAP) is down, or every login thread is busy: the service says which.
        error.textContent = (msg || 'The login service is unavailable at the moment; try again later') + (seconds ? ' (in about ' + inSeconds + ')' : '') + '.';
      else error.textContent = 'Login failed: HTTP ' + r.status + (msg ? ' — ' + msg : '');
    } finally {
      $('login-submit').disabled = false;
      if (document.body.dataset.ready === 'logging-in') document.body.dataset.ready = 'login-error';
    }
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('You are logged out.');
  }

  // ---- rendering --------------------------------------------------------------------

  let generation = 0; // renders started; a stale one stops writing when a newer one began
  let shown = ROWS;
  let current = { items: [], self: null, totals: null, view: null };

  function setStatus(text, isError) {
    const s = $('status');
    s.textContent = text || '';
    s.classList.toggle('error', !!isError);
  }

  function card(key, value, title) {
    return el('div', { class: 'card', title }, el('span', { class: 'k', text: key }), el('span', { class: 'v', text: value }));
  }

  function renderOverview(totals) {
    const o = $('overview');
    o.replaceChildren(
      card('Repositories', count(totals.repository_count)),
      card('Tags', count(totals.tag_count)),
      card('Logical (size)', human(totals.size), exact(totals.size)),
      card('On disk (deduplicated)', human(totals.deduplicated_size ?? totals.disk_size), exact(totals.deduplicated_size ?? totals.disk_size)),
    );
    const scan = $('scan');
    scan.textContent = 'Last scan ' + ago(totals.timestamp);
    scan.title = exactTime(totals.timestamp);
  }

  // Failed repositories with their errors: walk only the namespaces that have failures.
  async function renderFailed(gen) {
    const box = $('failed');
    const found = [];
    let total = 0;
    try {
      const top = await api('/namespaces?embed=1&sort=-failed_repository_count&limit=20');
      const queue = embedded(top, 'items').filter((n) => n.failed_repository_count > 0);
      total = queue.reduce((a, n) => a + n.failed_repository_count, 0);
      let requests = 0;
      while (queue.length && found.length < 20 && requests < 15) {
        const ns = queue.shift();
        requests++;
        // Ascending by tag_count puts the repositories whose tags are unknown first.
        const doc = await api('/namespaces/' + enc(ns.name) + '?embed=1&sort=tag_count&limit=200');
        for (const r of embedded(doc, 'repositories')) if (r.error) found.push(r);
        for (const c of embedded(doc, 'namespaces')) if (c.failed_repository_count > 0) queue.push(c);
      }
    } catch (e) {
      if (e instanceof NeedLogin) throw e;
      return; // the overview still stands without this part
    }
    if (gen !== generation) return;
    if (!total) {
      box.hidden = true;
      return;
    }
    const list = el('ul');
    for (const r of found.slice(0, 20)) {
      list.append(el('li', {}, el('a', { href: viewHash({ repo: r.name, m: 'exclusive_size', s: '-exclusive_size' }), text: r.name }), ': ', el('code', { text: r.error })));
    }
    const one = total === 1;
    box.replaceChildren(
      el('h2', { text: total + (one ? ' repository' : ' repositories') + ' failed in the last scan; ' + (one ? 'its numbers are' : 'their numbers are') + ' from an earlier scan, or unknown:' }),
      list,
    );
    if (total > found.length) box.append(el('p', { class: 'note', text: 'and ' + (total - found.length) + ' more' }));
    box.hidden = false;
  }

  function crumbs(v) {
    const ol = el('ol');
    const parts = [{ label: 'Registry', view: { ns: null, repo: null } }];
    const name = v.repo || v.ns;
    if (name) {
      const segs = name.split('/');
      segs.forEach((seg, i) => {
        const path = segs.slice(0, i + 1).join('/');
        const last = i === segs.length - 1;
        parts.push({ label: seg, view: last && v.repo ? { repo: path } : { ns: path, repo: null } });
      });
    }
    if (v.tag) parts.push({ label: v.tag, view: { repo: v.repo, tag: v.tag } });
    parts.forEach((p, i) => {
      const last = i === parts.length - 1;
      const target = Object.assign({ ns: null, repo: null, tag: null, m: v.m, s: '-' + v.m, q: '' }, p.view);
      ol.append(el('li', {}, last ? el('span', { 'aria-current': 'page', text: p.label }) : el('a', { href: viewHash(target), text: p.label })));
    });
    $('crumbs').replaceChildren(ol);
    $('back').disabled = !parentOf(v);
  }

  function hrefOf(it, v) {
    const keep = { m: v.m, s: '-' + v.m, q: '' };
    if (it.kind === 'namespace') return viewHash(Object.assign({ ns: it.name }, keep));
    if (it.kind === 'repository') return viewHash(Object.assign({ repo: it.name }, keep));
    return viewHash({ repo: v.repo, tag: it.name, m: v.m, s: v.s, q: v.q });
  }

  // ---- squarified treemap (Bruls, Huizing, van Wijk 2000) ---------------------------------

  function worst(row, sum, side) {
    let max = 0;
    let min = Infinity;
    for (const a of row) {
      if (a > max) max = a;
      if (a < min) min = a;
    }
    const s2 = sum * sum;
    const w2 = side * side;
    return Math.max((w2 * max) / s2, s2 / (w2 * min));
  }

  // Rectangles for `values` (sorted descending, all > 0) filling w × h.
  function squarify(values, w, h) {
    const total = values.reduce((a, b) => a + b, 0);
    const areas = values.map((v) => (v / total) * w * h);
    const out = [];
    let x = 0;
    let y = 0;
    let i = 0;
    while (i < areas.length) {
      const side = Math.min(w, h);
      const row = [areas[i]];
      let sum = areas[i];
      let j = i + 1;
      while (j < areas.length) {
        const next = row.concat(areas[j]);
        if (worst(next, sum + areas[j], side) > worst(row, sum, side)) break;
        row.push(areas[j]);
        sum += areas[j];
        j++;
      }
      if (w >= h) {
        const cw = sum / h;
        let cy = y;
        for (const a of row) {
          out.push({ x, y: cy, w: cw, h: a / cw });
          cy += a / cw;
        }
        x += cw;
        w -= cw;
      } else {
        const ch = sum / w;
        let cx = x;
        for (const a of row) {
          out.push({ x: cx, y, w: a / ch, h: ch });
          cx += a / ch;
        }
        y += ch;
        h -= ch;
      }
      i = j;
    }
    return out;
  }

  function kindName(it) {
    return it.kind === 'namespace' ? 'namespace' : it.kind === 'repository' ? 'repository' : 'tag';
  }

  // `scope`: the level's own numbers (the namespace or repository; the registry's totals
  // at the root), to say how much of it the tiles cover.
  function renderTreemap(items, v, scope, more) {
    const box = $('treemap');
    const m = v.m;
    const what = v.repo ? 'tags of ' + v.repo : v.ns ? 'namespace ' + v.ns : 'the registry';
    $('map-title').textContent = 'Treemap of ' + what + ' by ' + MEASURES[m] + ' bytes';
    box.setAttribute('aria-label', 'Treemap of ' + what + ': area by ' + MEASURES[m] + ' bytes; each tile is a link');
    const shownItems = items.filter((it) => it[m] > 0).slice(0, TILES);
    const note = $('map-note');
    const left = items.length - shownItems.length;
    const w = box.clientWidth;
    const h = box.clientHeight;
    box.replaceChildren();
    if (!shownItems.length) {
      note.textContent = items.length
        ? 'Nothing here has any ' + MEASURES[m] + ' bytes (everything is shared with something else). Choose another measure above.'
        : 'Nothing to show.';
      return;
    }
    const covered = shownItems.reduce((a, it) => a + it[m], 0);
    const whole = scope && scope[m];
    const share = whole > 0 ? ' (' + Math.round((100 * covered) / whole) + ' % of ' + human(whole) + ')' : '';
    // The tiles are sized against each other; say when they are not everything.
    const rest = left > 0 || more;
    const partial = rest || (whole > 0 && covered < whole);
    note.textContent = !partial
      ? ''
      : (rest ? 'The ' + shownItems.length + ' biggest' : 'These ' + shownItems.length) + ' by ' + MEASURES[m] + ' bytes: together ' + human(covered) + share + '.' +
        (m === 'exclusive_size' && whole > covered ? ' Layers shared by several of them are exclusive to none of them.' : '') +
        (rest ? ' The others are in the table.' : '');
    const rects = squarify(shownItems.map((it) => it[m]), w, h);
    shownItems.forEach((it, i) => {
      const r = rects[i];
      const area = r.w * r.h;
      const size = r.w < 60 || r.h < 34 ? (r.w < 28 || r.h < 18 ? ' tiny' : ' small') : '';
      const a = el(
        'a',
        {
          class: 'tile c' + (i % 10) + size,
          href: hrefOf(it, v),
          role: 'listitem',
          'data-name': it.name,
          'data-kind': it.kind,
          'aria-label': kindName(it) + ' ' + it.label + ': ' + human(it[m]) + ' ' + MEASURES[m],
        },
        el('span', { class: 'n', text: it.label }),
        el('span', { class: 's', text: human(it[m]) }),
      );
      a.style.left = r.x + 'px';
      a.style.top = r.y + 'px';
      a.style.width = Math.max(0, r.w) + 'px';
      a.style.height = Math.max(0, r.h) + 'px';
      if (area < 300) a.tabIndex = -1; // reachable from the table instead
      box.append(a);
    });
  }

  function columns(v) {
    if (v.repo) {
      return [
        { key: 'name', label: 'Tag', sort: 'name' },
        { key: 'size', label: 'Logical', sort: 'size', bytes: true },
        { key: 'exclusive_size', label: 'Exclusive', sort: 'exclusive_size', bytes: true },
        { key: 'share', label: 'Share', sort: null },
        { key: 'digest', label: 'Digest', sort: null, opt: true },
        { key: 'created', label: 'Age', sort: null, opt: true },
      ];
    }
    return [
      { key: 'name', label: 'Name', sort: 'name' },
      { key: 'tag_count', label: 'Tags', sort: 'tag_count', opt: true },
      { key: 'size', label: 'Logical', sort: 'size', bytes: true, opt: true },
      { key: 'deduplicated_size', label: 'Deduplicated', sort: 'deduplicated_size', bytes: true },
      { key: 'exclusive_size', label: 'Exclusive', sort: 'exclusive_size', bytes: true },
      { key: 'share', label: 'Share', sort: null },
      { key: 'growth_30d', label: 'Growth 30d', sort: null, opt: true },
    ];
  }

  function renderHead(v) {
    const tr = $('table-head');
    tr.replaceChildren();
    for (const c of columns(v)) {
      const th = el('th', { scope: 'col', class: c.opt ? 'col-opt' : null });
      if (c.sort) {
        const active = v.s === c.sort || v.s === '-' + c.sort;
        if (active) th.setAttribute('aria-sort', v.s.startsWith('-') ? 'descending' : 'ascending');
        const b = el('button', { type: 'button', 'data-sort': c.sort, text: c.label, title: 'Sort by ' + c.label });
        b.addEventListener('click', () => {
          // Sizes sort biggest first on the first click, names A to Z.
          const first = c.sort === 'name' ? c.sort : '-' + c.sort;
          const flipped = v.s === first ? (first.startsWith('-') ? c.sort : '-' + c.sort) : first;
          go({ s: flipped });
        });
        th.append(b);
      } else {
        th.textContent = c.label;
        if (c.key === 'share') th.title = 'Share of the registry\'s ' + MEASURES[v.m] + ' bytes';
      }
      tr.append(th);
    }
  }

  // The registry's total of a measure: exclusive bytes of everything are all its bytes.
  function registryTotal(totals, m) {
    if (!totals) return 0;
    if (m === 'size') return totals.size;
    if (m === 'disk_size') return totals.disk_size;
    return totals.deduplicated_size ?? totals.disk_size;
  }

  function renderTable(items, v, totals, more) {
    const body = $('table-body');
    const what = v.repo ? 'Tags of ' + v.repo : v.ns ? 'In ' + v.ns : 'Namespaces and repositories';
    $('table-title').textContent = what;
    $('table').setAttribute('aria-label', what);
    const total = registryTotal(totals, v.m);
    const digests = new Map();
    for (const it of items) if (it.digest) digests.set(it.digest, (digests.get(it.digest) || []).concat(it.name));
    const rows = [];
    for (const it of items.slice(0, shown)) {
      const tr = el('tr', { 'data-name': it.name, 'data-kind': it.kind, class: v.tag === it.name ? 'current' : null });
      for (const c of columns(v)) {
        let td;
        if (c.key === 'name') {
          td = el('th', { scope: 'row' }, el('a', { href: hrefOf(it, v), text: it.label }));
          if (it.error) td.append(' ', el('span', { class: 'warn', title: 'Last scan failed: ' + it.error, 'aria-label': 'last scan failed: ' + it.error, text: '⚠' }));
          if (it.failed_repository_count > 0)
            td.append(' ', el('span', { class: 'warn', title: it.failed_repository_count + ' repositories failed in the last scan', text: '⚠' }));
        } else if (c.bytes) {
          td = el('td', { title: exact(it[c.key]), text: human(it[c.key]) });
        } else if (c.key === 'share') {
          const value = it[v.m];
          const pct = total > 0 && value !== null && value !== undefined ? (100 * value) / total : null;
          td = el('td', { class: 'share', title: exact(value) + ' of ' + exact(total) });
          if (pct !== null) {
            const bar = el('span', { class: 'sharebar', 'aria-hidden': 'true' });
            bar.style.width = Math.max(0.1, Math.min(100, pct) * 0.04) + 'em';
            td.append(bar, (pct >= 10 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)) + ' %');
          } else td.textContent = '—';
        } else if (c.key === 'growth_30d') {
          td = el('td', { title: it.growth_30d === null || it.growth_30d === undefined ? 'no history yet' : exact(it.growth_30d), text: growth(it) });
        } else if (c.key === 'digest') {
          td = el('td', { class: 'digest' });
          if (it.digest) {
            td.append(el('span', { title: it.digest, text: it.digest.replace(/^sha256:/, '').slice(0, 12) }));
            const same = (digests.get(it.digest) || []).filter((n) => n !== it.name);
            if (same.length) td.append(el('span', { class: 'alias', text: 'same image as ' + same.slice(0, 3).join(', ') + (same.length > 3 ? '…' : '') }));
          } else td.textContent = '—';
        } else if (c.key === 'created') {
          td = el('td', it.created ? { title: exactTime(it.created), text: ago(it.created).replace(' ago', '') } : { title: 'the registry does not say', text: '—' });
        } else {
          td = el('td', { text: count(it[c.key]) });
        }
        if (c.opt) td.classList.add('col-opt');
        tr.append(td);
      }
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    $('more').hidden = !(items.length > shown || more);
    $('table-note').textContent = items.length ? '' : v.q ? 'Nothing matches “' + v.q + '”.' : 'Nothing here.';
  }

  function renderDetail(v, items) {
    const box = $('detail');
    if (!v.tag) {
      box.hidden = true;
      return;
    }
    const t = items.find((it) => it.name === v.tag);
    box.replaceChildren(el('h2', { id: 'detail-title', text: 'Tag ' + v.repo + ':' + v.tag }));
    if (!t) {
      box.append(el('p', { class: 'note', text: 'This tag is not among the tags listed above (filter or "show more").' }));
      box.hidden = false;
      return;
    }
    const aliases = items.filter((o) => o.digest && o.digest === t.digest && o.name !== t.name).map((o) => o.name);
    const dl = el('dl');
    const row = (k, val, title) => dl.append(el('dt', { text: k }), el('dd', { text: val, title }));
    row('Logical size', human(t.size), exact(t.size));
    row('disk_size', human(t.disk_size), exact(t.disk_size));
    row('Exclusive (deleting it frees)', human(t.exclusive_size), exact(t.exclusive_size));
    row('Digest', t.digest || 'unknown');
    row('Same image as', aliases.length ? aliases.join(', ') : 'no other tag listed');
    if (t.created) row('Image age', ago(t.created), exactTime(t.created));
    box.append(dl);
    box.hidden = false;
  }

  // ---- history chart ----------------------------------------------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const historyCache = new Map();
  let historyMissing = false;
  async function renderHistory(v, gen) {
    const box = $('chart');
    const what = v.repo ? 'repository ' + v.repo : v.ns ? 'namespace ' + v.ns : 'the registry';
    $('history-title').textContent = 'History of ' + what;
    // One request per path and snapshot; a server without /history is asked once.
    const key = historyPath(v) + '@' + (current.totals && current.totals.timestamp);
    let doc = historyMissing ? null : historyCache.get(key);
    if (doc === undefined) {
      try {
        doc = await optional(historyPath(v) + '?days=400');
        if (doc === null && !v.ns && !v.repo) historyMissing = true;
      } catch (e) {
        if (e instanceof NeedLogin) throw e;
        doc = { error: e.message };
      }
      historyCache.set(key, doc);
    }
    if (gen !== generation) return;
    const points = (doc && doc.points) || [];
    if (!doc || doc.error || points.length < 2) {
      const why = doc && doc.error ? 'History is unavailable: ' + doc.error : 'No history yet: the service records one point per day after each scan, so the chart appears from the second day.';
      box.replaceChildren(el('p', { class: 'note', text: why }));
      return;
    }
    const W = 800;
    const H = 240;
    const pad = { l: 70, r: 10, t: 10, b: 28 };
    const ys = points.map((p) => p.deduplicated_size);
    const max = Math.max(...ys, ...points.map((p) => p.exclusive_size || 0), 1);
    const px = (i) => pad.l + (i * (W - pad.l - pad.r)) / (points.length - 1);
    const py = (y) => H - pad.b - (y / max) * (H - pad.t - pad.b);
    const path = (key) => points.map((p, i) => (i ? 'L' : 'M') + px(i).toFixed(1) + ' ' + py(p[key] || 0).toFixed(1)).join(' ');
    const first = points[0];
    const last = points[points.length - 1];
    const label = 'Deduplicated size of ' + what + ' from ' + first.date + ' (' + human(first.deduplicated_size) + ') to ' + last.date + ' (' + human(last.deduplicated_size) + ')';
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': label });
    s.append(svg('title', {}, label));
    s.append(svg('line', { class: 'axis', x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b }));
    s.append(svg('line', { class: 'axis', x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b }));
    s.append(svg('text', { x: 4, y: pad.t + 10 }, human(max)));
    s.append(svg('text', { x: 4, y: H - pad.b }, '0'));
    s.append(svg('text', { x: pad.l, y: H - 8 }, first.date));
    s.append(svg('text', { x: W - pad.r, y: H - 8, 'text-anchor': 'end' }, last.date));
    s.append(svg('path', { class: 'line', d: path('deduplicated_size') }));
    if (points.some((p) => p.exclusive_size !== undefined)) s.append(svg('path', { class: 'line2', d: path('exclusive_size') }));
    box.replaceChildren(s, el('p', { class: 'note', text: 'Solid: deduplicated bytes; dashed: exclusive bytes.' }));
  }

  // ---- tooltip ----------------------------------------------------------------------

  function tooltipFor(it) {
    const t = el('table');
    const row = (k, val) => t.append(el('tr', {}, el('th', { text: k }), el('td', { text: val })));
    row(kindName(it), it.name);
    for (const k of ['exclusive_size', 'deduplicated_size', 'size', 'disk_size'])
      if (it[k] !== undefined && it[k] !== null) row(MEASURES[k], human(it[k]) + ' (' + exact(it[k]) + ')');
    if (it.repository_count !== undefined && it.repository_count !== null) row('repositories', count(it.repository_count));
    if (it.tag_count !== undefined && it.tag_count !== null) row('tags', count(it.tag_count));
    if (it.digest) row('digest', it.digest);
    if (it.growth_30d !== undefined && it.growth_30d !== null) row('growth 30d', growth(it));
    if (it.error) row('last scan failed', it.error);
    return t;
  }

  function bindTooltip() {
    const tip = $('tooltip');
    const show = (target, x, y) => {
      const tile = target && target.closest('.tile');
      if (!tile) return hide();
      const it = current.items.find((o) => o.name === tile.dataset.name && o.kind === tile.dataset.kind);
      if (!it) return hide();
      tip.replaceChildren(tooltipFor(it));
      tip.hidden = false;
      const r = tip.getBoundingClientRect();
      tip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - r.width - 8)) + 'px';
      tip.style.top = Math.max(4, Math.min(y + 14, window.innerHeight - r.height - 8)) + 'px';
    };
    const hide = () => { tip.hidden = true; };
    const map = $('treemap');
    map.addEventListener('mousemove', (e) => show(e.target, e.clientX, e.clientY));
    map.addEventListener('mouseleave', hide);
    map.addEventListener('focusin', (e) => {
      const r = e.target.getBoundingClientRect();
      show(e.target, r.left, r.top);
    });
    map.addEventListener('focusout', hide);
  }

  // ---- the cleanup preview of the current view ------------------------------------------

  function cleanupPath(v) {
    if (v.repo) return '/repositories/' + enc(v.repo) + '/cleanup';
    if (v.ns) return '/namespaces/' + enc(v.ns) + '/cleanup';
    return '/cleanup';
  }

  // A new view: say what a preview covers, drop the previous view's answer.
  function resetCleanup(v) {
    const what = v.repo ? 'the repository ' + v.repo : v.ns ? 'every repository of ' + v.ns : 'every repository of the registry';
    $('cleanup-scope').textContent = 'What a GitLab cleanup policy would delete from ' + what + ', and the bytes it would really free (layers no kept tag anywhere still uses). Nothing is deleted.';
    $('cleanup-result').replaceChildren();
    delete $('cleanup-result').dataset.ready;
  }

  async function previewCleanup(e) {
    e.preventDefault();
    const v = readView();
    const p = new URLSearchParams();
    const fields = [['name_regex', 'cleanup-regex'], ['name_regex_keep', 'cleanup-keep'], ['keep_n', 'cleanup-keep-n'], ['older_than', 'cleanup-older']];
    for (const [key, id] of fields) {
      const value = $(id).value.trim();
      if (value) p.set(key, value);
    }
    const box = $('cleanup-result');
    box.dataset.ready = 'loading';
    box.replaceChildren(el('p', { class: 'note', text: 'Computing…' }));
    let doc;
    try {
      doc = await api(cleanupPath(v) + '?' + p.toString());
    } catch (err) {
      if (err instanceof NeedLogin) return failed(err);
      box.replaceChildren(el('p', { class: 'error', role: 'alert', text: err.message || String(err) }));
      box.dataset.ready = 'error';
      return;
    }
    const freed = card('Freed', human(doc.freed_bytes), exact(doc.freed_bytes));
    freed.id = 'cleanup-freed';
    freed.dataset.bytes = doc.freed_bytes;
    const deleted = card('Tags deleted', count(doc.tags_deleted));
    deleted.id = 'cleanup-deleted';
    deleted.dataset.count = doc.tags_deleted;
    const cards = el('div', { class: 'overview' },
      deleted,
      card('Tags kept', count(doc.tags_kept)),
      card('Logical (sum of sizes)', human(doc.logical_bytes), exact(doc.logical_bytes)),
      freed,
      card('Registry on disk after', human(doc.deduplicated_size_after), exact(doc.deduplicated_size_before) + ' before, ' + exact(doc.deduplicated_size_after) + ' after'),
    );
    const parts = [cards];
    if (doc.notes.length) parts.push(el('ul', { class: 'notes' }, ...doc.notes.map((n) => el('li', { text: n }))));
    const rows = doc.repositories.filter((r) => r.tags_deleted > 0).sort((a, b) => b.freed_bytes - a.freed_bytes || b.logical_bytes - a.logical_bytes).slice(0, 10);
    if (rows.length) {
      const head = el('tr', {}, ...['Repository', 'Deleted', 'Kept', 'Logical', 'Freed'].map((h) => el('th', { text: h })));
      const body = rows.map((r) => el('tr', { 'data-name': r.name },
        el('td', {}, el('a', { href: viewHash({ repo: r.name, m: v.m, s: '-' + v.m }), text: r.name })),
        el('td', { text: count(r.tags_deleted) }),
        el('td', { text: count(r.tags_kept) }),
        el('td', { text: human(r.logical_bytes), title: exact(r.logical_bytes) }),
        el('td', { text: human(r.freed_bytes), title: exact(r.freed_bytes) })));
      parts.push(el('table', { id: 'cleanup-table' }, el('thead', {}, head), el('tbody', {}, ...body)));
    }
    box.replaceChildren(...parts);
    box.dataset.ready = p.toString();
  }

  // ---- one render of the current view --------------------------------------------------

  async function render() {
    const gen = ++generation;
    const v = readView();
    const started = performance.now();
    if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin('');
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    $('measure-box').hidden = false;
    $('scan').hidden = false;
    $('measure').value = v.m;
    $('filter').value = v.q;
    document.body.dataset.ready = 'loading';
    crumbs(v);
    renderHead(v);
    if (!current.view || viewHash(current.view) !== viewHash(v)) resetCleanup(v);
    setStatus('Loading…');
    try {
      const [totals, level] = await Promise.all([
        loadTotals(),
        v.repo ? loadTags(v, v.s, shown, v.q) : loadChildren(v, v.s, shown, v.q),
      ]);
      if (gen !== generation) return;
      // The treemap follows the measure: the level's biggest by it, whatever the table's order.
      let mapItems = level.items;
      let mapMore = level.more;
      if (v.s !== '-' + v.m || v.q) {
        const byMeasure = v.repo ? await loadTags(v, '-' + v.m, TILES, '') : await loadChildren(v, '-' + v.m, TILES, '');
        if (gen !== generation) return;
        mapItems = byMeasure.items;
        mapMore = byMeasure.more;
      } else mapItems = sortItems(level.items.slice(), '-' + v.m);
      // Tiles and rows share one list for the tooltip's lookups.
      const all = level.items.slice();
      for (const it of mapItems) if (!all.some((o) => o.name === it.name && o.kind === it.kind)) all.push(it);
      current = { items: all, self: level.self, totals, view: v };
      setStatus('');
      renderOverview(totals);
      const scope = level.self || { size: totals.size, disk_size: totals.disk_size, deduplicated_size: registryTotal(totals, 'deduplicated_size'), exclusive_size: registryTotal(totals, 'exclusive_size') };
      current.scope = scope;
      current.mapMore = mapMore;
      renderTreemap(mapItems.map((it) => all.find((o) => o.name === it.name && o.kind === it.kind)), v, scope, mapMore);
      renderTable(all.slice(0, level.items.length), v, totals, level.more);
      renderDetail(v, level.items);
      performance.measure('grur:render', { start: started, end: performance.now() });
      performance.mark('grur:ready');
      document.body.dataset.ready = viewHash(v);
      renderHistory(v, gen).catch(failed);
      if (!v.ns && !v.repo) renderFailed(gen).catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  let retry = null;
  function failed(e) {
    if (e instanceof NeedLogin) return showLogin(e.message);
    if (e instanceof ApiError && e.status === 503) {
      const wait = Math.min(60, Math.max(1, Number(e.retryAfter) || 10));
      setStatus(e.message + ' — retrying in ' + wait + ' s.', true);
      clearTimeout(retry);
      retry = setTimeout(render, wait * 1000);
    } else if (e instanceof ApiError && e.status === 404) {
      setStatus(e.message + ' (it may have been deleted since the last scan).', true);
    } else {
      setStatus(e.message || String(e), true);
    }
    document.body.dataset.ready = 'error';
  }

  // ---- wiring -----------------------------------------------------------------------

  function keyNav(e) {
    // Up and down move between the table's rows, as in a list.
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const row = e.target.closest('tbody tr');
    if (!row) return;
    const next = e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
    const link = next && next.querySelector('a');
    if (link) {
      e.preventDefault();
      link.focus();
    }
  }

  let filterTimer = null;
  function start() {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('back').addEventListener('click', () => {
      const up = parentOf(readView());
      if (up) location.hash = viewHash(up);
    });
    $('measure').addEventListener('change', (e) => go({ m: e.target.value, s: '-' + e.target.value }));
    $('filter').addEventListener('input', (e) => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        const v = readView();
        history.replaceState(null, '', viewHash(Object.assign(v, { q: e.target.value.trim() })));
        shown = ROWS;
        render();
      }, 250);
    });
    $('more').addEventListener('click', () => {
      shown += ROWS;
      render();
    });
    $('table-body').addEventListener('keydown', keyNav);
    $('cleanup-form').addEventListener('submit', previewCleanup);
    window.addEventListener('hashchange', () => {
      shown = ROWS;
      render();
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (current.view && !$('app').hidden) {
          const v = current.view;
          const items = current.items.filter((it) => it[v.m] > 0);
          renderTreemap(sortItems(items, '-' + v.m), v, current.scope, current.mapMore);
        }
      }, 150);
    });
    bindTooltip();
    render();
  }

  start();
})();
