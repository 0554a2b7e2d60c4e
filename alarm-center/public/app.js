// The operators' dashboard: Preact + htm, messages from the shared catalogue, live changes over server-sent events.
//
// The server only says *when* something changed; the page then fetches the page of alerts it shows and Preact
// updates the rows in place, keyed by alert id. What the operator is doing in a row (the outcome chosen, the note
// typed, the contact read, the call result) is that row's own state, so no update can touch it.
import { h, render } from '/vendor/preact.js';
import { useCallback, useEffect, useMemo, useRef, useState } from '/vendor/hooks.js';
import htm from '/vendor/htm.js';

const html = htm.bind(h);
const PAGE = 50;
const LANGS = { da: 'da-DK', en: 'en-GB' };
const OUTCOMES = ['reached_taken', 'reached_will_take', 'home_care_sent', 'not_reached_escalated', 'false_alarm', 'device_repaired', 'other'];
const RESULTS = ['answered', 'no_answer', 'busy', 'wrong_number'];
const TYPES = ['missed_dose', 'dose_failed', 'device_silent', 'dose_overdue', 'device_fault', 'power_lost', 'low_supply'];
const STATES = ['open', 'claimed', 'escalated', 'resolved', 'cancelled'];
const PRIORITIES = ['high', 'medium', 'low'];
/** A high-priority alert sounds its burst again this often until someone claims it (IEC 60601-1-8). */
const HIGH_REPEAT_MS = 10_000;
const REST_EVERY_MS = 3_000;
const REPORTS_EVERY_MS = 60_000;
const DEVICES_EVERY_MS = 30_000;

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
  }
}

async function api(method, url, body) {
  const r = await fetch(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const e = new ApiError(r.status, data);
    e.retryAfter = Number(r.headers.get('retry-after') ?? 0);
    throw e;
  }
  return data;
}

/** Formats catalogue messages with the same library and strings as the server (intl-messageformat). */
function makeT(lang, messages) {
  const cache = new Map();
  return (key, values) => {
    const id = key.startsWith('centre.') || key.startsWith('common.') ? key : `centre.${key}`;
    let f = cache.get(id);
    if (!f) {
      const msg = messages[id];
      if (msg === undefined) return key;
      cache.set(id, (f = new IntlMessageFormat.IntlMessageFormat(msg, LANGS[lang])));
    }
    return String(f.format(values));
  };
}

// --- Sound: IEC 60601-1-8 style bursts -----------------------------------------------------------------------------------
let audio = null;
function burst(priority) {
  try {
    audio ??= new AudioContext();
    // High: the 10-pulse burst (3 + 2, a pause, 3 + 2); medium: 3 pulses; low: 1.
    const pattern = priority === 'high' ? [0, 0.2, 0.4, 1.0, 1.2, 2.2, 2.4, 2.6, 3.2, 3.4] : priority === 'medium' ? [0, 0.25, 0.5] : [0];
    const freq = priority === 'high' ? 880 : priority === 'medium' ? 660 : 523;
    for (const at of pattern) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = freq;
      g.gain.value = 0.15;
      o.connect(g).connect(audio.destination);
      o.start(audio.currentTime + at);
      o.stop(audio.currentTime + at + 0.15);
    }
  } catch {
    // No audio device: the colours and the counts still show it.
  }
  document.body.dataset.lastSound = priority;
}

