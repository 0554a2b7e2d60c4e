// The pharmacy's screen: log in with a PIN, check and load a roll (every problem shown, then confirm), unload with a receipt.
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
      const { status, data } = await api('/api/pharmacy/roll/validate', { manifest: text });
      if (status === 401) return refresh();
      if (status !== 200 || !data) {
        $('load-result').textContent = status === 413 ? tx.tooLarge : tx.loadFailed;
        return;
      }
      showProblems(data.problems);
      const errors = data.problems.filter((p) => p.severity === 'error').length;
      const warnings = data.problems.length - errors;
      $('validation').hidden = false;
      $('validation-summary').className = data.ok ? 'ok' : 'error';
      $('validation-summary').textContent = data.ok
        ? tx.validOk(data.pouches) + (warnings ? ' ' + tx.warnings(warnings) : '')
        : tx.validProblems(data.problems.length);
      if (data.ok) {
        validated = { text, sha256: data.sha256, pouches: data.pouches };
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
      li.append(node('strong', sev + ' '), node('code', p.path || '/'), document.createTextNode(` ${p.message} `), node('code', `(${p.code})`));
      list.append(li);
    }
  }

  $('cancel-load').addEventListener('click', resetValidation);

  $('confirm-load').addEventListener('click', async () => {
    if (!validated) return;
    const tx = t();
    $('confirm-load').disabled = true;
    try {
      const { status, data } = await api('/api/pharmacy/roll/load', { manifest: validated.text, confirmSha256: validated.sha256 });
      if (status === 401) return refresh();
      resetValidation();
      if (status === 200 && data && data.ok) {
        $('load-result').textContent = tx.loaded;
        $('load-result').className = 'ok';
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
      const a = node('a', tx.openReceipt);
      a.id = 'receipt-link';
      a.href = `/api/pharmacy/receipt/${encodeURIComponent(data.receiptId)}${lang === 'en' ? '?lang=en' : ''}`;
      a.target = '_blank';
      out.append(a);
    } else {
      out.append(node('p', tx.unloadFailed, 'error'));
    }
    await refresh();
  });

  $('lang-toggle').addEventListener('click', () => {
    lang = lang === 'da' ? 'en' : 'da';
    try { localStorage.setItem('dosis.lang', lang); } catch (e) { /* no storage: the choice lasts for this page */ }
    const url = new URL(location.href);
    url.searchParams.set('lang', lang);
    history.replaceState(null, '', url);
    applyStaticText();
    renderView();
  });

  applyStaticText();
  refresh().then(() => { if (!view) showLoggedIn(false); });
})();
