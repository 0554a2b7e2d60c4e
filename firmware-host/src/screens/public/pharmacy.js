// The pharmacy's screen: log in with a PIN, check and load a roll (every problem shown, then confirm), unload with a receipt,
// set the robot up for its citizen (an administrator's PIN), pause it, release doses for travel and withdraw doses.
// Every word comes from the shared message catalogue, in the page (the same as GET /api/pharmacy/messages).
'use strict';

(function () {
  // Only the locale of each language lives here; every word is in the catalogue (protocol/messages/pharmacy.json,
  // roll.json, common.json), which the server puts in the page for both languages: nothing to wait for, no raw key.
  const LOCALES = { da: 'da-DK', en: 'en-GB' };
  const CATALOGUE = window.DosisMessages.inlined('messages');
  // A problem's severity in words (roll.json); an unknown one is shown as its code.
  const SEVERITY = { error: 'roll.severity.error', warning: 'roll.severity.warning' };
  const MANIFEST_MAX_BYTES = 2 * 1024 * 1024;
  const REFRESH_MS = 10000;

  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);

  function pickLang() {
    const q = new URLSearchParams(location.search).get('lang');
    if (q === 'da' || q === 'en') return q;
    let stored = null;
    try { stored = localStorage.getItem('dosis.lang'); } catch (e) { stored = null; }
    if (stored === 'da' || stored === 'en') return stored;
    return root.dataset.defaultLang === 'en' ? 'en' : 'da';
  }
  let lang = pickLang();
  let words = window.DosisMessages.formatter(CATALOGUE[lang] || {}, LOCALES[lang]);
  const msg = (key, values) => words.msg(key, values);
  const locale = () => LOCALES[lang];

  let view = null;
  let refreshTimer = null;
  // The manifest exactly as read from the file: a textarea would rewrite its line endings.
  let fileText = null;
  let validated = null; // { text, sha256, pouches }

  function fmt(ms, withDate) {
    const tz = view && view.timeZone ? view.timeZone : undefined;
    const o = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
    if (withDate) Object.assign(o, { year: 'numeric', month: '2-digit', day: '2-digit' });
    return new Intl.DateTimeFormat(locale(), o).format(new Date(ms));
  }

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }
  function fillDl(dl, pairs) {
    dl.replaceChildren();
    for (const [k, v, id] of pairs) {
      dl.append(node('dt', k));
      const dd = node('dd', v);
      if (id) dd.id = id;
      dl.append(dd);
    }
  }

  function applyStaticText() {
    root.lang = lang;
    for (const n of document.querySelectorAll('[data-m]')) n.textContent = msg(n.dataset.m);
  }

  function showLoggedIn(on) {
    $('login').hidden = on;
    $('app').hidden = !on;
    $('logout').hidden = !on;
    if (!on) {
      $('who').textContent = '';
      if (refreshTimer !== null) clearInterval(refreshTimer);
      refreshTimer = null;
    } else if (refreshTimer === null) {
      refreshTimer = setInterval(refresh, REFRESH_MS);
    }
  }

  function renderView() {
    if (!view) return;
    $('who').textContent = view.staffId;
    const r = view.roll;
    const none = msg('pharmacy.screen.none');
    if (!r) {
      fillDl($('roll-status'), [[msg('pharmacy.screen.rollId'), msg('pharmacy.screen.noRoll'), 'roll-id']]);
    } else {
      fillDl($('roll-status'), [
        [msg('pharmacy.screen.rollId'), r.rollId, 'roll-id'],
        [msg('pharmacy.screen.pouchesLeft'), String(r.pouchesLeft), 'pouches-left'],
        [msg('pharmacy.screen.nextPouch'), r.nextPouch ? msg('pharmacy.screen.position', { position: r.nextPouch.position, at: fmt(r.nextPouch.intakeAtMs, true) }) : none, 'next-pouch'],
        [msg('pharmacy.screen.daysLeft'), String(r.daysLeft), 'days-left'],
      ]);
    }
    $('unload-start').disabled = !r;
    // The robot's own notices (no alarm centre, a fault), worded by the robot from its message catalogue.
    const notices = view.notices || [];
    $('notice').hidden = notices.length === 0;
    $('notice').textContent = notices.map((n) => n.text[lang]).join(' ');
    renderCare();
    const h = view.health;
    fillDl($('health-status'), [
      [msg('pharmacy.screen.link'), h.link, 'health-link'],
      [msg('pharmacy.screen.firmware'), h.firmware || none],
      [msg('pharmacy.screen.bootId'), h.bootId || none],
      [msg('pharmacy.screen.lastErrors'), h.lastErrors.length ? h.lastErrors.join('; ') : none, 'health-errors'],
    ]);
    const body = $('events-body');
    body.replaceChildren();
    for (const e of view.events) {
      const tr = node('tr');
      tr.append(node('td', fmt(e.atMs, true)), node('td', e.type), node('td', e.doseId || ''), node('td', e.detail || ''));
      body.append(tr);
    }
  }

  async function api(path, body) {
    const init = body === undefined ? { method: 'GET' } : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, data };
  }

  async function refresh() {
    const { status, data } = await api('/api/pharmacy');
    if (status === 401) {
      view = null;
      showLoggedIn(false);
      return;
    }
    if (status === 200) {
      view = data;
      showLoggedIn(true);
      renderView();
    }
  }

  // ---- login ----
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('login-message');
    out.textContent = '';
    const staffId = $('staff-id').value.trim();
    const pin = $('pin').value;
    $('login-submit').disabled = true;
    try {
      const { status, data } = await api('/api/pharmacy/login', { staffId, pin });
      $('pin').value = '';
      if (status === 200) {
        await refresh();
      } else if (status === 423 && data) {
        // Minutes from now, not a clock time: the login page does not know the robot's time zone yet.
        out.textContent = msg('pharmacy.screen.locked', { minutes: Math.max(1, Math.ceil(data.retryAfterMs / 60000)) });
        root.dataset.login = 'locked';
      } else if (status === 401 && data) {
        out.textContent = msg('pharmacy.screen.wrongPin', { count: data.attemptsLeft });
        root.dataset.login = 'wrong';
      } else {
        out.textContent = msg('pharmacy.screen.loginFailed');
      }
    } finally {
      $('login-submit').disabled = false;
    }
  });

  $('logout').addEventListener('click', async () => {
    await api('/api/pharmacy/logout', {});
    view = null;
    showLoggedIn(false);
    $('login-message').textContent = msg('pharmacy.screen.sessionEnded');
  });

  // ---- load ----
  function resetValidation() {
    validated = null;
    $('roll-whose').textContent = '';
    $('validation').hidden = true;
    $('confirm-load').hidden = true;
    $('cancel-load').hidden = true;
    $('problems').replaceChildren();
  }

  $('manifest-file').addEventListener('change', async (ev) => {
    resetValidation();
    $('load-result').textContent = '';
    const file = ev.target.files && ev.target.files[0];
    if (!file) return;
    if (file.size > MANIFEST_MAX_BYTES) {
      fileText = null;
      $('load-result').textContent = msg('pharmacy.screen.tooLarge');
      return;
    }
    fileText = await file.text();
    $('manifest-text').value = fileText;
  });
  $('manifest-text').addEventListener('input', () => {
    fileText = null;
    resetValidation();
  });

  $('validate').addEventListener('click', async () => {
    resetValidation();
    const text = fileText !== null ? fileText : $('manifest-text').value;
    $('load-result').textContent = '';
    if (!text.trim()) {
      $('load-result').textContent = msg('pharmacy.screen.empty');
      return;
    }
    if (new Blob([text]).size > MANIFEST_MAX_BYTES) {
      $('load-result').textContent = msg('pharmacy.screen.tooLarge');
      return;
    }
    $('validate').disabled = true;
    try {
      const returnPending = !$('return-pending-row').hidden && $('return-pending').checked;
      const { status, data } = await api('/api/pharmacy/roll/validate', { manifest: text, returnPending });
      if (status === 401) return refresh();
      if (status !== 200 || !data) {
        $('load-result').textContent = msg(status === 413 ? 'pharmacy.screen.tooLarge' : 'pharmacy.screen.loadFailed');
        return;
      }
      showProblems(data.problems);
      // The old roll's pouches come back only when the staff tick this; then the check runs again.
      const overlap = data.problems.some((p) => p.code === 'roll_overlap' || p.code === 'roll_overlap_returned');
      $('return-pending-row').hidden = !overlap;
      if (overlap) $('return-pending-text').textContent = msg('pharmacy.screen.returnPending', { count: data.pending || 0 });
      if (data.roll) $('roll-whose').textContent = msg('pharmacy.screen.whose', { name: data.roll.name, birthDate: data.roll.birthDate, from: data.roll.from, to: data.roll.to });
      const errors = data.problems.filter((p) => p.severity === 'error').length;
      const warnings = data.problems.length - errors;
      $('validation').hidden = false;
      $('validation-summary').className = data.ok ? 'ok' : 'error';
      $('validation-summary').textContent = data.ok
        ? (warnings ? msg('pharmacy.screen.validOkWarnings', { count: data.pouches, warnings }) : msg('pharmacy.screen.validOk', { count: data.pouches }))
        : msg('pharmacy.screen.validProblems', { count: data.problems.length });
      if (data.ok) {
        validated = { text, sha256: data.sha256, pouches: data.pouches, returnPending };
        $('confirm-load').textContent = msg('pharmacy.screen.confirmLoad', { count: data.pouches });
        $('confirm-load').hidden = false;
        $('cancel-load').hidden = false;
      }
    } finally {
      $('validate').disabled = false;
    }
  });

  function showProblems(problems) {
    const list = $('problems');
    list.replaceChildren();
    for (const p of problems) {
      const li = node('li', undefined, p.severity === 'error' ? 'error' : 'warning');
      const sev = Object.prototype.hasOwnProperty.call(SEVERITY, p.severity) ? msg(SEVERITY[p.severity]) : p.severity;
      // The problem in the screen's language first; the validator's detail (line, position, times) after it.
      const key = `roll.problem.${p.code}`;
      const title = words.has(key) ? msg('pharmacy.screen.problemTitle', { title: msg(key) }) : '';
      li.append(node('strong', sev + ' '), document.createTextNode(title), node('code', p.path || '/'), document.createTextNode(` ${p.message} `), node('code', `(${p.code})`));
      list.append(li);
    }
  }

  $('cancel-load').addEventListener('click', resetValidation);

  $('confirm-load').addEventListener('click', async () => {
    if (!validated) return;
    $('confirm-load').disabled = true;
    try {
      const { status, data } = await api('/api/pharmacy/roll/load', { manifest: validated.text, confirmSha256: validated.sha256, returnPending: validated.returnPending });
      if (status === 401) return refresh();
      resetValidation();
      $('load-receipt').replaceChildren();
      if (status === 200 && data && data.ok) {
        $('load-result').textContent = msg('pharmacy.screen.loaded');
        $('load-result').className = 'ok';
        $('return-pending-row').hidden = true;
        $('return-pending').checked = false;
        if (data.receiptId) $('load-receipt').append(receiptLink('load-receipt-link', data.receiptId));
        fileText = null;
        $('manifest-text').value = '';
        $('manifest-file').value = '';
      } else {
        $('load-result').textContent = msg('pharmacy.screen.loadFailed');
        $('load-result').className = 'error';
        if (data && Array.isArray(data.problems)) {
          showProblems(data.problems);
          $('validation').hidden = false;
          $('validation-summary').textContent = msg('pharmacy.screen.validProblems', { count: data.problems.length });
          $('validation-summary').className = 'error';
        }
      }
      await refresh();
    } finally {
      $('confirm-load').disabled = false;
    }
  });

  // ---- unload ----
  $('unload-start').addEventListener('click', () => {
    $('unload-confirm').hidden = false;
    $('unload-result').replaceChildren();
  });
  $('unload-no').addEventListener('click', () => { $('unload-confirm').hidden = true; });
  $('unload-yes').addEventListener('click', async () => {
    $('unload-confirm').hidden = true;
    const { status, data } = await api('/api/pharmacy/roll/unload', { confirm: true });
    if (status === 401) return refresh();
    const out = $('unload-result');
    out.replaceChildren();
    if (status === 200 && data && data.ok) {
      out.append(node('p', msg('pharmacy.screen.unloaded', { count: data.returned.length }), 'ok'));
      const a = receiptLink('receipt-link', data.receiptId);
      a.textContent = msg('pharmacy.screen.openReturnReceipt');
      out.append(a);
    } else {
      out.append(node('p', msg('pharmacy.screen.unloadFailed'), 'error'));
    }
    await refresh();
  });

  function receiptLink(id, receiptId) {
    const a = node('a', msg('pharmacy.screen.openReceipt'));
    a.id = id;
    a.href = `/api/pharmacy/receipt/${encodeURIComponent(receiptId)}${lang === 'en' ? '?lang=en' : ''}`;
    a.target = '_blank';
    return a;
  }

  /** A refusal in the screen's words when the catalogue knows its code; else the server's own message. */
  function refusal(data, status) {
    const key = data && data.error ? `pharmacy.screen.error.${data.error}` : '';
    if (key && words.has(key)) return msg(key);
    return data && data.message ? data.message : String(status);
  }

  // ---- commissioning ----
  $('commission-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { adminId: $('admin-id').value.trim(), adminPin: $('admin-pin').value, citizenId: $('commission-citizen').value.trim() };
    $('admin-pin').value = '';
    const { status, data } = await api('/api/pharmacy/commission', body);
    if (status === 401) return refresh();
    $('commission-result').textContent = status === 200 ? msg('pharmacy.screen.commissionDone', { citizenId: body.citizenId }) : msg('pharmacy.screen.commissionFailed', { reason: refusal(data, status) });
    $('commission-result').className = status === 200 ? 'ok' : 'error';
    await refresh();
  });
  $('decommission').addEventListener('click', async () => {
    const body = { adminId: $('admin-id').value.trim(), adminPin: $('admin-pin').value, confirm: true };
    $('admin-pin').value = '';
    const { status, data } = await api('/api/pharmacy/decommission', body);
    if (status === 401) return refresh();
    $('commission-result').textContent = status === 200 ? msg('pharmacy.screen.decommissionDone') : msg('pharmacy.screen.commissionFailed', { reason: refusal(data, status) });
    $('commission-result').className = status === 200 ? 'ok' : 'error';
    await refresh();
  });

  // ---- pause, travel, withdrawal ----

  /** A datetime-local value read in the robot's zone (not the browser's), as UTC ms. */
  function robotTime(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value || '');
    if (!m) return null;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    const tz = view && view.timeZone ? view.timeZone : 'UTC';
    const offsetAt = (ms) => {
      const p = {};
      for (const x of new Intl.DateTimeFormat(locale(), { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(new Date(ms))) p[x.type] = x.value;
      return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - ms;
    };
    let ms = wall - offsetAt(wall);
    ms = wall - offsetAt(ms);
    return ms;
  }

  function renderCare() {
    const c = view.commissioned;
    $('commission-status').textContent = c ? msg('pharmacy.screen.commissionedTo', { citizenId: c.citizenId }) : msg('pharmacy.screen.notCommissioned');
    $('commission-citizen-row').hidden = !!c;
    $('commission-submit').hidden = !!c;
    $('decommission').hidden = !c;
    const p = view.pause;
    $('pause-status').textContent = p ? msg('pharmacy.screen.pausedUntil', { from: fmt(p.fromMs, true), until: fmt(p.untilMs, true) }) : msg('pharmacy.screen.notPaused');
    $('pause-end').hidden = !p;
    $('pause-start').hidden = !!p;
    const list = $('upcoming');
    const checked = new Set([...list.querySelectorAll('input:checked')].map((i) => i.value));
    list.replaceChildren();
    for (const d of view.upcoming || []) {
      const li = node('li');
      const label = node('label');
      const box = node('input');
      box.type = 'checkbox';
      box.value = d.doseId;
      box.checked = checked.has(d.doseId);
      label.append(box, document.createTextNode(msg('pharmacy.screen.upcomingDose', { label: d.label, at: fmt(d.intakeAtMs, true) })));
      li.append(label);
      list.append(li);
    }
  }

  async function careAction(path, body) {
    const { status, data } = await api(path, body);
    if (status === 401) return refresh();
    const out = $('care-result');
    out.replaceChildren();
    if (status === 200 && data && data.ok) {
      out.append(node('p', msg('pharmacy.screen.done'), 'ok'));
      if (data.receiptId) out.append(receiptLink('care-receipt-link', data.receiptId));
    } else {
      out.append(node('p', data && (data.error || data.message) ? msg('pharmacy.screen.failedWith', { reason: refusal(data, status) }) : msg('pharmacy.screen.failed'), 'error'));
    }
    await refresh();
  }

  $('pause-start').addEventListener('click', () => {
    const fromMs = robotTime($('pause-from').value);
    const untilMs = robotTime($('pause-until').value);
    if (fromMs === null || untilMs === null) return;
    return careAction('/api/pharmacy/pause', { fromMs, untilMs, reason: 'hospital' });
  });
  $('pause-end').addEventListener('click', () => careAction('/api/pharmacy/pause/end', { confirm: true }));
  $('travel-start').addEventListener('click', () => {
    const pin = $('travel-pin').value;
    $('travel-pin').value = '';
    return careAction('/api/pharmacy/travel', { count: Number($('travel-count').value), pin });
  });
  $('withdraw-start').addEventListener('click', () => {
    const doseIds = [...$('upcoming').querySelectorAll('input:checked')].map((i) => i.value);
    const fromMs = robotTime($('withdraw-from').value);
    if (doseIds.length > 0) return careAction('/api/pharmacy/withdraw', { doseIds });
    if (fromMs !== null) return careAction('/api/pharmacy/withdraw', { fromMs });
  });

  $('lang-toggle').addEventListener('click', () => {
    lang = lang === 'da' ? 'en' : 'da';
    try { localStorage.setItem('dosis.lang', lang); } catch (e) { /* no storage: the choice lasts for this page */ }
    const url = new URL(location.href);
    url.searchParams.set('lang', lang);
    history.replaceState(null, '', url);
    words = window.DosisMessages.formatter(CATALOGUE[lang] || {}, LOCALES[lang]);
    applyStaticText();
    renderView();
  });

  applyStaticText();
  refresh().then(() => { if (!view) showLoggedIn(false); });
})();