// --- Formatting ----------------------------------------------------------------------------------------------------------
function makeFormat(lang, timeZone) {
  const dt = new Intl.DateTimeFormat(LANGS[lang], { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const pct = new Intl.NumberFormat(LANGS[lang], { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
  return {
    time: (ms) => (ms == null ? '—' : dt.format(new Date(ms))),
    age: (ms) => { const s = Math.max(0, Math.floor(ms / 1000)); const m = Math.floor(s / 60); return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}` : `${m}:${String(s % 60).padStart(2, '0')}`; },
    pct: (x) => (x == null ? '—' : pct.format(x)),
  };
}

// --- Login -------------------------------------------------------------------------------------------------------------
function Login({ t, onIn }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (ev) => {
    ev.preventDefault();
    try {
      onIn(await api('POST', '/v1/session', { username, password }));
    } catch (e) {
      setError(e.code === 'DOSIS_ERR_LOCKED' ? t('login.locked', { seconds: e.retryAfter || 1 }) : e.status === 401 ? t('login.wrong') : t('error', { message: e.message }));
    }
  };
  return html`<section id="login-view"><form id="login" onSubmit=${submit}>
    <h2>${t('login.heading')}</h2>
    <label>${t('login.username')} <input name="username" autocomplete="username" required maxlength="40" value=${username} onInput=${(e) => setUsername(e.target.value)} /></label>
    <label>${t('login.password')} <input name="password" type="password" autocomplete="current-password" required maxlength="200" value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
    <button type="submit">${t('login.submit')}</button>
    <p id="login-error" class="error" role="alert">${error}</p>
  </form></section>`;
}

// --- One alert row: its own state survives every update of the alert ------------------------------------------------
function AlertRow({ a, me, now, t, fmt, act, onError }) {
  const [outcome, setOutcome] = useState('');
  const [note, setNote] = useState('');
  const [result, setResult] = useState('no_answer');
  const [contact, setContact] = useState(null);
  const mine = a.claimedBy === me.username;
  const supervisor = me.role !== 'operator';
  const unclaimed = a.state === 'open' || a.state === 'escalated';
  const risen = unclaimed && a.priority !== basePriority(a.type);
  const run = (fn) => fn().catch(onError);
  const showContact = () => run(async () => setContact(await api('GET', `/v1/alerts/${a.id}/contact`)));
  const resolve = (ev) => {
    ev.preventDefault();
    if (!outcome) return;
    run(() => act(a, 'resolve', { outcome, ...(note.trim() ? { note: note.trim() } : {}) }));
  };
  const canClaim = a.state === 'open' || (a.state === 'escalated' && supervisor);
  const canResolve = (a.state === 'claimed' && mine) || (supervisor && (a.state === 'open' || a.state === 'claimed' || a.state === 'escalated'));
  const stateText = (a.state === 'claimed' ? t('state.claimed', { who: a.claimedBy }) : t(`state.${a.state}`)) + (a.outcome ? `: ${t(`outcome.${a.outcome}`)}` : '');
  const typeKey = `common.eventType.${a.type}`;
  return html`<tr data-alert-id=${a.id} class=${`prio-${a.priority} state-${a.state}${unclaimed ? ' unclaimed' : ''}`}>
    <td class="prio"><span class="badge">${t(`priority.${a.priority}`)}</span>${risen ? html`<small class="risen"> ${t('priority.risen')}</small>` : null}</td>
    <td class="age" title=${fmt.time(a.openedAtMs)}>${fmt.age(now - a.openedAtMs)}</td>
    <td class="type">${t(typeKey) === typeKey ? t(`eventType.${a.type}`) : t(typeKey)}</td>
    <td>${a.deviceId}</td>
    <td>${a.district ?? ''}</td>
    <td>${a.doseId ?? ''}</td>
    <td class="state">${stateText}</td>
    <td>${a.reportCount}</td>
    <td class="actions">
      ${canClaim ? html`<button class="claim" onClick=${() => run(() => act(a, 'claim'))}>${t('action.claim')}</button>` : null}
      ${a.state === 'claimed' && mine && !contact ? html`<button class="show-contact" onClick=${showContact}>${t('action.showContact')}</button>` : null}
      ${contact ? html`<div class="contact" role="region" aria-label=${t('contact.heading')}>
          <strong>${t('contact.heading')}</strong>
          ${Object.keys(contact).length === 0 ? html`<span>${t('contact.none')}</span>` : Object.entries(contact).map(([k, v]) => html`<div><span class="k">${k}</span>: <span class="v">${v}</span></div>`)}
          <button class="close-contact" onClick=${() => setContact(null)}>${t('action.closeContact')}</button>
        </div>` : null}
      ${a.state === 'claimed' && mine ? html`<span class="call">
          <select class="call-result" value=${result} onChange=${(e) => setResult(e.target.value)}>${RESULTS.map((r) => html`<option value=${r}>${t(`result.${r}`)}</option>`)}</select>
          <button class="log-call" onClick=${() => run(() => act(a, 'contact-attempts', { result }))}>${t('action.logCall')}</button>
          <button class="escalate" onClick=${() => run(() => act(a, 'escalate'))}>${t('action.escalate')}</button>
        </span>` : null}
      ${canResolve ? html`<form class="resolve" onSubmit=${resolve}>
          <select class="outcome" required value=${outcome} onChange=${(e) => setOutcome(e.target.value)}>
            <option value="">${t('outcome.choose')}</option>
            ${OUTCOMES.map((o) => html`<option value=${o}>${t(`outcome.${o}`)}</option>`)}
          </select>
          <textarea class="note" maxlength="500" rows="1" placeholder=${t('action.note')} value=${note} onInput=${(e) => setNote(e.target.value)}></textarea>
          <button type="submit" class="resolve-button" disabled=${!outcome}>${t('action.resolve')}</button>
        </form>` : null}
    </td>
  </tr>`;
}

const BASE = { missed_dose: 'high', dose_failed: 'high', device_silent: 'high', dose_overdue: 'medium', device_fault: 'medium', power_lost: 'medium', low_supply: 'low' };
const basePriority = (type) => BASE[type] ?? 'medium';

// --- The queue: filters, paging with the true total, counts per priority ---------------------------------------------
function Queue({ me, t, fmt, now, page, filters, setFilters, act, onError }) {
  const set = (k) => (e) => setFilters({ ...filters, [k]: e.target.value, offset: 0 });
  const from = page.total === 0 ? 0 : page.offset + 1;
  const to = page.offset + page.alerts.length;
  return html`<section id="queue-view">
    <h2>${t('queue.heading')}</h2>
    <div class="counts" aria-live="polite">
      ${PRIORITIES.map((p) => html`<span class=${`count prio-${p}${page.counts[p] ? ' active' : ''}`} data-priority=${p}>${t(`priority.${p}`)}: <b>${page.counts[p]}</b></span>`)}
    </div>
    <div class="filters">
      <label>${t('filter.priority')} <select name="priority" value=${filters.priority} onChange=${set('priority')}>
        <option value="">${t('filter.all')}</option>${PRIORITIES.map((p) => html`<option value=${p}>${t(`priority.${p}`)}</option>`)}</select></label>
      <label>${t('filter.state')} <select name="state" value=${filters.state} onChange=${set('state')}>
        <option value="">${t('filter.liveOnly')}</option>${STATES.map((s) => html`<option value=${s}>${t(`state.${s}`, { who: '…' })}</option>`)}</select></label>
      <label>${t('filter.type')} <select name="type" value=${filters.type} onChange=${set('type')}>
        <option value="">${t('filter.all')}</option>${TYPES.map((ty) => html`<option value=${ty}>${t(`common.eventType.${ty}`) === `common.eventType.${ty}` ? t(`eventType.${ty}`) : t(`common.eventType.${ty}`)}</option>`)}</select></label>
    </div>
    <div class="pager">
      <button class="prev" disabled=${page.offset === 0} onClick=${() => setFilters({ ...filters, offset: Math.max(0, filters.offset - PAGE) })}>${t('queue.prev')}</button>
      <span id="queue-shown">${page.total === 0 ? t('queue.none') : t('queue.shown', { from, to, total: page.total })}</span>
      <button class="next" disabled=${to >= page.total} onClick=${() => setFilters({ ...filters, offset: filters.offset + PAGE })}>${t('queue.next')}</button>
    </div>
    <table id="queue"><thead><tr>
      <th>${t('col.priority')}</th><th>${t('col.age')}</th><th>${t('col.type')}</th><th>${t('col.device')}</th><th>${t('col.district')}</th>
      <th>${t('col.dose')}</th><th>${t('col.state')}</th><th>${t('col.reports')}</th><th>${t('col.actions')}</th>
    </tr></thead><tbody>
      ${page.alerts.map((a) => html`<${AlertRow} key=${a.id} a=${a} me=${me} now=${now} t=${t} fmt=${fmt} act=${act} onError=${onError} />`)}
    </tbody></table>
    ${page.total === 0 ? html`<p class="empty">${t('queue.empty')}</p>` : null}
  </section>`;
}

function Devices({ t, fmt, devices }) {
  return html`<section><h2>${t('devices.heading')}</h2><table id="devices"><thead><tr>
    <th>${t('col.device')}</th><th>${t('col.district')}</th><th>${t('col.state')}</th><th>${t('devices.lastHeartbeat')}</th><th>${t('devices.outbox')}</th>
    <th>${t('devices.link')}</th><th>${t('devices.missingSeqs')}</th><th>${t('devices.lowSupply')}</th><th>${t('devices.silenced')}</th>
  </tr></thead><tbody>${devices.map((d) => html`<tr key=${d.deviceId}>
    <td>${d.deviceId}</td><td>${d.district ?? ''}</td><td class=${`dev-${d.status}`}>${t(`devices.status.${d.status}`)}</td><td>${fmt.time(d.lastHeartbeatAtMs)}</td>
    <td>${d.outboxDepth ?? '—'}</td><td>${d.link ?? '—'}</td><td>${d.missingSeqs}</td><td>${d.lowSupply ? t('yes') : ''}</td><td>${d.silenced ? t('yes') : ''}</td>
  </tr>`)}</tbody></table></section>`;
}

function Silences({ me, t, fmt, silences, serverNow, onChange, onError }) {
  const [deviceId, setDeviceId] = useState('');
  const [reason, setReason] = useState('hospital');
  const [hours, setHours] = useState('24');
  const supervisor = me.role !== 'operator';
  const add = (ev) => {
    ev.preventDefault();
    api('POST', '/v1/silences', { deviceId, reason, endsAtMs: serverNow() + Number(hours) * 3600_000 }).then(() => { setDeviceId(''); onChange(); }, onError);
  };
  return html`<section><h2>${t('silences.heading')}</h2>
    ${supervisor ? html`<form id="silence-form" onSubmit=${add}>
      <input name="deviceId" placeholder=${t('col.device')} required maxlength="64" value=${deviceId} onInput=${(e) => setDeviceId(e.target.value)} />
      <select name="reason" value=${reason} onChange=${(e) => setReason(e.target.value)}>${['hospital', 'away', 'maintenance', 'other'].map((r) => html`<option value=${r}>${t(`silences.reason.${r}`)}</option>`)}</select>
      <input name="hours" type="number" min="1" max="2160" value=${hours} onInput=${(e) => setHours(e.target.value)} /> ${t('silences.hours')}
      <button type="submit">${t('silences.add')}</button></form>` : null}
    <table id="silences"><thead><tr><th>${t('col.device')}</th><th>${t('filter.type')}</th><th>${t('silences.ends')}</th><th>${t('silences.by')}</th><th></th></tr></thead>
    <tbody>${silences.map((s) => html`<tr key=${s.id}><td>${s.deviceId}</td><td>${t(`silences.reason.${s.reason.startsWith('care_pause:') ? 'care_pause' : s.reason}`)}</td><td>${fmt.time(s.endsAtMs)}</td><td>${s.createdBy}</td>
      <td>${supervisor ? html`<button onClick=${() => api('DELETE', `/v1/silences/${s.id}`).then(onChange, onError)}>${t('silences.end')}</button>` : null}</td></tr>`)}</tbody></table>
  </section>`;
}

function Reports({ t, fmt, fleet, adherence, by, setBy }) {
  const dur = (ms) => (ms == null ? '—' : fmt.age(ms));
  return html`<section id="reports"><h2>${t('reports.heading')}</h2>
    <table id="report"><thead><tr><th>${t('reports.month')}</th><th>${t('reports.dosings')}</th><th>${t('reports.accuracy')}</th><th>${t('reports.taken')}</th>
      <th>${t('reports.missed')}</th><th>${t('reports.failed')}</th><th>${t('reports.adherence')}</th><th>${t('reports.alerts')}</th><th>${t('reports.meanClaim')}</th><th>${t('reports.meanResolve')}</th></tr></thead>
    <tbody>${fleet.map((r) => html`<tr key=${r.month}><td>${r.month}</td><td>${r.dosings}</td><td>${fmt.pct(r.accuracy)}</td><td>${r.taken}</td><td>${r.missed}</td><td>${r.failed}</td>
      <td>${fmt.pct(r.adherence)}</td><td>${r.alerts}</td><td>${dur(r.meanClaimMs)}</td><td>${dur(r.meanResolveMs)}</td></tr>`)}</tbody></table>
    <p><a href="/v1/reports/fleet?format=csv" download>${t('reports.csv')}</a></p>
    <h3>${t('reports.adherence')} <select name="by" value=${by} onChange=${(e) => setBy(e.target.value)}>${['month', 'device', 'district'].map((b) => html`<option value=${b}>${t(`reports.by.${b}`)}</option>`)}</select></h3>
    <table id="adherence"><thead><tr><th>${t('reports.month')}</th><th></th><th>${t('reports.taken')}</th><th>${t('reports.due')}</th><th>${t('reports.adherence')}</th></tr></thead>
    <tbody>${adherence.map((r) => html`<tr key=${`${r.month}/${r.group}`}><td>${r.month}</td><td>${r.group === 'all' ? '' : r.group}</td><td>${r.taken}</td><td>${r.due}</td><td>${fmt.pct(r.adherence)}</td></tr>`)}</tbody></table>
    <p><a href=${`/v1/reports/adherence?by=${by}&format=csv`} download>${t('reports.csv')}</a></p>
  </section>`;
}

// --- The whole page -----------------------------------------------------------------------------------------------------
function App() {
  const [lang, setLang] = useState(() => (localStorage.getItem('dosis.lang') === 'en' ? 'en' : 'da'));
  const [cat, setCat] = useState(null);
  const [me, setMe] = useState(undefined);
  const [filters, setFilters] = useState({ priority: '', state: '', type: '', offset: 0 });
  const [page, setPage] = useState({ total: 0, offset: 0, alerts: [], counts: { high: 0, medium: 0, low: 0 }, unclaimed: { high: 0, medium: 0, low: 0 } });
  const [devices, setDevices] = useState([]);
  const [silences, setSilences] = useState([]);
  const [fleet, setFleet] = useState([]);
  const [by, setBy] = useState('month');
  const [adherence, setAdherence] = useState([]);
  const [status, setStatus] = useState('');
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(Date.now());
  const serverOffset = useRef(0);
  const notified = useRef(new Map());
  const highUnclaimed = useRef(false);
  const unclaimedBefore = useRef(null);

  useEffect(() => {
    api('GET', `/v1/messages?lang=${lang}`).then((m) => setCat(m), (e) => setStatus(e.message));
    localStorage.setItem('dosis.lang', lang);
    document.documentElement.lang = lang;
  }, [lang]);
  const t = useMemo(() => (cat ? makeT(lang, cat.messages) : (k) => k), [cat, lang]);
  const fmt = useMemo(() => makeFormat(lang, cat?.timeZone ?? 'UTC'), [cat, lang]);
  useEffect(() => { if (cat) document.title = t('title'); }, [cat, t]);

  useEffect(() => {
    api('GET', '/v1/session').then(setMe, () => setMe(null));
  }, []);

  const onError = useCallback((e) => {
    if (e.status === 401) setMe(null);
    const known = e.code && t(`errors.${e.code}`, { message: e.message });
    setStatus(known && known !== `errors.${e.code}` ? known : t('error', { message: e.message }));
  }, [t]);

  const loadQueue = useCallback(async () => {
    const q = new URLSearchParams({ offset: String(filters.offset), limit: String(PAGE) });
    for (const k of ['priority', 'state', 'type']) if (filters[k]) q.set(k, filters[k]);
    const p = await api('GET', `/v1/alerts?${q}`);
    serverOffset.current = p.serverTimeMs - Date.now();
    // Sound: a new or re-notified alert sounds its priority's burst once; a high one repeats until claimed (below).
    let loudest = null;
    for (const a of p.alerts) {
      const before = notified.current.get(a.id) ?? 0;
      // Unclaimed alerts sound for everyone; a reminder about a claimed one only for the operator who holds it.
      if (before < a.notifyCount && (a.state === 'open' || a.state === 'escalated' || a.claimedBy === me?.username)) {
        if (loudest === null || PRIORITIES.indexOf(a.priority) < PRIORITIES.indexOf(loudest)) loudest = a.priority;
      }
      notified.current.set(a.id, a.notifyCount);
    }
    // A new alert anywhere in the queue, on this page or not, sounds its priority too.
    for (const pr of PRIORITIES) if (unclaimedBefore.current && p.unclaimed[pr] > unclaimedBefore.current[pr] && (loudest === null || PRIORITIES.indexOf(pr) < PRIORITIES.indexOf(loudest))) loudest = pr;
    unclaimedBefore.current = p.unclaimed;
    if (loudest) burst(loudest);
    // The page emptied under the operator (alerts resolved elsewhere): show the last page that has any.
    if (p.alerts.length === 0 && p.offset > 0 && p.total > 0) setFilters((f) => ({ ...f, offset: Math.floor((p.total - 1) / PAGE) * PAGE }));
    setPage(p);
  }, [filters, me]);
  // The queue follows every change; robots and silences at most every few seconds; reports on their own pace.
  const restAt = useRef(0);
  const restLater = useRef(null);
  const loadRest = useCallback(async (force) => {
    const wait = REST_EVERY_MS - (Date.now() - restAt.current);
    if (!force && wait > 0) {
      // Not dropped, only put off: the last change in a burst is always shown.
      restLater.current ??= setTimeout(() => { restLater.current = null; loadRest(true).catch(() => {}); }, wait);
      return;
    }
    restAt.current = Date.now();
    const [d, s] = await Promise.all([api('GET', '/v1/devices'), api('GET', '/v1/silences')]);
    setDevices(d); setSilences(s);
  }, []);
  const loadReports = useCallback(async () => {
    const [f, a] = await Promise.all([api('GET', '/v1/reports/fleet'), api('GET', `/v1/reports/adherence?by=${by}`)]);
    setFleet(f); setAdherence(a);
  }, [by]);
  const refresh = useCallback((force) => {
    if (!me) return;
    Promise.all([loadQueue(), loadRest(force === true)]).then(() => setStatus(''), onError);
  }, [me, loadQueue, loadRest, onError]);
  useEffect(() => {
    if (!me) return undefined;
    loadReports().catch(onError);
    const id = setInterval(() => loadReports().catch(onError), REPORTS_EVERY_MS);
    return () => clearInterval(id);
  }, [me, loadReports]);
  // Heartbeats change no alert, so the robots' table (outbox, link) is also fetched on a slow pace of its own.
  useEffect(() => {
    if (!me) return undefined;
    const id = setInterval(() => loadRest(true).catch(onError), DEVICES_EVERY_MS);
    return () => clearInterval(id);
  }, [me, loadRest]);

  // The live stream: every change the server reports means "fetch again"; EventSource reconnects by itself.
  const refreshRef = useRef(refresh);
  refreshRef.current = refresh;
  useEffect(() => {
    if (!me) return undefined;
    const es = new EventSource('/v1/stream');
    es.addEventListener('change', () => refreshRef.current());
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    return () => es.close();
  }, [me]);
  useEffect(() => { refresh(true); }, [filters, me]);

  // Ages count up every second; a high-priority alert nobody has claimed sounds again until someone does.
  useEffect(() => {
    const id = setInterval(() => setTick(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  // Whatever page or filter is on screen: the server counts the unclaimed high-priority alerts.
  highUnclaimed.current = page.unclaimed.high > 0;
  useEffect(() => {
    if (!me) return undefined;
    const id = setInterval(() => { if (highUnclaimed.current) burst('high'); }, HIGH_REPEAT_MS);
    return () => clearInterval(id);
  }, [me]);
  useEffect(() => {
    document.body.dataset.highSounding = String(highUnclaimed.current);
  });

  const act = useCallback(async (a, action, body = {}) => {
    await api('POST', `/v1/alerts/${a.id}/${action}`, { version: a.version, ...body });
    refresh();
  }, [refresh]);

  if (!cat || me === undefined) return null;
  const header = html`<header>
    <h1>${t('title')}</h1>
    ${me ? html`<span id="who">${t('who', { username: me.username, role: t(`role.${me.role}`) })}</span>` : null}
    ${me ? html`<span class=${`live ${live ? 'on' : 'off'}`}>${live ? t('live') : t('offline')}</span>` : null}
    <label class="lang">${t('language')} <select id="lang" value=${lang} onChange=${(e) => setLang(e.target.value)}>
      <option value="da">Dansk</option><option value="en">English</option></select></label>
    ${me ? html`<button id="logout" onClick=${() => api('DELETE', '/v1/session').finally(() => setMe(null))}>${t('logout')}</button>` : null}
  </header>`;
  if (!me) return html`${header}<${Login} t=${t} onIn=${setMe} />`;
  const now = tick + serverOffset.current;
  return html`${header}<main id="main-view">
    <p id="status" class="error" role="status">${status}</p>
    ${highUnclaimed.current ? html`<p class="sounding" role="alert">${t('sound.high')}</p>` : null}
    <${Queue} me=${me} t=${t} fmt=${fmt} now=${now} page=${page} filters=${filters} setFilters=${setFilters} act=${act} onError=${onError} />
    <${Devices} t=${t} fmt=${fmt} devices=${devices} />
    <${Silences} me=${me} t=${t} fmt=${fmt} silences=${silences} serverNow=${() => Date.now() + serverOffset.current} onChange=${() => refresh(true)} onError=${onError} />
    <${Reports} t=${t} fmt=${fmt} fleet=${fleet} adherence=${adherence} by=${by} setBy=${setBy} />
  </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
