// The citizen's screen: renders the controller's CitizenView, live over server-sent events, one instruction at a time.
// The page cannot see the host's Clock: the time it shows is the robot's (nowMs of each view plus the time since),
// and its own timers only tick the display, repeat the beep and retry the connection.
'use strict';

(function () {
  // Only the locale of each language lives here; every word is in the catalogue (protocol/messages/citizen.json and
  // common.json), which the server puts in the page for both languages.
  const LOCALES = { da: 'da-DK', en: 'en-GB' };
  const CATALOGUE = window.DosisMessages.inlined('messages');
  const STEP_TEXT = {
    rotating: 'citizen.screen.step.rotating',
    checking: 'citizen.screen.step.checking',
    releasing: 'citizen.screen.step.releasing',
    counting: 'citizen.screen.step.counting',
    retrying: 'citizen.screen.step.retrying',
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

  let words = window.DosisMessages.formatter(CATALOGUE[lang] || {}, LOCALES[lang]);
  const msg = (key, values) => words.msg(key, values);
  const locale = () => LOCALES[lang];
  // The controller's reason codes (citizen.reason.*); one new to the catalogue gets the general words, never its code.
  const reasonText = (reason) => {
    const key = `citizen.reason.${reason}`;
    return words.has(key) ? msg(key) : msg('citizen.screen.reasonFallback');
  };
  const robotNow = () => Date.now() + offsetMs;

  function fmtTime(ms) {
    return new Intl.DateTimeFormat(locale(), { timeZone: view.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
  }
  function dayKey(ms) {
    // The calendar day in the robot's zone, from the parts (whatever order the screen's locale writes them in).
    const p = {};
    for (const x of new Intl.DateTimeFormat(locale(), { timeZone: view.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(new Date(ms))) p[x.type] = x.value;
    return `${p.year}-${p.month}-${p.day}`;
  }
  function fmtDate(ms) {
    const s = new Intl.DateTimeFormat(locale(), { timeZone: view.timeZone, weekday: 'long', day: 'numeric', month: 'long' }).format(new Date(ms));
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function fmtWhen(ms) {
    const now = robotNow();
    const time = fmtTime(ms);
    if (dayKey(ms) === dayKey(now)) return msg('citizen.screen.today', { time });
    if (dayKey(ms) === dayKey(now + 86400000)) return msg('citizen.screen.tomorrow', { time });
    const day = new Intl.DateTimeFormat(locale(), { timeZone: view.timeZone, weekday: 'long' }).format(new Date(ms));
    return msg('citizen.screen.onDay', { day, time });
  }

  function show(headline, detail, opts) {
    el.headline.textContent = headline;
    el.detail.textContent = detail || '';
    el.next.textContent = (opts && opts.next) || '';
    el.button.hidden = !(opts && opts.button);
    el.button.textContent = msg('citizen.screen.press');
    el.progress.hidden = !(opts && opts.progress !== undefined);
    el.instructions.textContent = (opts && opts.instructions) || '';
    el.instructions.hidden = !(opts && opts.instructions);
    if (opts && opts.progress !== undefined) el.bar.style.width = `${Math.round(opts.progress * 100)}%`;
  }

  function render() {
    root.lang = lang;
    el.toggle.textContent = msg('common.otherLanguage');
    document.title = msg('citizen.screen.pageTitle');
    if (!view) {
      document.body.dataset.phase = 'loading';
      show(msg('citizen.screen.loading'), '');
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
      case 'idle': {
        const next = view.nextDose ? msg('citizen.screen.nextDose', { when: fmtWhen(view.nextDose.intakeAtMs) }) : msg('citizen.screen.noDose');
        if (view.paused) show(msg('citizen.pausedHeadline'), msg('citizen.pausedDetail', { when: fmtWhen(view.paused.untilMs) }), { next });
        else show(fmtTime(robotNow()), fmtDate(robotNow()), { next });
        break;
      }
      case 'early':
        show(msg('citizen.screen.earlyHeadline'), dose ? msg('citizen.screen.earlyDetail', { time: fmtTime(dose.intakeAtMs) }) : '', { button: true, instructions: how });
        break;
      case 'due':
        show(msg('citizen.screen.dueHeadline'), dose ? msg('citizen.screen.dueDetail', { time: fmtTime(dose.intakeAtMs) }) : '', { button: true, instructions: how });
        break;
      case 'overdue':
        show(msg('citizen.screen.dueHeadline'), dose ? msg('citizen.screen.overdueDetail', { time: fmtTime(dose.intakeAtMs) }) : '', { button: true, instructions: how });
        break;
      case 'dispensing': {
        const step = view.dispensing ? view.dispensing.step : 'rotating';
        const i = STEP_ORDER.indexOf(step);
        // Half a step ahead of the one done: the bar moves on every step and is never full before the cup is presented.
        show(msg('citizen.screen.dispensingHeadline'), Object.prototype.hasOwnProperty.call(STEP_TEXT, step) ? msg(STEP_TEXT[step]) : '', { progress: i < 0 ? 0.5 : (i + 0.5) / STEP_ORDER.length });
        document.body.dataset.step = step;
        break;
      }
      case 'present':
        show(msg('citizen.screen.presentHeadline'), msg('citizen.screen.presentDetail'), { instructions: how });
        break;
      case 'error': {
        const reason = view.error ? view.error.reason : '';
        if (reason === 'cup_missing') {
          // Nothing went wrong with the medicine: put the cup back and try again.
          show(msg('citizen.cupHeadline'), msg('citizen.cupDetail'), { button: true });
        } else if (reason === 'cup_not_empty') {
          show(msg('citizen.cupNotEmptyHeadline'), msg('citizen.cupDetail'), { button: true });
        } else {
          // Said only when no one was told: the citizen must not wait for help that is not coming.
          const told = view.error && view.error.staffTold === true;
          show(msg(told ? 'citizen.screen.errorHeadline' : 'citizen.errorHeadlineUntold'), reasonText(reason));
        }
        document.body.dataset.reason = reason;
        break;
      }
      default:
        if (disconnected) show(msg('citizen.screen.disconnectedHeadline'), msg('citizen.screen.disconnectedDetail'));
        else show(msg('citizen.screen.offlineHeadline'), msg('citizen.screen.offlineDetail'));
    }
    if (phase !== 'dispensing') delete document.body.dataset.step;
    if (phase !== 'error') delete document.body.dataset.reason;
    // Running low is news only while nothing else asks for attention.
    const supplyShown = phase === 'idle' && view.lowSupply !== null;
    el.supply.hidden = !supplyShown;
    if (supplyShown) el.supply.textContent = msg('citizen.screen.lowSupply', { days: Math.max(0, view.lowSupply.daysLeft) });
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
    words = window.DosisMessages.formatter(CATALOGUE[lang] || {}, LOCALES[lang]);
    render();
  });

  // The clock ticks between views; the disconnected message appears on time.
  setInterval(render, 1000);
  render();
  connect();
})();
