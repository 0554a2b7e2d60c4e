// The pharmacy's screen: log in with a PIN, check and load a roll (every problem shown, then confirm), unload with a receipt,
// set the robot up for its citizen (an administrator's PIN), pause it, release doses for travel and withdraw doses.
// Words of the newer parts come from the shared catalogue (GET /api/pharmacy/messages), the older ones from TEXT.
'use strict';

(function () {
  const TEXT = {
    da: {
      locale: 'da-DK',
      toggle: 'English',
      title: 'dosis — apotek',
      logout: 'Log ud',
      loginTitle: 'Log ind',
      staffId: 'Medarbejder-id',
      pin: 'PIN-kode',
      login: 'Log ind',
      wrongPin: (n) => `Forkert medarbejder-id eller PIN-kode. ${n} forsøg tilbage.`,
      locked: (min) => `For mange forkerte PIN-koder. Prøv igen om ${min} ${min === 1 ? 'minut' : 'minutter'}.`,
      loginFailed: 'Login mislykkedes.',
      rollTitle: 'Rulle',
      rollId: 'Rulle-id',
      pouchesLeft: 'Poser tilbage',
      nextPouch: 'Næste pose',
      daysLeft: 'Dage tilbage',
      noRoll: 'Ingen rulle i maskinen.',
      position: (p, t) => `plads ${p}, ${t}`,
      none: '—',
      loadTitle: 'Indlæs rulle',
      loadHelp: 'Vælg rullens manifest-fil eller indsæt teksten. Manifestet kontrolleres, før du bekræfter.',
      chooseFile: 'Manifest-fil',
      pasteHere: 'eller indsæt manifestet her',
      validate: 'Kontrollér',
      cancel: 'Annullér',
      empty: 'Vælg en fil eller indsæt et manifest først.',
      validOk: (n) => `Manifestet er i orden: ${n} poser.`,
      validProblems: (n) => `Manifestet kan ikke indlæses: ${n} ${n === 1 ? 'problem' : 'problemer'}.`,
      warnings: (n) => `${n} ${n === 1 ? 'advarsel' : 'advarsler'}.`,
      confirmLoad: (n) => `Bekræft: indlæs ${n} poser`,
      loaded: 'Rullen er indlæst.',
      loadFailed: 'Rullen blev ikke indlæst.',
      tooLarge: 'Filen er for stor (højst 2 MB).',
      unloadTitle: 'Tag rulle ud',
      unload: 'Tag rullen ud',
      unloadAsk: 'Tag rullen ud nu? Poser, der ikke er taget, kommer på en returkvittering.',
      unloadYes: 'Ja, tag rullen ud',
      unloaded: (n) => `Rullen er taget ud. ${n} ${n === 1 ? 'pose' : 'poser'} kom retur.`,
      unloadFailed: 'Rullen kunne ikke tages ud.',
      openReceipt: 'Åbn returkvittering',
      healthTitle: 'Maskinens tilstand',
      link: 'Forbindelse',
      firmware: 'Firmware',
      bootId: 'Boot-id',
      lastErrors: 'Seneste fejl',
      eventsTitle: 'Seneste hændelser',
      evTime: 'Tid',
      evType: 'Hændelse',
      evDose: 'Dosis',
      evDetail: 'Detaljer',
      sessionEnded: 'Du er logget ud.',
      severity: { error: 'fejl', warning: 'advarsel' },
    },
    en: {
      locale: 'en-GB',
      toggle: 'Dansk',
      title: 'dosis — pharmacy',
      logout: 'Log out',
      loginTitle: 'Log in',
      staffId: 'Staff id',
      pin: 'PIN',
      login: 'Log in',
      wrongPin: (n) => `Wrong staff id or PIN. ${n} attempts left.`,
      locked: (min) => `Too many wrong PINs. Try again in ${min} ${min === 1 ? 'minute' : 'minutes'}.`,
      loginFailed: 'Login failed.',
      rollTitle: 'Roll',
      rollId: 'Roll id',
      pouchesLeft: 'Pouches left',
      nextPouch: 'Next pouch',
      daysLeft: 'Days left',
      noRoll: 'No roll in the machine.',
      position: (p, t) => `position ${p}, ${t}`,
      none: '—',
      loadTitle: 'Load a roll',
      loadHelp: 'Choose the roll\'s manifest file or paste its text. The manifest is checked before you confirm.',
      chooseFile: 'Manifest file',
      pasteHere: 'or paste the manifest here',
      validate: 'Check',
      cancel: 'Cancel',
      empty: 'Choose a file or paste a manifest first.',
      validOk: (n) => `The manifest is valid: ${n} pouches.`,
      validProblems: (n) => `The manifest cannot be loaded: ${n} ${n === 1 ? 'problem' : 'problems'}.`,
      warnings: (n) => `${n} ${n === 1 ? 'warning' : 'warnings'}.`,
      confirmLoad: (n) => `Confirm: load ${n} pouches`,
      loaded: 'The roll is loaded.',
      loadFailed: 'The roll was not loaded.',
      tooLarge: 'The file is too large (2 MB at most).',
      unloadTitle: 'Unload the roll',
      unload: 'Unload the roll',
      unloadAsk: 'Unload the roll now? Pouches not taken go on a return receipt.',
      unloadYes: 'Yes, unload the roll',
      unloaded: (n) => `The roll is unloaded. ${n} ${n === 1 ? 'pouch' : 'pouches'} came back.`,
      unloadFailed: 'The roll could not be unloaded.',
      openReceipt: 'Open the return receipt',
      healthTitle: 'Device health',
      link: 'Link',
      firmware: 'Firmware',
      bootId: 'Boot id',
      lastErrors: 'Last errors',
      eventsTitle: 'Last events',
      evTime: 'Time',
      evType: 'Event',
      evDose: 'Dose',
      evDetail: 'Detail',
      sessionEnded: 'You are logged out.',
      severity: { error: 'error', warning: 'warning' },
    },
  };
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
  const t = () => TEXT[lang];

  // ---- the shared message catalogue (ICU MessageFormat: plain {names} and {count, plural, …} are all these use) ----
  let catalogue = {};
  async function loadMessages() {
    try {
      const res = await fetch(`/api/pharmacy/messages?lang=${lang}`);
      if (res.ok) catalogue = await res.json();
    } catch (e) {
      catalogue = {};
    }
  }
  function plural(body, n) {
    // body: "one {# pouch} other {# pouches}"; picks by the language's plural rule.
    const cases = {};
    let i = 0;
    while (i < body.length) {
      const m = /\s*([=\w]+)\s*\{/y;
      m.lastIndex = i;
      const hit = m.exec(body);
      if (!hit) break;
      let depth = 1;
      let j = m.lastIndex;
      while (j < body.length && depth > 0) {
        if (body[j] === '{') depth++;
        else if (body[j] === '}') depth--;
        j++;
      }
      cases[hit[1]] = body.slice(m.lastIndex, j - 1);
      i = j;
    }
    const rule = new Intl.PluralRules(t().locale).select(n);
    const pick = cases[`=${n}`] ?? cases[rule] ?? cases.other ?? '';
    return pick.replace(/#/g, String(n));
  }
  function msg(key, values) {
    let text = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
    const v = values || {};
    // Plurals first (their bodies hold braces), then plain arguments.
    text = text.replace(/\{(\w+), plural,((?:[^{}]|\{[^{}]*\})*)\}/g, (_, name, body) => plural(body, Number(v[name])));
    return text.replace(/\{(\w+)\}/g, (_, name) => (v[name] === undefined ? '' : String(v[name])));
  }

  let view = null;
  let refreshTimer = null;
  // The manifest exactly as read from the file: a textarea would rewrite its line endings.
  let fileText = null;
  let validated = null; // { text, sha256, pouches }

  function fmt(ms, withDate) {
    const tz = view && view.timeZone ? view.timeZone : undefined;
    const o = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
    if (withDate) Object.assign(o, { year: 'numeric', month: '2-digit', day: '2-digit' });
    return new Intl.DateTimeFormat(t().locale, o).format(new Date(ms));
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
    for (const n of document.querySelectorAll('[data-t]')) {
      const v = t()[n.dataset.t];
      if (typeof v === 'string') n.textContent = v;
    }
    for (const n of document.querySelectorAll('[data-m]')) n.textContent = msg(n.dataset.m);
    $('lang-toggle').textContent = t().toggle;
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
    const tx = t();
    $('who').textContent = view.staffId;
    const r = view.roll;
    if (!r) {
      fillDl($('roll-status'), [[tx.rollId, tx.noRoll, 'roll-id']]);
    } else {
      fillDl($('roll-status'), [
        [tx.rollId, r.rollId, 'roll-id'],
        [tx.pouchesLeft, String(r.pouchesLeft), 'pouches-left'],
        [tx.nextPouch, r.nextPouch ? tx.position(r.nextPouch.position, fmt(r.nextPouch.intakeAtMs, true)) : tx.none, 'next-pouch'],
        [tx.daysLeft, String(r.daysLeft), 'days-left'],
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
      [tx.link, h.link, 'health-link'],
      [tx.firmware, h.firmware || tx.none],
      [tx.bootId, h.bootId || tx.none],
      [tx.lastErrors, h.lastErrors.length ? h.lastErrors.join('; ') : tx.none, 'health-errors'],
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
    const msg = $('login-message');
    msg.textContent = '';
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
        msg.textContent = t().locked(Math.max(1, Math.ceil(data.retryAfterMs / 60000)));
        root.dataset.login = 'locked';
      } else if (status === 401 && data) {
        msg.textContent = t().wrongPin(data.attemptsLeft);
        root.dataset.login = 'wrong';
      } else {
        msg.textContent = t().loginFailed;
      }
    } finally {
      $('login-submit').disabled = false;
    }
  });

  $('logout').addEventListener('click', async () => {
    await api('/api/pharmacy/logout', {});
    view = null;
    showLoggedIn(false);
    $('login-message').textContent = t().sessionEnded;
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
      $('load-result').textContent = t().tooLarge;
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
    const tx = t();
    const text = fileText !== null ? fileText : $('manifest-text').value;
    $('load-result').textContent = '';
    if (!text.trim()) {
      $('load-result').textContent = tx.empty;
      return;
    }
    if (new Blob([text]).size > MANIFEST_MAX_BYTES) {
      $('load-result').textContent = tx.tooLarge;
      return;
    }
    $('validate').disabled = true;
    try {
      const returnPending = !$('return-pending-row').hidden && $('return-pending').checked;
      const { status, data } = await api('/api/pharmacy/roll/validate', { manifest: text, returnPending });
      if (status === 401) return refresh();
      if (status !== 200 || !data) {
        $('load-result').textContent = status === 413 ? tx.tooLarge : tx.loadFailed;
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
        ? tx.validOk(data.pouches) + (warnings ? ' ' + tx.warnings(warnings) : '')
        : tx.validProblems(data.problems.length);
      if (data.ok) {
        validated = { text, sha256: data.sha256, pouches: data.pouches, returnPending };
        $('confirm-load').textContent = tx.confirmLoad(data.pouches);
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
      const sev = Object.prototype.hasOwnProperty.call(t().severity, p.severity) ? t().severity[p.severity] : p.severity;
      // The problem in the screen's language first; the validator's detail (line, position, times) after it.
      const key = `roll.problem.${p.code}`;
      const title = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] + ': ' : '';
      li.append(node('strong', sev + ' '), document.createTextNode(title), node('code', p.path || '/'), document.createTextNode(` ${p.message} `), node('code', `(${p.code})`));
      list.append(li);
    }
  }

  $('cancel-load').addEventListener('click', resetValidation);

  $('confirm-load').addEventListener('click', async () => {
    if (!validated) return;
    const tx = t();
    $('confirm-load').disabled = true;
    try {
      const { status, data } = await api('/api/pharmacy/roll/load', { manifest: validated.text, confirmSha256: validated.sha256, returnPending: validated.returnPending });
      if (status === 401) return refresh();
      resetValidation();
      $('load-receipt').replaceChildren();
      if (status === 200 && data && data.ok) {
        $('load-result').textContent = tx.loaded;
        $('load-result').className = 'ok';
        $('return-pending-row').hidden = true;
        $('return-pending').checked = false;
        if (data.receiptId) $('load-receipt').append(receiptLink('load-receipt-link', data.receiptId));
        fileText = null;
        $('manifest-text').value = '';
        $('manifest-file').value = '';
      } else {
        $('load-result').textContent = tx.loadFailed;
        $('load-result').className = 'error';
        if (data && Array.isArray(data.problems)) {
          showProblems(data.problems);
          $('validation').hidden = false;
          $('validation-summary').textContent = tx.validProblems(data.problems.length);
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
    const tx = t();
    $('unload-confirm').hidden = true;
    const { status, data } = await api('/api/pharmacy/roll/unload', { confirm: true });
    if (status === 401) return refresh();
    const out = $('unload-result');
    out.replaceChildren();
    if (status === 200 && data && data.ok) {
      out.append(node('p', tx.unloaded(data.returned.length), 'ok'));
      const a = receiptLink('receipt-link', data.receiptId);
      a.textContent = tx.openReceipt;
      out.append(a);
    } else {
      out.append(node('p', tx.unloadFailed, 'error'));
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

  // ---- commissioning ----
  $('commission-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { adminId: $('admin-id').value.trim(), adminPin: $('admin-pin').value, citizenId: $('commission-citizen').value.trim() };
    $('admin-pin').value = '';
    const { status, data } = await api('/api/pharmacy/commission', body);
    if (status === 401) return refresh();
    $('commission-result').textContent = status === 200 ? msg('pharmacy.screen.commissionDone', { citizenId: body.citizenId }) : msg('pharmacy.screen.commissionFailed', { reason: data && data.message ? data.message : status });
    $('commission-result').className = status === 200 ? 'ok' : 'error';
    await refresh();
  });
  $('decommission').addEventListener('click', async () => {
    const body = { adminId: $('admin-id').value.trim(), adminPin: $('admin-pin').value, confirm: true };
    $('admin-pin').value = '';
    const { status, data } = await api('/api/pharmacy/decommission', body);
    if (status === 401) return refresh();
    $('commission-result').textContent = status === 200 ? msg('pharmacy.screen.decommissionDone') : msg('pharmacy.screen.commissionFailed', { reason: data && data.message ? data.message : status });
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
      for (const x of new Intl.DateTimeFormat('en-GB', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(new Date(ms))) p[x.type] = x.value;
      return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - ms;
    };
    let ms = wall - offsetAt(wall);
    ms = wall - offsetAt(ms);
    return ms;
  }

  function renderCare() {
    const c = view.commissioned;
    $('commission-status').textContent = c ? `${msg('pharmacy.screen.commissionedFor')}: ${c.citizenId}` : msg('pharmacy.screen.notCommissioned');
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
      label.append(box, document.createTextNode(`${d.label} — ${fmt(d.intakeAtMs, true)}`));
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
      out.append(node('p', `${msg('pharmacy.screen.failed')} ${data && data.message ? data.message : ''}`, 'error'));
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

  $('lang-toggle').addEventListener('click', async () => {
    lang = lang === 'da' ? 'en' : 'da';
    try { localStorage.setItem('dosis.lang', lang); } catch (e) { /* no storage: the choice lasts for this page */ }
    const url = new URL(location.href);
    url.searchParams.set('lang', lang);
    history.replaceState(null, '', url);
    await loadMessages();
    applyStaticText();
    renderView();
  });

  loadMessages().then(() => {
    applyStaticText();
    return refresh();
  }).then(() => { if (!view) showLoggedIn(false); });
})();
