// The citizen's screen: renders the controller's CitizenView, live over server-sent events, one instruction at a time.
// The page cannot see the host's Clock: the time it shows is the robot's (nowMs of each view plus the time since),
// and its own timers only tick the display, repeat the beep and retry the connection.
'use strict';

(function () {
  const TEXT = {
    da: {
      locale: 'da-DK',
      toggle: 'English',
      press: 'Tryk her',
      nextDose: (when) => `Næste medicin: ${when}`,
      noDose: 'Ingen medicin planlagt',
      today: (t) => `i dag kl. ${t}`,
      tomorrow: (t) => `i morgen kl. ${t}`,
      onDay: (d, t) => `${d} kl. ${t}`,
      earlyHeadline: 'Du kan tage din medicin nu',
      earlyDetail: (t) => `Medicinen er til kl. ${t}.`,
      dueHeadline: 'Tid til din medicin — tryk på knappen',
      dueDetail: (t) => `Medicinen er til kl. ${t}.`,
      overdueDetail: (t) => `Medicinen skulle have været taget kl. ${t}.`,
      dispensingHeadline: 'Vent lidt — din medicin gøres klar',
      steps: {
        rotating: 'Finder din pose …',
        checking: 'Kontrollerer posen …',
        releasing: 'Åbner posen …',
        counting: 'Tæller tabletterne …',
        retrying: 'Prøver igen …',
      },
      presentHeadline: 'Tag bægeret',
      presentDetail: 'Din medicin er i bægeret.',
      errorHeadline: 'Tag ikke medicinen. Plejepersonalet har fået besked.',
      // Keys are the controller's reason codes (firmware-host README, "Dispensing").
      reasons: {
        undercount_after_retry: 'Maskinen talte for få tabletter.',
        overcount: 'Maskinen talte for mange tabletter.',
        sensor_implausible: 'Maskinen kunne ikke tælle tabletterne sikkert.',
        pouch_not_empty: 'Der sad tabletter fast i posen.',
        label_mismatch: 'Det var ikke den rigtige pose.',
        label_unreadable: 'Maskinen kunne ikke læse posen.',
        jam: 'Maskinen sidder fast.',
        latched: 'Maskinen har stoppet sig selv for en sikkerheds skyld.',
        unknown_after_restart: 'Maskinen gik i stå undervejs.',
        mcu_reset: 'Maskinen genstartede undervejs.',
        link_lost: 'Maskinen mistede forbindelsen.',
        cup_missing: 'Bægeret stod ikke på plads.',
        cup_not_empty: 'Der var allerede noget i bægeret.',
      },
      reasonFallback: 'Der er sket en fejl i maskinen.',
      offlineHeadline: 'Maskinen er ikke klar lige nu',
      offlineDetail: 'Den prøver igen af sig selv.',
      disconnectedHeadline: 'Skærmen har mistet forbindelsen',
      disconnectedDetail: 'Den prøver igen af sig selv.',
      loading: 'Et øjeblik …',
      lowSupply: (n) => (n <= 0 ? 'Der er ikke mere medicin i maskinen.' : n === 1 ? 'Der er kun medicin til 1 dag mere.' : `Der er kun medicin til ${n} dage mere.`),
    },
    en: {
      locale: 'en-GB',
      toggle: 'Dansk',
      press: 'Press here',
      nextDose: (when) => `Next medicine: ${when}`,
      noDose: 'No medicine planned',
      today: (t) => `today at ${t}`,
      tomorrow: (t) => `tomorrow at ${t}`,
      onDay: (d, t) => `${d} at ${t}`,
      earlyHeadline: 'You can take your medicine now',
      earlyDetail: (t) => `The medicine is for ${t}.`,
      dueHeadline: 'Time for your medicine — press the button',
      dueDetail: (t) => `The medicine is for ${t}.`,
      overdueDetail: (t) => `The medicine was due at ${t}.`,
      dispensingHeadline: 'Please wait — your medicine is being prepared',
      steps: {
        rotating: 'Finding your pouch …',
        checking: 'Checking the pouch …',
        releasing: 'Opening the pouch …',
        counting: 'Counting the pills …',
        retrying: 'Trying again …',
      },
      presentHeadline: 'Take the cup',
      presentDetail: 'Your medicine is in the cup.',
      errorHeadline: 'Do not take the medicine. The care staff have been told.',
      reasons: {
        undercount_after_retry: 'The machine counted too few pills.',
        overcount: 'The machine counted too many pills.',
        sensor_implausible: 'The machine could not count the pills with certainty.',
        pouch_not_empty: 'Pills were stuck in the pouch.',
        label_mismatch: 'It was not the right pouch.',
        label_unreadable: 'The machine could not read the pouch.',
        jam: 'The machine is stuck.',
        latched: 'The machine stopped itself to be safe.',
        unknown_after_restart: 'The machine stopped part-way.',
        mcu_reset: 'The machine restarted part-way.',
        link_lost: 'The machine lost its connection.',
        cup_missing: 'The cup was not in its place.',
        cup_not_empty: 'There was already something in the cup.',
      },
      reasonFallback: 'Something went wrong in the machine.',
      offlineHeadline: 'The machine is not ready just now',
      offlineDetail: 'It will try again by itself.',
      disconnectedHeadline: 'The screen has lost its connection',
      disconnectedDetail: 'It will try again by itself.',
      loading: 'One moment …',
      lowSupply: (n) => (n <= 0 ? 'There is no more medicine in the machine.' : n === 1 ? 'There is medicine for 1 more day only.' : `There is medicine for ${n} more days only.`),
    },
  };
  const STEP_ORDER = ['rotating', 'checking', 'releasing', 'counting'];
  const BEEP_EVERY_MS = 10000;
  // Show the lost-connection message only after this long: a short reconnect should not alarm anyone.
  const DISCONNECTED_AFTER_MS = 10000;

  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);
  const el = {
    topClock: $('top-clock'),
    toggle: $('lang-toggle'),
    headline: $('headline'),
    detail: $('detail'),
    instructions: $('instructions'),
    next: $('next'),
    progress: $('progress'),
    bar: $('progress-bar'),
    button: $('main-button'),
    supply: $('supply'),
    notice: $('notice'),
  };

  function pickLang() {
    const q = new URLSearchParams(location.search).get('lang');
    if (q === 'da' || q === 'en') return q;
    let stored = null;
    try { stored = localStorage.getItem('dosis.lang'); } catch (e) { stored = null; }
    if (stored === 'da' || stored === 'en') return stored;
    return root.dataset.defaultLang === 'en' ? 'en' : 'da';
  }

  let lang = pickLang();
  let view = null;
  // The robot's clock, not the browser's: offset learnt from each view.
  let offsetMs = 0;
  let disconnectedSince = null;
  let pressedAt = 0;

  const t = () => TEXT[lang];
  // Words from the shared catalogue (protocol/messages/citizen.json), put in the page by the server for both languages.
  const CATALOGUE = (() => {
    try {
      return JSON.parse(document.getElementById('messages').textContent);
    } catch (e) {
      return { da: {}, en: {} };
    }
  })();
  function msg(key, values) {
    const text = (CATALOGUE[lang] && CATALOGUE[lang][`citizen.${key}`]) || '';
    return text.replace(/\{(\w+)\}/g, (_, name) => (values && values[name] !== undefined ? String(values[name]) : ''));
  }
  const reasonText = (reason) => {
    if (Object.prototype.hasOwnProperty.call(t().reasons, reason)) return t().reasons[reason];
    return msg(`reason.${reason}`) || t().reasonFallback;
  };
  const robotNow = () => Date.now() + offsetMs;

  function fmtTime(ms) {
    return new Intl.DateTimeFormat(t().locale, { timeZone: view.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
  }
  function dayKey(ms) {
    return new Intl.DateTimeFormat('en-CA', { timeZone: view.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(ms));
  }
  function fmtDate(ms) {
    const s = new Intl.DateTimeFormat(t().locale, { timeZone: view.timeZone, weekday: 'long', day: 'numeric', month: 'long' }).format(new Date(ms));
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function fmtWhen(ms) {
    const now = robotNow();
    const time = fmtTime(ms);
    if (dayKey(ms) === dayKey(now)) return t().today(time);
    if (dayKey(ms) === dayKey(now + 86400000)) return t().tomorrow(time);
    const day = new Intl.DateTimeFormat(t().locale, { timeZone: view.timeZone, weekday: 'long' }).format(new Date(ms));
    return t().onDay(day, time);
  }

  function show(headline, detail, opts) {
    el.headline.textContent = headline;
    el.detail.textContent = detail || '';
    el.next.textContent = (opts && opts.next) || '';
    el.button.hidden = !(opts && opts.button);
    el.button.textContent = t().press;
    el.progress.hidden = !(opts && opts.progress !== undefined);
    el.instructions.textContent = (opts && opts.instructions) || '';
    el.instructions.hidden = !(opts && opts.instructions);
    if (opts && opts.progress !== undefined) el.bar.style.width = `${Math.round(opts.progress * 100)}%`;
  }

  function render() {
    const tx = t();
    root.lang = lang;
    el.toggle.textContent = tx.toggle;
    document.title = 'dosis';
    if (!view) {
      document.body.dataset.phase = 'loading';
      show(tx.loading, '');
      return;
    }
    const disconnected = disconnectedSince !== null && Date.now() - disconnectedSince >= DISCONNECTED_AFTER_MS;
    const phase = disconnected ? 'offline' : view.phase;
    document.body.dataset.phase = phase;
    el.topClock.textContent = fmtTime(robotNow());
    const dose = view.currentDose;
    // The manifest's words for how to take the dose, in the screen's language when the roll gives it.
    const how = view.instructions ? view.instructions[lang] || view.instructions[lang === 'da' ? 'en' : 'da'] || '' : '';
    switch (phase) {
      case 'idle':
        if (view.paused) show(msg('pausedHeadline'), msg('pausedDetail', { when: fmtWhen(view.paused.untilMs) }), { next: view.nextDose ? tx.nextDose(fmtWhen(view.nextDose.intakeAtMs)) : tx.noDose });
        else show(fmtTime(robotNow()), fmtDate(robotNow()), { next: view.nextDose ? tx.nextDose(fmtWhen(view.nextDose.intakeAtMs)) : tx.noDose });
        break;
      case 'early':
        show(tx.earlyHeadline, dose ? tx.earlyDetail(fmtTime(dose.intakeAtMs)) : '', { button: true, instructions: how });
        break;
      case 'due':
        show(tx.dueHeadline, dose ? tx.dueDetail(fmtTime(dose.intakeAtMs)) : '', { button: true, instructions: how });
        break;
      case 'overdue':
        show(tx.dueHeadline, dose ? tx.overdueDetail(fmtTime(dose.intakeAtMs)) : '', { button: true, instructions: how });
        break;
      case 'dispensing': {
        const step = view.dispensing ? view.dispensing.step : 'rotating';
        const i = STEP_ORDER.indexOf(step);
        // Half a step ahead of the one done: the bar moves on every step and is never full before the cup is presented.
        show(tx.dispensingHeadline, tx.steps[step] || '', { progress: i < 0 ? 0.5 : (i + 0.5) / STEP_ORDER.length });
        document.body.dataset.step = step;
        break;
      }
      case 'present':
        show(tx.presentHeadline, tx.presentDetail, { instructions: how });
        break;
      case 'error': {
        const reason = view.error ? view.error.reason : '';
        if (reason === 'cup_missing') {
          // Nothing went wrong with the medicine: put the cup back and try again.
          show(msg('cupHeadline'), msg('cupDetail'), { button: true });
        } else if (reason === 'cup_not_empty') {
          show(msg('cupNotEmptyHeadline'), msg('cupDetail'), { button: true });
        } else {
          // Said only when no one was told: the citizen must not wait for help that is not coming.
          const told = view.error && view.error.staffTold === true;
          show(told ? tx.errorHeadline : msg('errorHeadlineUntold'), reasonText(reason));
        }
        document.body.dataset.reason = reason;
        break;
      }
      default:
        if (disconnected) show(tx.disconnectedHeadline, tx.disconnectedDetail);
        else show(tx.offlineHeadline, tx.offlineDetail);
    }
    if (phase !== 'dispensing') delete document.body.dataset.step;
    if (phase !== 'error') delete document.body.dataset.reason;
    // Running low is news only while nothing else asks for attention.
    const supplyShown = phase === 'idle' && view.lowSupply !== null;
    el.supply.hidden = !supplyShown;
    if (supplyShown) el.supply.textContent = tx.lowSupply(view.lowSupply.daysLeft);
    // The robot's own notices (no alarm centre, a fault), worded by the robot from its message catalogue.
    const notices = view.notices || [];
    el.notice.hidden = notices.length === 0;
    el.notice.textContent = notices.map((n) => n.text[lang]).join(' ');
    el.button.setAttribute('aria-busy', Date.now() - pressedAt < 3000 ? 'true' : 'false');
    updateReminder(!disconnected && view.reminder === true);
  }

  // ---- reminder sound (WebAudio; a kiosk runs Chromium with --autoplay-policy=no-user-gesture-required) ----
  let audio = null;
  let beepTimer = null;
  let beeps = 0;
  function audioContext() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
    }
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    return audio;
  }
  function beep() {
    const ctx = audioContext();
    if (!ctx) return;
    // Three rising tones: easier to hear for ears that lose the high notes first than one high beep.
    [523, 659, 784].forEach((hz, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const at = ctx.currentTime + i * 0.35;
      osc.type = 'sine';
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.6, at + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(at);
      osc.stop(at + 0.32);
    });
    beeps += 1;
    root.dataset.beeps = String(beeps);
    root.dataset.audio = ctx.state;
  }
  function updateReminder(on) {
    root.dataset.reminder = on ? 'on' : 'off';
    if (on && beepTimer === null) {
      beep();
      beepTimer = setInterval(beep, BEEP_EVERY_MS);
    } else if (!on && beepTimer !== null) {
      clearInterval(beepTimer);
      beepTimer = null;
    }
  }
  // Any touch unlocks audio where the browser still wants a gesture.
  document.addEventListener('pointerdown', () => { if (audio && audio.state === 'suspended') audio.resume().catch(() => {}); });

  // ---- live updates ----
  let source = null;
  function connect() {
    source = new EventSource('/api/citizen/stream');
    source.onopen = () => {
      disconnectedSince = null;
      render();
    };
    source.onmessage = (ev) => {
      let next;
      try { next = JSON.parse(ev.data); } catch (e) { return; }
      view = next;
      offsetMs = view.nowMs - Date.now();
      disconnectedSince = null;
      render();
    };
    source.onerror = () => {
      if (disconnectedSince === null) disconnectedSince = Date.now();
      // The browser retries by itself unless the stream was refused outright; then start over.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setTimeout(connect, 3000);
      }
    };
  }

  el.button.addEventListener('click', () => {
    if (Date.now() - pressedAt < 1500) return; // a shaky double tap is one press
    pressedAt = Date.now();
    el.button.setAttribute('aria-busy', 'true');
    fetch('/api/citizen/button', { method: 'POST', headers: { 'x-dosis-screen': 'citizen' } }).catch(() => {});
  });

  el.toggle.addEventListener('click', () => {
    lang = lang === 'da' ? 'en' : 'da';
    try { localStorage.setItem('dosis.lang', lang); } catch (e) { /* a kiosk without storage keeps the choice for this page only */ }
    const url = new URL(location.href);
    url.searchParams.set('lang', lang);
    history.replaceState(null, '', url);
    render();
  });

  // The clock ticks between views; the disconnected message appears on time.
  setInterval(render, 1000);
  render();
  connect();
})();
